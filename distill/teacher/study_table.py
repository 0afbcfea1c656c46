"""The teacher study's table: one row per cell and snapshot (the latent's log g reading against raw flux), and the
study's conclusion (the best teacher on validation, how far each cell is from the raw-flux line)."""
import pandas as pd
import torch

from .. import decompose, intervals, probe
from ..outcome import Outcome
from . import figures, study

HEADS = ("ridge", "lightgbm")
STEP_KEYS = ("latent_", "snr_", "val_snr", "train_seconds")  # row columns logged per snapshot (step: spectra seen)
SHOWN = ["cell", "epoch", "spectra_seen", "train_seconds", "snr_gain", "latent_r2_ridge", "layer_ridge",
         "pooling_ridge", "vs_raw_ridge", "latent_r2_lightgbm", "latent_r2_residual_ridge"]


def same_weights(a: dict, b: dict) -> bool:
    """Whether two state dicts hold the same tensors (two untrained teachers that are one network)."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def row_gain(row) -> intervals.Interval:
    """A study row's latent-minus-raw-flux Ridge difference with its interval."""
    return intervals.Interval.read(dict(row), "latent_minus_raw_ridge")


def residual_r2(local, manifest: dict, layer: str, pooling: str, residual: dict, alpha, seed: int) -> float:
    """Stage A reading: test R^2 of a Ridge from the latent (layer, pooling) of an extract run's downloaded features
    to the error-only residual."""
    fs = decompose.on_target(probe.latent_features(local, manifest, layer, pooling, "fwd"), residual, "residual")
    return probe.fit_label(fs, "residual", "ridge", alpha=alpha, seed=seed).scores["test_r2_residual"]


def snapshot_row(cell: study.Cell, epoch: int, per_epoch: dict, grid: pd.DataFrame, latent: tuple, raw: tuple,
                 runs: str) -> dict:
    """A row of the study table: the cell, the snapshot's training record (``per_epoch``: {key: {epoch: value}}),
    the best (layer, pooling) on validation of the probe grid's summary ``grid`` per head, and the latent's Ridge
    minus raw-flux Ridge as a paired difference (``latent``, ``raw``: test labels and test predictions; ``runs``
    names them in errors)."""
    row = {"cell": cell.name, **cell.params(), "epoch": epoch}
    row |= {key: values[epoch] for key, values in per_epoch.items()}
    row["snr_gain"] = row["val_snr_denoised"] / row["val_snr_noisy"]
    for head in HEADS:
        best = study.best_on_validation(grid, head)
        row |= {f"latent_r2_{head}": best["test_r2_log_g"], f"latent_val_r2_{head}": best["val_r2_log_g"],
                f"layer_{head}": best["layer"], f"pooling_{head}": best["pooling"]}
    gain = intervals.delta_of_runs(*latent, *raw, runs)
    return row | gain.keyed("latent_minus_raw_ridge") | {"vs_raw_ridge": gain.verdict()}


def step_line(row: dict) -> str:
    """What one snapshot read, in a line."""
    return (f"{row['cell']} epoch {row['epoch']}: latent -> log g test R^2 ridge {row['latent_r2_ridge']:.3f} "
            f"({row['layer_ridge']}, {row['pooling_ridge']}), minus raw flux {row_gain(row).text()} "
            f"({row['vs_raw_ridge']}), lightgbm {row['latent_r2_lightgbm']:.3f}")


def conclude(rows: list, raw: dict, error_only: float, ceiling: float | None) -> Outcome:
    """The study table (rows with each cell's reach of half and all of the raw-flux Ridge), its figure, the best
    teacher chosen on validation, and the lines to print; ``raw``: raw-flux test R^2 per head."""
    table = pd.DataFrame(rows)
    target = raw["ridge"] / 2
    table = table.merge(study.reach_table(table, {"half_raw_ridge": target, "raw_ridge": raw["ridge"]}),
                        on="cell", how="left")
    best = table.loc[table["latent_val_r2_ridge"].idxmax()]  # chosen on validation
    ridge, over_raw = best["latent_r2_ridge"], best["latent_r2_ridge"] / raw["ridge"]
    metrics = {"raw_r2_ridge": raw["ridge"], "raw_r2_lightgbm": raw["lightgbm"], "error_only_r2": error_only,
               "best_latent_r2_ridge": ridge, "best_latent_r2_lightgbm": best["latent_r2_lightgbm"],
               "best_latent_over_raw_ridge": over_raw}
    lines = [table[SHOWN].to_string(index=False, float_format=lambda v: f"{v:.3g}"),
             f"raw noisy flux: Ridge {raw['ridge']:.3f}, LightGBM {raw['lightgbm']:.3f}; error only {error_only:.3f}; "
             f"best teacher (on validation): {best['cell']} epoch {best['epoch']}, latent Ridge {ridge:.3f} = "
             f"{over_raw:.2f} x raw; latent minus raw flux {row_gain(best).text()} ({best['vs_raw_ridge']})"]
    return Outcome(metrics=metrics | row_gain(best).keyed("best_latent_minus_raw_ridge"),
                   tags={"best_cell": best["cell"], "best_epoch": str(best["epoch"])},
                   tables={"tables/teacher_study.json": table}, parquets={"teacher_study.parquet": table},
                   figures={"figures/teacher_study.png": figures.study_curves(table, raw, ceiling, error_only, target)},
                   lines=lines)


def step_metrics(row: dict) -> dict:
    """The row's readings logged at its snapshot."""
    return {k: v for k, v in row.items() if k.startswith(STEP_KEYS)}
