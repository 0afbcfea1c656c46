"""Simulation speed and memory: spectra/s and peak RSS at two sizes, extrapolated to 100k.

    python bench/simulate_speed.py --sizes 10000,30000

Each size runs in a fresh process; peak RSS is the largest of that process and its
workers (memory must not grow with N: the arrays are streamed to disk in chunks).
"""
import json
import subprocess
import sys
import tempfile

import click

CHILD = """
import json, resource, sys, time
from distill.simulator.dataset import simulate_dataset
t = time.time()
simulate_dataset(sys.argv[1], dict(train=int(sys.argv[2]), val=10, test=10))
seconds = time.time() - t
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps(dict(seconds=seconds, peak_mb=peak / 1024)))
"""


@click.command()
@click.option("--sizes", default="10000,30000", show_default=True)
def main(sizes):
    rows = []
    for n in [int(s) for s in sizes.split(",")]:
        with tempfile.TemporaryDirectory(dir=".") as tmp:
            out = subprocess.run([sys.executable, "-c", CHILD, f"{tmp}/d", str(n)], capture_output=True,
                                 text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append((n + 20, r["seconds"], r["peak_mb"]))
            print(f"N = {n + 20:7d}: {r['seconds']:7.1f} s  {(n + 20) / r['seconds']:7.0f} spectra/s  peak RSS "
                  f"{r['peak_mb']:6.0f} MB")
    (n1, t1, _), (n2, t2, _) = rows[0], rows[-1]
    per = (t2 - t1) / (n2 - n1)
    print(f"marginal cost {per * 1e3:.2f} ms/spectrum; fixed {t1 - per * n1:.1f} s; "
          f"extrapolated 100k: {t1 + per * (100_000 - n1):.0f} s (target <= 600 s)")
    print(f"peak RSS ratio N={n2} / N={n1}: {rows[-1][2] / rows[0][2]:.2f} (1.0 = does not grow with N)")


if __name__ == "__main__":
    main()
