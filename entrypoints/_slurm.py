"""Steps as Slurm jobs (``main -P executor=slurm``): the run is made here as for a local step (so reuse and tags are
the same), then the entry point's MLproject command is submitted with ``sbatch`` and waited for.

The job inherits this process's environment (``--export=ALL``) with MLFLOW_RUN_ID, MLFLOW_TRACKING_URI and
MLFLOW_EXPERIMENT_ID added: credentials (MLFLOW_TRACKING_USERNAME / PASSWORD, PGPASSFILE) reach it from there and are
never written into its script. The job's log (stdout and stderr, ``{log_dir}/{job id}.log``) is relayed to stderr
while it runs and attached to the run as ``slurm/{job id}.log``; the run is tagged ``slurm_job_id``. A job that does
not complete ends its run FAILED (KILLED if cancelled) unless the entry point already ended it, and raises the log's
last line; a stop cancels the job and ends its run KILLED. Several steps may wait at once, one thread each
(``Steps.concurrently``): ``stopping.EVERYWHERE`` set makes each cancel its job. A step whose identical twin (same
entry point, parameters and reuse tags) is a queued or running job of another process is waited for
(``await_elsewhere``), not submitted twice.

Resources come from configs/slurm.yaml (or the file DISTILL_SLURM_CONFIG names); see docs/cluster.md.
"""
import concurrent.futures
import contextlib
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import click
import yaml
from mlflow.tracking import MlflowClient

from distill import stopping, tracking
from distill.errors import DistillError
from entrypoints._cli import REPO
from entrypoints._steps import STOP_SECONDS, child_env, command, end_if_running

CONFIG = REPO / "configs" / "slurm.yaml"
OPTIONS = {"partition": "--partition", "time": "--time", "mem": "--mem", "cpus": "--cpus-per-task", "gpus": "--gpus"}
KEYS = {*OPTIONS, "log_dir", "sbatch"}
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL",
         "DEADLINE", "UNKNOWN"}
MAX_POLL = 5.0  # seconds between state queries: a tenth of the time waited so far, from 0.25 s up to this


def config(entry: str) -> dict:
    """The sbatch settings for ``entry``: the file's top level overlaid with its ``steps: {entry: {...}}``."""
    path = Path(os.environ.get("DISTILL_SLURM_CONFIG") or CONFIG)
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except OSError as e:
        raise DistillError(f"executor=slurm needs {path}: {e.strerror}") from None
    steps = cfg.pop("steps", None) or {}
    unknown = sorted((set(cfg) | {k for step in steps.values() for k in step or {}}) - KEYS)
    if unknown:
        raise DistillError(f"{path}: unknown key {unknown[0]!r} (known: steps, {', '.join(sorted(KEYS))})")
    return cfg | (steps.get(entry) or {})


def sbatch_command(entry: str, cfg: dict, log_dir: Path) -> list:
    """``sbatch --parsable ...`` for one step; the script comes on stdin."""
    args = ["sbatch", "--parsable", f"--job-name=distill-{entry}", f"--output={log_dir}/%j.log", f"--chdir={REPO}",
            "--export=ALL"]
    args += [f"{flag}={cfg[key]}" for key, flag in OPTIONS.items() if cfg.get(key) not in (None, "", 0, "0")]
    return args + [str(a) for a in cfg.get("sbatch") or []]


def job_state(job: str) -> str | None:
    """The job's state (``RUNNING``, ``COMPLETED``, ...); None when the controller did not answer this time."""
    shown = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True)
    if shown.returncode == 0 and (m := re.search(r"\bJobState=(\S+)", shown.stdout)):
        return m[1]
    if "Invalid job id" not in shown.stderr:
        return None
    acct = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "State", "-j", job], capture_output=True, text=True)
    return (acct.stdout.split() or ["UNKNOWN"])[0] if acct.returncode == 0 else "UNKNOWN"  # purged: ask accounting


