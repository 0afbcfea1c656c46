"""Checkpoints of the training entry points (train_teacher, distill_student): each completed epoch's ``last.pt``
logged under ``checkpoints/``, and ``checkpoint=`` (a run id or a path) checked against what it resumes.

A resume continues the training the checkpoint holds, so every setting that training fixed must be this run's too:
entry point, data digests, architecture, where its inputs and targets came from (``SOURCES``) and every training
setting (learning rate, batch size, loss, noise level, seed, loss weights, ...); one that differs is refused in one
line naming it. Only ``RESUMABLE`` settings may change: they are applied, and the change is tagged
``resume_changed``."""
from dataclasses import asdict
from pathlib import Path

import click
import mlflow
import torch

from distill import tracking
from distill.errors import DistillError

RESUMABLE = ("epochs", "patience")  # stopping rules: the resumed run applies its own
SOURCES = ("features_run_id", "teacher_run_id", "teacher_path", "teacher_epoch", "residual_run_id", "teacher_mode")
"""Tags of the active run that say where a training's inputs and targets come from."""


def record(entry_point: str, summary: dict, noise_level: float, seed: int, architecture: dict) -> dict:
    """What a checkpoint must agree on to be resumed: entry point, data digests, noise level, seed, architecture,
    and the sources tagged on the active run."""
    active = mlflow.active_run()
    tags = tracking.get_run(active.info.run_id).data.tags if active else {}
    return {"entry_point": entry_point, "digests": {k: v for k, v in summary.items() if k.startswith("digest_")},
            "noise_level": float(noise_level), "seed": int(seed), "architecture": architecture,
            "sources": {k: tags[k] for k in SOURCES if k in tags}}


def log_last(state: dict, run_record: dict, work: Path):
    """Write the trainer's state with the run record as ``last.pt`` and log it (the newest completed epoch)."""
    torch.save({**state, "run": run_record}, work / "last.pt")
    mlflow.log_artifact(str(work / "last.pt"), "checkpoints")


def load(checkpoint: str, expect: dict, map_location, settings=None) -> dict:
    """The state to resume from a ``last.pt`` path or a run id of the same entry point, checked by ``check``
    against this run's record and training ``settings`` (a dataclass)."""
    state = read(checkpoint, expect["entry_point"], map_location)
    check(checkpoint, state, expect, settings)
    return state


def read(checkpoint: str, entry_point: str, map_location) -> dict:
    """A checkpoint of this project, from a ``last.pt`` path or a run id of ``entry_point``."""
    if tracking.is_run_id(checkpoint):
        path = _download(checkpoint, entry_point)
    elif Path(checkpoint).is_file():
        path = Path(checkpoint)
    else:
        raise DistillError(f"checkpoint={checkpoint}: neither a file nor a {entry_point} run id")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise DistillError(f"checkpoint={checkpoint}: not a checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict) or not isinstance(state.get("run"), dict):
        raise DistillError(f"checkpoint={checkpoint}: not a checkpoint of this project (no run record)")
    return state


def _download(run_id: str, entry_point: str) -> Path:
    try:
        run = tracking.get_run(run_id)
    except Exception:
        raise DistillError(f"checkpoint={run_id}: no such run in {mlflow.get_tracking_uri()}") from None
    kind = run.data.tags.get(tracking.ENTRY_POINT_TAG)
    if kind != entry_point:
        raise DistillError(f"checkpoint={run_id}: a {kind} run, not {entry_point}")
    if run.info.status == "RUNNING":
        raise DistillError(f"checkpoint={run_id}: the run is still RUNNING; stop it first")
    try:
        return tracking.download(run_id, "checkpoints/last.pt")
    except Exception:
        raise DistillError(f"checkpoint={run_id}: the run saved no checkpoints/last.pt "
                           "(it ended before its first epoch); start a new run") from None


def check(checkpoint: str, state: dict, expect: dict, settings=None):
    """Refuse, in one line naming it, a setting of this run that differs from the checkpoint's (a resume cannot
    change it); tag and echo the ``RESUMABLE`` ones it changes; refuse ``epochs`` below those already trained."""
    found = state["run"]
    for key in ("entry_point", "digests", "noise_level", "seed", "architecture", "sources"):
        if key in expect:
            _compare(checkpoint, key.replace("_", " "), found.get(key), expect[key])
    if settings is None:
        return
    mine, theirs = asdict(settings), state.get("settings", {})
    fixed = [k for k in mine if k not in RESUMABLE]
    _compare(checkpoint, "", {k: theirs[k] for k in fixed if k in theirs}, {k: mine[k] for k in fixed})
    done = state.get("state", {}).get("epoch", 0)
    if mine.get("epochs", done) < done:
        raise DistillError(f"checkpoint={checkpoint}: it has trained {done} epochs already; epochs={mine['epochs']} "
                           f"cannot undo them (give epochs >= {done})")
    changed = {k: (theirs[k], mine[k]) for k in RESUMABLE if k in mine and k in theirs and theirs[k] != mine[k]}
    if changed:
        text = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
        mlflow.set_tag("resume_changed", text)
        click.echo(f"resume applies {text}", err=True)


def _compare(checkpoint: str, what: str, theirs, mine):
    """One line naming the first difference; a dict is compared key by key (``what`` then names the key)."""
    if isinstance(mine, dict) and isinstance(theirs, dict | None):
        theirs = theirs or {}
        for key in sorted(set(mine) | set(theirs)):
            _compare(checkpoint, f"{what} {key}".strip(), theirs.get(key, "(not recorded)"),
                     mine.get(key, "(none)"))
    elif theirs == "(not recorded)":
        raise DistillError(f"checkpoint={checkpoint}: it does not record its {what} (an older checkpoint); start a "
                           "new run")
    elif theirs != mine:
        raise DistillError(f"checkpoint={checkpoint}: its {what} {theirs} differs from this run's {mine} (a resume "
                           "cannot change it: resume with the same, or start a new run)")
