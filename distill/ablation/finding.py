"""What every ablation is asked (``AblationSettings``) and what it answers (``Finding``)."""
from dataclasses import dataclass, field

import pandas as pd

from ..ablations import NOISE_LEVELS, SHUFFLES, TRAIN_SIZES
from ..outcome import Outcome
from ..thresholds import FALSE_ALARM


@dataclass(frozen=True)
class AblationSettings:
    """The label read, the heads (the sweep and curves use the first) and their settings, the noise levels of the
    sweep, the training-set sizes of the label curve (0: all), the label-shuffle guard's false-alarm rate and
    permutations, and the seed."""

    label: str = "log_g"
    heads: tuple = ("ridge",)
    head_params: dict = field(default_factory=dict)
    noise_levels: tuple = NOISE_LEVELS
    sizes: tuple = TRAIN_SIZES
    false_alarm: float = FALSE_ALARM
    shuffles: int = SHUFFLES
    seed: int = 42


@dataclass
class Finding(Outcome):
    """One ablation's verdicts (``Outcome.verdict``: tags and printed lines), why it decided nothing when it did not
    (``undecided_why``), the head and what it compared, its headline value and its curve table, beside the metrics,
    tags, tables and figures it logs."""

    undecided_why: str = ""
    head: str = ""
    compared: str = ""
    value: float = float("nan")
    table: pd.DataFrame | None = None
