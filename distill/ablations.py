"""Stage 4 sanity checks and robustness (research plan MVP 1.2, 3.2, 3.3, 4.1-4.3): numbers and verdicts.

Each verdict is a ``distill.criteria.Verdict``: its status from the criterion, its sentence with the numbers behind it.
"""
import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import r2_score

from . import criteria, heads, intervals, probe
from .criteria import CRITERIA, FAIL, PASS, UNDECIDED, Verdict
from .intervals import Interval
from .thresholds import ERROR_DOMINATES, ERROR_HELPS, FALSE_ALARM, SIGMA_USED, USEFUL

# 4.3: heads trained on permuted training labels must predict the test labels no better than chance. Their test
# R^2 is no fair statistic: a head fitted to noise scores about -p / (n - p) on average (Ridge, p = 384, n = 2,000:
# about -0.24), which hides a leak of that size. The statistic is the correlation of each shuffled head's test
# predictions with the test labels. Its null is not the test labels permuted: a head fitted to one permutation has
# random weights that correlate with the true ones by chance, shared by every test row (spread ~ 1 / sqrt(features)),
# so the null spread is measured over the shuffles themselves: a one-sided one-sample t-test of their correlations
# against 0, which an honest pipeline fails with probability ``FALSE_ALARM``.
SHUFFLES = 20
LINEAR = ("ols", "ridge")  # heads that fit many label columns on one decomposition of the features
NOISE_LEVELS = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0)
TRAIN_SIZES = (1000, 5000, 10000, 0)  # 0: the whole training set


def shuffled_training_labels(fs: probe.FeatureSet, label: str, seed: int = 42) -> probe.FeatureSet:
    """The same features with the training labels permuted (validation and test untouched)."""
    y = dict(fs.y)
    frame = fs.y["train"].copy()
    frame[label] = frame[label].to_numpy()[np.random.default_rng(seed).permutation(len(frame))]
    y["train"] = frame
    return probe.FeatureSet(fs.x, y, fs.name)


def shuffle_check(fs: probe.FeatureSet, label: str, head: str, head_params: dict, shuffles=SHUFFLES,
                  seed=42, values: dict | None = None) -> dict:
    """4.3 on one feature set and head: ``shuffles`` heads trained on permuted training labels; the mean correlation
    of their test predictions with the test labels and its one-sided t-test p-value against 0. ``values``, when
    given, receives the figure's numbers: ``shuffled`` (each shuffled head's correlation, the null values) and
    ``observed`` (the correlation of the head trained on the true labels)."""
    y = fs.y["test"][label].to_numpy(float)
    train = [fs.y["train"][label]] + [shuffled_training_labels(fs, label, seed + i).y["train"][label]
                                      for i in range(shuffles)]
    predictions = column_predictions(fs, label, head, head_params, np.stack(train, axis=1).astype(float))
    r2 = intervals.r2(y, predictions[:, 0])
    corr = np.array([_correlation(p, y) for p in predictions[:, 1:].T])
    if corr.std() > 0:
        p = stats.ttest_1samp(corr, 0.0, alternative="greater").pvalue
    else:  # every shuffle gave the same predictions: the shuffle does nothing
        p = 0.0 if corr.mean() > 0 else 1.0
    shuffled_r2 = np.array([r2_score(y, p) for p in predictions[:, 1:].T])
    if values is not None:
        values |= {"shuffled": corr, "observed": _correlation(predictions[:, 0], y)}
    return {"test_r2": r2.value, "test_r2_lo": r2.lo, "test_r2_hi": r2.hi, "shuffles": shuffles,
            "shuffled_correlation": float(corr.mean()),
            "shuffled_correlation_sd": float(corr.std(ddof=1)), "shuffled_p_value": float(p),
            "shuffled_mean": float(shuffled_r2.mean()),
            "shuffled_min": float(shuffled_r2.min()), "shuffled_max": float(shuffled_r2.max())}


def column_predictions(fs: probe.FeatureSet, label: str, head: str, head_params: dict, train: np.ndarray) -> np.ndarray:
    """(n_test, k) test predictions of one head per column of training labels ``train`` (n_train, k); validation
    keeps the true labels. Linear heads fit every column at once, on one decomposition of the features."""
    if head in LINEAR:
        model = heads.fit(heads.make_pipeline(head, **head_params), fs.x["train"], train, fs.x["val"],
                          fs.y["val"][label].to_numpy(float))
        return np.asarray(model.predict(fs.x["test"]), dtype=float).reshape(len(fs.x["test"]), -1)
    return np.stack([probe.fit_label(probe.FeatureSet(fs.x, fs.y | {"train": pd.DataFrame({label: column})},
                                                      fs.name), label, head, **head_params).predictions["test"]
                     for column in train.T], axis=1)


