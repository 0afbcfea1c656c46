"""Stage 4 and robustness: the label-shuffle guard catches a broken shuffle, shuffled sigma reaches only the
teacher's sigma channel, bad options fail cleanly (`ablate` end to end runs in tests/test_main.py)."""
import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from distill import ablations, probe
from distill.data import ArraySpectra, add_noise, noise_draw, open_dataset
from distill.intervals import Interval
from distill.student.targets import fixed_targets
from distill.teacher import PRESETS, BlindSpotUNet1D
from entrypoints import ablate


def planted(n=(400, 100, 300), d=20, seed=0) -> probe.FeatureSet:
    """Features that carry the label linearly (R^2 ~ 0.9), rows aligned, for train / val / test."""
    rng = np.random.default_rng(seed)
    beta = rng.normal(size=d)
    x, y = {}, {}
    for split, rows in zip(("train", "val", "test"), n):
        x[split] = rng.normal(size=(rows, d)).astype(np.float32)
        y[split] = pd.DataFrame({"log_g": x[split] @ beta + rng.normal(scale=1.5, size=rows)})
    return probe.FeatureSet(x, y, "planted")


def demo_scale(seed=0) -> probe.FeatureSet:
    """Features that carry log g, at the demo's split sizes (2,000 / 500 / 1,000)."""
    return planted((2000, 500, 1000), d=64, seed=seed)


def leaky_shuffle(weight):
    """A shuffle that lets ``weight`` of the true training labels through."""
    honest = ablations.shuffled_training_labels

    def shuffle(fs, label, seed):
        out = honest(fs, label, seed)
        true = fs.y["train"][label].to_numpy()
        out.y["train"][label] = np.sqrt(1 - weight ** 2) * out.y["train"][label].to_numpy() + weight * true
        return out
    return shuffle


def test_label_shuffle_guard_passes_an_honest_pipeline():
    fs = planted()
    check = ablations.shuffle_check(fs, "log_g", "ridge", {})
    assert check["test_r2"] > 0.8 and 0 < check["shuffled_p_value"] <= 1
    assert ablations.leakage({("planted", "ridge"): check}).status == "pass"
    shuffled = ablations.shuffled_training_labels(fs, "log_g", 0)
    assert sorted(shuffled.y["train"]["log_g"]) == sorted(fs.y["train"]["log_g"])
    assert (shuffled.y["train"]["log_g"] != fs.y["train"]["log_g"]).mean() > 0.9
    pd.testing.assert_frame_equal(shuffled.y["test"], fs.y["test"])
    alarms = sum(ablations.leakage({("planted", "ridge"): ablations.shuffle_check(demo_scale(seed), "log_g", "ridge",
                                                                                 {}, seed=seed)}).status != "pass"
                 for seed in range(10))
    assert alarms <= 1  # false-alarm rate 0.01: P(2 or more of 10) = 0.004


@pytest.mark.parametrize("head, params", [("ridge", {"alpha": "val"}), ("ridge", {"pca": 8}), ("ols", {})])
def test_linear_heads_fit_every_shuffle_at_once_as_one_at_a_time(monkeypatch, head, params):
    """The shuffle guard's linear heads share one decomposition across the permutations: the same figures as one
    fit per permutation."""
    fs = planted()
    together = ablations.shuffle_check(fs, "log_g", head, params, shuffles=5)
    monkeypatch.setattr(ablations, "LINEAR", ())
    one_at_a_time = ablations.shuffle_check(fs, "log_g", head, params, shuffles=5)
    assert together.keys() == one_at_a_time.keys()
    np.testing.assert_allclose(list(together.values()), list(one_at_a_time.values()), rtol=1e-6, atol=1e-7)


def test_label_shuffle_guard_catches_a_leak_of_005_r2(monkeypatch):
    """A shuffle that lets a little of the true labels through: the shuffled heads' predictions explain 0.05 of the
    test labels' variance (squared correlation); their mean test R^2 stays near 0.04, under a bar of 0.05."""
    fs = demo_scale()
    monkeypatch.setattr(ablations, "shuffled_training_labels", leaky_shuffle(0.04))
    check = ablations.shuffle_check(fs, "log_g", "ridge", {})
    assert 0.03 < check["shuffled_correlation"] ** 2 < 0.07
    v = ablations.leakage({("planted", "ridge"): check, ("other", "ridge"): dict(check, shuffled_p_value=0.5)})
    assert v.tags()["verdict_4.3"] == "fail" and v.outcome == "leakage_alarm"
    assert "does not detect labels encoded in the features" in v.text
    monkeypatch.setattr(ablations, "shuffled_training_labels", lambda fs, label, seed: fs)  # a shuffle doing nothing
    assert ablations.leakage({("planted", "ridge"): ablations.shuffle_check(fs, "log_g", "ridge", {})}).status != "pass"


class Spy(BlindSpotUNet1D):
    """A teacher that records what it is fed."""

    def feature_halves(self, noisy, sigma, *args, **kwargs):
        self.seen.append((noisy.clone(), sigma.clone()))
        return super().feature_halves(noisy, sigma, *args, **kwargs)


