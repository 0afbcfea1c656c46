"""3.3 label efficiency: alpha chosen on validation, the same rows for every reader, and the three-way verdict on
the interval of the student's gain over the best comparator."""
import numpy as np
import pandas as pd
import pytest

from distill import criteria, intervals, probe
from distill import label_efficiency as le


def wide(n=(300, 200, 400), d=300, seed=0) -> probe.FeatureSet:
    """As many training rows as features (raw flux at k ~ 4,096 labels): a few factors, the label among them, seen
    through noisy features; a tiny Ridge alpha interpolates the noise."""
    rng = np.random.default_rng(seed)
    loading = rng.normal(size=(5, d))
    x, y = {}, {}
    for split, rows in zip(("train", "val", "test"), n):
        factors = rng.normal(size=(rows, 5))
        x[split] = (factors @ loading + 3.0 * rng.normal(size=(rows, d))).astype(np.float32)
        y[split] = pd.DataFrame({"log_g": factors[:, 0]})
    return probe.FeatureSet(x, y, "wide")


def test_alpha_chosen_on_validation_beats_the_fixed_alpha_with_few_rows():
    fs = wide()
    chosen = le.ridge_on_val(fs, "log_g")
    fixed = probe.fit_label(fs, "log_g", "ridge", alpha=1e-3)
    assert chosen.scores["ridge_alpha_log_g"] >= 10
    assert chosen.scores["test_r2_log_g"] > fixed.scores["test_r2_log_g"] + 0.1


def test_every_reader_trains_on_the_same_rows():
    fs = wide()
    rows = probe.subset_rows(300, 50, seed=3)
    part = probe.subset_train(fs, 50, seed=3)
    np.testing.assert_array_equal(part.x["train"], fs.x["train"][rows])
    assert len(np.unique(rows)) == 50 and probe.subset_rows(300, 0).tolist() == list(range(300))


def planted(subject_noise, other_noise, n=1000, seed=0) -> tuple:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    shared = rng.normal(size=n)  # both readers share most of their error, as methods on the same spectra do
    preds = {}
    for k in (500, 1000, 2000):
        preds["student", k] = y + subject_noise * shared + 0.05 * rng.normal(size=n)
        preds["raw", k] = y + other_noise * shared + 0.05 * rng.normal(size=n)
        preds["supervised", k] = y + 2.0 * rng.normal(size=n)
    return preds, y


def judged(preds, y, small=5000):
    gain = le.gains_every(preds, y, "student")
    return le.verdict_every(gain, le.p_values(preds, y, "student", small), "student", n_val=200, small=small)


@pytest.mark.parametrize("subject_noise, other_noise, code", [(0.5, 0.7, "pays_off"), (0.7, 0.5, "does_not_pay_off"),
                                                              (0.6, 0.6, "tie")])
def test_verdict_is_three_way_on_the_intervals_of_the_gains(subject_noise, other_noise, code):
    preds, y = planted(subject_noise, other_noise)
    word, text = judged(preds, y)
    assert word == code and ("the lowest gain's interval" in text) == (code != "does_not_pay_off")
    status = {"pays_off": "pass", "does_not_pay_off": "fail", "tie": "undecided"}[code]
    assert criteria.outcome("3.3", word, text).tags() == {"verdict_3.3": status, "verdict_text_3.3": text,
                                                          "outcome_3.3": code}
    table = intervals.curve_table(preds, y, "n_train")
    assert len(table) == 9 and (table["test_r2_lo"] < table["test_r2"]).all()


def test_a_gain_at_one_size_only_does_not_pay_off():
    preds, y = planted(0.5, 0.7)
    preds["student", 1000] = preds["raw", 1000] + 0.01 * np.random.default_rng(1).normal(size=len(y))
    assert judged(preds, y)[0] == "tie"
    assert judged(preds, y, small=400)[0] == "not_measured"


def test_every_comparator_counts_and_none_is_picked_on_test():
    """The comparator of highest test R^2 (raw) is not the only one that can sink the subject: a weaker one
    (supervised, planted better than the subject at k=500 only) does too."""
    preds, y = planted(0.5, 0.7)
    preds["supervised", 500] = preds["student", 500] - 0.3 * (preds["student", 500] - y)  # 30 % less error
    gain = le.gains_every(preds, y, "student")
    assert set(gain[500]) == {"raw", "supervised"} and gain[500]["supervised"].hi < 0
    code, text = le.verdict_every(gain, le.p_values(preds, y, "student"), "student", n_val=200)
    assert code == "does_not_pay_off" and "supervised" in text and "200 validation labels" in text
    keys = le.keyed_gains(gain, "log_g")
    assert {"gain_test_r2_log_g_n_500_vs_supervised_lo", "gain_test_r2_log_g_n_2000_vs_raw_hi"} <= set(keys)


@pytest.mark.parametrize("subject_noise, other_noise, code", [(0.5, 0.7, "tie"), (0.6, 0.6, "tie")])
def test_pays_off_only_over_every_comparator(subject_noise, other_noise, code):
    """The planted supervised network (error sd 2) is weak, so beating raw means beating every comparator; a gain
    over raw shown to be zero stays a tie (the interval must clear zero for every comparator)."""
    preds, y = planted(subject_noise, other_noise)
    preds["raw", 1000] = preds["student", 1000].copy()
    gain = le.gains_every(preds, y, "student")
    assert le.verdict_every(gain, le.p_values(preds, y, "student"), "student", n_val=100)[0] == code
    preds, y = planted(0.5, 0.7)
    gain = le.gains_every(preds, y, "student")
    assert le.verdict_every(gain, le.p_values(preds, y, "student"), "student", n_val=100)[0] == "pays_off"


def test_holm_steps_down():
    from distill import intervals
    assert intervals.holm({"a": 0.01, "b": 0.02, "c": 0.04}) == {"a", "b", "c"}  # Bonferroni (0.05 / 3) keeps a only
    assert intervals.holm({"a": 0.01, "b": 0.03, "c": 0.04}) == {"a"}  # 0.03 > 0.05 / 2 stops the steps
