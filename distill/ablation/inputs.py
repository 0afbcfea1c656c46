"""What the ablations share, loaded once and only when an ablation needs it.

Upstream data and models come from an ``upstream`` object the entry point hands over: the teacher latent once, at
the start (``latent(layer, pooling, direction)``, a FeatureSet); the rest at most once each and only while an
ablation runs: ``teacher()``, ``no_error(teacher)`` -> (model, train_teacher run id or None),
``student(label_free)`` -> ``LoadedStudent`` or None, ``residual(label, sizes)`` -> {split: error-only residual in
the label's unit} (a ``DistillError`` when there is none) and ``ceilings(label, levels)`` -> the information ceiling
(R^2) per noise level, or None.
"""
import functools
from dataclasses import dataclass

import numpy as np
import torch

from .. import probe
from ..data import LABELS, SPLITS, ArraySpectra, add_noise, noise_draw
from ..student.build import Architecture, student_trainer
from ..student.model import StudentPredictor, student_latent
from ..student.targets import fixed_targets
from ..student.train import DistillSettings


@dataclass(frozen=True)
class LoadedStudent:
    """A trained student: its predictor, its input (flux, flux+error) and its training parameters (as logged)."""

    predictor: StudentPredictor
    input: str
    params: dict


class AblationInputs:
    """Spectra, labels and the teacher latent (``latent``, named "teacher", read at ``reading`` = (layer, pooling,
    direction)) of a dataset; noisy flux, latents and students' latents at any noise level, on ``device``.
    ``progress(total, description)``: a context manager whose ``update(n)`` counts spectra trained on."""

    def __init__(self, ds, reading: tuple, noise_level: float, device, upstream, progress):
        self.layer, self.pooling, self.direction = reading
        self.noise_level, self.device, self.upstream, self.progress = noise_level, device, upstream, progress
        self.arrays = {s: ds[s].read() for s in SPLITS}
        self.y = {s: ds[s].params[list(LABELS)].reset_index(drop=True) for s in SPLITS}
        self.latent = upstream.latent(*reading)
        self.latent.name = "teacher"

    @functools.cached_property
    def teacher(self):
        return self.upstream.teacher().to(self.device).eval().requires_grad_(False)

    @functools.cached_property
    def no_error(self) -> tuple:
        """(the teacher without the sigma input, its train_teacher run id or None)."""
        model, run_id = self.upstream.no_error(self.teacher)
        return model.to(self.device).eval().requires_grad_(False), run_id

    @functools.cached_property
    def no_error_set(self) -> probe.FeatureSet:
        return probe.FeatureSet({s: self.teacher_latent(self.no_error[0], s) for s in SPLITS}, self.y,
                                "no_error_teacher")

    def teacher_latent(self, model, split, noise_level=None, sigma_error=None) -> np.ndarray:
        nl = self.noise_level if noise_level is None else noise_level
        return fixed_targets(model, ArraySpectra(*self.arrays[split]), split, nl, self.layer, self.pooling,
                             self.direction, self.device, sigma_error=sigma_error)

    def noisy(self, split, noise_level) -> np.ndarray:
        flux, error = self.arrays[split]
        return add_noise(flux, error, noise_level, noise_draw(split, range(len(flux)), flux.shape[1]))

    def noisy_and_sigma(self, split, noise_level) -> np.ndarray:
        """Noisy flux and the true sigma at ``noise_level`` side by side: a flux reader that sees sigma."""
        return np.hstack([self.noisy(split, noise_level), self.arrays[split][1] * np.float32(noise_level)])

    @functools.cached_property
    def raw(self) -> probe.FeatureSet:
        return probe.FeatureSet({s: self.noisy(s, self.noise_level) for s in SPLITS}, self.y, "raw")

    @functools.cached_property
    def student(self) -> LoadedStudent | None:
        """The distill_student run given, or None."""
        return self.upstream.student(label_free=False)

    @functools.cached_property
    def label_free(self) -> LoadedStudent | None:
        """The student distilled without labels (3.3), or None."""
        return self.upstream.student(label_free=True)

    def student_latent(self, split, noise_level=None, student: LoadedStudent | None = None) -> np.ndarray:
        student = student or self.student
        noisy = self.noisy(split, self.noise_level if noise_level is None else noise_level)
        return student_latent(student.predictor, noisy, self.arrays[split][1], student.input, self.device)

    @functools.cached_property
    def student_set(self) -> probe.FeatureSet:
        return probe.FeatureSet({s: self.student_latent(s) for s in SPLITS}, self.y, "student")

    @functools.cached_property
    def label_free_set(self) -> probe.FeatureSet:
        return probe.FeatureSet({s: self.student_latent(s, student=self.label_free) for s in SPLITS}, self.y,
                                "label_free_student")

    def supervised_reader(self, label: str, seed: int):
        """k -> test predictions of the label-free student's architecture trained end to end on k labels
        (``lambda_z = 0``) with its training settings: the supervised network at the same labels."""
        student, p = self.label_free, self.label_free.params
        settings = DistillSettings(lambda_z=0.0, lambda_y=1.0, epochs=int(float(p["epochs"])),
                                   batch_size=int(float(p["batch_size"])), lr=float(p["lr"]),
                                   patience=int(float(p["patience"])), noise_level=self.noise_level,
                                   input=student.input, seed=seed)
        architecture = Architecture.of(student.predictor.student.config)
        y = {s: self.y[s][label].to_numpy(np.float64) for s in SPLITS}

        def read(k):
            rows = probe.subset_rows(len(y["train"]), k, seed)
            flux, error = self.arrays["train"]
            spectra = {"train": ArraySpectra(flux[rows], error[rows])} | {
                s: ArraySpectra(*self.arrays[s]) for s in ("val", "test")}
            torch.manual_seed(seed)
            labelled = y | {"train": y["train"][rows]}
            trainer = student_trainer(architecture, spectra, None, labelled, settings, self.device)
            with self.progress(settings.epochs * len(rows), f"supervised network, {len(rows)} labels") as bar:
                trainer.fit(bar.update)
            return trainer.predict("test")[1]
        return read
