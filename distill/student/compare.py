"""The student against its rivals: the same heads on z_s, z*, raw and denoised flux (Stages 2.2, 3.1, B),
per-bin tables, and inference speed against the teacher's encoder."""
import numpy as np
import pandas as pd
import torch

from .. import head_cache, intervals, metrics, probe
from ..data import SPLITS
from ..device import to_device
from ..thresholds import TEACHER_FRACTION
from . import verdicts
from .targets import throughput
from .train import DistillTrainer

SPEED_SPECTRA = 512  # test spectra timed, in batches of 256 (best of 3 passes)


def heads_per_set(sets: dict, y_frames: dict, labels, head_list, head_params: dict):
    """Yield ``(name, probe.fit_heads results)`` for each feature set; ``sets`` maps names to functions that build
    the features of every split, called one at a time (at most one full-size matrix in memory). Every set but the
    student's is the same in each student run on this data, so its heads come from ``head_cache``."""
    for name in list(sets):
        fit = probe.fit_heads if name == "student" else head_cache.fit_heads
        yield name, fit(probe.FeatureSet(sets.pop(name)(), y_frames, name), labels, head_list, head_params)


def trained_head(y_hat: dict, y: dict, label: str) -> probe.LabelResult:
    """The student's own head as a LabelResult, so it competes with Ridge and LightGBM."""
    return probe.LabelResult(label, None, dict(y_hat), metrics.split_scores({s: y[s] for s in SPLITS}, y_hat, label))


def headline(name: str, results: dict, label: str) -> tuple:
    """(head best on validation R^2, its scores keyed ``{name}_{split}_{metric}_{label}``)."""
    head, best = probe.best_on_val(results, label)
    return head, {f"{name}_{k}": v for k, v in best.scores.items()}


def bins_table(results: dict, names, head: str, label: str, y_test, frame_test: pd.DataFrame) -> pd.DataFrame:
    """Per log g / T_eff bin test R^2, MAE and bias of ``label`` for each feature set with one head."""
    parts = [metrics.per_bin(y_test, results[name][label, head].predictions["test"], frame_test[by], width, by)
             .assign(features=name, head=head)
             for name in names for by, width in metrics.BINS.items() if by in frame_test.columns]
    return pd.concat(parts, ignore_index=True)


def stage_3_1(results: dict, head_list, label: str, y_test, frame_test: pd.DataFrame) -> tuple:
    """Stage 3.1: the student against raw / denoised flux with the same head, overall (paired intervals of the
    differences) and per bin.

    Returns ({head: per-bin table}, the head judged (the student's best on validation), its (code, sentence))."""
    names = ["student"] + [b for b in ("raw", "denoised") if b in results]
    judged = max(head_list, key=lambda h: results["student"][label, h].scores[f"val_r2_{label}"])
    tables = {head: bins_table(results, names, head, label, y_test, frame_test) for head in head_list}
    test = {name: results[name][label, judged].predictions["test"] for name in names}
    vs = {name: intervals.delta(y_test, test["student"], test[name]) for name in names[1:]}
    overall = {name: results[name][label, judged].scores[f"test_r2_{label}"] for name in names}
    code, text = verdicts.end_to_end(vs, overall, tables[judged])
    return tables, judged, (code, f"{judged} head: {text}")


def headlines(results: dict, best_heads: dict, label: str, y_test) -> tuple:
    """Each feature set's test predictions with its head best on validation (the headline figures), as
    (``predictions/test.parquet``, what the report pairs across runs; {rival: Interval of student - rival test R^2},
    and 'teacher_0.9' for student - 0.9 x teacher, Stage 2.2)."""
    test = {name: results[name][label, best_heads[name, label]].predictions["test"] for name in results}
    vs = {name: intervals.delta(y_test, test["student"], p) for name, p in test.items() if name != "student"}
    if "teacher" in test:
        vs["teacher_0.9"] = intervals.delta(y_test, test["student"], test["teacher"], scale=TEACHER_FRACTION)
    frame = pd.DataFrame({"row": np.arange(len(y_test)), f"y_{label}": y_test}
                         | {f"{name}_{label}": p for name, p in test.items()})
    return frame, vs


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
                out[s][i:i + batch] = teacher.denoise(to_device(noisy, device),
                                                      to_device(sigma, device)).float().cpu().numpy()
    return out


def _speed_rows(trainer: DistillTrainer, split="test", batch=256) -> list:
    rows = min(len(trainer.spectra[split]), SPEED_SPECTRA)
    return [(i, min(i + batch, rows)) for i in range(0, rows, batch)]


def student_speed(trainer: DistillTrainer, split="test") -> float:
    """Spectra/s of the student encoder (inference) on (up to 512) spectra of ``split``."""
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


def speeds(trainer: DistillTrainer, teacher, layer: str, direction: str) -> dict:
    """Student inference spectra/s and, with a teacher, its encoder's on the same spectra and the speed-up."""
    out = {"student_spectra_per_second": student_speed(trainer)}
    if teacher is not None:
        teacher_speed = teacher_encoder_speed(teacher, trainer, layer, direction)
        out["teacher_encoder_spectra_per_second"] = teacher_speed
        out["speedup_vs_teacher_encoder"] = out["student_spectra_per_second"] / teacher_speed
        out["teacher_n_parameters"] = sum(p.numel() for p in teacher.parameters())
    return out
