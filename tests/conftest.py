"""Tiny CPU fixtures: a simulated dataset and an isolated MLflow store per test."""
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from distill.simulator.dataset import simulate_dataset

REPO = Path(__file__).resolve().parents[1]
TINY = dict(train=96, val=32, test=32)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A tiny simulated dataset (96/32/32 spectra), made once per session."""
    out = tmp_path_factory.mktemp("data") / "tiny"
    simulate_dataset(out, TINY, seed=1, workers=1)
    return out


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A fresh SQLite MLflow store whose artifacts live under tmp_path (never the repo's mlruns/)."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    mlflow.MlflowClient().search_experiments()  # creates the store with artifacts in tmp_path/mlruns
    yield uri
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    os.environ.pop("MLFLOW_RUN_ID", None)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep digest caches out of the user's home."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))


def mlflow_run(*params, entry="simulate", timeout=900):
    """``mlflow run <repo> -e entry -P ... --env-manager local`` with this interpreter first on PATH."""
    args = [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", entry, "--env-manager", "local"]
    for p in params:
        args += ["-P", p]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
