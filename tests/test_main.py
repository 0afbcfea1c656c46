"""`main`: step reuse and recomputation (with a stand-in for the child runs), and one real smoke run."""
import json
import re
import sys

import mlflow
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from distill import tracking
from distill.data import open_dataset
from distill.teacher import PRESETS, BlindSpotUNet1D, save
from entrypoints import _steps as steps_module
from entrypoints import ablate
from entrypoints import main as main_module
from tests.conftest import free_port, mlflow_run, serve, stop


def test_steps_are_reused_and_downstream_recomputed(mlflow_store, tiny_data, monkeypatch):
    """A stand-in child run records what ran; a second main reuses every step, a changed parameter reruns its
    step and everything downstream of it."""
    ran = []
    client = mlflow.MlflowClient()

    def fake_execute(entry_point, parameters, run_id):  # the child's side: what the entry point itself logs
        tags = {"source_digest": tracking.source_digest()}
        if "data" in parameters:
            tags |= {k: v for k, v in open_dataset(parameters["data"]).summary().items() if k.startswith("digest_")}
        for k, v in tags.items():
            client.set_tag(run_id, k, v)
        if entry_point == "probe" and "," in parameters.get("layer", ""):  # the grid main reads its latent from
            client.log_table(run_id, pd.DataFrame({"layer": ["enc_1", "enc_2"], "pooling": "seg_mean_K16",
                                                   "head": "ridge", "val_r2_log_g": [0.1, 0.2],
                                                   "test_r2_log_g": [0.3, 0.0]}), "tables/summary.json")
        client.set_terminated(run_id, "FINISHED")
        ran.append((entry_point, parameters.get("epochs")))

    monkeypatch.setattr(steps_module, "execute", fake_execute)
    args = ["--data", str(tiny_data), "--teacher-epochs", "1", "--student-epochs", "1"]
    assert CliRunner().invoke(main_module.main, args).exit_code == 0
    first = list(ran)
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                filter_string=f"tags.`{tracking.ENTRY_POINT_TAG}` = 'main'")
    assert (run.data.tags["latent_layer"], run.data.tags["latent_pooling"]) == ("enc_2", "seg_mean_K16")  # on val
    assert [e for e, _ in first] == ["fisher", "train_teacher", "extract", "probe", "probe", "probe"] + ["peer"] * 3 + [
        "probe", "decompose_error"] + ["distill_student"] * 5 + ["ablate", "report"]
    ran.clear()
    assert CliRunner().invoke(main_module.main, args).exit_code == 0
    assert ran == [("report", None)]  # every expensive step reused
    ran.clear()
    assert CliRunner().invoke(main_module.main, args[:-1] + ["2"]).exit_code == 0
    assert [e for e, _ in ran] == ["distill_student"] * 5 + ["ablate", "report"]
    ran.clear()
    assert CliRunner().invoke(main_module.main, args + ["--force", "true"]).exit_code == 0
    assert len(ran) == len(first)
    ran.clear()  # an edit of the source, committed or not, is a miss for every step
    same_code = tracking.source_digest
    monkeypatch.setattr(tracking, "source_digest", lambda: "edited")
    assert CliRunner().invoke(main_module.main, args).exit_code == 0
    assert len(ran) == len(first)
    monkeypatch.setattr(tracking, "source_digest", same_code)
    fisher = client.get_run(run.data.tags["step_fisher"])
    assert fisher.data.tags["mlflow.parentRunId"] == run.info.run_id and fisher.data.params["split"] == "test"
    ran.clear()  # scale=study adds the untrained control: the teacher's snapshot 0, read at the chosen cell
    assert CliRunner().invoke(main_module.main, args + ["--scale", "study"]).exit_code == 0
    (study,) = mlflow.search_runs(search_all_experiments=True, output_format="list", max_results=1,
                                  filter_string=f"tags.`{tracking.ENTRY_POINT_TAG}` = 'main'")
    control = {k: client.get_run(study.data.tags[f"step_{k}_untrained"]).data.params for k in ("extract", "probe")}
    assert control["extract"]["teacher"] == f"{study.data.tags['step_train_teacher']}@0"
    assert control["probe"]["features"] == study.data.tags["step_extract_untrained"]
    assert (control["probe"]["layer"], control["probe"]["pooling"]) == ("enc_2", "seg_mean_K16")
    stored = {k: client.get_run(study.data.tags[f"step_{k}"]).data.params for k in ("train_teacher", "extract")}
    assert (stored["train_teacher"]["preset"], stored["extract"]["segments"]) == ("mid", "256")
    assert fine_poolings(client, study) == ["seg_mean_K64", "seg_mean_K256"]  # K512 is finer than the stored 256
    assert CliRunner().invoke(main_module.main, args + ["--scale", "study", "--segments", "512"]).exit_code == 0
    (wide,) = mlflow.search_runs(search_all_experiments=True, output_format="list", max_results=1,
                                 filter_string=f"tags.`{tracking.ENTRY_POINT_TAG}` = 'main'")
    assert fine_poolings(client, wide) == ["seg_mean_K64", "seg_mean_K256", "seg_mean_K512"]
    assert fine_poolings(client, run) == []  # the demo stores 16 segments
    for bad in ("8", "48"):  # coarser than the grid's K16; not a power of two
        result = CliRunner().invoke(main_module.main, args + ["--segments", bad])
        assert result.exit_code != 0 and "segments=" + bad in result.output


