"""Running or reusing entry points as steps of a parent run (``main``, ``teacher_study``).

A step is reused when a FINISHED run of the same entry point exists with the same parameters
(compared as strings; upstream run ids are parameters), the same code version (git commit)
and the same data digests.
"""
import time

import click
import mlflow
import yaml
from mlflow.exceptions import ExecutionException

from distill import tracking
from distill.errors import DistillError
from entrypoints._cli import REPO


def full_params(entry: str, params: dict) -> dict:
    """Every parameter of an entry point as ``mlflow run`` logs it: MLproject defaults overlaid with ``params``
    (so a run made with another value of a parameter left at its default is never taken for this one)."""
    spec = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"][entry].get("parameters", {})
    return {k: str(v["default"]) for k, v in spec.items()} | params


class Steps:
    """Run or reuse entry points as children of the active run; tag each step's run id on it."""

    def __init__(self, force: bool, tags: dict):
        self.force, self.tags, self.ids, self.how, self.t0 = force, dict(tags), {}, {}, time.time()

    def __call__(self, name: str, entry: str, reuse=True, **params) -> str:
        params = {k: str(v) for k, v in params.items()}
        t = time.time()
        run = None if self.force or not reuse else tracking.find_run(entry,
                                                                     params=full_params(entry, params), tags=self.tags)
        if run is not None:
            run_id, how = run.info.run_id, "reused"
        else:
            try:
                submitted = mlflow.projects.run(str(REPO), entry_point=entry, parameters=params, env_manager="local",
                                                synchronous=True)
            except ExecutionException as e:
                raise DistillError(f"step {name} ({entry}) failed: {str(e).splitlines()[0]}") from None
            run_id, how = submitted.run_id, "ran"
        self.ids[name], self.how[name] = run_id, how
        mlflow.set_tag(f"step_{name}", run_id)
        click.echo(f"[{time.time() - self.t0:6.0f} s] {name:<20} {how:<6} {run_id} ({time.time() - t:.0f} s)", err=True)
        return run_id
