"""What a user looks at, in a real browser: the MLflow UI comparing the ablation runs, and optuna-dashboard
showing a `tune` study. Screenshots land in reports/test-artifacts (or $DISTILL_TEST_ARTIFACTS)."""
import json
import sys
from pathlib import Path

import mlflow
import optuna
import pytest
from click.testing import CliRunner

from distill import tracking
from entrypoints import ablate, tune
from tests.conftest import free_port, serve, stop

pytestmark = pytest.mark.slow  # end-to-end: real processes, servers or a browser

# what each ablation child logs, as the ablate entry point names it
ABLATION_METRICS = {
    "no_error_teacher": {"delta_test_r2_log_g": 0.0614, "delta_test_r2_log_g_lo": 0.0311},
    "shuffle_error": {"delta_test_r2_log_g": 0.0021, "delta_test_r2_log_g_hi": 0.0143},
    "shuffle_labels": {"teacher_ridge_shuffled_mean": -0.0551},
    "noise_sweep": {"raw_ridge_test_r2_log_g_noise_1": 0.3661},
    "sample_efficiency": {"student_ridge_test_r2_log_g_n_500": 0.2478},
}


def test_mlflow_ui_compares_the_ablation_runs(mlflow_store, browser, screenshots):
    with tracking.tracked_run("ablate", stage="4"):
        parent = mlflow.active_run().info
        children = {}
        for kind, metrics in ABLATION_METRICS.items():
            with tracking.tracked_run("ablate", stage="4", mvp=ablate.MVP[kind], nested=True, kind=kind):
                mlflow.set_tags({"mlflow.runName": kind, "verdict": "pass", "verdict_text": f"{kind}: planted"})
                tracking.log_metrics(metrics)
                children[kind] = mlflow.active_run().info.run_id
    port = free_port()
    server = serve([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", mlflow_store, "--host", "127.0.0.1",
                    "--port", str(port)], f"http://127.0.0.1:{port}/health")
    try:
        page = browser.new_page(viewport={"width": 2200, "height": 2400})  # every run column and metric row on screen
        page.goto(f"http://127.0.0.1:{port}/#/compare-runs?runs={json.dumps(list(children.values()))}"
                  f"&experiments={json.dumps([parent.experiment_id])}")
        page.get_by_text("Comparing 5 Runs").wait_for(timeout=90_000)
        page.get_by_text("sample_efficiency").first.wait_for(timeout=30_000)
        text = page.inner_text("body")
        page.screenshot(path=str(screenshots / "mlflow_compare_ablations.png"), full_page=True)
        page.close()
    finally:
        stop(server)
    for kind, metrics in ABLATION_METRICS.items():
        assert kind in text
        for key, value in metrics.items():
            assert key in text and f"{value:.3f}".rstrip("0") in text, (key, value)


def test_optuna_dashboard_shows_the_tune_study(mlflow_store, tiny_data, tmp_path, browser, screenshots):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    result = CliRunner().invoke(tune.main, ["--data", str(tiny_data), "--storage", storage, "--study", "head",
                                            "--input", "noisy_flux", "--n-trials", "4"])
    assert result.exit_code == 0, result.output[-2000:]
    best = optuna.load_study(study_name="distill-head", storage=storage).best_trial
    port = free_port()
    server = serve([str(Path(sys.executable).parent / "optuna-dashboard"), storage, "--host", "127.0.0.1",
                    "--port", str(port)],
                   f"http://127.0.0.1:{port}/dashboard")
    try:
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(f"http://127.0.0.1:{port}/dashboard")
        page.get_by_text("distill-head").first.click(timeout=60_000)
        page.get_by_text(f"Best Trial (number={best.number})").wait_for(timeout=60_000)
        text = page.inner_text("body")
        page.screenshot(path=str(screenshots / "optuna_dashboard_study.png"), full_page=True)
        page.close()
    finally:
        stop(server)
    assert "alpha" in text and "Hyperparameter Importance" in text
