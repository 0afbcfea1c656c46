"""The report's figures: the forest plot it opens with, each figure under its stage with a caption, 4.3's null
distribution, and run ids linked to a tracking server without credentials."""
import base64
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgba

from distill import ablations, criteria, figures, probe, report, report_figures, seeded_report
from distill.ablation import AblationSettings
from distill.ablation.paired import run_shuffle_labels
from distill.intervals import Interval
from entrypoints import report as report_ep

RUN_ID = "0123456789abcdef0123456789abcdef"
NULL = "shuffle_labels_shuffle_labels_null.png"


def summary(metrics=None, tags=None, run_id=RUN_ID, experiment_id="7"):
    return {"run_id": run_id, "metrics": metrics or {}, "tags": tags or {}, "params": {},
            "experiment_id": experiment_id}


def planted_runs():
    """A student that paired itself with raw / denoised flux and the teacher latent, a supervised network and two
    peers (the template fit sees sigma), and a label-shuffle guard that passed."""
    student = summary({**Interval(0.10, 0.05, 0.15).keyed("student_minus_raw_test_r2_log_g"),
                       **Interval(0.02, -0.01, 0.05).keyed("student_minus_denoised_test_r2_log_g"),
                       **Interval(-0.08, -0.12, -0.04).keyed("student_minus_teacher_test_r2_log_g")})
    runs = {"student": student, "supervised_baseline": summary(run_id="b" * 32),
            "peer_cannon": summary(run_id="c" * 32), "peer_template_fit": summary(run_id="d" * 32)}
    deltas = {"student_vs_supervised": Interval(0.03, 0.01, 0.05), "student_vs_cannon": Interval(0.2, 0.1, 0.3),
              "student_vs_template_fit": Interval(-0.3, -0.4, -0.2)}
    guard = summary(tags=criteria.outcome("4.3", "no_leakage", "planted 4.3").tags(), run_id="e" * 32)
    return runs, {"shuffle_labels": guard}, deltas


def test_the_forest_plot_draws_one_bar_per_reader_and_marks_those_that_see_sigma():
    runs, _, deltas = planted_runs()
    table = report.forest_table(runs, deltas)
    assert list(table["reader"]) == ["raw noisy flux", "denoised flux", "teacher latent",
                                     "supervised end-to-end network", "The Cannon", "template fit with the simulator's "
                                                                                    "model"]
    assert list(table["sees_sigma"]) == [False, True, True, False, False, True]
    fig = figures.paired_differences(table)
    ax = fig.axes[0]
    assert len(ax.containers) == len(table)  # one error bar per reader
    for container, row in zip(ax.containers, table.itertuples()):
        (segment,) = container.lines[2][0].get_segments()
        np.testing.assert_allclose(segment[:, 0], [row.lo, row.hi])  # the bar spans the 95 % interval
        marker = container.lines[0]
        np.testing.assert_allclose(np.asarray(marker.get_xdata(), float), [row.value])
        hollow = to_rgba(marker.get_markerfacecolor()) == to_rgba("white")
        assert hollow == row.sees_sigma, row.reader
    ticks = sorted(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels())), reverse=True)
    labels = [label for _, label in ticks]  # from the top: the readers in order
    assert [label.endswith("(sees sigma)") for label in labels] == list(table["sees_sigma"])
    assert labels[1] == "denoised flux (sees sigma)" and labels[0] == "raw noisy flux"
    assert any(list(line.get_xdata()) == [0, 0] for line in ax.lines)  # the zero line
    assert report.forest_table({}, deltas).empty and report_figures.forest_png(report.forest_table({}, {})) is None


def page(links=None):
    runs, ablations_, deltas = planted_runs()
    rows = report.stage_rows(runs, ablations_, deltas)
    planted = {report_figures.FOREST: b"forest-png", NULL: b"null-png", "probe_grid_grid_ridge.png": b"grid-png",
               "mystery.png": b"mystery-png"}
    args = ("distill report: main run " + RUN_ID, rows, "the answer", report.reference_table({}), planted)
    return report.markdown(*args, runs=runs, links=links), report.html_page(*args, runs=runs, links=links)


