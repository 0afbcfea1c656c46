"""Finding and fetching upstream runs' artifacts, checked against the data in hand."""
import tempfile
from pathlib import Path

from distill import tracking
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
