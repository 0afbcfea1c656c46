"""The seeded answer: each question of the pre-registration judged on seed means with two-level intervals.

``Readings`` holds every arm's test predictions, one array per training seed, and the test labels of each
dataset. Each comparison is the seed mean of a paired R^2 difference with a two-level bootstrap interval (seeds,
then test spectra; ``intervals.over_seeds``), the seed-to-seed standard deviation beside it, judged by a
``criteria.Criterion``. Arms with fewer seeds than the other side cycle theirs (student seed k against teacher
seed k mod T); an arm with one reading (raw flux) is paired with every seed.
"""
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import intervals
from . import thresholds as th
from .criteria import CRITERIA, FAIL, PASS, Criterion

LEAK, LEAK_FREE = "leak", "leak_free"  # the two datasets: sigma from the clean flux, or from a flat spectrum
EDGE = Criterion("edge", "latent R^2 - raw flux R^2", 0.0, True, ("latent", "raw"))
TRAINED = Criterion("trained", "trained R^2 - untrained R^2", 0.0, True, ("latent", "untrained"))
DISTIL = Criterion("distil", "distilled R^2 - supervised R^2 (same network)", 0.0, True, ("distilled", "supervised"))
LABEL_FREE = Criterion("label_free", "label-free R^2 - supervised R^2 (all labels)", 0.0, True,
                       ("label_free", "supervised"))
WORDS = {PASS: "better", FAIL: "worse"}  # a difference's outcome in words; otherwise a tie


@dataclass
class Readings:
    """``y``: {dataset: test labels}; ``runs``: {arm: (dataset, [test predictions per seed])}; ``val``: {arm: [val
    R^2 per seed]} for the choices made on validation."""

    y: dict
    runs: dict = field(default_factory=dict)
    val: dict = field(default_factory=dict)

    def add(self, arm: str, dataset: str, predictions, val_r2: float | None = None):
        self.runs.setdefault(arm, (dataset, []))[1].append(np.asarray(predictions, float))
        if val_r2 is not None:
            self.val.setdefault(arm, []).append(float(val_r2))

    def has(self, *arms) -> bool:
        return all(a in self.runs for a in arms)


def _cycled(runs: list, n: int) -> list:
    return [runs[i % len(runs)] for i in range(n)]


def compare(r: Readings, a: str, b: str, criterion: Criterion, scale: float = 1.0, question: str = "") -> dict:
    """One row: seed mean of R^2(a) - scale x R^2(b), its two-level interval, sd over seeds and the verdict."""
    (set_a, runs_a), (set_b, runs_b) = r.runs[a], r.runs[b]
    if set_a != set_b:
        raise ValueError(f"{a} and {b} were scored on different datasets ({set_a}, {set_b})")
    n = max(len(runs_a), len(runs_b))
    ci, sd = intervals.over_seeds(r.y[set_a], _cycled(runs_a, n), _cycled(runs_b, n), scale=scale)
    verdict = criterion.judge(ci)
    return dict(question=question or criterion.quantity, a=a, b=b, scale=scale, value=ci.value, lo=ci.lo, hi=ci.hi,
                seed_sd=sd, seeds=n, claim=criterion.claim, verdict=verdict,
                text=f"{a} - {'' if scale == 1 else f'{scale:g} x '}{b}: {ci.text()} (seed sd {sd:.3f}, {n} seeds): "
                     f"{verdict}")


def headline(r: Readings, arm: str) -> dict:
    """An arm's seed-mean test R^2 with its two-level interval and seed sd."""
    dataset, runs = r.runs[arm]
    ci, sd = intervals.over_seeds(r.y[dataset], runs)
    return dict(arm=arm, dataset=dataset, seeds=len(runs), r2=ci.value, lo=ci.lo, hi=ci.hi, seed_sd=sd)


def strongest(r: Readings, architectures) -> str:
    """The architecture whose supervised network reads most on validation (seed mean): the field's best flux-only
    reader, chosen without test."""
    return max(architectures, key=lambda arch: np.mean(r.val.get(f"{arch}_supervised", [-np.inf])))


