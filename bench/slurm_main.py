"""A tiny `main` through each executor: local, then the one-node Slurm of scripts/slurm.sh (one CPU per job, so two
jobs at a time on 2 cores), each into a fresh SQLite store so that nothing is reused; wall times side by side.

    python bench/slurm_main.py            # needs slurmctld, slurmd and munge (Debian; .ci/run installs them)

The dataset is the tests' tiny one (96 / 32 / 32 spectra), the teacher a fresh `cpu` checkpoint, one epoch each.
"""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import torch

from distill.simulator.dataset import simulate_dataset
from distill.teacher import PRESETS, BlindSpotUNet1D, save

REPO = Path(__file__).resolve().parents[1]


def run_main(work: Path, data: Path, checkpoint: Path, executor: str, env: dict) -> float:
    store = work / executor
    store.mkdir()
    args = [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", "main", "--env-manager", "local"]
    for p in (f"data={data}", f"teacher={checkpoint}", "teacher_epochs=1", "student_epochs=1",
              f"executor={executor}", f"out={store / 'report'}"):
        args += ["-P", p]
    env = env | {"MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db"}
    start = time.time()
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=store)
    if done.returncode:
        raise click.ClickException(f"{executor}: main failed: {done.stderr.strip().splitlines()[-1]}")
    return time.time() - start


@click.command()
def main():
    work = Path(tempfile.mkdtemp(prefix="distill-bench-slurm-"))
    data, checkpoint = work / "tiny", work / "user.ckpt"
    simulate_dataset(data, dict(train=96, val=32, test=32), seed=1, workers=1)
    torch.manual_seed(0)
    save(BlindSpotUNet1D(PRESETS["cpu"]), checkpoint, lightning=True)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    script = str(REPO / "scripts" / "slurm.sh")
    started = subprocess.run([script, "start", str(work / "cluster"), "6917"], capture_output=True, text=True)
    if started.returncode:
        raise click.ClickException(f"slurm.sh start failed: {started.stderr.strip()[-500:]}")
    config = work / "slurm.yaml"
    config.write_text(f"cpus: 1\nmem: 4G\nlog_dir: {work / 'logs'}\n")
    env |= {"SLURM_CONF": started.stdout.strip().removeprefix("SLURM_CONF="), "DISTILL_SLURM_CONFIG": str(config)}
    try:
        local = run_main(work, data, checkpoint, "local", env)
        slurm = run_main(work, data, checkpoint, "slurm", env)
    finally:
        subprocess.run([script, "stop", str(work / "cluster")], capture_output=True)
    click.echo(f"tiny main, 2 cores: local {local:.1f} s | one-node Slurm, 1 CPU per job {slurm:.1f} s | "
               f"ratio {slurm / local:.2f}")


if __name__ == "__main__":
    main()
