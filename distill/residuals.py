"""The error-only residual r that ``decompose_error`` stores as ``residual.parquet`` (columns split, id, residual,
error_only_prediction), read back per split: Stage B's target of the student and the teacher study's Stage A
reading."""
import numpy as np
import pandas as pd

from .data import SPLITS


def read_residual(path) -> dict:
    """{split: residual r in the label's unit (float64, rows in dataset order)} of a ``residual.parquet`` file."""
    table = pd.read_parquet(path)
    return {s: table[table["split"] == s].sort_values("id")["residual"].to_numpy(np.float64) for s in SPLITS}
