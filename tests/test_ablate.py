"""Stage 4 and robustness: the label-shuffle guard catches a broken shuffle, shuffled sigma reaches only the
teacher's sigma channel, and `ablate` logs one child per ablation with a point per level and size."""
import mlflow
import numpy as np
import pandas as pd
import torch
from click.testing import CliRunner

from distill import ablations, probe
from distill.data import add_noise, noise_draw, open_dataset
from distill.student.targets import fixed_targets
from distill.teacher import PRESETS, BlindSpotUNet1D, save
from entrypoints import ablate
from tests.conftest import mlflow_run


def planted(n=(400, 100, 300), d=20, seed=0) -> probe.FeatureSet:
    """Features that carry the label linearly (R^2 ~ 0.9), rows aligned, for train / val / test."""
    rng = np.random.default_rng(seed)
    beta = rng.normal(size=d)
    x, y = {}, {}
    for split, rows in zip(("train", "val", "test"), n):
        x[split] = rng.normal(size=(rows, d)).astype(np.float32)
        y[split] = pd.DataFrame({"log_g": x[split] @ beta + rng.normal(scale=1.5, size=rows)})
    return probe.FeatureSet(x, y, "planted")


def test_label_shuffle_guard(monkeypatch):
    """Shuffled labels read nothing; a shuffle that does nothing must raise the alarm."""
    fs = planted()
    check = ablations.shuffle_check(fs, "log_g", "ridge", {})
    assert check["test_r2"] > 0.8
    assert abs(check["shuffled_mean"]) < check["tolerance_used"] < 0.2
    assert ablations.leakage(check["shuffled_mean"], check["tolerance_used"])[0] == "pass"
    shuffled = ablations.shuffled_training_labels(fs, "log_g", 0)
    assert sorted(shuffled.y["train"]["log_g"]) == sorted(fs.y["train"]["log_g"])
    assert (shuffled.y["train"]["log_g"] != fs.y["train"]["log_g"]).mean() > 0.9
    pd.testing.assert_frame_equal(shuffled.y["test"], fs.y["test"])

    monkeypatch.setattr(ablations, "shuffled_training_labels", lambda fs, label, seed: fs)  # a broken shuffle
    broken = ablations.shuffle_check(fs, "log_g", "ridge", {})
    assert ablations.leakage(broken["shuffled_mean"], broken["tolerance_used"])[0] == "leakage_alarm"


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
    assert sorted(map(tuple, shuffled[:, :4])) == sorted(map(tuple, error[:, :4])) and not np.array_equal(shuffled, error)
    z = fixed_targets(teacher, flux, error, "val", 1.0, "enc_pre_latent", "global_mean", "fwd", torch.device("cpu"))
    z_shuffled = fixed_targets(teacher, flux, error, "val", 1.0, "enc_pre_latent", "global_mean", "fwd", torch.device("cpu"),
                               sigma_error=shuffled)
    (noisy, sigma), (noisy_s, sigma_s) = teacher.seen
    expected = add_noise(flux, error, 1.0, noise_draw("val", range(len(flux)), flux.shape[1]))
    np.testing.assert_array_equal(noisy.numpy(), expected)
    np.testing.assert_array_equal(noisy_s.numpy(), expected)  # the flux is unchanged
    np.testing.assert_array_equal(sigma.numpy(), error)
    np.testing.assert_array_equal(sigma_s.numpy(), shuffled)
    assert not np.allclose(z, z_shuffled)  # the teacher reads sigma


def test_ablate_all(mlflow_store, tiny_data, tmp_path):
    torch.manual_seed(0)
    save(BlindSpotUNet1D(PRESETS["cpu"]), tmp_path / "t.pt")
    data = f"data={tiny_data}"
    assert mlflow_run(data, f"teacher={tmp_path / 't.pt'}", "layer=enc_pre_latent", entry="extract").returncode == 0
    result = mlflow_run(data, "epochs=1", "hidden=32", "labels=log_g", "heads=ridge", entry="distill_student")
    assert result.returncode == 0, result.stderr[-3000:]
    result = mlflow_run(data, "student=latest", "teacher_epochs=1", "noise_levels=0,2", "sizes=50,0", "shuffles=3",
                        "pooling=global_mean", entry="ablate")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string="tags.`mlflow.project.entryPoint` = 'ablate'")
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.data.tags["kind"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == set(ablate.KINDS)
    for child in children.values():
        assert child.data.tags["verdict"] and child.data.tags["verdict_text"] and child.data.tags["compared"]
    assert children["no_error_teacher"].data.tags["no_error_teacher_run_id"]
    client = mlflow.MlflowClient()
    summary = pd.read_json(client.download_artifacts(parent.info.run_id, "tables/summary.json"), orient="split")
    assert sorted(summary["kind"]) == sorted(ablate.KINDS)
    sweep = pd.read_json(client.download_artifacts(children["noise_sweep"].info.run_id, "tables/noise_sweep.json"), orient="split")
    assert sorted(sweep.groupby("features")["noise_level"].apply(list).to_dict().items()) == [
        ("raw", [0.0, 1.0, 2.0]), ("student", [0.0, 1.0, 2.0]), ("teacher", [0.0, 1.0, 2.0])]  # + the training level
    curve = pd.read_json(client.download_artifacts(children["sample_efficiency"].info.run_id, "tables/sample_efficiency.json"),
                         orient="split")
    assert curve.groupby("features")["n_train"].apply(list).to_dict() == {"raw": [50, 96], "student": [50, 96], "teacher": [50, 96]}
    m = children["shuffle_labels"].data.metrics
    assert "teacher_ridge_shuffled_mean" in m and "student_ridge_tolerance_used" in m


def test_bad_ablate_options_fail_cleanly(mlflow_store, tiny_data):
    for params, message in ((("--noise-levels", "0,-1"), "noise levels must be >= 0"),
                            (("--kind", "dropout"), "unknown kind(s) or head(s) ['dropout']"),
                            (("--sizes", "1k"), "sizes='1k'"),
                            (("--label", "mass"), "unknown label 'mass'")):
        result = CliRunner().invoke(ablate.main, ["--data", str(tiny_data), *params])
        assert result.exit_code == 2 and result.output.startswith("error: ") and message in result.output, result.output[-1500:]
