"""Optuna search spaces and study plumbing for students and probe heads (no MLflow here).

Objective: validation R^2 of log g, never test. Students report it every epoch so a
pruner can stop hopeless trials; multi-objective studies add the parameter count or
the inference time and keep the Pareto front.

A study's automatic name carries a digest of what it searches (``study_name``), the study stores its space and
refuses a worker that would search another (``open_study``), each worker samples with a seed of its own unless one is
given (``sampler_seed``), and each trial holds its MLflow run id (``link_trial``).

A storage URL never holds a password (``mlflow run`` logs every ``-P`` value as a parameter before the entry point
starts): PostgreSQL's comes from libpq's pgpass file (``PGPASSFILE``) or ``PGPASSWORD``.
"""
import hashlib
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass

import optuna
import pandas as pd
import sqlalchemy
from optuna.storages import RDBStorage, RetryFailedTrialCallback

from .errors import DistillError
from .redact import has_password, redact
from .student.model import DEFAULT_HIDDEN, STUDENTS
from .student.model import HEADS as STUDENT_HEADS

STUDIES = ("student", "head")
SECOND_OBJECTIVES = ("none", "params", "time")
PRUNERS = ("median", "none")
HEARTBEAT_SECONDS = 60  # a RUNNING trial without a heartbeat for 2 minutes is failed and retried
RETRIES = 2
AUTO_SEED = "auto"
SPACE_ATTR = "search_space"  # the study's user attribute holding its canonical space
RUN_ATTR = "mlflow_run_id"  # a trial's user attribute: the MLflow run that recorded it
HEAD_SPACES = {  # param: (int or float, min, max), each on a log scale
    "ridge": {"alpha": ("float", 1e-4, 1e3)},
    "lightgbm": {"num_leaves": ("int", 4, 64), "n_estimators": ("int", 20, 500),
                 "learning_rate": ("float", 0.01, 0.3), "min_child_samples": ("int", 5, 100)},
}


def default_storage(tracking_uri: str) -> str:
    """Beside the MLflow store: ``optuna.db`` next to a SQLite ``mlflow.db``, else in the working directory."""
    if tracking_uri.startswith("sqlite:///"):
        return f"sqlite:///{os.path.join(os.path.dirname(tracking_uri[len('sqlite:///'):]), 'optuna.db')}"
    return f"sqlite:///{os.path.abspath('optuna.db')}"


def storage_url(storage: str, tracking_uri: str) -> str:
    """The storage to use (``auto``: ``default_storage``); one that holds a password is refused."""
    if storage == "auto":
        return default_storage(tracking_uri)
    if has_password(storage):
        run = os.environ.get("MLFLOW_RUN_ID")
        logged = f"; `mlflow run` logged it as parameter storage of run {run}: delete that run, then `mlflow gc`"
        raise DistillError(f"storage={redact(storage)} holds a password: give the URL without it and the password in "
                           f"libpq's pgpass file (PGPASSFILE) or PGPASSWORD{logged if run else ''}")
    return storage


def _items(text: str) -> list:
    return [s.strip() for s in str(text).split(",") if s.strip()]


def parse_range(text: str, name: str, cast=float) -> tuple:
    """``"lo,hi"`` -> (lo, hi), or one line saying what is wrong."""
    try:
        lo, hi = (cast(v) for v in _items(text))
    except ValueError:
        raise DistillError(f"{name}={text!r}: give min,max") from None
    return lo, hi


@dataclass
class StudentSpace:
    """Bounds of the student search; each is an entry-point parameter."""

    students: tuple = STUDENTS
    layers: tuple = (1, 4)  # MLP hidden layers / CNN stages after the stem
    width: tuple = (64, 2048)  # MLP first hidden width (log scale); later layers halve it at most
    width_multiplier: tuple = (0.25, 2.0)  # CNN channels x (32, 32, 64, 64)
    dropout: tuple = (0.0, 0.3)
    lr: tuple = (1e-5, 1e-2)
    lambda_z: tuple = (0.0, 2.0)
    lambda_y: tuple = (0.1, 2.0)
    heads: tuple = ("linear",)
    targets: tuple = ("log_g",)


