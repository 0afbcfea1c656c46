"""The report renders the verdicts the runs logged (planted tags), its decision rules, and that it renders when stages
were not run."""
import ast
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from distill import criteria, report, report_dir, tracking
from distill.errors import DistillError
from distill.intervals import Interval
from distill.student import verdicts
from entrypoints import report as report_ep


def run(metrics=None, tags=None, run_id="r"):
    return {"run_id": run_id, "metrics": metrics or {}, "tags": tags or {}, "params": {}}


def rows_by_stage(runs, ablations=None, deltas=None):
    return {r.stage: r for r in report.stage_rows(runs, ablations or {}, deltas)}


def student(cos, s, teacher, raw, v21="pass", v31="pass", denoised=None, half=0.02):
    """A student run's metrics and verdict tags as distill_student logs them (``distill.criteria``), with intervals of
    half-width ``half`` around each R^2 and each difference."""
    iv = lambda v: Interval(v, v - half, v + half)  # noqa: E731
    m = {"test_latent_cosine": cos}
    for name, value in (("student", s), ("teacher", teacher), ("raw", raw), ("denoised", denoised)):
        if value is not None:
            m |= iv(value).keyed(f"{name}_test_r2_log_g")
            if name != "student":
                m |= iv(s - value).keyed(f"student_minus_{name}_test_r2_log_g")
    said = (("2.1", v21, "planted 2.1"),
            ("2.2", *verdicts.student_vs_teacher(iv(s), iv(raw), iv(s - raw), iv(teacher), iv(s - 0.9 * teacher))),
            ("3.1", v31, "planted 3.1"))
    return run(m, {k: v for stage, word, text in said for k, v in criteria.outcome(stage, word, text).tags().items()})


def planted(stage, centre, half=0.01):
    """The tags of an interval criterion decided on a planted interval around ``centre``."""
    return criteria.verdict(stage, Interval(centre, centre - half, centre + half)).tags()


def test_stage_1_and_the_noise_sweep_branch():
    grid = run(tags=planted("1", 0.6) | planted("1b", 0.3))
    sweep = run(tags=planted("1.2", 0.2) | planted("latent_beats_raw", 0.1))
    rows = rows_by_stage({"probe_grid": grid}, {"noise_sweep": sweep})
    assert rows["1.1 / 1.4"].status == report.PASS and rows["1b"].status == report.PASS
    assert rows["1b"].next == "run 1.2 (noise sweep)" and rows["1.1 / 1.4"].measured.startswith("1: latent Ridge R^2")
    assert rows["1.2"].next == "latent beats raw flux at high noise -> Stage 2"
    grid = run(tags=planted("1", 0.4) | planted("1b", 0.25, half=0.05))
    sweep = run(tags=planted("1.2", 0.0) | planted("latent_beats_raw", -0.1))
    rows = rows_by_stage({"probe_grid": grid}, {"noise_sweep": sweep})
    assert rows["1.1 / 1.4"].status == report.FAIL and rows["1b"].status == report.UNDECIDED
    assert rows["1b"].next == "1.2 is not yet warranted" and rows["1.2"].status == report.FAIL
    assert rows["1.2"].next == "run 4.1 / 4.2 before Stage 2"


ROWS = {"1": ("1.1 / 1.4", "probe_grid"), "1b": ("1b", "probe_grid"), "1.2": ("1.2", "noise_sweep"),
        "3.2": ("3.2", "noise_sweep"), "4.1": ("4.1", "no_error_teacher"), "4.2": ("4.2", "shuffle_error"),
        "B": ("B", "student_residual"), "2.2_raw": (None, "student"), "2.2_teacher": (None, "student"),
        "latent_beats_raw": (None, "noise_sweep"), "3.1": (None, "student")}


