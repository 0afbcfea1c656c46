"""Run lookup: only FINISHED runs of the right entry point, parameters compared as strings; runs end with a status
even when a stop signal lands while they end."""
import os
import signal
import subprocess
import sys
import time

import mlflow
import pytest

from distill import processes, stopping, tracking
from distill.errors import DistillError


def make_run(entry_point, status="FINISHED", params=None, tags=None):
    with mlflow.start_run() as run:
        mlflow.set_tags({tracking.ENTRY_POINT_TAG: entry_point, **(tags or {})})
        mlflow.log_params(params or {})
    mlflow.MlflowClient().set_terminated(run.info.run_id, status)
    return run.info.run_id


def test_find_and_resolve_only_finished_runs(mlflow_store):
    old = make_run("extract", params={"noise_level": "1.0"}, tags={"data_dir": "/d"})
    newest_failed = make_run("extract", "FAILED", params={"noise_level": "1.0"}, tags={"data_dir": "/d"})
    make_run("probe", params={"noise_level": "1.0"}, tags={"data_dir": "/d"})
    assert tracking.find_run("extract", {"noise_level": "1.0"}).info.run_id == old
    assert tracking.find_run("extract", {"noise_level": "1"}) is None  # string comparison, as MLflow logs them
    assert tracking.resolve_run("latest", "extract", {"data_dir": "/d"}).info.run_id == old
    with pytest.raises(DistillError, match="is FAILED"):
        tracking.resolve_run(newest_failed, "extract")
    with pytest.raises(DistillError, match="not extract"):
        tracking.resolve_run(tracking.find_run("probe").info.run_id, "extract")
    with pytest.raises(DistillError, match="no FINISHED extract run matches"):
        tracking.resolve_run("latest", "extract", {"data_dir": "/elsewhere"})


def test_tracked_run_marks_failures(mlflow_store):
    with pytest.raises(DistillError):
        with tracking.tracked_run("simulate", stage="data"):
            raise DistillError("bad input, on one line")
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.info.status == "FAILED" and run.data.tags["error"] == "DistillError: bad input, on one line"
    assert run.data.tags["stage"] == "data" and run.data.tags[tracking.ENTRY_POINT_TAG] == "simulate"
    assert run.data.tags["source_digest"] == tracking.source_digest()  # the code it ran: a reused step's key


def test_temporary_directories_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale, live = tmp_path / f"distill-{dead.pid}-abc", tmp_path / f"distill-{os.getpid()}-abc"
    for path in (stale, live, tmp_path / "distill-12345678", tmp_path / "other-1-abc"):
        path.mkdir()
    made = processes.owned_tempdir(tmp_path, "distill-")
    assert made.name.startswith(f"distill-{os.getpid()}-") and not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["distill-12345678", "other-1-abc", live.name, made.name])


def test_only_an_mlflow_run_launcher_is_recognised(tmp_path):
    for argv in (["/v/bin/python", "-m", "mlflow", "run", "."], ["/v/bin/python", "/v/bin/mlflow", "run", "."],
                 ["/v/bin/mlflow", "run", "."]):
        assert processes.mlflow_run_command(argv), argv
    for argv in (["python", "-c", "code", "mlflow", "run"], ["python", "-m", "mlflow", "ui"], ["python", "x.py"], []):
        assert not processes.mlflow_run_command(argv), argv
    (tmp_path / "mlflow").write_text("import time\ntime.sleep(30)\n")
    launcher = subprocess.Popen([sys.executable, str(tmp_path / "mlflow"), "run", "."])
    try:
        deadline = time.time() + 10  # until it has exec'd its command
        while not processes.is_mlflow_run(launcher.pid) and time.time() < deadline:
            time.sleep(0.05)
        assert processes.is_mlflow_run(launcher.pid) and not processes.is_mlflow_run(os.getpid())
    finally:
        launcher.kill()
        launcher.wait()


@pytest.fixture
def stop_on_sigterm():
    """SIGTERM raises ``stopping.Stopped``, as in an entry point."""
    previous = signal.signal(signal.SIGTERM, stopping.stop)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("body_stopped, status", [(False, "FINISHED"), (True, "KILLED")])
def test_a_sigterm_while_the_run_ends_waits_for_its_status(mlflow_store, stop_on_sigterm, monkeypatch, body_stopped,
                                                           status):
    """SIGTERM delivered inside ``set_terminated`` (a stop that lands while the run ends, after its body or after a
    first stop) is held until the run has its status, then stops the process; cut in half, the run stays RUNNING."""
    set_terminated = mlflow.MlflowClient.set_terminated

    def interrupted(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # Python runs the handler right after this call
        return set_terminated(self, *args, **kwargs)

    monkeypatch.setattr(mlflow.MlflowClient, "set_terminated", interrupted)
    with pytest.raises(stopping.Stopped, match="SIGTERM"):
        with tracking.tracked_run("train_teacher"):
            if body_stopped:
                os.kill(os.getpid(), signal.SIGTERM)
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.info.status == status


def test_a_run_logs_its_spectra_as_a_dataset_input(mlflow_store, tiny_data):
    """The Datasets column: name, source path, one digest of the split digests, split sizes as the profile; the
    digest is searchable and changes with the spectra."""
    import json

    from distill.data import open_dataset
    summary = open_dataset(tiny_data).summary()
    with mlflow.start_run() as run:
        tracking.log_dataset(summary, tiny_data)
    (logged,) = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    d = logged.dataset
    assert d.name == tiny_data.name and str(tiny_data.resolve()) in d.source
    assert json.loads(d.profile) == {"n_train": 96, "n_val": 32, "n_test": 32}
    found = mlflow.search_runs(search_all_experiments=True, filter_string=f"dataset.digest = '{d.digest}'",
                               output_format="list")
    assert [r.info.run_id for r in found] == [run.info.run_id]
    other = dict(summary, digest_test="0" * 16)
    with mlflow.start_run() as second:
        tracking.log_dataset(other, tiny_data)
    assert mlflow.get_run(second.info.run_id).inputs.dataset_inputs[0].dataset.digest != d.digest
