"""Paired bootstrap over test rows: every headline R^2 with a 95 % interval, every comparison a delta with its own.

Resampling the test rows with replacement and scoring two methods on the same resample gives the interval of their
difference; "better" means that interval excludes zero, otherwise the two are tied. The intervals are BCa
(bias-corrected and accelerated; Efron & Tibshirani 1993, ch. 14): the bootstrap distribution's median bias and its
skew, the latter from the closed-form leave-one-out (jackknife) R^2, move the percentiles. ``N_BOOT`` resamples from
``SEED`` by default, so the same predictions give the same interval in every run.

When they hold: with Gaussian errors they cover at their level; with heavy-tailed errors (a few spectra off by
several dex) no bootstrap of R^2 does, because the squared error then has no finite variance. ``n_outliers``
counts such rows, and the MAE's interval (``mae``) stays sound where R^2's is not.
"""
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.metrics import r2_score

from .errors import DistillError

N_BOOT = 1000
SEED = 0
LEVEL = 0.95
METHOD = "bca"  # logged as the tag interval_method
OUTLIER = 3.0  # |error| above which a test row is an outlier, in the label's unit (dex for log g)
BETTER, TIE, WORSE = "better", "tie", "worse"


@dataclass(frozen=True)
class Interval:
    value: float  # the point estimate on all rows
    lo: float
    hi: float

    def verdict(self, margin: float = 0.0) -> str:
        """better when the whole interval lies above ``margin``, worse when below ``-margin``, else a tie."""
        return BETTER if self.lo > margin else WORSE if self.hi < -margin else TIE

    def text(self, digits: int = 3) -> str:
        return f"{self.value:+.{digits}f} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"

    def keyed(self, key: str) -> dict:
        """{key: value, key_lo: lo, key_hi: hi}: the project's metric keys of an interval."""
        return {key: self.value, f"{key}_lo": self.lo, f"{key}_hi": self.hi}

    @classmethod
    def read(cls, metrics: dict, key: str) -> "Interval | None":
        """The inverse of ``keyed``: None when any of the three keys is missing."""
        values = [metrics.get(key + end) for end in ("", "_lo", "_hi")]
        return None if None in values else cls(*values)


@lru_cache(maxsize=4)
def resamples(n: int, n_boot: int = N_BOOT, seed: int = SEED) -> np.ndarray:
    """(n_boot, n) counts of each row in each resample (rows drawn with replacement, each count row sums to n);
    the same (n, n_boot, seed) gives the same resamples (drawn once per process, read-only)."""
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    counts.flags.writeable = False
    return counts


