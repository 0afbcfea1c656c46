"""Finding and fetching upstream runs' artifacts, checked against the data in hand."""
import functools
import tempfile
from pathlib import Path

import click
import mlflow
import pandas as pd

from distill import fisher, tracking
from distill.errors import DistillError
from distill.features import store


def features_run(ref: str, data: str, noise_level: float, digests: dict):
    """The extract run to read, checked against this dataset and noise level."""
    data_dir = str(Path(data).resolve())
    same_noise = lambda r: float(r.data.params.get("noise_level", "nan")) == noise_level  # noqa: E731
    run = tracking.resolve_run(ref, "extract", {"data_dir": data_dir}, accept=same_noise)
    if run.data.tags.get("data_dir") != data_dir or any(run.data.tags.get(k) != v for k, v in digests.items() if k.startswith("digest_")):
        raise DistillError(f"extract run {run.info.run_id} was made from another dataset ({run.data.tags.get('data_dir')})")
    if not same_noise(run):
        raise DistillError(f"extract run {run.info.run_id} has noise_level {run.data.params.get('noise_level')}, not {noise_level}")
    return run


def download_features(run, layers, denoised_if_stored=False) -> tuple:
    """Download the manifest and the needed layer files of an extract run (and its denoised flux, if asked and stored)."""
    dst = tempfile.mkdtemp(prefix="features-")
    local = tracking.download(run.info.run_id, "features/manifest.json", dst).parent
    manifest = store.read_manifest(local)
    for name in list(layers) + (["denoised"] if denoised_if_stored and manifest.get("denoised") else []):
        if name not in manifest["layers"] and name != "denoised":
            raise DistillError(f"layer {name!r} was not extracted in run {run.info.run_id}; it has {', '.join(manifest['layers'])}")
        path = tracking.download(run.info.run_id, f"features/{name}.parquet", dst)
        assert path.parent == local, (path, local)
    return local, manifest


def resolve_checkpoint(checkpoint: str, entry_point: str) -> Path:
    """A local ``last.pt``, or a run id of ``entry_point`` whose ``checkpoints/last.pt`` is resumed."""
    if tracking.is_run_id(checkpoint):
        return tracking.download(checkpoint, "checkpoints/last.pt")
    if not Path(checkpoint).is_file():
        raise DistillError(f"checkpoint={checkpoint}: neither a file nor a {entry_point} run id")
    return Path(checkpoint)


@functools.cache
def _download_fisher(run_id: str) -> pd.DataFrame:
    return pd.read_parquet(tracking.download(run_id, "fisher.parquet"))


def fisher_table(summary: dict) -> tuple | None:
    """(run id, per-spectrum Fisher table) of the newest ``fisher`` run on this test file, or None."""
    run = tracking.find_run("fisher", params={"split": "test"}, tags={"digest_test": summary.get("digest_test", "-")})
    return None if run is None else (run.info.run_id, _download_fisher(run.info.run_id))


def log_ceiling(summary: dict, noise_level: float, label: str = "log_g") -> float | None:
    """Log the prior-aware ceiling (metric ``ceiling_prior_r2_{label}``, tag ``fisher_run_id``) and return it;
    None, with a hint, when no fisher run covers this test split (not simulated, or not run yet)."""
    found = fisher_table(summary)
    if found is None:
        click.echo("information ceiling: none (for simulated data, `mlflow run . -e fisher -P data=...` computes it)", err=True)
        return None
    ceiling = fisher.ceiling_at(found[1], noise_level, label)["prior"]
    mlflow.set_tag("fisher_run_id", found[0])
    tracking.log_metrics({f"ceiling_prior_r2_{label}": ceiling})
    return ceiling
