"""`distill_student` end to end on tiny data: keys, verdicts, resume, the supervised baseline, Stage B, bad input."""
import mlflow
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from distill.student.train import DistillSettings, DistillTrainer
from distill.teacher import PRESETS, BlindSpotUNet1D, save
from entrypoints import distill_student
from tests.conftest import mlflow_run

SMALL = ("hidden=32", "labels=log_g,T_eff", "batch_size=32", "lr=0.001")


def runs(**tags):
    clause = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    return mlflow.search_runs(search_all_experiments=True, output_format="list", filter_string=clause,
                              order_by=["attributes.start_time DESC"])


@pytest.mark.slow
def test_distill_student_end_to_end(mlflow_store, tiny_data, tmp_path, monkeypatch):
    torch.manual_seed(0)
    save(BlindSpotUNet1D(PRESETS["cpu"]), tmp_path / "t.pt")
    data = f"data={tiny_data}"
    result = mlflow_run(data, f"teacher={tmp_path / 't.pt'}", "layer=enc_pre_latent", "denoised=true", entry="extract")
    assert result.returncode == 0, result.stderr[-3000:]

    result = mlflow_run(data, "epochs=1", *SMALL, entry="distill_student")
    assert result.returncode == 0, result.stderr[-3000:]
    (first,) = runs(**{"mlflow.project.entryPoint": "distill_student"})
    m, tags = first.data.metrics, first.data.tags
    for split in ("train", "val", "test"):
        for key in ("latent_mse", "latent_nmse", "latent_cosine"):
            assert f"{split}_{key}" in m
        for name in ("student", "teacher", "raw", "denoised"):
            for label in ("log_g", "T_eff"):
                assert f"{name}_{split}_r2_{label}" in m and f"{name}_ridge_{split}_mae_{label}" in m
                assert f"{name}_lightgbm_{split}_r2_{label}" in m
        assert f"student_head_{split}_r2_log_g" in m
    for key in ("n_parameters", "student_spectra_per_second", "teacher_encoder_spectra_per_second",
                "speedup_vs_teacher_encoder", "train_seconds"):
        assert key in m
    assert m["test_latent_cosine"] <= 1.0 and m["n_parameters"] > 0
    assert tags["verdict_2_1"] in ("pass", "underfit", "overfit", "partial")
    assert tags["verdict_2_2"] in ("pass", "undecided", "below_raw", "far_below_teacher", "below_teacher")
    assert tags["verdict_3_1"] in ("pass", "acceptable", "undecided", "fail")
    assert tags["teacher_path"] == str(tmp_path / "t.pt")
    assert tags["stage"] == "2" and tags["role"] == "student" and tags["input"] == "flux"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(first.info.run_id)}
    assert {"student.pt", "checkpoints", "figures", "tables"} <= artifacts
    model = mlflow.pytorch.load_model(f"runs:/{first.info.run_id}/model")
    assert model(torch.rand(3, 1, 4096)).shape == (3, 1 + 16 * 8)  # target, then the 128-d z_s

    resumed = mlflow_run(data, "epochs=2", *SMALL, f"checkpoint={first.info.run_id}", entry="distill_student")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after epoch 1" in resumed.stderr
    second = runs(**{"mlflow.project.entryPoint": "distill_student"})[0]
    history = mlflow.MlflowClient().get_metric_history(second.info.run_id, "train_loss")
    assert sorted(h.step for h in history) == [1, 2] and second.data.metrics["epochs_run"] == 1

    # the supervised baseline: no extract run, and a teacher that does not exist is never looked at
    result = mlflow_run(data, "lambda_z=0", "features=none", "teacher=/nowhere.pt", "epochs=1", *SMALL,
                        entry="distill_student")
    assert result.returncode == 0, result.stderr[-3000:]
    (baseline,) = runs(role="supervised_baseline")
    assert "test_latent_mse" not in baseline.data.metrics and "teacher_test_r2_log_g" not in baseline.data.metrics
    assert "student_test_r2_log_g" in baseline.data.metrics and "raw_test_r2_log_g" in baseline.data.metrics

    # 3.3's label-free student (lambda_y = 0): the trainer is never handed a label; heads read z_s afterwards
    monkeypatch.setattr("distill.student.build.DistillTrainer", LabelGuard)  # where every student is built
    result = CliRunner().invoke(distill_student.main, ["--data", str(tiny_data), "--lambda-y", "0", "--epochs", "1",
                                                       "--hidden", "32", "--batch-size", "32", "--labels", "log_g"])
    assert result.exit_code == 0, result.output
    (free,) = runs(label_free="true")
    assert "student_test_r2_log_g" in free.data.metrics and "student_head_test_r2_log_g" not in free.data.metrics


class LabelGuard(DistillTrainer):
    """Fails a run whose label-free student (lambda_y = 0) is handed labels."""

    def __init__(self, student, spectra, z, y, settings, *args, **kwargs):
        assert settings.lambda_y > 0 or y is None, "a label-free student was handed labels"
        super().__init__(student, spectra, z, y, settings, *args, **kwargs)


def test_the_label_guard_trips_on_labels():
    with pytest.raises(AssertionError, match="handed labels"):
        LabelGuard(None, None, None, {"train": np.zeros(2)}, DistillSettings(lambda_y=0.0))


@pytest.mark.slow
def test_stage_b_online_student_plus(mlflow_store, tiny_data, tmp_path):
    torch.manual_seed(0)
    save(BlindSpotUNet1D(PRESETS["cpu"]), tmp_path / "t.pt")
    data = f"data={tiny_data}"
    assert mlflow_run(data, f"teacher={tmp_path / 't.pt'}", "layer=enc_pre_latent", entry="extract").returncode == 0
    result = mlflow_run(data, "target=residual", entry="distill_student")
    assert result.returncode != 0 and "no FINISHED decompose_error run" in result.stderr
    assert mlflow_run(data, "folds=3", "features=none", entry="decompose_error").returncode == 0
    result = mlflow_run(data, "target=residual", "teacher_mode=online", "input=flux+error", "student=cnn", "hidden=4,4",
                        "pooling=global_mean", "epochs=1", "labels=log_g", "heads=ridge", entry="distill_student")
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = [r for r in runs(stage="B") if r.info.status == "FINISHED"]
    m, tags = run.data.metrics, run.data.tags
    assert tags["input"] == "flux+error" and tags["teacher_mode"] == "online" and tags["residual_run_id"]
    assert "verdict_B" in tags and "student_test_r2_residual" in m and "raw_test_r2_residual" in m
    assert m["teacher_forward_seconds"] > 0 and "test_latent_cosine" in m
    model = mlflow.pytorch.load_model(f"runs:/{run.info.run_id}/model")
    assert model(torch.rand(2, 2, 4096)).shape == (2, 1 + 16)


def test_bad_student_options_fail_cleanly(mlflow_store, tiny_data):
    for params, message in ((("--target", "mass"), "unknown target 'mass'"),
                            (("--heads", "svm"), "unknown head 'svm'"),
                            (("--hidden", "big"), "hidden='big'"),
                            (("--lambda-z", "0", "--lambda-y", "0"), "nothing to learn"),
                            (("--features", "none"), "teacher_mode=offline reads z* from an extract run"),
                            (("--features", "latest"), "no FINISHED extract run")):
        result = CliRunner().invoke(distill_student.main, ["--data", str(tiny_data), *params])
        ok = result.exit_code == 2 and result.output.startswith("error: ") and message in result.output
        assert ok, result.output[-1500:]
