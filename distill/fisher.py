"""Fisher information of the labels and the Cramer-Rao ceiling on how well a spectrum can be read.

Pixel noise is Gaussian with known standard deviation ``s * sigma_p`` (noise level s,
stored error sigma_p), so for a noiseless model F(theta) the Fisher matrix of the labels is

    I(theta) = J^T diag(1 / (s sigma)^2) J,    J_pk = dF_p / dtheta_k        (Kay 1993, eq. 3.31)

J comes from finite differences of the model: central, or second-order one-sided within
one step of the label range. The dependence of the variance on the flux (the Poisson
term) adds 1/2 sum (d sigma^2)^2 / sigma^4, smaller than the mean term by about
1 / (2 N_exp counts) ~ 1e-4 at magnitude 21.5, and is left out. The bound is for a reader
of the *noisy flux*: sigma itself is a noiseless function of the labels (the leak), so a
method that sees sigma is not bounded by it.

Bounds on the variance of one spectrum's label k (dex^2 for log g):

- ``marginal`` = [I^-1]_kk = 1 / (I_kk - I_ko I_oo^+ I_ok): a hard lower bound for any
  *unbiased* estimator that does not know the other labels (degeneracies included);
- ``known_others`` = 1 / I_kk: the same with the other four labels known;
- ``prior`` = [(I + diag(1 / Var_j))^-1]_kk: the posterior variance of a Gaussian
  likelihood under independent Gaussian priors with every label's variance Var_j, so a
  degeneracy with another label is broken by that label's prior too. Regression models
  use the prior and are biased, so they can beat the unbiased bound at low S/N; this one
  is an approximation of the best such estimator, not a hard bound (the Van Trees bound
  would be, but needs a prior density that vanishes at the range edges, which the
  uniform prior lacks). It is the yardstick the reports use.

Ceiling on a split: R^2_max = 1 - mean(bound) / Var(label), clipped at 0. The mean is
dominated by the few stars that carry almost no information, so quantiles are logged too.
"""
import contextlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from functools import cache

import numpy as np
import pandas as pd

from .simulator.model import LABELS, SpectrumModel, inputs
from .simulator.sample import RANGES

STEPS = {"T_eff": 5.0, "log_g": 0.01, "M_H": 0.01, "a_M": 0.005, "C_M": 0.01}
"""Finite-difference steps (K, dex). Halving them changes the Jacobian by a median 0.1 % (max a few %, at the
kinks of the line-strength tables); every ``fisher`` run logs this check on its first spectra."""
BOUNDS = ("marginal", "known_others", "prior")
SINGULAR = 1e-10  # relative size below which an eigenvalue / Schur complement counts as zero
# (offset 1, offset 2) in steps and the weights of (f0, f1, f2) times 1/h: central, forward, backward
_SCHEMES = {"central": ((1, -1), (0.0, 0.5, -0.5)),
            "forward": ((1, 2), (-1.5, 2.0, -0.5)),
            "backward": ((-1, -2), (1.5, -2.0, 0.5))}


def schemes(values, step, lo, hi) -> np.ndarray:
    """Which difference to take for each value: central, or one-sided within one step of [lo, hi]."""
    values = np.asarray(values, dtype=float)
    return np.where(values - step < lo, "forward", np.where(values + step > hi, "backward", "central"))


def jacobian(flux_fn, params: pd.DataFrame, labels=LABELS, steps=None, ranges=None) -> np.ndarray:
    """dF/dlabel, (n, n_labels, P) float64, by finite differences of ``flux_fn(params) -> (n, P)``.

    ``params`` holds the labels and anything else ``flux_fn`` needs (e.g. ``mag``); the
    model is evaluated once for all 1 + 2 n_labels points. ``ranges``: {label: (lo, hi)}
    beyond which the model is not evaluated (default: the simulator's label box).
    """
    steps, ranges = {**STEPS, **(steps or {})}, {**RANGES, **(ranges or {})}
    n = len(params)
    base = params.reset_index(drop=True)
    points, kinds = [base], {}
    for label in labels:
        kinds[label] = schemes(base[label], steps[label], *ranges[label])
        offsets = np.array([_SCHEMES[k][0] for k in kinds[label]], dtype=float)  # (n, 2)
        for j in range(2):
            points.append(base.assign(**{label: base[label] + offsets[:, j] * steps[label]}))
    flux = np.asarray(flux_fn(pd.concat(points, ignore_index=True)),
                      dtype=np.float64).reshape(1 + 2 * len(labels), n, -1)
    out = np.empty((n, len(labels), flux.shape[-1]))
    for k, label in enumerate(labels):
        w = np.array([_SCHEMES[s][1] for s in kinds[label]]) / steps[label]  # (n, 3)
        out[:, k] = w[:, :1] * flux[0] + w[:, 1:2] * flux[1 + 2 * k] + w[:, 2:] * flux[2 + 2 * k]
    return out


