"""The Cannon's log g against its training size at noise 1: 1.5k, 4k, 8k, 16k and 32k training spectra, nested
subsets of one simulated 32k training split, labelling the same 1k test spectra (about 6 min on 2 cores).

    python bench/cannon_size.py                    # simulates 32k / 200 / 1k spectra into a temporary directory
    python bench/cannon_size.py --data data/big    # or reads a dataset already made (its first rows)

Per training size: fit and predict seconds; log g test R^2 of the peer's bounded step with its interval, of the
unbounded step (Ness et al. 2015) and of the bounded step regularised by the training labels' Gaussian; the share of
test spectra the unbounded step puts outside the box in any label, and the bounded step's share on the edge (any
label, log g); the bounded step's log g mean squared error on the spectra informative about log g (unbiased
Cramer-Rao sd <= 0.1 x the box, ``template_fit.informative``) and on the rest; and the model's own log g information
``sum_p (d model_p / d log g)^2 / s_p^2`` (median over the test spectra, dex^-2), which noise in the fitted
coefficients inflates at small training sizes.
"""
import os
import tempfile
import time

import click
import numpy as np

from distill import fisher, intervals
from distill.data import LABELS, open_dataset
from distill.peers import cannon, template_fit
from distill.peers.estimate import fixed_noisy
from distill.simulator.dataset import simulate_dataset

SIZES = (1500, 4000, 8000, 16000, 32000)
LOG_G = LABELS.index("log_g")


def model_information(model: cannon.Cannon, labels: np.ndarray, index: int) -> np.ndarray:
    """``sum_p (d model_p / d label)^2 / s_p^2`` at each row of ``labels`` (n,), label units^-2."""
    scaled = (labels - model.mean) / model.std
    return np.array([(((model.theta.T @ model.design_jacobian(x)[:, index]) / model.std[index]) ** 2
                      / model.scatter2).sum() for x in scaled])


def informative_rows(ds, n_test: int, workers: int) -> np.ndarray:
    """Test spectra whose unbiased log g bound at noise 1 has sd <= 0.1 x the box width."""
    info = fisher.split_fisher(ds["test"], rows=n_test, workers=workers)
    unbiased = fisher.crb(info, LOG_G, np.ones(len(LABELS)), 1.0)["marginal"].to_numpy()
    return template_fit.informative(unbiased, template_fit.HI[LOG_G] - template_fit.LO[LOG_G])


def outside(labels: np.ndarray) -> np.ndarray:
    """Spectra with any label outside the simulator's box (bool, (n,))."""
    return ((labels < template_fit.LO) | (labels > template_fit.HI)).any(1)


def one_size(n: int, labels, flux, test_flux, truth, informative, seed: int) -> dict:
    """Every figure of one training size (the first ``n`` training rows)."""
    box = (labels[:n].min(0), labels[:n].max(0))
    t = time.time()
    model = cannon.Cannon(seed=seed, box=box).fit(labels[:n], lambda a, b: flux[a:b])
    fit_seconds = time.time() - t
    t = time.time()
    bounded, edge = model.test_step(test_flux)
    predict_seconds = time.time() - t
    unbounded = cannon.Cannon(seed=seed).fit(labels[:n], lambda a, b: flux[a:b]).predict(test_flux)
    prior = cannon.Cannon(seed=seed, box=box, prior=True).fit(labels[:n], lambda a, b: flux[a:b]).predict(test_flux)
    y = truth[:, LOG_G]
    r2 = intervals.r2(y, bounded[:, LOG_G])
    sq = (bounded[:, LOG_G] - y) ** 2
    return {"n": n, "fit_s": fit_seconds, "predict_s": predict_seconds, "r2": r2.value, "lo": r2.lo, "hi": r2.hi,
            "r2_unbounded": intervals.r2(y, unbounded[:, LOG_G]).value,
            "r2_prior": intervals.r2(y, prior[:, LOG_G]).value, "outside": outside(unbounded).mean(),
            "edge": edge.any(1).mean(), "edge_log_g": edge[:, LOG_G].mean(), "mse_informative": sq[informative].mean(),
            "mse_rest": sq[~informative].mean(), "info_log_g": np.median(model_information(model, truth, LOG_G))}


def print_row(r: dict) -> None:
    print(f"{r['n']:>6} | {r['fit_s']:5.2f} | {r['predict_s']:6.1f} | {r['r2']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] | "
          f"{r['r2_unbounded']:.3f} | {r['r2_prior']:.3f} | {r['outside']:.3f} | {r['edge']:.3f} | "
          f"{r['edge_log_g']:.3f} | {r['mse_informative']:.3f} | {r['mse_rest']:.3f} | {r['info_log_g']:6.1f}",
          flush=True)


@click.command()
@click.option("--data", default="", help="a simulated dataset with at least 32k training spectra (default: simulate)")
@click.option("--n-test", default=1000, show_default=True)
@click.option("--seed", default=42, show_default=True)
def main(data, n_test, seed):
    workers = min(os.cpu_count() or 1, 2)
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        if not data:
            t = time.time()
            data = f"{tmp}/d"
            simulate_dataset(data, dict(train=SIZES[-1], val=200, test=n_test), seed=7, workers=workers)
            print(f"simulated {SIZES[-1]} / 200 / {n_test} spectra in {time.time() - t:.0f} s")
        ds = open_dataset(data, labels=LABELS)
        n_test = min(n_test, len(ds["test"]))
        sizes = [n for n in SIZES if n <= len(ds["train"])]
        labels = ds["train"].label_array(LABELS)[:sizes[-1]]
        flux = cannon.normalise(fixed_noisy(ds["train"], "train", 1.0, range(sizes[-1]))[0])
        test_flux = cannon.normalise(fixed_noisy(ds["test"], "test", 1.0, range(n_test))[0])
        truth = ds["test"].label_array(LABELS)[:n_test]
        informative = informative_rows(ds, n_test, workers)
        print(f"{informative.sum()} of {n_test} test spectra informative about log g (sd <= 0.1 x the box)")
        print("     N | fit s | pred s | log g R^2 [95 %] | unbounded | +prior | outside (unbounded) | on edge | "
              "log g on edge | MSE informative | MSE rest | model log g info")
        for n in sizes:
            print_row(one_size(n, labels, flux, test_flux, truth, informative, seed))


if __name__ == "__main__":
    main()