def _correlation(pred: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; a constant prediction correlates with nothing (0)."""
    return 0.0 if pred.std() == 0 else float(np.corrcoef(pred, y)[0, 1])


DETECTS = ("It detects training labels that reach the test predictions although they were permuted (a shuffle the "
           "pipeline ignores, rows joined back to their labels, test labels among the training rows). It does not "
           "detect labels encoded in the features themselves, which a head trained on shuffled labels cannot use: "
           "Stage A and 4.1 / 4.2 look at those.")


def leakage(checks: dict, false_alarm: float = FALSE_ALARM) -> Verdict:
    """4.3 over every (feature set, head) of ``shuffle_check``: the alarm rises (fail) when the smallest p-value is
    below ``false_alarm`` / the number of checks (Bonferroni), so an honest pipeline alarms with probability at most
    ``false_alarm``."""
    name, worst = min(checks.items(), key=lambda kv: kv[1]["shuffled_p_value"])
    bar = false_alarm / len(checks)
    corr = worst["shuffled_correlation"]
    numbers = (f"{' '.join(name)}: shuffled heads' correlation with the test labels {corr:+.3f}"
               f" (R^2-equivalent {np.sign(corr) * corr ** 2:+.3f}), "
               f"over {worst['shuffles']} shuffles t-test p = {worst['shuffled_p_value']:.4f} against {bar:.4f} "
               f"(false-alarm rate {false_alarm:g} over {len(checks)} check(s)); mean shuffled test R^2 "
               f"{worst['shuffled_mean']:.3f}")
    if worst["shuffled_p_value"] < bar:
        return criteria.outcome("4.3", "leakage_alarm", f"Leakage alarm: {numbers}. {DETECTS}")
    return criteria.outcome("4.3", "no_leakage", f"No leakage detected: {numbers}. {DETECTS}")


def error_dependence(delta: Interval) -> Verdict:
    """4.1: teacher minus the teacher without sigma, judged by the one criterion "R^2 lost without sigma < 0.1"
    (``distill.criteria``); the sentence also says how much the error helps."""
    status = criteria.judge("4.1", delta)
    if status == FAIL:
        said = (f"The error carries much of the log g information (all above {ERROR_DOMINATES}): a ceiling for "
                "distillation.")
    elif status == UNDECIDED:
        said = (f"More test spectra are needed to say whether the error dominates (the interval spans "
                f"{ERROR_DOMINATES}).")
    elif delta.hi <= ERROR_HELPS:
        said = f"The error helps at most a little (all below {ERROR_HELPS})."
    else:
        said = f"The error helps but does not dominate{', above 0: it does help' if delta.lo > 0 else ''}."
    return criteria.verdict("4.1", delta, said)


def sigma_use(drop: Interval) -> Verdict:
    """4.2: latent from the true sigma minus the latent from sigma permuted across spectra, on the drop's interval
    (criterion 4.2: pass when the teacher surely uses sigma)."""
    status = criteria.judge("4.2", drop)
    if status == PASS:
        said = "The teacher really uses sigma."
    elif status == FAIL:
        said = (f"No drop above {SIGMA_USED}" + (" (small but real: the interval excludes 0)" if drop.lo > 0 else "")
                + "; sigma could be removed.")
    else:
        said = f"Not resolved at this size (the interval spans {SIGMA_USED})."
    return criteria.verdict("4.2", drop, said)


def permuted_sigma(error: np.ndarray, seed: int = 42) -> np.ndarray:
    """4.2: the error rows permuted across spectra (a derangement-free check is left to the caller)."""
    return error[np.random.default_rng(seed).permutation(len(error))]


def noise_curves(sets: dict, test_at: dict, levels, label: str, head: str, head_params: dict) -> dict:
    """1.2 / 3.2: {(name, level): test predictions}; each head is fitted once on ``sets[name]`` (the training
    noise level) and predicts ``test_at[name](level)``, the test features made at each noise level."""
    out = {}
    for name, fs in sets.items():
        model = probe.fit_label(fs, label, head, **head_params).model
        out |= {(name, level): np.asarray(model.predict(test_at[name](level)), float) for level in levels}
    return out


SIGMA_CONTROL = "flux_and_sigma"  # the sweep's flux reader that sees the true sigma at every level


def slower_than_raw(preds: dict, y, train_level: float, top: float) -> dict:
    """1.2 / 3.2: {reader: Interval of (raw flux's R^2 drop) - (the reader's drop)} from the training noise level to
    ``top``, all four predictions paired over the same test rows (``noise_curves``' output)."""
    raw = [(preds["raw", train_level], 1.0), (preds["raw", top], -1.0)]
    return {name: intervals.combination(y, raw + [(preds[name, train_level], -1.0), (preds[name, top], 1.0)])
            for name in sorted({n for n, _ in preds}) if name != "raw"}


ROBUST = {"1.2": "teacher", "3.2": "student"}  # the sweep reader each robustness criterion judges


def robustness(table: pd.DataFrame, train_level: float, slower: dict) -> list:
    """1.2 (the teacher latent) and 3.2 (the student, when swept) on paired intervals (``slower_than_raw``): a reader
    that reads log g at the training level (R^2 > USEFUL) is judged by its criterion, raw flux's drop minus its own
    against SLOWER (``distill.criteria``); one that reads none there fails. Readers marked "sees sigma" get the true
    sigma at every level: the other readers' drops (the controls) are given beside each verdict."""
    r2 = table.pivot(index="features", columns="noise_level", values="test_r2")
    span = f"From noise {train_level:g} to {r2.columns.max():g}"
    out = []
    for stage, name in ROBUST.items():
        if name not in slower:
            continue
        controls = "; ".join(f"raw flux's drop - {other}'s {d.text()}" for other, d in slower.items() if other != name)
        said = f"{span}; beside it {controls}" if controls else span
        v = criteria.verdict(stage, slower[name], said)
        if r2.loc[name, train_level] <= USEFUL:
            v = Verdict(stage, FAIL, f"{stage}: the {name} reads no log g at noise {train_level:g} (R^2 "
                                     f"{r2.loc[name, train_level]:.3f} <= {USEFUL}), so it cannot degrade more slowly "
                                     f"than raw flux: fail ({CRITERIA[stage].quantity} {slower[name].text()}). {said}")
        elif v.status == PASS and SIGMA_CONTROL in slower and criteria.judge(stage, slower[SIGMA_CONTROL]) == PASS:
            v = Verdict(stage, PASS, f"{v.text}. Raw flux read beside the true sigma ({SIGMA_CONTROL}) degrades more "
                                     "slowly too: the robustness may come through sigma.")
        out.append(v)
    return out