def questions(r: Readings, architectures) -> pd.DataFrame:
    """Every pre-registered comparison the readings allow, as rows (question, interval, seed sd, claim, verdict)."""
    rows = []

    def add(a, b, criterion, question, scale=1.0):
        if r.has(a, b):
            rows.append(compare(r, a, b, criterion, scale, question))

    add("teacher", "raw", EDGE, "edge: the teacher latent over raw flux")
    add("teacher", "teacher_untrained", TRAINED, "training: the teacher over its untrained network")
    add("teacher_untrained", "raw", EDGE, "control: the untrained teacher network over raw flux")
    add("teacher", "no_error_teacher", CRITERIA["4.1"], "4.1: R^2 lost without sigma (each at its own cell)")
    add("teacher", "no_error_at_teacher_cell", CRITERIA["4.1"], "4.1 at the teacher's cell")
    add("no_error_teacher", "raw", EDGE, "the no-error teacher over raw flux")
    add("no_error_teacher_untrained", "raw", EDGE, "control: the untrained no-error network over raw flux")
    add("leak_free_teacher", "leak_free_raw", EDGE, "leak or weight: the latent's edge when sigma carries no flux")
    add("leak_free_teacher_untrained", "leak_free_raw", EDGE, "control: the untrained leak-free network over raw flux")
    order = [strongest(r, architectures)] + [a for a in architectures if a != strongest(r, architectures)]
    for arch in order:
        add(f"{arch}_distilled", f"{arch}_supervised", DISTIL, f"distillation on {arch}")
        add(f"{arch}_distilled", "raw", CRITERIA["2.2_raw"], f"2.2: the distilled {arch} over raw flux")
        add(f"{arch}_distilled", "teacher", CRITERIA["2.2_teacher"], f"2.2: the distilled {arch} over 0.9 x teacher",
            scale=th.TEACHER_FRACTION)
    add("label_free", "mlp_supervised", LABEL_FREE, "label-free distillation against plain supervision")
    return pd.DataFrame(rows)


def _row(table: pd.DataFrame, question: str) -> dict | None:
    hit = table[table["question"] == question]
    return None if hit.empty else hit.iloc[0].to_dict()


def _said(row: dict | None) -> str:
    return "not run" if row is None else f"{row['value']:+.3f} [{row['lo']:+.3f}, {row['hi']:+.3f}]"


def answer(table: pd.DataFrame, architectures, best: str) -> str:
    """The seeded answer in a few sentences, from the table's verdicts; leads with the strongest architecture."""
    out = []
    distil = _row(table, f"distillation on {best}")
    if distil is not None:
        how = {PASS: "makes it better", FAIL: "makes it worse"}.get(distil["verdict"], "ties with plain supervision")
        out.append(f"On the strongest flux-only reader ({best}, chosen on validation), distillation {how}: "
                   f"{_said(distil)} R^2 over {distil['seeds']} seeds.")
    for arch in (a for a in architectures if a != best):
        if (row := _row(table, f"distillation on {arch}")) is not None:
            out.append(f"On {arch}: {_said(row)}, {WORDS.get(row['verdict'], 'tie')}.")
    edge, free = _row(table, "edge: the teacher latent over raw flux"), _row(
        table, "leak or weight: the latent's edge when sigma carries no flux")
    if edge is not None:
        out.append(f"The teacher latent over raw flux: {_said(edge)}, {WORDS.get(edge['verdict'], 'tie')}.")
    if edge is not None and free is not None:
        if free["verdict"] == PASS:
            why = "the edge survives without the leak: sigma helps as a noise weight"
        elif edge["verdict"] == PASS:
            why = "the edge vanishes without the leak: it comes from the clean flux that sigma leaks"
        else:
            why = "neither dataset shows an edge, so leak and weight cannot be told apart here"
        out.append(f"With sigma carrying no clean-flux information the edge is {_said(free)}: {why}.")
    if (own := _row(table, "4.1: R^2 lost without sigma (each at its own cell)")) is not None:
        at = _row(table, "4.1 at the teacher's cell")
        out.append(f"4.1, R^2 lost without sigma: {_said(own)} at each teacher's own cell"
                   + (f", {_said(at)} at the teacher's" if at is not None else "")
                   + f" (claim < {th.ERROR_DOMINATES:g}: {own['verdict']}).")
    return " ".join(out)
