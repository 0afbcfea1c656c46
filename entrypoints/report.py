"""The report: every stage's criterion, the verdict its run logged (pass / fail / undecided, or not decided by that
run, or not run; ``distill.criteria``), run id and the next branch.

    mlflow run . -e report --env-manager local                      # the newest FINISHED main run
    mlflow run . -e report -P run_id=<main run id> -P out=reports/x --env-manager local

Writes report.md and a self-contained report.html (the forest plot of the answer first, each figure beside its stage,
run ids linked to the tracking server when it is one) as artifacts and to ``out``: a new or empty
directory, or one a report made (``distill/report_dir.py``); only a FINISHED main run (or the main run whose last step
this report is) is reported.
"""
import os
import shutil
import tempfile
from pathlib import Path

import click
import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from distill import report, report_dir, report_figures, seeded_report, tracking
from distill.errors import DistillError
from distill.peers import METHODS as PEERS
from distill.redact import redact
from entrypoints._cli import one_line_errors

STEPS = ("fisher", "probe_raw", "probe_denoised", "probe_grid", "probe_untrained", "probe_pca", "decompose_error",
         "student", "student_plus", "supervised_baseline", "student_residual", "label_free_student", "ablate",
         *(f"peer_{m}" for m in PEERS))
FIGURES = {  # step -> artifact figures worth looking at
    "fisher": ["figures/crb_log_g.png", "figures/ceiling_vs_noise.png"],
    "probe_grid": ["figures/grid_ridge.png"],
    "decompose_error": ["figures/a3_a4_residual_r2.png"],
    "student": ["figures/training_curves.png", "figures/stage_3_1_per_bin_ridge.png", "figures/log_g_pred_vs_true.png"],
    "noise_sweep": ["figures/noise_sweep.png"],
    "sample_efficiency": ["figures/sample_efficiency.png"],
    "peer_template_fit": ["figures/crb_ratio_log_g.png"],
    "shuffle_labels": ["figures/shuffle_labels_null.png"],
}


def resolve_main(ref: str):
    """The main run to report: FINISHED, or RUNNING with this report as its step (main's last one)."""
    if not tracking.is_run_id(ref):
        return tracking.resolve_run(ref, "main")
    try:
        run = tracking.get_run(ref)
    except MlflowException:
        raise DistillError(f"run_id={ref}: no such run in {redact(mlflow.get_tracking_uri())}") from None
    if run.data.tags.get(tracking.ENTRY_POINT_TAG) != "main":
        raise DistillError(f"run_id={ref}: a {run.data.tags.get(tracking.ENTRY_POINT_TAG)} run, not a main run")
    own = os.environ.get("MLFLOW_RUN_ID")
    parent = tracking.get_run(own).data.tags.get("mlflow.parentRunId") if own else None
    if run.info.status != "FINISHED" and not (run.info.status == "RUNNING" and parent == ref):
        raise DistillError(f"run_id={ref}: the main run is {run.info.status}; only a FINISHED main run is reported")
    return run


def summary(run) -> dict:
    return {"run_id": run.info.run_id, "metrics": run.data.metrics, "tags": run.data.tags, "params": run.data.params,
            "experiment_id": run.info.experiment_id}


def collect(main_run) -> tuple:
    """(runs by step, ablate children by kind) recorded on a main run as ``step_{name}`` tags."""
    runs = {}
    for name in STEPS:
        run_id = main_run.data.tags.get(f"step_{name}")
        if run_id:
            run = tracking.get_run(run_id)
            if run.info.status == "FINISHED":
                runs[name] = summary(run)
    ablations = {}
    if "ablate" in runs:
        for child in mlflow.search_runs(search_all_experiments=True, output_format="list",
                                        filter_string=f"tags.`mlflow.parentRunId` = '{runs['ablate']['run_id']}'"):
            if child.info.status == "FINISHED":
                ablations[child.data.tags["kind"]] = summary(child)
    return runs, ablations


def fetch_figures(runs: dict, ablations: dict, dst: Path) -> dict:
    """{file name: PNG bytes} of the figures that exist."""
    out = {}
    for name, paths in FIGURES.items():
        run = runs.get(name) or ablations.get(name)
        for path in paths if run else []:
            try:
                local = tracking.download(run["run_id"], path, str(dst))
            except Exception:  # a figure a step did not make (e.g. another head)
                continue
            out[f"{name}_{Path(path).name}"] = Path(local).read_bytes()
    return out


