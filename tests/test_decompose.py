"""Stage A: out-of-fold residuals, the variance identity, the verdicts, and the entry point."""
import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from distill import decompose, heads, probe
from distill.intervals import Interval
from distill.teacher import PRESETS, BlindSpotUNet1D, save
from tests.conftest import mlflow_run


def test_training_residual_is_out_of_fold():
    """In-sample residuals of a flexible head shrink; out-of-fold ones match unseen data."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 20))
    y = x[:, 0] + np.sin(3 * x[:, 1]) + rng.normal(scale=0.5, size=1500)
    train, test = slice(0, 1000), slice(1000, None)
    pipeline = heads.make_pipeline("lightgbm", n_estimators=200, num_leaves=31)
    oof = y[train] - decompose.out_of_fold(pipeline, x[train], y[train], folds=5)
    model = heads.fit(heads.make_pipeline("lightgbm", n_estimators=200, num_leaves=31), x[train], y[train])
    in_sample = y[train] - model.predict(x[train])
    unseen = y[test] - model.predict(x[test])
    assert oof.std() > 1.2 * in_sample.std()
    assert abs(oof.std() - unseen.std()) < 0.1 * unseen.std()


def test_the_error_only_folds_keep_the_ridge_alpha_chosen_on_validation():
    rng = np.random.default_rng(1)
    xs, ys = {}, {}
    for split, n in (("train", 60), ("val", 200), ("test", 200)):
        factor = rng.normal(size=n)
        xs[split] = (factor[:, None] + 3 * rng.normal(size=(n, 200))).astype(np.float32)  # fewer rows than pixels
        ys[split] = pd.DataFrame({"log_g": factor})
    error = probe.FeatureSet(xs, ys, "error")
    results, head, r = decompose.error_only_residual(error, "log_g", ["ridge"], {"alpha": heads.ON_VAL}, folds=3)
    alpha = results["log_g", "ridge"].scores["ridge_alpha_log_g"]
    assert alpha >= 10  # 1e-3 would overfit 60 rows of 200 pixels
    expected = decompose.out_of_fold(heads.make_pipeline("ridge", alpha=alpha), xs["train"],
                                     ys["train"]["log_g"].to_numpy(), folds=3)
    np.testing.assert_allclose(r["train"], ys["train"]["log_g"].to_numpy() - expected)


def test_variance_decomposition_is_an_identity():
    rng = np.random.default_rng(1)
    y = rng.normal(size=500)
    y_hat = 0.7 * y + rng.normal(scale=0.3, size=500)
    parts = decompose.variance_decomposition(y, y_hat)
    assert parts["var_y"] == pytest.approx(parts["var_y_hat"] + parts["var_r"] + parts["cov_term"])
    assert parts["r_share"] == pytest.approx(parts["var_r"] / parts["var_y"])


def ci(value, half=0.03) -> Interval:
    return Interval(value, value - half, value + half)


@pytest.mark.parametrize("latent, flux, gain, control, code", [
    (0.01, 0.30, -0.29, None, "shortcut"),  # the latent's interval includes 0
    (0.29, 0.30, -0.01, None, "keeps_flux_information"),  # the gain's interval includes 0
    (0.45, 0.30, 0.15, None, "adds_value"),
    (0.45, 0.30, 0.15, 0.10, "adds_value"),  # beats the flux read beside sigma too
    (0.45, 0.30, 0.15, 0.0, "adds_value_or_shortcut"),  # does not: maybe sigma read non-linearly
    (0.08, 0.30, -0.22, None, "loses_flux_information"),
    (0.40, 0.02, 0.38, None, "no_residual_signal"),  # flux's interval includes 0
])
def test_verdicts_read_in_units_of_the_interval(latent, flux, gain, control, code):
    got, text = decompose.verdict(ci(latent), ci(flux), ci(gain), None if control is None else ci(control))
    assert got == code
    assert ("real extra information" in text) == (code == "adds_value")


@pytest.mark.slow
def test_decompose_error_smoke(mlflow_store, tiny_data, tmp_path):
    torch.manual_seed(0)
    save(BlindSpotUNet1D(PRESETS["cpu"]), tmp_path / "t.pt")
    assert mlflow_run(f"data={tiny_data}", f"teacher={tmp_path / 't.pt'}", "layer=enc_pre_latent",
                      entry="extract").returncode == 0
    result = mlflow_run(f"data={tiny_data}", "folds=3", entry="decompose_error")
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                filter_string="tags.`mlflow.project.entryPoint` = 'decompose_error'")
    m = run.data.metrics
    for head in ("ridge", "lightgbm"):
        assert f"error_{head}_test_r2_log_g" in m and f"error_{head}_val_r2_log_g" in m
        for name in ("noisy_flux", "clean_flux", "noisy_flux_and_error", "latent"):
            assert f"{name}_{head}_test_r2_residual" in m and f"{name}_{head}_test_r2_residual_lo" in m
        assert f"{name}_gain_test_r2_log_g_hi" in m  # what each reading adds to the error-only log g
    assert m["verdict_latent_r2_residual_lo"] <= m["verdict_latent_r2_residual"] <= m["verdict_latent_r2_residual_hi"]
    for split in ("train", "val", "test"):
        for key in ("r_mean", "r_std", "r_share", "cov_term"):
            assert f"{split}_residual_{key}" in m
    assert m["error_ridge_test_r2_log_g"] > 0.3  # the leak: clean error alone predicts log g
    assert run.data.tags["outcome_A"] in ("shortcut", "keeps_flux_information", "adds_value", "adds_value_or_shortcut",
                                          "loses_flux_information", "no_residual_signal")  # a reading, no verdict
    assert run.data.tags["outcome_text_A"] and not any(k.startswith("verdict") for k in run.data.tags)
    assert run.data.tags["a1_head"] in ("ridge", "lightgbm")
    figures = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "figures")}
    assert len(figures) == 4


def test_a_residual_reading_is_also_a_gain_in_log_g_units():
    rng = np.random.default_rng(0)
    y = rng.normal(size=1000)
    error_only = y + 0.6 * rng.normal(size=1000)
    r = y - error_only
    reads = {"flux": r + 0.3 * rng.normal(size=1000), "nothing": np.zeros(1000)}
    gains = decompose.log_g_gains(y, error_only, reads)
    assert gains["flux"].lo > 0.1 and gains["nothing"].value == 0.0


@pytest.mark.parametrize("student, status, says", [(0.2, "pass", "reads part of the log g that sigma alone does not"),
                                                   (0.01, "undecided", "may or may not read"),
                                                   (-0.1, "fail", "reads none of the log g")])
def test_stage_b_says_whether_the_flux_only_student_reads_what_sigma_does_not_explain(student, status, says):
    """Stage B's sentence is about the residual, never a shortcut: a flux-only student cannot see sigma."""
    v = decompose.residual_reading(ci(student), ci(0.1), ci(student - 0.1))
    text = v.tags()["verdict_text_B"]
    assert v.tags()["verdict_B"] == status and says in text and ci(student).text() in text
    assert "shortcut" not in text
