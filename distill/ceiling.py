"""Summaries of the information ceiling (``distill.fisher``): the metrics a ``fisher`` run logs, the step check,
the ceiling against noise level, and the check that a split was made by the built-in simulator."""
import numpy as np
import pandas as pd

from . import bayes_bound, fisher
from .data import LABELS
from .errors import DistillError

LEVELS = (0.1, 0.2, 0.5, 1.0, 2.0)  # noise levels of the ceiling table (those of ablate's noise sweep)
STEP_CHECK_ROWS = 64  # spectra whose bound is recomputed with half the steps


def check_simulated(spectra):
    """Fail unless the simulator's model of the stored labels reproduces the stored flux (first 8 rows)."""
    why = ("the ceiling needs the model that made the spectra, so it exists only for simulated data "
           "(other entry points omit it)")
    if "mag" not in spectra.params.columns:
        raise DistillError(f"{spectra.path}: not made by the built-in simulator (its params lack 'mag'); {why}")
    flux = spectra.read(0, min(8, len(spectra)))[0]
    model = fisher.simulator_flux(spectra.params.iloc[:len(flux)])
    diff = float(np.abs(model - flux).max() / np.abs(flux).max())
    if diff > 1e-4:
        raise DistillError(f"{spectra.path}: the stored flux is not the built-in simulator's model of its labels "
                           f"(relative difference {diff:.1e}); {why}. Data simulated by an older version: simulate it "
                           f"again")


def ceiling_metrics(info, params, noise_level) -> dict:
    """The three Cramer-Rao ceilings of every label; ``bound_r2_{label}``, the Ziv-Zakai limit on any reader's R^2
    for the labels' own prior (``distill.bayes_bound``); ``yardstick_r2_{label}``, the prior-aware figure (an average
    posterior variance, neither a bound nor a ceiling; also logged as ``ceiling_prior_r2_{label}``); uninformative
    spectra, and quantiles and edge cases of the log g bound."""
    out, priors = {}, fisher.prior_variances(params)
    for k, label in enumerate(LABELS):
        var = float(params[label].var())
        bounds = fisher.crb(info, k, priors, noise_level)
        ceil = fisher.ceiling(bounds, var)
        out |= {f"ceiling_r2_{label}": ceil["marginal"], f"ceiling_known_others_r2_{label}": ceil["known_others"],
                f"ceiling_prior_r2_{label}": ceil["prior"], f"yardstick_r2_{label}": ceil["prior"],
                f"bound_r2_{label}": bayes_bound.bound_r2(info, params, label, LABELS, noise_level),
                f"n_uninformative_{label}": int(np.isinf(bounds["marginal"]).sum())}
        if label == "log_g":
            out |= {f"crb_{b}_log_g_q{round(q * 100)}": v for (b, q), v in fisher.quantiles(bounds).items()}
            one_sided = fisher.schemes(params[label], fisher.STEPS[label], *fisher.RANGES[label]) != "central"
            out["n_one_sided_log_g"] = int(one_sided.sum())
    return out


def step_check(info, half, params) -> pd.DataFrame:
    """|log| change of the unbiased bound when the steps are halved, per label (median and max over the spectra)."""
    rows, priors = [], fisher.prior_variances(params)
    for k, label in enumerate(LABELS):
        change = np.abs(np.log(fisher.crb(half, k, priors)["marginal"] /
                               fisher.crb(info[:len(half)], k, priors)["marginal"]))
        rows.append({"label": label, "step": fisher.STEPS[label], "median_rel_change": float(np.nanmedian(change)),
                     "max_rel_change": float(np.nanmax(change))})
    return pd.DataFrame(rows)


def ceiling_by_noise(info, params, noise_level) -> pd.DataFrame:
    """The three ceilings of every label at each of ``LEVELS`` and ``noise_level``."""
    rows, priors = [], fisher.prior_variances(params)
    for k, label in enumerate(LABELS):
        var = float(params[label].var())
        for level in sorted({*LEVELS, noise_level}):
            rows.append({"label": label, "noise_level": level,
                         **fisher.ceiling(fisher.crb(info, k, priors, level), var)})
    return pd.DataFrame(rows)
