"""Head fits computed once per content: ``fit_heads`` is ``probe.fit_heads`` with a cache.

Every distill_student run on one dataset fits the same heads on the same raw, denoised and teacher-latent features
(fixed noise draws, seeded heads). The cache key is a hash of the feature and label arrays themselves, the head and
its settings, and the package's source code, so a hit is the same computation by construction. Per-split predictions
are stored as plain ``.npz`` files (never pickles) under ``$DISTILL_CACHE`` (default ``.cache/heads``) and the scores
recomputed from them; a missing or unreadable entry is fitted again, so deleting the directory is always safe.
"""
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import metrics, probe
from .data import SPLITS


@lru_cache(maxsize=1)
def source_digest() -> str:
    """sha256 of the package's Python source: any change to the code starts afresh."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _digest(arrays) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype}{a.shape}".encode())
        digest.update(memoryview(a).cast("B"))
    return digest.hexdigest()


def entry(features: str, labels: str, head: str, head_params: dict) -> Path:
    blob = json.dumps({"features": features, "y": labels, "head": head,
                       "head_params": head_params, "code": source_digest()}, sort_keys=True, default=str)
    return Path(os.environ.get("DISTILL_CACHE", ".cache/heads")) / f"{hashlib.sha256(blob.encode()).hexdigest()}.npz"


def _read(path: Path) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {s: stored[s] for s in SPLITS}
    except (OSError, KeyError, ValueError):
        return None


def _write(path: Path, predictions: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")
    np.savez(partial, **predictions)
    partial.replace(path)  # atomic: a reader never sees half a file


def fit_heads(fs: probe.FeatureSet, labels, head_list, head_params: dict) -> dict:
    """``probe.fit_heads`` with each (label, head) read from the cache when the same features and labels were fitted
    before; ``LabelResult.model`` is None for a head read back."""
    features, out = _digest(fs.x[s] for s in SPLITS), {}
    for label in labels:
        y = {s: fs.y[s][label].to_numpy(np.float64) for s in SPLITS}
        labels_digest = _digest(y[s] for s in SPLITS)
        for head in head_list:
            path = entry(features, labels_digest, head, head_params)
            predictions = _read(path)
            if predictions is None:
                out[label, head] = probe.fit_label(fs, label, head, **head_params)
                _write(path, out[label, head].predictions)
            else:
                out[label, head] = probe.LabelResult(label, None, predictions,
                                                     metrics.split_scores(y, predictions, label))
    return out
