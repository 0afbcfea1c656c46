"""Steps as Slurm jobs (executor=slurm) on a real one-node Slurm (scripts/slurm.sh): a tiny main against the team
server, each run FINISHED, tagged slurm_job_id, with its job's log attached, independent steps at once, the same
metrics as the local executor; a step queued by another process waited for, not submitted twice; a failing step
FAILED with its log and one line; the job script holds the command and nothing of the environment."""
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import mlflow
import pytest
import torch

from distill import tracking
from distill.errors import DistillError
from distill.teacher import PRESETS, BlindSpotUNet1D, save
from entrypoints import _slurm, _steps
from entrypoints._steps import Steps
from tests.conftest import REPO, free_port, mlflow_run, need

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


def job_times(job: str) -> tuple:
    """(start, end) of a job, in seconds since the epoch, from the controller (the cluster keeps ended jobs an hour)."""
    shown = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True, check=True).stdout
    return tuple(time.mktime(time.strptime(re.search(rf"\b{key}=(\S+)", shown)[1], "%Y-%m-%dT%H:%M:%S"))
                 for key in ("StartTime", "EndTime"))


@pytest.mark.slow
def test_a_tiny_main_runs_as_slurm_jobs_against_the_team_server(server_store, tiny_data, slurm, tmp_path,
                                                                  monkeypatch):
    """Every step of a tiny main a Slurm job on the team server, independent ones at once (one CPU each on the
    node's two): all FINISHED, tagged, their logs attached; no credential in a job script; the same metrics as the
    local executor's."""
    config = tmp_path / "slurm.yaml"
    config.write_text(f"cpus: 1\nmem: 4G\ntime: '00:20:00'\nlog_dir: {tmp_path / 'logs'}\n")
    monkeypatch.setenv("DISTILL_SLURM_CONFIG", str(config))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the local recomputation below too: the same sums, the same figures
    torch.manual_seed(0)
    save(BlindSpotUNet1D(PRESETS["cpu"]), tmp_path / "user.ckpt", lightning=True)
    out = tmp_path / "rep"
    result = mlflow_run(f"data={tiny_data}", f"teacher={tmp_path / 'user.ckpt'}", "teacher_epochs=1",
                        "student_epochs=1", "executor=slurm", f"out={out}", entry="main")
    assert result.returncode == 0, result.stderr[-3000:]
    (main,) = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                 filter_string=f"params.out = '{out}' and tags.`{tracking.ENTRY_POINT_TAG}` = 'main'")
    steps = {k[5:]: mlflow.get_run(v) for k, v in main.data.tags.items() if k.startswith("step_")}
    assert {"extract", "probe_grid", "student", "peer_cnn", "ablate", "report"} <= set(steps)
    jobs = {}
    for name, run in steps.items():
        assert run.info.status == "FINISHED" and run.data.tags["slurm_job_id"].isdigit(), name
        jobs[name] = run.data.tags["slurm_job_id"]
    assert len(set(jobs.values())) == len(steps) and "probe_grid" in job_log(steps["probe_grid"])
    script = subprocess.run(["scontrol", "write", "batch_script", jobs["student"], "-"], capture_output=True,
                            text=True).stdout
    secret = os.environ["MLFLOW_TRACKING_PASSWORD"]
    assert "entrypoints.distill_student" in script and secret not in script and "MLFLOW_RUN_ID" not in script
    spans = {name: job_times(job) for name, job in jobs.items()}
    assert any(a[0] < b[1] and b[0] < a[1] for x, a in spans.items() for y, b in spans.items() if x < y), spans
    with mlflow.start_run():  # the local executor, recomputed: the same figures
        here = Steps(True, {})
        for name in ("probe_raw", "student"):
            there = steps[name]
            params = {k: v for k, v in there.data.params.items() if k in _steps.full_params(
                there.data.tags[tracking.ENTRY_POINT_TAG], {})}
            local = mlflow.get_run(here(name, there.data.tags[tracking.ENTRY_POINT_TAG], **params)).data.metrics
            assert set(local) == set(there.data.metrics) and all(
                local[k] == pytest.approx(v, rel=1e-9, abs=1e-12) for k, v in there.data.metrics.items()
                if not any(t in k for t in ("second", "speedup"))), name  # timings differ from run to run


@pytest.mark.slow
def test_a_step_queued_by_another_process_is_waited_for_not_submitted_twice(mlflow_store, tiny_data, slurm):
    probe = dict(data=tiny_data, input="noisy_flux", head="ridge", labels="log_g", alpha="val")
    with mlflow.start_run():
        first, second = Steps(False, {}, executor="slurm"), Steps(False, {}, executor="slurm")
        elsewhere = threading.Thread(target=first, args=("probe_raw", "probe"), kwargs=probe)
        elsewhere.start()
        deadline = time.time() + 60
        while time.time() < deadline and not mlflow.search_runs(
                search_all_experiments=True, filter_string="attributes.status = 'RUNNING' and "
                                                           "tags.slurm_job_id != ''").shape[0]:
            time.sleep(0.2)
        run_id = second("probe_raw", "probe", **probe)
        elsewhere.join()
    assert second.how["probe_raw"] == "waited" and run_id == first.ids["probe_raw"]
    assert mlflow.get_run(run_id).info.status == "FINISHED"
    assert len(mlflow.search_runs(search_all_experiments=True, filter_string="tags.slurm_job_id != ''")) == 1


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
