"""The information ceiling: finite-difference Fisher matrices against analytic ones, the bounds' edge cases,
the step check on the simulator, and the `fisher` entry point on tiny data."""
import shutil

import h5py
import mlflow
import numpy as np
import pandas as pd
import pytest

from distill import fisher, probe
from distill.data import FLUX_KEY, open_dataset
from distill.simulator.sample import sample_labels
from tests.conftest import mlflow_run

X = np.linspace(-6.0, 6.0, 400)
LINE_A = np.exp(-0.5 * (X / 0.6) ** 2)
LINE_B = np.exp(-0.5 * ((X - 0.8) / 0.9) ** 2)  # overlaps A: the two depths are partly degenerate
SIGMA = 0.05
TOY = {"a": (0.0, 1.0), "b": (0.0, 1.0), "c": (0.0, 1.0)}
TOY_STEPS = {"a": 0.01, "b": 0.01, "c": 0.01}


def toy_flux(p: pd.DataFrame) -> np.ndarray:
    """Continuum 1 with two Gaussian lines whose depths are a and b; c changes nothing."""
    a, b, c = (p[k].to_numpy()[:, None] for k in "abc")
    return 1.0 - a * LINE_A - b * LINE_B + 0.0 * c


def toy_fisher(params: pd.DataFrame, labels=("a", "b", "c")) -> np.ndarray:
    jac = fisher.jacobian(toy_flux, params, labels, TOY_STEPS, TOY)
    return fisher.fisher_matrices(jac, np.full((len(params), X.size), SIGMA))


def test_gaussian_line_crb_equals_the_analytic_value():
    """Depth linear in the parameter: I = sum(g^2) / sigma^2 exactly; marginal and known-others bounds follow."""
    params = pd.DataFrame({"a": [0.3, 0.0, 1.0], "b": [0.5, 0.2, 0.9], "c": 0.5})  # centre, lower edge, upper edge of a
    info = toy_fisher(params, ("a", "b"))
    gg, hh, gh = LINE_A @ LINE_A, LINE_B @ LINE_B, LINE_A @ LINE_B
    np.testing.assert_allclose(info[0], np.array([[gg, gh], [gh, hh]]) / SIGMA**2, rtol=1e-9)
    bounds = fisher.crb(info, 0, var_prior=1 / 12)
    np.testing.assert_allclose(bounds["known_others"], SIGMA**2 / gg, rtol=1e-9)
    np.testing.assert_allclose(bounds["marginal"], SIGMA**2 * hh / (gg * hh - gh**2), rtol=1e-9)
    assert (bounds["marginal"] > bounds["known_others"]).all()  # the degeneracy with b costs information
    np.testing.assert_allclose(bounds["prior"], np.linalg.inv(info + 12 * np.eye(2))[:, 0, 0], rtol=1e-10)
    assert (bounds["prior"] < 1 / (1 / bounds["marginal"] + 12)).all()  # b's prior also breaks the degeneracy
    np.testing.assert_allclose(fisher.crb(info, 0, 1 / 12, noise_level=2.0)["marginal"],
                               4 * bounds["marginal"], rtol=1e-12)


def test_one_sided_differences_at_the_range_edges_are_exact_for_a_quadratic():
    flux_fn = lambda p: p["a"].to_numpy()[:, None] ** 2 * LINE_A  # noqa: E731
    params = pd.DataFrame({"a": [0.0, 0.5, 1.0]})
    assert list(fisher.schemes(params["a"], 0.01, 0.0, 1.0)) == ["forward", "central", "backward"]
    jac = fisher.jacobian(flux_fn, params, ("a",), TOY_STEPS, TOY)
    np.testing.assert_allclose(jac[:, 0], 2 * params["a"].to_numpy()[:, None] * LINE_A, atol=1e-10)


def test_a_label_the_spectrum_ignores_is_flagged():
    params = pd.DataFrame({"a": [0.3, 0.6], "b": [0.5, 0.1], "c": [0.5, 0.5]})
    info = toy_fisher(params)
    assert fisher.n_singular(info) == 2
    ignored = fisher.crb(info, 2, var_prior=0.1)
    assert np.isinf(ignored["marginal"]).all() and np.isinf(ignored["known_others"]).all()
    np.testing.assert_allclose(ignored["prior"], 0.1)  # only the prior is left
    # a label that is read is unaffected by the ignored one
    gg, hh, gh = LINE_A @ LINE_A, LINE_B @ LINE_B, LINE_A @ LINE_B
    np.testing.assert_allclose(fisher.crb(info, 0, 1.0)["marginal"], SIGMA**2 * hh / (gg * hh - gh**2), rtol=1e-6)
    assert fisher.ceiling(ignored, 0.1) == {"marginal": 0.0, "known_others": 0.0, "prior": 0.0}


def test_perfectly_degenerate_labels_have_no_unbiased_bound():
    flux_fn = lambda p: 1 - (p["a"] + p["b"]).to_numpy()[:, None] * LINE_A  # noqa: E731
    params = pd.DataFrame({"a": [0.4], "b": [0.3]})
    info = fisher.fisher_matrices(fisher.jacobian(flux_fn, params, ("a", "b"), TOY_STEPS, TOY),
                                  np.full((1, X.size), SIGMA))
    bounds = fisher.crb(info, 0, 1.0)
    assert np.isinf(bounds["marginal"][0]) and np.isfinite(bounds["known_others"][0])


