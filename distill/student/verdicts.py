"""Verdicts of Stages 2.1, 2.2 and 3.1 against the research plan's acceptance criteria (section 4).

Each returns ``(code, sentence)``; the entry point logs the code as a tag and prints the sentence.
"""
import pandas as pd

from ..thresholds import ANALYSIS_GAP, COSINE_PASS, FAIL_DELTA, MIN_BIN, OVERFIT_RATIO, TEACHER_FRACTION, UNDERFIT_NMSE

PASSING_2_2 = ("pass", "above_raw")  # Stage 2.2 codes that let the plan go on to Stage 3


def latent_fit(train: dict, val: dict) -> tuple:
    """Stage 2.1 from the latent scores (``latent_nmse``, ``latent_cosine``) on train and val."""
    cos, t_nmse, v_nmse = val["latent_cosine"], train["latent_nmse"], val["latent_nmse"]
    numbers = f"val cosine {cos:.3f}, NMSE train {t_nmse:.3f} / val {v_nmse:.3f}"
    if cos >= COSINE_PASS:
        return "pass", (f"The student imitates the teacher latent ({numbers}; pass at cosine >= {COSINE_PASS}): go to "
                        f"2.2.")
    if t_nmse > UNDERFIT_NMSE:
        return "underfit", (f"Neither training nor validation error fell far ({numbers}): go to 2.3 (student-plus) "
                            "to tell an information bottleneck from a bug.")
    if v_nmse > OVERFIT_RATIO * t_nmse:
        return "overfit", f"Training error low, validation error high ({numbers}): the student overfits."
    return "partial", f"The student learns part of the latent ({numbers}), short of cosine {COSINE_PASS}."


def student_vs_teacher(student: float, teacher: float | None, raw: float) -> tuple:
    """Stage 2.2 on test R^2: student >= 0.9 x teacher and >= raw flux (teacher None: raw only)."""
    numbers = (f"student {student:.3f}, " + (f"teacher {teacher:.3f}, " if teacher is not None else "")
               + f"raw flux {raw:.3f}")
    if student < raw:
        return "below_raw", f"The student reads less than raw flux ({numbers}): go back to 2.1."
    if teacher is None:
        return "above_raw", f"The student beats raw flux ({numbers}); no teacher latent to compare with."
    if student >= TEACHER_FRACTION * teacher:
        return "pass", f"Student >= {TEACHER_FRACTION} x teacher and >= raw flux ({numbers}): go to Stage 3."
    if teacher - student >= ANALYSIS_GAP:
        return "far_below_teacher", (f"The student is {teacher - student:.3f} below the teacher ({numbers}): needs "
                                     f"analysis.")
    return "below_teacher", f"The student beats raw flux but is under {TEACHER_FRACTION} x teacher ({numbers})."


def end_to_end(overall: dict, bins: pd.DataFrame) -> tuple:
    """Stage 3.1 for one head: ``overall`` {features: test R^2} with 'student' and baselines;
    ``bins`` per-bin rows (features, bin_by, lo, hi, n, mae). Pass: student >= every baseline
    overall and no worse MAE in any judged bin; fail: R^2 >= 0.05 below a baseline."""
    s = overall["student"]
    deltas = {name: s - r2 for name, r2 in overall.items() if name != "student"}
    numbers = ", ".join(f"{name} {r2:.3f}" for name, r2 in overall.items())
    worst = min(deltas, key=deltas.get)
    if deltas[worst] <= -FAIL_DELTA:
        return "fail", f"The student is {-deltas[worst]:.3f} R^2 below {worst} ({numbers}): fail (>= {FAIL_DELTA})."
    judged = bins[bins["n"] >= MIN_BIN].pivot_table(index=["bin_by", "lo"], columns="features", values="mae")
    worse = [f"{by} {lo:g}" for (by, lo), row in judged.iterrows()
             if any(row["student"] > row[b] for b in deltas if b in row)]
    if deltas[worst] >= 0 and not worse:
        return "pass", f"The student matches or beats every baseline overall and in every bin ({numbers})."
    where = f"; higher MAE in bins {', '.join(worse)}" if worse else ""
    return "acceptable", (f"The student is within {FAIL_DELTA} R^2 of every baseline ({numbers}{where}): acceptable "
                          "only if smaller, faster or more robust.")
