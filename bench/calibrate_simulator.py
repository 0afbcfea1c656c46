"""Calibrate the built-in simulator against the real-data reference (docs/simulator.md).

Trains Ridge (alpha 0.001) and LightGBM (15 leaves, 50 trees) on raw noisy flux at
several noise levels and prints test R^2 per label beside the reference; also the
clean error alone -> log g with the leak on and off, and the median S/N.

    python bench/calibrate_simulator.py --n-train 32000            # simulates into a temp dir
    python bench/calibrate_simulator.py --data data/sim32k         # reuses a dataset
    python bench/calibrate_simulator.py --n-train 4000 --forest-gravity false   # the forest without gravity
"""
import tempfile
import time
import warnings
from pathlib import Path

import click
import lightgbm as lgb
import numpy as np
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

from distill.data import LABELS, add_noise, noise_draw, open_dataset
from distill.simulator.dataset import simulate_dataset

REFERENCE_LOGG = {0.0: (0.999, 0.999), 0.1: (0.917, 0.972), 0.2: (0.841, 0.932), 0.5: (0.667, 0.757),
                  1.0: (0.469, 0.558), 2.0: (0.254, 0.304)}


def load(split, noise_level, what="noisy"):
    flux, error = split.read()
    y = split.label_array()
    if what == "error":
        return error, y
    z = noise_draw("bench", range(len(split)), split.n_pixels, seed=7 if split.path.parent.name == "train" else 42)
    return add_noise(flux, error, noise_level, z), y


def fit_both(x_train, y_train, x_test, y_test):
    scaler = StandardScaler().fit(x_train)
    xs_train, xs_test = scaler.transform(x_train), scaler.transform(x_test)
    ridge = Ridge(alpha=1e-3).fit(xs_train, y_train)
    r2_ridge = [r2_score(y_test[:, j], ridge.predict(xs_test)[:, j]) for j in range(y_train.shape[1])]
    # LightGBM with 15 leaves and 50 trees (LGBMRegressor's other defaults); features binned once for all labels
    binned = lgb.Dataset(x_train, label=np.ascontiguousarray(y_train[:, 0]), params={"verbose": -1},
                         free_raw_data=False).construct()
    r2_lgbm = []
    for j in range(y_train.shape[1]):
        binned.set_label(np.ascontiguousarray(y_train[:, j]))
        booster = lgb.train({"objective": "regression", "num_leaves": 15, "learning_rate": 0.1,
                             "verbose": -1}, binned, 50)
        r2_lgbm.append(r2_score(y_test[:, j], booster.predict(x_test)))
    return np.array(r2_ridge), np.array(r2_lgbm)


@click.command()
@click.option("--data", "data_dir", type=click.Path(), default=None, help="existing dataset (else simulate)")
@click.option("--n-train", default=32000, show_default=True)
@click.option("--n-test", default=1000, show_default=True)
@click.option("--noise-levels", default="0,0.1,0.5,1.0,2.0", show_default=True)
@click.option("--forest-gravity", default=True, type=bool, show_default=True,
              help="the simulator's switch: ionised forest lines ~g^(-1/3) (false: no gravity term)")
@click.option("--leak-control/--no-leak-control", default=True, show_default=True,
              help="also simulate the leak-free control for the error-only readings")
def main(data_dir, n_train, n_test, noise_levels, forest_gravity, leak_control):
    warnings.filterwarnings("ignore", message=".*ill-conditioned.*")
    levels = [float(x) for x in noise_levels.split(",")]
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        if data_dir is None:
            t = time.time()
            data_dir = Path(tmp) / "leak"
            simulate_dataset(data_dir, dict(train=n_train, val=10, test=n_test), forest_gravity=forest_gravity)
            if leak_control:
                simulate_dataset(Path(tmp) / "noleak", dict(train=n_train, val=10, test=n_test), leak=False,
                                 forest_gravity=forest_gravity)
            print(f"simulated {1 + leak_control} x {n_train + n_test} spectra (forest_gravity={forest_gravity}) "
                  f"in {time.time() - t:.0f} s")
        ds = open_dataset(data_dir)
        train, test = ds["train"], ds["test"]
        print(f"data: {data_dir}  n_train={len(train)}  n_test={len(test)}  median S/N (noise 1) = "
              f"{np.median(train.params['snr']):.2f}\n")
        print(f"{'noise':>5} {'model':>8} " + " ".join(f"{c:>7}" for c in LABELS) + "   ref log_g")
        for level in levels:
            x_train, y_train = load(train, level)
            x_test, y_test = load(test, level)
            t = time.time()
            ridge, lgbm = fit_both(x_train, y_train, x_test, y_test)
            ref = REFERENCE_LOGG.get(level, (np.nan, np.nan))
            print(f"{level:5.1f} {'Ridge':>8} " + " ".join(f"{v:7.3f}" for v in ridge) + f"   {ref[0]:.3f}")
            print(f"{level:5.1f} {'LightGBM':>8} " + " ".join(f"{v:7.3f}" for v in lgbm) + f"   {ref[1]:.3f}"
                  f"   ({time.time() - t:.0f} s)")
        print("\nclean error only -> labels (leak on / off):")
        for name in ("leak", "noleak"):
            path = Path(data_dir) if name == "leak" else Path(tmp) / "noleak"
            if not path.exists():
                continue
            d = open_dataset(path)
            ridge, lgbm = fit_both(*load(d["train"], 0, "error"), *load(d["test"], 0, "error"))
            print(f"  {name:>6}: Ridge log_g R^2 {ridge[1]:.3f}   LightGBM log_g R^2 {lgbm[1]:.3f}   "
                  f"(T_eff Ridge {ridge[0]:.3f})")


if __name__ == "__main__":
    main()
