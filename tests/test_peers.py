"""The peers: The Cannon recovers what its model made, the template fit is the efficient estimator the Fisher bound
describes, the CNN learns a planted label, and the entry point logs one run per method."""
import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import r2_score

from distill import fisher
from distill.data import LABELS as DATA_LABELS
from distill.data import ArraySpectra, open_dataset
from distill.peers import PEERS, cannon_peer, estimate
from distill.peers import template_fit as tf
from distill.peers import template_fit_peer as tf_peer
from distill.peers.cannon import Cannon
from distill.peers.cannon_peer import EDGE
from distill.peers.cnn import StarNet
from distill.simulator.noise import error_from_flux
from distill.student.train import DistillSettings, DistillTrainer
from tests.conftest import mlflow_run

LABELS = list(tf.LABELS)
BOX = (tf.LO, tf.HI)


def test_the_cannon_recovers_the_labels_of_spectra_its_model_made():
    rng = np.random.default_rng(0)
    labels = rng.uniform(*BOX, size=(260, 5))
    truth = Cannon()
    truth._terms(5)
    truth.mean, truth.std, truth.theta = labels[:200].mean(0), labels[:200].std(0), rng.normal(size=(21, 300))
    flux = truth.model(labels)
    fitted = Cannon(block=64).fit(labels[:200], lambda a, b: flux[a:b])
    np.testing.assert_allclose(fitted.predict(flux[200:]), labels[200:], atol=1e-3)


def test_the_cannon_weights_pixels_by_their_training_scatter():
    rng = np.random.default_rng(1)
    labels = rng.uniform(*BOX, size=(400, 5))
    flux = 1 + 0.01 * (labels[:, :1] - 4800) / 1000 + rng.normal(size=(400, 50)) * np.r_[np.full(25, 0.01),
                                                                                            np.full(25, 0.1)]
    scatter = np.sqrt(Cannon().fit(labels, lambda a, b: flux[a:b]).scatter2)
    np.testing.assert_allclose(scatter[:25].mean(), 0.01, rtol=0.1)
    np.testing.assert_allclose(scatter[25:].mean(), 0.1, rtol=0.1)


def test_the_bounded_cannon_keeps_every_low_snr_fit_inside_the_box():
    """Spectra whose noise swamps a weak quadratic model: the unbounded step puts labels outside the box, the bounded
    one keeps every label inside and flags on the edge each spectrum the unbounded step took outside."""
    rng = np.random.default_rng(2)
    labels = rng.uniform(*BOX, size=(600, 5))
    truth = Cannon()
    truth._terms(5)
    truth.mean, truth.std, truth.theta = labels.mean(0), labels.std(0), 0.01 * rng.normal(size=(21, 200))
    flux = truth.model(labels) + rng.normal(size=(600, 200))  # S/N per pixel ~0.01 per label sd
    train = lambda a, b: flux[a:b]  # noqa: E731
    fits = {name: Cannon(box=box).fit(labels[:500], train).test_step(flux[500:]) for name, box in
            (("unbounded", None), ("bounded", BOX))}
    outside = ((fits["unbounded"][0] < tf.LO) | (fits["unbounded"][0] > tf.HI)).any(1)
    assert outside.sum() >= 10  # the planted case needs the box (16 of 100 spectra)
    inside = (fits["bounded"][0] >= tf.LO) & (fits["bounded"][0] <= tf.HI)
    assert inside.all()
    edge = fits["bounded"][1].any(1)
    assert edge[outside].all() and not fits["unbounded"][1].any()


@pytest.fixture(scope="module")
def tiny(tiny_data):
    return open_dataset(tiny_data, labels=DATA_LABELS)


def test_the_cannon_peer_logs_the_share_of_spectra_on_the_box_edge(tiny):
    est = estimate.run(PEERS["cannon"], tiny, noise_level=1.0, n_spectra=16, n_train=0, seed=0)
    test, train = est.predictions["test"], tiny["train"].params[list(LABELS)]
    assert ((test[LABELS] >= train.min()) & (test[LABELS] <= train.max())).all().all()
    edge = test[[EDGE + k for k in LABELS]]
    assert est.metrics["cannon_out_of_box_fraction"] == edge.any(axis=1).mean()
    assert est.metrics["cannon_out_of_box_fraction_log_g"] == edge[EDGE + "log_g"].mean()
    planted = pd.DataFrame(False, index=range(4), columns=edge.columns)
    planted.loc[0, EDGE + "log_g"] = planted.loc[1, EDGE + "C_M"] = True
    shares = cannon_peer.out_of_box(planted)
    assert shares["cannon_out_of_box_fraction"] == 0.5 and shares["cannon_out_of_box_fraction_log_g"] == 0.25


