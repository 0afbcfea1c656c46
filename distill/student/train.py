"""Distilling the teacher latent into a student.

Loss on standardised quantities (train statistics):
``lambda_z * mean ||z_s - z*||^2 + lambda_y * mean (y_hat - y)^2``; ``lambda_z = 0`` is the
fully supervised end-to-end network on flux (no teacher needed). The student sees a
fresh noise draw every epoch and each split's fixed draw (seed 42, split, row) when
evaluated. Targets z*: ``offline``, the fixed-draw latents (what ``extract`` stores);
``online``, recomputed by the frozen teacher on the same fresh draw the student sees
(``online(noisy, sigma) -> z*``). Spectra are read from their files in blocks of
``block_rows`` (blocks in random order, rows shuffled within a block), so memory does not
grow with the training set; ``ArraySpectra`` serves arrays already in memory.
"""
import copy
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.metrics import r2_score

from ..data import add_noise, noise_draw, shuffled_batches
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
    block_rows: int = 4096  # training spectra read from disk at a time


def latent_scores(z_s: np.ndarray, z_t: np.ndarray) -> dict:
    """MSE, per-dimension variance-normalised MSE and mean cosine similarity (standardised space)."""
    mse = ((z_s - z_t) ** 2).mean(0)
    var = np.maximum(z_t.var(0), 1e-12)
    cos = (z_s * z_t).sum(1) / np.maximum(np.linalg.norm(z_s, axis=1) * np.linalg.norm(z_t, axis=1), 1e-12)
    return {"latent_mse": float(mse.mean()), "latent_nmse": float((mse / var).mean()),
            "latent_cosine": float(cos.mean())}


def input_statistics(spectra, noise_level: float, block_rows: int) -> tuple:
    """Per-pixel (mean, std) of the noisy flux and (mean, std) of the error over ``spectra``, in one streamed pass.

    The noisy flux's variance is Var(flux) + noise_level^2 mean(error^2), the expectation over noise draws.
    """
    n, p = len(spectra), spectra.n_pixels
    sums = np.zeros((4, p))  # flux, flux^2, error, error^2
    for start in range(0, n, block_rows):
        flux, error = (np.asarray(a, dtype=np.float64) for a in spectra.read(start, min(start + block_rows, n)))
        sums += np.stack([flux.sum(0), (flux**2).sum(0), error.sum(0), (error**2).sum(0)])
    x_mean, x2, e_mean, e2 = sums / n
    x_std = np.sqrt(np.clip(x2 - x_mean**2, 0, None) + noise_level**2 * e2) + 1e-12
    e_std = np.sqrt(np.clip(e2 - e_mean**2, 0, None)) + 1e-12
    return tuple(a.astype(np.float32) for a in (x_mean, x_std, e_mean, e_std))


