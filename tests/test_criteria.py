"""One rule for every criterion: planted intervals above, across and below the margin give pass, undecided and
fail (mirrored for "less than" claims), and the composite stages read the right bound."""
import pytest

from distill import criteria
from distill.criteria import CRITERIA, FAIL, PASS, UNDECIDED
from distill.intervals import Interval


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
