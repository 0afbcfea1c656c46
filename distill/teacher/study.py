"""The teacher study's grid and readings: which teacher settings make the latent hold log g.

A cell is one teacher setting (preset, loss, size of the teacher's own training set,
whether it sees sigma); each is trained once and probed at several snapshots along
training, so the x axis of the study is spectra seen (epochs x training-set size).
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DistillError, check_choices
from .model import PRESETS, BlindSpotUNet1D
from .train import LOSSES


@dataclass(frozen=True)
class Cell:
    preset: str
    loss: str
    n_train: int  # 0: the whole train split
    input_sigma: bool = True

    @property
    def name(self) -> str:
        size = "all" if self.n_train == 0 else f"{self.n_train}"
        return f"{self.preset} | {self.loss} | n={size}" + ("" if self.input_sigma else " | no error")

    def params(self) -> dict:
        """The train_teacher parameters of this cell."""
        return dict(preset=self.preset, loss=self.loss, train_subset=self.n_train,
                    input_sigma=str(self.input_sigma).lower())


def cells(presets, losses, n_trains, no_error: bool) -> list:
    """Every (preset, loss, n_train) cell; with ``no_error``, the no-error teacher (``input_sigma=false``) of the
    first preset and loss at every n_train beside them. Unknown presets or losses: one line."""
    check_choices("preset", presets, PRESETS)
    check_choices("loss", losses, LOSSES)
    grid = [Cell(p, loss, n) for p in presets for loss in losses for n in n_trains]
    if no_error:
        grid += [Cell(presets[0], losses[0], n, input_sigma=False) for n in n_trains]
    return grid


def reading(cell: Cell, layers: str, poolings: str, segments: int, alpha, noise_level: float) -> dict:
    """How a cell's snapshots are probed: its preset's every layer (``layers`` all) or the comma list given, the
    poolings, stored segments, Ridge alpha and noise level."""
    names = ",".join(BlindSpotUNet1D(PRESETS[cell.preset]).layer_names()) if layers == "all" else layers
    return dict(layers=names, poolings=poolings, segments=segments, alpha=alpha, noise_level=noise_level)


def best_on_validation(grid: pd.DataFrame, head: str, label: str = "log_g") -> pd.Series:
    """The (layer, pooling) row of a probe grid's summary table with the highest validation R^2 for ``head``.

    The choice sees only the validation column: test columns are dropped before it is made."""
    rows = grid[grid["head"] == head]
    if rows.empty:
        raise DistillError(f"the probe grid has no {head} rows")
    choice = rows.drop(columns=[c for c in rows.columns if c.startswith("test_")])[f"val_r2_{label}"].idxmax()
    return grid.loc[choice]


HORIZON = 1000  # the farthest a learning curve is extrapolated, in multiples of the spectra it has seen


def _log_fit(curve: pd.DataFrame):
    """(slope per decade, intercept) of the least-squares line of R^2 against log10(spectra seen) over the trained
    snapshots (the untrained teacher has no place on a log axis); None with fewer than two."""
    trained = curve[curve["spectra_seen"] > 0]
    if len(trained) < 2:
        return None
    slope, intercept = np.polyfit(np.log10(trained["spectra_seen"]), trained["r2"], 1)
    return float(slope), float(intercept)


def r2_per_decade(curve: pd.DataFrame) -> float:
    """The trend of a curve (columns spectra_seen, r2): R^2 gained per tenfold spectra seen; nan when unknown."""
    fit = _log_fit(curve)
    return fit[0] if fit else float("nan")


def spectra_to_reach(curve: pd.DataFrame, target: float) -> float:
    """Spectra seen at which a curve (columns spectra_seen, r2) reaches ``target``: the first measured point that
    does, else extrapolated along its log-linear trend (``r2_per_decade``); inf when the trend does not rise or would
    need more than ``HORIZON`` times the spectra seen.

    A rough guide for how long a teacher would have to train, not a prediction: learning curves bend."""
    reached = curve[curve["r2"] >= target]
    if len(reached):
        return float(reached["spectra_seen"].min())
    fit = _log_fit(curve)
    if fit is None or fit[0] <= 0:
        return float("inf")
    spectra = 10 ** ((target - fit[1]) / fit[0])
    return float(spectra) if spectra <= HORIZON * curve["spectra_seen"].max() else float("inf")


def reach_table(table: pd.DataFrame, targets: dict) -> pd.DataFrame:
    """Per cell of a study table, the Ridge latent's trend ``ridge_r2_per_decade`` and, per target ({name: R^2}),
    its ``spectra_to_{name}`` and ``hours_to_{name}``: the training time that takes at the cell's measured
    ``train_seconds`` per spectrum seen (CPU seconds of the training process on a CPU, wall seconds on a GPU)."""
    rows = []
    for cell, part in table.groupby("cell", sort=False):
        curve = part.rename(columns={"latent_r2_ridge": "r2"})
        last = part.loc[part["spectra_seen"].idxmax()]
        per_spectrum = last["train_seconds"] / last["spectra_seen"] if last["spectra_seen"] > 0 else np.nan
        row = {"cell": cell, "ridge_r2_per_decade": r2_per_decade(curve)}
        for name, target in targets.items():
            row[f"spectra_to_{name}"] = spectra_to_reach(curve, target)
            row[f"hours_to_{name}"] = row[f"spectra_to_{name}"] * per_spectrum / 3600
        rows.append(row)
    return pd.DataFrame(rows)