def fisher_matrices(jac: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """I = J^T diag(1/sigma^2) J per spectrum: (n, L, P) Jacobian and (n, P) sigma -> (n, L, L)."""
    w = 1.0 / np.asarray(sigma, dtype=np.float64) ** 2
    return np.einsum("nkp,np,nlp->nkl", jac, w, jac)


def crb(fisher: np.ndarray, index: int, var_prior, noise_level: float = 1.0) -> pd.DataFrame:
    """Per-spectrum variance bounds of label ``index`` (columns ``BOUNDS``) at ``noise_level``.

    ``fisher`` is at noise level 1; I scales as 1/noise_level^2. ``var_prior``: every label's prior variance (one
    value for all, or one per label; ``prior_variances``). An uninformative label (zero Schur complement) has
    infinite unbiased bounds.
    """
    if noise_level == 0:
        return pd.DataFrame(0.0, index=range(len(fisher)), columns=list(BOUNDS))
    info = np.asarray(fisher, dtype=np.float64) / noise_level**2
    others = [k for k in range(info.shape[1]) if k != index]
    i_kk = info[:, index, index]
    i_ko = info[:, index, others]
    scale = np.sqrt(np.clip(np.einsum("nkk->nk", info[:, others][:, :, others]), 1e-300, None))
    # pseudo-inverse in unit-diagonal form, so labels with large and small units are treated alike
    i_oo = info[:, others][:, :, others] / scale[:, :, None] / scale[:, None, :]
    pinv = np.linalg.pinv(i_oo, rcond=SINGULAR, hermitian=True) / scale[:, :, None] / scale[:, None, :]
    schur = i_kk - np.einsum("nk,nkl,nl->n", i_ko, pinv, i_ko)
    schur = np.where(schur > SINGULAR * np.maximum(i_kk, 1e-300), schur, 0.0)
    with np.errstate(divide="ignore"):
        marginal = np.where(schur > 0, 1.0 / schur, np.inf)
        known = np.where(i_kk > 0, 1.0 / i_kk, np.inf)
    precision = np.broadcast_to(1.0 / np.asarray(var_prior, dtype=np.float64), (info.shape[1],))
    posterior = _unit_inverse(info + np.diag(precision))[:, index, index]
    return pd.DataFrame({"marginal": marginal, "known_others": known, "prior": posterior})


def prior_variances(params: pd.DataFrame, labels=LABELS) -> np.ndarray:
    """Every label's variance over ``params``: the Gaussian priors of the ``prior`` bound."""
    return params[list(labels)].var().to_numpy(np.float64)


def _unit_inverse(a: np.ndarray) -> np.ndarray:
    """Inverses of positive-definite (n, L, L) matrices, taken in unit-diagonal form (labels in K and in dex)."""
    d = np.sqrt(np.einsum("nkk->nk", a))
    return np.linalg.inv(a / d[:, :, None] / d[:, None, :]) / d[:, :, None] / d[:, None, :]


def n_singular(fisher: np.ndarray) -> int:
    """Spectra whose Fisher matrix (unit-diagonal form) has an eigenvalue below ``SINGULAR`` of its largest."""
    d = np.sqrt(np.clip(np.einsum("nkk->nk", fisher), 1e-300, None))
    eig = np.linalg.eigvalsh(fisher / d[:, :, None] / d[:, None, :])
    return int((eig[:, 0] <= SINGULAR * eig[:, -1]).sum())


def ceiling(bounds: pd.DataFrame, var_label: float) -> dict:
    """{bound: R^2_max} = 1 - mean(bound) / Var(label), clipped at 0 (infinite bounds give 0)."""
    return {b: float(max(0.0, 1.0 - bounds[b].mean() / var_label)) for b in BOUNDS}


def quantiles(bounds: pd.DataFrame, qs=(0.1, 0.25, 0.5, 0.75, 0.9)) -> dict:
    """{(bound, q): q-quantile of the bound's standard deviation (label units)}."""
    return {(b, q): float(np.sqrt(np.quantile(bounds[b], q))) for b in BOUNDS for q in qs}


def to_table(fisher: np.ndarray, params: pd.DataFrame, labels=LABELS) -> pd.DataFrame:
    """Per-spectrum Fisher matrices (noise level 1) as columns ``I_{a}__{b}`` beside the params."""
    cols = {f"I_{a}__{b}": fisher[:, i, j] for i, a in enumerate(labels) for j, b in enumerate(labels)}
    return pd.concat([params.reset_index(drop=True), pd.DataFrame(cols)], axis=1)


def from_table(table: pd.DataFrame, labels=LABELS) -> np.ndarray:
    """Inverse of ``to_table``: (n, L, L)."""
    return np.stack([np.stack([table[f"I_{a}__{b}"].to_numpy() for b in labels], -1) for a in labels], 1)


def ceiling_at(table: pd.DataFrame, noise_level: float, label: str = "log_g", labels=LABELS) -> dict:
    """{bound: R^2_max} for ``label`` at ``noise_level`` from a stored Fisher table."""
    return ceiling(crb(from_table(table, labels), labels.index(label), prior_variances(table, labels), noise_level),
                   float(table[label].var()))


@cache
def _model() -> SpectrumModel:
    return SpectrumModel()


def simulator_flux(params: pd.DataFrame) -> np.ndarray:
    """The built-in simulator's noiseless pixel flux in float64 (``SpectrumModel.flux`` before rounding)."""
    model = _model()
    fine = model.fine_flux(inputs(params))
    return np.asarray((model.resample @ fine.T).T)


def _chunk_fisher(args) -> np.ndarray:
    params, sigma, steps = args
    return fisher_matrices(jacobian(simulator_flux, params, LABELS, steps), sigma)


def split_fisher(spectra, steps=None, rows=None, chunk=32, workers=1, progress=None) -> np.ndarray:
    """Fisher matrices (noise level 1) of the simulator's labels for the spectra of one split file.

    ``spectra``: a ``SpectrumFile`` (its params and stored error are used); ``rows``: the
    first rows only; ``workers`` processes; ``progress(n)`` after each chunk. Returns (n, 5, 5).
    """
    n = len(spectra) if rows is None else min(rows, len(spectra))
    jobs = [(spectra.params.iloc[lo:min(lo + chunk, n)], spectra.read(lo, min(lo + chunk, n))[1],
             steps) for lo in range(0, n, chunk)]
    with contextlib.ExitStack() as stack:
        run = map
        if workers > 1:
            run = stack.enter_context(ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"))).map
        out = []
        for block in run(_chunk_fisher, jobs):
            out.append(block)
            if progress:
                progress(len(block))
    return np.concatenate(out)
