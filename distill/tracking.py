"""The MLflow conventions of distill, in one place.

- ``tracked_run``: attach to the run that ``mlflow run`` created (MLFLOW_RUN_ID), or
  start one; tag it with its entry point, stage, MVP and ``source_digest``; on failure end it FAILED
  with the reason in the ``error`` tag, on a stop KILLED.
- ``source_digest``: the code a run ran (every ``.py`` of ``distill/`` and ``entrypoints/``, and MLproject),
  committed or not; a step is reused only by code with the same digest.
- Metric keys ``{prefix_}{split}_{metric}_{label}``, e.g. ``test_r2_log_g``; heads add their name after the prefix.
- ``find_run``: the newest FINISHED run of an entry point with given parameters
  (compared as strings); never a FAILED or RUNNING one.
- Tables, figures, dataset summaries and artifact download.
"""
import contextlib
import functools
import hashlib
import importlib.metadata
import os
import re
import tempfile
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from . import intervals, processes, stopping
from .errors import DistillError
from .redact import redact
from .spectra_input import log_spectra_input

ENTRY_POINT_TAG = "mlflow.project.entryPoint"
PROJECT = Path(__file__).resolve().parents[1]


def digest_of(root: Path) -> str:
    """Digest of a project's source: every ``.py`` under ``distill/`` and ``entrypoints/`` and MLproject, by
    relative path and bytes."""
    files = sorted([*root.glob("distill/**/*.py"), *root.glob("entrypoints/**/*.py"), root / "MLproject"])
    h = hashlib.blake2b(digest_size=8)
    for path in (p for p in files if p.is_file()):
        data = path.read_bytes()
        h.update(f"{path.relative_to(root).as_posix()}\0{len(data)}\0".encode() + data)
    return h.hexdigest()


@functools.cache
def source_digest() -> str:
    """Digest of the source of this process (taken once, near its start): a run's ``source_digest`` tag."""
    return digest_of(PROJECT)