@pytest.mark.parametrize("stage", sorted(criteria.CRITERIA))
def test_every_criterion_renders_the_status_its_run_logged(stage):
    """Planted intervals above, across and below the margin: the tag says pass / undecided / fail (mirrored for a
    "less than" claim), and the row of a stage the report shows renders that tag and its sentence."""
    c = criteria.CRITERIA[stage]
    expected = (report.PASS, report.UNDECIDED, report.FAIL) if c.at_least else (report.FAIL, report.UNDECIDED,
                                                                                 report.PASS)
    for shift, want in zip((0.05, 0.0, -0.05), expected):
        tags = planted(stage, c.margin + shift, half=0.01 if shift else 0.03)
        assert tags[f"verdict_{stage}"] == want and c.claim in tags[f"verdict_text_{stage}"]
        name, step = ROWS[stage]
        if name is not None:
            row = rows_by_stage({step: run(tags=tags)}, {step: run(tags=tags)})[name]
            assert row.status == want and row.measured == tags[f"verdict_text_{stage}"]


def test_stage_2_branches():
    rows = rows_by_stage({"student": student(0.93, 0.50, 0.52, 0.40)})
    assert rows["2.1"].status == report.PASS and rows["2.1"].next == "cosine >= 0.9 -> 2.2"
    assert rows["2.2"].status == report.PASS and rows["2.2"].next == "-> Stage 3"
    rows = rows_by_stage({"student": student(0.40, 0.30, 0.52, 0.40, v21="underfit")})
    assert rows["2.1"].status == report.FAIL and rows["2.1"].next == "2.3 when it underfits, else revisit 2.1"
    assert rows["2.2"].status == report.FAIL and rows["2.2"].next.startswith("below raw flux: back to 2.1")
    assert "go back to 2.1" in rows["2.2"].measured  # the verdict's own sentence names the branch
    rows = rows_by_stage({"student": student(0.95, 0.41, 0.60, 0.40)})
    assert rows["2.2"].status == report.FAIL and "below the teacher" in rows["2.2"].measured
    rows = rows_by_stage({"student": student(0.95, 0.50, 0.52, 0.49, half=0.05)})
    assert rows["2.2"].status == report.UNDECIDED and rows["2.2"].next == "not shown at this size"
    plus = run({"test_latent_cosine": 0.95, "student_test_r2_log_g": 0.5},
               criteria.outcome("2.1", "pass", "planted").tags())
    rows = rows_by_stage({"student": student(0.40, 0.3, 0.5, 0.2, v21="underfit"), "student_plus": plus})
    assert rows["2.3"].next == "flux alone has an information bottleneck"


def test_stage_3_4_and_the_answer():
    runs = {"student": student(0.95, 0.30, 0.35, 0.40, v31="fail", denoised=0.38),
            "supervised_baseline": run({"student_test_r2_log_g": 0.45})}
    leak = run(tags=criteria.outcome("4.3", "leakage_alarm", "planted alarm").tags())
    rows = report.stage_rows(runs, {"shuffle_labels": leak})
    by = {r.stage: r for r in rows}
    assert by["3.1"].status == report.FAIL and by["4.3"].status == report.FAIL
    loss = {"student_vs_supervised": Interval(-0.15, -0.2, -0.1)}
    assert rows_by_stage(runs, deltas=loss)["3 (baseline)"].next.startswith("distillation loses to plain supervision")
    tie = {"student_vs_supervised": Interval(0.005, -0.02, 0.03)}
    tie_text = rows_by_stage(runs, deltas=tie)["3 (baseline)"].next
    assert tie_text.startswith("a tie (student - end-to-end +0.005 [-0.020, +0.030], interval includes 0)")
    text = report.answer(rows, runs, loss)
    assert "LOSES to raw noisy flux (student - it -0.100" in text and "the supervised end-to-end network" in text
    assert "BEATS" not in text and "leakage alarm" in text
    runs["student"] = student(0.95, 0.50, 0.52, 0.40, denoised=0.42)
    text = report.answer(report.stage_rows(runs, {}), runs, {"student_vs_supervised": Interval(0.05, 0.01, 0.09)})
    assert text.count("BEATS") == 1 and "TIES" not in text
    runs["student"] = student(0.95, 0.50, 0.52, 0.49, denoised=0.42)  # +0.01 over raw: inside its interval
    text = report.answer(report.stage_rows(runs, {}), runs, tie)
    assert "TIES with raw noisy flux (student - it +0.010 [-0.010, +0.030]); the supervised" in text
    assert "BEATS denoised flux" in text