def test_the_report_opens_with_the_forest_plot_and_places_each_figure_under_its_stage():
    md, html_page = page()
    first = md.split("\n\n")[1]
    assert first.startswith("![The answer at a glance") and f"(figures/{report_figures.FOREST})" in first
    assert md.index(report_figures.FOREST) < md.index("## Answer")
    stage_4, after = md.index("### Stage 4"), md.index("## Against the reference figures")
    assert stage_4 < md.index(f"(figures/{NULL})") < after  # 4.3's figure beside 4.3 ...
    assert md.index("### Stage 1") < md.index("(figures/probe_grid_grid_ridge.png)") < md.index("### Stage A")
    assert "*The leakage guard: the test correlation" in md  # ... captioned with what it shows, not its name
    assert md.index("## Other figures") < md.index("(figures/mystery.png)")  # a figure with no place is kept
    encoded = {name: base64.b64encode(png).decode() for name, png in
               ((report_figures.FOREST, b"forest-png"), (NULL, b"null-png"))}
    assert html_page.index("</h1>") < html_page.index(encoded[report_figures.FOREST]) < html_page.index("<h2>Answer")
    assert html_page.index("<h3>Stage 4") < html_page.index(encoded[NULL]) < html_page.index("<h2>Against the ref")
    assert "<figcaption>The leakage guard" in html_page and "<figcaption>" + NULL not in html_page
    questions = pd.DataFrame({"question": ["q1"], "claim": ["c"], "value": [0.1], "lo": [0.0], "hi": [0.2],
                              "seed_sd": [0.01], "seeds": [3], "verdict": ["tie"]})
    arms = pd.DataFrame({"arm": ["a"], "dataset": ["leak"], "seeds": [3], "r2": [0.5], "lo": [0.4], "hi": [0.6],
                         "seed_sd": [0.02]})
    md, html_page = seeded_report.compose("t", md, html_page, {"scale": "demo"}, questions, arms)
    assert md.index("## Seeded answer") < md.index(report_figures.FOREST) < md.index("## Answer")
    assert html_page.index("<h2>Seeded answer") < html_page.index(encoded[report_figures.FOREST])


def test_every_figure_the_report_fetches_has_a_place_and_a_caption():
    fetched = {f"{step}_{Path(path).name}" for step, paths in report_ep.FIGURES.items() for path in paths}
    assert fetched <= set(report_figures.PLACES) and NULL in fetched
    stages = {r.stage for r in report.stage_rows({}, {})}
    places = {place for place, _ in report_figures.PLACES.values()}
    assert places <= stages | {report_figures.TOP, report_figures.PEERS_TABLE, report_figures.CEILING_TABLE}


def test_the_shuffle_null_figure_marks_the_observed_value():
    rng = np.random.default_rng(0)
    checks = {"teacher + ridge": {"shuffled": rng.normal(0, 0.03, 20), "observed": 0.81, "p_value": 0.4}}
    ax = figures.shuffled_labels_null(checks).axes[0]
    (observed,) = [line for line in ax.lines if "observed" in line.get_label()]
    np.testing.assert_allclose(observed.get_xdata(), [0.81, 0.81])
    assert sum(patch.get_height() for patch in ax.patches) == 20  # every null value in the histogram
    assert any("shuffled mean" in line.get_label() and "p = 0.4" in line.get_label() for line in ax.lines)


def test_the_label_shuffle_guard_logs_its_null_distribution():
    rng = np.random.default_rng(1)
    beta = rng.normal(size=8)
    x = {s: rng.normal(size=(n, 8)) for s, n in (("train", 300), ("val", 100), ("test", 200))}
    y = {s: pd.DataFrame({"log_g": x[s] @ beta + rng.normal(scale=0.5, size=len(x[s]))}) for s in x}
    fs = probe.FeatureSet(x, y, "teacher")
    values = {}
    check = ablations.shuffle_check(fs, "log_g", "ridge", {}, shuffles=6, values=values)
    assert len(values["shuffled"]) == 6 and values["observed"] > 0.9
    assert np.isclose(values["shuffled"].mean(), check["shuffled_correlation"])
    found = run_shuffle_labels(SimpleNamespace(latent=fs, student=None), AblationSettings(shuffles=6))
    ax = found.figures["figures/shuffle_labels_null.png"].axes[0]
    (observed,) = [line for line in ax.lines if "observed" in line.get_label()]
    np.testing.assert_allclose(observed.get_xdata(), [values["observed"]] * 2)


def test_run_ids_link_to_a_tracking_server_without_its_credentials():
    links = report_figures.run_links([summary(), summary(run_id="b" * 32, experiment_id="9")],
                                     "http://user:pw@mlflow.example:5000/")
    assert links[RUN_ID] == f"http://mlflow.example:5000/#/experiments/7/runs/{RUN_ID}"
    assert report_figures.run_links([summary()], "https://host/mlflow/?password=pw")[RUN_ID] == (
        f"https://host/mlflow/#/experiments/7/runs/{RUN_ID}")
    md, html_page = page(links)
    assert f"[{RUN_ID}](http://mlflow.example:5000/#/experiments/7/runs/{RUN_ID})" in md
    assert f"<a href='http://mlflow.example:5000/#/experiments/7/runs/{RUN_ID}'>{RUN_ID}</a>" in html_page
    assert f"[{'b' * 32}](http://mlflow.example:5000/#/experiments/9/runs/{'b' * 32})" in md  # a stage row's run
    for text in (md, html_page):
        assert "pw" not in text and "user" not in text
    for uri in ("sqlite:///mlruns/mlflow.db", "file:///tmp/mlruns", "databricks", ""):
        assert report_figures.run_links([summary()], uri) == {}
    md, html_page = page({})
    assert "](http" not in md and "<a href" not in html_page and RUN_ID in md