def test_the_informative_ratio_is_taken_over_the_informative_spectra_only():
    """Informative stars (unbiased sd 0.02 x the box) fitted efficiently: ratio 1. Uninformative stars (sd 3 x the box)
    whose fits the box clips: squared error far below their bound. The MAP bound (``bound``) is narrow for all; the
    subset is chosen on the unbiased one."""
    rng = np.random.default_rng(0)
    width, n = 4.0, 3000
    unbiased = np.r_[np.full(n, (0.02 * width) ** 2), np.full(n, (3 * width) ** 2)]
    bound = np.minimum(unbiased, (0.05 * width) ** 2)
    sq = np.r_[bound[:n] * rng.chisquare(1, n), rng.uniform(0, width, n) ** 2 / 3]
    ratio, count = tf.informative_ratio(sq, bound, unbiased, width)
    assert count == n
    np.testing.assert_allclose(ratio, 1, atol=0.08)
    assert sq.mean() / unbiased.mean() < 0.05  # over every spectrum the ratio checks nothing
    metrics = tf_peer.crb_metrics("log_g", sq, unbiased, unbiased, width**2 / 12, "marginal")
    assert metrics["template_fit_n_informative_log_g"] == n
    np.testing.assert_allclose(metrics["template_fit_crb_ratio_informative_log_g"], 1, atol=0.08)
    none = tf_peer.crb_metrics("log_g", sq[n:], unbiased[n:], unbiased[n:], width**2 / 12, "marginal")
    assert none["template_fit_n_informative_log_g"] == 0 and "template_fit_crb_ratio_informative_log_g" not in none


def test_the_map_fit_and_its_bound_take_the_training_prior(tiny, monkeypatch):
    seen = {"fit": [], "bound": []}
    fit_spectra, crb = tf.fit_spectra, fisher.crb

    def fit_recorded(*args, prior=None, **kwargs):
        seen["fit"].append(prior)
        return fit_spectra(*args, prior=prior, **kwargs)

    def crb_recorded(info, index, var_prior, *args):
        seen["bound"].append(var_prior)
        return crb(info, index, var_prior, *args)

    monkeypatch.setattr(tf, "fit_spectra", fit_recorded)
    monkeypatch.setattr(fisher, "crb", crb_recorded)
    est = estimate.run(PEERS["template_fit"], tiny, noise_level=1.0, n_spectra=4, prior=True, starts=1, workers=1)
    train = tiny["train"].params[LABELS]
    (mean, var), = seen["fit"]
    np.testing.assert_allclose(mean, train.mean())
    np.testing.assert_allclose(var, train.var())
    assert len(seen["bound"]) == len(LABELS)
    for var_prior in seen["bound"]:
        np.testing.assert_allclose(var_prior, var)
    assert "template_fit_n_informative_log_g" in est.metrics


def simulated(params: dict, n=1) -> tuple:
    """Noiseless model flux, its error at 20 exposures, and the params frame of n copies of one star."""
    frame = pd.DataFrame([params] * n).assign(mag=21.5)
    flux = tf.model(frame[LABELS].to_numpy(float), frame[["mag"]])
    return flux, error_from_flux(flux, frame["mag"].to_numpy(), 20).astype(float), frame


def test_the_template_fit_recovers_noiseless_labels_from_its_bank():
    stars = [dict(T_eff=4200, log_g=1.8, M_H=-0.4, a_M=0.2, C_M=0.1), dict(T_eff=5600, log_g=4.4, M_H=0.3, a_M=0.0,
                                                                          C_M=-0.3)]
    flux, error, params = zip(*(simulated(s) for s in stars))
    flux, error, params = np.concatenate(flux), np.concatenate(error), pd.concat(params, ignore_index=True)
    var = (1e-3 * error) ** 2
    out = tf.fit_spectra(flux, var, params, bank=128, starts=3)
    truth = params[LABELS].to_numpy(float)
    assert np.all(np.abs(out["log_g"] - params["log_g"]) < tf.STEP[1]), out
    at_truth = tf._cost(flux, tf.model(truth, params[["mag"]]), var, truth, None)
    assert np.all(out["chi2"] <= at_truth + 1e-6)  # no better point exists; where a label is inert it may wander


def test_the_template_fits_scatter_over_noise_draws_matches_the_cramer_rao_bound():
    """An efficient estimator's scatter is the bound; the same fit with flat pixel weights (a planted defect) is not."""
    star = dict(T_eff=4500, log_g=2.5, M_H=-0.3, a_M=0.1, C_M=0.0)
    flux, error, params = simulated(star)
    level, draws = 0.05, 100
    info = fisher.fisher_matrices(fisher.jacobian(fisher.simulator_flux, params), error)
    bound = fisher.crb(info, 1, np.ones(5), level)["marginal"].iloc[0]
    noisy = flux + level * error * np.random.default_rng(3).standard_normal((draws, flux.shape[1]))
    frame = pd.concat([params] * draws, ignore_index=True)
    ratio = {}
    for weights, var, n in (("right", (level * error) ** 2, draws),
                            ("flat", np.full_like(error, (level * error).mean() ** 2), 40)):
        theta, _, _ = tf.levenberg_marquardt(noisy[:n], np.tile(var, (n, 1)), frame[["mag"]].iloc[:n],
                                             frame[LABELS].to_numpy(float)[:n])
        ratio[weights] = theta[:, 1].std() / np.sqrt(bound)
        if weights == "right":
            assert abs(theta[:, 1].mean() - star["log_g"]) < 3 * np.sqrt(bound / draws)
    assert abs(ratio["right"] - 1) < 0.2 and ratio["flat"] > 1.5, ratio


