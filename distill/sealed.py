"""A sealed test split: the confirm run's spectra are scored once, by the pre-registered run, and by nothing else.

``seal(root, digest)`` writes ``root/sealed.json`` naming the pre-registration's digest. Opening the test split of
a sealed dataset (its labels are read on open) is then refused unless the environment variable ``DISTILL_CONFIRM``
holds that digest, which only ``main -P scale=confirm`` sets for its own steps. Development tools (tune,
teacher_study, bench scripts, a probe run by hand) may read train and val.
"""
import json
import os
from pathlib import Path

from .errors import DistillError

MARKER = "sealed.json"
ENV = "DISTILL_CONFIRM"


def seal(root, digest: str):
    Path(root, MARKER).write_text(json.dumps({"preregistration": digest}) + "\n")


def digest_of(root) -> str | None:
    """The pre-registration digest a dataset is sealed for, or None when it is not sealed."""
    path = Path(root, MARKER)
    return json.loads(path.read_text())["preregistration"] if path.is_file() else None


def check(root, splits):
    """Refuse to open a sealed dataset's test split outside the confirm run it is sealed for."""
    sealed_for = digest_of(root)
    if "test" in splits and sealed_for is not None and os.environ.get(ENV) != sealed_for:
        raise DistillError(f"{root}: its test split is sealed for the pre-registered confirm run "
                           f"(main -P scale=confirm); other tools may read train and val only")
