"""Spectra as an MLflow dataset input, so the UI's Datasets column shows them and ``datasets.digest`` searches them:
the directory's name, its path as the source, one digest of the split digests the project already computes, and the
split sizes as the profile."""
import hashlib
import json
import warnings
from pathlib import Path

import mlflow
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset

CONTEXT = "spectra"


class SpectraDataset(MetaDataset):
    def __init__(self, summary: dict, root):
        root = Path(root).resolve()
        digests = "".join(f"{k}={summary[k]};" for k in sorted(summary) if k.startswith("digest_"))
        with warnings.catch_warnings():  # a local path matches MLflow's local source twice; either is the same
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source(str(root))
        super().__init__(source, name=root.name,
                         digest=hashlib.blake2b(digests.encode(), digest_size=8).hexdigest())
        self._profile = {k: int(v) for k, v in summary.items() if k.startswith("n_")}

    @property
    def profile(self) -> dict:
        return self._profile

    def to_dict(self) -> dict:
        return super().to_dict() | {"profile": json.dumps(self._profile)}


def log_spectra_input(summary: dict, root):
    """Log the spectra as an input of the active run."""
    mlflow.log_input(SpectraDataset(summary, root), context=CONTEXT)