def suggest_student(trial: optuna.Trial, space: StudentSpace) -> dict:
    """One student configuration: kind, hidden widths, dropout, lr, lambda_z, lambda_y, head, target."""
    kind = trial.suggest_categorical("student", list(space.students))
    layers = trial.suggest_int("layers", *space.layers)
    if kind == "mlp":
        first = trial.suggest_int("width", *space.width, log=True)
        hidden = tuple(max(8, first // 2 ** min(i, 1)) for i in range(layers))  # w, w/2, w/2, ...
    elif kind == "starnet":  # StarNet's two dense layers (256, 128), scaled; its convolutions stay as published
        m = trial.suggest_float("width_multiplier", *space.width_multiplier, log=True)
        hidden = tuple(max(8, round(c * m)) for c in DEFAULT_HIDDEN["starnet"])
    else:
        m = trial.suggest_float("width_multiplier", *space.width_multiplier, log=True)
        base = (32, 32, 64, 64, 64)
        hidden = tuple(max(4, round(c * m)) for c in base[: layers + 1])
    return {"student": kind, "hidden": hidden,
            "dropout": trial.suggest_float("dropout", *space.dropout),
            "lr": trial.suggest_float("lr", *space.lr, log=True),
            "lambda_z": trial.suggest_float("lambda_z", *space.lambda_z),
            "lambda_y": trial.suggest_float("lambda_y", *space.lambda_y),
            "head": trial.suggest_categorical("head", list(space.heads)),
            "target": trial.suggest_categorical("target", list(space.targets))}


def suggest_head(trial: optuna.Trial, head: str) -> dict:
    """Probe-head parameters (``HEAD_SPACES``): Ridge alpha; LightGBM leaves, trees, learning rate, min child
    samples."""
    return {name: (trial.suggest_int if kind == "int" else trial.suggest_float)(name, lo, hi, log=True)
            for name, (kind, lo, hi) in HEAD_SPACES[head].items()}


def student_space(students: str, heads: str, targets: str, **ranges: str) -> StudentSpace:
    """The checked search space from the entry point's comma lists and ``min,max`` ranges."""
    bounds = {k: parse_range(v, k, int if k in ("layers", "width") else float) for k, v in ranges.items()}
    space = StudentSpace(students=tuple(_items(students)), heads=tuple(_items(heads)), targets=tuple(_items(targets)),
                         **bounds)
    try:
        check_space(space)
    except ValueError as e:
        raise DistillError(str(e)) from None
    if set(space.targets) - {"log_g", "residual"}:
        raise DistillError(f"targets={targets!r}: choose from log_g, residual")
    if len(set(space.targets)) > 1:  # a residual trial's log g adds the error-only prediction, read from sigma
        raise DistillError(f"targets={targets!r}: residual trials see sigma, so they are ranked apart from flux-only "
                           "ones; run targets=log_g and targets=residual as two studies")
    return space


def check_space(space: StudentSpace):
    bad = [s for s in space.students if s not in STUDENTS] + [h for h in space.heads if h not in STUDENT_HEADS]
    if bad:
        raise ValueError(f"unknown student(s) or head(s) {bad}; students: {', '.join(STUDENTS)}; heads: "
                         f"{', '.join(STUDENT_HEADS)}")
    for name in ("layers", "width", "width_multiplier", "dropout", "lr", "lambda_z", "lambda_y"):
        lo, hi = getattr(space, name)
        if not 0 <= lo <= hi:
            raise ValueError(f"{name} range {lo}..{hi}: need 0 <= min <= max")


def sampler_seed(seed) -> int:
    """The worker's sampler seed: ``auto`` draws one of its own (31 bits of ``os.urandom``), so workers sharing a
    study do not sample the same first trials; an integer is kept, for a reproducible run."""
    if str(seed) == AUTO_SEED:
        return int.from_bytes(os.urandom(4), "big") >> 1
    try:
        return int(str(seed))
    except ValueError:
        raise DistillError(f"seed={seed!r}: give an integer, or auto") from None


def study_space(study_type: str, space: StudentSpace, head: str, second: str) -> dict:
    """What a study searches and optimises: the student space or the head's, and its objectives."""
    searched = (asdict(space) if study_type == "student" else {"head": head, **HEAD_SPACES[head]})
    return {"study": study_type, **searched, "objectives": ["val_r2_log_g"] + ([] if second == "none" else [second])}


def canonical(value) -> str:
    """One JSON text per value: sorted keys, tuples as lists, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def features_key(run_id: str | None, study_type: str, input_: str, view: str, noise_level: float) -> str:
    """The features a study's trials read: the extract run id and its latent view (layer/pooling/direction), or
    ``none``; a head study on flux names its input; flux is read at ``noise_level``."""
    if study_type == "head" and input_ != "latent":
        return f"{input_} noise {noise_level}"
    read = "none" if run_id is None else f"{run_id} {view}"
    return read if study_type == "head" else f"{read} noise {noise_level}"


def study_name(study_type: str, space: dict, summary: dict, features: str) -> str:
    """``distill-{study}[-residual]-{12 hex}``: the hex a digest of the data (its split digests), the features and
    the space, so a study on other data, features or bounds is another study."""
    data = {k: v for k, v in summary.items() if k.startswith("digest_")}
    digest = hashlib.sha256(canonical({"data": data, "features": features, "space": space}).encode()).hexdigest()
    residual = "-residual" if "residual" in space.get("targets", ()) else ""  # residual trials see sigma
    return f"distill-{study_type}{residual}-{digest[:12]}"


def claim_space(study: optuna.Study, space: dict):
    """Store ``space`` on a study that has none; refuse, in one line naming what differs, to resume a study that
    searched another space."""
    stored = study.user_attrs.get(SPACE_ATTR)
    if stored is None:
        study.set_user_attr(SPACE_ATTR, canonical(space))
        return
    theirs, mine = json.loads(stored), json.loads(canonical(space))
    differs = [f"{k} {canonical(theirs.get(k))} there, {canonical(mine.get(k))} here"
               for k in sorted(set(theirs) | set(mine)) if theirs.get(k) != mine.get(k)]
    if differs:
        raise DistillError(f"study {study.study_name} searched another space ({'; '.join(differs)}): pass the same "
                           "bounds, or another study_name (auto names one per data, features and space)")


def link_trial(store: optuna.storages.BaseStorage, study_name: str, number: int, run_id: str):
    """Write the MLflow run that records trial ``number`` on the trial (user attribute ``mlflow_run_id``)."""
    trial_id = store.get_trial_id_from_study_id_trial_number(store.get_study_id_from_name(study_name), number)
    store.set_trial_user_attr(trial_id, RUN_ATTR, run_id)


def storage(url: str) -> RDBStorage:
    """An RDB storage (SQLite file or any SQLAlchemy URL, e.g. PostgreSQL) with heartbeats, so a killed
    worker's RUNNING trials are failed and retried (up to ``RETRIES`` times); one that cannot be opened (a wrong
    password, host or database) is one line.

    Workers started together on an empty database race to create its tables (PostgreSQL answers the
    loser with a unique violation); the loser tries again and finds them made."""
    for attempt in range(5):
        try:
            return RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=2 * HEARTBEAT_SECONDS,
                              failed_trial_callback=RetryFailedTrialCallback(max_retry=RETRIES))
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as e:
            if attempt == 4:
                raise DistillError(_cannot_open(url, e)) from None
            time.sleep(0.2 * (attempt + 1))
        except (sqlalchemy.exc.SQLAlchemyError, ImportError) as e:
            raise DistillError(_cannot_open(url, e)) from None


def _cannot_open(url: str, e: Exception) -> str:
    detail = " ".join(str(getattr(e, "orig", None) or e).split())
    return redact(f"storage={url}: cannot open the Optuna storage ({detail})")


def create_study(name: str, store: RDBStorage, second: str, pruner: str, seed: int) -> optuna.Study:
    """A seeded TPE study in ``store`` (resumed if it exists); maximise val R^2 [, minimise params or time]. Optuna
    logs warnings only."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    directions = ["maximize"] + ([] if second == "none" else ["minimize"])
    return optuna.create_study(study_name=name, storage=store, load_if_exists=True, directions=directions,
                               sampler=optuna.samplers.TPESampler(seed=seed),
                               pruner=optuna.pruners.MedianPruner(n_warmup_steps=1) if pruner == "median"
                               else optuna.pruners.NopPruner())


def open_study(name: str, store: RDBStorage, space: dict, pruner: str, seed: int, worker: str,
               data: dict, features: str) -> optuna.Study:
    """``create_study`` over ``space`` (refused if the study searched another: ``claim_space``); the study records
    this worker's seed (``sampler_seed {worker}``) and, when new, the data digests and features it was made for."""
    study = create_study(name, store, (space["objectives"] + ["none"])[1], pruner, seed)
    claim_space(study, space)
    study.set_user_attr(f"sampler_seed {worker}", seed)
    for key, value in (("data", {k: v for k, v in data.items() if k.startswith("digest_")}), ("features", features)):
        if key not in study.user_attrs:
            study.set_user_attr(key, value)
    return study


def pareto_table(study: optuna.Study) -> pd.DataFrame:
    """The best trials of a multi-objective study (the Pareto front) as a DataFrame."""
    rows = [{"trial": t.number, "val_r2_log_g": t.values[0], "second_objective": t.values[1],
             **t.params} for t in study.best_trials]
    return pd.DataFrame(rows).sort_values("second_objective")


def study_figures(study: optuna.Study, second: str = "none") -> dict:
    """Optuna's matplotlib figures of a study: history, parallel coordinates and (more than one complete trial)
    importances; with a second objective, the Pareto front."""
    from optuna.visualization import matplotlib as plots

    if second != "none":
        return {"pareto_front": plots.plot_pareto_front(study, target_names=["val R^2 log g", second]).figure}
    out = {"optimization_history": plots.plot_optimization_history(study).figure,
           "parallel_coordinate": plots.plot_parallel_coordinate(study).figure}
    if sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) > 1:
        out["param_importances"] = plots.plot_param_importances(study).figure
    return out
