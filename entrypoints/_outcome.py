"""Logging what a library step measured (``distill.outcome.Outcome``) on the active MLflow run."""
import click
import mlflow

from distill import tracking
from distill.outcome import Outcome


def log_outcome(outcome: Outcome):
    """Log the outcome's metrics, tags, tables, Parquet artifacts and figures; print its notes and lines."""
    if outcome.metrics:
        tracking.log_metrics(outcome.metrics)
    if outcome.tags:
        mlflow.set_tags(outcome.tags)
    for path, frame in outcome.tables.items():
        tracking.log_table(frame, path)
    for path, frame in outcome.parquets.items():
        tracking.log_parquet(frame, path)
    for path, fig in outcome.figures.items():
        tracking.log_figure(fig, path)
    for line in outcome.notes:
        click.echo(line, err=True)
    for line in outcome.lines:
        click.echo(line)
