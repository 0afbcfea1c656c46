"""Wall time of `teacher_study` at demo sizes, called twice: the first call trains, the second must reuse every cell.

    python bench/teacher_study_time.py                        # the defaults: cpu + mid, both losses, 2 epochs
    python bench/teacher_study_time.py --forest-gravity false --keep runs/study_nofg
    python bench/teacher_study_time.py --args "-P presets=cpu -P epochs=4 -P snapshots=0,2,4"

It simulates a demo-size dataset (1,500 / 500 / 1,000 spectra, seed 42; ``--forest-gravity`` picks the
simulator's switch) into a fresh MLflow store, runs ``mlflow run . -e teacher_study`` on it twice and prints each
call's wall time, the number of cells the second call reused, and the first call's time against the 45-minute
target. ``--keep DIR`` keeps the store (``DIR/mlflow.db``) and the data for the MLflow UI.
"""
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import mlflow

TARGET_MINUTES = 45
SIZES = dict(n_train=1500, n_val=500, n_test=1000)  # the demo's


def call(args: list, env: dict) -> float:
    """Run a command, echoing its output and its per-snapshot lines; its wall time in seconds, or exit on failure."""
    t = time.time()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(args[:6])} ... failed:\n{done.stderr[-3000:]}")
    print("\n".join(s for s in done.stderr.splitlines() if "latent -> log g" in s), done.stdout, sep="\n", flush=True)
    return time.time() - t


@click.command()
@click.option("--forest-gravity", default=True, type=bool, show_default=True, help="the simulator's switch")
@click.option("--args", "extra", default="", show_default=True,
              help="further mlflow run parameters of teacher_study")
@click.option("--keep", default=None, help="directory to keep the store and data in (default: a temporary one)")
def main(forest_gravity, extra, keep):
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        root = Path(keep or tmp).resolve()
        root.mkdir(parents=True, exist_ok=True)
        data = root / f"demo_forest_gravity_{str(forest_gravity).lower()}"
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        if not data.exists():
            call([sys.executable, "-m", "entrypoints.simulate", "--out", str(data),
                  "--forest-gravity", str(forest_gravity).lower(),
                  *[f"--{k.replace('_', '-')}={v}" for k, v in SIZES.items()]], env)
        run = ["mlflow", "run", ".", "--env-manager", "local", "-e", "teacher_study", "-P", f"data={data}",
               *shlex.split(extra)]
        seconds = [call(run, env) for _ in range(2)]
        mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
        runs = mlflow.search_runs(search_all_experiments=True,
                                  filter_string="tags.`mlflow.project.entryPoint` = 'teacher_study'")
        parents = runs[runs["tags.cell"].isna()].sort_values("start_time")
        cells = runs[runs["tags.mlflow.parentRunId"] == parents["run_id"].iloc[-1]]  # the second call's
        reused = int((cells["tags.reused"] == "true").sum())
        print(f"\nteacher_study {extra or '(defaults)'} on {SIZES} spectra, forest_gravity={forest_gravity}:")
        print(f"first call  {seconds[0] / 60:6.1f} min   (target < {TARGET_MINUTES} min: "
              f"{'met' if seconds[0] < TARGET_MINUTES * 60 else 'missed'})")
        print(f"second call {seconds[1] / 60:6.1f} min   ({reused} of {len(cells)} cells reused)")
        print(f"store: {env['MLFLOW_TRACKING_URI']}" if keep else "")


if __name__ == "__main__":
    main()
