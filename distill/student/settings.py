"""The options of one ``distill_student`` run and what follows from them: whether and where from the student learns
the teacher latent z*, the stage it answers, its architecture and training settings."""
from dataclasses import dataclass, field

from ..data import LABELS
from ..errors import DistillError, check_choices
from ..heads import SHARED_HEADS
from .build import Architecture, uses_teacher_latent
from .train import DistillSettings

MODES = ("offline", "online")  # z* stored by an extract run, or recomputed by the frozen teacher on each draw


@dataclass(frozen=True)
class StudentRunSettings:
    """The extract run read (``features``: a run reference or none) and the latent in it (layer, pooling,
    direction); the student (``kind``, ``hidden`` widths as a comma list or default) and its ``target``; where z*
    comes from (``teacher_mode``); the heads and labels read afterwards; ``training``: loss weights, input, noise
    level, seed and the rest of the student's training."""

    features: str = "latest"
    layer: str = "enc_pre_latent"
    pooling: str = "seg_mean_K8"
    direction: str = "fwd"
    kind: str = "mlp"
    hidden: str = "default"
    target: str = "log_g"
    teacher_mode: str = "offline"
    heads: tuple = SHARED_HEADS
    labels: tuple = LABELS
    head_params: dict = field(default_factory=dict)
    training: DistillSettings = field(default_factory=DistillSettings)

    @property
    def input(self) -> str:
        return self.training.input

    @property
    def noise_level(self) -> float:
        return self.training.noise_level

    def check(self):
        """One line on the first option that cannot work."""
        check_choices("head", list(self.heads), SHARED_HEADS)
        check_choices("label", list(self.labels), LABELS)
        check_choices("target", [self.target], LABELS + ("residual",))
        if self.pooling == "attention":
            raise DistillError("pooling=attention is learned with a head; a student needs global_mean, mean_max or "
                               "seg_mean_K{k}")
        if self.training.lambda_z == 0 and self.training.lambda_y == 0:
            raise DistillError("lambda_z and lambda_y are both 0: nothing to learn")
        self.widths()
        if self.training.lambda_z > 0 and not self.distilling:
            raise DistillError("teacher_mode=offline reads z* from an extract run: pass features=<run id|latest>, "
                               "or teacher_mode=online, or lambda_z=0")

    def widths(self) -> tuple | None:
        """The hidden widths / channels given, None for the kind's default."""
        if self.hidden == "default":
            return None
        try:
            return tuple(int(w) for w in self.hidden.split(",") if w.strip())
        except ValueError:
            raise DistillError(f"hidden={self.hidden!r}: give a comma list of integers, or default") from None

    @property
    def reads_features(self) -> bool:
        """Whether an extract run is read (z* offline, or the teacher latent as a rival)."""
        return self.features != "none"

    @property
    def distilling(self) -> bool:
        """Whether the student learns z*: lambda_z > 0 with z* stored (offline) or recomputed (online)."""
        return uses_teacher_latent(self.training.lambda_z, self.reads_features or self.teacher_mode == "online")

    @property
    def online(self) -> bool:
        return self.distilling and self.teacher_mode == "online"

    @property
    def label_free(self) -> bool:
        """The student never holds a label (3.3): heads read its latent afterwards."""
        return self.training.lambda_y == 0

    @property
    def latent_spec(self) -> str:
        return f"{self.layer}|{self.pooling}|{self.direction}" if self.reads_features or self.online else "none"

    @property
    def times_teacher(self) -> bool:
        """Whether this run is the one 3.x times against the teacher's encoder on the same spectra."""
        return self.input == "flux" and self.target != "residual" and not self.label_free

    def tags(self) -> dict:
        """Stage, research-plan items, input, target, student, teacher mode, role and label_free of the run."""
        stage, mvp = ("B", "B") if self.target == "residual" else (
            "2", "2.3" if self.input == "flux+error" else "2.1-2.2,3.1")
        return dict(stage=stage, mvp=mvp, input=self.input, target=self.target, student=self.kind,
                    teacher_mode=self.teacher_mode,
                    role="student" if self.training.lambda_z > 0 else "supervised_baseline",
                    label_free=str(self.label_free).lower())

    def architecture(self) -> Architecture:
        return Architecture(self.kind, self.widths())
