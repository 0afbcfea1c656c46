"""Running or reusing entry points as steps of a parent run (``main``, ``teacher_study``), and launching one.

A step is reused when a FINISHED run of the same entry point exists with the same parameters (compared as strings;
upstream run ids are parameters), the same code (``source_digest``: any edit of the source, committed or not, is a
miss) and the same data digests.

``launch`` is the one way an entry point runs another: the run is made here as ``mlflow run`` makes it (the
MLproject parameters, the entry point and source tags, a child of the active run), then its MLproject command runs
in a child process attached to it. A stop (SIGINT, SIGTERM, SIGHUP) stops the child, which ends its run KILLED;
``mlflow run`` itself is not used: it marks a run FAILED over the KILLED its entry point set.

``Steps.concurrently`` runs independent chains of steps at once when steps are Slurm jobs (one thread per chain,
each waiting for its jobs); here, where steps share this machine's cores, it runs them one after another.
"""
import contextlib
import os
import shlex
import subprocess
import sys
import threading
import time

import click
import mlflow
import yaml
from mlflow.entities import Param
from mlflow.tracking import MlflowClient
from mlflow.utils.git_utils import get_git_commit

from distill import stopping, tracking
from distill.errors import DistillError
from entrypoints._cli import REPO

SOURCE_TAGS = ("mlflow.user", "mlflow.source.name", "mlflow.source.git.repoURL")
STOP_SECONDS = 120  # a stopped child that has not ended its run by then is killed


def entry_spec(entry: str) -> dict:
    spec = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]
    if entry not in spec:
        raise DistillError(f"no entry point {entry!r} in MLproject")
    return spec[entry]


def full_params(entry: str, params: dict) -> dict:
    """Every parameter of an entry point as ``mlflow run`` logs it: MLproject defaults overlaid with ``params``
    (so a run made with another value of a parameter left at its default is never taken for this one)."""
    declared = entry_spec(entry).get("parameters", {})
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise DistillError(f"entry point {entry} has no parameter {unknown[0]!r}")
    return {k: str(v["default"]) for k, v in declared.items()} | {k: str(v) for k, v in params.items()}


def new_run(entry: str, params: dict, name: str, child: bool = True, parent: str | None = None,
            tags: dict | None = None) -> str:
    """A RUNNING run for ``entry`` with its MLproject parameters logged, tagged as ``mlflow run`` tags one (the git
    commit, if any; the other source tags copied from the parent) and ``tags``; a child of ``parent`` (a run id;
    default: the active run, if ``child``); returns its id."""
    client = MlflowClient()
    parent = parent or (mlflow.active_run().info.run_id if child and mlflow.active_run() else None)
    above = client.get_run(parent) if parent else None
    inherited = above.data.tags if above else {}
    tags = {**(tags or {}), tracking.ENTRY_POINT_TAG: entry, "mlflow.source.type": "PROJECT",
            "mlflow.project.backend": "local", **{k: inherited[k] for k in SOURCE_TAGS if k in inherited}}
    if commit := get_git_commit(str(REPO)):
        tags["mlflow.source.git.commit"] = commit
    if parent:
        tags["mlflow.parentRunId"] = parent
    experiment = above.info.experiment_id if above else mlflow.tracking.fluent._get_experiment_id()
    run = client.create_run(experiment, tags=tags, run_name=name)
    client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in full_params(entry, params).items()])
    return run.info.run_id


def command(entry: str, params: dict) -> list:
    """The MLproject command of ``entry`` with these parameters (quoted as ``mlflow run`` quotes them), run by this
    interpreter."""
    quoted = {k: shlex.quote(v) for k, v in full_params(entry, params).items()}
    argv = shlex.split(entry_spec(entry)["command"].format(**quoted))
    return [sys.executable] + argv[1:] if argv[0] == "python" else argv


def child_env(run_id: str) -> dict:
    """This process's environment with the variables that attach an entry point to ``run_id``."""
    return dict(os.environ, MLFLOW_RUN_ID=run_id, MLFLOW_TRACKING_URI=mlflow.get_tracking_uri(),
                MLFLOW_EXPERIMENT_ID=tracking.get_run(run_id).info.experiment_id)


