"""Stage 1 probes: how much of each label a head reads from a feature set (latent or baseline).

Features come either from an extract run (a layer, or several joined with '+',
pooled and optionally per direction) or straight from the dataset at a noise
level: noisy flux, denoised flux, clean flux, the clean error, or noisy flux and
error side by side.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import heads, metrics
from .data import SPLITS, Dataset, add_noise, noise_draw
from .errors import DistillError
from .features import pooling, store

BASELINES = ("noisy_flux", "denoised_flux", "clean_flux", "error", "noisy_flux+error")
INPUTS = ("latent",) + BASELINES
BOUNDED = ("noisy_flux",)  # inputs the information ceiling bounds: the teacher latent and denoised flux are computed
# from sigma, the error is sigma, and clean flux carries no noise


@dataclass
class FeatureSet:
    """Features and labels of every split, rows in dataset order."""

    x: dict  # split -> (n, d) array, or (n, C, L) maps for attention pooling
    y: dict  # split -> DataFrame of labels
    name: str


def latent_features(features_dir, manifest, layer: str, pooling_name: str, direction: str) -> FeatureSet:
    """Pooled latent of one or several ('+') layers from an extract run's Parquet files."""
    parts, meta = [], None
    for name in layer.split("+"):
        meta_l, seg, mx = store.read_layer(features_dir, name, direction, manifest)
        length = manifest["layers"][name]["length"]
        pooling.check_pooling(pooling_name, length, name, seg.shape[-1])
        if pooling_name == "attention":
            if seg.shape[-1] != length or "+" in layer:
                raise DistillError(f"pooling=attention needs one layer stored whole (length <= the {seg.shape[-1]} "
                                   f"stored segments); {name} has length {length}")
            parts.append(seg)
        else:
            parts.append(pooling.pool(seg, mx, pooling_name))
        meta = meta_l if meta is None else meta
    x = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
    return _by_split(meta, x, f"{layer}|{pooling_name}|{direction}", manifest["labels"])


def unstored(manifest: dict, layer: str, pooling_name: str) -> str | None:
    """Why the extract run cannot give ``layer`` (one or 'a+b') with ``pooling_name`` (a K beyond a layer's length or
    its stored segments), or None when it can."""
    for name in layer.split("+"):
        info = manifest["layers"].get(name)
        try:
            if info:
                pooling.check_pooling(pooling_name, info["length"], name, info["segments"])
        except DistillError as e:
            return str(e)
    return None


def baseline_features(dataset: Dataset, kind: str, noise_level: float, features_dir=None, splits=SPLITS) -> FeatureSet:
    """Raw-spectrum features of ``splits`` (default all); noise fixed per (seed 42, split, row)."""
    if kind not in BASELINES:
        raise DistillError(f"unknown input {kind!r}; valid: {', '.join(INPUTS)}")
    if kind == "denoised_flux":
        if features_dir is None:
            raise DistillError("input=denoised_flux needs an extract run made with -P denoised=true")
        meta, x = store.read_denoised(features_dir)
        return _by_split(meta, x, kind, list(dataset["train"].labels))
    xs, ys = {}, {}
    for split in splits:
        f = dataset[split]
        p = f.n_pixels
        x = np.empty((len(f), 2 * p if kind == "noisy_flux+error" else p), dtype=np.float32)  # the one copy
        for start, flux, error in f.batches(4096):
            rows = slice(start, start + len(flux))
            if kind in ("noisy_flux", "noisy_flux+error"):
                x[rows, :p] = add_noise(flux, error, noise_level, noise_draw(split, range(rows.start, rows.stop), p))
            else:
                x[rows, :p] = flux if kind == "clean_flux" else error
            if kind == "noisy_flux+error":
                x[rows, p:] = error
        xs[split] = x
        ys[split] = f.params[list(f.labels)].reset_index(drop=True)
    return FeatureSet(xs, ys, kind)


def _by_split(meta: pd.DataFrame, x, name, labels) -> FeatureSet:
    xs, ys = {}, {}
    for split in SPLITS:
        sel = (meta["split"] == split).to_numpy()
        if not sel.any():
            raise DistillError(f"features hold no rows of split {split!r}")
        order = np.argsort(meta.loc[sel, "id"].to_numpy(), kind="stable")
        xs[split] = x[sel][order]
        ys[split] = meta.loc[sel, labels].iloc[order].reset_index(drop=True)
    return FeatureSet(xs, ys, name)


def subset_rows(n: int, n_train: int, seed: int = 42) -> np.ndarray:
    """A reproducible random subset of n_train of n training rows, sorted (0 or n: all)."""
    if n_train == 0 or n_train == n:
        return np.arange(n)
    if n_train > n:
        raise DistillError(f"n_train={n_train} is larger than the training set ({n} spectra)")
    return np.sort(np.random.default_rng(seed).choice(n, n_train, replace=False))


def subset_train(fs: FeatureSet, n_train: int, seed: int = 42) -> FeatureSet:
    """The feature set with ``subset_rows`` of its training rows (0: all)."""
    n = len(fs.y["train"])
    if n_train in (0, n):
        return fs
    rows = subset_rows(n, n_train, seed)
    x = dict(fs.x, train=fs.x["train"][rows])
    y = dict(fs.y, train=fs.y["train"].iloc[rows].reset_index(drop=True))
    return FeatureSet(x, y, fs.name)


@dataclass
class LabelResult:
    label: str
    model: object
    predictions: dict  # split -> array
    scores: dict  # metric key -> value


def fit_label(fs: FeatureSet, label: str, head: str, pooling_name: str = "", early_stop=False,
              **head_params) -> LabelResult:
    """Fit one head for one label on train (val steers early stopping only) and score every split."""
    y = {s: fs.y[s][label].to_numpy(np.float64) for s in SPLITS}
    if pooling_name == "attention":
        model = heads.AttentionRegressor(seed=head_params.get("seed", 42)).fit(fs.x["train"], y["train"],
                                                                               fs.x["val"], y["val"])
    else:
        model = heads.fit(heads.make_pipeline(head, **head_params), fs.x["train"], y["train"], fs.x["val"],
                          y["val"], early_stop)
    predictions = {s: np.asarray(model.predict(fs.x[s]), dtype=np.float64) for s in SPLITS}
    scores = metrics.split_scores(y, predictions, label)
    if head == "ridge" and head_params.get("alpha") == heads.ON_VAL:
        scores[f"ridge_alpha_{label}"] = model.named_steps["head"].alpha_
    return LabelResult(label, model, predictions, scores)


def fit_heads(fs: FeatureSet, labels, head_list, head_params: dict) -> dict:
    """{(label, head): LabelResult} for every label and head on one feature set (fitted on train only)."""
    return {(label, head): fit_label(fs, label, head, **head_params) for label in labels for head in head_list}


def best_on_val(results: dict, label: str) -> tuple:
    """(head, LabelResult) of ``label`` with the highest validation R^2 among ``fit_heads`` results."""
    return max(((h, r) for (lb, h), r in results.items() if lb == label),
               key=lambda hr: hr[1].scores[f"val_r2_{label}"])


def bin_tables(fs: FeatureSet, result: LabelResult, split="test") -> pd.DataFrame:
    """Per-bin R^2 / MAE / bias of one label's predictions, in log g and T_eff bins."""
    y = fs.y[split]
    tables = [metrics.per_bin(y[result.label], result.predictions[split], y[by], width, by)
              for by, width in metrics.BINS.items() if by in y.columns]
    return pd.concat(tables, ignore_index=True).assign(label=result.label)