def _r2_each(y: np.ndarray, pred: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """R^2 of every resample from row counts: sums become matrix-vector products."""
    n = counts.sum(axis=1)
    sst = counts @ (y * y) - (counts @ y) ** 2 / n
    return 1.0 - counts @ ((y - pred) ** 2) / np.where(sst > 0, sst, np.nan)


def _r2_jackknife(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """R^2 with each row left out in turn, from the full sums less that row's terms (O(n))."""
    n, e2 = len(y), (y - pred) ** 2
    sst = (np.sum(y * y) - y * y) - (np.sum(y) - y) ** 2 / (n - 1)
    return 1.0 - (e2.sum() - e2) / np.where(sst > 0, sst, np.nan)


def _interval(value: float, samples: np.ndarray, jackknife: np.ndarray) -> Interval:
    """The BCa interval of ``value`` from its bootstrap ``samples`` and leave-one-out ``jackknife`` values."""
    samples, jackknife = samples[np.isfinite(samples)], jackknife[np.isfinite(jackknife)]
    b = len(samples)
    z0 = norm.ppf(np.clip(np.mean(samples < value) + 0.5 * np.mean(samples == value), 1 / (b + 1), b / (b + 1)))
    d = jackknife.mean() - jackknife
    spread = np.sum(d * d) ** 1.5
    a = np.sum(d ** 3) / (6 * spread) if spread > 0 else 0.0
    z = z0 + norm.ppf([(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    levels = 100 * norm.cdf(z0 + z / (1 - a * z))
    lo, hi = np.percentile(samples, levels)
    return Interval(float(value), float(lo), float(hi))


def _checked(y, *preds):
    y = np.asarray(y, float)
    preds = [np.asarray(p, float) for p in preds]
    if any(p.shape != y.shape for p in preds):
        raise ValueError(f"predictions of shape {[p.shape for p in preds]} for {y.shape} true values")
    return y, preds


def r2(y_true, y_pred, n_boot: int = N_BOOT, seed: int = SEED) -> Interval:
    """Test R^2 with its BCa bootstrap interval."""
    y, (p,) = _checked(y_true, y_pred)
    return _interval(r2_score(y, p), _r2_each(y, p, resamples(len(y), n_boot, seed)), _r2_jackknife(y, p))


def mae(y_true, y_pred, n_boot: int = N_BOOT, seed: int = SEED) -> Interval:
    """Test mean absolute error (label units) with its BCa bootstrap interval: sound where R^2's is not."""
    y, (p,) = _checked(y_true, y_pred)
    err = np.abs(y - p)
    loo = (err.sum() - err) / (len(err) - 1)
    return _interval(err.mean(), resamples(len(y), n_boot, seed) @ err / len(err), loo)


def n_outliers(y_true, y_pred, limit: float = OUTLIER) -> int:
    """Test rows whose |error| exceeds ``limit`` (label units): where there are any, R^2's interval is unreliable."""
    y, (p,) = _checked(y_true, y_pred)
    return int(np.sum(np.abs(y - p) > limit))


def delta(y_true, pred_a, pred_b, scale: float = 1.0, n_boot: int = N_BOOT, seed: int = SEED) -> Interval:
    """R^2(a) - scale x R^2(b) on the same test rows, with the BCa interval of the difference (paired resamples);
    ``scale`` states relative criteria such as "a >= 0.9 x b" as a difference."""
    y, (a, b) = _checked(y_true, pred_a, pred_b)
    rows = resamples(len(y), n_boot, seed)
    return _interval(r2_score(y, a) - scale * r2_score(y, b), _r2_each(y, a, rows) - scale * _r2_each(y, b, rows),
                     _r2_jackknife(y, a) - scale * _r2_jackknife(y, b))


def combination(y_true, weighted: list, n_boot: int = N_BOOT, seed: int = SEED) -> Interval:
    """sum_i w_i R^2(pred_i) over ``weighted`` = [(pred_i, w_i), ...], all scored on the same test rows, with its BCa
    interval: e.g. the difference of two readers' drops from one noise level to another."""
    y, preds = _checked(y_true, *[p for p, _ in weighted])
    w = [float(wt) for _, wt in weighted]
    rows = resamples(len(y), n_boot, seed)
    value = sum(wi * r2_score(y, p) for p, wi in zip(preds, w))
    samples = sum(wi * _r2_each(y, p, rows) for p, wi in zip(preds, w))
    return _interval(value, samples, sum(wi * _r2_jackknife(y, p) for p, wi in zip(preds, w)))


def over_seeds(y_true, runs_a: list, runs_b: list | None = None, scale: float = 1.0, n_boot: int = N_BOOT,
               seed: int = SEED) -> tuple:
    """(Interval, seed-to-seed sd): the seed mean of R^2(a_s) (or of R^2(a_s) - scale x R^2(b_s), the arms paired by
    seed s) with a two-level percentile bootstrap: each resample draws the seeds with replacement, then the test rows,
    so the interval carries the spread between training seeds as well as between test spectra."""
    y, preds = _checked(y_true, *runs_a, *(runs_b or []))
    a, b = preds[:len(runs_a)], preds[len(runs_a):]
    if b and len(b) != len(a):
        raise ValueError(f"{len(a)} seeds against {len(b)}: the arms must be paired by seed")
    per_seed = np.array([r2_score(y, p) - (scale * r2_score(y, q) if b else 0.0) for p, q in zip(a, b or a)])
    rows = resamples(len(y), n_boot, seed)
    each = np.stack([_r2_each(y, p, rows) - (scale * _r2_each(y, q, rows) if b else 0.0) for p, q in zip(a, b or a)])
    picks = np.random.default_rng(seed + 1).integers(0, len(a), size=(n_boot, len(a)))
    samples = each[picks, np.arange(n_boot)[:, None]].mean(axis=1)
    tail = 100 * (1 - LEVEL) / 2
    lo, hi = np.nanpercentile(samples, [tail, 100 - tail])
    sd = float(per_seed.std(ddof=1)) if len(a) > 1 else 0.0
    return Interval(float(per_seed.mean()), float(lo), float(hi)), sd


def p_value(y_true, pred_a, pred_b, scale: float = 1.0, n_boot: int = N_BOOT, seed: int = SEED) -> float:
    """Two-sided bootstrap p-value of R^2(a) - scale x R^2(b) = 0: twice the smaller share of paired resamples on
    either side of zero (at least 1 / n_boot)."""
    y, (a, b) = _checked(y_true, pred_a, pred_b)
    rows = resamples(len(y), n_boot, seed)
    d = _r2_each(y, a, rows) - scale * _r2_each(y, b, rows)
    d = d[np.isfinite(d)]
    return float(min(1.0, max(2 * min(np.mean(d <= 0), np.mean(d >= 0)), 1 / len(d))))


def holm(p_values: dict, alpha: float = 1 - LEVEL) -> set:
    """The keys whose null hypothesis Holm's step-down procedure rejects at family-wise level ``alpha``
    (Holm 1979, Scand. J. Stat. 6, 65)."""
    rejected, ranked = set(), sorted(p_values, key=p_values.get)
    for i, key in enumerate(ranked):
        if p_values[key] > alpha / (len(ranked) - i):
            break
        rejected.add(key)
    return rejected


def delta_of_runs(y_a, pred_a, y_b, pred_b, runs: str) -> Interval:
    """``delta`` of two runs' test predictions, after checking from their stored labels that both scored the same test
    rows (equal to float32 precision: latents store float32 labels); ``runs`` names the two in the error."""
    if len(y_a) != len(y_b) or not np.allclose(y_a, y_b, rtol=1e-5, atol=1e-6):
        raise DistillError(f"{runs} were scored on different test rows")
    return delta(y_a, pred_a, pred_b)


def curve_table(preds: dict, y_true, axis: str) -> pd.DataFrame:
    """{(features, x): test predictions} -> rows features, ``axis``, test_r2, test_r2_lo, test_r2_hi."""
    rows = []
    for (name, x), p in preds.items():
        ci = r2(y_true, p)
        rows.append({"features": name, axis: x, "test_r2": ci.value, "test_r2_lo": ci.lo, "test_r2_hi": ci.hi})
    return pd.DataFrame(rows)
