"""A trained student judged: Stage 2.1 (how well z_s imitates z*), 2.2 / B (the same heads on z_s, z*, raw and
denoised flux) and 3.1 (the student against raw / denoised flux with the same head, overall and per bin), and its
inference speed, as an ``Outcome`` for the entry point to log."""
import numpy as np
import pandas as pd

from .. import criteria, decompose, figures, intervals, probe
from ..data import NOISE_SEED, SPLITS
from ..outcome import Outcome
from . import compare, verdicts
from . import figures as student_figures
from .session import Session
from .targets import fixed_targets
from .train import latent_scores


def judge(session: Session, ceiling: float | None) -> Outcome:
    """Every stage of a trained student; ``ceiling``: the information ceiling of the target, or None."""
    out, trainer = Outcome(), session.trainer
    predicted = {s: trainer.predict(s) for s in SPLITS}  # best weights, each split's fixed noise
    if session.settings.distilling:
        latent_fit(session, predicted, out)
    results, lines, best_heads = heads_on_every_set(session, predicted, out)
    end_to_end(session, results, lines, best_heads, ceiling, out)
    speed = compare.speeds(trainer, session.teacher if session.settings.times_teacher else None,
                           session.settings.layer, session.settings.direction)
    out.metrics |= speed
    target = session.settings.target
    table = pd.DataFrame([{"features": name, "head": best_heads[name, target],
                           "test_r2": lines[f"{name}_test_r2_{target}"],
                           "test_mae": lines[f"{name}_test_mae_{target}"]} for name in results])
    out.tables["tables/summary.json"] = table
    out.lines += [table.to_string(index=False), ", ".join(f"{k} {v:,.1f}" for k, v in speed.items())]
    return out


def latent_fit(session: Session, predicted: dict, out: Outcome):
    """Stage 2.1: latent scores per split, and the reachable cosine from the teacher's z* under a second draw."""
    s, trainer = session.settings, session.trainer
    fit = {split: latent_scores(predicted[split][0], trainer.z[split]) for split in SPLITS}
    out.metrics |= {f"{split}_{k}": v for split in SPLITS for k, v in fit[split].items()}
    redrawn = fixed_targets(session.teacher, session.ds["test"], "test", s.noise_level, s.layer, s.pooling,
                            s.direction, trainer.device, noise_seed=NOISE_SEED + 1)  # the same spectra, another draw
    two_draws = latent_scores(trainer.standardise_z(redrawn), trainer.z["test"])["latent_cosine"]
    # one draw agrees with the noise-free latent about as the square root of two draws' agreement
    reproducible = float(np.sqrt(max(two_draws, 0.0)))
    out.metrics |= {"test_latent_cosine_two_draws": two_draws, "test_latent_cosine_reproducible": reproducible}
    decide(out, "2.1", verdicts.latent_fit(fit["train"], fit["test"], reproducible))


def decide(out: Outcome, stage: str, said: tuple):
    """Log the plan's ``(outcome, sentence)`` of ``stage`` as its verdict (``distill.criteria``), and the outcome word
    under the tag name older runs used, ``verdict_2_1`` for 2.1 (scripts and tests read it; the report does not)."""
    out.verdict(criteria.outcome(stage, *said))
    out.tags[f"verdict_{stage.replace('.', '_')}"] = said[0]


def heads_on_every_set(session: Session, predicted: dict, out: Outcome) -> tuple:
    """The same heads on z_s, z*, raw and denoised flux (and the student's own head): (results per set, the
    headline scores, the head best on validation per (set, label))."""
    s, trainer, features = session.settings, session.trainer, session.features
    sets = {"student": lambda: {split: predicted[split][0] for split in SPLITS},
            "raw": lambda: compare.fixed_noisy_splits(trainer)}
    if session.z is not None:
        sets["teacher"] = lambda: session.z
    if features is not None and features.manifest.get("denoised"):
        sets["denoised"] = lambda: probe.baseline_features(session.ds, "denoised_flux", s.noise_level,
                                                           features.local).x
    elif session.teacher is not None:
        sets["denoised"] = lambda: compare.denoise_splits(session.teacher, trainer, trainer.device)
    read = list(dict.fromkeys(list(s.labels) + [s.target]))
    results, lines, best_heads = {}, {}, {}
    for name, fitted in compare.heads_per_set(sets, session.y_frames, read, list(s.heads), s.head_params):
        results[name] = fitted
        out.metrics |= {f"{name}_{head}_{k}": v for (_, head), r in fitted.items() for k, v in r.scores.items()}
        if name == "student" and not s.label_free:
            results[name][s.target, "head"] = compare.trained_head({split: predicted[split][1] for split in SPLITS},
                                                                   session.y, s.target)
            out.metrics |= {f"student_head_{k}": v for k, v in results[name][s.target, "head"].scores.items()}
        for label in read:
            best_heads[name, label], line = compare.headline(name, results[name], label)
            out.tags[f"{name}_best_head_{label}"] = best_heads[name, label]
            out.metrics |= line
            lines |= line
    return results, lines, best_heads


def end_to_end(session: Session, results: dict, lines: dict, best_heads: dict, ceiling, out: Outcome):
    """Stages 2.2, B and 3.1 from the heads' results; the headline predictions, the per-bin tables and figures."""
    s, y, target = session.settings, session.y, session.settings.target
    predictions, vs = compare.headlines(results, best_heads, target, y["test"])
    for name, d in vs.items():
        out.metrics |= d.keyed(f"student_minus_{name}_test_r2_{target}")
    out.parquets["predictions/test.parquet"] = predictions
    r2 = {name: intervals.Interval.read(lines, f"{name}_test_r2_{target}") for name in results}
    pair = [f"{name}_{target}" for name in ("teacher", "raw")]
    teacher_vs_raw = (intervals.delta(y["test"], *(predictions[c].to_numpy() for c in pair))
                      if all(c in predictions.columns for c in pair) else None)
    decide(out, "2.2", verdicts.student_vs_teacher(r2["student"], r2["raw"], vs["raw"], r2.get("teacher"),
                                                   vs.get("teacher_0.9"), teacher_vs_raw))
    out.verdict(criteria.verdict("2.2_raw", vs["raw"]))  # the halves of 2.2, each a criterion of its own
    if "teacher_0.9" in vs:
        out.verdict(criteria.verdict("2.2_teacher", vs["teacher_0.9"]))
    if target == "residual":
        out.verdict(decompose.residual_reading(r2["student"], r2["raw"], vs["raw"]))
    tables, judged, verdict = compare.stage_3_1(results, list(s.heads), target, y["test"], session.y_frames["test"])
    for head, bins in tables.items():
        out.figures[f"figures/stage_3_1_per_bin_{head}.png"] = student_figures.per_bin_comparison(bins, target, head)
    decide(out, "3.1", verdict)
    out.tables["tables/stage_3_1_per_bin.json"] = pd.concat(tables.values(), ignore_index=True)
    best = results["student"][target, judged]
    out.figures[f"figures/{target}_pred_vs_true.png"] = figures.predicted_vs_true(
        y["test"], best.predictions["test"], target,
        f"student + {judged}: test R^2 {best.scores[f'test_r2_{target}']:.3f}",
        ceiling if s.input == "flux" else None)  # sigma is unbounded
