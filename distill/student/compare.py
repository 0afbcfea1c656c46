"""The student against its rivals: the same heads on z_s, z*, raw and denoised flux (Stages 2.2, 3.1, B),
per-bin tables, and inference speed against the teacher's encoder."""
import numpy as np
import pandas as pd
import torch

from .. import metrics, probe
from ..data import SPLITS
from ..device import to_device
from .targets import throughput
from .train import DistillTrainer

SPEED_SPECTRA = 1024  # test spectra timed, in batches of 256


def fit_heads(fs: probe.FeatureSet, labels, head_list, head_params) -> dict:
    """{(label, head): LabelResult} for every label and head on one feature set."""
    return {(label, head): probe.fit_label(fs, label, head, **head_params) for label in labels for head in head_list}


def trained_head(y_hat: dict, y: dict, label: str) -> probe.LabelResult:
    """The student's own head as a LabelResult, so it competes with Ridge and LightGBM."""
    scores = {}
    for s in SPLITS:
        scores |= metrics.keyed(s, label, metrics.scores(y[s], y_hat[s]))
    return probe.LabelResult(label, None, dict(y_hat), scores)


def headline(name: str, results: dict, label: str) -> tuple:
    """(head best on validation R^2, its scores keyed ``{name}_{split}_{metric}_{label}``)."""
    head, best = max(((h, r) for (lb, h), r in results.items() if lb == label), key=lambda hr: hr[1].scores[f"val_r2_{label}"])
    return head, {f"{name}_{k}": v for k, v in best.scores.items()}


def bins_table(results: dict, names, head: str, label: str, y_test, frame_test: pd.DataFrame) -> pd.DataFrame:
    """Per log g / T_eff bin test R^2, MAE and bias of ``label`` for each feature set with one head."""
    parts = [metrics.per_bin(y_test, results[name][label, head].predictions["test"], frame_test[by], width, by)
             .assign(features=name, head=head)
             for name in names for by, width in metrics.BINS.items() if by in frame_test.columns]
    return pd.concat(parts, ignore_index=True)


def fixed_noisy_splits(trainer: DistillTrainer, chunk=4096) -> dict:
    """Each split's noisy flux at its fixed draw: the raw-flux baseline's features (the one full copy)."""
    out = {}
    for s in SPLITS:
        n = len(trainer.spectra[s])
        out[s] = np.empty((n, trainer.spectra[s].n_pixels), dtype=np.float32)
        for i in range(0, n, chunk):
            out[s][i:i + chunk] = trainer.fixed_batch(s, i, min(i + chunk, n))[0]
    return out


def denoise_splits(teacher, trainer: DistillTrainer, device, batch=256) -> dict:
    """The teacher's denoised flux of each split at its fixed draw."""
    out = {}
    for s in SPLITS:
        n = len(trainer.spectra[s])
        out[s] = np.empty((n, trainer.spectra[s].n_pixels), dtype=np.float32)
        for i in range(0, n, batch):
            noisy, error = trainer.fixed_batch(s, i, min(i + batch, n))
            sigma = error * np.float32(trainer.s.noise_level)
            with torch.inference_mode():
                out[s][i:i + batch] = teacher.denoise(to_device(noisy, device), to_device(sigma, device)).float().cpu().numpy()
    return out


def _speed_rows(trainer: DistillTrainer, split="test", batch=256) -> list:
    rows = min(len(trainer.spectra[split]), SPEED_SPECTRA)
    return [(i, min(i + batch, rows)) for i in range(0, rows, batch)]


def student_speed(trainer: DistillTrainer, split="test") -> float:
    """Spectra/s of the student encoder (inference) on (up to 1,024) spectra of ``split``."""
    trainer.student.eval()
    batches = [trainer.inputs(*trainer.fixed_batch(split, a, b)) for a, b in _speed_rows(trainer, split)]
    return throughput(trainer.student.encoder, batches)


def teacher_encoder_speed(teacher, trainer: DistillTrainer, layer: str, direction: str) -> float:
    """Spectra/s of the teacher's encoder up to ``layer`` (what extraction runs) on the same spectra."""
    device = next(teacher.parameters()).device
    nl = np.float32(trainer.s.noise_level)
    batches = []
    for a, b in _speed_rows(trainer):
        noisy, error = trainer.fixed_batch("test", a, b)
        batches.append(torch.stack([torch.as_tensor(noisy), torch.as_tensor(error * nl)], 1).to(device))
    return throughput(lambda x: teacher.feature_halves(x[:, 0], x[:, 1], layer.split("+"), direction), batches)
