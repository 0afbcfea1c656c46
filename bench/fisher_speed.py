"""Speed of the information ceiling: Fisher matrices of 1,000 test spectra with 1 and 2 workers (target < 60 s).

    python bench/fisher_speed.py --n-test 1000

Prints seconds and spectra/s per worker count, the speed-up, and the log g ceilings at noise levels 0.5, 1 and 2.
"""
import tempfile
import time

import click

from distill import fisher
from distill.data import open_dataset
from distill.simulator.dataset import simulate_dataset


@click.command()
@click.option("--n-test", default=1000, show_default=True)
@click.option("--workers", default="1,2", show_default=True)
def main(n_test, workers):
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        simulate_dataset(f"{tmp}/d", dict(train=1, val=1, test=n_test), seed=3)
        spectra = open_dataset(f"{tmp}/d")["test"]
        times = {}
        for w in [int(v) for v in workers.split(",")]:
            t = time.time()
            info = fisher.split_fisher(spectra, workers=w)
            times[w] = time.time() - t
            print(f"workers {w}: {times[w]:6.1f} s for {n_test} spectra ({n_test / times[w]:5.1f} spectra/s; target < "
                  f"60 s)")
        print(f"speed-up {max(times)} workers / 1: {times[min(times)] / times[max(times)]:.2f}x")
        var = float(spectra.params["log_g"].var())
        for level in (0.5, 1.0, 2.0):
            c = fisher.ceiling(fisher.crb(info, 1, fisher.prior_variances(spectra.params), level), var)
            print(f"noise {level:g}: log g ceiling R^2 prior-aware {c['prior']:.3f}, unbiased {c['marginal']:.3f}, "
                  f"others known {c['known_others']:.3f}")


if __name__ == "__main__":
    main()
