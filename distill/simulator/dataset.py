"""Simulate a whole dataset (train/val/test) into the pfsspec layout, streamed and atomic."""
import contextlib
import multiprocessing
import os
import shutil
import signal
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .. import data, processes
from ..errors import DistillError
from .grid import pixel_wave
from .model import SpectrumModel
from .noise import error_from_flux
from .sample import sample_labels

CHUNK = 256
HIDDEN = ".distill-"  # the hidden directory being written: .distill-{pid}-{out name}.XXXXXXXX
_worker_model = None


def _init_worker(parent: int):
    """A worker dies with the process that started it (a SIGKILLed simulate leaves no worker behind)."""
    global _worker_model
    processes.die_with_parent(signal.SIGKILL, parent)
    _worker_model = SpectrumModel()


def _render(args):
    """(labels DataFrame, n_exposures, leak) -> (flux, error) for one chunk."""
    global _worker_model
    params, n_exposures, leak = args
    model = _worker_model = _worker_model or SpectrumModel()
    flux = model.flux(params)
    return flux, error_from_flux(flux, params["mag"].to_numpy(), n_exposures, leak)


def simulate_dataset(out, sizes: dict, seed=42, mag=(21.5, 21.5), n_exposures=20, leak=True,
                     prior="uniform", workers=None, progress=None, forest_gravity=True) -> dict:
    """Write ``out/{split}/dataset.h5`` for each split in ``sizes``; return per-split summaries.

    ``forest_gravity``: whether the ionised forest lines weaken with gravity (stored per spectrum as the
    ``forest_gravity`` column, so the Fisher ceiling uses the same physics).
    Written into a hidden directory ``.distill-{pid}-{name}.*`` beside ``out`` and moved into place only when
    every split is complete, so a failed run leaves nothing that looks finished; those of dead processes are removed.
    ``workers``: processes rendering spectra (1: in this process).
    ``progress``: optional callable(n_done) called after each chunk.
    """
    out = Path(out)
    if any(int(n) < 1 for n in sizes.values()):
        raise DistillError(f"split sizes must be >= 1, got {sizes}")
    if n_exposures < 1:
        raise DistillError(f"n_exposures={n_exposures}: must be >= 1")
    if out.exists() and any(out.iterdir()):
        raise DistillError(f"{out}: exists and is not empty; choose a new out= or remove it")
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = processes.owned_tempdir(parent, HIDDEN, f"{out.name}.")
    except OSError as e:
        raise DistillError(f"{out}: cannot write there ({e.strerror})") from None
    workers = (workers or int(os.environ.get("DISTILL_WORKERS", 0))
               or (1 if sum(sizes.values()) < 1000 else min(os.cpu_count() or 1, 4)))
    summary = {}
    try:
        with contextlib.ExitStack() as stack:
            if workers > 1:
                pool = stack.enter_context(ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"),
                                                               _init_worker, (os.getpid(),)))
                render = pool.map
            else:
                render = map
            for split, n in sizes.items():
                params = sample_labels(int(n), [seed, data.SPLIT_CODES[split]], mag, prior)
                params["forest_gravity"] = float(forest_gravity)
                snr = np.empty(len(params))
                chunks = [(params.iloc[i:i + CHUNK], n_exposures, leak) for i in range(0, len(params), CHUNK)]

                def blocks():
                    for i, (flux, error) in zip(range(0, len(params), CHUNK), render(_render, chunks)):
                        snr[i:i + len(flux)] = np.median(flux / error, axis=1)
                        if progress:
                            progress(len(flux))
                        yield flux, error

                (tmp / split).mkdir()
                path = tmp / split / "dataset.h5"
                # snr is only known after rendering: write the arrays, then rewrite the small table
                data.write_split(path, pixel_wave(), params.assign(snr=np.nan), blocks(), pixel_wave().size)
                params["snr"] = snr
                params.to_hdf(path, key=data.PARAMS_KEY, mode="a", format="table")
                summary[split] = {"n": int(n), "median_snr": float(np.median(snr))}
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            if out.exists():
                out.rmdir()
            tmp.rename(out)
        except OSError:
            raise DistillError(f"{out}: written by another process meanwhile; choose a new out= or remove it") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary
