"""Maximum-likelihood (or maximum a posteriori) fit of the five labels with the simulator's own noiseless model: the
efficient classical estimator, and the empirical check of the Fisher ceiling (``distill.fisher``).

A spectrum's noisy flux d, stored error sigma at noise level s:

    chi2(theta) = sum_p (d_p - F_p(theta))^2 / (s sigma_p)^2  [+ sum_k (theta_k - mu_k)^2 / Var_k  with the prior]

where the prior is the Gaussian of the prior-aware bound: the training split's label mean and variance, the same
moments the peer's bound takes (``template_fit_peer``), so the fit and its bound assume one prior. The magnitude is
known (it is photometry), as in the bound. chi2 is minimised by Levenberg-Marquardt (Press et al., Numerical
Recipes, 3rd ed., 15.5.2) on a batch of spectra at once: forward-difference Jacobians with ``fisher.STEPS``
(backward at the top of the box), steps clipped to the label box, from the ``starts`` best templates of a bank of
label points (a scrambled Sobol sequence in the box, evaluated once, scaled to each spectrum's magnitude: the model
is proportional to 10^(-0.4 mag)). Reading sigma for the likelihood weights means it sees sigma.
"""
import contextlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from scipy.stats import qmc

from .. import fisher
from ..simulator.model import LABELS, PHYSICS
from ..simulator.sample import RANGES

LO = np.array([RANGES[k][0] for k in LABELS])
HI = np.array([RANGES[k][1] for k in LABELS])
STEP = np.array([fisher.STEPS[k] for k in LABELS])
MAG0 = 21.5  # magnitude of the template bank
INFORMATIVE = 0.1  # a spectrum informs a label when its unbiased bound's sd is at most this share of the box width


def model(theta: np.ndarray, extra: pd.DataFrame, chunk: int = 32) -> np.ndarray:
    """Noiseless flux (n, P) float64 of labels theta (n, 5); ``extra`` holds ``mag`` and the physics switches.
    Evaluated ``chunk`` rows at a time: the fine grid of a few dozen spectra stays in cache (2x faster than 256)."""
    params = extra.reset_index(drop=True).assign(**dict(zip(LABELS, np.asarray(theta).T)))
    return np.concatenate([fisher.simulator_flux(params.iloc[lo:lo + chunk]) for lo in range(0, len(params), chunk)])


def template_bank(size: int, extra: pd.Series, seed: int = 0) -> tuple:
    """(labels (size, 5), flux (size, P) at magnitude ``MAG0``) on a scrambled Sobol sequence in the label box."""
    theta = LO + qmc.Sobol(len(LABELS), seed=seed).random(size) * (HI - LO)
    rows = pd.DataFrame([extra.to_dict()] * size).assign(mag=MAG0)
    return theta, model(theta, rows)


def best_starts(data, var, mag, bank: tuple, starts: int, prior=None) -> np.ndarray:
    """The ``starts`` bank labels of least chi2 for each spectrum: (n, starts, 5)."""
    theta, flux = bank
    w = 1.0 / var
    scale = 10 ** (-0.4 * (np.asarray(mag, float) - MAG0))[:, None]
    chi2 = -2 * scale * ((data * w) @ flux.T) + scale**2 * (w @ (flux**2).T)  # + sum d^2 w, the same for all
    if prior is not None:
        chi2 = chi2 + (((theta - prior[0]) ** 2) / prior[1]).sum(1)
    return theta[np.argsort(chi2, axis=1)[:, :starts]]


def _cost(data, f, var, theta, prior):
    out = (((data - f) ** 2) / var).sum(1)
    return out if prior is None else out + (((theta - prior[0]) ** 2) / prior[1]).sum(1)