class DistillTrainer:
    """Fit ``student`` on a split dict of spectra (``SpectrumFile`` or ``ArraySpectra``), fixed-draw targets
    z* (N, D) or None, and y (N,) per split; y is None when ``lambda_y`` is 0, so a label-free student never
    holds a label (its head stays untrained and validation selects on the latent loss alone).

    ``online``: a callable (noisy, sigma) tensors -> z* (B, D) for the training batches.
    """

    def __init__(self, student: Student, spectra: dict, z: dict | None, y: dict, settings: DistillSettings,
                 device, online=None):
        self.student, self.s, self.device, self.online = student.to(device), settings, device, online
        if y is None and settings.lambda_y > 0:
            raise ValueError(f"lambda_y = {settings.lambda_y:g} needs labels")
        self.spectra, self.y = spectra, y
        self.x_mean, self.x_std, self.e_mean, self.e_std = input_statistics(spectra["train"], settings.noise_level,
                                                                            settings.block_rows)
        self.z_mean = z["train"].mean(0) if z else None
        self.z_std = z["train"].std(0) + 1e-12 if z else None
        self.z = {s: self.standardise_z(v) for s, v in z.items()} if z else None
        self.y_mean, self.y_std = (float(y["train"].mean()), float(y["train"].std()) or 1.0) if y else (0.0, 1.0)
        self.optimizer = torch.optim.AdamW(student.parameters(), lr=settings.lr)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, factor=0.5, patience=2)
        self.epoch, self.history, self.best_val, self.best_state = 0, [], np.inf, None
        self.teacher_seconds = 0.0

    def standardise_z(self, z: np.ndarray) -> np.ndarray:
        return ((z - self.z_mean) / self.z_std).astype(np.float32)

    def inputs(self, noisy, error):
        x = torch.as_tensor((noisy - self.x_mean) / self.x_std, device=self.device)
        e = torch.as_tensor((error - self.e_mean) / self.e_std, device=self.device)
        return student_inputs(x, e, self.s.input)

    def _loss(self, z_s, y_hat, y, z_t):
        loss = torch.zeros((), device=self.device)
        if self.s.lambda_y > 0:
            y = torch.as_tensor((y - self.y_mean) / self.y_std, dtype=torch.float32, device=self.device)
            loss = loss + self.s.lambda_y * ((y_hat[:, 0] - y) ** 2).mean()
        if self.s.lambda_z > 0:
            loss = loss + self.s.lambda_z * ((z_s - torch.as_tensor(z_t, device=self.device)) ** 2).mean()
        return loss

    def _online_targets(self, noisy, error):
        t = time.perf_counter()
        sigma = error * np.float32(self.s.noise_level)
        z = self.online(torch.as_tensor(noisy, device=self.device), torch.as_tensor(sigma, device=self.device))
        self.teacher_seconds += time.perf_counter() - t
        return self.standardise_z(z)

    def train_epoch(self, progress=None) -> float:
        self.student.train()
        rng = np.random.default_rng([self.s.seed, self.epoch])
        torch.manual_seed(int(rng.integers(2**31)))  # dropout too depends only on (seed, epoch): resuming is exact
        total, seen = 0.0, 0
        for rows, flux, error in shuffled_batches(self.spectra["train"], self.s.batch_size, self.s.block_rows, rng):
            noisy = add_noise(flux, error, self.s.noise_level, rng.standard_normal(flux.shape, dtype=np.float32))
            z_t = None
            if self.s.lambda_z > 0:
                z_t = self._online_targets(noisy, error) if self.online else self.z["train"][rows]
            z_s, y_hat = self.student(self.inputs(noisy, error))
            loss = self._loss(z_s, y_hat, self.y and self.y["train"][rows], z_t)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach() * len(rows)  # no host sync per step
            seen += len(rows)
            if progress:
                progress(len(rows))
        return float(total) / max(seen, 1)

    def fixed_batch(self, split, start, stop) -> tuple:
        """(noisy flux, error) of the split's rows start:stop at its fixed draw (the one ``extract`` and the probes
        use)."""
        flux, error = self.spectra[split].read(start, stop)
        return add_noise(flux, error, self.s.noise_level, noise_draw(split, range(start, stop), flux.shape[1])), error

    @torch.no_grad()
    def predict(self, split, batch_size=512) -> tuple:
        """(z_s standardised (N, D), y_hat in label units (N,)) at the split's fixed noise."""
        self.student.eval()
        zs, ys = [], []
        for i in range(0, len(self.spectra[split]), batch_size):
            z_s, y_hat = self.student(self.inputs(*self.fixed_batch(split, i,
                                                                    min(i + batch_size, len(self.spectra[split])))))
            zs.append(z_s.cpu().numpy())
            ys.append(y_hat[:, 0].cpu().numpy() * self.y_std + self.y_mean)
        return np.concatenate(zs), np.concatenate(ys)

    def evaluate(self, split) -> dict:
        """Loss, trained-head R^2 and (with targets) latent MSE / NMSE / cosine at the split's fixed noise."""
        z_s, y_hat = self.predict(split)
        out = {f"{split}_head_r2": float(r2_score(self.y[split], y_hat))} if self.y else {}
        if self.z is not None:
            out |= {f"{split}_{k}": v for k, v in latent_scores(z_s, self.z[split]).items()}
        with torch.no_grad():
            z = torch.as_tensor(z_s, device=self.device)
            z_t = self.z[split] if self.z is not None else None
            out[f"{split}_loss"] = float(self._loss(z, self.student.head(z), self.y and self.y[split], z_t))
        return out

    def step(self, progress=None) -> dict:
        """One epoch, validation, LR schedule and best-weights bookkeeping."""
        train_loss = self.train_epoch(progress)
        val = self.evaluate("val")  # per-epoch copies as epoch_*: the final keys belong to the best weights
        metrics = {"train_loss": train_loss, "val_loss": val.pop("val_loss"),
                   **{f"epoch_{k}": v for k, v in val.items()}}
        self.scheduler.step(metrics["val_loss"])
        metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        self.epoch += 1
        self.history.append(metrics)
        if metrics["val_loss"] < self.best_val:
            self.best_val, self.best_state = metrics["val_loss"], copy.deepcopy(self.student.state_dict())
        return metrics

    def stopped_early(self) -> bool:
        best_epoch = int(np.argmin([h["val_loss"] for h in self.history])) if self.history else 0
        return bool(self.history) and self.epoch - 1 - best_epoch >= self.s.patience

    def fit(self, progress=None, on_epoch=None) -> list:
        """Train until ``epochs`` or ``patience`` epochs without validation improvement; keep the best weights.

        ``progress(n)`` after each batch; ``on_epoch(metrics)`` after each epoch.
        """
        while self.epoch < self.s.epochs and not self.stopped_early():
            metrics = self.step(progress)
            if on_epoch:
                on_epoch(metrics)
        if self.best_state is not None:
            self.student.load_state_dict(self.best_state)
        return self.history

    def checkpoint(self) -> dict:
        """Everything needed to continue: weights, optimiser, schedule, history, best weights, settings."""
        return {"model": self.student.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "settings": asdict(self.s),
                "state": {"epoch": self.epoch, "history": self.history, "best_val": self.best_val,
                          "best_model": self.best_state}}

    def restore(self, ckpt: dict):
        self.student.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        state = ckpt["state"]
        self.epoch, self.history = state["epoch"], state["history"]
        self.best_val, self.best_state = state["best_val"], state["best_model"]
