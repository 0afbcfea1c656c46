"""The confirm run's pre-registration (``configs/confirm.yaml``): every arm, candidate cell, head, seed, size and
verdict margin, fixed in a committed file before the confirm spectra exist.

``load`` reads and checks it; ``check_committed`` refuses a file that differs from its committed version (what a
referee reads in the repository is what ran); ``digest`` is what ``main`` tags and the report prints.
"""
import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import thresholds as th
from .errors import DistillError

PATH = Path(__file__).resolve().parents[1] / "configs" / "confirm.yaml"
MARGINS = {"teacher_fraction": th.TEACHER_FRACTION, "error_dominates": th.ERROR_DOMINATES,
           "fail_delta": th.FAIL_DELTA}
ARMS = ("teacher", "no_error_teacher", "leak_free_teacher")


@dataclass(frozen=True)
class Plan:
    """What a seeded run trains and reads (the pre-registration's sections as dicts)."""

    data: dict
    teacher: dict
    arms: dict
    candidates: dict
    students: dict
    margins: dict

    @property
    def teacher_seeds(self) -> list:
        return [int(s) for s in self.teacher["seeds"]]

    @property
    def student_seeds(self) -> list:
        return [int(s) for s in self.students["seeds"]]


def digest(path=PATH) -> str:
    """sha256 of the file's bytes, first 12 hex digits."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def load(path=PATH) -> Plan:
    """The plan of a pre-registration file; a missing section, an unknown arm or a margin the code does not use is
    refused in one line."""
    path = Path(path)
    if not path.is_file():
        raise DistillError(f"{path}: no pre-registration file")
    try:
        raw = yaml.safe_load(path.read_text())
        plan = Plan(**{k: raw[k] for k in Plan.__dataclass_fields__})
    except (yaml.YAMLError, KeyError, TypeError) as e:
        raise DistillError(f"{path}: not a pre-registration ({type(e).__name__}: {e})") from None
    if unknown := sorted(set(plan.arms) - set(ARMS)):
        raise DistillError(f"{path}: unknown arm {unknown[0]!r}; valid: {', '.join(ARMS)}")
    if "teacher" not in plan.arms:
        raise DistillError(f"{path}: the arms must include teacher")
    for name, value in plan.margins.items():
        if name not in MARGINS or float(value) != MARGINS[name]:
            raise DistillError(f"{path}: margin {name}={value} but the code's verdicts use "
                               f"{MARGINS.get(name, 'no such margin')}; margins are fixed in distill/thresholds.py")
    if len(plan.teacher_seeds) < 1 or len(plan.student_seeds) < 1:
        raise DistillError(f"{path}: at least one teacher seed and one student seed")
    return plan


def check_committed(path=PATH):
    """Refuse a pre-registration that is not committed or differs from its committed version."""
    path = Path(path).resolve()
    try:
        committed = subprocess.run(["git", "-C", str(path.parent), "show", f"HEAD:./{path.name}"],
                                   capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        raise DistillError(f"{path}: the pre-registration is not committed; commit it before the confirm run") \
            from None
    if committed != path.read_bytes():
        raise DistillError(f"{path}: differs from its committed version; a confirm run reads only a committed "
                           f"pre-registration (commit the change, or restore it with git checkout)")
