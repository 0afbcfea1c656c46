"""Checkpoints of the training entry points (train_teacher, distill_student): each completed epoch's ``last.pt``
logged under ``checkpoints/``, and ``checkpoint=`` (a run id or a path) checked against what it resumes."""
from pathlib import Path

import mlflow
import torch

from distill import tracking
from distill.errors import DistillError


def record(entry_point: str, summary: dict, noise_level: float, seed: int, architecture: dict) -> dict:
    """What a checkpoint must agree on to be resumed: entry point, data digests, noise level, seed, architecture."""
    return {"entry_point": entry_point, "digests": {k: v for k, v in summary.items() if k.startswith("digest_")},
            "noise_level": float(noise_level), "seed": int(seed), "architecture": architecture}


def log_last(state: dict, run_record: dict, work: Path):
    """Write the trainer's state with the run record as ``last.pt`` and log it (the newest completed epoch)."""
    torch.save({**state, "run": run_record}, work / "last.pt")
    mlflow.log_artifact(str(work / "last.pt"), "checkpoints")


def load(checkpoint: str, expect: dict, map_location) -> dict:
    """The state to resume from a ``last.pt`` path or a run id of the same entry point; one line naming the
    difference when it was made by another entry point, on other data, at another noise level or seed, or for
    another architecture."""
    entry_point = expect["entry_point"]
    if tracking.is_run_id(checkpoint):
        try:
            run = tracking.get_run(checkpoint)
        except Exception:
            raise DistillError(f"checkpoint={checkpoint}: no such run in {mlflow.get_tracking_uri()}") from None
        kind = run.data.tags.get(tracking.ENTRY_POINT_TAG)
        if kind != entry_point:
            raise DistillError(f"checkpoint={checkpoint}: a {kind} run, not {entry_point}")
        if run.info.status == "RUNNING":
            raise DistillError(f"checkpoint={checkpoint}: the run is still RUNNING; stop it first")
        try:
            path = tracking.download(checkpoint, "checkpoints/last.pt")
        except Exception:
            raise DistillError(f"checkpoint={checkpoint}: the run saved no checkpoints/last.pt "
                               "(it ended before its first epoch); start a new run") from None
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
    found = state["run"]
    for key in ("entry_point", "digests", "noise_level", "seed", "architecture"):
        if found.get(key) != expect[key]:
            raise DistillError(f"checkpoint={checkpoint}: its {key.replace('_', ' ')} {found.get(key)} differs from "
                               f"this run's {expect[key]}")
    return state
