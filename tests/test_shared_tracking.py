"""A team's setup: entry points against an MLflow server on PostgreSQL, and two `tune` workers sharing one study."""
import base64
import os
import subprocess
import sys
import urllib.error
import urllib.request

import mlflow
import optuna
import pytest
import sqlalchemy

from distill import tracking
from tests.conftest import REPO

pytestmark = pytest.mark.slow  # end-to-end: real processes, servers or a browser


def worker(*params) -> subprocess.Popen:
    args = [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", "tune", "--env-manager", "local"]
    for p in params:
        args += ["-P", p]
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def test_an_entry_point_runs_unchanged_against_the_server(server_store, postgres, tiny_data):
    from tests.conftest import mlflow_run

    result = mlflow_run(f"data={tiny_data}", "n_spectra=8", entry="fisher")
    assert result.returncode == 0, result.stderr[-3000:]
    run = tracking.find_run("fisher", tags={"data_dir": str(tiny_data.resolve())})
    assert run is not None and run.data.metrics["n_spectra_used"] == 8
    # the artifacts travel through the server, the run lives in PostgreSQL
    local = tracking.download(run.info.run_id, "fisher.parquet")
    assert local.stat().st_size > 0
    with sqlalchemy.create_engine(f"{postgres}/mlflow").connect() as db:
        assert db.execute(sqlalchemy.text("SELECT status FROM runs WHERE run_uuid = :r"),
                          {"r": run.info.run_id}).scalar() == "FINISHED"


def test_the_server_refuses_requests_without_credentials(mlflow_server):
    url = f"{mlflow_server}/api/2.0/mlflow/experiments/search?max_results=1"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401
    wrong = urllib.request.Request(url, headers={"Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode()})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(wrong, timeout=10)
    assert refused.value.code == 401
    token = f"admin:{os.environ['MLFLOW_TRACKING_PASSWORD']}".encode()
    right = urllib.request.Request(url, headers={"Authorization": "Basic " + base64.b64encode(token).decode()})
    with urllib.request.urlopen(right, timeout=10) as answer:
        assert answer.status == 200


def test_the_database_refuses_connections_without_the_password(postgres, monkeypatch):
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    with pytest.raises(sqlalchemy.exc.OperationalError, match="password"):
        sqlalchemy.create_engine(f"{postgres}/mlflow").connect()


def test_two_tune_workers_share_one_study(server_store, postgres, tiny_data):
    storage = f"{postgres}/optuna"
    common = (f"data={tiny_data}", "study=head", "input=noisy_flux", "study_name=shared-ridge",
              f"storage={storage}", "n_trials=3")
    workers = [worker(*common, f"seed={seed}") for seed in (1, 2)]
    for w in workers:
        out, _ = w.communicate(timeout=600)
        assert w.returncode == 0, out[-3000:]

    study = optuna.load_study(study_name="shared-ridge", storage=storage)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(6))  # one study, no duplicate trial numbers
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)

    runs = mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string="tags.study = 'shared-ridge'")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2
    seen = []
    for parent in parents:
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert len(children) == 3 and all(r.info.status == "FINISHED" for r in children)
        seen += [int(r.data.tags["trial"]) for r in children]
        assert parent.data.metrics["n_trials_this_run"] == 3
    assert sorted(seen) == list(range(6))  # every trial under its own worker's parent, none twice
