"""`mlflow run . -e train_teacher`: a one-epoch smoke run, its artifacts, and resuming it."""
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import pytest
import torch

from distill.errors import DistillError
from distill.teacher import load
from entrypoints._steps import launch
from tests.conftest import REPO, mlflow_run

pytestmark = pytest.mark.slow  # end-to-end: real processes, servers or a browser


def test_train_one_epoch_then_resume(mlflow_store, tiny_data):
    result = mlflow_run(f"data={tiny_data}", "epochs=1", "batch_size=16", entry="train_teacher")
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient()
    (first,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert first.info.status == "FINISHED" and first.data.tags["stage"] == "teacher"
    assert first.data.params["arch_embed_dim"] == "16" and first.data.params["n_train"] == "96"
    for key in ("best_val_snr_denoised", "best_val_mse_denoised", "n_parameters", "val_loss"):
        assert key in first.data.metrics
    top = {a.path for a in client.list_artifacts(first.info.run_id)}
    assert {"teacher.pt", "checkpoints", "figures"} <= top
    teacher = load(mlflow.artifacts.download_artifacts(run_id=first.info.run_id, artifact_path="teacher.pt"))
    assert teacher.config.embed_dim == 16 and teacher.config.input_sigma

    resumed = mlflow_run(f"data={tiny_data}", "epochs=2", "batch_size=16", f"checkpoint={first.info.run_id}",
                         entry="train_teacher")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after epoch 1" in resumed.stderr
    second = [r for r in mlflow.search_runs(search_all_experiments=True,
                                            output_format="list") if r.info.run_id != first.info.run_id][0]
    history = client.get_metric_history(second.info.run_id, "train_loss")
    assert sorted(m.step for m in history) == [1, 2]
    ckpt = torch.load(mlflow.artifacts.download_artifacts(run_id=second.info.run_id,
                                                          artifact_path="checkpoints/last.pt"),
                      weights_only=True)
    assert ckpt["state"]["epoch"] == 2 and len(ckpt["state"]["history"]) == 2
    best = min(range(2), key=lambda i: ckpt["state"]["history"][i]["val_loss"])
    assert ckpt["state"]["best_val"] == ckpt["state"]["history"][best]["val_loss"]
    assert set(ckpt["state"]["best_model"]) == set(ckpt["model"])  # the best weights travel with the checkpoint


def test_bad_teacher_options_fail_cleanly(mlflow_store, tiny_data):
    result = mlflow_run(f"data={tiny_data}", "kernel_size=4", entry="train_teacher")
    assert result.returncode != 0 and "kernel_size=4: must be odd" in result.stderr
    result = mlflow_run(f"data={tiny_data}/nope", entry="train_teacher")
    assert result.returncode != 0 and "dataset directory not found" in result.stderr


def entry_processes(marker: str) -> list:
    """Pids of live processes whose command line holds ``marker``."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if marker in command and proc.name != str(os.getpid()):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_sigterm_marks_the_run_killed_and_it_resumes_to_the_same_weights(mlflow_store, tiny_data):
    """SIGTERM to `mlflow run` after the first epoch: no process is left behind, the run ends KILLED with an error
    tag, no scratch directory of ours is left, and resuming it gives the weights of an uninterrupted run."""
    args = [f"data={tiny_data}", "epochs=5", "batch_size=16"]  # 4 epochs of margin after the first checkpoint
    straight = mlflow_run(*args, entry="train_teacher")
    assert straight.returncode == 0, straight.stderr[-3000:]
    (done,) = mlflow.search_runs(search_all_experiments=True, output_format="list")

    scratch = Path(tempfile.mkdtemp(prefix="sigterm-"))  # the stopped run's TMPDIR: it must end empty
    command = [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", "train_teacher", "--env-manager", "local"]
    env = {**os.environ, "TMPDIR": str(scratch),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.Popen(command + [a for p in args for a in ("-P", p)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    client, deadline, run = mlflow.MlflowClient(), time.time() + 300, None
    while time.time() < deadline and run is None:
        time.sleep(0.5)
        running = [r for r in mlflow.search_runs(search_all_experiments=True, output_format="list")
                   if r.info.run_id != done.info.run_id]
        if running and client.list_artifacts(running[0].info.run_id, "checkpoints"):  # an epoch's last.pt is saved
            run = running[0]
    assert run is not None, "the run never saved an epoch's checkpoint"
    os.kill(process.pid, signal.SIGTERM)  # the `mlflow run` process only: its child must follow
    process.wait(60)
    deadline = time.time() + 60
    while entry_processes(str(tiny_data)) and time.time() < deadline:
        time.sleep(0.5)
    assert not entry_processes(str(tiny_data)), "a process outlived the stopped run"
    stopped = client.get_run(run.info.run_id)
    assert stopped.info.status == "KILLED" and "SIGTERM" in stopped.data.tags["error"]
    ours = list(scratch.glob("distill-*"))  # (mlflow's own CLI leaves an empty download directory there)
    assert not ours, f"left behind: {ours}"

    resumed = mlflow_run(*args, f"checkpoint={run.info.run_id}", entry="train_teacher")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    last = mlflow.search_runs(search_all_experiments=True, output_format="list",
                              order_by=["attributes.start_time DESC"])[0]
    weights = [load(mlflow.artifacts.download_artifacts(run_id=r.info.run_id, artifact_path="teacher.pt")).state_dict()
               for r in (done, last)]
    assert all(torch.allclose(weights[0][k].float(), weights[1][k].float(), atol=1e-6) for k in weights[0])


def test_a_teacher_trained_for_another_step_shows_its_progress_and_fails_in_one_line(mlflow_store, tiny_data, capfd):
    """ablate trains the no-error teacher through launch: the child's progress bar reaches the user, its run is
    FINISHED with the MLproject parameters, and a failure raises the child's own one-line error (its run FAILED)."""
    run_id = launch("train_teacher", dict(data=tiny_data, epochs=1, batch_size=16), child=False)
    assert "train teacher" in capfd.readouterr().err
    run = mlflow.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["lr"] == "0.001" and run.data.params["epochs"] == "1"
    with pytest.raises(DistillError, match=r"^train_teacher failed: .*'huge' is not one of"):
        launch("train_teacher", dict(data=tiny_data, preset="huge"))
    (failed,) = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                   filter_string="attributes.status = 'FAILED'")
    assert failed.data.params["preset"] == "huge"
