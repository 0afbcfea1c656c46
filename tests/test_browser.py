"""What a user looks at, in a real browser: optuna-dashboard showing a `tune` study (the MLflow UI comparing a real
`ablate` run's children is checked at the end of tests/test_main.py). Screenshots land in reports/test-artifacts
(or $DISTILL_TEST_ARTIFACTS)."""
import sys
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from entrypoints import tune
from tests.conftest import free_port, serve, stop

pytestmark = pytest.mark.slow  # end-to-end: real processes, servers or a browser

def test_optuna_dashboard_shows_the_tune_study(mlflow_store, tiny_data, tmp_path, browser, screenshots):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    result = CliRunner().invoke(tune.main, ["--data", str(tiny_data), "--storage", storage, "--study", "head",
                                            "--input", "noisy_flux", "--n-trials", "4"])
    assert result.exit_code == 0, result.output[-2000:]
    (name,) = optuna.get_all_study_names(storage)  # distill-head-<digest of data, input and search space>
    best = optuna.load_study(study_name=name, storage=storage).best_trial
    port = free_port()
    server = serve([str(Path(sys.executable).parent / "optuna-dashboard"), storage, "--host", "127.0.0.1",
                    "--port", str(port)],
                   f"http://127.0.0.1:{port}/dashboard")
    try:
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(f"http://127.0.0.1:{port}/dashboard")
        page.get_by_text(name).first.click(timeout=60_000)
        page.get_by_text(f"Best Trial (number={best.number})").wait_for(timeout=60_000)
        text = page.inner_text("body")
        page.screenshot(path=str(screenshots / "optuna_dashboard_study.png"), full_page=True)
        page.close()
    finally:
        stop(server)
    assert "alpha" in text and "Hyperparameter Importance" in text
