"""`mlflow run . -e train_teacher`: a one-epoch smoke run, its artifacts, and resuming it."""
import mlflow
import torch

from distill.teacher import load
from tests.conftest import mlflow_run


def test_train_one_epoch_then_resume(mlflow_store, tiny_data):
    result = mlflow_run(f"data={tiny_data}", "epochs=1", "batch_size=16", entry="train_teacher")
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient()
    (first,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert first.info.status == "FINISHED" and first.data.tags["stage"] == "teacher"
    assert first.data.params["arch_embed_dim"] == "16" and first.data.params["n_train"] == "96"
    for key in ("best_val_snr_denoised", "best_val_mse_denoised", "n_parameters", "val_loss"):
        assert key in first.data.metrics
    top = {a.path for a in client.list_artifacts(first.info.run_id)}
    assert {"teacher.pt", "checkpoints", "figures"} <= top
    teacher = load(mlflow.artifacts.download_artifacts(run_id=first.info.run_id, artifact_path="teacher.pt"))
    assert teacher.config.embed_dim == 16 and teacher.config.input_sigma

    resumed = mlflow_run(f"data={tiny_data}", "epochs=2", "batch_size=16", f"checkpoint={first.info.run_id}",
                         entry="train_teacher")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after epoch 1" in resumed.stderr
    second = [r for r in mlflow.search_runs(search_all_experiments=True, output_format="list") if r.info.run_id != first.info.run_id][0]
    history = client.get_metric_history(second.info.run_id, "train_loss")
    assert sorted(m.step for m in history) == [1, 2]
    ckpt = torch.load(mlflow.artifacts.download_artifacts(run_id=second.info.run_id, artifact_path="checkpoints/last.pt"),
                      weights_only=True)
    assert ckpt["state"]["epoch"] == 2 and len(ckpt["state"]["history"]) == 2
    best = min(range(2), key=lambda i: ckpt["state"]["history"][i]["val_loss"])
    assert ckpt["state"]["best_val"] == ckpt["state"]["history"][best]["val_loss"]
    assert set(ckpt["state"]["best_model"]) == set(ckpt["model"])  # the best weights travel with the checkpoint


def test_bad_teacher_options_fail_cleanly(mlflow_store, tiny_data):
    result = mlflow_run(f"data={tiny_data}", "kernel_size=4", entry="train_teacher")
    assert result.returncode != 0 and "kernel_size=4: must be odd" in result.stderr
    result = mlflow_run(f"data={tiny_data}/nope", entry="train_teacher")
    assert result.returncode != 0 and "dataset directory not found" in result.stderr
