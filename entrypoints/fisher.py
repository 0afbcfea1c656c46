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
import pandas as pd

from distill import ceiling, figures, fisher, tracking
from distill.data import LABELS, open_dataset
from entrypoints import _options as opt
from entrypoints._cli import one_line_errors, progress_bar


@click.command()
@click.option("--data", default="data/sim", show_default=True, help="a dataset made by the simulate entry point")
@click.option("--split", default="test", type=click.Choice(["train", "val", "test"]), show_default=True)
@opt.noise_level
@click.option("--n-spectra", default=0, type=click.IntRange(0), show_default=True,
              help="first N spectra of the split (0: all)")
@click.option("--workers", default=0, type=click.IntRange(0), show_default=True, help="processes (0: up to 4)")
@one_line_errors
def main(data, split, noise_level, n_spectra, workers):
    ds = open_dataset(data, labels=LABELS)
    spectra = ds[split]
    ceiling.check_simulated(spectra)
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
        half = fisher.split_fisher(spectra, {k: v / 2 for k, v in fisher.STEPS.items()},
                                   rows=min(n, ceiling.STEP_CHECK_ROWS))
        params = spectra.params.iloc[:n].reset_index(drop=True)
        metrics = {"fisher_seconds": seconds, "spectra_per_second": n / seconds, "n_spectra_used": n,
                   "n_singular": fisher.n_singular(info), **ceiling.ceiling_metrics(info, params, noise_level)}
        steps_table = ceiling.step_check(info, half, params)
        levels = ceiling.ceiling_by_noise(info, params, noise_level)
        metrics["fd_half_step_median_rel_change_log_g"] = float(
            steps_table.set_index("label").at["log_g", "median_rel_change"])
        log_g_bounds = fisher.crb(info, LABELS.index("log_g"), fisher.prior_variances(params), noise_level)
        tracking.log_metrics(metrics)
        tracking.log_parquet(fisher.to_table(info, params), "fisher.parquet")
        tracking.log_parquet(pd.concat([params, log_g_bounds.add_prefix("crb_log_g_")], axis=1),
                             "tables/crb_log_g.parquet")
        tracking.log_table(steps_table, "tables/step_check.json")
        tracking.log_table(levels, "tables/ceiling_by_noise.json")
        tracking.log_figure(figures.crb_map(params, log_g_bounds, noise_level), "figures/crb_log_g.png")
        curve = levels[levels.label == "log_g"].melt(["label", "noise_level"], var_name="features",
                                                     value_name="test_r2")
        tracking.log_figure(figures.curves(curve, "noise_level", "log g information ceiling", log_x=True,
                                           ylabel="ceiling R^2"), "figures/ceiling_vs_noise.png")
        click.echo(f"{split}: {n} spectra in {seconds:.0f} s; log g ceiling R^2 at noise {noise_level:g}: "
                   f"prior-aware {metrics['ceiling_prior_r2_log_g']:.3f}, unbiased {metrics['ceiling_r2_log_g']:.3f}, "
                   f"others known {metrics['ceiling_known_others_r2_log_g']:.3f}; median bound "
                   f"{metrics['crb_marginal_log_g_q50']:.2f} dex; {metrics['n_singular']} singular")


if __name__ == "__main__":
    main()
