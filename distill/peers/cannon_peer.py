"""The Cannon as a peer: fitted on the training split's fixed noisy flux, labelling the test subset (nothing is
chosen on validation, so it is not labelled). The test step is bounded to the training labels' range (the simulator's
label box, for simulated data), so its labels never leave the box.

``cannon_out_of_box_fraction``: the share of test spectra with at least one label on the edge of that box at the
bounded minimum, which is where the unbounded step (Ness et al. 2015) would have put it outside;
``cannon_out_of_box_fraction_{label}`` the same share for each label."""
import pandas as pd

from ..data import LABELS
from ..probe import subset_rows
from . import cannon
from .estimate import fixed_noisy
from .peer import TRAINING_SPECTRA, Peer

EDGE = "at_edge_"  # prefix of the prediction columns that flag a label on the box's edge


def fit(ds, noise_level: float, n_train: int, seed: int, **_) -> cannon.Cannon:
    """The Cannon of ``n_train`` training spectra (0: all, streamed block by block), its test step bounded to their
    labels' range."""
    train = ds["train"]
    keep = subset_rows(len(train), n_train, seed)
    labels = train.label_array(LABELS)[keep]
    if len(keep) == len(train):  # streamed block by block
        read = lambda a, b: cannon.normalise(fixed_noisy(train, "train", noise_level, range(a, b))[0])  # noqa
    else:
        noisy = cannon.normalise(fixed_noisy(train, "train", noise_level, range(len(train)))[0][keep])
        read = lambda a, b: noisy[a:b]  # noqa: E731
    return cannon.Cannon(seed=seed, box=(labels.min(0), labels.max(0))).fit(labels, read)


def predict(model: cannon.Cannon, ds, noise_level: float, n_spectra: int, **_) -> dict:
    """Every label of the first ``n_spectra`` test spectra, and whether each sits on the box's edge."""
    flux = fixed_noisy(ds["test"], "test", noise_level, range(n_spectra))[0]
    labels, edge = model.test_step(cannon.normalise(flux))
    return {"test": pd.DataFrame(labels, columns=list(LABELS)).join(
        pd.DataFrame(edge, columns=[EDGE + k for k in LABELS]))}


def out_of_box(test: pd.DataFrame) -> dict:
    """The shares of test spectra with any label, and with each label, on the box's edge."""
    edge = test[[EDGE + k for k in LABELS]].to_numpy(bool)
    return {"cannon_out_of_box_fraction": float(edge.any(1).mean())} | {
        f"cannon_out_of_box_fraction_{k}": float(share) for k, share in zip(LABELS, edge.mean(0))}


def diagnose(model, estimate, ds, n_spectra: int, n_train: int, **_) -> None:
    """Its training size, speed and out-of-box fractions."""
    estimate.metrics |= {"cannon_n_train": n_train or len(ds["train"]),
                         "cannon_test_spectra_per_second": n_spectra / estimate.predict_seconds}
    estimate.metrics |= out_of_box(estimate.predictions["test"])


CANNON = Peer("cannon", "The Cannon (quadratic in the labels, pixel weights from the training scatter, labels "
              "bounded to the training box)", sees_sigma=False, bounded=True, fit=fit, predict=predict,
              diagnose=diagnose, inside_box=True, options=(TRAINING_SPECTRA,))
