"""Logged models that load anywhere, the model registry, and ``models:/`` references.

- ``log_model``: a network as the run's MLflow model ``model`` in the ``pt2`` format: a ``torch.export`` program
  (the traced graph and its tensors, batch size free). ``mlflow.pyfunc.load_model`` and ``mlflow.pytorch.load_model``
  load it in any process with torch and mlflow, without this package and without unpickling anything.
- ``register_main``: the models of a ``main`` run's ``train_teacher`` and ``student`` steps as versions of
  ``distill-teacher`` and ``distill-student``, with the aliases ``newest`` (the newest ``main`` run's) and the run's
  scale (``demo``, ``study``, ``paper``). A run already registered keeps its version; the aliases move to it.
- ``run_ref``: ``models:/name@alias``, ``models:/name/<version>`` or ``models:/name/latest`` (the highest version)
  -> the version's source run id, which the pipeline reads as it reads any run id (weights-only state dicts).
"""
import re

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from . import tracking
from .errors import DistillError
from .redact import redact

MODEL = "model"  # the artifact name of a run's logged model
REQUIREMENTS = ("torch", "numpy")  # all a pt2 model needs besides mlflow
MODELS = {"train_teacher": "distill-teacher", "student": "distill-student"}  # main's step -> registered model
ALIAS = "newest"  # MLflow reserves "latest" (models:/name/latest: the highest version)
MODEL_REF = re.compile(r"^models:/(?P<name>[^/@']+)(?:@(?P<alias>[^/@']+)|/(?P<version>\d+|latest))$")


def log_model(module, example: np.ndarray):
    """Log ``module`` (moved to the CPU, eval mode) as the active run's model ``model``, exported with
    ``torch.export`` on ``example`` (the input example and signature; a single row is repeated, since torch.export
    fixes a batch size of 1)."""
    example = np.ascontiguousarray(example, dtype=np.float32)
    if len(example) == 1:
        example = np.repeat(example, 2, axis=0)
    return mlflow.pytorch.log_model(module.cpu().eval(), name=MODEL, input_example=example,
                                    serialization_format="pt2",
                                    pip_requirements=tracking.model_requirements(*REQUIREMENTS))


def is_model_ref(ref) -> bool:
    return str(ref).startswith("models:/")


def run_ref(ref: str, what: str) -> str:
    """``ref`` itself, or for a ``models:/`` reference the registered version's source run id; an unknown name,
    alias or version is a one-line DistillError (``what``: the parameter, for the message)."""
    if not is_model_ref(ref):
        return ref
    if (m := MODEL_REF.match(ref)) is None:
        raise DistillError(f"{what}={ref}: give models:/NAME@ALIAS, models:/NAME/VERSION or models:/NAME/latest")
    client, name = MlflowClient(), m["name"]
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        raise DistillError(f"{what}={ref}: no registered model {name!r} in "
                           f"{redact(mlflow.get_registry_uri())}") from None
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    wanted = m["alias"] or m["version"]
    if m["alias"]:
        number = model.aliases.get(m["alias"])
    else:
        number = versions[-1] if m["version"] == "latest" and versions else int(m["version"])
    if number is None or int(number) not in versions:
        known = (f"aliases {', '.join(sorted(model.aliases)) or 'none'}" if m["alias"] else
                 f"versions {', '.join(map(str, versions)) or 'none'}")
        raise DistillError(f"{what}={ref}: {name!r} has no {'alias' if m['alias'] else 'version'} {wanted!r} "
                           f"({known})")
    version = client.get_model_version(name, str(number))
    if not version.run_id:
        raise DistillError(f"{what}={ref}: version {number} of {name!r} has no source run")
    return version.run_id


def register(run_id: str, name: str, aliases=(ALIAS,)) -> str:
    """The version of ``name`` whose source is the model of run ``run_id`` (registered now if there is none), with
    ``aliases`` pointing at it; returns the version number."""
    client = MlflowClient()
    found = [v for v in client.search_model_versions(f"name = '{name}'") if v.run_id == run_id]
    if found:
        number = min(found, key=lambda v: int(v.version)).version
    else:  # the run's logged model (MLflow 3 keeps it outside the run's artifacts)
        logged = mlflow.search_logged_models(experiment_ids=[client.get_run(run_id).info.experiment_id],
                                             filter_string=f"source_run_id = '{run_id}' AND name = '{MODEL}'",
                                             output_format="list")
        number = mlflow.register_model(logged[0].model_uri if logged else f"runs:/{run_id}/{MODEL}", name).version
    for alias in aliases:
        client.set_registered_model_alias(name, alias, str(number))
    return str(number)


def register_main(main_run_id: str) -> list[str]:
    """Register the models of a ``main`` run's ``train_teacher`` and ``student`` steps (its ``step_*`` tags; a
    teacher given as a checkpoint file has no step) with the aliases ``newest`` and the run's scale; returns one line
    per model for the log, or one line saying why nothing was registered (a tracking store without a registry)."""
    client = MlflowClient()
    try:
        client.search_registered_models(max_results=1)
    except Exception as e:  # stores without a model registry answer this with an error of their own
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        return [f"models not registered: no model registry at {redact(mlflow.get_registry_uri())} ({why[:200]})"]
    tags = client.get_run(main_run_id).data.tags
    aliases = (ALIAS, *([tags["scale"]] if tags.get("scale") else []))
    lines = []
    for step, name in MODELS.items():
        if run_id := tags.get(f"step_{step}"):
            try:
                number = register(run_id, name, aliases)
            except MlflowException as e:  # a run that logged no model (made by older code, or a stand-in)
                lines.append(f"{name} not registered: {str(e).splitlines()[0][:200]}")
                continue
            lines.append(f"registered models:/{name}/{number} (@{', @'.join(aliases)}) from run {run_id}")
    return lines
