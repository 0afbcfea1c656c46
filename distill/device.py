"""Torch device choice: CUDA when present, else CPU (``DISTILL_DEVICE`` overrides)."""
import os

import torch


def pick_device(name: str | None = None) -> torch.device:
    name = name or os.environ.get("DISTILL_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
