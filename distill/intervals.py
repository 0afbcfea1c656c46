"""Paired bootstrap over test rows: every headline R^2 with a 95 % interval, every comparison a delta with its own.

Resampling the test rows with replacement (Efron & Tibshirani 1993, ch. 13, percentile intervals) and scoring two
methods on the same resample gives the interval of their difference; "better" means that interval excludes zero,
otherwise the two are tied. ``N_BOOT`` resamples from ``SEED`` by default, so the same predictions give the same
interval in every run.
"""
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score

from .errors import DistillError

N_BOOT = 1000
SEED = 0
LEVEL = 0.95
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


def _interval(value: float, samples: np.ndarray) -> Interval:
    tail = 100 * (1 - LEVEL) / 2
    lo, hi = np.nanpercentile(samples, [tail, 100 - tail])
    return Interval(float(value), float(lo), float(hi))


def _checked(y, *preds):
    y = np.asarray(y, float)
    preds = [np.asarray(p, float) for p in preds]
    if any(p.shape != y.shape for p in preds):
        raise ValueError(f"predictions of shape {[p.shape for p in preds]} for {y.shape} true values")
    return y, preds


def r2(y_true, y_pred, n_boot: int = N_BOOT, seed: int = SEED) -> Interval:
    """Test R^2 with its percentile bootstrap interval."""
    y, (p,) = _checked(y_true, y_pred)
    return _interval(r2_score(y, p), _r2_each(y, p, resamples(len(y), n_boot, seed)))


def delta(y_true, pred_a, pred_b, scale: float = 1.0, n_boot: int = N_BOOT, seed: int = SEED) -> Interval:
    """R^2(a) - scale x R^2(b) on the same test rows, with the interval of the difference (paired resamples);
    ``scale`` states relative criteria such as "a >= 0.9 x b" as a difference."""
    y, (a, b) = _checked(y_true, pred_a, pred_b)
    rows = resamples(len(y), n_boot, seed)
    return _interval(r2_score(y, a) - scale * r2_score(y, b), _r2_each(y, a, rows) - scale * _r2_each(y, b, rows))


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