def fine_poolings(client, run) -> list:
    """The poolings beyond the coarse grid that a main run's probe grid read."""
    grid = client.get_run(run.data.tags["step_probe_grid"]).data.params["pooling"].split(",")
    return [p for p in grid if p not in main_module.GRID["pooling"].split(",")]


@pytest.mark.slow
def test_main_smoke(mlflow_store, tiny_data, tmp_path, request):
    """The whole plan at tiny scale with the user's own teacher checkpoint; the report lands in out."""
    torch.manual_seed(0)
    save(BlindSpotUNet1D(PRESETS["cpu"]), tmp_path / "user.ckpt", lightning=True)
    args = (f"data={tiny_data}", f"teacher={tmp_path / 'user.ckpt'}", "teacher_epochs=1", "student_epochs=1",
            f"out={tmp_path / 'rep'}")
    result = mlflow_run(*args, entry="main")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    (main,) = [r for r in runs if r.data.tags.get(tracking.ENTRY_POINT_TAG) == "main"]
    steps = {k[5:]: v for k, v in main.data.tags.items() if k.startswith("step_")}
    assert set(steps) == {"fisher", "extract", "probe_raw", "probe_denoised", "probe_grid", "probe_pca",
                          "decompose_error", "student", "student_plus", "supervised_baseline", "student_residual",
                          "label_free_student", "peer_cannon", "peer_cnn", "peer_template_fit", "ablate", "report"}
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == main.info.run_id]
    assert {r.info.run_id for r in children} >= set(steps.values())
    assert all(r.info.status == "FINISHED" for r in children)
    by_step = {name: mlflow.get_run(run_id) for name, run_id in steps.items()}
    assert all(run.info.run_name == name for name, run in by_step.items())  # the UI lists steps by name
    spectra = {name for name, run in by_step.items() if run.inputs.dataset_inputs}  # the Datasets column
    assert spectra >= set(steps) - {"report"} and all(
        by_step[name].inputs.dataset_inputs[0].dataset.name == tiny_data.name for name in spectra)
    page = (tmp_path / "rep" / "report.html").read_text()
    stages = (tmp_path / "rep" / "report.md").read_text()
    assert not re.search(r"\|\s*not run\s*\|", stages), stages  # every stage of the plan ran
    assert all(s in page for s in ("Stages and criteria", "2.1", "real PFS data", "data:image/png;base64,"))
    # the information ceiling: computed once, drawn by the probes and the student, set against each method in the report
    by_id = {r.info.run_id: r for r in runs}
    ceiling = by_id[steps["fisher"]].data.metrics["ceiling_prior_r2_log_g"]
    for step in ("probe_raw", "probe_grid", "student"):
        assert by_id[steps[step]].data.metrics["ceiling_prior_r2_log_g"] == ceiling
        assert by_id[steps[step]].data.tags["fisher_run_id"] == steps["fisher"]
    assert "Against the information ceiling" in page and "of the prior-aware yardstick" in page
    # the field's estimators: one run each, in the answer, the peer table and the ceiling table
    for method in ("cannon", "cnn", "template_fit"):
        peer = by_id[steps[f"peer_{method}"]]
        assert peer.data.tags["method"] == method and f"{method}_test_r2_log_g_lo" in peer.data.metrics
    assert "Against the field&#x27;s estimators" in page or "Against the field's estimators" in page
    assert "peer: The Cannon" in stages and "StarNet" in stages

    # ablate all: one child per kind with its verdict, a point per noise level and training size, the summary table
    children = {r.data.tags["kind"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == steps["ablate"]}
    assert set(children) == set(ablate.KINDS)
    for child in children.values():
        assert child.data.tags["verdict"] and child.data.tags["verdict_text"] and child.data.tags["compared"]
    assert children["no_error_teacher"].data.tags["no_error_teacher_run_id"]
    assert {"stage_a_no_error_teacher_ridge_test_r2_residual_lo",  # Stage A's control arm, on decompose's residual
            "stage_a_teacher_minus_no_error_ridge_test_r2_residual"} <= set(children["no_error_teacher"].data.metrics)
    assert children["no_error_teacher"].data.tags["residual_run_id"] == steps["decompose_error"]
    ne = children["no_error_teacher"].data  # the teacher without sigma against raw flux, paired, same head
    head = next(h for h in ("ridge", "lightgbm") if f"no_error_teacher_{h}_test_r2_log_g" in ne.metrics)
    assert ne.metrics["no_error_minus_raw_test_r2_log_g"] == pytest.approx(
        ne.metrics[f"no_error_teacher_{head}_test_r2_log_g"] - ne.metrics[f"raw_{head}_test_r2_log_g"])
    assert ne.metrics["no_error_minus_raw_test_r2_log_g_lo"] < ne.metrics["no_error_minus_raw_test_r2_log_g_hi"]
    assert "Without sigma, latent minus raw noisy flux" in ne.tags["verdict_text"]
    client = mlflow.MlflowClient()
    table = lambda run, path: pd.read_json(client.download_artifacts(run, path), orient="split")  # noqa: E731
    assert sorted(table(steps["ablate"], "tables/summary.json")["kind"]) == sorted(ablate.KINDS)
    sweep = table(children["noise_sweep"].info.run_id, "tables/noise_sweep.json")
    levels = [0.0, 0.5, 1.0, 2.0]  # the demo scale's sweep
    assert sweep.groupby("features")["noise_level"].apply(list).to_dict() == {
        name: levels for name in ("raw", "flux_and_sigma", "no_error_teacher", "student", "teacher")}
    assert set(sweep.loc[sweep["sees_sigma"], "features"]) == {"teacher", "flux_and_sigma"}
    curve = table(children["sample_efficiency"].info.run_id, "tables/sample_efficiency.json")
    assert curve.groupby("features")["n_train"].apply(list).to_dict() == {
        name: [96] for name in ("label_free_student", "teacher", "raw", "raw_lightgbm", "supervised_network")}
    assert (curve["test_r2_lo"] <= curve["test_r2"]).all() and (curve["test_r2"] <= curve["test_r2_hi"]).all()
    efficiency = children["sample_efficiency"].data  # 3.3 against every comparator, none picked on test
    assert {f"gain_test_r2_log_g_n_96_vs_{name}_lo" for name in ("teacher", "raw", "raw_lightgbm",
                                                                 "supervised_network")} <= set(efficiency.metrics)
    assert "validation labels" in efficiency.tags["verdict_text"] or efficiency.tags["verdict"] == "not_measured"
    assert by_id[steps["label_free_student"]].data.tags["label_free"] == "true"
    assert children["noise_sweep"].data.metrics["ceiling_prior_r2_log_g_noise_1"] == ceiling
    m = children["shuffle_labels"].data.metrics
    assert "teacher_ridge_shuffled_correlation" in m and 0 <= m["student_ridge_shuffled_p_value"] <= 1
    core = [f"{k}_test_r2_log_g" for k in ("reference", "ablated", "delta")] + ["delta_test_r2_log_g_lo",
                                                                               "delta_test_r2_log_g_hi"]
    for kind, child in children.items():  # the compare view lines the children up row by row
        assert set(core) <= set(child.data.metrics), kind
        d = child.data.metrics
        assert d["delta_test_r2_log_g_lo"] <= d["delta_test_r2_log_g"] <= d["delta_test_r2_log_g_hi"], kind
    compare_in_mlflow_ui(mlflow_store, children, core, request)

    # a second main reuses every step: only main and a new report appear
    again = mlflow_run(*args, entry="main")
    assert again.returncode == 0, again.stderr[-3000:]
    new = {r.data.tags.get(tracking.ENTRY_POINT_TAG) for r in mlflow.search_runs(search_all_experiments=True,
                                                                                 output_format="list")
           if r.info.run_id not in {x.info.run_id for x in runs}}
    assert new == {"main", "report"}


def compare_in_mlflow_ui(store: str, children: dict, keys: list, request):
    """The MLflow UI's compare view of the ablate children: every kind a column, every core key a filled row
    (screenshot in the test artifacts)."""
    browser, screenshots = request.getfixturevalue("browser"), request.getfixturevalue("screenshots")
    port = free_port()
    server = serve([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store, "--host", "127.0.0.1",
                    "--port", str(port)], f"http://127.0.0.1:{port}/health")
    ids = [c.info.run_id for c in children.values()]
    experiment = next(iter(children.values())).info.experiment_id
    try:
        page = browser.new_page(viewport={"width": 2200, "height": 2400})  # every run column and metric row on screen
        page.goto(f"http://127.0.0.1:{port}/#/compare-runs?runs={json.dumps(ids)}"
                  f"&experiments={json.dumps([experiment])}")
        page.get_by_text(f"Comparing {len(ids)} Runs").wait_for(timeout=90_000)
        page.get_by_text("sample_efficiency").first.wait_for(timeout=30_000)
        page.screenshot(path=str(screenshots / "mlflow_compare_ablations.png"), full_page=True)
        text = ""
        for _ in range(60):  # the metric table is a virtualised grid that renders the rows in view: scroll it
            text += page.inner_text("body")
            page.evaluate("() => document.querySelectorAll('.ReactVirtualized__Grid').forEach(g => g.scrollTop += 200)")
            page.wait_for_timeout(100)
        page.close()
    finally:
        stop(server)
    for kind, child in children.items():
        assert kind in text
        for key in keys:
            v = child.data.metrics[key]  # the UI shows 3-4 significant digits
            shown = {f"{v:.{d}g}" for d in (3, 4)} | {f"{v:.{d}f}".rstrip("0").rstrip(".") for d in (3, 4)}
            assert key in text and any(s in text for s in shown), (kind, key, v)
