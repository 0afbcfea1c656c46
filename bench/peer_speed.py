"""Speed and skill of the peers on simulated spectra at noise 1: The Cannon fitted on 32k training spectra labelling
1k test spectra (target < 2 min on 2 cores), the template fit labelling 1k test spectra (target < 10 min on 2 cores).

    python bench/peer_speed.py                       # simulates 32k / 500 / 1k spectra into a temporary directory
    python bench/peer_speed.py --data data/study     # or reads a dataset already made

Prints seconds against each target, spectra/s, log g test R^2 with its interval, and the template fit's squared error
over the Cramer-Rao bound.
"""
import os
import tempfile
import time

import click

from distill import intervals
from distill.data import open_dataset
from distill.peers import estimate
from distill.simulator.dataset import simulate_dataset

TARGETS = {"cannon": 120.0, "template_fit": 600.0}  # s on 2 cores


@click.command()
@click.option("--data", default="", help="a simulated dataset (default: simulate one)")
@click.option("--n-train", default=32_000, show_default=True)
@click.option("--n-test", default=1000, show_default=True)
@click.option("--methods", default="cannon,template_fit", show_default=True)
def main(data, n_train, n_test, methods):
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        if not data:
            t = time.time()
            data = f"{tmp}/d"
            simulate_dataset(data, dict(train=n_train, val=500, test=n_test), seed=7, workers=os.cpu_count())
            print(f"simulated {n_train} / 500 / {n_test} spectra in {time.time() - t:.0f} s")
        ds = open_dataset(data)
        n = min(n_test, len(ds["test"]))
        for method in methods.split(","):
            t = time.time()
            est = estimate.RUN[method](ds, noise_level=1.0, n_spectra=n, n_train=0, seed=42, prior=False, starts=3,
                                       workers=min(os.cpu_count() or 1, 4), epochs=1, labels=["log_g"])
            seconds = time.time() - t
            r2 = intervals.r2(ds["test"].params["log_g"].iloc[:n], est.predictions["test"]["log_g"])
            print(f"{method}: {seconds:6.1f} s in all (target < {TARGETS[method]:.0f} s: "
                  f"{'met' if seconds < TARGETS[method] else 'MISSED'}), fit {est.fit_seconds:.1f} s, predict "
                  f"{est.predict_seconds:.1f} s ({n / est.predict_seconds:.1f} test spectra/s; {len(ds['train'])} "
                  f"training spectra); log g test R^2 {r2.value:.3f} [{r2.lo:.3f}, {r2.hi:.3f}]")
            for key in ("template_fit_crb_ratio_log_g", "template_fit_crb_median_ratio_log_g",
                        "template_fit_ceiling_r2_log_g", "template_fit_evaluations_per_spectrum"):
                if key in est.metrics:
                    print(f"  {key}: {est.metrics[key]:.3f}")


if __name__ == "__main__":
    main()
