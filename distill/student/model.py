"""Student encoders S(noisy [, error]) -> z_s, the size of the teacher latent, plus a small head z_s -> y.

- ``mlp``: the research plan's reference, flattened input -> hidden widths (default
  1024, 1024, 512) with GELU and dropout 0.1 -> latent.
- ``cnn``: a compact 1D convolutional encoder: a 16-pixel patch stem and strided
  stages (4096 -> 4 positions) with few channels (``hidden`` sets them, default
  32, 32, 64, 64), then a linear map to the latent: 44x fewer weights than the MLP
  for a 384-d latent and faster on a CPU (bench/student_benchmark.py).
- ``starnet``: StarNet (Fabbro et al. 2018, MNRAS 475, 2978), the CNN peer's network: two convolutions (4 and 16
  filters of 8 pixels, ReLU), max-pooling by 4, dense layers (``hidden``, default 256, 128) with ReLU, then dropout
  and a linear map to the latent. ``starnet_body`` builds it for the peer (``distill/peers/cnn.py``) too, so the
  distilled StarNet and the supervised one differ only in the loss.
"""
import numpy as np
import torch
from torch import nn

STUDENTS = ("mlp", "cnn", "starnet")
INPUTS = ("flux", "flux+error")
HEADS = ("linear", "mlp")
DEFAULT_HIDDEN = {"mlp": (1024, 1024, 512), "cnn": (32, 32, 64, 64), "starnet": (256, 128)}  # widths / channels


class MLPStudent(nn.Module):
    def __init__(self, in_channels: int, n_pixels: int, out_dim: int, hidden=(1024, 1024, 512), dropout=0.1):
        super().__init__()
        widths = [in_channels * n_pixels, *hidden]
        layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.GELU(), nn.Dropout(dropout)]
        self.body = nn.Sequential(nn.Flatten(), *layers, nn.Linear(widths[-1], out_dim))

    def forward(self, x):
        return self.body(x)


class CNNStudent(nn.Module):
    """Patch stem (non-overlapping 16-pixel patches, ~7 A: a few line widths) then stages of a kernel-5,
    stride-2 convolution and 2x max-pooling, then a linear map of the flattened (C, L) map to the latent."""

    PATCH = 16

    def __init__(self, in_channels: int, n_pixels: int, out_dim: int, channels=(32, 32, 64, 64), dropout=0.1):
        super().__init__()
        length = n_pixels // self.PATCH // 4 ** (len(channels) - 1)
        if length < 1:
            raise ValueError(f"{len(channels)} stages shrink {n_pixels} pixels to nothing; use fewer channels entries")
        layers = [nn.Conv1d(in_channels, channels[0], self.PATCH, stride=self.PATCH), nn.GELU()]
        for c_in, c in zip(channels[:-1], channels[1:]):  # each stage: 4x shorter
            layers += [nn.Conv1d(c_in, c, 5, stride=2, padding=2), nn.GELU(), nn.MaxPool1d(2)]
        self.features = nn.Sequential(*layers)
        self.out = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels[-1] * length, out_dim))

    def forward(self, x):
        return self.out(self.features(x))


def starnet_body(in_channels: int, n_pixels: int, dense=(256, 128), filters=(4, 16), kernel: int = 8,
                 pool: int = 4) -> nn.Sequential:
    """StarNet up to its last dense layer: (B, in_channels, P) -> (B, dense[-1]). Unpadded convolutions (``filters``,
    ``kernel``, ReLU), max-pooling by ``pool``, then the flattened map through the ``dense`` widths with ReLU."""
    length = (n_pixels - len(filters) * (kernel - 1)) // pool
    if length < 1:
        raise ValueError(f"{n_pixels} pixels are too few for StarNet's convolutions")
    convs, c_in = [], in_channels
    for c in filters:
        convs += [nn.Conv1d(c_in, c, kernel), nn.ReLU()]
        c_in = c
    widths = [c_in * length, *dense]
    fcs = [layer for a, b in zip(widths[:-1], widths[1:]) for layer in (nn.Linear(a, b), nn.ReLU())]
    return nn.Sequential(*convs, nn.MaxPool1d(pool), nn.Flatten(), *fcs)


class StarNetStudent(nn.Module):
    """StarNet's layers (``starnet_body``), then dropout and a linear map of its last dense layer to the latent."""

    def __init__(self, in_channels: int, n_pixels: int, out_dim: int, dense=(256, 128), dropout=0.1):
        super().__init__()
        self.features = starnet_body(in_channels, n_pixels, dense)
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(dense[-1], out_dim))

    def forward(self, x):
        return self.out(self.features(x))


