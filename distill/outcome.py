"""What a library step measured, handed to its entry point to log: the library itself never talks to MLflow."""
from dataclasses import dataclass, field

from .criteria import Verdict


@dataclass
class Outcome:
    """Metrics and tags of the active run, MLflow tables and Parquet artifacts (artifact path -> DataFrame), figures
    (artifact path -> matplotlib figure), and lines to print (``lines`` on stdout, ``notes`` on stderr)."""

    metrics: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    parquets: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    lines: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def verdict(self, v: Verdict | None):
        """Record a decided criterion as its tags (``distill.criteria``) and a printed line; None decides nothing."""
        if v is not None:
            self.tags |= v.tags()
            self.lines.append(f"{v.stage} {v.status}{f' ({v.outcome})' if v.outcome else ''}: {v.text}")
