"""Training the blind-spot teacher on a dataset split, with checkpoints that resume.

Losses (mu, s: network outputs; sigma = error * noise_level; var = s^2 + sigma^2):

- ``self_supervised``: Gaussian negative log-likelihood of the noisy flux given
  mu and var; needs no clean flux (Laine et al. 2019, eq. 4).
- ``supervised``: Laplace negative log-likelihood of the clean flux given the
  posterior-mean denoised flux and variance var (scale b = sqrt(var / 2)); the
  reference model was trained this way.

Fresh noise for every training batch (seeded per epoch, so a resumed run draws the
same), fixed noise (seed 42) for validation.
"""
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..data import SpectrumFile, add_noise, noise_draw, shuffled_batches
from ..device import prefetch, to_device
from ..errors import DistillError
from .model import BlindSpotUNet1D

LOSSES = ("self_supervised", "supervised")
CA_TRIPLET = (8475.0, 8680.0)  # A


@dataclass
class TrainSettings:
    loss: str = "self_supervised"
    noise_level: float = 1.0
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 42
    block_rows: int = 4096  # rows read from disk at a time (bounded memory)
    max_val: int = 1000  # validation spectra scored each epoch


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    best_val: float = math.inf
    history: list = field(default_factory=list)
    best_model: dict | None = None  # weights of the epoch with the lowest validation loss
    seconds: float = 0.0  # training time so far: CPU seconds of this process on a CPU, wall seconds on a GPU


def loss_fn(kind, mu, s, noisy, sigma, clean=None):
    var = s**2 + sigma**2 + 1e-12
    if kind == "self_supervised":
        return 0.5 * (torch.log(var) + (noisy - mu) ** 2 / var).mean()
    denoised = (s**2 * noisy + sigma**2 * mu) / var
    b = torch.sqrt(var / 2)
    return (torch.log(2 * b) + (clean - denoised).abs() / b).mean()


def snr(estimate, clean, window=None):
    """Median over spectra of median(clean) / rms(estimate - clean), optionally in a pixel window."""
    if window is not None:
        estimate, clean = estimate[:, window], clean[:, window]
    rms = np.sqrt(((estimate - clean) ** 2).mean(1))
    return float(np.median(np.median(clean, 1) / np.maximum(rms, 1e-30)))


class TeacherTrainer:
    """Fit a BlindSpotUNet1D on ``train`` with validation on ``val``; one epoch at a time."""

    def __init__(self, model: BlindSpotUNet1D, train: SpectrumFile, val: SpectrumFile, settings: TrainSettings, device):
        if settings.loss not in LOSSES:
            raise DistillError(f"loss={settings.loss!r}: choose one of {', '.join(LOSSES)}")
        if len(train) < 2:
            raise DistillError("the training split needs at least 2 spectra")
        self.model, self.train, self.val, self.s, self.device = model.to(device), train, val, settings, device
        self.optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, factor=0.5, patience=2)
        self.state = TrainState()
        n_val = min(len(val), settings.max_val)
        flux, error = val.read(0, n_val)
        z = noise_draw("val", range(n_val), val.n_pixels)
        self.val_data = (flux, error, add_noise(flux, error, settings.noise_level, z))
        self.ca_window = (val.wave >= CA_TRIPLET[0]) & (val.wave <= CA_TRIPLET[1])

    def _tensor(self, a):
        return to_device(a, self.device)

    def _noisy_batches(self, rng):
        """(clean, noisy, sigma) training batches, fresh noise from ``rng``."""
        for _, flux, error in shuffled_batches(self.train, self.s.batch_size, self.s.block_rows, rng):
            yield flux, add_noise(flux, error, self.s.noise_level, rng=rng), error * np.float32(self.s.noise_level)

    def train_epoch(self, progress=None) -> float:
        self.model.train()
        epoch = self.state.epoch
        rng = np.random.default_rng([self.s.seed, epoch])
        total, count = 0.0, 0
        for flux, noisy, sigma in prefetch(self._noisy_batches(rng)):
            flux_t, noisy_t, sigma_t = self._tensor(flux), self._tensor(noisy), self._tensor(sigma)
            mu, s = self.model(self.model.inputs(noisy_t, sigma_t)).unbind(1)
            loss = loss_fn(self.s.loss, mu, s, noisy_t, sigma_t, flux_t)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach() * len(flux)  # no host sync per step
            count += len(flux)
            if progress:
                progress(len(flux))
        return float(total) / count

    @torch.no_grad()
    def predict(self, noisy, error, batch_size=64):
        """Denoised flux and the loss terms on arrays (eval mode, batched)."""
        self.model.eval()
        out, mus, ss = [], [], []
        for i in range(0, len(noisy), batch_size):
            noisy_t = self._tensor(noisy[i:i + batch_size])
            sigma_t = self._tensor(error[i:i + batch_size] * np.float32(self.s.noise_level))
            mu, s = self.model(self.model.inputs(noisy_t, sigma_t)).unbind(1)
            out.append(((s**2 * noisy_t + sigma_t**2 * mu) / (s**2 + sigma_t**2)).cpu().numpy())
            mus.append(mu.cpu().numpy())
            ss.append(s.cpu().numpy())
        return np.concatenate(out), np.concatenate(mus), np.concatenate(ss)

    def validate(self) -> dict:
        flux, error, noisy = self.val_data
        denoised, mu, s = self.predict(noisy, error)
        sigma = error * np.float32(self.s.noise_level)
        loss = loss_fn(self.s.loss, *(torch.as_tensor(a) for a in (mu, s, noisy, sigma, flux))).item()
        return {
            "val_loss": loss,
            "val_mse_noisy": float(((noisy - flux) ** 2).mean()),
            "val_mse_denoised": float(((denoised - flux) ** 2).mean()),
            "val_snr_noisy": snr(noisy, flux),
            "val_snr_denoised": snr(denoised, flux),
            "val_snr_noisy_ca_triplet": snr(noisy, flux, self.ca_window),
            "val_snr_denoised_ca_triplet": snr(denoised, flux, self.ca_window),
        }

    def _clock(self) -> float:
        return time.process_time() if torch.device(self.device).type == "cpu" else time.time()

    def step(self, progress=None) -> tuple:
        """Train one epoch and validate; returns (metrics, improved). Metrics include the cumulative
        ``spectra_seen`` and ``train_seconds`` (see ``TrainState.seconds``)."""
        t = self._clock()
        train_loss = self.train_epoch(progress)
        self.state.seconds += self._clock() - t
        metrics = {"train_loss": train_loss, **self.validate(), "lr": self.optimizer.param_groups[0]["lr"],
                   "spectra_seen": (self.state.epoch + 1) * len(self.train), "train_seconds": self.state.seconds}
        self.scheduler.step(metrics["val_loss"])
        self.state.epoch += 1
        self.state.history.append(metrics)
        improved = metrics["val_loss"] < self.state.best_val
        if improved:
            self.state.best_val = metrics["val_loss"]
            self.state.best_model = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        return metrics, improved

    # ----- resumable checkpoints -------------------------------------------------------------
    def checkpoint(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "state": asdict(self.state),
                "config": self.model.config.as_dict(), "settings": asdict(self.s)}

    def restore(self, ckpt: dict):
        if ckpt.get("config") != self.model.config.as_dict():
            raise DistillError(f"checkpoint architecture {ckpt.get('config')} differs from "
                               f"{self.model.config.as_dict()}")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.state = TrainState(**ckpt["state"])
