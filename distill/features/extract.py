"""Run the frozen teacher over every split once and store what every pooling needs."""
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..data import Dataset, add_noise, noise_draw
from ..device import prefetch, to_device
from ..errors import DistillError
from ..teacher import DIRECTIONS, BlindSpotUNet1D
from . import store
from .pooling import STORE_SEGMENTS, check_segments, stored_segments, summarise

DEFAULT_LAYERS = "default"


def resolve_layers(model: BlindSpotUNet1D, layers: str) -> list:
    """'default' -> enc_pre_latent, enc_last, dec_input and every encoder block; else a comma list."""
    names = model.layer_names() if layers == DEFAULT_LAYERS else [s.strip() for s in layers.split(",") if s.strip()]
    unknown = [n for n in names if n not in model.layer_names()]
    if unknown or not names:
        raise DistillError(f"unknown layer(s) {unknown}; valid: {', '.join(model.layer_names())}")
    return names


def _noisy_batches(sfile, split, batch_size, noise_level):
    """(start, clean flux, noisy flux, sigma) per batch, with the fixed noise of each row."""
    for start, flux, error in sfile.batches(batch_size):
        z = noise_draw(split, range(start, start + len(flux)), sfile.n_pixels)
        yield start, flux, add_noise(flux, error, noise_level, z), error * np.float32(noise_level)


def extract_features(model: BlindSpotUNet1D, dataset: Dataset, layers: list, direction: str, noise_level: float,
                     out, batch_size=128, device=torch.device("cpu"), denoised=False, progress=None, info=None,
                     segments=STORE_SEGMENTS) -> dict:
    """Write ``{layer}.parquet`` (+ ``denoised.parquet``) and ``manifest.json`` to ``out``; return the manifest.

    ``info``: extra entries for the manifest (e.g. where the teacher and the data came from).
    ``segments``: segment means stored per layer (``pooling.summarise``), a power of two.

    Noise: ``flux + noise_level * error * z`` with z fixed per (seed 42, split, row);
    sigma given to the teacher = error * noise_level. Written to a temporary
    directory and moved into place when complete.
    """
    if direction not in DIRECTIONS:
        raise DistillError(f"direction={direction!r}: choose one of {', '.join(DIRECTIONS)}")
    check_segments(segments)
    directions = ["fwd", "bwd"] if direction == "both" else [direction]
    n_pixels = next(iter(dataset.splits.values())).n_pixels
    out = Path(out)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=out.parent))
    model = model.to(device).eval()
    writers = {name: store.LayerWriter(tmp / f"{name}.parquet") for name in layers}
    denoised_writer = store.LayerWriter(tmp / "denoised.parquet") if denoised else None
    one_pass = denoised and model.config.blind_spot  # features from the denoiser's pass (it runs both halves)
    forward_seconds, t0 = 0.0, time.time()
    try:
        for split, sfile in dataset.splits.items():
            labels = sfile.params[list(sfile.labels)].astype(np.float32)
            for start, flux, noisy, sigma in prefetch(_noisy_batches(sfile, split, batch_size, noise_level)):
                noisy_t, sigma_t = to_device(noisy, device), to_device(sigma, device)
                t = time.time()
                with torch.inference_mode():
                    if one_pass:
                        clean_estimate, halves = model.denoise_with_features(noisy_t, sigma_t, layers)
                        halves = {name: {d: parts[d] for d in directions} for name, parts in halves.items()}
                    else:
                        halves = model.feature_halves(noisy_t, sigma_t, layers, direction, flip_back=False)
                    summaries = {}
                    for name, parts in halves.items():
                        for d, part in parts.items():
                            seg, mx = summarise(part, segments)
                            # the mirrored half runs backwards: reversing its segments is the flip back
                            summaries[name, d] = ((seg.flip(-1) if d == "bwd" else seg).float().cpu().numpy(),
                                                  mx.float().cpu().numpy())
                forward_seconds += time.time() - t
                meta = labels.iloc[start:start + len(flux)].reset_index(drop=True)
                meta.insert(0, "split", split)
                meta.insert(0, "id", np.arange(start, start + len(flux)))
                for name in layers:
                    arrays = {}
                    for d in directions:
                        arrays[f"{d}_segmean"], arrays[f"{d}_max"] = summaries[name, d]
                    writers[name].write(meta, arrays)
                if denoised_writer:
                    if not one_pass:
                        with torch.inference_mode():
                            clean_estimate = model.denoise(noisy_t, sigma_t)
                    denoised_writer.write(meta, {"denoised": clean_estimate.float().cpu().numpy()})
                if progress:
                    progress(len(flux))
        for w in list(writers.values()) + ([denoised_writer] if denoised_writer else []):
            w.close()
        manifest = {
            "layers": {name: {"channels": model.config.embed_dim * (2 if name == "dec_input" else 1),
                              "length": model.feature_length(name, n_pixels),
                              "segments": stored_segments(model.feature_length(name, n_pixels), segments)}
                       for name in layers},
            "directions": directions,
            "noise_level": noise_level,
            "noise_seed": 42,
            "teacher_config": model.config.as_dict(),
            "denoised": bool(denoised),
            "n": {s: len(f) for s, f in dataset.splits.items()},
            "labels": list(next(iter(dataset.splits.values())).labels),
            "seconds": time.time() - t0,
            "forward_seconds": forward_seconds,
        } | (info or {})
        store.write_manifest(tmp, manifest)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
        return manifest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
