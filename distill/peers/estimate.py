"""Each peer run on a dataset the way every estimator here is: the fixed noise draw of each split for evaluation,
test predictions of the first ``n_spectra`` test rows, fit and predict time (s). Returns an ``Estimate``."""
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from .. import ceiling, fisher
from ..data import LABELS, SPLITS, ArraySpectra, add_noise, noise_draw
from ..device import pick_device
from ..probe import subset_rows
from ..student.train import DistillSettings, DistillTrainer
from . import cannon as cannon_model
from . import template_fit as tf
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


def cannon(ds, noise_level: float, n_spectra: int, n_train: int, seed: int, **_) -> Estimate:
    """The Cannon on the training split's fixed noisy flux, labels of the test subset (nothing is chosen on
    validation, so it is not labelled)."""
    train = ds["train"]
    keep = subset_rows(len(train), n_train, seed)
    labels = train.label_array(LABELS)[keep]
    t = time.perf_counter()
    if len(keep) == len(train):  # streamed block by block
        read = lambda a, b: cannon_model.normalise(fixed_noisy(train, "train", noise_level, range(a, b))[0])  # noqa
    else:
        noisy = cannon_model.normalise(fixed_noisy(train, "train", noise_level, range(len(train)))[0][keep])
        read = lambda a, b: noisy[a:b]  # noqa: E731
    model = cannon_model.Cannon(seed=seed).fit(labels, read)
    fit_seconds = time.perf_counter() - t
    t = time.perf_counter()
    flux = fixed_noisy(ds["test"], "test", noise_level, range(n_spectra))[0]
    out = {"test": pd.DataFrame(model.predict(cannon_model.normalise(flux)), columns=list(LABELS))}
    seconds = time.perf_counter() - t
    return Estimate(out, fit_seconds, seconds, {"cannon_n_train": len(keep),
                                                "cannon_test_spectra_per_second": n_spectra / seconds})


def template_fit(ds, noise_level: float, n_spectra: int, prior: bool, starts: int, workers: int, progress=None,
                 **_) -> Estimate:
    """The simulator's model fitted to the test subset; the ratio of its squared error to the Cramer-Rao bound."""
    spectra = ds["test"]
    ceiling.check_simulated(spectra)  # the fit needs the model that made the spectra
    params = spectra.params.iloc[:n_spectra].reset_index(drop=True)
    noisy, error = fixed_noisy(spectra, "test", noise_level, range(n_spectra))
    var = (max(noise_level, 1e-3) * error.astype(np.float64)) ** 2  # noise level 0: exact data, any weights
    train = ds["train"].params[list(LABELS)]
    gauss = (train.mean().to_numpy(), train.var().to_numpy()) if prior else None
    t = time.perf_counter()
    fitted = tf.fit_spectra(noisy, var, params, starts=starts, prior=gauss, workers=workers, progress=progress)
    seconds = time.perf_counter() - t
    est = Estimate({"test": fitted[list(LABELS)]}, 0.0, seconds,
                   {"template_fit_test_spectra_per_second": n_spectra / seconds,
                    "template_fit_evaluations_per_spectrum": float(fitted["evaluations"].mean())})
    if noise_level > 0:
        info = fisher.split_fisher(spectra, rows=n_spectra, workers=workers)
        kind = "prior" if prior else "marginal"
        for k, label in enumerate(LABELS):
            bound = fisher.crb(info, k, fisher.prior_variances(params), noise_level)[kind].to_numpy()
            sq = (fitted[label] - params[label]).to_numpy() ** 2
            finite = np.isfinite(bound)
            est.metrics |= {f"template_fit_crb_ratio_{label}": float(sq[finite].mean() / bound[finite].mean()),
                            f"template_fit_crb_median_ratio_{label}": float(np.median(sq[finite] / bound[finite])),
                            f"template_fit_ceiling_r2_{label}": fisher.ceiling(
                                pd.DataFrame({b: bound for b in fisher.BOUNDS}), float(params[label].var()))[kind]}
            if label == "log_g":
                snr = np.median(spectra.read(0, n_spectra)[0] / np.sqrt(var), axis=1)
                est.tables["tables/crb_ratio_log_g.json"] = tf.crb_bins(sq, bound, {"snr": snr,
                                                                                    "T_eff": params["T_eff"]})
    return est


def cnn(ds, noise_level: float, n_spectra: int, n_train: int, seed: int, epochs: int, labels, progress=None,
        **_) -> Estimate:
    """One StarNet per label, trained as the student is; predictions of val and the test subset at their fixed
    draws."""
    keep = subset_rows(len(ds["train"]), n_train, seed)
    spectra = dict(ds.splits)
    if len(keep) < len(ds["train"]):
        spectra["train"] = ArraySpectra(*(a[keep] for a in ds["train"].read()))
    settings = DistillSettings(lambda_z=0.0, epochs=epochs, batch_size=64, lr=7e-4, noise_level=noise_level,
                               seed=seed)
    out = {"val": pd.DataFrame(index=range(len(ds["val"]))), "test": pd.DataFrame(index=range(n_spectra))}
    metrics, fit_seconds, predict_seconds = {}, 0.0, 0.0
    for label in labels:
        torch.manual_seed(seed)
        y = {s: ds[s].params[label].to_numpy(np.float64) for s in SPLITS}
        y["train"] = y["train"][keep]
        trainer = DistillTrainer(StarNet(ds["train"].n_pixels), spectra, None, y, settings, pick_device())
        t = time.perf_counter()
        history = trainer.fit(progress)
        fit_seconds += time.perf_counter() - t
        t = time.perf_counter()
        for s in out:
            out[s][label] = trainer.predict(s)[1][:len(out[s])]
        predict_seconds += time.perf_counter() - t
        metrics[f"cnn_epochs_{label}"] = len(history)
    metrics["cnn_n_parameters"] = sum(p.numel() for p in trainer.student.parameters())
    return Estimate(out, fit_seconds, predict_seconds, metrics)


RUN = {"cannon": cannon, "template_fit": template_fit, "cnn": cnn}
