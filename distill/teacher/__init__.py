"""The frozen blind-spot denoiser whose latent the plan studies: ``load(path)`` and the model."""
from .checkpoint import load, save
from .model import DIRECTIONS, PRESETS, BlindSpotUNet1D, TeacherConfig

__all__ = ["load", "save", "BlindSpotUNet1D", "TeacherConfig", "PRESETS", "DIRECTIONS"]
