"""BOSZ-like label distribution: uniform in the box, optionally only plausible (T_eff, log g)."""
import numpy as np
import pandas as pd

from ..errors import DistillError

RANGES = {"T_eff": (3750.0, 6000.0), "log_g": (1.0, 5.0), "M_H": (-2.5, 0.75), "a_M": (-0.25, 0.5), "C_M": (-0.75, 0.5)}
PRIORS = ("uniform", "plausible")


def plausible(teff, logg) -> np.ndarray:
    """Main sequence / subgiants (log g >= 3.5) at any T_eff; giants only cooler than ~4000 + 400 log g K."""
    return (logg >= 3.5) | (teff <= 4000.0 + 400.0 * logg)


def parse_mag(mag: str) -> tuple:
    """'21.5' -> (21.5, 21.5); '20.5-22.5' or '20.5:22.5' -> (20.5, 22.5)."""
    text = str(mag).strip().replace(":", "-")
    try:
        parts = [float(x) for x in text.split("-")] if "-" in text[1:] else [float(text)]
    except ValueError:
        raise DistillError(f"mag={mag!r}: give a magnitude (21.5) or a range (20.5-22.5)") from None
    lo, hi = parts[0], parts[-1]
    if len(parts) > 2 or lo > hi or not 10 <= lo <= 30:
        raise DistillError(f"mag={mag!r}: give a magnitude (21.5) or a range lo-hi with lo <= hi, 10-30")
    return lo, hi


def sample_labels(n: int, seed_sequence, mag=(21.5, 21.5), prior="uniform") -> pd.DataFrame:
    """Draw n spectra's labels; each row from its own ``random_seed`` so it can be redrawn alone."""
    if prior not in PRIORS:
        raise DistillError(f"prior={prior!r}: choose one of {', '.join(PRIORS)}")
    seeds = np.random.default_rng(seed_sequence).integers(0, 2**31 - 1, n)
    rows = [_draw(np.random.default_rng(s), mag, prior) for s in seeds]
    df = pd.DataFrame(rows, columns=list(RANGES) + ["mag"])
    df["redshift"] = 0.0
    df["random_seed"] = seeds.astype(np.int64)
    return df


def _draw(rng, mag, prior):
    while True:
        row = [rng.uniform(lo, hi) for lo, hi in RANGES.values()]
        if prior == "uniform" or plausible(row[0], row[1]):
            return row + [rng.uniform(*mag)]
