"""Every acceptance criterion of the research plan, declared once, and the one shape of a verdict.

A criterion states a claim about one quantity, "X >= m" or "X < m", where X is a test R^2 or a paired difference
of R^2 with its 95 % interval (``CRITERIA``). The rule for "X >= m": pass iff the interval's lower bound is above m,
fail iff its upper bound is below m, else undecided; "X < m" is the mirror. A tie is never a pass of an "at least"
claim.

Stages whose plan names more outcomes than these three (2.1, 2.2, 3.1, 3.3) or that are a test rather than an interval
(4.3) have their vocabulary mapped to pass / fail / undecided here, in ``OUTCOMES``, and nowhere else.

Tags (one convention for every entry point; ``Verdict.tags`` builds them, ``read`` reads them back):

- ``verdict_{stage}``: pass, fail or undecided; ``{stage}`` is the key in ``CRITERIA`` or ``OUTCOMES`` as written
  there (``verdict_1b``, ``verdict_2.2``, ``verdict_2.2_raw``, ``verdict_latent_beats_raw``, ``verdict_B``);
- ``verdict_text_{stage}``: one line, the criterion, its interval(s), the claim and the outcome;
- ``outcome_{stage}``: the plan's own word where ``OUTCOMES`` has one (``underfit``, ``below_raw``, ``acceptable``,
  ``pays_off``, ``leakage_alarm``...); Stage A, a reading that decides no criterion, logs only ``outcome_A`` and
  ``outcome_text_A``.

A run carries the tags of the criteria its entry point decides (probe: 1, 1b; distill_student: 2.1, 2.2, 2.2_raw,
2.2_teacher, 3.1, and B for ``target=residual``; each ablate child its own: 1.2, 3.2, latent_beats_raw / 3.3 / 4.1 /
4.2 / 4.3, the ablate parent all of them) and no others. Older tag names still written beside them, never read by the
report: ``verdict_2_1`` / ``verdict_2_2`` / ``verdict_3_1`` (the outcome word) on a distill_student run, and an ablate
child's ``verdict`` / ``verdict_text`` (its first stage's status and sentence, for the MLflow compare view). The report
renders the tags and judges nothing; a run without them shows "not decided by this run".
"""
from dataclasses import dataclass

from . import thresholds as th
from .intervals import Interval

PASS, FAIL, UNDECIDED = "pass", "fail", "undecided"


@dataclass(frozen=True)
class Criterion:
    stage: str  # the plan's stage id, e.g. "2.2"
    quantity: str  # what the interval measures
    margin: float
    at_least: bool  # the claim is "quantity >= margin" (else "quantity < margin")
    readers: tuple  # the readers it compares

    @property
    def claim(self) -> str:
        return f"{self.quantity} {'>=' if self.at_least else '<'} {self.margin:g}"

    def judge(self, x: Interval) -> str:
        """pass / fail / undecided of the claim from the interval ``x`` of its quantity."""
        above, below = x.lo > self.margin, x.hi < self.margin
        if self.at_least:
            return PASS if above else FAIL if below else UNDECIDED
        return PASS if below else FAIL if above else UNDECIDED

    def text(self, x: Interval) -> str:
        return f"{self.stage}: {self.quantity} {x.text()} against {self.claim}: {self.judge(x)}"


CRITERIA = {c.stage: c for c in (
    Criterion("1", "latent Ridge R^2", th.STAGE_1_RIDGE, True, ("latent",)),
    Criterion("1b", "latent LightGBM R^2", th.STAGE_1B_LIGHTGBM, True, ("latent",)),
    Criterion("1.2", "raw flux's R^2 drop - the latent's", th.SLOWER, True, ("latent", "raw")),
    Criterion("latent_beats_raw", "latent R^2 - raw flux R^2 at the highest noise", 0.0, True, ("latent", "raw")),
    Criterion("2.2_teacher", f"student R^2 - {th.TEACHER_FRACTION} x teacher R^2", 0.0, True, ("student", "teacher")),
    Criterion("2.2_raw", "student R^2 - raw flux R^2", 0.0, True, ("student", "raw")),
    Criterion("3.1", "student R^2 - baseline R^2", -th.FAIL_DELTA, True, ("student", "baseline")),
    Criterion("3.2", "raw flux's R^2 drop - the student's", th.SLOWER, True, ("student", "raw")),
    Criterion("4.1", "R^2 lost without sigma", th.ERROR_DOMINATES, False, ("teacher", "no_error_teacher")),
    Criterion("4.2", "R^2 drop with sigma shuffled", th.SIGMA_USED, True, ("teacher",)),
    Criterion("B", "student -> r R^2 (r: the log g that sigma alone does not explain)", 0.0, True, ("student",)),
)}

# Stage 1 / 1b read the latent's best cell of one head each, chosen on validation (``probe`` with input=latent)
PROBE_HEADS = {"1": "ridge", "1b": "lightgbm"}