def test_shuffled_sigma_reaches_only_the_sigma_channel(tiny_data):
    flux, error = open_dataset(tiny_data)["val"].read()
    torch.manual_seed(0)
    teacher = Spy(PRESETS["cpu"]).eval()
    teacher.seen = []
    shuffled = ablations.permuted_sigma(error, seed=3)
    assert sorted(map(tuple, shuffled[:, :4])) == sorted(map(tuple, error[:, :4]))
    assert not np.array_equal(shuffled, error)
    # the first layer, where sigma enters: an untrained teacher's deep layers barely respond to it (~1e-7)
    z = fixed_targets(teacher, ArraySpectra(flux, error), "val", 1.0, "enc_0", "global_mean", "fwd",
                      torch.device("cpu"))
    z_shuffled = fixed_targets(teacher, ArraySpectra(flux, error), "val", 1.0, "enc_0", "global_mean", "fwd",
                               torch.device("cpu"), sigma_error=shuffled)
    (noisy, sigma), (noisy_s, sigma_s) = teacher.seen
    expected = add_noise(flux, error, 1.0, noise_draw("val", range(len(flux)), flux.shape[1]))
    np.testing.assert_array_equal(noisy.numpy(), expected)
    np.testing.assert_array_equal(noisy_s.numpy(), expected)  # the flux is unchanged
    np.testing.assert_array_equal(sigma.numpy(), error)
    np.testing.assert_array_equal(sigma_s.numpy(), shuffled)
    assert not np.allclose(z, z_shuffled)  # the teacher reads sigma


def test_bad_ablate_options_fail_cleanly(mlflow_store, tiny_data):
    for params, message in ((("--noise-levels", "0,-1"), "finite numbers >= 0"),
                            (("--kind", "dropout"), "unknown kind 'dropout'"),
                            (("--sizes", "1k"), "sizes='1k'"),
                            (("--label", "mass"), "unknown label 'mass'")):
        result = CliRunner().invoke(ablate.main, ["--data", str(tiny_data), *params])
        ok = result.exit_code == 2 and result.output.startswith("error: ") and message in result.output
        assert ok, result.output[-1500:]


def sweep_table(drops: dict, at_training=0.5) -> pd.DataFrame:
    return pd.DataFrame([{"features": n, "noise_level": lv, "test_r2": at_training - (d if lv == 2.0 else 0.0)}
                         for n, d in drops.items() for lv in (1.0, 2.0)])


def slower(drops: dict, half=0.01) -> dict:
    """Planted intervals of raw flux's drop minus each reader's."""
    return {n: Interval(drops["raw"] - d, drops["raw"] - d - half, drops["raw"] - d + half)
            for n, d in drops.items() if n != "raw"}


def test_robustness_names_the_sigma_control_and_reads_intervals():
    """A teacher that degrades more slowly than raw flux is robust; when raw flux read beside the true sigma is as
    robust, the verdict says the robustness may come through sigma; the control alone is never 'a latent'; an
    interval that spans the margin is undecided."""
    drops = {"teacher": 0.05, "raw": 0.3, "flux_and_sigma": 0.3}
    (v,) = ablations.robustness(sweep_table(drops), 1.0, slower(drops))
    assert v.tags()["verdict_1.2"] == "pass" and "through sigma" not in v.text and "flux_and_sigma's" in v.text
    drops = {"teacher": 0.05, "raw": 0.3, "flux_and_sigma": 0.06}
    (v,) = ablations.robustness(sweep_table(drops), 1.0, slower(drops))
    assert v.status == "pass" and "through sigma" in v.text
    drops = {"teacher": 0.3, "raw": 0.3, "flux_and_sigma": 0.0}
    assert [v.status for v in ablations.robustness(sweep_table(drops), 1.0, slower(drops))] == ["fail"]
    drops = {"teacher": 0.28, "raw": 0.3, "flux_and_sigma": 0.3}  # 0.02 [0.0, 0.04]: spans the 0.02 margin
    assert [v.status for v in ablations.robustness(sweep_table(drops), 1.0, slower(drops, 0.02))] == ["undecided"]
    drops = {"teacher": 0.05, "raw": 0.3, "student": 0.3, "flux_and_sigma": 0.3}  # 3.2 judges the student
    table = sweep_table(drops)
    assert [(v.stage, v.status) for v in ablations.robustness(table, 1.0, slower(drops))] == [("1.2", "pass"),
                                                                                               ("3.2", "fail")]
    table.loc[table["features"] == "teacher", "test_r2"] = 0.01  # a latent that reads nothing cannot be robust
    assert ablations.robustness(table, 1.0, slower(drops))[0].status == "fail"


def test_the_drop_difference_is_paired_over_four_predictions():
    rng = np.random.default_rng(0)
    y = rng.normal(size=1000)
    preds = {("raw", 1.0): y + 0.5 * rng.normal(size=1000), ("raw", 2.0): y + 0.9 * rng.normal(size=1000),
             ("teacher", 1.0): y + 0.5 * rng.normal(size=1000), ("teacher", 2.0): y + 0.55 * rng.normal(size=1000)}
    d = ablations.slower_than_raw(preds, y, 1.0, 2.0)["teacher"]
    assert d.lo > 0.02 and set(ablations.slower_than_raw(preds, y, 1.0, 2.0)) == {"teacher"}


@pytest.mark.parametrize("verdict, stage, interval, status", [
    (ablations.error_dependence, "4.1", (0.037, 0.022, 0.053), "pass"),  # the whole loss below 0.1
    (ablations.error_dependence, "4.1", (0.09, 0.05, 0.13), "undecided"),
    (ablations.error_dependence, "4.1", (0.2, 0.15, 0.25), "fail"),
    (ablations.sigma_use, "4.2", (0.2, 0.1, 0.3), "pass"),  # the whole drop above 0.05
    (ablations.sigma_use, "4.2", (0.05, 0.02, 0.08), "undecided"),
    (ablations.sigma_use, "4.2", (0.01, 0.0, 0.02), "fail")])
def test_stage_4_logs_the_criterions_status_with_its_interval(verdict, stage, interval, status):
    v = verdict(Interval(*interval))
    assert v.tags()[f"verdict_{stage}"] == status and Interval(*interval).text() in v.tags()[f"verdict_text_{stage}"]
