"""Train the blind-spot teacher on a dataset (the `cpu` preset trains in minutes on 2 cores).

    mlflow run . -e train_teacher -P data=data/sim -P preset=cpu -P epochs=10 --env-manager local
    mlflow run . -e train_teacher -P train_subset=1000 -P snapshots=2,4 --env-manager local  # epochs 2, 4 kept

Per epoch it logs ``spectra_seen`` and ``train_seconds`` (cumulative, this process's device time); a snapshot
``snapshots/epoch_{k}.pt`` (k = 0: the initial weights) is read elsewhere as ``teacher=<run id>@<k>``.
"""
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import click
import mlflow
import numpy as np
import torch

from distill import registry, tracking
from distill.data import ArraySpectra, check_train_size, open_dataset
from distill.device import pick_device
from distill.errors import DistillError
from distill.teacher import PRESETS, BlindSpotUNet1D, figures, save
from distill.teacher.train import LOSSES, TeacherTrainer, TrainSettings
from entrypoints import _checkpoints as checkpoints
from entrypoints import _options as opt
from entrypoints._cli import number_list, one_line_errors, progress_bar


@click.command()
@click.option("--data", default="data/sim", show_default=True, help="dataset directory")
@click.option("--preset", default="cpu", type=click.Choice(sorted(PRESETS)), show_default=True)
@click.option("--num-layers", default=0, type=click.IntRange(0), show_default=True, help="0: the preset's")
@click.option("--embed-dim", default=0, type=click.IntRange(0), show_default=True, help="0: the preset's")
@click.option("--kernel-size", default=0, type=click.IntRange(0), show_default=True, help="odd; 0: the preset's")
@click.option("--use-bn", default="preset", type=click.Choice(["preset", "true", "false"]), show_default=True)
@click.option("--input-sigma", default="preset", type=click.Choice(["preset", "true", "false"]), show_default=True,
              help="false: the no-error teacher of ablation 4.1")
@click.option("--loss", default="self_supervised", type=click.Choice(LOSSES), show_default=True)
@click.option("--noise-level", default=1.0, type=click.FloatRange(0, opt.MAX_NOISE_LEVEL, min_open=True),
              show_default=True)
@click.option("--epochs", default=8, type=click.IntRange(1), show_default=True)
@click.option("--train-subset", default=0, type=click.IntRange(0), show_default=True,
              help="train on the first n spectra of the train split (0: all)")
@click.option("--snapshots", default="none", show_default=True,
              help="comma list of epochs whose weights to keep (0: the initial weights)")
