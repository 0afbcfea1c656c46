"""Tiny CPU fixtures: a simulated dataset, an isolated MLflow store per test, and the services a team shares
(PostgreSQL, an MLflow server on it, a headless Chromium)."""
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(what: str, present: bool):
    """Skip when a system service is missing, unless DISTILL_REQUIRE_SERVICES is set (CI), where it fails."""
    if not present:
        message = f"{what} is not installed (Debian: see .ci/run)"
        pytest.fail(message) if os.environ.get("DISTILL_REQUIRE_SERVICES") else pytest.skip(message)


def wait_for(url: str, process: subprocess.Popen, seconds: float = 90):
    """Wait until ``url`` answers 200, or fail with the server's output."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {process.stdout.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


def serve(args: list, url: str):
    """Start a server process and wait for ``url``; returns the process (stop it with ``stop``)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        wait_for(url, process)
    except BaseException:
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen):
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, 15)
        process.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, 9)


@pytest.fixture(scope="session")
def postgres() -> str:
    """A throwaway PostgreSQL cluster (scripts/postgres.sh) with databases mlflow and optuna; yields its base URL."""
    need("PostgreSQL", bool(glob.glob("/usr/lib/postgresql/*/bin/initdb")))
    root = tempfile.mkdtemp(prefix="distill-pg-")  # under /tmp: the postgres user must reach it
    script = str(REPO / "scripts" / "postgres.sh")
    url = subprocess.run([script, "start", root, str(free_port())], check=True, capture_output=True, text=True).stdout.strip()
    yield url
    subprocess.run([script, "stop", root], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_server(postgres, tmp_path_factory) -> str:
    """``mlflow server`` on 127.0.0.1 backed by the PostgreSQL database mlflow, artifacts proxied to a directory."""
    port = free_port()
    artifacts = tmp_path_factory.mktemp("server-artifacts")
    process = serve([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"{postgres}/mlflow",
                     "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port)],
                    f"http://127.0.0.1:{port}/health")
    yield f"http://127.0.0.1:{port}"
    stop(process)


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]  # no call home: the machine's network is closed


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (no browser download)."""
    executable = shutil.which("chromium")
    need("Chromium", executable is not None)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where browser tests leave their screenshots: $DISTILL_TEST_ARTIFACTS, else reports/test-artifacts."""
    out = Path(os.environ.get("DISTILL_TEST_ARTIFACTS", REPO / "reports" / "test-artifacts"))
    out.mkdir(parents=True, exist_ok=True)
    return out
