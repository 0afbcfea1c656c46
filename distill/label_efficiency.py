"""Stage 3.3, label efficiency as the approach intends: the teacher learns without labels, so the student is distilled
without labels (``lambda_y = 0`` on every training spectrum) and only its heads see k labels; every comparator is
fitted on the same k labelled spectra. No comparator is picked on test: the student "pays off" only where its gain
over every comparator has an interval above zero at every k, and "does not pay off" where some comparator beats it
beyond a Holm-corrected interval.

Label count: the k training labels are not all a reader sees. Ridge's alpha and the networks' early stopping read
the validation split's labels too, so each verdict states "k training labels + n validation labels".

Readers are callables ``k -> test predictions`` that train on ``probe.subset_rows(n, k, seed)``, the same rows for
every reader. Ridge heads choose alpha on validation at each k, so raw-flux Ridge is not left with a fixed alpha on
fewer rows than pixels.
"""
import numpy as np

from . import head_cache, heads, intervals, probe
from .thresholds import FEW_LABELS


def ridge_on_val(fs: probe.FeatureSet, label: str) -> probe.LabelResult:
    """Ridge with the alpha of highest validation R^2 (test never consulted)."""
    return probe.fit_label(fs, label, "ridge", alpha=heads.ON_VAL)


def _lightgbm(fs: probe.FeatureSet, label: str, head_params: dict) -> probe.LabelResult:
    """LightGBM through the head cache: on every training row it is the student runs' raw-flux head."""
    return head_cache.fit_heads(fs, [label], ["lightgbm"], head_params)[label, "lightgbm"]


def head_reader(fs: probe.FeatureSet, label: str, head: str = "ridge", head_params: dict | None = None,
                seed: int = 42):
    """k -> test predictions of ``head`` (ridge, alpha on validation; or lightgbm) fitted on k training rows of
    ``fs``."""
    def read(k):
        part = probe.subset_train(fs, k, seed)
        fit = ridge_on_val(part, label) if head == "ridge" else _lightgbm(part, label, head_params)
        return fit.predictions["test"]
    return read


def predictions(readers: dict, sizes) -> dict:
    """{(name, k): test predictions} for every reader at every size."""
    return {(name, k): np.asarray(read(k), float) for name, read in readers.items() for k in sizes}


def gains_every(preds: dict, y_test, subject: str) -> dict:
    """{k: {comparator: Interval of subject - comparator}}: every comparator at every k, paired over the same test
    rows; none is singled out."""
    sizes = sorted({k for _, k in preds})
    return {k: {name: intervals.delta(y_test, preds[subject, k], p) for (name, kk), p in preds.items()
                if kk == k and name != subject} for k in sizes}


def p_values(preds: dict, y_test, subject: str, small: int = FEW_LABELS) -> dict:
    """{(k, comparator): bootstrap p-value of the gain} for every k <= ``small``."""
    return {(k, name): intervals.p_value(y_test, preds[subject, k], p) for (name, k), p in preds.items()
            if name != subject and 0 < k <= small}


def keyed_gains(gain: dict, label: str) -> dict:
    """Metric keys ``gain_test_r2_{label}_n_{k}_vs_{comparator}`` (and ``_lo``, ``_hi``)."""
    return {key: v for k, by in gain.items() for name, d in by.items()
            for key, v in d.keyed(f"gain_test_r2_{label}_n_{k}_vs_{name}").items()}


def verdict_every(gain: dict, p: dict, subject: str, n_val: int, small: int = FEW_LABELS) -> tuple:
    """(code, text) from the gains over every comparator at every k <= ``small``: ``pays_off`` when every gain's
    lower bound is above zero; ``does_not_pay_off`` when some comparator is better and Holm's procedure over all
    these comparisons rejects a zero gain; else ``tie`` (``distill.criteria.OUTCOMES`` maps them to pass / fail /
    undecided; ``not_measured`` decides nothing). ``p``: ``p_values``; ``n_val``: validation labels used."""
    few = {k: by for k, by in gain.items() if 0 < k <= small and by}
    if not few:
        return "not_measured", f"No training size up to {small} labels was run with a comparator."
    labels = f"training labels (+ {n_val} validation labels for alpha and early stopping)"
    k, name = min(((k, name) for k, by in few.items() for name in by), key=lambda kn: few[kn[0]][kn[1]].lo)
    weakest = f"the lowest gain's interval: {k} labels, {subject} - {name} {few[k][name].text()}"
    if all(d.lo > 0 for by in few.values() for d in by.values()):
        return "pays_off", f"With few labels the {subject} beats every comparator at every size ({labels}; {weakest})."
    beaten = sorted((k, name) for k, name in intervals.holm(p) if few.get(k, {}).get(name, None) is not None
                    and few[k][name].value < 0)
    if beaten:
        numbers = "; ".join(f"{k} {labels.split(' (')[0]}: {subject} - {name} {few[k][name].text()}"
                            for k, name in beaten)
        return "does_not_pay_off", (f"A comparator beats the {subject} with few labels beyond a Holm-corrected "
                                    f"interval ({numbers}; + {n_val} validation labels).")
    return "tie", (f"Not resolved: with few {labels} the {subject} neither beats every comparator nor loses to one "
                   f"beyond a Holm-corrected interval ({weakest}).")