def _jacobian(theta, extra, f0):
    """Forward differences (backward at the top of the box): (n, 5, P)."""
    sign = np.where(theta + STEP > HI, -1.0, 1.0)
    points = np.concatenate([theta + np.eye(len(LABELS))[k] * sign[:, k:k + 1] * STEP for k in range(len(LABELS))])
    f = model(points, pd.concat([extra] * len(LABELS), ignore_index=True)).reshape(len(LABELS), len(theta), -1)
    return ((f - f0[None]) / (sign.T * STEP[:, None])[:, :, None]).transpose(1, 0, 2)


def levenberg_marquardt(data, var, extra, theta, prior=None, max_iter=40, tol=1e-6) -> tuple:
    """Minimise chi2 from theta (n, 5) for every spectrum at once: (theta, chi2, model evaluations per spectrum).

    A spectrum stops when its accepted step moves every label by less than ``tol`` x its finite-difference step, or
    when the damping grows past 1e10."""
    theta = np.clip(np.array(theta, dtype=float), LO, HI)
    extra = extra.reset_index(drop=True)
    f = model(theta, extra)
    cost = _cost(data, f, var, theta, prior)
    lam = np.full(len(theta), 1e-3)
    active = np.ones(len(theta), bool)
    jac, stale = np.empty((len(theta), len(LABELS), data.shape[1])), np.ones(len(theta), bool)
    evals = np.ones(len(theta))
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        redo = idx[stale[idx]]
        if redo.size:
            jac[redo] = _jacobian(theta[redo], extra.iloc[redo], f[redo])
            evals[redo] += len(LABELS)
            stale[redo] = False
        j, w = jac[idx], 1.0 / var[idx]
        a = np.einsum("nkp,np,nlp->nkl", j, w, j)
        g = np.einsum("nkp,np->nk", j, w * (data[idx] - f[idx]))
        if prior is not None:
            a = a + np.diag(1.0 / prior[1])
            g = g - (theta[idx] - prior[0]) / prior[1]
        d = np.sqrt(np.einsum("nkk->nk", a)) + 1e-300  # solve in unit-diagonal form (labels in K and in dex)
        damped = a / d[:, :, None] / d[:, None, :] + lam[idx, None, None] * np.eye(len(LABELS))
        step = np.linalg.solve(damped, (g / d)[..., None])[..., 0] / d
        trial = np.clip(theta[idx] + step, LO, HI)
        f_trial = model(trial, extra.iloc[idx])
        evals[idx] += 1
        c_trial = _cost(data[idx], f_trial, var[idx], trial, prior)
        better = c_trial < cost[idx]
        moved = np.abs(trial - theta[idx]) / STEP
        ok, bad = idx[better], idx[~better]
        theta[ok], f[ok], cost[ok] = trial[better], f_trial[better], c_trial[better]
        stale[ok], lam[ok], lam[bad] = True, lam[ok] / 3, lam[bad] * 4
        done = (better & (moved.max(1) < tol)) | (lam[idx] > 1e10)
        active[idx[done]] = False
    return theta, cost, evals


def fit(data, var, extra, bank, starts=3, prior=None, race=6) -> tuple:
    """Multi-start fit of a batch: every start runs ``race`` iterations, the best of them runs on to convergence.
    Returns (theta (n, 5), chi2 (n,), model evaluations per spectrum, the bank's not counted: it is made once per
    process)."""
    begin = best_starts(data, var, extra["mag"].to_numpy(), bank, starts, prior)
    best, best_cost, evals = None, None, 0.0
    for s in range(begin.shape[1]):
        theta, cost, n = levenberg_marquardt(data, var, extra, begin[:, s], prior, max_iter=race)
        evals = evals + n
        if best is None:
            best, best_cost = theta, cost
        else:
            take = cost < best_cost
            best[take], best_cost[take] = theta[take], cost[take]
    theta, cost, n = levenberg_marquardt(data, var, extra, best, prior)
    return theta, cost, evals + n


def _chunk(args):
    data, var, extra, bank_size, starts, prior = args
    return fit(data, var, extra, _bank(bank_size, tuple(extra.drop(columns="mag").iloc[0].items())), starts, prior)


