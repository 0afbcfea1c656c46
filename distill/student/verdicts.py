"""Verdicts of Stages 2.1, 2.2 and 3.1 against the research plan's acceptance criteria (section 4).

Each returns ``(outcome, sentence)``, the outcome in the plan's words; ``distill.criteria.OUTCOMES`` maps it to pass /
fail / undecided and ``judge`` logs both (``distill.criteria`` names the tags).
"""
import pandas as pd

from .. import criteria
from ..intervals import Interval
from ..thresholds import ANALYSIS_GAP, COSINE_PASS, FAIL_DELTA, MIN_BIN, OVERFIT_RATIO, TEACHER_FRACTION, UNDERFIT_NMSE


def latent_fit(train: dict, test: dict, reproducible: float | None = None) -> tuple:
    """Stage 2.1 from the latent scores (``latent_nmse``, ``latent_cosine``) on train and test (validation chose
    the student's weights, so it would flatter them). ``reproducible``: the square root of the cosine between the
    teacher's own z* of the test spectra under two noise draws, about the most any flux-only student can reach
    (z* carries its noise draw; one draw agrees with the noise-free latent as the square root of two draws'
    agreement, for independent draws of equal spread)."""
    cos, t_nmse, v_nmse = test["latent_cosine"], train["latent_nmse"], test["latent_nmse"]
    numbers = f"test cosine {cos:.3f}, NMSE train {t_nmse:.3f} / test {v_nmse:.3f}"
    if reproducible is not None:
        numbers += f"; reachable about {reproducible:.3f} (the teacher's z* under two noise draws)"
        if reproducible < COSINE_PASS:
            numbers += f", so {COSINE_PASS} is out of reach for any student"
    if cos >= COSINE_PASS:
        return "pass", (f"The student imitates the teacher latent ({numbers}; pass at cosine >= {COSINE_PASS}): go to "
                        f"2.2.")
    if t_nmse > UNDERFIT_NMSE:
        return "underfit", (f"Neither training nor test error fell far ({numbers}): go to 2.3 (student-plus) "
                            "to tell an information bottleneck from a bug.")
    if v_nmse > OVERFIT_RATIO * t_nmse:
        return "overfit", f"Training error low, test error high ({numbers}): the student overfits."
    return "partial", f"The student learns part of the latent ({numbers}), short of cosine {COSINE_PASS}."


def student_vs_teacher(student: Interval, raw: Interval, vs_raw: Interval, teacher: Interval | None = None,
                       vs_teacher: Interval | None = None, teacher_vs_raw: Interval | None = None) -> tuple:
    """Stage 2.2 on test R^2 (``distill.criteria``): student >= 0.9 x teacher and >= raw flux, each on the lower bound
    of its paired difference (``vs_raw`` = student - raw, ``vs_teacher`` = student - 0.9 x teacher); a tie is no pass.
    Vacuous towards a teacher that reads no more than raw flux (``teacher_vs_raw``) or nothing."""
    status, numbers = criteria.stage_2_2(vs_teacher, vs_raw, teacher, teacher_vs_raw)
    numbers = f"student {student.value:.3f}, raw flux {raw.value:.3f}; {numbers}"
    if criteria.judge("2.2_raw", vs_raw) == criteria.FAIL:
        return "below_raw", f"The student reads less than raw flux ({numbers}): go back to 2.1."
    if teacher is None or vs_teacher is None:
        return ("above_raw", f"The student beats raw flux ({numbers}).") if status == criteria.PASS else (
            "ties_raw", f"Not shown: the student does not beat raw flux beyond its interval ({numbers}).")
    if status == criteria.PASS:
        return "pass", f"Student >= {TEACHER_FRACTION} x teacher and >= raw flux ({numbers}): go to Stage 3."
    if status == criteria.FAIL:
        if teacher.value - student.value >= ANALYSIS_GAP:
            return "far_below_teacher", (f"The student is {teacher.value - student.value:.3f} below the teacher "
                                         f"({numbers}): needs analysis.")
        return "below_teacher", f"The student is under {TEACHER_FRACTION} x teacher ({numbers})."
    return "undecided", f"Not shown at this size: an interval spans its margin ({numbers})."


def end_to_end(vs: dict, overall: dict, bins: pd.DataFrame) -> tuple:
    """Stage 3.1 for one head. ``vs`` {baseline: Interval of student - baseline test R^2}, ``overall`` {features:
    test R^2} with 'student'; ``bins`` per-bin rows (features, bin_by, lo, hi, n, mae). The overall status comes from
    ``distill.criteria.stage_3_1`` (fail: surely more than 0.05 below a baseline; pass: above every baseline;
    acceptable: surely not 0.05 below any; else undecided); a judged bin with a higher MAE turns a pass into
    acceptable."""
    numbers = ", ".join(f"{name} {r2:.3f}" for name, r2 in overall.items())
    status, gaps = criteria.stage_3_1(vs)
    judged = bins[bins["n"] >= MIN_BIN].pivot_table(index=["bin_by", "lo"], columns="features", values="mae")
    worse = [f"{by} {lo:g}" for (by, lo), row in judged.iterrows()
             if any(row["student"] > row[b] for b in vs if b in row)]
    if status == criteria.FAIL:
        return "fail", f"The student is more than {FAIL_DELTA} R^2 below a baseline ({numbers}; {gaps}): fail."
    if status == criteria.UNDECIDED:
        return "undecided", f"Not resolved at this size ({numbers}; {gaps})."
    if status == criteria.PASS and not worse:
        return "pass", f"The student beats every baseline and no judged bin has a higher MAE ({numbers}; {gaps})."
    bins_text = f"; a higher MAE in bins {', '.join(worse)} (point estimates)" if worse else ""
    return "acceptable", (f"The student is not above every baseline, surely not {FAIL_DELTA} below any ({numbers}; "
                          f"{gaps}{bins_text}): acceptable only if smaller, faster or more robust.")
