"""The teacher latent z* as a distillation target, computed by the frozen teacher itself.

``pooled_latent`` reproduces exactly what ``extract`` stores and ``probe`` pools (segment
means, channel maxima, mirrored half flipped back; ``both``: fwd then bwd channels;
``a+b``: layers side by side), so online targets equal offline ones on the same noise.
"""
import time

import numpy as np
import torch

from ..data import NOISE_SEED, add_noise, noise_draw
from ..features.pooling import STORE_SEGMENTS, check_pooling, pool, segment_count, summarise


def pooled_latent(teacher, noisy: torch.Tensor, sigma: torch.Tensor, layer: str, pooling_name: str,
                  direction: str) -> np.ndarray:
    """(B, P) noisy flux and sigma (same unit) -> pooled latent (B, D) float32."""
    names = layer.split("+")
    with torch.inference_mode():
        halves = teacher.feature_halves(noisy, sigma, names, direction, flip_back=False)
    parts, segments = [], max(STORE_SEGMENTS, segment_count(pooling_name))  # the extract's store for this pooling
    for name in names:
        check_pooling(pooling_name, teacher.feature_length(name, noisy.shape[-1]), name, segments)
        segs, maxima = [], []
        for d, maps in halves[name].items():
            seg, mx = summarise(maps, segments)
            segs.append((seg.flip(-1) if d == "bwd" else seg).float().cpu().numpy())
            maxima.append(mx.float().cpu().numpy())
        parts.append(pool(np.concatenate(segs, axis=1), np.concatenate(maxima, axis=1), pooling_name))
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def fixed_targets(teacher, spectra, split: str, noise_level: float, layer, pooling_name, direction,
                  device, batch_size=256,
                  sigma_error: np.ndarray | None = None, noise_seed: int = NOISE_SEED) -> np.ndarray:
    """z* of a whole split (``SpectrumFile`` or ``ArraySpectra``) at its fixed noise draw (seed 42, split, row):
    what ``extract`` stores.

    ``sigma_error``: another error array for the teacher's sigma channel only (ablation 4.2
    feeds sigma permuted across spectra); the noise is always drawn with the spectra's own error.
    ``noise_seed``: another draw of the noise (2.1's reproducibility ceiling).
    """
    out = []
    for i in range(0, len(spectra), batch_size):
        rows = range(i, min(i + batch_size, len(spectra)))
        flux, error = spectra.read(rows.start, rows.stop)
        noisy = add_noise(flux, error, noise_level, noise_draw(split, rows, flux.shape[1], noise_seed))
        sigma = (error if sigma_error is None else sigma_error[rows.start:rows.stop]) * np.float32(noise_level)
        out.append(pooled_latent(teacher, torch.as_tensor(noisy, device=device), torch.as_tensor(sigma, device=device),
                                 layer, pooling_name, direction))
    return np.concatenate(out)


def throughput(fn, batches, repeats=3) -> float:
    """Spectra per second of ``fn(batch)`` over a list of tensors (best of ``repeats``, after one warm-up)."""
    with torch.inference_mode():
        fn(batches[0])
        best = np.inf
        for _ in range(repeats):
            if batches[0].is_cuda:
                torch.cuda.synchronize()
            t = time.perf_counter()
            for b in batches:
                fn(b)
            if batches[0].is_cuda:
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
    return sum(len(b) for b in batches) / best
