"""Spectrum datasets in the pfsspec HDF5 layout, read lazily in batches.

A dataset is a directory with ``train/dataset.h5``, ``val/dataset.h5`` and
``test/dataset.h5``. Each file holds

- ``spectrumdataset/wave`` (P,): wavelength (A), strictly increasing;
- ``dataset/arrays/flux/value`` (N, P): clean flux;
- ``dataset/arrays/error/value`` (N, P): 1-sigma error of the flux, same unit;
- ``dataset/params``: a pandas/PyTables table with one row per spectrum and the
  label columns (``T_eff``, ``log_g``, ``M_H``, ``a_M``, ``C_M``; extra columns allowed).

Cleaning follows the user's practice: flux clipped at 0, NaN errors at the array
edges filled from the nearest finite pixel; anything else non-finite or a
non-positive error is an error. Noise: ``noisy = flux + noise_level * error * N(0, 1)``.
"""
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from . import sealed
from .errors import DistillError
from .params_table import read_params

SPLITS = ("train", "val", "test")
LABELS = ("T_eff", "log_g", "M_H", "a_M", "C_M")
WAVE_KEY = "spectrumdataset/wave"
FLUX_KEY = "dataset/arrays/flux/value"
ERROR_KEY = "dataset/arrays/error/value"
PARAMS_KEY = "dataset/params"
NOISE_SEED = 42
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


class SpectrumFile:
    """One split file, opened lazily: shapes and labels are checked on open, arrays read per batch."""

    def __init__(self, path, labels=LABELS):
        self.path = Path(path)
        if not self.path.is_file():
            raise DistillError(f"{self.path}: file not found (a dataset directory holds train/, val/, test/ each with "
                               f"dataset.h5)")
        try:
            with h5py.File(self.path, "r") as f:
                for key in (WAVE_KEY, FLUX_KEY, ERROR_KEY, PARAMS_KEY):
                    if key not in f:
                        raise DistillError(f"{self.path}: missing '{key}'; expected the pfsspec layout (see README, "
                                           f"'Your own data')")
                self.wave = np.asarray(f[WAVE_KEY][()], dtype=np.float64)
                flux_shape, error_shape = f[FLUX_KEY].shape, f[ERROR_KEY].shape
        except OSError as e:
            raise DistillError(f"{self.path}: not a readable HDF5 file ({e})") from None
        if self.wave.ndim != 1 or not np.all(np.diff(self.wave) > 0):
            raise DistillError(f"{self.path}: '{WAVE_KEY}' must be 1-D and strictly increasing")
        if flux_shape != error_shape or len(flux_shape) != 2 or flux_shape[1] != self.wave.size:
            raise DistillError(f"{self.path}: shapes disagree: flux {flux_shape}, error {error_shape}, wave "
                               f"{self.wave.shape}")
        if flux_shape[0] == 0:
            raise DistillError(f"{self.path}: '{FLUX_KEY}' holds no spectra; every split needs at least one")
        try:
            self.params = read_params(self.path, PARAMS_KEY)  # never unpickles
        except OSError as e:
            raise DistillError(f"{self.path}: cannot read '{PARAMS_KEY}' ({e}); the file is damaged: restore it or "
                               "write it again") from None
        if len(self.params) != flux_shape[0]:
            raise DistillError(f"{self.path}: '{PARAMS_KEY}' has {len(self.params)} rows but the flux has "
                               f"{flux_shape[0]}")
        missing = [c for c in labels if c not in self.params.columns]
        if missing:
            raise DistillError(f"{self.path}: '{PARAMS_KEY}' lacks label column(s) {', '.join(missing)}")
        self.params = self.params.reset_index(drop=True)
        check_labels(self.params, labels, self.path)
        self.labels = tuple(labels)
        self._h5 = None

    def __len__(self):
        return len(self.params)

    @property
    def n_pixels(self) -> int:
        return self.wave.size

    def _file(self):
        if self._h5 is None:
            self._h5 = h5py.File(self.path, "r")
        return self._h5

    def close(self):
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def label_array(self, labels=None) -> np.ndarray:
        """Labels as a float32 array (N, n_labels)."""
        return self.params[list(labels or self.labels)].to_numpy(np.float32)

    def read(self, start: int = 0, stop: int | None = None):
        """Clean (flux, error), float32 (n, P), for rows ``start:stop``."""
        return clean(self._array(FLUX_KEY, start, stop), self._array(ERROR_KEY, start, stop), self.path, start)

    def _array(self, key: str, start: int, stop: int | None) -> np.ndarray:
        """Rows ``start:stop`` of one array; a damaged file (its chunk index, a chunk) is one line naming it."""
        try:
            return np.asarray(self._file()[key][start:stop], dtype=np.float32)
        except OSError as e:
            raise DistillError(f"{self.path}: cannot read '{key}' rows {start}:{len(self) if stop is None else stop} "
                               f"({e}); the file is damaged: restore it or write it again") from None

    def batches(self, batch_size: int = 1024, start: int = 0, stop: int | None = None):
        """Yield (start, flux, error) in contiguous batches; memory stays at one batch."""
        stop = len(self) if stop is None else stop
        for lo in range(start, stop, batch_size):
            hi = min(lo + batch_size, stop)
            yield (lo, *self.read(lo, hi))

    def digest(self) -> str:
        """Content digest (blake2b of the file bytes), cached per (path, size, mtime)."""
        return file_digest(self.path)