@contextlib.contextmanager
def tracked_run(entry_point: str, stage: str | None = None, mvp: str | None = None, nested: bool = False,
                parent: str | None = None, **tags):
    """Open (or attach to) a run (nested in the active run, or a child of ``parent``: in another thread); yields the
    active run; it ends FAILED, or KILLED on a stop signal or Ctrl-C, with an ``error`` tag if the body raises. A
    stop signal that lands while the run ends waits until it has its status; a run that ``mlflow run`` started ends
    that launcher once KILLED, or it would mark the run FAILED."""
    launched = os.environ.get("MLFLOW_RUN_ID")
    run = mlflow.start_run(nested=nested, parent_run_id=parent)
    try:
        if ENTRY_POINT_TAG not in MlflowClient().get_run(run.info.run_id).data.tags:
            mlflow.set_tag(ENTRY_POINT_TAG, entry_point)
        tags = {"stage": stage, "mvp": mvp, "interval_method": intervals.METHOD, "source_digest": source_digest(),
                **tags}
        mlflow.set_tags({k: redact(v) for k, v in tags.items() if v is not None})
        yield run
    except BaseException as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        with stopping.held():
            with contextlib.suppress(Exception):
                mlflow.set_tag("error", redact(f"{type(e).__name__}: {message}")[:5000])
            mlflow.end_run("KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
            if isinstance(e, KeyboardInterrupt) and run.info.run_id == launched:
                processes.end_mlflow_run_parent()
        raise
    else:
        with stopping.held():
            mlflow.end_run()


def log_params(params: dict):
    """Log parameters not already on the run (``mlflow run`` logs the project's own first)."""
    run = mlflow.active_run()
    present = MlflowClient().get_run(run.info.run_id).data.params
    new = {k: redact(v) for k, v in params.items() if k not in present}
    if new:
        mlflow.log_params(new)


def log_head_scores(prefix: str, results: dict):
    """Log every score of ``probe.fit_heads`` results as ``{prefix}_{head}_{split}_{metric}_{label}``."""
    log_metrics({f"{prefix}_{head}_{k}": v for (_, head), r in results.items() for k, v in r.scores.items()})


TORCH_MODEL = ("torch", "numpy", "cloudpickle")  # what a logged PyTorch model needs
SKLEARN_MODEL = ("scikit-learn", "lightgbm", "numpy", "cloudpickle")  # a logged head pipeline


def model_requirements(*packages) -> list:
    """Pinned pip requirements of a logged model (local build tags such as +cpu dropped). Given explicitly, they spare
    MLflow its inference, which imports the model in a subprocess: ~8 s per logged model."""
    return [f"{p}=={importlib.metadata.version(p).split('+')[0]}" for p in packages]


def log_metrics(metrics: dict, step: int | None = None):
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def log_table(df, artifact_file: str):
    """Log a DataFrame as an MLflow table (JSON, shown in the UI's artifact and evaluation views)."""
    mlflow.log_table(data=df.reset_index(drop=True), artifact_file=artifact_file)


def log_parquet(df, artifact_file: str):
    """Log a DataFrame as a Parquet artifact (for tables other runs read back)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        df.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(artifact_file).parent) if "/" in artifact_file else None)


def log_figure(fig, artifact_file: str):
    """Log a matplotlib figure and close it."""
    import matplotlib.pyplot as plt

    mlflow.log_figure(fig, artifact_file)
    plt.close(fig)


def log_dataset(summary: dict, root):
    """Record a dataset's location, split sizes (params) and content digests (tags), and log it as the run's
    dataset input (``distill.spectra_input``)."""
    log_params({k: v for k, v in summary.items() if k.startswith("n_")})
    mlflow.set_tags({"data_dir": str(Path(root).resolve()),
                     **{k: v for k, v in summary.items() if k.startswith("digest_")}})
    log_spectra_input(summary, root)


def find_run(entry_point: str, params: dict | None = None, tags: dict | None = None, accept=None,
             status: str = "FINISHED"):
    """The newest run of ``entry_point`` with this status whose params (as strings) and tags match and for which
    ``accept(run)`` holds (among the newest 200), or None."""
    client = MlflowClient()
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    params, tags = {k: str(v) for k, v in (params or {}).items()}, {k: str(v) for k, v in (tags or {}).items()}
    # MLflow's filter strings cannot escape a quote: values holding one are matched below instead
    clauses = [f"tags.`{ENTRY_POINT_TAG}` = '{entry_point}'", f"attributes.status = '{status}'"]
    clauses += [f"params.`{k}` = '{v}'" for k, v in params.items() if "'" not in v]
    clauses += [f"tags.`{k}` = '{v}'" for k, v in tags.items() if "'" not in v]
    runs = client.search_runs(experiment_ids, " and ".join(clauses), order_by=["attributes.start_time DESC"],
                              max_results=200)
    for run in runs:
        if all(run.data.params.get(k) == v for k, v in params.items()) and \
                all(run.data.tags.get(k) == v for k, v in tags.items()) and (accept is None or accept(run)):
            return run
    return None


def get_run(run_id: str):
    return MlflowClient().get_run(run_id)


RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def is_run_id(text: str) -> bool:
    return bool(RUN_ID.match(str(text)))


def resolve_run(ref: str, entry_point: str, tags: dict | None = None, accept=None):
    """The upstream run: an explicit run id (must be a FINISHED ``entry_point`` run), or ``latest``:
    the newest FINISHED ``entry_point`` run whose tags match and for which ``accept(run)`` holds."""
    if is_run_id(ref):
        try:
            run = get_run(ref)
        except Exception:
            raise DistillError(f"run {ref} not found in {redact(mlflow.get_tracking_uri())}") from None
        if run.info.status != "FINISHED":
            raise DistillError(f"run {ref} is {run.info.status}; only FINISHED runs are used")
        if run.data.tags.get(ENTRY_POINT_TAG) != entry_point:
            raise DistillError(f"run {ref} is a {run.data.tags.get(ENTRY_POINT_TAG)} run, not {entry_point}")
        return run
    if ref != "latest":
        raise DistillError(f"{ref!r}: give a {entry_point} run id or 'latest'")
    run = find_run(entry_point, tags=tags, accept=accept)
    if run is not None:
        return run
    where = ", ".join(f"{k}={v}" for k, v in (tags or {}).items())
    raise DistillError(f"no FINISHED {entry_point} run matches ({where}); run `mlflow run . -e {entry_point}` first "
                       f"or pass its run id")


def download(run_id: str, path: str = "", dst: str | None = None) -> Path:
    """Download an artifact (file or directory) of a run; returns the local path."""
    dst = dst or tempfile.mkdtemp(prefix="distill-")
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=dst))
