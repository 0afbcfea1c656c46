"""Stages 2, 3 and B: distil the teacher latent into a flux-only student and judge it against baselines.

    mlflow run . -e distill_student -P data=data/sim --env-manager local
    mlflow run . -e distill_student -P lambda_z=0 -P features=none       # supervised end-to-end baseline
    mlflow run . -e distill_student -P input=flux+error                  # Stage 2.3 student-plus
    mlflow run . -e distill_student -P target=residual                   # Stage B (needs decompose_error)
"""
import shutil
import tempfile
import time
from pathlib import Path

import click
import mlflow
import numpy as np
import torch

from distill import registry, tracking
from distill.data import LABELS, SPLITS, open_dataset
from distill.device import pick_device
from distill.heads import SHARED_HEADS
from distill.student import figures as student_figures
from distill.student.judge import judge
from distill.student.model import INPUTS, STUDENTS, StudentPredictor, save_predictor
from distill.student.session import ExtractedFeatures, start
from distill.student.settings import MODES, StudentRunSettings
from distill.student.train import DistillSettings, DistillTrainer
from entrypoints import _checkpoints as checkpoints
from entrypoints import _options as opt
from entrypoints import _upstream as upstream
from entrypoints._cli import one_line_errors, progress_bar, split_list
from entrypoints._outcome import log_outcome


@click.command()
@opt.data
@click.option("--features", default="latest", show_default=True,
              help="extract run id, latest, or none (no teacher latent)")
@opt.teacher
@opt.latent()
@click.option("--student", default="mlp", type=click.Choice(STUDENTS), show_default=True)
@click.option("--hidden", default="default", show_default=True,
              help="mlp widths / cnn channels per stage / starnet dense widths, comma list")
@click.option("--input", "input_", default="flux", type=click.Choice(INPUTS), show_default=True)
@click.option("--target", default="log_g", show_default=True,
              help=f"a label ({', '.join(LABELS)}) or residual (Stage B)")
@click.option("--residual", default="latest", show_default=True,
              help="decompose_error run id or latest (target=residual)")
@click.option("--teacher-mode", default="offline", type=click.Choice(MODES), show_default=True)
@click.option("--lambda-z", default=1.0, type=click.FloatRange(0), show_default=True,
              help="latent loss weight; 0: supervised")
@click.option("--lambda-y", default=1.0, type=click.FloatRange(0), show_default=True,
              help="target loss weight of the head")
@click.option("--epochs", default=20, type=click.IntRange(1), show_default=True)
@click.option("--batch-size", default=128, type=click.IntRange(2), show_default=True)
@click.option("--lr", default=1e-4, type=click.FloatRange(0, min_open=True), show_default=True)
@click.option("--patience", default=5, type=click.IntRange(1), show_default=True, help="epochs without val improvement")
@opt.noise_level
@click.option("--heads", "head_names", default=",".join(SHARED_HEADS), show_default=True,
              help="heads on z_s, z*, raw flux")
@opt.labels
@opt.head_settings
@opt.seed
@click.option("--checkpoint", default="none", show_default=True,
              help="last.pt path or distill_student run id to resume")
