"""Each peer run on a dataset the way every estimator here is: the fixed noise draw of each split for evaluation,
test predictions of the first ``n_spectra`` test rows, fit and predict time (s). ``run`` returns an ``Estimate``."""
import functools
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import SPLITS, ArraySpectra, add_noise, noise_draw
from ..device import pick_device
from ..probe import subset_rows
from ..student.build import student_trainer
from ..student.train import DistillSettings
from .cnn import StarNet


@dataclass
class Estimate:
    predictions: dict  # split -> DataFrame of the predicted labels (the test split: its first n rows)
    fit_seconds: float
    predict_seconds: float
    metrics: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)  # artifact path -> DataFrame
    figures: dict = field(default_factory=dict)  # artifact path -> matplotlib figure


def fixed_noisy(spectra, split: str, noise_level: float, rows) -> tuple:
    """(noisy flux, error) float32 of ``rows`` (a range) of a split at its fixed draw."""
    flux, error = spectra.read(rows.start, rows.stop)
    return add_noise(flux, error, noise_level, noise_draw(split, rows, flux.shape[1])), error


def run(peer, ds, progress=None, **settings) -> Estimate:
    """A ``Peer`` fitted and predicting, each timed, then its own diagnosis; ``progress(n)`` as the peer counts."""
    t = time.perf_counter()
    model = peer.fit(ds, progress=progress, **settings)
    fit_seconds = time.perf_counter() - t
    t = time.perf_counter()
    predictions = peer.predict(model, ds, progress=progress, **settings)
    est = Estimate(predictions, fit_seconds, time.perf_counter() - t)
    peer.diagnose(model, est, ds, **settings)
    return est


def train_starnets(ds, noise_level: float, n_train: int, seed: int, epochs: int, labels, progress=None,
                   **_) -> dict:
    """One StarNet per label, trained as the student is: label -> its trainer."""
    keep = subset_rows(len(ds["train"]), n_train, seed)
    spectra = dict(ds.splits)
    if len(keep) < len(ds["train"]):
        spectra["train"] = ArraySpectra(*(a[keep] for a in ds["train"].read()))
    settings = DistillSettings(lambda_z=0.0, epochs=epochs, batch_size=64, lr=7e-4, noise_level=noise_level,
                               seed=seed)
    trainers = {}
    for label in labels:
        torch.manual_seed(seed)
        y = {s: ds[s].params[label].to_numpy(np.float64) for s in SPLITS}
        y["train"] = y["train"][keep]
        trainer = student_trainer(StarNet(ds["train"].n_pixels), spectra, None, y, settings, pick_device())
        trainer.fit(progress)
        trainers[label] = trainer
    return trainers


def __getattr__(name):
    """``RUN``: each registered peer's ``run`` by name, for callers that take one function per method."""
    if name != "RUN":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import PEERS
    return {peer_name: functools.partial(run, peer) for peer_name, peer in PEERS.items()}
