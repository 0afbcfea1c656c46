"""The teacher study: which teacher settings make the latent hold log g, and how long a teacher must train.

    mlflow run . -e teacher_study -P data=data/demo --env-manager local
    mlflow run . -e teacher_study -P data=data/demo -P presets=cpu -P losses=supervised -P n_train=500,0 \\
        -P epochs=8 -P snapshots=2,4,8 --env-manager local

Each cell (preset x loss x the teacher's own training-set size, and the no-error teacher) is a nested run whose
steps - train_teacher once, then extract and a probe grid over every stored layer x pooling at each snapshot - are
reused exactly as ``main`` reuses them, and read as ``main`` reads (Ridge alpha on validation, 256 stored segments).
Per snapshot a cell logs, at step = spectra seen: the latent's log g test R^2 (Ridge and LightGBM, layer x pooling
chosen on validation), its Ridge minus raw-flux Ridge with the interval of the paired difference, the denoising gain,
training seconds and the Stage A reading (the latent's R^2 on the error-only residual). The parent logs the table and
the figure. With ``executor=slurm`` its steps are Slurm jobs and the cells that share no untrained network run at once.
"""
from functools import partial
from pathlib import Path

import click
import mlflow
import pandas as pd
import torch

from distill import tracking
from distill.data import open_dataset
from distill.errors import DistillError
from distill.features.pooling import check_pooling, check_segments
from distill.heads import ON_VAL
from distill.residuals import read_residual
from distill.teacher import PRESETS, study, study_table
from distill.teacher.study_table import HEADS
from entrypoints import _options as opt
from entrypoints._cli import number_list, one_line_errors, split_list
from entrypoints._outcome import log_outcome
from entrypoints._steps import Steps
from entrypoints._upstream import download_features, log_ceiling


def epochs_of(run_id: str) -> dict:
    """{key: {epoch: value}} of what a train_teacher run logs per epoch and the study reads."""
    client = mlflow.MlflowClient()
    return {key: {m.step: m.value for m in client.get_metric_history(run_id, key)}
            for key in ("spectra_seen", "train_seconds", "val_snr_noisy", "val_snr_denoised")}


def ridge_test_predictions(probe_run_id: str) -> tuple:
    """(test log g, test predictions) of a probe grid's Ridge cell chosen on validation, rows in test order."""
    frame = pd.read_parquet(tracking.download(probe_run_id, "predictions/test_ridge.parquet")).sort_values("row")
    return frame["y_log_g"].to_numpy(float), frame.iloc[:, -1].to_numpy(float)


def same_untrained_teacher(a: str, b: str) -> bool:
    """Whether two train_teacher runs' epoch-0 snapshots (the untrained networks) hold the same tensors: then their
    untrained controls are one extract and one probe grid, read by both cells."""
    states = [torch.load(tracking.download(run, "snapshots/epoch_0.pt"), weights_only=True) for run in (a, b)]
    return study_table.same_weights(*states)


def snapshot(steps: Steps, cell: study.Cell, teacher: str, per_epoch: dict, epoch: int, data_dir: str,
             reading: dict, residual: dict, raw: tuple, seed: int, untrained=None) -> dict:
    """Extract and probe one snapshot of a cell's teacher (``per_epoch``: its ``epochs_of``; ``reading``: layers,
    poolings, segments, alpha and noise_level; ``raw``: the test labels and raw-flux Ridge's test predictions): the
    row of the study table. ``untrained``: an earlier cell's train_teacher run whose epoch-0 snapshot equals this
    teacher's."""
    source = untrained if epoch == 0 and untrained else teacher
    features = steps(f"extract_epoch_{epoch}", "extract", data=data_dir, teacher=f"{source}@{epoch}",
                     noise_level=reading["noise_level"], direction="fwd", segments=reading["segments"])
    grid_id = steps(f"probe_epoch_{epoch}", "probe", data=data_dir, features=features, layer=reading["layers"],
                    pooling=reading["poolings"], head=",".join(HEADS), labels="log_g", alpha=reading["alpha"],
                    noise_level=reading["noise_level"])
    grid = mlflow.load_table("tables/summary.json", run_ids=[grid_id])
    row = study_table.snapshot_row(cell, epoch, per_epoch, grid, ridge_test_predictions(grid_id), raw,
                                   f"probe {grid_id} and the raw-flux probe")
    local, manifest = download_features(tracking.get_run(features), [row["layer_ridge"]])
    row["latent_r2_residual_ridge"] = study_table.residual_r2(local, manifest, row["layer_ridge"],
                                                              row["pooling_ridge"], residual, reading["alpha"], seed)
    return row | {"teacher_run_id": teacher, "features_run_id": features, "probe_run_id": grid_id}


