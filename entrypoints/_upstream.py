"""Upstream runs (features, teachers, students, residuals, the ceiling), found, fetched and checked against the data
in hand; the no-error teacher is trained (``_steps.launch``) when none exists."""
import functools
import tempfile
from pathlib import Path

import click
import mlflow
import pandas as pd

from distill import fisher, registry, tracking
from distill.data import SPLITS
from distill.errors import DistillError
from distill.features import store
from distill.residuals import read_residual
from distill.student.model import load_predictor
from distill.teacher import load, matched
from entrypoints._steps import launch


def features_run(ref: str, data: str, noise_level: float, digests: dict):
    """The extract run to read, checked against this dataset and noise level."""
    data_dir = str(Path(data).resolve())
    same_noise = lambda r: float(r.data.params.get("noise_level", "nan")) == noise_level  # noqa: E731
    run = tracking.resolve_run(ref, "extract", {"data_dir": data_dir}, accept=same_noise)
    other_digest = any(run.data.tags.get(k) != v for k, v in digests.items() if k.startswith("digest_"))
    if run.data.tags.get("data_dir") != data_dir or other_digest:
        raise DistillError(f"extract run {run.info.run_id} was made from another dataset "
                           f"({run.data.tags.get('data_dir')})")
    if not same_noise(run):
        raise DistillError(f"extract run {run.info.run_id} has noise_level {run.data.params.get('noise_level')}, not "
                           f"{noise_level}")
    return run


def download_features(run, layers, denoised_if_stored=False) -> tuple:
    """Download the manifest and needed layer files of an extract run (and its denoised flux, if asked and stored)."""
    dst = tempfile.mkdtemp(prefix="features-")
    local = tracking.download(run.info.run_id, "features/manifest.json", dst).parent
    manifest = store.read_manifest(local)
    for name in list(layers) + (["denoised"] if denoised_if_stored and manifest.get("denoised") else []):
        if name not in manifest["layers"] and name != "denoised":
            raise DistillError(f"layer {name!r} was not extracted in run {run.info.run_id}; it has "
                               f"{', '.join(manifest['layers'])}")
        path = tracking.download(run.info.run_id, f"features/{name}.parquet", dst)
        assert path.parent == local, (path, local)
    return local, manifest


@functools.cache
def _download_fisher(run_id: str) -> pd.DataFrame:
    return pd.read_parquet(tracking.download(run_id, "fisher.parquet"))


def fisher_table(summary: dict) -> tuple | None:
    """(run id, per-spectrum Fisher table) of the newest ``fisher`` run on this test file, or None."""
    run = tracking.find_run("fisher", params={"split": "test"}, tags={"digest_test": summary.get("digest_test", "-")})
    return None if run is None else (run.info.run_id, _download_fisher(run.info.run_id))


def ceilings(summary: dict, label: str, levels) -> pd.Series | None:
    """The prior-aware information ceiling of ``label`` at each noise level (logged as
    ``ceiling_prior_r2_{label}_noise_{level}``, tag ``fisher_run_id``); None without a fisher run."""
    if (found := fisher_table(summary)) is None:
        return None
    ceiling = pd.Series({lv: fisher.ceiling_at(found[1], lv, label)["prior"] for lv in levels})
    mlflow.set_tag("fisher_run_id", found[0])
    tracking.log_metrics({f"ceiling_prior_r2_{label}_noise_{lv:g}": c for lv, c in ceiling.items()})
    return ceiling


def log_ceiling(summary: dict, noise_level: float, label: str = "log_g") -> float | None:
    """Log the prior-aware ceiling (metric ``ceiling_prior_r2_{label}``, tag ``fisher_run_id``) and return it;
    None, with a hint, when no fisher run covers this test split (not simulated, or not run yet)."""
    found = fisher_table(summary)
    if found is None:
        click.echo("information ceiling: none (for simulated data, `mlflow run . -e fisher -P data=...` computes it)",
                   err=True)
        return None
    ceiling = fisher.ceiling_at(found[1], noise_level, label)["prior"]
    mlflow.set_tag("fisher_run_id", found[0])
    tracking.log_metrics({f"ceiling_prior_r2_{label}": ceiling})
    return ceiling


def resolve_teacher(teacher: str, data_dir: str):
    """(model, reference): a checkpoint path, a train_teacher run id (``<run id>@<k>``: its snapshot after epoch
    k), a registered version (``models:/name@alias`` or ``/version``: its run), or 'latest' for this dataset."""
    path = Path(teacher := registry.run_ref(teacher, "teacher"))
    if path.is_file():
        return load(path), {"teacher_path": str(path.resolve())}
    ref, _, epoch = teacher.partition("@")
    if not (tracking.is_run_id(ref) or ref == "latest") or (epoch and not epoch.isdigit()):
        raise DistillError(f"teacher={teacher}: not a checkpoint file, a train_teacher run id (optionally @epoch), "
                           "models:/NAME@ALIAS or 'latest'")
    run = tracking.resolve_run(ref, "train_teacher", {"data_dir": str(Path(data_dir).resolve())})
    artifact = f"snapshots/epoch_{int(epoch)}.pt" if epoch else "teacher.pt"
    try:
        local = tracking.download(run.info.run_id, artifact)
    except Exception:
        raise DistillError(f"teacher={teacher}: run {run.info.run_id} has no {artifact} (see its snapshots "
                           "parameter)") from None
    return load(local), {"teacher_run_id": run.info.run_id} | ({"teacher_epoch": str(int(epoch))} if epoch else {})


