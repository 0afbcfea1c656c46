"""Regression metrics under the project's keys ``{prefix_}{split}_{metric}_{label}``."""
import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error, r2_score

from . import intervals

BINS = {"log_g": 0.5, "T_eff": 250.0}  # bin widths: dex, K


def scores(y_true, y_pred) -> dict:
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    return {"r2": float(r2_score(y_true, y_pred)), "mae": float(mean_absolute_error(y_true, y_pred)),
            "rmse": float(np.sqrt(np.mean((y_true - y_pred) ** 2)))}


def keyed(split: str, label: str, values: dict, prefix: str = "") -> dict:
    """{'r2': ...} -> {'test_r2_log_g': ...} (optionally prefixed, e.g. 'student_test_r2_log_g')."""
    head = f"{prefix}_" if prefix else ""
    return {f"{head}{split}_{metric}_{label}": v for metric, v in values.items()}


def split_scores(y: dict, predictions: dict, label: str) -> dict:
    """Every split's keyed scores of one label; the test R^2's and MAE's bootstrap intervals
    (``test_r2_{label}_lo``, ``test_mae_{label}_hi``, ...) and the test rows off by more than ``intervals.OUTLIER``
    (``test_n_outliers_{label}``), which make the R^2 interval unreliable."""
    out = {}
    for split in y:
        out |= keyed(split, label, scores(y[split], predictions[split]))
    test = y["test"], predictions["test"]
    return (out | intervals.r2(*test).keyed(f"test_r2_{label}") | intervals.mae(*test).keyed(f"test_mae_{label}")
            | {f"test_n_outliers_{label}": intervals.n_outliers(*test)})


def per_bin(y_true, y_pred, by: np.ndarray, width: float, name: str) -> pd.DataFrame:
    """R^2, MAE and bias of the predictions in bins of ``by`` (e.g. log g in 0.5 dex bins)."""
    y_true, y_pred, by = (np.asarray(a, float) for a in (y_true, y_pred, by))
    edges = np.arange(np.floor(by.min() / width) * width, by.max() + width, width)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (by >= lo) & (by < hi) if hi < edges[-1] else (by >= lo) & (by <= hi)
        if sel.sum() == 0:
            continue
        r2 = float(r2_score(y_true[sel], y_pred[sel])) if sel.sum() > 1 and np.ptp(y_true[sel]) > 0 else np.nan
        rows.append({"bin_by": name, "lo": lo, "hi": hi, "n": int(sel.sum()), "r2": r2,
                     "mae": float(np.abs(y_true[sel] - y_pred[sel]).mean()),
                     "bias": float((y_pred[sel] - y_true[sel]).mean())})
    return pd.DataFrame(rows)
