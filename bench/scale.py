"""Wall time and peak memory of each pipeline step at two (or more) training-set sizes, extrapolated to 100k.

    python bench/scale.py --sizes 24000,48000
    python bench/scale.py --sizes 32000,100000 --preset paper     # where the paper teacher's extraction is affordable

Each step runs as its entry point (``python -m entrypoints.X``, tracked in a throwaway MLflow store) in a fresh
process; peak memory is that process's maximum RSS. From the two largest sizes the script fits time and memory
linearly in N and prints the 100k figures, the largest N whose peak fits in 24 GiB, and how many float32
N x 4096 matrices the memory slope amounts to (the design allows one). The teacher is an untrained checkpoint of
the preset: its weights change neither time nor memory. Take both sizes above 20,000: LightGBM bins its features
from a sample of up to 20,000 rows held as float64, which makes memory grow faster below that size than above.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import click
import torch

from distill.teacher import PRESETS, BlindSpotUNet1D, save

WRAPPER = """
import json, resource, subprocess, sys, time
t = time.time()
rc = subprocess.run(sys.argv[1:]).returncode
print(json.dumps(dict(rc=rc, seconds=time.time() - t,
                      peak_gb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2)))
"""
LIMIT_GB = 24.0
COPY_GB_PER_SPECTRUM = 4096 * 4 / 1024**3  # one float32 row of 4096 pixels


def steps(data: str, teacher: str) -> dict:
    return {
        "simulate": ["simulate", "--out", data],
        "extract": ["extract", "--data", data, "--teacher", teacher, "--layer", "enc_pre_latent,enc_last,dec_input"],
        "probe raw (ridge, lgbm)": ["probe", "--data", data, "--input", "noisy_flux", "--head", "ridge,lightgbm",
                                    "--labels", "log_g"],
        "probe latent (ridge, lgbm)": ["probe", "--data", data, "--head", "ridge,lightgbm", "--labels", "log_g"],
        "decompose_error": ["decompose_error", "--data", data],
        "distill_student (1 epoch)": ["distill_student", "--data", data, "--epochs", "1", "--labels", "log_g"],
    }


def run_step(args: list, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", WRAPPER, sys.executable, "-m", f"entrypoints.{args[0]}", *args[1:]],
                         capture_output=True, text=True, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise SystemExit(f"{args[0]} failed:\n{out.stderr[-3000:]}")
    return result


@click.command()
@click.option("--sizes", default="24000,48000", show_default=True, help="training-set sizes (val and test: 1,000 each)")
@click.option("--preset", default="cpu", show_default=True, help="teacher preset for extract")
def main(sizes, preset):
    sizes = [int(s) for s in sizes.split(",")]
    rows = {}
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        teacher = f"{tmp}/teacher.pt"
        torch.manual_seed(0)
        save(BlindSpotUNet1D(PRESETS[preset]), teacher)
        for n in sizes:
            data = f"{tmp}/d{n}"
            env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp).resolve()}/mlflow{n}.db"}
            for name, args in steps(data, teacher).items():
                if name == "simulate":
                    args = args + ["--n-train", str(n), "--n-val", "1000", "--n-test", "1000"]
                r = run_step(args, env)
                rows[name, n] = r
                print(f"N = {n:6d}  {name:<28} {r['seconds']:7.1f} s  peak RSS {r['peak_gb']:5.2f} GB", flush=True)
    if len(sizes) < 2:
        return
    n1, n2 = sizes[-2], sizes[-1]
    print(f"\nfrom N = {n1} and {n2}, linear in N (extract: {preset} teacher):")
    print(f"{'step':<28} {'time 100k':>10} {'peak 100k':>10} {'largest N in 24 GiB':>20} {'float32 copies':>15}")
    for name in steps("", ""):
        a, b = rows[name, n1], rows[name, n2]
        dt, dm = (b["seconds"] - a["seconds"]) / (n2 - n1), (b["peak_gb"] - a["peak_gb"]) / (n2 - n1)
        t100, m100 = b["seconds"] + dt * (100_000 - n2), b["peak_gb"] + dm * (100_000 - n2)
        n_max = "unbounded" if dm <= 0 else f"{int(n2 + (LIMIT_GB - b['peak_gb']) / dm):,}"
        print(f"{name:<28} {t100:8.0f} s {m100:7.2f} GB {n_max:>20} {dm / COPY_GB_PER_SPECTRUM:15.2f}")


if __name__ == "__main__":
    main()