def test_report_renders_with_nothing_run():
    rows = report.stage_rows({}, {})
    assert rows and all(r.status == report.NOT_RUN for r in rows)
    assert {"1.1 / 1.4", "1b", "1.3", "A", "1.2", "2.1", "2.2", "2.3", "3.1", "B", "3.2", "3.3", "4.1", "4.2",
            "4.3"} <= {r.stage for r in rows}
    text = report.answer(rows, {})
    reference = report.reference_table({})
    md = report.markdown("t", rows, text, reference, {})
    page = report.html_page("t", rows, text, reference, {"x.png": b"\x89PNG"})
    assert "not run" in md and "real PFS data" in md and "not answered yet" in md
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page


def test_each_method_as_a_fraction_of_the_information_ceiling():
    runs = {"fisher": run({"ceiling_prior_r2_log_g": 0.8, "ceiling_r2_log_g": 0.4}, run_id="f"),
            "probe_raw": run({"best_test_r2_log_g": 0.4}), "student": student(0.5, 0.6, 0.1, 0.4),
            "student_plus": run({"student_test_r2_log_g": 0.95})}
    table = report.ceiling_table(runs).set_index("method")
    assert table.loc["raw noisy flux, best head by val", "fraction of ceiling"] == "0.50"
    assert table.loc["distilled flux-only student", "fraction of ceiling"] == "0.75"
    assert table.loc["student-plus (flux + error)", "fraction of ceiling"] == "sees sigma: not bounded"
    rows = report.stage_rows(runs, {})
    assert rows[0].stage == "ceiling" and rows[0].status == report.INFO and rows[0].run_id == "f"
    assert "75% of the prior-aware yardstick" in report.answer(rows, runs)  # never called a ceiling
    assert report.ceiling_table({"student": runs["student"]}) is None  # not simulated: no ceiling, no table
    assert report.stage_rows({}, {})[0].status == report.NOT_RUN


def test_the_report_reads_the_logged_verdicts_instead_of_judging_again():
    """A planted defect: the numbers pass 2.1 and 2.2 (cosine 0.95, every interval above its margin), the tags the
    run logged say fail; the tags decide (one source of truth). A run without the tags is not decided by it."""
    judged = student(0.95, 0.50, 0.52, 0.40, v21="partial")
    judged["tags"]["verdict_2.2"] = "fail"
    rows = rows_by_stage({"student": judged})
    assert rows["2.1"].status == report.FAIL and rows["2.2"].status == report.FAIL
    older = student(0.95, 0.50, 0.52, 0.40)
    older["tags"] = {"verdict_2_1": "pass", "verdict_2_2": "pass", "verdict_3_1": "pass"}  # the old tag names
    rows = rows_by_stage({"student": older, "probe_grid": run({"best_test_r2_log_g_ridge": 0.9})},
                         {"shuffle_labels": run(tags={"verdict": "pass", "verdict_text": "older"})})
    for stage in ("1.1 / 1.4", "1b", "2.1", "2.2", "3.1", "4.3"):
        assert rows[stage].status == report.NOT_DECIDED and rows[stage].measured == "-", stage


def test_the_report_maps_no_outcome_word_to_a_status():
    """criteria.OUTCOMES is the one map from the plan's words to pass / fail / undecided: report.py names none."""
    words = {w for vocabulary in criteria.OUTCOMES.values() for w in vocabulary} - {report.PASS, report.FAIL,
                                                                                   report.UNDECIDED}
    source = Path(report.__file__).read_text()
    named = {node.value for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Constant)}
    assert not words & named


