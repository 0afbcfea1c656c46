"""The no-error teacher of ablation 4.1 as the teacher's exact control: a train_teacher run that differs from the
teacher's own in ``input_sigma`` alone.

A run is read as one record (``record``): its params as logged (strings: the train_teacher parameters and the
resolved architecture ``arch_*``) and the tags that name its data (``data_dir``, ``digest_*``) and its code
(``source_digest``). ``mismatch`` compares two records; ``refusal`` and ``untrainable`` say when no control can be
had or trained for a teacher; ``control_params`` are the train_teacher parameters that train one.
"""
import math
from dataclasses import fields

from ..errors import DistillError
from .model import TeacherConfig

RULE = "it must match the teacher in every training parameter but input_sigma"
TRAINING = {"loss": "self_supervised", "epochs": "8", "train_subset": "0", "seed": "42", "noise_level": "1.0",
            "lr": "0.001", "batch_size": "32"}
"""The training parameters compared, in this order, after the architecture; a value not logged is train_teacher's
default."""
INTEGERS = ("epochs", "train_subset", "seed", "batch_size")
ARCHITECTURE = tuple(f"arch_{f.name}" for f in fields(TeacherConfig) if f.name != "input_sigma")
SETTABLE = ("num_layers", "embed_dim", "kernel_size", "use_bn")  # what train_teacher sets beyond its preset's
RECORD_TAGS = ("data_dir", "source_digest")


def record(params: dict, tags: dict) -> dict:
    """A train_teacher run's params and the tags naming its data and code, as one dict."""
    return dict(params) | {k: v for k, v in tags.items() if k in RECORD_TAGS or k.startswith("digest_")}


def _value(key: str, text):
    """A logged value as compared: a parameter's finite number as a float ("1" = "1.0" = "1e0"), else its lower-case
    text; a tag (data, code) as logged."""
    if text is None or key in RECORD_TAGS or key.startswith("digest_"):
        return text
    try:
        number = float(text)
    except ValueError:
        return str(text).strip().lower()
    return number if math.isfinite(number) else str(text).strip().lower()


def _compared(teacher: dict, candidate: dict) -> list:
    """(what, key) in the order compared: the architecture (the preset's name only where neither logged its resolved
    ``arch_*``), the training parameters, the data, the code."""
    both = teacher.keys() | candidate.keys()
    extra = sorted(k for k in both if k.startswith("arch_") and k not in ARCHITECTURE and k != "arch_input_sigma")
    arch = [*ARCHITECTURE, *extra] if any(k.startswith("arch_") for k in both) else ["preset", *SETTABLE]
    return ([("architecture ", k) for k in arch] + [("", k) for k in TRAINING] + [("dataset ", "data_dir")]
            + [("dataset ", k) for k in sorted(k for k in both if k.startswith("digest_"))]
            + [("code version ", "source_digest")])


def mismatch(teacher: dict, candidate: dict, run_id: str) -> str | None:
    """None when the ``candidate`` record (train_teacher run ``run_id``) agrees with the ``teacher``'s in every
    training parameter but ``input_sigma``; else one line naming the first that differs, with both values."""
    for what, key in _compared(teacher, candidate):
        t, c = teacher.get(key, TRAINING.get(key)), candidate.get(key, TRAINING.get(key))
        if _value(key, t) != _value(key, c):
            return (f"no_error_teacher {run_id}: {what}{key}={'(not logged)' if c is None else c} but the teacher's "
                    f"is {'(not logged)' if t is None else t}; {RULE}")
    return None


def refusal(teacher: dict, run_id: str, snapshot: str | None, epochs: int) -> str | None:
    """Why the teacher (train_teacher run ``run_id``, read at epoch ``snapshot`` if one) can have no control, with
    ablate's ``teacher_epochs`` override ``epochs`` (0: none); None when it can."""
    if snapshot is not None:
        return (f"the teacher is run {run_id}'s snapshot after epoch {snapshot}, and a no-error teacher matches only "
                "a finished teacher; extract from the finished teacher, or give no_error_teacher=<checkpoint path>")
    own = int(float(teacher.get("epochs", TRAINING["epochs"])))
    if epochs and epochs != own:
        return (f"teacher_epochs={epochs} but the teacher (run {run_id}) trained {own}: a no-error teacher trained "
                f"for {epochs} would not match it; leave teacher_epochs at 0")
    return None


