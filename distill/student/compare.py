"""The student against its rivals: the same heads on z_s, z*, raw and denoised flux (Stages 2.2, 3.1, B),
per-bin tables, and inference speed against the teacher's encoder."""
import numpy as np
import pandas as pd
import torch

from .. import metrics, probe
from ..data import SPLITS
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
    """Each split's noisy flux at its fixed draw: the raw-flux baseline's features."""
    return {s: np.concatenate([trainer.fixed_noisy(s, i, min(i + chunk, len(trainer.flux[s])))
                               for i in range(0, len(trainer.flux[s]), chunk)]) for s in SPLITS}


def denoise_splits(teacher, trainer: DistillTrainer, device, batch=256) -> dict:
    """The teacher's denoised flux of each split at its fixed draw."""
    out = {}
    for s in SPLITS:
        parts = []
        for i in range(0, len(trainer.flux[s]), batch):
            stop = min(i + batch, len(trainer.flux[s]))
            noisy = torch.as_tensor(trainer.fixed_noisy(s, i, stop), device=device)
            sigma = torch.as_tensor(trainer.error[s][i:stop] * np.float32(trainer.s.noise_level), device=device)
            with torch.inference_mode():
                parts.append(teacher.denoise(noisy, sigma).float().cpu().numpy())
        out[s] = np.concatenate(parts)
    return out


def _speed_rows(trainer: DistillTrainer, split="test", batch=256) -> list:
    rows = min(len(trainer.flux[split]), SPEED_SPECTRA)
    return [(i, min(i + batch, rows)) for i in range(0, rows, batch)]


def student_speed(trainer: DistillTrainer, split="test") -> float:
    """Spectra/s of the student encoder (inference) on (up to 1,024) spectra of ``split``."""
    trainer.student.eval()
    batches = [trainer.inputs(trainer.fixed_noisy(split, a, b), trainer.error[split][a:b]) for a, b in _speed_rows(trainer, split)]
    return throughput(trainer.student.encoder, batches)


def teacher_encoder_speed(teacher, trainer: DistillTrainer, layer: str, direction: str) -> float:
    """Spectra/s of the teacher's encoder up to ``layer`` (what extraction runs) on the same spectra."""
    device = next(teacher.parameters()).device
    nl = np.float32(trainer.s.noise_level)
    batches = [torch.stack([torch.as_tensor(trainer.fixed_noisy("test", a, b)),
                            torch.as_tensor(trainer.error["test"][a:b] * nl)], 1).to(device) for a, b in _speed_rows(trainer)]
    return throughput(lambda x: teacher.feature_halves(x[:, 0], x[:, 1], layer.split("+"), direction), batches)
