"""Stage A: does the log g signal come from the flux or from the error shortcut?

The per-pixel error is computed from the clean flux, so the error vector alone
predicts log g. A1 fits that error-only baseline; A2 takes its residual
``r = y - y_hat_error_only`` (out-of-fold on train, so the training residual is
honest); A3/A4 ask how much of r the flux and the teacher latent explain.

Reading (docs/research-plan.md section 4, Stage A), on test R^2 of r with 95 % intervals:
latent ~ 0: the latent rides the shortcut; latent ~ flux: it keeps the flux
information; latent > flux: the representation adds value, unless the noisy
flux read beside sigma does as well (the control: the latent saw sigma);
latent < flux: it loses flux information; R^2(r) above 0.1 is real extra
information. When the flux itself explains ~none of r, the error-only baseline
left no learnable signal and the readings cannot be told apart. Stage A decides no criterion: its reading is logged
as ``outcome_A`` / ``outcome_text_A`` (``distill.criteria``).

Stage B reads r from a flux-only student distilled towards it (``residual_reading``). That student never sees sigma,
so it cannot ride the shortcut: its R^2 of r says whether it reads the part of log g that sigma alone does not explain
(criterion B).
"""
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold

from . import criteria, heads, intervals, probe
from .data import SPLITS
from .intervals import BETTER, TIE, WORSE, Interval
from .thresholds import EXTRA_INFORMATION


def out_of_fold(pipeline, x, y, folds=5, seed=42) -> np.ndarray:
    """Predictions for every training row from a model that never saw that row (k-fold)."""
    out = np.empty(len(y), dtype=np.float64)
    for fit_rows, held_out in KFold(folds, shuffle=True, random_state=seed).split(x):
        model = heads.fit(clone(pipeline), x[fit_rows], y[fit_rows])
        out[held_out] = model.predict(x[held_out])
    return out


def error_only_residual(error: probe.FeatureSet, label: str, head_list, head_params: dict, folds=5, seed=42) -> tuple:
    """A1 and A2: error-only heads on ``label``, the head best on validation, and the residual
    ``r = y - y_hat_error_only`` per split (out-of-fold on train, from the full-train model on val and test).

    Returns ``(fit_heads results, chosen head, {split: r})``."""
    results = probe.fit_heads(error, [label], head_list, head_params)
    head, best = probe.best_on_val(results, label)
    y = {s: error.y[s][label].to_numpy(np.float64) for s in SPLITS}
    chosen = {"alpha": best.scores[f"ridge_alpha_{label}"]} if f"ridge_alpha_{label}" in best.scores else {}
    pipeline = heads.make_pipeline(head, **head_params | chosen)  # the folds keep the alpha chosen on validation
    r = {"train": y["train"] - out_of_fold(pipeline, error.x["train"], y["train"], folds, seed)}
    r |= {s: y[s] - best.predictions[s] for s in ("val", "test")}
    return results, head, r


def on_target(fs: probe.FeatureSet, target: dict, name: str) -> probe.FeatureSet:
    """The same features with one label column ``name`` holding ``target`` per split (e.g. the residual)."""
    return probe.FeatureSet(fs.x, {s: pd.DataFrame({name: target[s]}) for s in SPLITS}, fs.name)


def log_g_r2(target_r2: float, target, log_g) -> float:
    """R^2 of log g from the R^2 of a target read in its place. For the residual r = log g - error-only
    prediction, log g - (prediction + r_hat) = r - r_hat, so R^2(log g) = 1 - (1 - R^2(r)) Var(r) / Var(log g);
    for log g itself this is its own R^2. The error-only prediction reads the clean sigma."""
    return 1 - (1 - target_r2) * float(np.var(target)) / float(np.var(log_g))


def log_g_gains(y, error_only, residual_predictions: dict) -> dict:
    """{input: Interval of R^2(y, error-only + r_hat) - R^2(y, error-only)}: what each input's reading of the residual
    adds to the error-only prediction, in the label's own R^2, paired over the same test rows."""
    return {name: intervals.delta(y, error_only + r_hat, error_only) for name, r_hat in residual_predictions.items()}


def variance_decomposition(y, y_hat) -> dict:
    """Var(y) = Var(y_hat) + Var(r) + 2 Cov(y_hat, r) with r = y - y_hat; and r's share of Var(y)."""
    y, y_hat = np.asarray(y, float), np.asarray(y_hat, float)
    r = y - y_hat
    cov = float(np.cov(y_hat, r, bias=True)[0, 1])
    return {"var_y": float(y.var()), "var_y_hat": float(y_hat.var()), "var_r": float(r.var()), "cov_term": 2 * cov,
            "r_mean": float(r.mean()), "r_std": float(r.std()), "r_share": float(r.var() / y.var())}


def verdict(latent: Interval, flux: Interval, gain: Interval, control: Interval | None = None) -> tuple:
    """(code, sentence) for latent->r against flux->r on test R^2 of the residual, each with its interval, and
    ``gain`` = latent - flux paired on the same rows. "~0" and "as well as" are read in units of the interval: a
    reading is ~0 when its interval includes 0, two readings are close when the interval of their difference does.
    ``control``: latent - (noisy flux + sigma)->r; a latent that beats the flux but not the flux read beside sigma may
    be the shortcut read non-linearly."""
    numbers = f" (latent->r {latent.text()}, flux->r {flux.text()}, latent - flux {gain.text()})"
    if flux.lo <= 0:
        return "no_residual_signal", ("Even the flux explains no measurable part of the residual: the error-only "
                                      "baseline leaves no learnable signal, so shortcut and flux information cannot "
                                      "be told apart" + numbers + ".")
    if latent.lo <= 0:
        return "shortcut", "The latent explains no measurable part of the residual: it rides the error shortcut" + \
            numbers + "."
    status = gain.verdict()
    if status == TIE:
        return "keeps_flux_information", ("The latent explains the residual as well as the flux: it keeps the flux "
                                          "information" + numbers + ".")
    if status == WORSE:
        return "loses_flux_information", "The latent explains less of the residual than the flux: it loses flux " \
                                         "information" + numbers + "."
    extra = f"; R^2 of r above {EXTRA_INFORMATION}: real extra information" if latent.lo > EXTRA_INFORMATION else ""
    if control is not None and control.verdict() != BETTER:
        return "adds_value_or_shortcut", ("The latent explains more of the residual than the flux, but not more than "
                                          f"the flux read beside sigma (latent - flux+sigma {control.text()}): the "
                                          "gain may be the error shortcut read non-linearly" + numbers + ".")
    return "adds_value", "The latent explains more of the residual than the flux: the representation adds value" + \
        numbers + extra + "."


def residual_reading(student: Interval, raw: Interval, gain: Interval) -> criteria.Verdict:
    """Stage B (criterion B): whether a flux-only student's latent reads the residual r, the part of log g that sigma
    alone does not explain, on its test R^2 of r with its interval; raw flux -> r and the paired ``gain`` (student -
    raw) stand beside it. The student sees no sigma, so an r it cannot read is missing information, not a shortcut."""
    v = criteria.verdict("B", student)
    says = {criteria.PASS: "reads part of the log g that sigma alone does not explain",
            criteria.FAIL: "reads none of the log g that sigma alone does not explain",
            criteria.UNDECIDED: "may or may not read the log g that sigma alone does not explain (the interval "
                                "includes 0)"}[v.status]
    return criteria.Verdict("B", v.status, f"The flux-only student's latent {says}: {v.text}; raw flux -> r "
                                           f"{raw.text()}, student - raw flux {gain.text()} ({gain.verdict()}).")