def execute(entry: str, params: dict, run_id: str):
    """Run the entry point's command attached to ``run_id``; its stderr passes through. A failure raises its last
    line; a stop stops it first (its run ends KILLED)."""
    with subprocess.Popen(command(entry, params), cwd=REPO, env=child_env(run_id), stderr=subprocess.PIPE) as process:
        try:
            tail = relay(process.stderr)
        except BaseException:
            stop(process, run_id)
            raise
    if process.returncode:
        lines = [line for line in tail.decode(errors="replace").splitlines() if line.strip()] or ["(no output)"]
        raise DistillError(f"{entry} failed: {lines[-1].strip()}")


def relay(stream) -> bytes:
    """Copy a child's stderr to ours until it closes; return its last 64 KiB."""
    tail = b""
    for chunk in iter(lambda: stream.read1(1 << 16), b""):
        sys.stderr.buffer.write(chunk)
        sys.stderr.flush()
        tail = (tail + chunk)[-(1 << 16):]
    return tail


def stop(process: subprocess.Popen, run_id: str):
    """Stop a child (SIGTERM: it ends its run KILLED) and wait for it, holding further stops; kill it after
    ``STOP_SECONDS``; a run it left RUNNING ends KILLED. The stop under way is the one that goes on."""
    with contextlib.suppress(stopping.Stopped), stopping.held():
        process.terminate()
        timer = threading.Timer(STOP_SECONDS, process.kill)
        timer.start()
        try:
            relay(process.stderr)
            process.wait()
        finally:
            timer.cancel()
        end_if_running(run_id, "KILLED")


def end_if_running(run_id: str, status: str):
    """End a run its process left RUNNING (killed before it could, or failed before it started it)."""
    if tracking.get_run(run_id).info.status == "RUNNING":
        MlflowClient().set_terminated(run_id, status)


def launch(entry: str, params: dict, name: str | None = None, child: bool = True, executor: str = "local",
           parent: str | None = None, tags: dict | None = None) -> str:
    """Run an entry point of this project in a new run (``new_run``) here or, with ``executor="slurm"``, as a Slurm
    job (entrypoints/_slurm.py); returns its id."""
    run_id = new_run(entry, params, name or entry, child, parent, tags)
    try:
        (slurm().execute if executor == "slurm" else execute)(entry, params, run_id)
    except BaseException as e:
        end_if_running(run_id, "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        raise
    return run_id


class Steps:
    """Run or reuse entry points as children of the active run (at construction); tag each step's run id on it.
    Reuse needs the same ``source_digest`` as this process, added to ``tags``. ``executor``: where a step that runs
    runs (``launch``). Safe to call from several threads (``concurrently``)."""

    def __init__(self, force: bool, tags: dict, executor: str = "local"):
        self.force, self.ids, self.how, self.t0, self.executor = force, {}, {}, time.time(), executor
        self.tags = dict(tags) | {"source_digest": tracking.source_digest()}
        self.parent = mlflow.active_run().info.run_id if mlflow.active_run() else None

    def __call__(self, name: str, entry: str, reuse=True, tags: dict | None = None, **params) -> str:
        """Run or reuse one step; ``tags`` overrides the reuse tags (a step on another dataset: its digests). With
        Slurm, an identical step whose job is queued or running (another ``main``) is waited for, not submitted
        again."""
        params, tags = {k: str(v) for k, v in params.items()}, self.tags | (tags or {})
        t, full, run = time.time(), full_params(entry, params), None
        if reuse and not self.force:
            run, how = tracking.find_run(entry, params=full, tags=tags), "reused"
            if run is None and self.executor == "slurm":
                run, how = slurm().await_elsewhere(entry, full, tags), "waited"
        if run is not None:
            run_id = run.info.run_id
        else:
            try:
                run_id, how = launch(entry, params, name, executor=self.executor, parent=self.parent, tags=tags), "ran"
            except DistillError as e:
                raise DistillError(f"step {name} ({entry}) failed: {str(e).split(' failed: ', 1)[-1]}") from None
        self.ids[name], self.how[name] = run_id, how
        if self.parent:
            MlflowClient().set_tag(self.parent, f"step_{name}", run_id)
        click.echo(f"[{time.time() - self.t0:6.0f} s] {name:<20} {how:<6} {run_id} ({time.time() - t:.0f} s)", err=True)
        return run_id

    def concurrently(self, *calls) -> list:
        """Each callable's result (a chain of steps), in order: at once with Slurm (``_slurm.at_once``), else one
        after another (locally they would share this machine's cores)."""
        return slurm().at_once(calls) if self.executor == "slurm" and len(calls) > 1 else [call() for call in calls]


def slurm():
    from entrypoints import _slurm  # imported when used: it builds on this module

    return _slurm
