"""`mlflow run . -e simulate` end to end against a temporary SQLite store."""
import mlflow
import pandas as pd
import pytest

from tests.conftest import mlflow_run

pytestmark = pytest.mark.slow  # end-to-end: real processes, servers or a browser


def test_simulate_smoke(mlflow_store, tmp_path):
    out = tmp_path / "sim"
    result = mlflow_run(f"out={out}", "n_train=24", "n_val=8", "n_test=8")
    assert result.returncode == 0, result.stderr[-3000:]
    for split, n in (("train", 24), ("val", 8), ("test", 8)):
        assert len(pd.read_hdf(out / split / "dataset.h5", "dataset/params")) == n
    run = mlflow.search_runs(search_all_experiments=True, output_format="list")[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["n_train"] == "24" and run.data.tags["stage"] == "data"
    assert len(run.data.tags["digest_train"]) == 32
    assert 4 < run.data.metrics["median_snr_train"] < 10
    assert len(run.data.tags["simulator_digest"]) == 16
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "figures")}
    assert artifacts == {"figures/dwarf_vs_giant.png", "figures/error_vs_flux.png", "figures/snr_distribution.png"}
    again = mlflow_run(f"out={out}", "n_train=24", "n_val=8", "n_test=8")  # same settings, same code: reused
    assert again.returncode == 0 and "reusing it" in again.stderr
    other = mlflow_run(f"out={out}", "n_train=25", "n_val=8", "n_test=8")
    assert other.returncode != 0 and "exists with other contents" in other.stderr


def test_simulate_rejects_bad_parameters_and_writes_nothing(mlflow_store, tmp_path):
    for bad, message in (("n_train=-5", "-5 is not in the range"), ("prior=lognormal", "'lognormal' is not one of"),
                         ("mag=bright", "give a magnitude")):
        out = tmp_path / "bad"
        result = mlflow_run(f"out={out}", bad, "n_val=2", "n_test=2")
        assert result.returncode != 0
        assert message in result.stderr
        assert not out.exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = mlflow_run(f"out={blocker}/sim", "n_train=2", "n_val=2", "n_test=2")
    assert result.returncode != 0 and "error: " in result.stderr and "cannot write there" in result.stderr
    failed = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                filter_string="attributes.status = 'FAILED'")
    assert failed and "error" in failed[0].data.tags
