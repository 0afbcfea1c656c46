"""Load and save teacher weights: Lightning checkpoints (``state_dict`` with prefix ``model.``)
or plain state dicts, always with ``torch.load(..., weights_only=True)``."""
from pathlib import Path

import torch

from ..errors import DistillError
from .model import BlindSpotUNet1D, TeacherConfig


def _state_dict(obj, path) -> dict:
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DistillError(f"{path}: not a checkpoint (expected a state dict or a Lightning checkpoint with "
                           f"'state_dict')")
    if all(k.startswith("model.") for k in obj):
        obj = {k[len("model."):]: v for k, v in obj.items()}
    return obj


def infer_config(state: dict, path="<state dict>", **overrides) -> TeacherConfig:
    """Architecture from tensor shapes: layers, channels, kernel, sigma input, batch norm.

    The dilation cannot be read from shapes: it comes from ``overrides`` or the
    checkpoint's hyper-parameters, else 1.
    """
    first = state.get("encoders.0.conv.weight")
    if first is None or first.ndim != 3:
        raise DistillError(f"{path}: no 'encoders.0.conv.weight' of shape (embed_dim, in_channels, kernel); not a "
                           f"blind-spot U-Net")
    n_encoders = len({k.split(".")[1] for k in state if k.startswith("encoders.")})
    config = dict(num_layers=n_encoders - 1, embed_dim=first.shape[0], kernel_size=first.shape[2],
                  input_sigma=first.shape[1] == 2, use_bn="encoders.0.bn.weight" in state)
    return TeacherConfig(**(config | overrides))


def check_compatible(model: torch.nn.Module, state: dict, path):
    """Raise a DistillError naming the first missing, unexpected or mis-shaped entry."""
    expected = model.state_dict()
    for key, value in expected.items():
        if key not in state:
            raise DistillError(f"{path}: missing key '{key}' for {model.config}")
        if tuple(state[key].shape) != tuple(value.shape):
            raise DistillError(f"{path}: '{key}' has shape {tuple(state[key].shape)}, the architecture needs "
                               f"{tuple(value.shape)}")
    extra = sorted(set(state) - set(expected))
    if extra:
        raise DistillError(f"{path}: unexpected key '{extra[0]}' ({len(extra)} in all) for {model.config}")


def load(path, map_location="cpu", **overrides) -> BlindSpotUNet1D:
    """Load a teacher from a Lightning or plain checkpoint; returns the model in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise DistillError(f"{path}: checkpoint not found")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle errors, truncated files, foreign formats
        raise DistillError(f"{path}: cannot read as a torch checkpoint ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:200]})") from None
    hparams = obj.get("hyper_parameters", {}) if isinstance(obj, dict) else {}
    if "dilation" in hparams and "dilation" not in overrides:
        overrides["dilation"] = int(hparams["dilation"])
    state = _state_dict(obj, path)
    model = BlindSpotUNet1D(infer_config(state, path, **overrides))
    check_compatible(model, state, path)
    model.load_state_dict(state)
    return model.eval()


def save(model: BlindSpotUNet1D, path, lightning=False):
    """Save the plain state dict (or a Lightning-style checkpoint with prefix ``model.``)."""
    state = model.state_dict()
    if lightning:
        state = {"state_dict": {f"model.{k}": v for k, v in state.items()}, "hyper_parameters": model.config.as_dict()}
    torch.save(state, path)
