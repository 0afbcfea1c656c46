"""Stages 2-3 benchmark: log g test R^2 of raw-flux Ridge / LightGBM, the supervised end-to-end network
(lambda_z=0), teacher latent + best head and distilled students + head, side by side, plus speed.

    python bench/student_benchmark.py                        # 32k train / 1k val / 2k test at noise 1.0
    python bench/student_benchmark.py --n-train 4000 --epochs 5

Runs the real entry points (``mlflow run``) in a private MLflow store under ``--work``:
a teacher is trained self-supervised on its own simulated set (``--teacher-train``
spectra, ``--teacher-epochs``), then everything else runs on the benchmark set. Each
row names the run that produced it; open them with ``mlflow ui --backend-store-uri``.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import mlflow

REPO = Path(__file__).resolve().parents[1]


def mlflow_run(entry: str, **params) -> str:
    """Run an entry point; return its run id (stop the benchmark on failure)."""
    args = [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", entry, "--env-manager", "local"]
    for k, v in params.items():
        args += ["-P", f"{k}={v}"]
    t = time.time()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"{entry} failed:\n{done.stderr[-3000:]}")
    run_id = done.stderr.split("=== Run (ID '")[-1].split("'")[0]
    shown = " ".join(f"{k}={v}" for k, v in params.items() if k != "data")
    print(f"  {entry} {shown}: {time.time() - t:.0f} s", flush=True)
    return run_id


@click.command()
@click.option("--work", default="/tmp/distill-student-bench", show_default=True, help="datasets and MLflow store")
@click.option("--n-train", default=32000, show_default=True)
@click.option("--n-val", default=1000, show_default=True)
@click.option("--n-test", default=2000, show_default=True)
@click.option("--teacher-train", default=4000, show_default=True, help="spectra of the teacher's own training set")
@click.option("--teacher-epochs", default=4, show_default=True)
@click.option("--epochs", default=20, show_default=True, help="student epochs (early stopping, patience 5)")
@click.option("--online-epochs", default=2, show_default=True, help="epochs of the online-mode run (0: skip)")
def main(work, n_train, n_val, n_test, teacher_train, teacher_epochs, epochs, online_epochs):
    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work}/mlflow.db"
    os.chdir(work)  # artifacts land in work/mlruns
    data, teacher_data = work / f"sim{n_train}", work / f"teacher{teacher_train}"
    print(f"benchmark set: {n_train} / {n_val} / {n_test} spectra at noise 1.0 (mag 21.5); work dir {work}")
    t0 = time.time()
    if not data.exists():
        mlflow_run("simulate", out=data, n_train=n_train, n_val=n_val, n_test=n_test, seed=7)
    if not teacher_data.exists():
        mlflow_run("simulate", out=teacher_data, n_train=teacher_train, n_val=500, n_test=100, seed=8)
    teacher = mlflow_run("train_teacher", data=teacher_data, epochs=teacher_epochs)
    extract = mlflow_run("extract", data=data, teacher=teacher, layer="enc_pre_latent", denoised="true")
    common = dict(data=data, labels="log_g")
    raw = mlflow_run("probe", input="noisy_flux", head="ridge,lightgbm", **common)
    latent = mlflow_run("probe", features=extract, head="ridge,lightgbm,mlp", **common)
    students = {
        "supervised end-to-end MLP (lambda_z=0)": mlflow_run("distill_student", lambda_z=0, features=extract,
                                                             epochs=epochs, **common),
        "distilled MLP student (offline)": mlflow_run("distill_student", features=extract, epochs=epochs, **common),
        "distilled CNN student (offline)": mlflow_run("distill_student", student="cnn", lr=0.001, features=extract,
                                                      epochs=epochs, **common),
    }
    if online_epochs:
        students[f"distilled MLP student (online, {online_epochs} epochs)"] = mlflow_run(
            "distill_student", teacher_mode="online", features=extract, epochs=online_epochs, **common)
    print(f"total {time.time() - t0:.0f} s\n")

    client = mlflow.MlflowClient()
    rows = []
    for child in mlflow.search_runs(search_all_experiments=True, output_format="list",
                                    filter_string=f"tags.`mlflow.parentRunId` = '{raw}'"):
        rows.append((f"raw noisy flux + {child.data.tags['head']}", child.data.metrics["test_r2_log_g"], "",
                     child.info.run_id))
    best = max(mlflow.search_runs(search_all_experiments=True, output_format="list",
                                  filter_string=f"tags.`mlflow.parentRunId` = '{latent}'"),
               key=lambda r: r.data.metrics["val_r2_log_g"])
    rows.append((f"teacher latent + best head ({best.data.tags['head']}, by val)",
                 best.data.metrics["test_r2_log_g"], "",
                 best.info.run_id))
    for name, run_id in students.items():
        r = client.get_run(run_id)
        m, t = r.data.metrics, r.data.tags
        extra = (f"cosine {m['test_latent_cosine']:.3f}; " if "test_latent_cosine" in m else "") + (
            f"{m['n_parameters'] / 1e6:.2f} M params; {m['student_spectra_per_second']:,.0f} spec/s"
            + (f" = {m['speedup_vs_teacher_encoder']:.1f}x teacher encoder "
               f"({m['teacher_encoder_spectra_per_second']:,.0f})"
               if "speedup_vs_teacher_encoder" in m else "")
            + f"; {m['train_seconds'] / m['epochs_run']:.0f} s/epoch")
        rows.append((f"{name} + best head ({t['student_best_head_log_g']})", m["student_test_r2_log_g"], extra, run_id))
    print(f"{'features + head':<62} {'test R^2 log g':>14}  notes")
    for name, r2, extra, run_id in rows:
        print(f"{name:<62} {r2:14.3f}  {extra}")
    print(f"\nMLflow store: sqlite:///{work}/mlflow.db")


if __name__ == "__main__":
    main()
