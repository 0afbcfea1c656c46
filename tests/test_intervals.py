"""Bootstrap intervals: they cover the truth at their level, pairing narrows a difference, and planted ties, gains
and losses get the verdict they should."""
import numpy as np
import pandas as pd
import pytest

from distill import intervals, report
from distill.errors import DistillError
from distill.intervals import BETTER, TIE, WORSE, Interval
from distill.student import verdicts


def predictions(n, noise, seed=0):
    """True labels (sd 1) and predictions with independent noise of sd ``noise`` (population R^2 1 - noise^2)."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    return y, y + noise * rng.normal(size=n)


def test_the_r2_interval_covers_the_population_value_at_about_its_level():
    noise, hits = 0.6, 0
    for rep in range(200):
        y, p = predictions(300, noise, seed=rep)
        ci = intervals.r2(y, p, n_boot=400)
        hits += ci.lo <= 1 - noise ** 2 <= ci.hi
    assert 0.88 <= hits / 200 <= 0.99


def test_the_interval_narrows_with_more_rows_and_is_reproducible():
    widths = []
    for n in (250, 4000):
        y, p = predictions(n, 0.6)
        ci = intervals.r2(y, p)
        assert ci.lo < ci.value < ci.hi
        widths.append(ci.hi - ci.lo)
    assert widths[1] < widths[0] / 3  # ~ 1 / sqrt(n): 4x narrower for 16x the rows
    y, p = predictions(500, 0.6)
    assert intervals.r2(y, p) == intervals.r2(y, p)


def test_a_planted_tie_is_a_tie_and_a_planted_gain_a_gain():
    rng = np.random.default_rng(1)
    y = rng.normal(size=1000)
    same_a, same_b = y + 0.6 * rng.normal(size=1000), y + 0.6 * rng.normal(size=1000)
    tie = intervals.delta(y, same_a, same_b)
    assert tie.verdict() == TIE and tie.lo < 0 < tie.hi
    better = y + 0.5 * rng.normal(size=1000)  # population R^2 0.75 against 0.64
    gain = intervals.delta(y, better, same_a)
    assert gain.verdict() == BETTER and gain.lo > 0
    assert intervals.delta(y, same_a, better).verdict() == WORSE
    assert gain.verdict(margin=0.2) == TIE  # a margin larger than the gain: not shown


def test_the_difference_is_paired():
    """Two methods that share nearly all their error: their own intervals overlap widely, yet the paired interval
    of the difference is narrow and excludes zero. Unpaired resamples would not see it."""
    rng = np.random.default_rng(2)
    y = rng.normal(size=500)
    shared = 0.7 * rng.normal(size=500)
    a, b = y + shared, y + 1.03 * shared
    ra, rb = intervals.r2(y, a), intervals.r2(y, b)
    assert ra.lo < rb.hi  # the single intervals overlap
    d = intervals.delta(y, a, b)
    assert d.verdict() == BETTER and d.hi - d.lo < (ra.hi - ra.lo) / 5


def test_scale_states_a_relative_criterion():
    y, p = predictions(1000, 0.5)
    d = intervals.delta(y, p, p, scale=0.9)
    assert d.value == pytest.approx(0.1 * intervals.r2(y, p).value)
    assert d.verdict() == BETTER


def iv(value, half=0.02):
    return Interval(value, value - half, value + half)


def test_stage_2_2_judges_on_lower_bounds_and_says_when_the_teacher_is_vacuous():
    s, raw = iv(0.50), iv(0.49)
    code, text = verdicts.student_vs_teacher(s, raw, iv(0.01), iv(0.52), iv(0.032))
    assert code == "undecided"  # a tie with raw flux (interval [-0.01, 0.03]) is not a pass
    assert verdicts.student_vs_teacher(s, raw, iv(0.05), iv(0.52), iv(0.032))[0] == "pass"
    assert verdicts.student_vs_teacher(s, raw, iv(-0.05), iv(0.52), iv(0.03))[0] == "below_raw"
    assert verdicts.student_vs_teacher(s, raw, iv(0.05), iv(0.70), iv(-0.13))[0] == "far_below_teacher"
    code, text = verdicts.student_vs_teacher(s, raw, iv(0.05), Interval(0.01, -0.03, 0.05), iv(0.49))
    assert code == "pass" and "vacuous" in text
    code, text = verdicts.student_vs_teacher(s, raw, iv(0.05), iv(0.30), iv(0.23), teacher_vs_raw=iv(-0.19))
    assert code == "pass" and "vacuous" in text  # a teacher below raw flux cannot set the bar


def test_stage_3_1_has_an_undecided_band_and_fails_only_surely():
    bins = pd.DataFrame({"features": ["student", "raw"], "bin_by": "log_g", "lo": 1.0, "hi": 1.5, "n": 50,
                         "mae": [0.3, 0.3]})
    overall = {"student": 0.5, "raw": 0.5}
    assert verdicts.end_to_end({"raw": iv(0.004)}, overall, bins)[0] == "acceptable"  # a tie: not above raw
    assert verdicts.end_to_end({"raw": iv(0.05)}, overall, bins)[1].startswith("The student beats every baseline")
    assert verdicts.end_to_end({"raw": iv(-0.04)}, overall, bins)[0] == "undecided"  # [-0.06, -0.02] spans -0.05
    assert verdicts.end_to_end({"raw": iv(-0.04, 0.005)}, overall, bins)[0] == "acceptable"
    assert verdicts.end_to_end({"raw": iv(-0.08)}, overall, bins)[0] == "fail"
    assert verdicts.end_to_end({"raw": Interval(-0.07, -0.10, -0.04)}, overall, bins)[0] == "undecided"


def test_the_report_pairs_runs_on_their_test_rows():
    y, a = predictions(800, 0.5, seed=3)
    b = y + 0.9 * np.random.default_rng(4).normal(size=800)
    frame = pd.DataFrame({"row": np.arange(800), "y_log_g": y})
    preds = {"student": frame.assign(student_log_g=a), "supervised_baseline": frame.assign(student_log_g=b)}
    deltas = report.cross_run_deltas(preds)
    assert set(deltas) == {"student_vs_supervised"} and deltas["student_vs_supervised"].verdict() == BETTER
    preds["supervised_baseline"]["y_log_g"] = y.astype(np.float32)  # labels stored with the latents are float32
    assert report.cross_run_deltas(preds)["student_vs_supervised"].value == deltas["student_vs_supervised"].value
    preds["supervised_baseline"] = frame.assign(y_log_g=y[::-1], student_log_g=b)
    with pytest.raises(DistillError, match="different test rows"):
        report.cross_run_deltas(preds)
