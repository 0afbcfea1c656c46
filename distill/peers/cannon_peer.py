"""The Cannon as a peer: fitted on the training split's fixed noisy flux, labelling the test subset (nothing is
chosen on validation, so it is not labelled)."""
import pandas as pd

from ..data import LABELS
from ..probe import subset_rows
from . import cannon
from .estimate import fixed_noisy
from .peer import TRAINING_SPECTRA, Peer


def fit(ds, noise_level: float, n_train: int, seed: int, **_) -> cannon.Cannon:
    """The Cannon of ``n_train`` training spectra (0: all, streamed block by block)."""
    train = ds["train"]
    keep = subset_rows(len(train), n_train, seed)
    labels = train.label_array(LABELS)[keep]
    if len(keep) == len(train):  # streamed block by block
        read = lambda a, b: cannon.normalise(fixed_noisy(train, "train", noise_level, range(a, b))[0])  # noqa
    else:
        noisy = cannon.normalise(fixed_noisy(train, "train", noise_level, range(len(train)))[0][keep])
        read = lambda a, b: noisy[a:b]  # noqa: E731
    return cannon.Cannon(seed=seed).fit(labels, read)


def predict(model: cannon.Cannon, ds, noise_level: float, n_spectra: int, **_) -> dict:
    """Every label of the first ``n_spectra`` test spectra."""
    flux = fixed_noisy(ds["test"], "test", noise_level, range(n_spectra))[0]
    return {"test": pd.DataFrame(model.predict(cannon.normalise(flux)), columns=list(LABELS))}


def diagnose(model, estimate, ds, n_spectra: int, n_train: int, **_) -> None:
    """Its training size and speed."""
    estimate.metrics |= {"cannon_n_train": n_train or len(ds["train"]),
                         "cannon_test_spectra_per_second": n_spectra / estimate.predict_seconds}


CANNON = Peer("cannon", "The Cannon (quadratic in the labels, pixel weights from the training scatter)",
              sees_sigma=False, bounded=True, fit=fit, predict=predict, diagnose=diagnose,
              options=(TRAINING_SPECTRA,))
