"""`extract` from a user's Lightning checkpoint, then `probe` single, grid and baseline runs, and bad input."""
import json

import mlflow
import pyarrow.parquet as pq
import pytest
import torch

from distill.teacher import PRESETS, BlindSpotUNet1D, save
from tests.conftest import mlflow_run

pytestmark = pytest.mark.slow  # end-to-end: real processes, servers or a browser


def runs(**filters):
    clause = " and ".join(f"tags.`{k}` = '{v}'" for k, v in filters.items())
    return mlflow.search_runs(search_all_experiments=True, output_format="list", filter_string=clause)


def test_extract_then_probe(mlflow_store, tiny_data, tmp_path):
    torch.manual_seed(0)
    save(BlindSpotUNet1D(PRESETS["cpu"]), tmp_path / "user.ckpt", lightning=True)
    result = mlflow_run(f"data={tiny_data}", f"teacher={tmp_path / 'user.ckpt'}", "layer=enc_pre_latent,enc_last,enc_2",
                        "denoised=true", entry="extract")
    assert result.returncode == 0, result.stderr[-3000:]
    (extract,) = runs(**{"mlflow.project.entryPoint": "extract"})
    local = mlflow.artifacts.download_artifacts(run_id=extract.info.run_id, artifact_path="features")
    manifest = json.loads(open(f"{local}/manifest.json").read())
    assert manifest["layers"]["enc_2"] == {"channels": 16, "length": 2048, "segments": 16}
    assert manifest["directions"] == ["fwd", "bwd"] and manifest["noise_level"] == 1.0
    table = pq.read_table(f"{local}/enc_last.parquet")
    assert table.num_rows == 160 and table.column("split").to_pylist()[:1] == ["train"]
    assert {"id", "split", "log_g", "T_eff", "fwd_segmean", "bwd_max"} <= set(table.column_names)
    assert pq.read_table(f"{local}/denoised.parquet").num_rows == 160

    result = mlflow_run(f"data={tiny_data}", "pooling=seg_mean_K8", "labels=log_g,T_eff", entry="probe")
    assert result.returncode == 0, result.stderr[-3000:]
    single = runs(**{"mlflow.project.entryPoint": "probe"})[0]
    assert single.data.tags["features_run_id"] == extract.info.run_id and single.data.tags["stage"] == "1"
    for split in ("train", "val", "test"):
        for metric in ("r2", "mae", "rmse"):
            assert f"{split}_{metric}_log_g" in single.data.metrics and f"{split}_{metric}_T_eff" in single.data.metrics
    assert single.data.metrics["n_features"] == 16 * 8

    result = mlflow_run(f"data={tiny_data}", "layer=enc_last,enc_pre_latent",
                        "pooling=global_mean,mean_max", "labels=log_g",
                        entry="probe")
    assert result.returncode == 0, result.stderr[-3000:]
    (parent,) = runs(**{"grid": "true"})
    children = runs(**{"mlflow.parentRunId": parent.info.run_id})
    assert sorted((c.data.tags["layer"], c.data.tags["pooling"]) for c in children) == [
        ("enc_last", "global_mean"), ("enc_last", "mean_max"), ("enc_pre_latent", "global_mean"),
                                                                                        ("enc_pre_latent", "mean_max")]
    assert parent.data.tags["mvp"] == "1.4"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "tables")}
    assert "tables/summary.json" in artifacts

    result = mlflow_run(f"data={tiny_data}", "layer=enc_last", "pooling=attention", "labels=log_g", entry="probe")
    assert result.returncode == 0, result.stderr[-3000:]
    (attention,) = runs(**{"pooling": "attention"})
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(attention.info.run_id)}
    assert "model_log_g_standardisation.json" in logged and "test_r2_log_g" in attention.data.metrics

    result = mlflow_run(f"data={tiny_data}", "input=noisy_flux+error", "labels=log_g", entry="probe")
    assert result.returncode == 0, result.stderr[-3000:]
    (baseline,) = runs(**{"input": "noisy_flux+error", "grid": "false"})
    assert baseline.data.metrics["n_features"] == 2 * 4096

    for bad, message in (("pooling=seg_mean_K32", "K=32 is larger than the length 16 of enc_pre_latent"),
                         ("layer=enc_5", "layer 'enc_5' was not extracted"),
                         ("n_train=5000", "larger than the training set"),
                         ("noise_level=0.5", "no FINISHED extract run matches"),
                         ("head=svm", "unknown head 'svm'")):
        result = mlflow_run(f"data={tiny_data}", bad, "labels=log_g", entry="probe")
        assert result.returncode != 0 and message in result.stderr, (bad, result.stderr[-500:])