# the plan's words for the stages whose outcomes are more than pass / fail / undecided, each mapped to its status
OUTCOMES = {
    "2.1": {"pass": PASS, "underfit": FAIL, "overfit": FAIL, "partial": FAIL},  # test cosine >= 0.9, on the point
    "2.2": {"pass": PASS, "above_raw": PASS, "undecided": UNDECIDED, "ties_raw": UNDECIDED, "below_raw": FAIL,
            "below_teacher": FAIL, "far_below_teacher": FAIL},  # stage_2_2
    "3.1": {"pass": PASS, "acceptable": PASS, "undecided": UNDECIDED, "fail": FAIL},  # stage_3_1: acceptable passes
    # the claim "student - baseline >= -0.05" without beating every baseline
    "3.3": {"pays_off": PASS, "does_not_pay_off": FAIL, "tie": UNDECIDED},  # distill.label_efficiency
    "4.3": {"no_leakage": PASS, "leakage_alarm": FAIL},  # the label-shuffle guard's test (distill.ablations)
}


@dataclass(frozen=True)
class Verdict:
    """A decided criterion: its stage, pass / fail / undecided, one line of text and the plan's word (``OUTCOMES``)."""

    stage: str
    status: str
    text: str
    outcome: str = ""

    def tags(self) -> dict:
        """The tags of the convention above."""
        return ({f"verdict_{self.stage}": self.status, f"verdict_text_{self.stage}": self.text}
                | ({f"outcome_{self.stage}": self.outcome} if self.outcome else {}))


def judge(stage: str, x: Interval) -> str:
    return CRITERIA[stage].judge(x)


def verdict(stage: str, x: Interval, text: str = "") -> Verdict:
    """The verdict of an interval criterion; ``text``, when given, follows the criterion's own sentence."""
    c = CRITERIA[stage]
    return Verdict(stage, c.judge(x), c.text(x) + (f". {text}" if text else ""))


def outcome(stage: str, word: str, text: str) -> Verdict | None:
    """The verdict of a stage that names its outcome in words (``OUTCOMES``); None for a word outside its vocabulary
    (e.g. 3.3's ``not_measured``): nothing was decided."""
    status = OUTCOMES[stage].get(word)
    return None if status is None else Verdict(stage, status, text, word)


def read(tags: dict, stage: str) -> Verdict | None:
    """The verdict a run logged for ``stage``, or None when it logged none (it did not decide it, or is older)."""
    status = tags.get(f"verdict_{stage}")
    return None if status is None else Verdict(stage, status, tags.get(f"verdict_text_{stage}", ""),
                                                tags.get(f"outcome_{stage}", ""))


def stage_2_2(vs_teacher: Interval | None, vs_raw: Interval, teacher: Interval | None,
              teacher_vs_raw: Interval | None) -> tuple:
    """(status, text) of 2.2, "student >= 0.9 x teacher and >= raw flux", both on lower bounds. A teacher that does
    not read more than raw flux (or nothing at all) makes the first half vacuous: then only the second decides, and
    the text says so."""
    raw = CRITERIA["2.2_raw"].judge(vs_raw)
    parts = [CRITERIA["2.2_raw"].text(vs_raw)]
    if teacher is None or vs_teacher is None:
        return raw, "; ".join(parts) + " (no teacher latent to compare with)"
    parts.insert(0, CRITERIA["2.2_teacher"].text(vs_teacher))
    if teacher.lo <= 0 or (teacher_vs_raw is not None and teacher_vs_raw.lo <= 0):
        how = f"teacher - raw {teacher_vs_raw.text()}" if teacher_vs_raw is not None else f"teacher {teacher.text()}"
        return raw, "; ".join(parts) + (f"; the teacher latent does not read more than raw flux ({how}), so "
                                         f"'>= {th.TEACHER_FRACTION} x teacher' is vacuous and raw flux decides")
    both = (CRITERIA["2.2_teacher"].judge(vs_teacher), raw)
    status = PASS if both == (PASS, PASS) else FAIL if FAIL in both else UNDECIDED
    return status, "; ".join(parts)


def stage_3_1(vs: dict) -> tuple:
    """(status, text) of 3.1 over every baseline: pass when the student beats each (lower bound above 0), fail when
    it is surely more than 0.05 below one (upper bound below -0.05), acceptable when it is surely not 0.05 below any,
    else undecided."""
    c = CRITERIA["3.1"]
    text = "; ".join(f"student - {name} {d.text()}" for name, d in vs.items())
    if any(c.judge(d) == FAIL for d in vs.values()):
        return FAIL, f"{text}: more than {th.FAIL_DELTA} below a baseline"
    if all(d.lo > 0 for d in vs.values()):
        return PASS, f"{text}: above every baseline"
    if all(c.judge(d) == PASS for d in vs.values()):
        return "acceptable", f"{text}: not above every baseline, surely not {th.FAIL_DELTA} below any"
    return UNDECIDED, f"{text}: an interval spans -{th.FAIL_DELTA}"
