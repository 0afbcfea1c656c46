"""Raw-flux probes at scale: Ridge and LightGBM on N x 4096 noisy flux, time and peak memory.

    python bench/probe_scale.py --n-train 32000          # simulates into a temp dir
    python bench/probe_scale.py --data data/sim32k

Prints each step's wall time and the process's peak RSS beside the size of one
float32 copy of the training matrix, and extrapolates to 100k (Ridge's Gram
accumulation is O(N d^2), LightGBM's binning and training O(N d)).
"""
import resource
import tempfile
import time
from pathlib import Path

import click

from distill import probe
from distill.data import open_dataset
from distill.simulator.dataset import simulate_dataset


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@click.command()
@click.option("--data", "data_dir", default=None, help="existing dataset (else simulate)")
@click.option("--n-train", default=32000, show_default=True)
def main(data_dir, n_train):
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        if data_dir is None:
            t = time.time()
            data_dir = Path(tmp) / "d"
            simulate_dataset(data_dir, dict(train=n_train, val=1000, test=1000))
            print(f"simulated {n_train + 2000} spectra in {time.time() - t:.0f} s")
        ds = open_dataset(data_dir)
        n = len(ds["train"])
        copy_mb = n * ds["train"].n_pixels * 4 / 2**20
        print(f"N_train = {n}; one float32 copy of the training matrix = {copy_mb:.0f} MB; peak RSS at start "
              f"{peak_mb():.0f} MB")
        rows = []
        t = time.time()
        fs = probe.baseline_features(ds, "noisy_flux", 1.0)
        rows.append(("noisy flux, all splits", time.time() - t, peak_mb()))
        for head in ("ridge", "lightgbm"):
            t = time.time()
            result = probe.fit_label(fs, "log_g", head)
            rows.append((f"{head} fit + predict (log g: test R^2 {result.scores['test_r2_log_g']:.3f})",
                         time.time() - t, peak_mb()))
        print(f"{'step':<52} {'seconds':>8} {'peak RSS MB':>12} {'peak / copy':>12}")
        for name, seconds, peak in rows:
            print(f"{name:<52} {seconds:8.1f} {peak:12.0f} {peak / copy_mb:12.2f}")
        scale = 100_000 / n
        print(f"extrapolated to 100k: features {rows[0][1] * scale:.0f} s, Ridge {rows[1][1] * scale:.0f} s, "
              f"LightGBM {rows[2][1] * scale:.0f} s; peak about {rows[-1][2] - copy_mb + copy_mb * scale:.0f} MB "
              f"(one copy = {copy_mb * scale:.0f} MB of the 24 GiB)")


if __name__ == "__main__":
    main()
