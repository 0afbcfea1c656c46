"""Poolings of a (C, L) feature map over the wavelength axis (research-plan section 3).

- ``global_mean``: mean over L, C values;
- ``mean_max``: mean and max over L, 2C values (means first);
- ``seg_mean_K{k}``: means over k contiguous equal segments, C*k values (channel-major);
- ``attention``: a learned query over positions, trained with the head (``distill.heads``).

Extraction stores, per layer and direction, the means over ``STORE_SEGMENTS``
contiguous segments (the whole map when L <= 16) and the channel maxima; every
pooling above derives exactly from them for k a power of two up to min(L, 16).
"""
import re

import numpy as np

from ..errors import DistillError

STORE_SEGMENTS = 16
FIXED_POOLINGS = ("global_mean", "mean_max")
SEG_MEAN = re.compile(r"^seg_mean_K(\d+)$")


def stored_segments(length: int) -> int:
    return min(length, STORE_SEGMENTS)


def summarise(maps):
    """(N, C, L) maps (numpy or torch) -> (segment means (N, C, Ks), channel maxima (N, C)), Ks = min(L, 16)."""
    n, c, length = maps.shape
    ks = stored_segments(length)
    if length % ks:
        raise DistillError(f"layer length {length} is not divisible by {ks} segments")
    return maps.reshape(n, c, ks, length // ks).mean(-1), maps.max(-1)[0] if hasattr(maps, "dim") else maps.max(-1)


def valid_poolings(length: int) -> list:
    ks = stored_segments(length)
    return list(FIXED_POOLINGS) + [f"seg_mean_K{2**i}" for i in range(int(np.log2(ks)) + 1)] + ["attention"]


def check_pooling(name: str, length: int, layer: str = "layer"):
    """Raise a one-line DistillError for an unknown pooling or K beyond the layer."""
    if name in FIXED_POOLINGS or name == "attention":
        return
    m = SEG_MEAN.match(name)
    if not m:
        raise DistillError(f"unknown pooling {name!r}; valid: global_mean, mean_max, seg_mean_K{{k}}, attention")
    k = int(m.group(1))
    if k < 1:
        raise DistillError(f"pooling {name}: K must be at least 1")
    if k > length:
        raise DistillError(f"pooling {name}: K={k} is larger than the length {length} of {layer}")
    if k > STORE_SEGMENTS or STORE_SEGMENTS % k:
        raise DistillError(f"pooling {name}: K must be a power of two up to {min(length, STORE_SEGMENTS)} for {layer}")


def pool(seg_means: np.ndarray, maxima: np.ndarray, name: str) -> np.ndarray:
    """Derive a pooling (N, D) from stored segment means (N, C, Ks) and maxima (N, C)."""
    n, c, ks = seg_means.shape
    check_pooling(name, ks)
    if name == "global_mean":
        return seg_means.mean(-1)
    if name == "mean_max":
        return np.concatenate([seg_means.mean(-1), maxima], axis=1)
    k = int(SEG_MEAN.match(name).group(1))
    return seg_means.reshape(n, c, k, ks // k).mean(-1).reshape(n, c * k)


def pool_map(maps: np.ndarray, name: str) -> np.ndarray:
    """The same poolings computed directly on whole maps (N, C, L); the reference for tests."""
    n, c, length = maps.shape
    check_pooling(name, length)
    if name == "global_mean":
        return maps.mean(-1)
    if name == "mean_max":
        return np.concatenate([maps.mean(-1), maps.max(-1)], axis=1)
    k = int(SEG_MEAN.match(name).group(1))
    return np.stack([seg.mean(-1) for seg in np.array_split(maps, k, axis=-1)], axis=-1).reshape(n, c * k)