@one_line_errors
def main(data, features, teacher, layer, pooling, direction, student, hidden, input_, target, residual, teacher_mode,
         lambda_z, lambda_y, epochs, batch_size, lr, patience, noise_level, head_names, labels, alpha, num_leaves,
         n_estimators, seed, checkpoint):
    training = DistillSettings(lambda_z=lambda_z, lambda_y=lambda_y, epochs=epochs, batch_size=batch_size, lr=lr,
                               noise_level=noise_level, input=input_, patience=patience, seed=seed)
    settings = StudentRunSettings(features, layer, pooling, direction, student, hidden, target, teacher_mode,
                                  tuple(split_list(head_names)), tuple(split_list(labels)),
                                  opt.head_params(alpha, num_leaves, n_estimators, seed), training)
    settings.check()
    torch.manual_seed(seed)
    device, ds = pick_device(), open_dataset(data, labels=LABELS)
    with tracking.tracked_run("distill_student", **settings.tags()):
        summary = ds.summary()
        tracking.log_dataset(summary, data)
        residual_r = (upstream.residual_target(residual, data, "log_g", {s: len(ds[s]) for s in SPLITS})
                      if target == "residual" else None)
        extract = stored = model = None
        if settings.reads_features:
            run = upstream.features_run(features, data, noise_level, summary)
            mlflow.set_tag("features_run_id", run.info.run_id)
            local, manifest = upstream.download_features(run, sorted(set(layer.split("+"))), denoised_if_stored=True)
            extract, stored = (run, manifest), ExtractedFeatures(run.info.run_id, local, manifest)
        if settings.distilling:
            model, ref = upstream.teacher_of(teacher, extract, data)
            model = model.to(device).eval().requires_grad_(False)
            mlflow.set_tags(ref)
        session = start(settings, ds, residual_r, stored, model, device)
        trainer = session.trainer
        tracking.log_params(session.params())
        tracking.log_metrics({"n_parameters": sum(p.numel() for p in trainer.student.parameters())})
        run_record = checkpoints.record("distill_student", summary, noise_level, seed, session.record())
        if checkpoint != "none":
            resume(trainer, checkpoints.load(checkpoint, run_record, device, trainer.s))
        work = Path(tempfile.mkdtemp(prefix="student-"))
        train(trainer, student, work, run_record)
        ceiling = upstream.log_ceiling(summary, noise_level, target) if target in LABELS else None
        log_outcome(judge(session, ceiling))
        log_student(trainer, work)
        shutil.rmtree(work, ignore_errors=True)


def resume(trainer: DistillTrainer, state: dict):
    """Restore a checked checkpoint's weights, optimiser and history, and log the history it carries."""
    trainer.restore(state)
    click.echo(f"resuming after epoch {trainer.epoch}", err=True)
    for step, m in enumerate(trainer.history, 1):
        tracking.log_metrics(m, step=step)


def train(trainer: DistillTrainer, name: str, work: Path, run_record: dict):
    """Fit with a progress bar; log each epoch's metrics and checkpoint; then timings and the curves."""
    t0, start_epoch, n = time.time(), trainer.epoch, len(trainer.spectra["train"])

    def on_epoch(m):
        tracking.log_metrics(m, step=trainer.epoch)
        bar.set_postfix({"val_loss": f"{m['val_loss']:.4f}"} |
                        ({"cos": f"{m['epoch_val_latent_cosine']:.3f}"} if "epoch_val_latent_cosine" in m else {}))
        checkpoints.log_last(trainer.checkpoint(), run_record, work)

    with progress_bar(max(0, trainer.s.epochs - trainer.epoch) * n, f"distil {name}") as bar:
        trainer.fit(bar.update, on_epoch)
    if trainer.epoch > start_epoch:
        seconds = time.time() - t0
        tracking.log_metrics({"train_seconds": seconds, "epochs_run": trainer.epoch - start_epoch,
                              "train_spectra_per_second": (trainer.epoch - start_epoch) * n / seconds,
                              "teacher_forward_seconds": trainer.teacher_seconds})
    tracking.log_figure(student_figures.training_curves(trainer.history), "figures/training_curves.png")


def log_student(trainer: DistillTrainer, work: Path):
    """The student: the MLflow PyTorch model for serving (raw noisy flux [and error] in; target and z_s out), and
    the same predictor as plain tensors (``student_predictor.pt``, what the pipeline loads) and ``student.pt``."""
    predictor = StudentPredictor(trainer.student, trainer.x_mean, trainer.x_std, trainer.e_mean, trainer.e_std,
                                 trainer.y_mean, trainer.y_std).cpu().eval()
    noisy, error = trainer.fixed_batch("test", 0, 2)
    channels = [noisy] + ([error] if trainer.s.input == "flux+error" else [])
    registry.log_model(predictor, np.stack(channels, axis=1))  # a torch.export program: loads without this package
    save_predictor(predictor, work / "student_predictor.pt")
    torch.save(trainer.student.state_dict(), work / "student.pt")
    for name in ("student_predictor.pt", "student.pt"):
        mlflow.log_artifact(str(work / name))


if __name__ == "__main__":
    main()
