"""``main -P scale=confirm``: the pre-registered run on fresh, sealed spectra.

The pre-registration (``configs/confirm.yaml``) must be committed and unchanged; its digest is tagged on the run
(``preregistration_digest``) and seals the spectra: only this run (the environment variable ``DISTILL_CONFIRM``
holding that digest, which its steps inherit) opens their test split. Spectra sealed for another digest are
refused: a changed pre-registration needs fresh spectra (a new data seed).
"""
import os
from pathlib import Path

import click
import mlflow

from distill import preregistration, sealed, tracking
from distill.confirm import LEAK, LEAK_FREE
from distill.data import open_dataset
from distill.errors import DistillError
from entrypoints import _seeded
from entrypoints._steps import Steps

DATA = {LEAK: "data/confirm", LEAK_FREE: "data/confirm-leak_free"}


def check_no_overrides(overrides: dict):
    """Every size, preset and epoch of a confirm run comes from the pre-registration."""
    given = {k: v for k, v in overrides.items() if v not in (0, "auto")}
    if given:
        name = next(iter(given))
        raise DistillError(f"scale=confirm takes {name} from {preregistration.PATH.name}; "
                           f"leave {name}= unset (or change and commit the pre-registration)")


def seal(root: str, digest: str):
    """Seal fresh spectra for this pre-registration; refuse spectra sealed for another or never sealed."""
    was = sealed.digest_of(root)
    if was is None:
        sealed.seal(root, digest)
    elif was != digest:
        raise DistillError(f"{root}: sealed for pre-registration {was}, this is {digest}; a changed "
                           f"pre-registration needs fresh spectra (a new data seed and an empty {root})")


def check(overrides: dict, path=None) -> tuple:
    """(plan, digest) of a committed, unchanged pre-registration (default ``configs/confirm.yaml``), before any run
    starts."""
    check_no_overrides(overrides)
    path = path or preregistration.PATH
    preregistration.check_committed(path)
    return preregistration.load(path), preregistration.digest(path)


def run(steps: Steps, plan, digest: str):
    """Make and seal the spectra, run every seeded step and log the answer on the active main run."""
    os.environ[sealed.ENV] = digest  # this process and its steps may open the sealed test split
    mlflow.set_tags({"preregistration_digest": digest, "data_seed": plan.data["seed"]})
    click.echo(f"pre-registration {digest}, data seed {plan.data['seed']}", err=True)
    data = {}
    for dataset, out in DATA.items():
        existed = Path(out).exists()
        _seeded.simulated(steps, str(Path(out).resolve()), plan, leak=dataset == LEAK)
        if existed and sealed.digest_of(out) is None:
            raise DistillError(f"{out}: exists but was not made by a confirm run; the confirm spectra must be fresh")
        seal(out, digest)
        data[dataset] = str(Path(out).resolve())
    tracking.log_dataset(open_dataset(data[LEAK]).summary(), data[LEAK])
    readings = _seeded.SeededArms(steps, plan, data).run()
    _seeded.log_answer(readings, plan)
