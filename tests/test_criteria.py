"""One rule for every criterion: planted intervals above, across and below the margin give pass, undecided and
fail (mirrored for "less than" claims) under one tag name, the composite stages read the right bound, and the plan's
words map to those statuses in one place."""
import pandas as pd
import pytest

from distill import criteria
from distill.criteria import CRITERIA, FAIL, PASS, UNDECIDED
from distill.intervals import Interval
from distill.student import verdicts


def around(centre, half=0.01):
    return Interval(centre, centre - half, centre + half)


@pytest.mark.parametrize("stage", sorted(CRITERIA))
def test_every_criterion_follows_the_rule(stage):
    c = CRITERIA[stage]
    above, across, below = around(c.margin + 0.05), around(c.margin, 0.03), around(c.margin - 0.05)
    expected = (PASS, UNDECIDED, FAIL) if c.at_least else (FAIL, UNDECIDED, PASS)
    assert (c.judge(above), c.judge(across), c.judge(below)) == expected
    assert c.stage in c.text(above) and c.claim in c.text(above)


def test_a_tie_is_not_a_pass_of_an_at_least_claim():
    assert criteria.judge("2.2_raw", Interval(0.01, -0.01, 0.03)) == UNDECIDED


def test_4_1_reads_one_margin_in_status_and_claim():
    assert criteria.judge("4.1", Interval(0.037, 0.022, 0.053)) == PASS  # the whole interval below 0.1
    assert criteria.judge("4.1", Interval(0.09, 0.05, 0.13)) == UNDECIDED
    assert "0.1" in CRITERIA["4.1"].claim


def test_2_2_needs_both_lower_bounds_and_says_when_the_teacher_is_vacuous():
    good, tie = around(0.05), Interval(0.0, -0.02, 0.02)
    assert criteria.stage_2_2(good, good, around(0.6), around(0.1))[0] == PASS
    assert criteria.stage_2_2(good, tie, around(0.6), around(0.1))[0] == UNDECIDED  # a tie with raw: no pass
    assert criteria.stage_2_2(around(-0.1), good, around(0.6), around(0.1))[0] == FAIL
    status, text = criteria.stage_2_2(around(-0.2), good, around(0.3), around(-0.15))
    assert status == PASS and "vacuous" in text


def test_3_1_has_an_undecided_band():
    assert criteria.stage_3_1({"raw": around(0.05)})[0] == PASS
    assert criteria.stage_3_1({"raw": Interval(-0.07, -0.10, -0.04)})[0] == UNDECIDED  # was "acceptable"
    assert criteria.stage_3_1({"raw": around(-0.02)})[0] == "acceptable"
    assert criteria.stage_3_1({"raw": around(0.05), "cnn": around(-0.08)})[0] == FAIL


@pytest.mark.parametrize("stage", sorted(CRITERIA))
def test_every_criterion_logs_its_status_and_sentence_under_one_tag_name(stage):
    c = CRITERIA[stage]
    for shift, half in ((0.05, 0.01), (0.0, 0.03), (-0.05, 0.01)):
        x = around(c.margin + shift, half)
        v = criteria.verdict(stage, x, "More.")
        assert v.tags() == {f"verdict_{stage}": c.judge(x), f"verdict_text_{stage}": f"{c.text(x)}. More."}
        assert criteria.read(v.tags(), stage) == v and criteria.read({}, stage) is None


def test_the_plans_words_map_to_a_status_in_one_place():
    assert all(set(vocabulary.values()) <= {PASS, FAIL, UNDECIDED} for vocabulary in criteria.OUTCOMES.values())
    assert {w: criteria.outcome("3.3", w, "t").status for w in ("pays_off", "does_not_pay_off", "tie")} == {
        "pays_off": PASS, "does_not_pay_off": FAIL, "tie": UNDECIDED}
    assert criteria.outcome("3.3", "not_measured", "no size up to 5000") is None  # nothing decided: no tags
    v = criteria.outcome("2.1", "underfit", "go to 2.3")
    assert v.tags() == {"verdict_2.1": FAIL, "verdict_text_2.1": "go to 2.3", "outcome_2.1": "underfit"}


@pytest.mark.parametrize("vs_teacher, vs_raw, teacher, teacher_vs_raw", [
    (0.05, 0.05, 0.6, 0.1), (0.05, 0.0, 0.6, 0.1), (-0.1, 0.05, 0.6, 0.1), (-0.2, 0.05, 0.3, -0.15),
    (0.05, -0.05, 0.6, 0.1), (-0.05, 0.05, 0.7, 0.3), (0.0, 0.05, 0.6, 0.1)])
def test_2_2s_words_carry_the_status_the_rule_gives(vs_teacher, vs_raw, teacher, teacher_vs_raw):
    """The plan's word for 2.2 (distill.student.verdicts) maps back to the status criteria.stage_2_2 gives."""
    a, b, t, tr = around(vs_teacher, 0.02), around(vs_raw, 0.02), around(teacher, 0.02), around(teacher_vs_raw, 0.02)
    word, text = verdicts.student_vs_teacher(around(0.5), around(0.45), b, t, a, tr)
    assert criteria.outcome("2.2", word, text).status == criteria.stage_2_2(a, b, t, tr)[0]
    word, text = verdicts.student_vs_teacher(around(0.5), around(0.45), b)  # no teacher: raw flux decides
    assert criteria.outcome("2.2", word, text).status == criteria.stage_2_2(None, b, None, None)[0]


@pytest.mark.parametrize("gap", [0.05, 0.004, -0.02, -0.04, -0.08])
def test_3_1s_acceptable_passes_the_claim(gap):
    """3.1's claim is "student - baseline >= -0.05": acceptable (not above every baseline, surely not 0.05 below) is
    a pass of it; the sentence says which."""
    bins = pd.DataFrame({"features": ["student", "raw"], "bin_by": "log_g", "lo": 1.0, "hi": 1.5, "n": 50,
                         "mae": [0.3, 0.3]})
    word, text = verdicts.end_to_end({"raw": around(gap, 0.02)}, {"student": 0.5, "raw": 0.5}, bins)
    assert criteria.outcome("3.1", word, text).status == CRITERIA["3.1"].judge(around(gap, 0.02))
