"""Poolings of a (C, L) feature map over the wavelength axis (docs/research-plan.md section 3).

- ``global_mean``: mean over L, C values;
- ``mean_max``: mean and max over L, 2C values (means first);
- ``seg_mean_K{k}``: means over k contiguous equal segments, C*k values (channel-major);
- ``attention``: a learned query over positions, trained with the head (``distill.heads``).

Extraction stores, per layer and direction, the means over ``segments`` contiguous
segments (default ``STORE_SEGMENTS``; the whole map when L is shorter) and the channel
maxima; every pooling above derives exactly from them for k a power of two up to the
stored count. Finer segments cost storage: K256 of a 16-channel layer is 4,096 values
per spectrum and direction, as many as the flux has pixels.
"""
import re

import numpy as np

from ..errors import DistillError

STORE_SEGMENTS = 16
FIXED_POOLINGS = ("global_mean", "mean_max")
SEG_MEAN = re.compile(r"^seg_mean_K(\d+)$")


def stored_segments(length: int, segments: int = STORE_SEGMENTS) -> int:
    return min(length, segments)


def check_segments(segments: int):
    """Raise a one-line DistillError unless ``segments`` is a power of two (what ``summarise`` stores and ``pool``
    derives from)."""
    if segments < 1 or segments & (segments - 1):
        raise DistillError(f"segments={segments}: a power of two (16 stores seg_mean_K16 and coarser)")


def segment_count(name: str) -> int:
    """K of ``seg_mean_K{k}``; 1 for every other pooling."""
    m = SEG_MEAN.match(name)
    return int(m.group(1)) if m else 1


def summarise(maps, segments: int = STORE_SEGMENTS):
    """(N, C, L) maps (numpy or torch) -> (segment means (N, C, Ks), channel maxima (N, C)), Ks = min(L, segments)."""
    n, c, length = maps.shape
    ks = stored_segments(length, segments)
    if length % ks:
        raise DistillError(f"layer length {length} is not divisible by {ks} segments")
    return maps.reshape(n, c, ks, length // ks).mean(-1), maps.max(-1)[0] if hasattr(maps, "dim") else maps.max(-1)


def valid_poolings(length: int, segments: int = STORE_SEGMENTS) -> list:
    ks = stored_segments(length, segments)
    return list(FIXED_POOLINGS) + [f"seg_mean_K{2**i}" for i in range(int(np.log2(ks)) + 1)] + ["attention"]


def check_pooling(name: str, length: int, layer: str = "layer", segments: int = STORE_SEGMENTS):
    """Raise a one-line DistillError for an unknown pooling, K beyond the layer or finer than the stored segments."""
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
    if k > segments or segments % k:
        raise DistillError(f"pooling {name}: K must be a power of two up to {stored_segments(length, segments)} for "
                           f"{layer}" + (f" (finer K: extract -P segments={k})" if k > segments else ""))


def pool(seg_means: np.ndarray, maxima: np.ndarray, name: str) -> np.ndarray:
    """Derive a pooling (N, D) from stored segment means (N, C, Ks) and maxima (N, C)."""
    n, c, ks = seg_means.shape
    check_pooling(name, ks, segments=ks)
    if name == "global_mean":
        return seg_means.mean(-1)
    if name == "mean_max":
        return np.concatenate([seg_means.mean(-1), maxima], axis=1)
    k = int(SEG_MEAN.match(name).group(1))
    return seg_means.reshape(n, c, k, ks // k).mean(-1).reshape(n, c * k)


def pool_map(maps: np.ndarray, name: str) -> np.ndarray:
    """The same poolings computed directly on whole maps (N, C, L); the reference for tests."""
    n, c, length = maps.shape
    check_pooling(name, length, segments=length)
    if name == "global_mean":
        return maps.mean(-1)
    if name == "mean_max":
        return np.concatenate([maps.mean(-1), maps.max(-1)], axis=1)
    k = int(SEG_MEAN.match(name).group(1))
    return np.stack([seg.mean(-1) for seg in np.array_split(maps, k, axis=-1)], axis=-1).reshape(n, c * k)