class Log:
    """The job's log file, relayed to stderr as it grows; keeps its last 64 KiB."""

    def __init__(self, path: Path):
        self.path, self.offset, self.tail = path, 0, b""

    def relay(self):
        with contextlib.suppress(FileNotFoundError), self.path.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read()
            self.offset += len(chunk)
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
            self.tail = (self.tail + chunk)[-(1 << 16):]

    def last_line(self) -> str:
        lines = [line for line in self.tail.decode(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else "(no output)"


def wait(job: str, log: Log | None, seconds: float = float("inf")) -> str:
    """Relay the log (if any) until the job has ended (or ``seconds`` passed: ``UNKNOWN``); return its final state."""
    start = time.time()
    while (state := job_state(job)) not in ENDED:
        if log:
            log.relay()
        if stopping.EVERYWHERE.is_set() and seconds == float("inf"):
            raise stopping.Stopped("stop")
        if time.time() > start + seconds:
            return "UNKNOWN"
        time.sleep(min(MAX_POLL, max(0.25, (time.time() - start) / 10)))
    if log:
        log.relay()
    return state


def cancel(job: str, log: Log):
    """Cancel the job (Slurm sends SIGTERM: the entry point ends its run KILLED; SIGKILL after the cluster's
    KillWait) and wait for it, holding further stops."""
    with contextlib.suppress(stopping.Stopped), stopping.held():
        subprocess.run(["scancel", job], capture_output=True)
        wait(job, log, STOP_SECONDS)


def execute(entry: str, params: dict, run_id: str):
    """Run the entry point's command as a Slurm job attached to ``run_id`` and wait for it."""
    cfg = config(entry)
    log_dir = (REPO / str(cfg.get("log_dir") or "mlruns/slurm")).resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in child_env(run_id).items() if not k.startswith("SLURM_") or k == "SLURM_CONF"}
    if cfg.get("cpus") and "OMP_NUM_THREADS" not in env:  # torch and BLAS use the job's cores, not the node's
        env["OMP_NUM_THREADS"] = str(cfg["cpus"])
    script = f"#!/bin/bash\nexec {shlex.join(command(entry, params))}\n"  # the command only: no environment
    try:
        submitted = subprocess.run(sbatch_command(entry, cfg, log_dir), input=script, text=True, capture_output=True,
                                   env=env)
    except FileNotFoundError:
        raise DistillError(f"{entry}: executor=slurm needs sbatch on PATH (a Slurm client)") from None
    if submitted.returncode:
        raise DistillError(f"{entry} failed: sbatch: {(submitted.stderr.strip().splitlines() or ['?'])[-1]}")
    job = submitted.stdout.strip().split(";")[0]
    client, log = MlflowClient(), Log(log_dir / f"{job}.log")
    client.set_tag(run_id, "slurm_job_id", job)
    try:
        state = wait(job, log)
    except BaseException:
        cancel(job, log)
        end_if_running(run_id, "KILLED")
        raise
    finally:
        if log.path.exists():
            client.log_artifact(run_id, str(log.path), "slurm")
    if state != "COMPLETED":
        end_if_running(run_id, "KILLED" if state == "CANCELLED" else "FAILED")
        why = log.last_line() if state == "FAILED" else f"slurm job {job} ended {state}: {log.last_line()}"
        raise DistillError(f"{entry} failed: {why}")


def await_elsewhere(entry: str, params: dict, tags: dict):
    """Wait for an identical step that another process sent to Slurm (a RUNNING run of ``entry`` with these params
    and tags whose ``slurm_job_id`` is queued or running), then return it if it FINISHED; None when there is none
    (a RUNNING run whose job has ended was left behind by a stopped process: it is not waited for)."""
    def live(run) -> bool:
        return "slurm_job_id" in run.data.tags and job_state(run.data.tags["slurm_job_id"]) not in ENDED

    twin = tracking.find_run(entry, params=params, tags=tags, status="RUNNING", accept=live)
    if twin is None:
        return None
    job = twin.data.tags["slurm_job_id"]
    click.echo(f"{entry}: the same step is Slurm job {job} of another run ({twin.info.run_id}); waiting for it",
               err=True)
    wait(job, None)  # its log is the other process's to relay
    deadline = time.time() + STOP_SECONDS  # the job has ended; its run ends with it, unless it was killed
    while (run := tracking.get_run(twin.info.run_id)).info.status == "RUNNING" and time.time() < deadline:
        time.sleep(1)
    return run if run.info.status == "FINISHED" else None


def at_once(calls) -> list:
    """Each callable's result, in order, the callables (chains of steps) run at once, one thread each. A stop
    cancels every job; a failure raises once all have ended, so the chains that could finish did (a rerun reuses
    them)."""
    with concurrent.futures.ThreadPoolExecutor(len(calls), thread_name_prefix="step") as pool:
        futures = [pool.submit(call) for call in calls]
        try:
            while concurrent.futures.wait(futures, timeout=1)[1]:
                pass
        except BaseException:
            stopping.EVERYWHERE.set()  # every waiting thread cancels its job and ends its run KILLED
            concurrent.futures.wait(futures)
            raise
    failed = [f.exception() for f in futures if f.exception() is not None]
    if failed:
        raise failed[0]
    return [f.result() for f in futures]
