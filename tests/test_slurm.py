"""Steps as Slurm jobs (executor=slurm) on a real one-node Slurm (scripts/slurm.sh): each run FINISHED, tagged
slurm_job_id, with its job's log attached; the same metrics as the local executor; a failing step FAILED with its log
and one line; the job script holds the command and nothing of the environment."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import mlflow
import pytest

from distill.errors import DistillError
from entrypoints import _slurm
from entrypoints._steps import Steps
from tests.conftest import REPO, free_port, need

DAEMONS = ("sinfo", "sbatch", "munged", "slurmctld", "slurmd")
SECRET = "not-in-any-script-3f9c"


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A private one-node cluster for this module; SLURM_CONF and DISTILL_SLURM_CONFIG (2 CPUs, 4G, logs in a temporary
    directory) point at it meanwhile."""
    path = f"{os.environ['PATH']}{os.pathsep}/usr/sbin"
    need("Slurm (slurmctld, slurmd, munge)", all(shutil.which(d, path=path) for d in DAEMONS))
    root = tempfile.mkdtemp(prefix="distill-slurm-")
    script = str(REPO / "scripts" / "slurm.sh")
    out = subprocess.run([script, "start", root, str(free_port())], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    config = tmp_path_factory.mktemp("slurm") / "slurm.yaml"
    config.write_text(f"cpus: 2\nmem: 4G\ntime: '00:10:00'\nlog_dir: {config.parent / 'logs'}\n")
    saved = {k: os.environ.get(k) for k in ("SLURM_CONF", "DISTILL_SLURM_CONFIG")}
    os.environ.update(SLURM_CONF=out.stdout.strip().removeprefix("SLURM_CONF="), DISTILL_SLURM_CONFIG=str(config))
    yield root
    for k, v in saved.items():
        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    subprocess.run([script, "stop", root], capture_output=True, timeout=120)
    shutil.rmtree(root, ignore_errors=True)


def job_log(run) -> str:
    path = f"slurm/{run.data.tags['slurm_job_id']}.log"
    return Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=path)).read_text()


@pytest.mark.slow
def test_steps_run_as_slurm_jobs_as_they_run_here(mlflow_store, tiny_data, slurm, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", SECRET)  # a credential the job inherits (SQLite ignores it)
    probe = dict(data=tiny_data, input="noisy_flux", head="ridge", labels="log_g", alpha="val")
    with mlflow.start_run():
        steps = Steps(False, {}, executor="slurm")
        teacher = steps("train_teacher", "train_teacher", data=tiny_data, epochs=1, batch_size=16)
        features = steps("extract", "extract", data=tiny_data, teacher=teacher, layer="enc_last", direction="fwd")
        raw = steps("probe_raw", "probe", **probe)
        again = Steps(False, {}, executor="slurm")  # made by a job, reused as a local step's run is
        again.tags["source_digest"] = mlflow.get_run(raw).data.tags["source_digest"]  # (others may edit the tree)
        assert again("probe_raw", "probe", **probe) == raw and again.how["probe_raw"] == "reused"
        raw_here = Steps(True, {})("probe_raw", "probe", **probe)
    jobs = set()
    says = {teacher: "teacher: val S/N", features: "extracted 1 layers", raw: "noisy_flux | - | ridge"}
    for run_id, said in says.items():
        run = mlflow.get_run(run_id)
        assert run.info.status == "FINISHED" and run.data.tags["slurm_job_id"].isdigit()
        assert said in job_log(run)
        jobs.add(run.data.tags["slurm_job_id"])
        script = subprocess.run(["scontrol", "write", "batch_script", run.data.tags["slurm_job_id"], "-"],
                                capture_output=True, text=True).stdout
        assert "entrypoints." in script and SECRET not in script and "MLFLOW_RUN_ID" not in script, script  # (env)
    assert len(jobs) == 3
    assert mlflow.get_run(features).data.params["teacher"] == teacher  # the job read the upstream run's artifact
    here, there = mlflow.get_run(raw_here), mlflow.get_run(raw)
    assert "slurm_job_id" not in here.data.tags
    assert here.data.metrics == there.data.metrics and here.data.metrics["test_r2_log_g"]


@pytest.mark.slow
def test_a_failing_step_ends_failed_with_its_log_and_one_line(mlflow_store, tiny_data, slurm):
    with mlflow.start_run(), pytest.raises(DistillError, match=r"^step bad \(train_teacher\) failed: .*'huge' is not"):
        Steps(False, {}, executor="slurm")("bad", "train_teacher", data=tiny_data, preset="huge")
    (failed,) = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                   filter_string="attributes.status = 'FAILED'")
    assert failed.info.run_name == "bad" and "'huge' is not one of" in job_log(failed)


def test_the_config_overrides_per_step_and_refuses_unknown_keys(tmp_path, monkeypatch):
    config = tmp_path / "slurm.yaml"
    monkeypatch.setenv("DISTILL_SLURM_CONFIG", str(config))
    config.write_text("partition: cpu\ngpus: 0\nmem: 8G\nsbatch: [--qos=low]\n"
                      "steps:\n  extract: {partition: gpu, gpus: 1}\n")
    assert _slurm.sbatch_command("probe", _slurm.config("probe"), tmp_path)[-3:] == [
        "--partition=cpu", "--mem=8G", "--qos=low"]
    assert _slurm.sbatch_command("extract", _slurm.config("extract"), tmp_path)[-4:] == [
        "--partition=gpu", "--mem=8G", "--gpus=1", "--qos=low"]
    config.write_text("steps:\n  extract: {gpu: 1}\n")
    with pytest.raises(DistillError, match="unknown key 'gpu'"):
        _slurm.config("extract")
    monkeypatch.delenv("DISTILL_SLURM_CONFIG")
    assert _slurm.config("train_teacher")["cpus"] == 2  # configs/slurm.yaml fits the one-node cluster