def teacher_of(teacher: str, features, data: str):
    """(model, reference) for teacher=features (the one that made the extract run ``features`` = (run, manifest)),
    a path, a run id or latest."""
    if teacher != "features":
        model, ref = resolve_teacher(teacher, data)
        if features is not None and model.config.as_dict() != features[1]["teacher_config"]:
            raise DistillError(f"teacher {teacher} is not the teacher of extract run {features[0].info.run_id} "
                               "(other architecture)")
        return model, ref
    if features is None:
        raise DistillError("teacher=features needs an extract run; pass features=<run id> or teacher=<path|run "
                           "id|latest>")
    run, manifest = features
    if manifest.get("teacher_run_id"):
        return (load(tracking.download(manifest["teacher_run_id"], "teacher.pt")),
                {"teacher_run_id": manifest["teacher_run_id"]})
    if manifest.get("teacher_path") and Path(manifest["teacher_path"]).is_file():
        return load(manifest["teacher_path"]), {"teacher_path": manifest["teacher_path"]}
    raise DistillError(f"extract run {run.info.run_id} does not say where its teacher is; pass teacher=<path|run id>")


def residual_target(ref: str, data: str, label: str, n: dict) -> dict:
    """Stage B target: the error-only residual r per split from a decompose_error run (tagged on the active run)."""
    run = tracking.resolve_run(ref, "decompose_error", {"data_dir": str(Path(data).resolve())},
                               accept=lambda r: r.data.params.get("label", "log_g") == label)
    try:
        out = read_residual(tracking.download(run.info.run_id, "residual.parquet"))
    except mlflow.exceptions.MlflowException:
        raise DistillError(f"decompose_error run {run.info.run_id} stored no residual.parquet; "
                           "run decompose_error again") from None
    if any(len(out[s]) != n[s] for s in SPLITS):
        raise DistillError(f"decompose_error run {run.info.run_id} has residuals for another dataset")
    mlflow.set_tag("residual_run_id", run.info.run_id)
    return out


def student(ref: str, data: str, noise_level: float, device, label_free: bool = False) -> tuple:
    """(predictor, run) of a distill_student run id, registered version (``models:/``) or latest, trained on this data
    and noise level (and without labels, ``label_free``); the predictor is rebuilt from plain tensors
    (``student_predictor.pt``), never unpickled."""
    data_dir, ref = str(Path(data).resolve()), registry.run_ref(ref, "label_free_student" if label_free else "student")
    run = tracking.resolve_run(ref, "distill_student", {"data_dir": data_dir} | ({"label_free": "true"}
                                                                                 if label_free else {}))
    if label_free and run.data.tags.get("label_free") != "true":
        raise DistillError(f"student run {run.info.run_id} was trained with labels (lambda_y "
                           f"{run.data.params.get('lambda_y')}); label efficiency needs one distilled with lambda_y=0")
    if run.data.tags.get("data_dir") != data_dir:
        raise DistillError(f"student run {run.info.run_id} was trained on another dataset "
                           f"({run.data.tags.get('data_dir')})")
    if float(run.data.params.get("noise_level", "nan")) != noise_level:
        raise DistillError(f"student run {run.info.run_id} has noise_level {run.data.params.get('noise_level')}, "
                           f"not {noise_level}")
    try:
        path = tracking.download(run.info.run_id, "student_predictor.pt")
    except mlflow.exceptions.MlflowException:
        raise DistillError(f"student run {run.info.run_id} stored no student_predictor.pt; "
                           "run distill_student again") from None
    try:
        predictor = load_predictor(path, map_location=device)
    except (ValueError, RuntimeError) as e:
        raise DistillError(f"student run {run.info.run_id}: {e}") from None
    mlflow.set_tag("label_free_student_run_id" if label_free else "student_run_id", run.info.run_id)
    return predictor, run


def no_error_teacher(ref: str, teacher, data: str, noise_level: float, manifest: dict, epochs: int = 0):
    """The teacher without the sigma input, the same train_teacher run as the teacher's (the extract ``manifest``'s)
    but for input_sigma (``matched``): a run id (one that differs refused), or auto (the newest match, else one
    trained as the teacher was); a checkpoint path, or any for a teacher with no run, is not checked
    (``matched.Control``, with ``epochs``). Returns (model, run id or None)."""
    own, ref = manifest.get("teacher_run_id"), registry.run_ref(ref, "no_error_teacher")
    if Path(ref).is_file() or not own:
        click.echo(f"no_error_teacher={ref}: {'a checkpoint file' if own else 'the teacher has no train_teacher run'}; "
                   "its match with the teacher in every training parameter but input_sigma cannot be checked", err=True)
    if Path(ref).is_file():
        run, model = None, load(ref)
    else:
        control = matched.Control(matched.run_record(tracking.get_run(own)) if own else None, teacher.config.as_dict(),
                                  str(Path(data).resolve()), tracking.source_digest(), noise_level, epochs, own,
                                  manifest.get("teacher_epoch"))
        run = (tracking.find_run("train_teacher", tags=control.tags, accept=control.accept) if ref == "auto"
               else tracking.resolve_run(ref, "train_teacher"))
        if run is None:
            click.echo(f"training a teacher without sigma ({control.describe()})", err=True)
            run = tracking.get_run(launch("train_teacher", control.params(), "no_error_teacher", child=False))
        control.check(run)
        model = load(tracking.download(run.info.run_id, "teacher.pt"))
    if model.config.input_sigma:
        raise DistillError(f"no_error_teacher={ref}: that teacher reads sigma; give one trained with input_sigma=false")
    return model, run and run.info.run_id
