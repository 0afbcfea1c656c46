"""The template fit as a peer: the simulator's model fitted to the test subset, and the ratio of its squared error
to the Cramer-Rao bound (per label; for log g binned by S/N and T_eff)."""
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


def fit(ds, prior: bool, **_) -> tuple | None:
    """Nothing to learn but the labels' Gaussian prior (training mean and variance) when asked; refuses spectra
    the built-in simulator did not make."""
    ceiling.check_simulated(ds["test"])  # the fit needs the model that made the spectra
    train = ds["train"].params[list(LABELS)]
    return (train.mean().to_numpy(), train.var().to_numpy()) if prior else None


def predict(gauss, ds, noise_level: float, n_spectra: int, starts: int, workers: int, progress=None, **_) -> dict:
    """The five labels of the first ``n_spectra`` test spectra, with the evaluations each took."""
    spectra = ds["test"]
    params = spectra.params.iloc[:n_spectra].reset_index(drop=True)
    noisy, error = fixed_noisy(spectra, "test", noise_level, range(n_spectra))
    return {"test": tf.fit_spectra(noisy, noise_variance(error, noise_level), params, starts=starts, prior=gauss,
                                   workers=worker_count(workers, n_spectra), progress=progress)}


def diagnose(gauss, estimate, ds, noise_level: float, n_spectra: int, prior: bool, workers: int, **_) -> None:
    """Speed and evaluations; with noise, squared error over the Cramer-Rao bound and the ceiling per label."""
    fitted, spectra = estimate.predictions["test"], ds["test"]
    estimate.metrics |= {"template_fit_test_spectra_per_second": n_spectra / estimate.predict_seconds,
                         "template_fit_evaluations_per_spectrum": float(fitted["evaluations"].mean())}
    if noise_level <= 0:
        return
    params = spectra.params.iloc[:n_spectra].reset_index(drop=True)
    info = fisher.split_fisher(spectra, rows=n_spectra, workers=worker_count(workers, n_spectra))
    kind = "prior" if prior else "marginal"
    for k, label in enumerate(LABELS):
        bound = fisher.crb(info, k, fisher.prior_variances(params), noise_level)[kind].to_numpy()
        sq = (fitted[label] - params[label]).to_numpy() ** 2
        finite = np.isfinite(bound)
        estimate.metrics |= {
            f"template_fit_crb_ratio_{label}": float(sq[finite].mean() / bound[finite].mean()),
            f"template_fit_crb_median_ratio_{label}": float(np.median(sq[finite] / bound[finite])),
            f"template_fit_ceiling_r2_{label}": fisher.ceiling(pd.DataFrame({b: bound for b in fisher.BOUNDS}),
                                                               float(params[label].var()))[kind]}
        if label == "log_g":
            flux, error = spectra.read(0, n_spectra)
            snr = np.median(flux / np.sqrt(noise_variance(error, noise_level)), axis=1)
            table = tf.crb_bins(sq, bound, {"snr": snr, "T_eff": params["T_eff"]})
            estimate.tables["tables/crb_ratio_log_g.json"] = table
            estimate.figures["figures/crb_ratio_log_g.png"] = figures.crb_ratio(table)


def spectra_to_fit(settings: dict) -> int:
    return settings["n_spectra"]


def spectra_at_scale(scale: dict, n_test: int) -> dict:
    return {"n_spectra": min(scale["template_spectra"], n_test)}


TEMPLATE_FIT = Peer("template_fit", "template fit with the simulator's model (likelihood weighted by sigma)",
                    sees_sigma=True, bounded=True, fit=fit, predict=predict, diagnose=diagnose, inside_box=True,
                    needs_simulator=True, options=(PRIOR, STARTS, WORKERS), progress_total=spectra_to_fit,
                    step_params=spectra_at_scale)