def test_the_prior_aware_bound_is_the_gaussian_posterior_of_a_degenerate_pair():
    """Flux that depends on a + b only: the data fix the sum, the priors split it. With prior variances v_a, v_b
    the posterior variance of a is v_a (1 - v_a / (v_a + v_b + 1 / s)), s = the information on the sum."""
    flux_fn = lambda p: 1 - (p["a"] + p["b"]).to_numpy()[:, None] * LINE_A  # noqa: E731
    info = fisher.fisher_matrices(fisher.jacobian(flux_fn, pd.DataFrame({"a": [0.4], "b": [0.3]}), ("a", "b"),
                                                  TOY_STEPS, TOY), np.full((1, X.size), SIGMA))
    s = LINE_A @ LINE_A / SIGMA**2
    v_a, v_b = 0.2, 0.05
    analytic = v_a * (1 - v_a / (v_a + v_b + 1 / s))
    assert fisher.crb(info, 0, [v_a, v_b])["prior"][0] == pytest.approx(analytic, rel=1e-8)
    assert analytic < v_a  # the old bound (prior on a only, b profiled out) gave v_a: no information at all


def test_simulator_jacobian_agrees_with_half_steps():
    params = sample_labels(4, [7, 0])
    half = {k: v / 2 for k, v in fisher.STEPS.items()}
    jac, fine = fisher.jacobian(fisher.simulator_flux, params), fisher.jacobian(fisher.simulator_flux,
                                                                                params, steps=half)
    rel = np.linalg.norm(jac - fine, axis=-1) / np.linalg.norm(fine, axis=-1)
    assert np.median(rel) < 0.01 and rel.max() < 0.05, rel  # the few % are kinks of the simulator's interpolation
    assert np.all(np.linalg.norm(fine, axis=-1) > 0)  # every label changes every spectrum


def test_ceiling_falls_with_noise():
    params = sample_labels(6, [8, 0])
    info = fisher.fisher_matrices(fisher.jacobian(fisher.simulator_flux, params),
                                  np.full((6, 4096), 0.05 * fisher.simulator_flux(params).mean()))
    var = 4.0**2 / 12
    ceilings = [fisher.ceiling(fisher.crb(info, 1, var, level), var) for level in (0, 0.5, 1, 2, 4)]
    for bound in fisher.BOUNDS:
        values = [c[bound] for c in ceilings]
        assert values[0] == 1.0 and all(a > b for a, b in zip(values, values[1:]) if a > 0), (bound, values)
    assert all(c["prior"] >= c["marginal"] for c in ceilings)


@pytest.mark.slow
def test_fisher_entry_point_and_no_probe_above_the_ceiling(mlflow_store, tiny_data):
    result = mlflow_run(f"data={tiny_data}", "noise_level=1.0", entry="fisher")
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    m = run.data.metrics
    assert 0 <= m["ceiling_r2_log_g"] <= m["ceiling_known_others_r2_log_g"]
    assert m["ceiling_r2_log_g"] <= m["ceiling_prior_r2_log_g"] < 1
    assert m["yardstick_r2_log_g"] == m["ceiling_prior_r2_log_g"] and 0 <= m["bound_r2_log_g"] < 1
    assert m["n_spectra_used"] == 32 and m["fd_half_step_median_rel_change_log_g"] < 0.01
    assert m["crb_marginal_log_g_q10"] <= m["crb_marginal_log_g_q50"] <= m["crb_marginal_log_g_q90"]
    client = mlflow.MlflowClient()
    levels = pd.read_json(client.download_artifacts(run.info.run_id, "tables/ceiling_by_noise.json"), orient="split")
    prior = levels[levels.label == "log_g"].sort_values("noise_level")["prior"].to_numpy()
    assert np.all(np.diff(prior) < 0)
    assert {"figures/crb_log_g.png",
            "figures/ceiling_vs_noise.png"} <= {f.path for f in client.list_artifacts(run.info.run_id, "figures")}

    # the stored matrices give the logged ceiling, and a Ridge probe on raw flux does not beat it beyond sampling error
    table = pd.read_parquet(client.download_artifacts(run.info.run_id, "fisher.parquet"))
    assert fisher.ceiling_at(table, 1.0)["prior"] == pytest.approx(m["ceiling_prior_r2_log_g"])
    ds = open_dataset(tiny_data)
    fs = probe.baseline_features(ds, "noisy_flux", 1.0)
    pred = probe.fit_label(fs, "log_g", "ridge").predictions["test"]
    sq = (pred - fs.y["test"]["log_g"].to_numpy()) ** 2
    bound = fisher.crb(fisher.from_table(table), 1, fisher.prior_variances(table))["prior"].to_numpy()
    assert sq.mean() >= bound.mean() - 2 * sq.std() / np.sqrt(len(sq))


@pytest.mark.slow
def test_fisher_refuses_data_the_simulator_did_not_make(mlflow_store, tiny_data, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_data, other)
    with h5py.File(other / "test" / "dataset.h5", "a") as f:
        f[FLUX_KEY][:4] = f[FLUX_KEY][:4] * 1.1
    result = mlflow_run(f"data={other}", entry="fisher")
    assert result.returncode != 0
    assert "not the built-in simulator's model" in result.stderr
    assert not mlflow.search_runs(search_all_experiments=True, filter_string="attributes.status = 'FINISHED'").shape[0]
