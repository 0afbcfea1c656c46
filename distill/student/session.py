"""One distillation set up: the targets, z* from where the settings say (``offline``: the extract run's stored
latents; ``online``: the frozen teacher, on the fixed draws here and on each training draw in the trainer; none
without a teacher latent), and the student's trainer."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import probe
from ..data import LABELS, SPLITS
from ..errors import DistillError
from .build import student_trainer
from .settings import StudentRunSettings
from .targets import fixed_targets, pooled_latent
from .train import DistillTrainer


@dataclass(frozen=True)
class ExtractedFeatures:
    """An extract run's downloaded features: its run id, local directory and manifest."""

    run_id: str
    local: Path
    manifest: dict


@dataclass
class Session:
    """A student ready to train and everything it is judged with: ``y_frames`` (labels, and the residual for
    target=residual, per split), ``y`` (the target per split), z* per split (None without a teacher latent), the
    frozen teacher (None unless distilling) and the extract run read (None for features=none)."""

    settings: StudentRunSettings
    ds: object
    y_frames: dict
    y: dict
    trainer: DistillTrainer
    z: dict | None
    teacher: object
    features: ExtractedFeatures | None

    def params(self) -> dict:
        """The student's resolved latent size and hidden widths (or channels)."""
        config = self.trainer.student.config
        return {"latent_dim": config["latent_dim"], "hidden_resolved": ",".join(map(str, config["hidden"]))}

    def record(self) -> dict:
        """The architecture a checkpoint of this run must match."""
        s = self.settings
        return self.trainer.student.config | {"input": s.input, "target": s.target, "latent": s.latent_spec}


def start(settings: StudentRunSettings, ds, residual: dict | None, features: ExtractedFeatures | None, teacher,
          device) -> Session:
    """Set a distillation up on dataset ``ds`` (``residual``: the error-only residual per split, for
    target=residual; ``teacher``: the frozen teacher when ``settings.distilling``); the student's initial weights come
    from the current torch seed."""
    s = settings
    y_frames = {split: ds[split].params[list(LABELS)].reset_index(drop=True) for split in SPLITS}
    for split, r in (residual or {}).items():
        y_frames[split]["residual"] = r
    z = None
    if s.online:
        z = {split: fixed_targets(teacher, ds[split], split, s.noise_level, s.layer, s.pooling, s.direction, device)
             for split in SPLITS}
    elif features is not None:
        z = probe.latent_features(features.local, features.manifest, s.layer, s.pooling, s.direction).x
        if any(len(z[split]) != len(ds[split]) for split in SPLITS):
            raise DistillError(f"extract run {features.run_id} holds other split sizes than {ds.root}")
    y = {split: y_frames[split][s.target].to_numpy(np.float64) for split in SPLITS}
    teach = (lambda noisy, sigma: pooled_latent(teacher, noisy, sigma, s.layer, s.pooling, s.direction)) \
        if s.online else None
    try:
        trainer = student_trainer(s.architecture(), ds.splits, z, None if s.label_free else y, s.training, device,
                                  teach)
    except ValueError as e:
        raise DistillError(f"hidden={s.hidden}: {e}") from None
    return Session(s, ds, y_frames, y, trainer, z, teacher, features)
