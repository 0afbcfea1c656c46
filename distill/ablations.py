"""Stage 4 sanity checks and robustness (research plan MVP 1.2, 3.2, 3.3, 4.1-4.3): numbers and verdicts.

Each verdict returns ``(code, sentence)`` with the numbers behind it.
"""
import numpy as np
import pandas as pd
from scipy import stats

from . import metrics, probe
from .intervals import Interval
from .thresholds import CLEARLY_HIGHER, ERROR_DOMINATES, ERROR_HELPS, FALSE_ALARM, SIGMA_USED, SLOWER, USEFUL

# 4.3: heads trained on permuted training labels must predict the test labels no better than chance. Their test
# R^2 is no fair statistic: a head fitted to noise scores about -p / (n - p) on average (Ridge, p = 384, n = 2,000:
# about -0.24), which hides a leak of that size. The statistic is the correlation of each shuffled head's test
# predictions with the test labels. Its null is not the test labels permuted: a head fitted to one permutation has
# random weights that correlate with the true ones by chance, shared by every test row (spread ~ 1 / sqrt(features)),
# so the null spread is measured over the shuffles themselves: a one-sided one-sample t-test of their correlations
# against 0, which an honest pipeline fails with probability ``FALSE_ALARM``.
SHUFFLES = 20
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
                  seed=42) -> dict:
    """4.3 on one feature set and head: ``shuffles`` heads trained on permuted training labels; the mean correlation
    of their test predictions with the test labels and its one-sided t-test p-value against 0."""
    r2 = probe.fit_label(fs, label, head, **head_params).scores[f"test_r2_{label}"]
    y = fs.y["test"][label].to_numpy(float)
    fits = [probe.fit_label(shuffled_training_labels(fs, label, seed + i), label, head, **head_params)
            for i in range(shuffles)]
    corr = np.array([_correlation(f.predictions["test"], y) for f in fits])
    if corr.std() > 0:
        p = stats.ttest_1samp(corr, 0.0, alternative="greater").pvalue
    else:  # every shuffle gave the same predictions: the shuffle does nothing
        p = 0.0 if corr.mean() > 0 else 1.0
    shuffled_r2 = np.array([f.scores[f"test_r2_{label}"] for f in fits])
    return {"test_r2": r2, "shuffles": shuffles, "shuffled_correlation": float(corr.mean()),
            "shuffled_correlation_sd": float(corr.std(ddof=1)), "shuffled_p_value": float(p),
            "shuffled_mean": float(shuffled_r2.mean()),
            "shuffled_min": float(shuffled_r2.min()), "shuffled_max": float(shuffled_r2.max())}


