"""The one place a student network and its training settings are put together: ``distill_student``, tune's
objective, the ablations' supervised network and the CNN peer all build their trainer here."""
from dataclasses import dataclass, replace

from torch import nn

from .model import Student
from .train import DistillSettings, DistillTrainer

NO_TEACHER_LATENT_DIM = 128  # z_s size when there is no teacher latent to match (lambda_z = 0, features = none)


@dataclass(frozen=True)
class Architecture:
    """A ``Student`` to build: encoder ``kind`` (mlp, cnn, starnet), ``hidden`` widths / channels per stage / dense
    widths (None: the kind's default), dropout, head (linear, mlp) and latent size (None: the teacher latent's, else
    ``NO_TEACHER_LATENT_DIM``). Input channels and pixels follow from the training settings and the spectra."""

    kind: str = "mlp"
    hidden: tuple | None = None
    dropout: float = 0.1
    head: str = "linear"
    latent_dim: int | None = None

    @classmethod
    def of(cls, config: dict) -> "Architecture":
        """The architecture of a built student (its ``config``)."""
        return cls(config["kind"], tuple(config["hidden"]), config["dropout"], config["head"], config["latent_dim"])


def uses_teacher_latent(lambda_z: float, has_latent: bool) -> bool:
    """Whether a student learns a teacher latent: a positive latent weight and a latent z* to match."""
    return lambda_z > 0 and has_latent


def student_trainer(network: Architecture | nn.Module, spectra: dict, z: dict | None, y: dict | None,
                    settings: DistillSettings, device, online=None) -> DistillTrainer:
    """The trainer of a student: ``network`` an ``Architecture`` (built here for ``settings.input`` and the spectra's
    pixels) or a ready module (a peer's network); ``z`` the fixed-draw z* per split or None. The latent loss applies
    only where ``uses_teacher_latent``: otherwise ``lambda_z`` is 0 and z* is not handed over (supervised). Initial
    weights come from the current torch seed."""
    distil = uses_teacher_latent(settings.lambda_z, z is not None)
    if isinstance(network, Architecture):
        latent_dim = network.latent_dim or (z["train"].shape[1] if z is not None else NO_TEACHER_LATENT_DIM)
        network = Student(network.kind, 2 if settings.input == "flux+error" else 1, spectra["train"].n_pixels,
                          latent_dim, hidden=network.hidden, dropout=network.dropout, head=network.head)
    return DistillTrainer(network, spectra, z if distil else None, y,
                          replace(settings, lambda_z=settings.lambda_z if distil else 0.0), device, online)