@click.option("--batch-size", default=32, type=click.IntRange(2), show_default=True)
@click.option("--lr", default=1e-3, type=click.FloatRange(0, min_open=True), show_default=True)
@click.option("--seed", default=42, type=int, show_default=True)
@click.option("--checkpoint", default="none", show_default=True, help="last.pt path or train_teacher run id to resume")
@one_line_errors
def main(data, preset, num_layers, embed_dim, kernel_size, use_bn, input_sigma, loss, noise_level, epochs, train_subset,
         snapshots, batch_size, lr, seed, checkpoint):
    overrides = {k: v for k, v in dict(num_layers=num_layers, embed_dim=embed_dim,
                                       kernel_size=kernel_size).items() if v}
    overrides |= {k: v == "true" for k, v in dict(use_bn=use_bn, input_sigma=input_sigma).items() if v != "preset"}
    config = replace(PRESETS[preset], **overrides)
    if config.kernel_size % 2 == 0:
        raise DistillError(f"kernel_size={config.kernel_size}: must be odd")
    keep = [] if snapshots == "none" else number_list(snapshots, "snapshots", int)
    if any(k > epochs for k in keep):
        raise DistillError(f"snapshots={snapshots}: epochs between 0 (the initial weights) and epochs={epochs}")
    torch.manual_seed(seed)
    device = pick_device()
    ds = open_dataset(data)
    if train_subset:
        check_train_size(train_subset, f"train_subset={train_subset}")
    if train_subset > len(ds["train"]):
        raise DistillError(f"train_subset={train_subset} exceeds the training split ({len(ds['train'])})")
    train = ArraySpectra(*ds["train"].read(0, train_subset)) if train_subset else ds["train"]
    if ds["train"].n_pixels % 2 ** (config.num_layers - 1):
        raise DistillError(f"{ds['train'].n_pixels} pixels are not divisible by 2^{config.num_layers - 1} "
                           f"(num_layers={config.num_layers})")
    with tracking.tracked_run("train_teacher", stage="teacher", preset=preset,
                              input_sigma=str(config.input_sigma).lower()):
        tracking.log_params(dict(data=data, preset=preset, loss=loss, noise_level=noise_level, epochs=epochs,
                                 train_subset=train_subset, snapshots=snapshots, batch_size=batch_size, lr=lr,
                                 seed=seed, checkpoint=checkpoint))
        tracking.log_params({f"arch_{k}": v for k, v in config.as_dict().items()})
        summary = ds.summary()
        tracking.log_dataset(summary, data)
        model = BlindSpotUNet1D(config)
        mlflow.log_metric("n_parameters", sum(p.numel() for p in model.parameters() if p.requires_grad))
        settings = TrainSettings(loss=loss, noise_level=noise_level, epochs=epochs, batch_size=batch_size,
                                 lr=lr, seed=seed)
        trainer = TeacherTrainer(model, train, ds["val"], settings, device)
        run_record = checkpoints.record("train_teacher", summary, noise_level, seed,
                                        config.as_dict() | {"loss": loss, "train_subset": train_subset})
        work = Path(tempfile.mkdtemp(prefix="teacher-"))

        def snapshot():
            if trainer.state.epoch in keep:
                save(model, work / f"epoch_{trainer.state.epoch}.pt")
                mlflow.log_artifact(str(work / f"epoch_{trainer.state.epoch}.pt"), "snapshots")

        if checkpoint != "none":
            resume(trainer, checkpoints.load(checkpoint, run_record, device, settings), keep, snapshots)
            snapshot()  # the weights it resumes from, if asked
        if 0 in keep and trainer.state.epoch == 0:  # the untrained network: the control of every snapshot
            tracking.log_metrics(trainer.validate() | {"spectra_seen": 0, "train_seconds": 0}, step=0)
            snapshot()
        t0, seen = time.time(), 0
        with progress_bar((epochs - trainer.state.epoch) * len(train), "train teacher") as bar:
            while trainer.state.epoch < epochs:
                metrics, _ = trainer.step(bar.update)
                seen += len(train)
                tracking.log_metrics(metrics, step=trainer.state.epoch)
                bar.set_postfix(val_loss=f"{metrics['val_loss']:.4f}", snr=f"{metrics['val_snr_denoised']:.1f}")
                snapshot()
                checkpoints.log_last(trainer.checkpoint(), run_record, work)
        if seen:
            tracking.log_metrics({"train_spectra_per_second": seen / (time.time() - t0)})
        model.load_state_dict(trainer.state.best_model)
        best = min(trainer.state.history, key=lambda h: h["val_loss"])
        tracking.log_metrics({f"best_{k}": v for k, v in best.items()})
        flux, error, noisy = trainer.val_data
        denoised, _, _ = trainer.predict(noisy, error)
        params = ds["val"].params.iloc[: len(flux)]
        tracking.log_figure(figures.loss_curves(trainer.state.history), "figures/loss_curves.png")
        tracking.log_figure(figures.dwarf_and_giant(ds["val"].wave, flux, noisy, denoised, params["log_g"].to_numpy(),
                                                    params["T_eff"].to_numpy()), "figures/denoised_dwarf_giant.png")
        model = model.cpu().eval()
        save(model, work / "teacher.pt")
        mlflow.log_artifact(str(work / "teacher.pt"))
        example = model.inputs(torch.as_tensor(noisy[:2]), torch.as_tensor(error[:2] * np.float32(noise_level)))
        registry.log_model(model, example.numpy())  # a torch.export program: loads without this package
        click.echo(f"teacher: val S/N {best['val_snr_noisy']:.1f} -> {best['val_snr_denoised']:.1f} "
                   f"(Ca II triplet {best['val_snr_denoised_ca_triplet']:.1f}); weights in artifact teacher.pt")


def resume(trainer: TeacherTrainer, state: dict, keep: list, snapshots: str):
    """Restore a checked checkpoint and log the history it carries; refuse snapshots of epochs it trained before."""
    done = state["state"]["epoch"]
    if any(k < done for k in keep):
        raise DistillError(f"snapshots={snapshots}: the checkpoint resumes after epoch {done}; the weights of "
                           f"earlier epochs are not in it (give epochs >= {done})")
    trainer.restore(state)
    click.echo(f"resuming after epoch {trainer.state.epoch}", err=True)
    for step, metrics in enumerate(trainer.state.history, 1):
        tracking.log_metrics(metrics, step=step)


if __name__ == "__main__":
    main()