def _correlation(pred: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; a constant prediction correlates with nothing (0)."""
    return 0.0 if pred.std() == 0 else float(np.corrcoef(pred, y)[0, 1])


DETECTS = ("It detects training labels that reach the test predictions although they were permuted (a shuffle the "
           "pipeline ignores, rows joined back to their labels, test labels among the training rows). It does not "
           "detect labels encoded in the features themselves, which a head trained on shuffled labels cannot use: "
           "Stage A and 4.1 / 4.2 look at those.")


def leakage(checks: dict, false_alarm: float = FALSE_ALARM) -> tuple:
    """4.3 over every (feature set, head) of ``shuffle_check``: the alarm rises when the smallest p-value is below
    ``false_alarm`` / the number of checks (Bonferroni), so an honest pipeline alarms with probability at most
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
        return "leakage_alarm", f"Leakage alarm: {numbers}. {DETECTS}"
    return "pass", f"No leakage detected: {numbers}. {DETECTS}"


def error_dependence(delta: Interval) -> tuple:
    """4.1: teacher minus the teacher without sigma (same layer, pooling, head), judged on the delta's interval."""
    numbers = f"R^2 lost without sigma {delta.text()} (95 % interval)"
    if delta.lo > ERROR_DOMINATES:
        return "error_dominates", (f"The error carries much of the log g information ({numbers}, all above "
                                   f"{ERROR_DOMINATES}): a ceiling for distillation.")
    if delta.lo > ERROR_HELPS:
        return "error_matters", (f"Removing the error costs more than {ERROR_HELPS} ({numbers}); it is not shown to "
                                 f"exceed {ERROR_DOMINATES}.")
    if delta.hi <= ERROR_HELPS:
        return "error_helps_little", f"The error helps at most a little ({numbers}, all below {ERROR_HELPS})."
    return "undecided", (f"The interval spans the {ERROR_HELPS} threshold ({numbers}): more test spectra are needed "
                         "to say how much the error carries.")


def sigma_use(drop: Interval) -> tuple:
    """4.2: latent from the true sigma minus the latent from sigma permuted across spectra, on the drop's interval."""
    numbers = f"R^2 drop with shuffled sigma {drop.text()} (95 % interval)"
    if drop.lo > SIGMA_USED:
        return "uses_sigma", f"The teacher really uses sigma: {numbers}, all above {SIGMA_USED}."
    if drop.hi < SIGMA_USED:
        real = " (small but real: the interval excludes 0)" if drop.lo > 0 else ""
        return "sigma_removable", f"No drop above {SIGMA_USED}: {numbers}{real}; sigma could be removed."
    return "undecided", f"The interval spans {SIGMA_USED} ({numbers}): not resolved at this size."


def permuted_sigma(error: np.ndarray, seed: int = 42) -> np.ndarray:
    """4.2: the error rows permuted across spectra (a derangement-free check is left to the caller)."""
    return error[np.random.default_rng(seed).permutation(len(error))]


def noise_curves(sets: dict, test_at: dict, levels, label: str, head: str, head_params: dict) -> dict:
    """1.2 / 3.2: {name: {level: test R^2}}; each head is fitted once on ``sets[name]`` (the training
    noise level) and scored on ``test_at[name](level)``, the test features made at each noise level."""
    out = {}
    for name, fs in sets.items():
        model = probe.fit_label(fs, label, head, **head_params).model
        y = fs.y["test"][label].to_numpy(float)
        out[name] = {level: metrics.scores(y, model.predict(test_at[name](level)))["r2"] for level in levels}
    return out


def size_curves(sets: dict, sizes, label: str, head: str, head_params: dict, seed: int = 42) -> dict:
    """3.3: {name: {size: test R^2}} with the head trained on a random labelled subset (0: all)."""
    return {name: {size: probe.fit_label(probe.subset_train(fs, size, seed), label, head,
                                         **head_params).scores[f"test_r2_{label}"]
                   for size in sizes} for name, fs in sets.items()}


def robustness(curves: dict, train_level: float) -> tuple:
    """1.2 / 3.2: R^2 lost from the training noise level to the highest level, latents vs raw flux."""
    top = max(next(iter(curves.values())))
    drops = {name: c[train_level] - c[top] for name, c in curves.items()}
    numbers = ", ".join(f"{name} loses {d:.3f}" for name, d in drops.items())
    slower = [name for name, d in drops.items()
              if name != "raw" and d < drops["raw"] - SLOWER and curves[name][train_level] > USEFUL]
    if slower:
        return "latent_more_robust", (f"From noise {train_level} to {top}: {numbers}; {', '.join(slower)} degrade(s) "
                                      f"more slowly.")
    return "not_more_robust", (f"From noise {train_level} to {top}: {numbers}; no latent that reads log g at the "
                               f"training "
                               f"level (R^2 > {USEFUL}) degrades more slowly than raw flux.")


def sample_efficiency(curves: dict, name: str = "student", small=5000) -> tuple:
    """3.3: is ``name`` (the student; the teacher latent when no student is given) clearly above raw
    flux with few labels (sizes up to ``small``)?"""
    sizes = [s for s in curves[name] if 0 < s <= small]
    if not sizes:
        return "not_measured", f"No training size up to {small} was run."
    gaps = {s: curves[name][s] - curves["raw"][s] for s in sizes}
    numbers = ", ".join(f"{s}: {gaps[s]:+.3f}" for s in sizes)
    if min(gaps.values()) >= CLEARLY_HIGHER:
        return "pays_off", (f"The {name} is clearly above raw flux with few labels (R^2 gap {numbers}): "
                            f"representation learning pays off.")
    return "does_not_pay_off", (f"The {name} is not clearly above raw flux with few labels (R^2 gap {numbers}; needs "
                                f">= {CLEARLY_HIGHER}).")


def curve_table(curves: dict, axis: str) -> pd.DataFrame:
    return pd.DataFrame([{"features": name, axis: level,
                          "test_r2": r2} for name, c in curves.items() for level, r2 in c.items()])