def test_the_field_estimators_stand_beside_the_student_with_paired_intervals():
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    student_pred = y + rng.normal(scale=0.5, size=400)
    predictions = {"student": pd.DataFrame({"y_log_g": y, "student_log_g": student_pred}),
                   "peer_cannon": pd.DataFrame({"y_log_g": y, "cannon_log_g": y + rng.normal(scale=1.0, size=400)}),
                   "peer_cnn": pd.DataFrame({"y_log_g": y, "cnn_log_g": student_pred + rng.normal(scale=0.01,
                                                                                                size=400)}),
                   "peer_template_fit": pd.DataFrame({"y_log_g": y[:100], "template_fit_log_g": y[:100]})}
    deltas = report.cross_run_deltas(predictions)
    assert deltas["student_vs_cannon"].verdict() == "better"
    assert deltas["student_vs_cnn"].verdict() == "tie"
    assert deltas["student_vs_template_fit"].verdict() == "worse"  # a perfect fit, compared on its 100 rows
    runs = {"student": run({"student_test_r2_log_g": 0.8}), **{
        f"peer_{m}": run({**Interval(0.5, 0.4, 0.6).keyed(f"{m}_test_r2_log_g"), f"{m}_n_test": n,
                          f"{m}_fit_seconds": 1.0, f"{m}_predict_seconds": 2.0})
        for m, n in (("cannon", 400), ("cnn", 400), ("template_fit", 100))}}
    runs["student"]["params"]["n_test"] = "400"
    table = report.peer_table(runs, deltas).set_index("peer")
    assert list(table["verdict"]) == ["better", "worse", "tie"]  # cannon, template_fit, cnn
    assert list(table["sees sigma"]) == ["no", "yes", "no"] and table["fit + predict (s)"].iloc[0] == 3.0
    text = report.answer(report.stage_rows(runs, {}), runs, deltas)
    assert "BEATS" in text and "The Cannon" in text and "on the first 100 test spectra" in text
    ceiling = report.ceiling_table(runs | {"fisher": run({"ceiling_prior_r2_log_g": 0.8})}).set_index("method")
    assert ceiling.filter(like="template fit", axis=0)["fraction of ceiling"].item() == "0.62"  # sigma as the
    # likelihood's known variance, as the bound assumes
    assert report.peer_table({}, {}) is None
    predictions["peer_cnn"]["y_log_g"] = rng.permutation(y)  # scored on other rows: refused, never paired
    with pytest.raises(DistillError, match="different test rows"):
        report.cross_run_deltas(predictions)


def test_the_answer_sets_the_teacher_latent_against_its_untrained_network():
    """The untrained control: training adds, removes or adds nothing measurable, on the paired interval."""
    rng = np.random.default_rng(1)
    y = rng.normal(size=500)
    latent = y + rng.normal(scale=0.5, size=500)
    runs = {"student": run({"student_test_r2_log_g": 0.8})}
    for untrained, says in ((y + rng.normal(scale=1.0, size=500), "training adds log g"),
                            (y, "training removes log g"),
                            (latent + rng.normal(scale=0.01, size=500), "training adds nothing measurable")):
        deltas = report.cross_run_deltas({"probe_grid": pd.DataFrame({"y_log_g": y, "latent_log_g": latent}),
                                          "probe_untrained": pd.DataFrame({"y_log_g": y,
                                                                           "latent_log_g": untrained})})
        assert says in report.answer(report.stage_rows(runs, {}), runs, deltas)


def test_the_reference_section_says_which_ridge_alpha_the_probes_used():
    def runs(alpha):  # as entrypoints/report.py summarises each step's run
        return {"probe_raw": {"run_id": "r", "metrics": {}, "tags": {}, "params": {"alpha": alpha}}}
    assert "probes alpha=val (chosen on validation" in report.markdown("t", [], "", report.reference_table({}), {},
                                                                        runs=runs("val"))
    fixed = report.html_page("t", [], "", report.reference_table({}), {}, runs=runs("0.001"))
    assert "probes alpha=0.001." in fixed and "chosen on validation" not in fixed


