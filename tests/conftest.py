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


_CURRENT = {}


@pytest.fixture(autouse=True)
def _current_test(request):
    _CURRENT["node"] = request.node
    yield
    _CURRENT.pop("node", None)


def mlflow_run(*params, entry="simulate", timeout=900):
    """``mlflow run <repo> -e entry -P ... --env-manager local`` with this interpreter first on PATH.

    Only a ``slow``-marked test may start one: ``make test-fast`` must stay free of real runs."""
    node = _CURRENT.get("node")
    assert node is None or node.get_closest_marker("slow"), f"{node.nodeid} starts `mlflow run`: mark it slow"
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
            raise RuntimeError(f"server exited with {process.returncode}: {Path(process.log_path).read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


def serve(args: list, url: str):
    """Start a server process and wait for ``url``; returns the process (stop it with ``stop``). Its output goes to a
    file (``process.log_path``): a pipe nobody reads fills up and blocks the server mid-request."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with tempfile.NamedTemporaryFile(prefix="distill-server-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    process.log_path = log.name
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
def postgres_cluster():
    """A throwaway PostgreSQL cluster (scripts/postgres.sh) with databases mlflow, mlflow_auth and optuna and password
    authentication; yields (base URL, data directory, port). PGPASSFILE points at its password for the session."""
    need("PostgreSQL", bool(glob.glob("/usr/lib/postgresql/*/bin/initdb")))
    root = tempfile.mkdtemp(prefix="distill-pg-")  # under /tmp: the postgres user must reach it
    data, port, script = f"{root}/db", free_port(), str(REPO / "scripts" / "postgres.sh")
    os.chmod(root, 0o755)
    url = subprocess.run([script, "start", data, str(port)], check=True, capture_output=True, text=True).stdout.strip()
    os.environ["PGPASSFILE"] = f"{data}.pgpass"
    yield url, data, port
    subprocess.run([script, "stop", data], capture_output=True)
    os.environ.pop("PGPASSFILE", None)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(postgres_cluster) -> str:
    return postgres_cluster[0]


@pytest.fixture(scope="session")
def mlflow_server(postgres_cluster, tmp_path_factory) -> str:
    """The team's server (scripts/mlflow_server.sh: basic auth, PostgreSQL, proxied artifacts) on 127.0.0.1; the
    session's clients authenticate as its admin through MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD."""
    _, data, pg_port = postgres_cluster
    port = free_port()
    artifacts = tmp_path_factory.mktemp("server-artifacts")
    process = serve(["bash", str(REPO / "scripts" / "mlflow_server.sh"), data, str(pg_port), str(artifacts), str(port)],
                    f"http://127.0.0.1:{port}/health")
    os.environ["MLFLOW_TRACKING_USERNAME"] = "admin"
    os.environ["MLFLOW_TRACKING_PASSWORD"] = Path(f"{data}.mlflow/admin_password").read_text().strip()
    yield f"http://127.0.0.1:{port}"
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        os.environ.pop(key, None)
    stop(process)


@pytest.fixture
def server_store(mlflow_server, tmp_path, monkeypatch):
    """The team server as this test's tracking store (working directory: the test's own)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(mlflow_server)
    yield mlflow_server
    mlflow.set_tracking_uri(None)


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking",
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