def test_the_maximum_a_posteriori_fit_shrinks_towards_the_prior():
    """At low S/N the prior pulls log g towards its mean and narrows the scatter; without it the fit is wider."""
    star = dict(T_eff=5200, log_g=4.2, M_H=-1.0, a_M=0.1, C_M=0.0)
    flux, error, params = simulated(star)
    draws, level = 24, 3.0
    noisy = flux + level * error * np.random.default_rng(5).standard_normal((draws, flux.shape[1]))
    frame = pd.concat([params] * draws, ignore_index=True)
    prior = ((tf.LO + tf.HI) / 2, (tf.HI - tf.LO) ** 2 / 12 / 4)  # a prior narrower than the box, centred on it
    fits = {name: tf.levenberg_marquardt(noisy, np.tile((level * error) ** 2, (draws, 1)), frame[["mag"]],
                                         frame[LABELS].to_numpy(float), p)[0][:, 1] for name, p in
            (("ml", None), ("map", prior))}
    assert fits["map"].std() < fits["ml"].std()
    assert abs(fits["map"].mean() - prior[0][1]) < abs(fits["ml"].mean() - prior[0][1])


def planted(n, rng, shuffle=False):
    """Spectra whose one line's depth is the label: 1 - 0.3 y g(x) plus noise 0.05."""
    y = rng.uniform(0, 1, n)
    x = np.arange(256)
    flux = (1 - 0.3 * y[:, None] * np.exp(-0.5 * ((x - 128) / 3.0) ** 2)).astype(np.float32)
    error = np.full_like(flux, 0.05)
    return ArraySpectra(flux, error), rng.permutation(y) if shuffle else y


@pytest.mark.parametrize("shuffle", [False, True])
def test_the_cnn_learns_a_planted_label_and_not_a_shuffled_one(shuffle):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    spectra, y = {}, {}
    for split, n in (("train", 512), ("val", 128), ("test", 128)):
        spectra[split], y[split] = planted(n, rng, shuffle and split == "train")
    trainer = DistillTrainer(StarNet(256), spectra, None, y, DistillSettings(lambda_z=0, epochs=15, batch_size=64,
                                                                          lr=1e-3), torch.device("cpu"))
    trainer.fit()
    r2 = r2_score(y["test"], trainer.predict("test")[1])
    assert (r2 < 0.3) if shuffle else (r2 > 0.8), r2


def test_crb_bins_compare_squared_error_with_the_bound():
    rng = np.random.default_rng(0)
    bound = rng.uniform(0.01, 0.1, 4000)
    sq = bound * rng.chisquare(1, 4000)  # an efficient estimator: ratio 1, median ratio 0.455
    table = tf.crb_bins(sq, bound, {"snr": rng.uniform(1, 10, 4000)})
    assert len(table) == 4 and table["n"].sum() == 4000
    np.testing.assert_allclose(table["ratio"], 1, atol=0.15)
    np.testing.assert_allclose(table["median_ratio"], 0.455, atol=0.08)


@pytest.mark.slow
def test_peer_entry_point_logs_a_child_per_method(mlflow_store, tiny_data):
    result = mlflow_run(f"data={tiny_data}", "method=cannon,template_fit,cnn", "n_spectra=8", "n_train=48",
                        "epochs=1", "starts=1", entry="peer")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    children = {r.data.tags["method"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert set(children) == {"cannon", "template_fit", "cnn"}
    for method, run in children.items():
        m = run.data.metrics
        assert m[f"{method}_test_r2_log_g_lo"] <= m[f"{method}_test_r2_log_g"] <= m[f"{method}_test_r2_log_g_hi"]
        assert m[f"{method}_n_test"] == 8 and f"{method}_predict_seconds" in m
        assert run.data.tags["sees_sigma"] == ("true" if method == "template_fit" else "false")
    assert "template_fit_crb_ratio_log_g" in children["template_fit"].data.metrics
    assert children["cannon"].data.metrics["cannon_n_train"] == 48
    assert "cannon_test_mae_log_g" in children["cannon"].data.metrics
    assert "cnn_val_r2_log_g" in children["cnn"].data.metrics
