"""The teacher study: one nested run per cell, one table row per cell and snapshot, every cell reused on a second
call, one-line errors for unknown settings, and a best-layer choice that never sees test labels."""
import mlflow
import numpy as np
import pandas as pd
import pytest

from distill.errors import DistillError
from distill.teacher import figures, study
from distill.tracking import ENTRY_POINT_TAG
from tests.conftest import mlflow_run


def entry_runs(name: str) -> list:
    return mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string=f"tags.`{ENTRY_POINT_TAG}` = '{name}'")


@pytest.mark.slow
def test_study_makes_one_nested_run_per_cell_and_reuses_them(mlflow_store, tiny_data):
    args = [f"data={tiny_data}", "presets=cpu", "losses=supervised,self_supervised", "epochs=2", "snapshots=0,2",
            "layers=enc_1,enc_pre_latent",
            "poolings=global_mean,seg_mean_K4,seg_mean_K256", "batch_size=16"]
    first = mlflow_run(*args, entry="teacher_study", timeout=1800)
    assert first.returncode == 0, first.stderr[-3000:]
    (parent,) = [r for r in entry_runs("teacher_study") if "mlflow.parentRunId" not in r.data.tags]
    cells = [r for r in entry_runs("teacher_study") if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    names = {"cpu | supervised | n=all", "cpu | self_supervised | n=all", "cpu | supervised | n=all | no error"}
    assert {c.data.tags["cell"] for c in cells} == names
    table = pd.read_parquet(mlflow.artifacts.download_artifacts(run_id=parent.info.run_id,
                                                                artifact_path="teacher_study.parquet"))
    assert len(table) == 3 * 2 and set(table["cell"]) == names and set(table["epoch"]) == {0, 2}
    assert (table["spectra_seen"].to_numpy() == 96 * table["epoch"].to_numpy()).all()
    assert table["latent_r2_ridge"].notna().all() and table["layer_ridge"].isin(["enc_1", "enc_pre_latent"]).all()
    # every step reads as main does: alpha chosen on validation, 256 stored segments (K256 only where a layer has it)
    steps = [r for r in entry_runs("probe") + entry_runs("decompose_error") if "data" in r.data.params]  # not cells
    assert len(steps) == 1 + 5 + 1 and {r.data.params["alpha"] for r in steps} == {"val"}
    assert {r.data.params["segments"] for r in entry_runs("extract")} == {"256"}
    grid = mlflow.load_table("tables/summary.json", run_ids=[table["probe_run_id"].iloc[-1]])
    assert set(zip(grid["layer"], grid["pooling"])) >= {("enc_1", "seg_mean_K256"), ("enc_pre_latent", "seg_mean_K4")}
    assert ("enc_pre_latent", "seg_mean_K256") not in set(zip(grid["layer"], grid["pooling"]))
    # each snapshot's latent against raw flux is the paired difference of the two Ridge cells chosen on validation
    raw = parent.data.metrics["raw_r2_ridge"]
    np.testing.assert_allclose(table["latent_minus_raw_ridge"], table["latent_r2_ridge"] - raw, atol=1e-6)
    assert (table["latent_minus_raw_ridge_lo"] < table["latent_minus_raw_ridge"]).all()
    assert set(table["vs_raw_ridge"]) <= {"better", "tie", "worse"}
    teachers = entry_runs("train_teacher")
    assert len(teachers) == 3 and {t.data.params["input_sigma"] for t in teachers} == {"true", "false"}
    # one extract per snapshot, but the two losses' untrained networks are one: the same weights, one control
    assert len(entry_runs("extract")) == 3 * 2 - 1
    untrained = table[table["epoch"] == 0].set_index("cell")
    assert untrained.loc["cpu | self_supervised | n=all", "features_run_id"] == \
        untrained.loc["cpu | supervised | n=all", "features_run_id"] != \
        untrained.loc["cpu | supervised | n=all | no error", "features_run_id"]

    probes = len(entry_runs("probe"))
    second = mlflow_run(*args, entry="teacher_study", timeout=1800)
    assert second.returncode == 0, second.stderr[-3000:]
    assert len(entry_runs("train_teacher")) == 3 and len(entry_runs("extract")) == 5  # nothing trained again
    assert len(entry_runs("probe")) == probes
    newest = [r for r in entry_runs("teacher_study") if "mlflow.parentRunId" in r.data.tags][:3]
    assert all(r.data.tags["reused"] == "true" for r in newest) and len(entry_runs("teacher_study")) == 2 * 4


@pytest.mark.parametrize("presets, losses, message", [("cpu,huge", "supervised", "unknown preset 'huge'"),
                                                      ("cpu", "l2", "unknown loss 'l2'"), ("", "supervised",
                                                                                          "no preset given")])
def test_unknown_settings_fail_in_one_line(presets, losses, message):
    with pytest.raises(DistillError, match=message):
        study.cells([p for p in presets.split(",") if p], losses.split(","), [0], no_error=True)


def test_the_best_layer_is_chosen_on_validation_only():
    grid = pd.DataFrame({"layer": ["enc_1", "enc_2", "enc_3", "enc_1"], "pooling": ["global_mean"] * 3 + ["K4"],
                         "head": ["ridge", "ridge", "ridge", "lightgbm"], "val_r2_log_g": [0.1, 0.3, 0.2, 0.9],
                         "test_r2_log_g": [0.5, 0.0, 0.6, 0.9]})
    assert study.best_on_validation(grid, "ridge")["layer"] == "enc_2"  # the best on test would be enc_3
    poisoned = grid.assign(test_r2_log_g=np.nan)
    assert study.best_on_validation(poisoned, "ridge")["layer"] == "enc_2"
    with pytest.raises(DistillError, match="no mlp rows"):
        study.best_on_validation(grid, "mlp")


def test_spectra_to_reach_extrapolates_along_log_spectra():
    curve = pd.DataFrame({"spectra_seen": [100, 1000], "r2": [0.1, 0.2]})
    assert study.spectra_to_reach(curve, 0.15) == 1000  # reached at a measured point
    assert np.isclose(study.spectra_to_reach(curve, 0.3), 10_000)  # +0.1 per decade
    assert study.spectra_to_reach(curve.assign(r2=[0.2, 0.1]), 0.3) == np.inf  # falling: never
    flat = curve.assign(r2=[0.1, 0.101])  # +0.001 per decade: 10^200 spectra, far past the horizon
    assert study.r2_per_decade(flat) > 0 and study.spectra_to_reach(flat, 0.3) == np.inf
    at_horizon = 0.1 + 0.1 * np.log10(study.HORIZON * 10)  # R^2 on the trend at HORIZON x the 1,000 spectra seen
    assert np.isclose(study.spectra_to_reach(curve, at_horizon - 0.01), study.HORIZON * 1000 / 10 ** 0.1)
    assert study.spectra_to_reach(curve, at_horizon + 0.01) == np.inf


def test_reach_table_and_figure_give_the_spectra_and_hours_to_the_raw_flux_line():
    table = pd.DataFrame({"cell": ["a"] * 3 + ["b"] * 3 + ["c"] * 3, "input_sigma": ["true"] * 3 + ["false"] * 6,
                          "spectra_seen": [0, 100, 1000] * 3, "train_seconds": [0, 2, 10, 0, 4, 40, 0, 4, 40],
                          "latent_r2_ridge": [0.05, 0.1, 0.2, 0.05, 0.2, 0.1, 0.05, 0.1, 0.11],
                          "latent_r2_lightgbm": 0.1, "latent_r2_residual_ridge": -0.1})
    reach = study.reach_table(table, {"half_raw_ridge": 0.15, "raw_ridge": 0.3}).set_index("cell")
    assert reach.loc["a", "spectra_to_half_raw_ridge"] == 1000
    assert np.isclose(reach.loc["a", "spectra_to_raw_ridge"], 10_000)  # +0.1 R^2 per decade of spectra
    assert np.isclose(reach.loc["a", "hours_to_raw_ridge"], 10_000 * 0.01 / 3600)  # at 10 s per 1,000 spectra
    assert reach.loc["b", "spectra_to_raw_ridge"] == np.inf  # falling: never
    assert reach.loc["c", "spectra_to_raw_ridge"] == np.inf and np.isclose(reach.loc["c", "ridge_r2_per_decade"], 0.01)
    fig = figures.study_curves(table.merge(reach.reset_index(), on="cell"), {"ridge": 0.3, "lightgbm": 0.4})
    notes = [t.get_text() for t in fig.axes[0].texts]
    assert notes == ["raw Ridge at ~1.0e+04 spectra, ~0.028 h training", "trend does not rise",
                     "trend +0.010 R^2 per decade: raw Ridge beyond 1,000x"]
    assert fig.axes[0].get_xlim()[0] == -50  # the axis starts just left of the untrained point
    assert len(fig.axes) == 2 and not fig.axes[1].texts  # Ridge and LightGBM panels; no extrapolation in the second