def test_out_replaces_only_the_files_a_report_wrote(tmp_path):
    """In its own directory a report replaces its files, removes those the last one wrote and this one does not, and
    leaves the user's files; a marker naming a path outside the directory deletes nothing."""
    out = tmp_path / "reports" / "latest"
    report_dir.write(out, {"report.md": b"one", "figures/a.png": b"A", "figures/b.png": b"B"})
    (out / "notes.txt").write_text("mine")
    (out / "figures" / "mine.png").write_bytes(b"mine")
    report_dir.write(out, {"report.md": b"two", "figures/a.png": b"A2"})
    assert (out / "report.md").read_bytes() == b"two" and (out / "figures" / "a.png").read_bytes() == b"A2"
    assert not (out / "figures" / "b.png").exists()
    assert (out / "notes.txt").read_text() == "mine" and (out / "figures" / "mine.png").read_bytes() == b"mine"
    report_dir.write(out, {"report.md": b"three"})
    assert (out / "figures" / "mine.png").exists() and not (out / "figures" / "a.png").exists()
    outside = tmp_path / "keep.txt"
    outside.write_text("keep")
    (out / report_dir.MARKER).write_text('{"files": ["../../keep.txt", "/etc/hostname", "notes.txt/.."]}')
    report_dir.write(out, {"report.md": b"four"})
    assert outside.read_text() == "keep" and (out / "notes.txt").exists()
    assert not list(out.rglob("*.tmp"))


def test_out_refuses_what_distill_did_not_make(tmp_path):
    (tmp_path / "empty").mkdir()
    assert report_dir.write(tmp_path / "empty", {"report.md": b"x"}) == tmp_path / "empty"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("# my own report\n")  # a user's report.md: not taken for one of distill's
    with pytest.raises(DistillError, match="not made by distill"):
        report_dir.check(mine)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DistillError, match="not a directory"):
        report_dir.check(tmp_path / "file")
    assert (mine / "report.md").read_text() == "# my own report\n"


def test_out_adopts_a_report_directory_from_before_the_marker(tmp_path):
    """A report written before the marker existed is replaced file by file, nothing deleted."""
    old = tmp_path / "latest"
    (old / "figures").mkdir(parents=True)
    (old / "report.md").write_text("# distill report: main run abc (demo scale)\n")
    (old / "report.html").write_text("<!doctype html>")
    (old / "figures" / "gone.png").write_bytes(b"old")
    report_dir.write(old, {"report.md": b"# distill report: new\n", "report.html": b"new"})
    assert (old / "figures" / "gone.png").exists() and (old / "report.html").read_bytes() == b"new"
    assert (old / report_dir.MARKER).is_file()


def test_a_running_main_is_reported_only_by_its_own_step(mlflow_store, tmp_path, monkeypatch):
    """main's last step reports main while main still runs (``mlflow run`` tags the step's run with its parent); any
    other report refuses a RUNNING main."""
    client = mlflow.MlflowClient()
    running = client.create_run("0", tags={tracking.ENTRY_POINT_TAG: "main"}).info.run_id
    step = client.create_run("0", tags={"mlflow.parentRunId": running}).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", step)
    result = CliRunner().invoke(report_ep.main, ["--run-id", running, "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0 and (tmp_path / "rep" / "report.html").is_file(), result.output[-2000:]
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)  # the finished step cleared it
    result = CliRunner().invoke(report_ep.main, ["--run-id", running, "--out", str(tmp_path / "other")])
    assert result.exit_code == 2 and "the main run is RUNNING; only a FINISHED main run" in result.output
    assert not (tmp_path / "other").exists()


def test_a_reader_with_outliers_is_compared_on_mae_too():
    runs = {"probe_raw": run({"test_n_outliers_log_g": 3, "test_mae_log_g": 0.5, "test_mae_log_g_lo": 0.45,
                              "test_mae_log_g_hi": 0.56}),
            "student": run({"student_test_n_outliers_log_g": 0, "student_test_r2_log_g": 0.6})}
    (note,) = report.outlier_notes(runs)
    assert note.startswith("probe_raw: 3 test spectra") and "0.500 [0.450, 0.560]" in note