def fetch_predictions(runs: dict, dst: Path) -> dict:
    """{step: its predictions/test.parquet} for the steps of ``report.PAIRS`` that logged one."""
    out = {}
    for step in {step for pair in report.PAIRS.values() for step, _ in pair}:
        if step in runs:
            try:
                out[step] = pd.read_parquet(tracking.download(runs[step]["run_id"], "predictions/test.parquet",
                                                              str(dst / step)))
            except Exception:  # a run made before predictions were logged
                continue
    return out


@click.command()
@click.option("--run-id", default="latest", show_default=True,
              help="a main run id, or latest (the newest FINISHED main)")
@click.option("--out", default="reports/latest", show_default=True,
              help="directory for report.md and report.html: new, empty, or one a report made")
@one_line_errors
def main(run_id, out):
    report_dir.check(out)
    main_run = resolve_main(run_id)
    with tracking.tracked_run("report", stage="report"):
        mlflow.set_tag("main_run_id", main_run.info.run_id)
        runs, ablations = collect(main_run)
        work = Path(tempfile.mkdtemp(prefix="report-"))
        deltas = report.cross_run_deltas(fetch_predictions(runs, work / "predictions"))
        tracking.log_metrics({k: v for name, d in deltas.items() for k, v in d.keyed(f"{name}_test_r2_log_g").items()})
        rows = report.stage_rows(runs, ablations, deltas)
        text = report.answer(rows, runs, deltas)
        reference, ceiling = report.reference_table(runs), report.ceiling_table(runs)
        peers = report.peer_table(runs, deltas)
        figures = fetch_figures(runs, ablations, work / "downloads")
        forest = report_figures.forest_png(report.forest_table(runs, deltas))
        figures = figures if forest is None else {report_figures.FOREST: forest, **figures}
        links = report_figures.run_links([summary(main_run), *runs.values(), *ablations.values()],
                                         mlflow.get_tracking_uri())
        title = f"distill report: main run {main_run.info.run_id} ({main_run.data.tags.get('scale', '?')} scale)"
        if "latent_layer" in main_run.data.tags:
            title += (f"; latent {main_run.data.tags['latent_layer']} + {main_run.data.tags['latent_pooling']} "
                      "(chosen on validation)")
        page = work / "report"
        (page / "figures").mkdir(parents=True)
        for name, png in figures.items():
            (page / "figures" / name).write_bytes(png)
        md = report.markdown(title, rows, text, reference, figures, ceiling, runs, peers, links)
        page_html = report.html_page(title, rows, text, reference, figures, ceiling, runs, peers, links)
        if (seeded := seeded_report.load(main_run)) is not None:  # the seeded answer first
            md, page_html = seeded_report.compose(title, md, page_html, main_run.data.tags, *seeded)
            text = main_run.data.tags.get("seeded_answer", text)
        (page / "report.md").write_text(md)
        (page / "report.html").write_text(page_html)
        if ceiling is not None:
            tracking.log_table(ceiling, "tables/against_ceiling.json")
        if peers is not None:
            tracking.log_table(peers, "tables/against_peers.json")
        mlflow.log_artifacts(str(page), "report")
        table = pd.DataFrame([r.__dict__ for r in rows])
        tracking.log_table(table, "tables/stages.json")
        tracking.log_metrics({f"n_{status.replace(' ', '_')}": int((table["status"] == status).sum())
                              for status in (report.PASS, report.FAIL, report.UNDECIDED, report.NOT_DECIDED,
                                             report.NOT_RUN)})
        target = report_dir.write(out, {p.relative_to(page).as_posix(): p.read_bytes() for p in page.rglob("*")
                                        if p.is_file()})
        shutil.rmtree(work, ignore_errors=True)
        if main_run.data.tags.get("scale") != "confirm":  # a confirm run runs the seeded arms only
            click.echo(table[["stage", "measured", "status", "next"]].to_string(index=False, max_colwidth=70))
        for extra in (peers, ceiling):
            if extra is not None:
                click.echo("\n" + extra.to_string(index=False, float_format="%.3f"))
        click.echo(f"\n{text}\nreport: {target / 'report.html'}")


if __name__ == "__main__":
    main()
