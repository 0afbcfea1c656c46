"""A Bayesian lower bound on the mean squared error of any reader of the noisy flux, for the labels' own prior.

The Cramer-Rao bounds of ``distill.fisher`` hold for unbiased readers only, and the prior-aware figure there (the
average Laplace posterior variance) is a yardstick, not a bound. Regression readers are biased towards the prior,
so the bound that applies to them is Bayesian. The simulator draws labels uniformly from a box, a prior without
finite Fisher information, so the Van Trees bound does not apply; the Ziv-Zakai bound does (Bell, Steinberg,
Ephraim & Van Trees 1997, IEEE Trans. Inf. Theory 43, 624, eq. 10-14):

    E[(a' eps)^2] >= integral_0^inf  V{ max_d  E_theta[ 1(theta + h d in support) P_min(theta, theta + h d) ] }  h dh

for label k with a = e_k and any fixed shift direction d with d_k = 1 (the maximum over d makes it tightest). V
fills valleys (makes the bracket non-increasing in h); P_min is the error of the best test between two spectra
whose labels differ by h d. For Gaussian pixel noise and a model linear over that shift, P_min = Q(h sqrt(d' I d) / 2),
I the spectrum's Fisher matrix at the noise level. Two directions are tried: e_k (others fixed) and the median
least-favourable direction over the spectra (d_o = -I_oo^+ I_ok, along which the others absorb most of the change).
The expectation over theta is the mean over the split's spectra, draws from the prior.

The linearisation is the one approximation: it holds where the model is smooth over the shifts that matter (h of
the order of the bound). The support is the simulator's label box; data drawn with ``prior=plausible`` (every
row a plausible star) use that region too.
"""
import numpy as np
import pandas as pd
from scipy.stats import norm

from .simulator.sample import RANGES, plausible

GRID = 400  # points of the integral over the shift h


def least_favourable(info: np.ndarray, index: int) -> np.ndarray:
    """Per-spectrum direction d (d_index = 1) along which the labels are hardest to tell apart: (n, L)."""
    others = [k for k in range(info.shape[1]) if k != index]
    scale = np.sqrt(np.clip(np.einsum("nkk->nk", info[:, others][:, :, others]), 1e-300, None))
    i_oo = info[:, others][:, :, others] / scale[:, :, None] / scale[:, None, :]
    pinv = np.linalg.pinv(i_oo, rcond=1e-10, hermitian=True) / scale[:, :, None] / scale[:, None, :]
    d = np.zeros(info.shape[:2])
    d[:, index] = 1.0
    d[:, others] = -np.einsum("nkl,nl->nk", pinv, info[:, others, index])
    return d


def in_support(points: np.ndarray, labels: list, plausible_only: bool) -> np.ndarray:
    """Whether each (n, L) label vector lies in the prior's support: the label box, and the plausible region."""
    inside = np.ones(len(points), bool)
    for k, label in enumerate(labels):
        lo, hi = RANGES[label]
        inside &= (points[:, k] >= lo) & (points[:, k] <= hi)
    if plausible_only:
        inside &= plausible(points[:, labels.index("T_eff")], points[:, labels.index("log_g")])
    return inside


def ziv_zakai(fisher: np.ndarray, params: pd.DataFrame, label: str, labels: list, noise_level: float = 1.0,
              directions: np.ndarray | None = None) -> float:
    """The Ziv-Zakai bound on the mean squared error of ``label`` (label units squared) over the spectra whose
    Fisher matrices (noise level 1, (n, L, L)) and labels are given; ``directions`` (m, L) to try, default e_k and
    the median least-favourable direction."""
    labels = list(labels)
    k = labels.index(label)
    info = np.asarray(fisher, np.float64) / max(noise_level, 1e-12) ** 2
    theta = params[labels].to_numpy(np.float64)
    if directions is None:
        unit = np.eye(len(labels))[k]
        directions = np.stack([unit, np.nanmedian(least_favourable(info, k), axis=0)])
    plausible_only = {"T_eff", "log_g"} <= set(labels) and bool(
        plausible(params["T_eff"], params["log_g"]).all()) and len(params) >= 20
    lo, hi = RANGES[label]
    h = np.linspace(0.0, hi - lo, GRID + 1)[1:]
    best = np.zeros_like(h)
    for d in directions:
        spread = np.sqrt(np.clip(np.einsum("k,nkl,l->n", d, info, d), 0.0, None))  # sqrt(d' I d) per spectrum
        for j, step in enumerate(h):
            ok = in_support(theta + step * d, labels, plausible_only)
            best[j] = max(best[j], float(np.mean(ok * norm.sf(step * spread / 2))))
    filled = np.maximum.accumulate(best[::-1])[::-1]  # valley filling: non-increasing in h
    return float(np.trapezoid(np.concatenate([[filled[0]], filled]) * np.concatenate([[0.0], h]),
                              np.concatenate([[0.0], h])))


def bound_r2(fisher, params: pd.DataFrame, label: str, labels, noise_level: float = 1.0) -> float:
    """1 - ZZB / Var(label): no reader of the noisy flux reaches a higher R^2 on labels from this prior."""
    return float(1.0 - ziv_zakai(fisher, params, label, labels, noise_level) / params[label].var())
