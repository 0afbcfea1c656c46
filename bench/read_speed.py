"""Batched reads from a large pfsspec file: a 1,024-spectrum batch must take milliseconds.

    python bench/read_speed.py --n 100000

Writes an N x 4096 file of random values (read speed does not depend on content),
then times batches at random offsets beside the time of a whole-file load.
"""
import tempfile
import time

import click
import numpy as np
import pandas as pd

from distill.data import LABELS, SpectrumFile, write_split


@click.command()
@click.option("--n", default=100_000, show_default=True)
@click.option("--batch", default=1024, show_default=True)
def main(n, batch):
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        path = f"{tmp}/big.h5"
        params = pd.DataFrame({c: rng.uniform(0, 1, n) for c in LABELS})
        blocks = ((rng.uniform(1, 2, (k, 4096)).astype(np.float32), rng.uniform(0.1, 0.2, (k, 4096)).astype(np.float32))
                  for k in [min(4096, n - i) for i in range(0, n, 4096)])
        t = time.time()
        write_split(path, np.linspace(7100, 8850, 4096), params, blocks, 4096)
        print(f"wrote {n} x 4096 (flux + error, float32, {2 * n * 4096 * 4 / 1e9:.1f} GB) in {time.time() - t:.0f} s")
        t = time.time()
        f = SpectrumFile(path)
        print(f"open + check layout + read labels: {(time.time() - t) * 1e3:.0f} ms")
        times = []
        for start in rng.integers(0, n - batch, 20):
            t = time.time()
            flux, error = f.read(int(start), int(start) + batch)
            times.append(time.time() - t)
        per_batch = np.median(times)
        print(f"batch of {batch} at random offsets: median {per_batch * 1e3:.1f} ms, max {max(times) * 1e3:.1f} ms "
              f"({batch / per_batch:,.0f} spectra/s)")
        print(f"full-file equivalent at that rate: {per_batch * n / batch:.1f} s; one batch is "
              f"{batch / n:.1%} of the file")


if __name__ == "__main__":
    main()
