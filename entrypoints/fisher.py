"""The information ceiling: Fisher / Cramer-Rao bounds for the labels of a simulated dataset.

    mlflow run . -e fisher -P data=data/sim -P noise_level=1.0 --env-manager local

Logs ``ceiling_r2_{label}`` (unbiased, marginal), ``ceiling_known_others_r2_{label}`` and
``ceiling_prior_r2_{label}`` (the yardstick), quantiles of the per-spectrum bound, the
ceiling against noise level, and ``fisher.parquet`` (per-spectrum Fisher matrices at noise
level 1), which probe, distill_student, ablate and report read to draw the ceiling.
"""
import os
import time

import click
import numpy as np
import pandas as pd

from distill import figures, fisher, tracking
from distill.data import LABELS, open_dataset
from distill.errors import DistillError
from entrypoints._cli import one_line_errors, progress_bar

LEVELS = (0.1, 0.2, 0.5, 1.0, 2.0)  # noise levels of the ceiling table (those of ablate's noise sweep)
STEP_CHECK_ROWS = 64  # spectra whose bound is recomputed with half the steps


def check_simulated(spectra):
    """Fail unless the simulator's model of the stored labels reproduces the stored flux (first 8 rows)."""
    why = "the ceiling needs the model that made the spectra, so it exists only for simulated data (other entry points omit it)"
    if "mag" not in spectra.params.columns:
        raise DistillError(f"{spectra.path}: not made by the built-in simulator (its params lack 'mag'); {why}")
    flux = spectra.read(0, min(8, len(spectra)))[0]
    model = fisher.simulator_flux(spectra.params.iloc[:len(flux)])
    diff = float(np.abs(model - flux).max() / np.abs(flux).max())
    if diff > 1e-4:
        raise DistillError(f"{spectra.path}: the stored flux is not the built-in simulator's model of its labels (relative "
                           f"difference {diff:.1e}); {why}. Data simulated by an older version: simulate it again")


def ceiling_metrics(info, params, noise_level) -> dict:
    """The three ceilings of every label, uninformative spectra, and quantiles and edge cases of the log g bound."""
    out = {}
    for k, label in enumerate(LABELS):
        var = float(params[label].var())
        bounds = fisher.crb(info, k, var, noise_level)
        ceil = fisher.ceiling(bounds, var)
        out |= {f"ceiling_r2_{label}": ceil["marginal"], f"ceiling_known_others_r2_{label}": ceil["known_others"],
                f"ceiling_prior_r2_{label}": ceil["prior"], f"n_uninformative_{label}": int(np.isinf(bounds["marginal"]).sum())}
        if label == "log_g":
            out |= {f"crb_{b}_log_g_q{round(q * 100)}": v for (b, q), v in fisher.quantiles(bounds).items()}
            out["n_one_sided_log_g"] = int((fisher.schemes(params[label], fisher.STEPS[label], *fisher.RANGES[label]) != "central").sum())
    return out


def step_check(info, half, params) -> pd.DataFrame:
    """|log| change of the unbiased bound when the steps are halved, per label (median and max over the spectra)."""
    rows = []
    for k, label in enumerate(LABELS):
        var = float(params[label].var())
        change = np.abs(np.log(fisher.crb(half, k, var)["marginal"] / fisher.crb(info[:len(half)], k, var)["marginal"]))
        rows.append({"label": label, "step": fisher.STEPS[label], "median_rel_change": float(np.nanmedian(change)),
                     "max_rel_change": float(np.nanmax(change))})
    return pd.DataFrame(rows)


def ceiling_by_noise(info, params, noise_level) -> pd.DataFrame:
    """The three ceilings of every label at each of ``LEVELS`` and ``noise_level``."""
    rows = []
    for k, label in enumerate(LABELS):
        var = float(params[label].var())
        for level in sorted({*LEVELS, noise_level}):
            rows.append({"label": label, "noise_level": level, **fisher.ceiling(fisher.crb(info, k, var, level), var)})
    return pd.DataFrame(rows)


@click.command()
@click.option("--data", default="data/sim", show_default=True, help="a dataset made by the simulate entry point")
@click.option("--split", default="test", type=click.Choice(["train", "val", "test"]), show_default=True)
@click.option("--noise-level", default=1.0, type=click.FloatRange(0), show_default=True)
@click.option("--n-spectra", default=0, type=click.IntRange(0), show_default=True, help="first N spectra of the split (0: all)")
@click.option("--workers", default=0, type=click.IntRange(0), show_default=True, help="processes (0: up to 4)")
@one_line_errors
def main(data, split, noise_level, n_spectra, workers):
    ds = open_dataset(data, labels=LABELS)
    spectra = ds[split]
    check_simulated(spectra)
    n = min(n_spectra or len(spectra), len(spectra))
    workers = workers or (1 if n < 128 else min(os.cpu_count() or 1, 4))
    with tracking.tracked_run("fisher", stage="ceiling"):
        tracking.log_params(dict(data=data, split=split, noise_level=noise_level, n_spectra=n_spectra, workers=workers,
                                 **{f"step_{k}": v for k, v in fisher.STEPS.items()}))
        tracking.log_dataset(ds.summary(), data)
        t0 = time.time()
        with progress_bar(n, "fisher") as bar:
            info = fisher.split_fisher(spectra, rows=n, workers=workers, progress=bar.update)
        seconds = time.time() - t0
        half = fisher.split_fisher(spectra, {k: v / 2 for k, v in fisher.STEPS.items()}, rows=min(n, STEP_CHECK_ROWS))
        params = spectra.params.iloc[:n].reset_index(drop=True)
        metrics = {"fisher_seconds": seconds, "spectra_per_second": n / seconds, "n_spectra_used": n,
                   "n_singular": fisher.n_singular(info), **ceiling_metrics(info, params, noise_level)}
        steps_table, levels = step_check(info, half, params), ceiling_by_noise(info, params, noise_level)
        metrics["fd_half_step_median_rel_change_log_g"] = float(steps_table.set_index("label").at["log_g", "median_rel_change"])
        log_g_bounds = fisher.crb(info, LABELS.index("log_g"), float(params["log_g"].var()), noise_level)
        tracking.log_metrics(metrics)
        tracking.log_parquet(fisher.to_table(info, params), "fisher.parquet")
        tracking.log_parquet(pd.concat([params, log_g_bounds.add_prefix("crb_log_g_")], axis=1), "tables/crb_log_g.parquet")
        tracking.log_table(steps_table, "tables/step_check.json")
        tracking.log_table(levels, "tables/ceiling_by_noise.json")
        tracking.log_figure(figures.crb_map(params, log_g_bounds, noise_level), "figures/crb_log_g.png")
        curve = levels[levels.label == "log_g"].melt(["label", "noise_level"], var_name="features", value_name="test_r2")
        tracking.log_figure(figures.curves(curve, "noise_level", "log g information ceiling", log_x=True, ylabel="ceiling R^2"),
                            "figures/ceiling_vs_noise.png")
        click.echo(f"{split}: {n} spectra in {seconds:.0f} s; log g ceiling R^2 at noise {noise_level:g}: "
                   f"prior-aware {metrics['ceiling_prior_r2_log_g']:.3f}, unbiased {metrics['ceiling_r2_log_g']:.3f}, "
                   f"others known {metrics['ceiling_known_others_r2_log_g']:.3f}; median bound "
                   f"{metrics['crb_marginal_log_g_q50']:.2f} dex; {metrics['n_singular']} singular")


if __name__ == "__main__":
    main()
