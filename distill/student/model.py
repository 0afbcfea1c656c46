"""Student encoders S(noisy [, error]) -> z_s, the size of the teacher latent, plus a small head z_s -> y.

- ``mlp``: the research plan's reference, flattened input -> hidden widths (default
  1024, 1024, 512) with GELU and dropout 0.1 -> latent.
- ``cnn``: a compact 1D convolutional encoder: strided convolutions (4096 -> 64
  positions) with few channels, then a linear map to the latent; two orders of
  magnitude fewer weights than a dense layer on 4096 pixels.
"""
import torch
from torch import nn

STUDENTS = ("mlp", "cnn")
INPUTS = ("flux", "flux+error")


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
    def __init__(self, in_channels: int, n_pixels: int, out_dim: int, channels=(16, 32, 32, 64), dropout=0.1):
        super().__init__()
        layers, c_in = [], in_channels
        for c in channels:  # each stage: kernel 9, stride 2, then stride-2 pooling: 4x shorter
            layers += [nn.Conv1d(c_in, c, 9, stride=2, padding=4), nn.GELU(), nn.MaxPool1d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        length = n_pixels // 4 ** len(channels)
        self.out = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in * length, out_dim))

    def forward(self, x):
        return self.out(self.features(x))


class Student(nn.Module):
    """An encoder to the latent size and a head (linear by default) from z_s to the targets."""

    def __init__(self, kind: str, in_channels: int, n_pixels: int, latent_dim: int, n_targets: int = 1, hidden=(1024, 1024, 512)):
        super().__init__()
        if kind not in STUDENTS:
            raise ValueError(f"unknown student {kind!r}; valid: {', '.join(STUDENTS)}")
        self.encoder = (MLPStudent(in_channels, n_pixels, latent_dim, hidden) if kind == "mlp"
                        else CNNStudent(in_channels, n_pixels, latent_dim))
        self.head = nn.Linear(latent_dim, n_targets)

    def forward(self, x):
        """x (B, in_channels, P) -> (z_s (B, latent_dim), y_hat (B, n_targets))."""
        z = self.encoder(x)
        return z, self.head(z)


def student_inputs(noisy: torch.Tensor, error: torch.Tensor, kind: str) -> torch.Tensor:
    """(B, P) noisy flux [and error] -> (B, C, P); ``flux+error`` is the Stage 2.3 "student-plus"."""
    if kind not in INPUTS:
        raise ValueError(f"unknown input {kind!r}; valid: {', '.join(INPUTS)}")
    return torch.stack([noisy, error] if kind == "flux+error" else [noisy], dim=1)
