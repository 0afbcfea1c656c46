"""Stage 4 and robustness, run: each ablation reads the shared ``AblationInputs`` and returns a ``Finding`` (its
verdict and what it logs); ``summary`` tables them. The numbers and verdicts behind them are in
``distill.ablations``."""
import pandas as pd

from ..criteria import PASS
from ..outcome import Outcome
from .curves import run_noise_sweep, run_sample_efficiency
from .finding import AblationSettings, Finding
from .inputs import AblationInputs, LoadedStudent
from .paired import run_no_error_teacher, run_shuffle_error, run_shuffle_labels

RUNNERS = {"no_error_teacher": run_no_error_teacher, "shuffle_error": run_shuffle_error,
           "shuffle_labels": run_shuffle_labels, "noise_sweep": run_noise_sweep,
           "sample_efficiency": run_sample_efficiency}
KINDS = tuple(RUNNERS)
MVP = {"no_error_teacher": "4.1", "shuffle_error": "4.2", "shuffle_labels": "4.3", "noise_sweep": "1.2,3.2",
       "sample_efficiency": "3.3"}  # the research plan's items each ablation answers

__all__ = ["KINDS", "MVP", "AblationInputs", "AblationSettings", "Finding", "LoadedStudent", "run", "summary"]


def leaks(kind: str, found: Finding) -> bool:
    """Whether the label-shuffle guard raised its alarm."""
    return kind == "shuffle_labels" and found.tags.get("verdict_4.3") != PASS


def run(kind: str, inputs: AblationInputs, settings: AblationSettings) -> Finding:
    """One ablation, with the verdict tags of the criteria it decides (``distill.criteria``); beside them ``verdict``
    and ``verdict_text``, its first stage's status and sentence (``not_measured`` and why when it decided none) for
    the MLflow compare view, what it ``compared``, and ``leakage_alarm`` when the label-shuffle guard rises."""
    found = RUNNERS[kind](inputs, settings)
    first = MVP[kind].split(",")[0]
    found.tags |= {"verdict": found.tags.get(f"verdict_{first}", "not_measured"),
                   "verdict_text": found.tags.get(f"verdict_text_{first}", found.undecided_why),
                   "compared": found.compared}
    if leaks(kind, found):
        found.tags["leakage_alarm"] = "true"
    if f"verdict_{first}" not in found.tags:
        found.lines.append(f"{kind} ({MVP[kind]}) not measured: {found.undecided_why}")
    return found


def summary(findings: list) -> Outcome:
    """The parent's summary of [(kind, Finding, child run id)]: ``tables/summary.json``, every child's verdict tags
    (and ``leakage_alarm``), and the table to print."""
    table = pd.DataFrame([{"kind": kind, "mvp": MVP[kind], "verdict": found.tags["verdict"], "value": found.value,
                           "head": found.head, "compared": found.compared, "text": found.tags["verdict_text"],
                           "run_id": run_id} for kind, found, run_id in findings])
    tags = {k: v for _, found, _ in findings for k, v in found.tags.items() if k.startswith(("verdict_", "outcome_"))}
    if any(leaks(kind, found) for kind, found, _ in findings):
        tags["leakage_alarm"] = "true"
    return Outcome(tags=tags, tables={"tables/summary.json": table},
                   lines=[table[["kind", "mvp", "verdict", "value"]].to_string(index=False)])