def check_labels(params: pd.DataFrame, labels, path):
    """Every label a finite number: a NaN or infinite label would reach a head's fit."""
    for name in labels:
        values = pd.to_numeric(params[name], errors="coerce").to_numpy(np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise DistillError(f"{path}: '{PARAMS_KEY}' column {name} has {bad.size} NaN or infinite value(s) (or "
                               f"non-numbers), the first in row {bad[0]}; fill those labels or drop those spectra")


MIN_TRAIN = 2
"""The smallest training split any entry point fits on: batch statistics, a head's standardisation and R^2 need two
spectra."""


def check_train_size(n: int, where: str):
    """One refusal, shared by every entry point, of a training split (or subset) too small to fit on."""
    if n < MIN_TRAIN:
        raise DistillError(f"{where}: a training split of {n} spectr{'um' if n == 1 else 'a'} is too small for a head "
                           f"or a network (at least {MIN_TRAIN})")


def clean(flux, error, path="<array>", first_row=None):
    """Clip flux at 0, fill NaN errors at the array ends from the nearest finite pixel, reject the rest."""
    where = lambda i: f"row {first_row + i}" if first_row is not None else f"batch row {i}"  # noqa: E731
    bad_flux = ~np.isfinite(flux)
    if bad_flux.any():
        i, j = np.argwhere(bad_flux)[0]
        raise DistillError(f"{path}: non-finite flux at {where(i)}, pixel {j} ('{FLUX_KEY}'); remove or repair that "
                           f"spectrum")
    flux = np.clip(flux, 0.0, None)
    bad = ~np.isfinite(error)
    if bad.any():
        error = _fill_edges(error, bad)
        bad = ~np.isfinite(error)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise DistillError(f"{path}: non-finite error inside the array at {where(i)}, pixel {j} ('{ERROR_KEY}'); "
                               "only edge NaNs are filled")
    if (error <= 0).any():
        i, j = np.argwhere(error <= 0)[0]
        raise DistillError(f"{path}: non-positive error {error[i, j]} at {where(i)}, pixel {j} ('{ERROR_KEY}'); "
                           f"errors must be > 0")
    return flux, error


def _fill_edges(error, bad):
    """Fill leading/trailing NaN runs of each row with the first/last finite value."""
    error = error.copy()
    n_pix = error.shape[1]
    good = ~bad
    has_good = good.any(1)
    first = np.where(has_good, good.argmax(1), 0)
    last = np.where(has_good, n_pix - 1 - good[:, ::-1].argmax(1), n_pix - 1)
    cols = np.arange(n_pix)[None, :]
    rows = np.arange(error.shape[0])
    lead = bad & (cols < first[:, None]) & has_good[:, None]
    trail = bad & (cols > last[:, None]) & has_good[:, None]
    error = np.where(lead, error[rows, first][:, None], error)
    return np.where(trail, error[rows, last][:, None], error)


def noise_draw(split: str, rows, n_pixels: int, seed: int = NOISE_SEED) -> np.ndarray:
    """Standard normal noise (n, P) for the given row indices of a split.

    Each row's draw depends only on (seed, split, row), so any batching of the same
    spectra sees the same noise: the fixed validation/test noise of every experiment.
    """
    out = np.empty((len(rows), n_pixels), dtype=np.float32)
    for k, r in enumerate(rows):
        rng = np.random.default_rng([seed, SPLIT_CODES.get(split, 3), int(r)])
        out[k] = rng.standard_normal(n_pixels, dtype=np.float32)
    return out


def add_noise(flux, error, noise_level: float, z=None, rng=None):
    """``flux + noise_level * error * z``; z from ``rng`` (fresh noise) when not given."""
    if z is None:
        z = (rng or np.random.default_rng()).standard_normal(flux.shape, dtype=np.float32)
    return flux + np.float32(noise_level) * error * z


def shuffled_batches(spectra, batch_size: int, block_rows: int, rng):
    """Yield (row indices, flux, error) training minibatches of ``spectra`` (anything with ``len`` and
    ``read``): blocks of ``block_rows`` in random order, rows shuffled within a block, so memory stays at
    one block. A lone leftover row is skipped (batch statistics need two)."""
    for start in rng.permutation(np.arange(0, len(spectra), block_rows)):
        flux, error = spectra.read(int(start), int(min(start + block_rows, len(spectra))))
        order = rng.permutation(len(flux))
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            if len(idx) > 1 or len(order) == 1:
                yield start + idx, flux[idx], error[idx]


@dataclass
class ArraySpectra:
    """Spectra held in memory behind the reading interface of ``SpectrumFile`` (len, n_pixels, read)."""

    flux: np.ndarray
    error: np.ndarray

    def __len__(self):
        return len(self.flux)

    @property
    def n_pixels(self) -> int:
        return self.flux.shape[1]

    def read(self, start: int = 0, stop: int | None = None):
        return self.flux[start:stop], self.error[start:stop]


@dataclass
class Dataset:
    """The three split files of a dataset directory."""

    root: Path
    splits: dict

    def __getitem__(self, split) -> SpectrumFile:
        return self.splits[split]

    def summary(self) -> dict:
        """Size and content digest of every split (for logging)."""
        out = {}
        for name, f in self.splits.items():
            out[f"n_{name}"] = len(f)
            out[f"digest_{name}"] = f.digest()
        return out

    def close(self):
        for f in self.splits.values():
            f.close()


def open_dataset(root, labels=LABELS, splits=SPLITS) -> Dataset:
    """Open ``root/{train,val,test}/dataset.h5``, checking layout and labels; arrays stay on disk."""
    root = Path(root)
    if not root.is_dir():
        raise DistillError(f"{root}: dataset directory not found (run the simulate entry point or pass data=DIR)")
    sealed.check(root, splits)
    files = {s: SpectrumFile(root / s / "dataset.h5", labels) for s in splits}
    if "train" in files:
        check_train_size(len(files["train"]), str(files["train"].path))
    waves = [f.wave for f in files.values()]
    if any(w.shape != waves[0].shape or not np.allclose(w, waves[0]) for w in waves):
        raise DistillError(f"{root}: the splits have different wavelength grids")
    return Dataset(root, files)


def write_split(path, wave, params: pd.DataFrame, blocks, n_pixels: int):
    """Write one split in the pfsspec layout, streaming ``blocks`` of (flux, error) row blocks.

    The parameter table goes first (pandas, ``format='table'``), then the arrays are
    appended block by block with h5py, so memory does not grow with N.
    """
    n = len(params)
    params.to_hdf(path, key=PARAMS_KEY, mode="w", format="table")
    with h5py.File(path, "a") as f:
        f.create_dataset(WAVE_KEY, data=np.asarray(wave, dtype=np.float64))
        chunk = (max(1, min(n, 256)), n_pixels)
        flux = f.create_dataset(FLUX_KEY, shape=(n, n_pixels), dtype=np.float32, chunks=chunk)
        error = f.create_dataset(ERROR_KEY, shape=(n, n_pixels), dtype=np.float32, chunks=chunk)
        row = 0
        for flux_block, error_block in blocks:
            k = len(flux_block)
            flux[row:row + k] = flux_block
            error[row:row + k] = error_block
            row += k
        if row != n:
            raise RuntimeError(f"wrote {row} spectra, expected {n}")


def file_digest(path) -> str:
    """blake2b-128 of a file's bytes, cached in ~/.cache/distill keyed by path, size and mtime."""
    path = Path(path).resolve()
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    cache_file = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "distill" / "digests.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key]
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 23):
            h.update(block)
    cache[key] = h.hexdigest()
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        tmp.replace(cache_file)
    except OSError:
        pass
    return cache[key]
