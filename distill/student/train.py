"""Distilling the teacher latent into a student (offline targets: one fixed noise draw per spectrum).

Loss on standardised quantities (train statistics):
``lambda_z * mean ||z_s - z*||^2 + lambda_y * mean (y_hat - y)^2``; ``lambda_z = 0`` is the
fully supervised end-to-end network on flux (no teacher needed). The student sees a
fresh noise draw every epoch and a fixed one (seed 42) on validation and test.
Arrays are held in memory (float32): fine to ~100k x 4096 in 24 GiB.
"""
import copy
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import r2_score

from ..data import add_noise, noise_draw
from .model import Student, student_inputs


@dataclass
class DistillSettings:
    lambda_z: float = 1.0
    lambda_y: float = 1.0
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-4
    noise_level: float = 1.0
    input: str = "flux"
    patience: int = 5
    seed: int = 42


def latent_scores(z_s: np.ndarray, z_t: np.ndarray) -> dict:
    """MSE, per-dimension variance-normalised MSE and mean cosine similarity (standardised space)."""
    mse = ((z_s - z_t) ** 2).mean(0)
    var = np.maximum(z_t.var(0), 1e-12)
    cos = (z_s * z_t).sum(1) / np.maximum(np.linalg.norm(z_s, axis=1) * np.linalg.norm(z_t, axis=1), 1e-12)
    return {"latent_mse": float(mse.mean()), "latent_nmse": float((mse / var).mean()), "latent_cosine": float(cos.mean())}


class DistillTrainer:
    """Fit ``student`` on split dicts of flux, error (N, P), standardised-on-train targets z* (N, D) and y (N,)."""

    def __init__(self, student: Student, flux: dict, error: dict, z: dict | None, y: dict, settings: DistillSettings, device):
        self.student, self.s, self.device = student.to(device), settings, device
        self.flux, self.error = flux, error
        nl = np.float32(settings.noise_level)
        self.x_mean = flux["train"].mean(0)
        self.x_std = np.sqrt(flux["train"].var(0) + nl**2 * (error["train"] ** 2).mean(0)) + 1e-12
        self.e_mean, self.e_std = error["train"].mean(0), error["train"].std(0) + 1e-12
        self.z_mean = z["train"].mean(0) if z else None
        self.z_std = z["train"].std(0) + 1e-12 if z else None
        self.z = {s: (v - self.z_mean) / self.z_std for s, v in z.items()} if z else None
        self.y_mean, self.y_std = float(y["train"].mean()), float(y["train"].std()) or 1.0
        self.y = y
        self.fixed = {s: noise_draw(s, range(len(flux[s])), flux[s].shape[1]) for s in flux if s != "train"}
        self.optimizer = torch.optim.AdamW(student.parameters(), lr=settings.lr)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, factor=0.5, patience=2)
        self.epoch, self.history, self.best_val, self.best_state = 0, [], np.inf, None

    def _inputs(self, flux, error, z_noise):
        noisy = add_noise(flux, error, self.s.noise_level, z_noise)
        x = torch.as_tensor((noisy - self.x_mean) / self.x_std, device=self.device)
        e = torch.as_tensor((error - self.e_mean) / self.e_std, device=self.device)
        return student_inputs(x, e, self.s.input)

    def _loss(self, z_s, y_hat, rows, split):
        y = torch.as_tensor((self.y[split][rows] - self.y_mean) / self.y_std, dtype=torch.float32, device=self.device)
        loss = self.s.lambda_y * ((y_hat[:, 0] - y) ** 2).mean()
        if self.s.lambda_z > 0:
            z_t = torch.as_tensor(self.z[split][rows], dtype=torch.float32, device=self.device)
            loss = loss + self.s.lambda_z * ((z_s - z_t) ** 2).mean()
        return loss

    def train_epoch(self) -> float:
        self.student.train()
        rng = np.random.default_rng([self.s.seed, self.epoch])
        n = len(self.flux["train"])
        total = 0.0
        for rows in np.array_split(rng.permutation(n), max(1, n // self.s.batch_size)):
            rows = np.sort(rows)
            z_noise = rng.standard_normal((len(rows), self.flux["train"].shape[1]), dtype=np.float32)
            z_s, y_hat = self.student(self._inputs(self.flux["train"][rows], self.error["train"][rows], z_noise))
            loss = self._loss(z_s, y_hat, rows, "train")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(rows)
        return total / n

    @torch.no_grad()
    def predict(self, split, batch_size=512) -> tuple:
        """(z_s standardised (N, D), y_hat in label units (N,)) at the split's fixed noise."""
        self.student.eval()
        zs, ys = [], []
        for i in range(0, len(self.flux[split]), batch_size):
            sl = slice(i, i + batch_size)
            z_s, y_hat = self.student(self._inputs(self.flux[split][sl], self.error[split][sl], self.fixed[split][sl]))
            zs.append(z_s.cpu().numpy())
            ys.append(y_hat[:, 0].cpu().numpy() * self.y_std + self.y_mean)
        return np.concatenate(zs), np.concatenate(ys)

    def evaluate(self, split) -> dict:
        z_s, y_hat = self.predict(split)
        out = {f"{split}_head_r2": float(r2_score(self.y[split], y_hat))}
        if self.z is not None:
            out |= {f"{split}_{k}": v for k, v in latent_scores(z_s, self.z[split]).items()}
        rows = np.arange(len(z_s))
        with torch.no_grad():
            z_t = torch.as_tensor(z_s)
            out[f"{split}_loss"] = float(self._loss(z_t, self.student.head(z_t), rows, split))
        return out

    def step(self) -> dict:
        """One epoch, validation, LR schedule and best-weights bookkeeping."""
        metrics = {"train_loss": self.train_epoch(), **self.evaluate("val")}
        self.scheduler.step(metrics["val_loss"])
        self.epoch += 1
        self.history.append(metrics)
        if metrics["val_loss"] < self.best_val:
            self.best_val, self.best_state = metrics["val_loss"], copy.deepcopy(self.student.state_dict())
        return metrics

    def fit(self, progress=None) -> list:
        """Train until ``epochs`` or ``patience`` epochs without validation improvement; keep the best weights."""
        while self.epoch < self.s.epochs:
            metrics = self.step()
            if progress:
                progress(metrics)
            best_epoch = int(np.argmin([h["val_loss"] for h in self.history]))
            if self.epoch - 1 - best_epoch >= self.s.patience:
                break
        self.student.load_state_dict(self.best_state)
        return self.history
