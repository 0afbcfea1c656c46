"""The template fit as a peer: the simulator's model fitted to the test subset, and the ratio of its squared error
to the Cramer-Rao bound (per label; for log g binned by S/N and T_eff).

Two ratios per label. ``template_fit_crb_ratio_{label}`` averages over every test spectrum with a finite bound (kept
for continuity): where a star's bound is wider than the label box, the box clips the fit, so this ratio falls below 1
(0.56 for log g at noise 1 on 1,000 spectra) and checks nothing. ``template_fit_crb_ratio_informative_{label}``
averages over the spectra whose unbiased bound has sd <= 0.1 x the box width (``template_fit.informative``;
``template_fit_n_informative_{label}`` of them; no ratio when there are none): there an efficient fit gives about 1,
the empirical check of the bound. With ``prior``, the fit and the bound take the same Gaussian prior: the training
split's label mean and variance (``training_prior``), which the fit may read; the test subset's own moments it may
not.
"""
import os

import numpy as np
import pandas as pd

from .. import ceiling, figures, fisher
from ..data import LABELS
from . import template_fit as tf
from .estimate import fixed_noisy
from .peer import Option, Peer

SPAWN_PAYS = 256  # spectra from which worker processes pay for their start (~8 s each: imports, bank)
PRIOR = Option("prior", False, "maximum a posteriori under the labels' Gaussian priors")
STARTS = Option("starts", 3, "starts per spectrum", minimum=1)
WORKERS = Option("workers", 0, "processes (0: one below 256 spectra, else one per core up to 4)", minimum=0)


def worker_count(workers: int, n_spectra: int) -> int:
    """``workers``, or for 0 one process below ``SPAWN_PAYS`` spectra and one per core (up to 4) from there."""
    return workers or (1 if n_spectra < SPAWN_PAYS else min(os.cpu_count() or 1, 4))


def noise_variance(error: np.ndarray, noise_level: float) -> np.ndarray:
    """The likelihood's per-pixel variance (float64); at noise level 0 the data are exact and any weights do."""
    return (max(noise_level, 1e-3) * error.astype(np.float64)) ** 2


def training_prior(ds) -> tuple:
    """The labels' Gaussian prior of the MAP fit and of its bound: (mean (5,), variance (5,)) of the training split's
    labels, in label units."""
    train = ds["train"].params[list(LABELS)]
    return train.mean().to_numpy(np.float64), fisher.prior_variances(train)


def fit(ds, prior: bool, **_) -> tuple | None:
    """Nothing to learn but the labels' Gaussian prior (``training_prior``) when asked; refuses spectra the
    built-in simulator did not make."""
    ceiling.check_simulated(ds["test"])  # the fit needs the model that made the spectra
    return training_prior(ds) if prior else None


def predict(gauss, ds, noise_level: float, n_spectra: int, starts: int, workers: int, progress=None, **_) -> dict:
    """The five labels of the first ``n_spectra`` test spectra, with the evaluations each took."""
    spectra = ds["test"]
    params = spectra.params.iloc[:n_spectra].reset_index(drop=True)
    noisy, error = fixed_noisy(spectra, "test", noise_level, range(n_spectra))
    return {"test": tf.fit_spectra(noisy, noise_variance(error, noise_level), params, starts=starts, prior=gauss,
                                   workers=worker_count(workers, n_spectra), progress=progress)}


def diagnose(gauss, estimate, ds, noise_level: float, n_spectra: int, prior: bool, workers: int, **_) -> None:
    """Speed and evaluations; with noise, squared error over the Cramer-Rao bound (over every spectrum and over the
    informative ones) and the ceiling per label. The bound is the unbiased one for the maximum-likelihood fit, the
    prior-aware one under the fit's own prior (``training_prior``) for the MAP fit."""
    fitted, spectra = estimate.predictions["test"], ds["test"]
    estimate.metrics |= {"template_fit_test_spectra_per_second": n_spectra / estimate.predict_seconds,
                         "template_fit_evaluations_per_spectrum": float(fitted["evaluations"].mean())}
    if noise_level <= 0:
        return
    params = spectra.params.iloc[:n_spectra].reset_index(drop=True)
    info = fisher.split_fisher(spectra, rows=n_spectra, workers=worker_count(workers, n_spectra))
    kind = "prior" if prior else "marginal"
    for k, label in enumerate(LABELS):
        bounds = fisher.crb(info, k, training_prior(ds)[1], noise_level)
        bound = bounds[kind].to_numpy()
        sq = (fitted[label] - params[label]).to_numpy() ** 2
        estimate.metrics |= crb_metrics(label, sq, bound, bounds["marginal"].to_numpy(), float(params[label].var()),
                                        kind)
        if label == "log_g":
            flux, error = spectra.read(0, n_spectra)
            snr = np.median(flux / np.sqrt(noise_variance(error, noise_level)), axis=1)
            table = tf.crb_bins(sq, bound, {"snr": snr, "T_eff": params["T_eff"]})
            estimate.tables["tables/crb_ratio_log_g.json"] = table
            estimate.figures["figures/crb_ratio_log_g.png"] = figures.crb_ratio(table)


def crb_metrics(label: str, sq, bound, unbiased, var_label: float, kind: str) -> dict:
    """One label's squared error ``sq`` over its ``bound`` (mean ratio over every finite bound, its median, and over
    the informative spectra with their count: no ratio when there are none) and its ceiling R^2."""
    finite = np.isfinite(bound)
    ratio, n = tf.informative_ratio(sq, bound, unbiased, dict(zip(tf.LABELS, tf.HI - tf.LO))[label])
    out = {f"template_fit_crb_ratio_{label}": float(sq[finite].mean() / bound[finite].mean()),
           f"template_fit_crb_median_ratio_{label}": float(np.median(sq[finite] / bound[finite])),
           f"template_fit_n_informative_{label}": n,
           f"template_fit_ceiling_r2_{label}": fisher.ceiling(pd.DataFrame({b: bound for b in fisher.BOUNDS}),
                                                              var_label)[kind]}
    return out | ({f"template_fit_crb_ratio_informative_{label}": ratio} if n else {})


def spectra_to_fit(settings: dict) -> int:
    return settings["n_spectra"]


def spectra_at_scale(scale: dict, n_test: int) -> dict:
    return {"n_spectra": min(scale["template_spectra"], n_test)}


TEMPLATE_FIT = Peer("template_fit", "template fit with the simulator's model (likelihood weighted by sigma)",
                    sees_sigma=True, bounded=True, fit=fit, predict=predict, diagnose=diagnose, inside_box=True,
                    needs_simulator=True, options=(PRIOR, STARTS, WORKERS), progress_total=spectra_to_fit,
                    step_params=spectra_at_scale)
