"""What a library step measured, handed to its entry point to log: the library itself never talks to MLflow."""
from dataclasses import dataclass, field


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

    def verdict(self, stage: str, code: str, text: str):
        """Record a stage's verdict as the tags ``verdict_{stage}`` and ``verdict_{stage}_text`` and a printed line."""
        self.tags |= {f"verdict_{stage}": code, f"verdict_{stage}_text": text}
        self.lines.append(f"{stage.replace('_', '.')} {code}: {text}")