def untrainable(teacher: dict, code: str) -> str | None:
    """Why this code (its ``source_digest`` ``code``) cannot train the teacher's control; None when it can."""
    if teacher.get("source_digest") == code:
        return None
    return (f"no_error_teacher=auto: no run matches the teacher, and one trained now would not: the teacher was "
            f"trained by other code (source_digest {teacher.get('source_digest')}, this code's is {code}); train the "
            "teacher again, or give no_error_teacher=<run id> trained by its code")


def control_params(teacher: dict, data: str) -> dict:
    """The train_teacher parameters of the teacher's control: every training parameter of the ``teacher`` record
    with ``input_sigma=false``, on the teacher's data directory (``data`` if it logged none)."""
    arch = {k: str(teacher.get(f"arch_{k}", "preset" if k == "use_bn" else 0)).lower() for k in SETTABLE}
    train = {k: str(teacher.get(k, default)) for k, default in TRAINING.items()}
    train |= {k: str(int(float(train[k]))) for k in INTEGERS}
    return dict(data=teacher.get("data_dir") or data, preset=teacher.get("preset", "cpu"), input_sigma="false",
                **arch, **train)


def run_record(run) -> dict:
    """The record of an MLflow run."""
    return record(run.data.params, run.data.tags)


class Control:
    """Finding, training and checking the no-error teacher of a teacher with architecture ``config`` (a
    ``TeacherConfig.as_dict()``), for ablate's data directory ``data_dir`` and code ``code`` (its source_digest).
    ``teacher``: the teacher's train_teacher record (``DistillError`` if ``refusal``); None for a checkpoint with no
    run, whose control is not checked: the newest run with its architecture and train_teacher's loss, on this data
    by this code, else one trained ``epochs`` (0: 8) at ``noise_level``."""

    def __init__(self, teacher: dict | None, config: dict, data_dir: str, code: str, noise_level: float,
                 epochs: int = 0, run_id: str = "", snapshot: str | None = None):
        if teacher is not None and (reason := refusal(teacher, run_id, snapshot, epochs)):
            raise DistillError(reason)
        self.teacher, self.config, self.data_dir, self.code = teacher, config, data_dir, code
        self.noise_level, self.epochs, self.run_id = noise_level, epochs or int(TRAINING["epochs"]), run_id

    @property
    def tags(self) -> dict:
        """The tags of every candidate run."""
        if self.teacher is None:
            return {"data_dir": self.data_dir, "input_sigma": "false", "source_digest": self.code}
        return {"input_sigma": "false"} | {k: self.teacher[k] for k in RECORD_TAGS if k in self.teacher}

    def accept(self, run) -> bool:
        """Whether auto takes this candidate."""
        if self.teacher is not None:
            return mismatch(self.teacher, run_record(run), run.info.run_id) is None
        return run.data.params.get("loss") == TRAINING["loss"] and all(
            run.data.params.get(f"arch_{k}") == str(v) for k, v in self.config.items() if k != "input_sigma")

    def params(self) -> dict:
        """The train_teacher parameters that train the control (``DistillError`` if this code cannot)."""
        if self.teacher is None:
            return {k: str(self.config[k]).lower() for k in SETTABLE} | dict(
                data=self.data_dir, input_sigma="false", epochs=self.epochs, noise_level=self.noise_level)
        if reason := untrainable(self.teacher, self.code):
            raise DistillError(reason)
        return control_params(self.teacher, self.data_dir)

    def describe(self) -> str:
        return (f"{self.epochs} epochs" if self.teacher is None
                else f"as the teacher, run {self.run_id}, was trained, but without sigma")

    def check(self, run):
        """``DistillError`` naming the first training parameter in which ``run`` differs from the teacher."""
        if self.teacher is not None and (reason := mismatch(self.teacher, run_record(run), run.info.run_id)):
            raise DistillError(reason)
