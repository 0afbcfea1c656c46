"""Verdicts of Stages 2.1, 2.2 and 3.1 against the research plan's acceptance criteria (section 4).

Each returns ``(code, sentence)``; the entry point logs the code as a tag and prints the sentence.
"""
import pandas as pd

from ..intervals import BETTER, TIE, WORSE, Interval
from ..thresholds import ANALYSIS_GAP, COSINE_PASS, FAIL_DELTA, MIN_BIN, OVERFIT_RATIO, TEACHER_FRACTION, UNDERFIT_NMSE

PASSING_2_2 = ("pass", "above_raw", "ties_raw")  # Stage 2.2 codes that let the plan go on to Stage 3


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
                       vs_teacher: Interval | None = None) -> tuple:
    """Stage 2.2 on test R^2: student >= 0.9 x teacher and >= raw flux, each judged on the interval of the paired
    difference (``vs_raw`` = student - raw, ``vs_teacher`` = student - 0.9 x teacher; teacher None: raw only)."""
    numbers = (f"student {student.value:.3f}, " + (f"teacher {teacher.value:.3f}, " if teacher is not None else "")
               + f"raw flux {raw.value:.3f}; student - raw {vs_raw.text()}")
    if vs_raw.verdict() == WORSE:
        return "below_raw", f"The student reads less than raw flux ({numbers}): go back to 2.1."
    on_raw = "beats" if vs_raw.verdict() == BETTER else "ties with"
    if teacher is None:
        return ("above_raw" if on_raw == "beats" else "ties_raw"), (f"The student {on_raw} raw flux ({numbers}); no "
                                                                    "teacher latent to compare with.")
    if teacher.lo <= 0:
        return "teacher_reads_nothing", (f"The teacher latent reads nothing measurable (R^2 interval [{teacher.lo:.3f},"
                                         f" {teacher.hi:.3f}] includes 0), so 'student >= {TEACHER_FRACTION} x "
                                         f"teacher' is vacuous; the student {on_raw} raw flux ({numbers}).")
    numbers += f", student - {TEACHER_FRACTION} x teacher {vs_teacher.text()}"
    if vs_teacher.verdict() != WORSE:
        return "pass", (f"Student >= {TEACHER_FRACTION} x teacher (not rejected) and it {on_raw} raw flux ({numbers}): "
                        "go to Stage 3.")
    if teacher.value - student.value >= ANALYSIS_GAP:
        return "far_below_teacher", (f"The student is {teacher.value - student.value:.3f} below the teacher "
                                     f"({numbers}): needs analysis.")
    return "below_teacher", f"The student {on_raw} raw flux but is under {TEACHER_FRACTION} x teacher ({numbers})."


def end_to_end(vs: dict, overall: dict, bins: pd.DataFrame) -> tuple:
    """Stage 3.1 for one head. ``vs`` {baseline: Interval of student - baseline test R^2}, ``overall`` {features:
    test R^2} with 'student'; ``bins`` per-bin rows (features, bin_by, lo, hi, n, mae). Fail: the whole interval of
    a difference lies more than 0.05 below zero; pass: no difference is worse (interval below zero) and no judged
    bin has a higher MAE; otherwise acceptable."""
    numbers = ", ".join(f"{name} {r2:.3f}" for name, r2 in overall.items())
    gaps = "; ".join(f"student - {name} {d.text()}" for name, d in vs.items())
    failed = [name for name, d in vs.items() if d.hi < -FAIL_DELTA]
    if failed:
        return "fail", (f"The student is more than {FAIL_DELTA} R^2 below {', '.join(failed)} with 95 % confidence "
                        f"({numbers}; {gaps}): fail.")
    judged = bins[bins["n"] >= MIN_BIN].pivot_table(index=["bin_by", "lo"], columns="features", values="mae")
    worse = [f"{by} {lo:g}" for (by, lo), row in judged.iterrows()
             if any(row["student"] > row[b] for b in vs if b in row)]
    below = [name for name, d in vs.items() if d.verdict() == WORSE]
    if not below and not worse:
        ties = [name for name, d in vs.items() if d.verdict() == TIE]
        how = f"ties with {', '.join(ties)}" if ties else "beats every baseline"
        return "pass", f"The student {how} and no judged bin has a higher MAE ({numbers}; {gaps})."
    faults = ([f"is below {', '.join(below)} (not surely by {FAIL_DELTA})"] if below else []) + (
        [f"has a higher MAE in bins {', '.join(worse)} (point estimates)"] if worse else [])
    return "acceptable", (f"The student {' and '.join(faults)} ({numbers}; {gaps}): acceptable only if smaller, "
                          "faster or more robust.")
