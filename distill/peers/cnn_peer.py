"""StarNet as a peer: one network per label, trained as the student is; predictions of val and the test subset at
their fixed draws."""
import pandas as pd

from .estimate import train_starnets
from .peer import TRAINING_SPECTRA, Option, Peer

EPOCHS = Option("epochs", 30, "most epochs", minimum=1)


def predict(trainers: dict, ds, n_spectra: int, **_) -> dict:
    """Each trained label of the validation split and of the first ``n_spectra`` test spectra."""
    out = {"val": pd.DataFrame(index=range(len(ds["val"]))), "test": pd.DataFrame(index=range(n_spectra))}
    for label, trainer in trainers.items():
        for split, frame in out.items():
            frame[label] = trainer.predict(split)[1][:len(frame)]
    return out


def diagnose(trainers: dict, estimate, ds, **_) -> None:
    """Epochs run per label and the network's size."""
    estimate.metrics |= {f"cnn_epochs_{label}": len(trainer.history) for label, trainer in trainers.items()}
    estimate.metrics["cnn_n_parameters"] = sum(p.numel() for p in list(trainers.values())[-1].student.parameters())


def epochs_at_scale(scale: dict, n_test: int) -> dict:
    return {"epochs": scale["peer_epochs"]}


CNN = Peer("cnn", "StarNet-style CNN on raw noisy flux", sees_sigma=False, bounded=True, fit=train_starnets,
           predict=predict, diagnose=diagnose, options=(TRAINING_SPECTRA, EPOCHS), step_params=epochs_at_scale)