ENCODERS = {"mlp": MLPStudent, "cnn": CNNStudent, "starnet": StarNetStudent}


class Student(nn.Module):
    """An encoder to the latent size and a head from z_s to the targets: ``linear`` (default) or ``mlp``
    (one hidden layer of 64 with GELU)."""

    def __init__(self, kind: str, in_channels: int, n_pixels: int, latent_dim: int, n_targets: int = 1, hidden=None,
                 dropout=0.1, head="linear"):
        super().__init__()
        if kind not in STUDENTS:
            raise ValueError(f"unknown student {kind!r}; valid: {', '.join(STUDENTS)}")
        if head not in HEADS:
            raise ValueError(f"unknown student head {head!r}; valid: {', '.join(HEADS)}")
        hidden = tuple(hidden or DEFAULT_HIDDEN[kind])
        self.config = dict(kind=kind, in_channels=in_channels, n_pixels=n_pixels, latent_dim=latent_dim,
                           n_targets=n_targets, hidden=list(hidden), dropout=dropout, head=head)  # rebuilds it
        self.encoder = ENCODERS[kind](in_channels, n_pixels, latent_dim, hidden, dropout)
        self.head = (nn.Linear(latent_dim, n_targets) if head == "linear"
                     else nn.Sequential(nn.Linear(latent_dim, 64), nn.GELU(), nn.Linear(64, n_targets)))

    def forward(self, x):
        """x (B, in_channels, P) -> (z_s (B, latent_dim), y_hat (B, n_targets))."""
        z = self.encoder(x)
        return z, self.head(z)


def student_inputs(noisy: torch.Tensor, error: torch.Tensor, kind: str) -> torch.Tensor:
    """(B, P) noisy flux [and error] -> (B, C, P); ``flux+error`` is the Stage 2.3 "student-plus"."""
    if kind not in INPUTS:
        raise ValueError(f"unknown input {kind!r}; valid: {', '.join(INPUTS)}")
    return torch.stack([noisy, error] if kind == "flux+error" else [noisy], dim=1)


class StudentPredictor(nn.Module):
    """The logged model: raw noisy flux [and error] (B, C, P) -> (B, 1 + D): the target in its
    unit, then z_s (standardised latent). Input standardisation travels inside as buffers."""

    def __init__(self, student: Student, x_mean, x_std, e_mean, e_std, y_mean: float, y_std: float):
        super().__init__()
        self.student = student
        for name, value in dict(x_mean=x_mean, x_std=x_std, e_mean=e_mean, e_std=e_std).items():
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32))
        self.y_mean, self.y_std = float(y_mean), float(y_std)

    def forward(self, x):
        scaled = [(x[:, 0] - self.x_mean) / self.x_std]
        if x.shape[1] == 2:
            scaled.append((x[:, 1] - self.e_mean) / self.e_std)
        z, y = self.student(torch.stack(scaled, dim=1))
        return torch.cat([y * self.y_std + self.y_mean, z], dim=1)


def save_predictor(predictor: StudentPredictor, path):
    """Write the predictor as plain tensors and numbers (its architecture and weights), loadable with
    ``weights_only=True``: nothing in the file can run code."""
    torch.save({"config": predictor.student.config, "y_mean": predictor.y_mean, "y_std": predictor.y_std,
                "state_dict": predictor.state_dict()}, path)


def load_predictor(path, map_location="cpu") -> StudentPredictor:
    """The predictor written by ``save_predictor``; never unpickles objects."""
    saved = torch.load(path, map_location=map_location, weights_only=True)
    try:
        cfg = saved["config"]
        student = Student(**cfg)
        shapes = {k: v.shape for k, v in saved["state_dict"].items() if k.endswith("_mean") or k.endswith("_std")}
        predictor = StudentPredictor(student, *(torch.zeros(shapes[k]) for k in ("x_mean", "x_std", "e_mean", "e_std")),
                                     saved["y_mean"], saved["y_std"])
        predictor.load_state_dict(saved["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        raise ValueError(f"{path}: not a student predictor file ({why})") from None
    return predictor.to(map_location).eval()


@torch.inference_mode()
def student_latent(predictor: StudentPredictor, noisy, error, kind: str, device, batch=512):
    """z_s (n, D) of raw noisy flux [and error] (n, P) arrays, in batches."""
    out = []
    for i in range(0, len(noisy), batch):
        channels = [noisy[i:i + batch]] + ([error[i:i + batch]] if kind == "flux+error" else [])
        x = torch.as_tensor(np.stack(channels, axis=1), device=device)
        out.append(predictor(x)[:, 1:].float().cpu().numpy())
    return np.concatenate(out)
