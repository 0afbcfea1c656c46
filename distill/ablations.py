"""Stage 4 sanity checks and robustness (research plan MVP 1.2, 3.2, 3.3, 4.1-4.3): numbers and verdicts.

Each verdict returns ``(code, sentence)`` with the numbers behind it.
"""
import numpy as np
import pandas as pd

from . import metrics, probe
from .thresholds import CLEARLY_HIGHER, ERROR_DOMINATES, ERROR_HELPS, SHUFFLE_TOLERANCE, SIGMA_USED, SLOWER, USEFUL

# 4.3: the mean test R^2 over ``SHUFFLES`` heads trained on permuted labels must stay below
# max(SHUFFLE_TOLERANCE, 3 standard errors of that mean). A head that cannot see the true labels scores ~0 or
# below (it fits noise), but on a small test set chance alone moves one shuffle's R^2 by
# ~2 sqrt(Var(y_hat) / Var(y) / n_test) (about 0.03 at n_test = 1000, 0.2 at 32): the mean over
# shuffles and its own spread set the bar. A pipeline that ignores the permutation scores the same high R^2
# on every shuffle (no spread) and trips the floor.
SHUFFLES = 5
NOISE_LEVELS = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0)
TRAIN_SIZES = (1000, 5000, 10000, 0)  # 0: the whole training set


def shuffled_training_labels(fs: probe.FeatureSet, label: str, seed: int = 42) -> probe.FeatureSet:
    """The same features with the training labels permuted (validation and test untouched)."""
    y = dict(fs.y)
    frame = fs.y["train"].copy()
    frame[label] = frame[label].to_numpy()[np.random.default_rng(seed).permutation(len(frame))]
    y["train"] = frame
    return probe.FeatureSet(fs.x, y, fs.name)


def shuffle_check(fs: probe.FeatureSet, label: str, head: str, head_params: dict, shuffles=SHUFFLES, seed=42,
                  tolerance=SHUFFLE_TOLERANCE) -> dict:
    """4.3 on one feature set and head: test R^2 with the true labels and with ``shuffles`` permutations."""
    r2 = probe.fit_label(fs, label, head, **head_params).scores[f"test_r2_{label}"]
    shuffled = np.array([probe.fit_label(shuffled_training_labels(fs, label, seed + i), label, head, **head_params)
                         .scores[f"test_r2_{label}"] for i in range(shuffles)])
    spread = float(shuffled.std(ddof=1) / np.sqrt(shuffles)) if shuffles > 1 else 0.0
    return {"test_r2": r2, "shuffled_mean": float(shuffled.mean()), "shuffled_min": float(shuffled.min()),
            "shuffled_max": float(shuffled.max()), "tolerance_used": max(tolerance, 3 * spread)}


def leakage(shuffled_mean: float, tolerance_used: float) -> tuple:
    if shuffled_mean > tolerance_used:
        return "leakage_alarm", (f"With shuffled training labels the heads still reach mean test R^2 "
                                 f"{shuffled_mean:.3f} "
                                 f"> {tolerance_used:.3f}: labels leak into the features or rows are misaligned.")
    return "pass", (f"Shuffled training labels give mean test R^2 {shuffled_mean:.3f} (<= {tolerance_used:.3f}): no "
                    f"leakage.")


def error_dependence(r2_with: float, r2_without: float) -> tuple:
    """4.1: the teacher with sigma against the teacher without it (same layer, pooling, head)."""
    delta = r2_with - r2_without
    numbers = f"R^2 with sigma {r2_with:.3f}, without {r2_without:.3f}, delta {delta:.3f}"
    if delta > ERROR_DOMINATES:
        return "error_dominates", (f"The error carries much of the log g information ({numbers} > {ERROR_DOMINATES}): "
                                   "a ceiling for distillation.")
    if delta > ERROR_HELPS:
        return "error_matters", (f"Removing the error costs more than {ERROR_HELPS} but at most {ERROR_DOMINATES} "
                                 f"({numbers}).")
    return "error_helps_little", f"The error helps at most a little ({numbers} <= {ERROR_HELPS})."


def sigma_use(r2: float, r2_shuffled: float) -> tuple:
    """4.2: latent from the true sigma against the latent from sigma permuted across spectra."""
    drop = r2 - r2_shuffled
    numbers = f"R^2 {r2:.3f} -> {r2_shuffled:.3f} with shuffled sigma (drop {drop:.3f})"
    if drop > SIGMA_USED:
        return "uses_sigma", f"The teacher really uses sigma: {numbers}."
    return "sigma_removable", f"No real drop: {numbers}; sigma could be removed."


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