_BANKS = {}


def _bank(size, physics):
    """One bank per process, size and physics setting."""
    key = (size, physics)
    if key not in _BANKS:
        _BANKS[key] = template_bank(size, pd.Series(dict(physics), dtype=float))
    return _BANKS[key]


def fit_spectra(data, var, params: pd.DataFrame, bank=256, starts=3, prior=None, chunk=16, workers=1,
                progress=None) -> pd.DataFrame:
    """Labels of spectra (n, P) with variances (n, P): columns LABELS, ``chi2``, ``evaluations``.

    ``params`` supplies ``mag`` and the physics switches (one setting for all rows); ``prior``: (mean (5,),
    variance (5,)) for the maximum a posteriori fit; ``workers`` processes; ``progress(n)`` after each chunk.
    """
    extra = params[["mag"] + [k for k in PHYSICS if k in params]].reset_index(drop=True).astype(float)
    if (extra.drop(columns="mag").nunique() > 1).any():
        raise ValueError("the spectra mix physics settings; fit each setting apart")
    data, var = np.asarray(data, float), np.asarray(var, float)
    jobs = [(data[lo:lo + chunk], var[lo:lo + chunk], extra.iloc[lo:lo + chunk], bank, starts, prior)
            for lo in range(0, len(data), chunk)]
    rows = []
    with contextlib.ExitStack() as stack:
        run = map
        if workers > 1:
            run = stack.enter_context(ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"))).map
        for theta, cost, evals in run(_chunk, jobs):
            rows.append(pd.DataFrame(theta, columns=list(LABELS)).assign(chi2=cost, evaluations=evals))
            if progress:
                progress(len(theta))
    return pd.concat(rows, ignore_index=True)


def crb_bins(squared_error, bound, by: dict, n_bins: int = 4) -> pd.DataFrame:
    """Mean squared error over mean Cramer-Rao bound in quantile bins of each of ``by`` ({name: values}), with the
    median of the per-spectrum ratio (0.455 for an efficient unbiased estimator: the chi2_1 median)."""
    rows = []
    sq, bound = np.asarray(squared_error, float), np.asarray(bound, float)
    for name, values in by.items():
        values = np.asarray(values, float)
        edges = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)))
        which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
        for b in range(len(edges) - 1):
            sel = (which == b) & np.isfinite(bound)
            if sel.any():
                rows.append({"bin_by": name, "lo": edges[b], "hi": edges[b + 1], "n": int(sel.sum()),
                             "mse": float(sq[sel].mean()), "mean_bound": float(bound[sel].mean()),
                             "ratio": float(sq[sel].mean() / bound[sel].mean()),
                             "median_ratio": float(np.median(sq[sel] / bound[sel]))})
    return pd.DataFrame(rows)


def informative(unbiased, width: float, share: float = INFORMATIVE) -> np.ndarray:
    """Spectra whose unbiased Cramer-Rao bound (a variance, label units^2) has sd <= ``share`` x the box ``width``
    (bool, (n,); an infinite or NaN bound informs nothing): their likelihood is far narrower than the box, so the
    box seldom clips their fit."""
    with np.errstate(invalid="ignore"):
        return np.asarray(unbiased, float) <= (share * width) ** 2


def informative_ratio(squared_error, bound, unbiased, width: float, share: float = INFORMATIVE) -> tuple:
    """(mean squared error / mean ``bound`` over the ``informative`` spectra, their count); NaN when there are none.

    An efficient fit gives about 1 there (Rao 1945; Cramer 1946). Over every spectrum the box clips the fits of stars
    whose bound is wider than the box, which pulls the ratio below 1 whether the fit is efficient or not."""
    sq, bound = np.asarray(squared_error, float), np.asarray(bound, float)
    keep = informative(unbiased, width, share) & np.isfinite(bound)
    n = int(keep.sum())
    return (float(sq[keep].mean() / bound[keep].mean()) if n else float("nan")), n