def run_cells(cells: list, settings: dict) -> list:
    """Each cell a nested run of the study (``settings["parent"]``): train its teacher, read each snapshot; the
    cells share one untrained network (``same_untrained_teacher``), whose epoch 0 the first cell's steps read.
    Returns the rows, each with its ``grid_cell``."""
    rows, first, keep = [], None, settings["keep"]
    for cell in cells:
        with tracking.tracked_run("teacher_study", stage="teacher", mvp="study", nested=True, cell=cell.name,
                                  parent=settings["parent"]):
            mlflow.set_tag("mlflow.runName", cell.name)
            tracking.log_params(cell.params() | settings["log"])
            steps = Steps(settings["force"], settings["tags"], settings["executor"])
            teacher = steps("train_teacher", "train_teacher", data=settings["data_dir"],
                            snapshots=",".join(map(str, keep)), **settings["train"], **cell.params())
            per_epoch = epochs_of(teacher)
            first = first or teacher
            shared = first if first != teacher and 0 in keep and same_untrained_teacher(first, teacher) else None
            reading = study.reading(cell, *settings["read"])
            for epoch in keep:
                row = snapshot(steps, cell, teacher, per_epoch, epoch, settings["data_dir"], reading,
                               settings["residual"], settings["raw"], settings["train"]["seed"], shared)
                tracking.log_metrics(study_table.step_metrics(row), step=int(row["spectra_seen"]))
                rows.append(row | {"grid_cell": cell})
                click.echo(study_table.step_line(row), err=True)
            mlflow.set_tag("reused", str(all(h == "reused" for h in steps.how.values())).lower())
    return rows


@click.command()
@opt.data
@click.option("--presets", default="cpu,mid", show_default=True, help=f"comma list of {', '.join(PRESETS)}")
@click.option("--losses", default="self_supervised,supervised", show_default=True, help="comma list")
@click.option("--n-train", default="0", show_default=True, help="comma list of teacher training-set sizes (0: all)")
@click.option("--epochs", default=2, type=click.IntRange(1), show_default=True, help="training length of each cell")
@click.option("--snapshots", default="0,1,2", show_default=True,
              help="epochs at which the latent is probed (0: the untrained teacher, the control)")
@click.option("--no-error", default=True, type=bool, show_default=True,
              help="add the no-error teacher (input_sigma=false) of the first preset and loss")
@click.option("--layers", default="all", show_default=True, help="comma list, or all (every stored layer)")
@click.option("--poolings", default="global_mean,mean_max,seg_mean_K16,seg_mean_K256", show_default=True,
              help="comma list; a cell a layer cannot give (K256 of a 16-position layer) is left out")
@opt.segments(256)
@opt.alpha(ON_VAL)
@opt.noise_level
@click.option("--batch-size", default=32, type=click.IntRange(2), show_default=True)
@click.option("--lr", default=1e-3, type=click.FloatRange(0, min_open=True), show_default=True)
@opt.seed
@click.option("--force", default=False, type=bool, show_default=True, help="recompute every step")
@opt.executor
@one_line_errors
def main(data, presets, losses, n_train, epochs, snapshots, no_error, layers, poolings, segments, alpha, noise_level,
         batch_size, lr, seed, force, executor):
    grid = study.cells(split_list(presets), split_list(losses), number_list(n_train, "n_train", int), no_error)
    keep = number_list(snapshots, "snapshots", int)
    if not keep or keep[-1] > epochs:
        raise DistillError(f"snapshots={snapshots}: epochs between 0 (the untrained teacher) and epochs={epochs}")
    check_segments(segments)
    for name in split_list(poolings):
        check_pooling(name, segments, segments=segments)
    data_dir = str(Path(data).resolve())
    ds = open_dataset(data_dir)
    with tracking.tracked_run("teacher_study", stage="teacher", mvp="study") as run:
        code = tracking.get_run(run.info.run_id).data.tags.get("mlflow.source.git.commit")
        summary = ds.summary()
        tracking.log_dataset(summary, data_dir)
        steps = Steps(force, ({"mlflow.source.git.commit": code} if code else {}) |
                      {k: v for k, v in summary.items() if k.startswith("digest_")}, executor)
        raw_id = steps("probe_raw", "probe", data=data_dir, input="noisy_flux", head=",".join(HEADS), labels="log_g",
                       alpha=alpha, noise_level=noise_level)
        raw = {h: tracking.get_run(raw_id).data.metrics[f"best_test_r2_log_g_{h}"] for h in HEADS}
        raw_pairs = ridge_test_predictions(raw_id)
        decomposition = steps("decompose_error", "decompose_error", data=data_dir, features="none", alpha=alpha,
                              noise_level=noise_level)
        a1 = tracking.get_run(decomposition)
        error_only = a1.data.metrics[f"error_{a1.data.tags['a1_head']}_test_r2_log_g"]
        residual = read_residual(tracking.download(decomposition, "residual.parquet"))
        ceiling = log_ceiling(summary, noise_level)
        settings = dict(force=force, tags=steps.tags, executor=executor, parent=run.info.run_id, data_dir=data_dir,
                        keep=keep, train=dict(epochs=epochs, noise_level=noise_level, batch_size=batch_size, lr=lr,
                                              seed=seed),
                        log=dict(epochs=epochs, snapshots=snapshots, layers=layers, poolings=poolings,
                                 segments=segments, alpha=alpha),
                        read=(layers, poolings, segments, alpha, noise_level), residual=residual, raw=raw_pairs)
        groups = {}  # cells sharing an untrained network (preset, input_sigma) run in order; groups run at once
        for cell in grid:
            groups.setdefault((cell.preset, cell.input_sigma), []).append(cell)
        done = steps.concurrently(*[partial(run_cells, group, settings) for group in groups.values()])
        rows = sorted((row for group in done for row in group), key=lambda row: grid.index(row.pop("grid_cell")))
        log_outcome(study_table.conclude(rows, raw, error_only, ceiling))


if __name__ == "__main__":
    main()
