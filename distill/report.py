"""The answer to the research question: every stage's criterion with the verdict its run logged (the tags of
``distill.criteria``; the report judges no criterion), the plan's decision rules (docs/research-plan.md section 5), and
the reference figures, from summaries of tracked runs.

A run summary is ``{"run_id", "metrics", "tags", "params"}``; ``runs`` maps step names (those of the
``main`` entry point) to summaries, and ``ablations`` maps ablate kinds to their child runs' summaries.
"""
import html
from dataclasses import dataclass

import pandas as pd

from . import criteria, intervals, report_figures
from .heads import ON_VAL
from .intervals import BETTER, WORSE, Interval
from .peers import BOUNDED as PEER_BOUNDED
from .peers import DESCRIPTIONS as PEER_NAMES
from .peers import METHODS as PEERS
from .peers import SEES_SIGMA as PEER_SEES_SIGMA
from .thresholds import (
    COSINE_PASS,
    ERROR_DOMINATES,
    EXTRA_INFORMATION,
    FAIL_DELTA,
    SIGMA_USED,
    STAGE_1_RIDGE,
    STAGE_1B_LIGHTGBM,
    TEACHER_FRACTION,
)

PASS, FAIL, UNDECIDED = criteria.PASS, criteria.FAIL, criteria.UNDECIDED
NOT_RUN, INFO, NOT_DECIDED = "not run", "info", "not decided by this run"

# cross-run comparisons the report draws from the runs' predictions/test.parquet: name -> ((step, column), (step,
# column)), the first minus the second; each column is suffixed with the label. No single entry point holds both
# runs' predictions, so ``cross_run_deltas`` is the one place they are paired; they inform the answer and the info
# rows, and decide no criterion.
PAIRS = {"student_vs_supervised": (("student", "student"), ("supervised_baseline", "student")),
         "latent_vs_raw": (("probe_grid", "latent"), ("probe_raw", "noisy_flux")),
         "latent_vs_untrained": (("probe_grid", "latent"), ("probe_untrained", "latent")),
         **{f"student_vs_{m}": (("student", "student"), (f"peer_{m}", m)) for m in PEERS}}

# docs/research-plan.md section 3 and docs/simulator.md: measured on real PFS spectra (100k train / 1k test)
REFERENCE = [
    ("raw noisy flux + Ridge, log g (32k train, docs/simulator.md)", "raw_ridge", 0.469),
    ("raw noisy flux + LightGBM, log g (32k train, docs/simulator.md)", "raw_lightgbm", 0.558),
    ("latent enc_pre_latent + seg_mean_K8 + Ridge, log g", "latent_seg_mean_K8", 0.552),
    ("latent enc_pre_latent + global_mean + Ridge, log g", "latent_global_mean", 0.311),
    ("latent enc_pre_latent + mean_max + Ridge, log g", "latent_mean_max", 0.406),
    ("clean error alone + Ridge, log g (Stage A shortcut)", "error_only", 0.91),
]


@dataclass
class Row:
    stage: str
    criterion: str
    measured: str
    status: str
    run_id: str = ""
    next: str = ""


def _m(run, key, default=None):
    return None if run is None else run["metrics"].get(key, default)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _ci(run, key) -> Interval | None:
    """The logged value of ``key`` with its ``_lo`` / ``_hi`` interval (None when any is missing)."""
    return None if run is None else Interval.read(run["metrics"], key)


def _fmt_ci(run, key) -> str:
    """'0.512 [0.480, 0.541]', or the bare value when no interval was logged."""
    ci = _ci(run, key)
    return _fmt(_m(run, key)) if ci is None else f"{ci.value:.3f} [{ci.lo:.3f}, {ci.hi:.3f}]"


def _decided(name: str, criterion: str, run, stage: str, nexts: dict | None = None) -> Row:
    """A criterion's row as its run decided it (``distill.criteria`` tags): the status is the tag, the measured text
    its sentence; a run that logged no verdict (an older run) is "not decided by this run", never judged here.
    ``nexts``: the plan's next step per status (NOT_RUN included)."""
    v = None if run is None else criteria.read(run["tags"], stage)
    status = NOT_RUN if run is None else NOT_DECIDED if v is None else v.status
    return Row(name, criterion, "-" if v is None else v.text, status, run["run_id"] if run else "",
               (nexts or {}).get(status, ""))


def cross_run_deltas(predictions: dict, label: str = "log_g") -> dict:
    """{pair name: Interval of the paired difference} for each of ``PAIRS`` whose two runs logged test predictions;
    ``predictions`` maps step names to their ``predictions/test.parquet`` frames. A run scored on the first n test
    rows only (``peer -P n_spectra=n``) is compared on those rows."""
    out = {}
    for name, ((step_a, col_a), (step_b, col_b)) in PAIRS.items():
        a, b = predictions.get(step_a), predictions.get(step_b)
        if a is None or b is None or f"{col_a}_{label}" not in a or f"{col_b}_{label}" not in b:
            continue
        a, b = a.iloc[:len(b)], b.iloc[:len(a)]
        out[name] = intervals.delta_of_runs(a[f"y_{label}"], a[f"{col_a}_{label}"], b[f"y_{label}"],
                                            b[f"{col_b}_{label}"], f"{step_a} and {step_b}")
    return out


def _distillation_gain(gain: Interval | None) -> str:
    """The distilled student against plain supervision, on the interval of the paired difference."""
    if gain is None:
        return ""
    verdict = gain.verdict()
    return {BETTER: f"distillation beats plain supervision (student - end-to-end {gain.text()})",
            WORSE: f"distillation loses to plain supervision (student - end-to-end {gain.text()})"}.get(
        verdict, f"a tie (student - end-to-end {gain.text()}, interval includes 0): distillation adds nothing "
                 "measurable over plain supervision")


def _info(name: str, criterion: str, run, measured, next_: str = "", absent: str = "") -> Row:
    """A row that decides no criterion: what was measured (``measured(run)``), or how to run it."""
    return (Row(name, criterion, "-", NOT_RUN, next=absent) if run is None
            else Row(name, criterion, measured(run), INFO, run["run_id"], next_))


def _fits(run) -> str | None:
    v = None if run is None else criteria.read(run["tags"], "2.1")
    return None if v is None else v.status


def stage_rows(runs: dict, ablations: dict, deltas: dict | None = None) -> list:
    """One row per stage / MVP of the plan, in the plan's order, each criterion's status the verdict its run logged;
    ``deltas`` from ``cross_run_deltas``."""
    deltas, at = deltas or {}, {**runs, **ablations}.get
    student, plus, decomp, sweep = at("student"), at("student_plus"), at("decompose_error"), at("noise_sweep")
    not_yet = "1.2 is not yet warranted"
    rows = [_info("ceiling", "the log g information in the noisy flux (Bayesian bound on R^2; yardstick; unbiased)",
                  at("fisher"), lambda f: f"bound {_fmt(_m(f, 'bound_r2_log_g'))}; yardstick "
                                          f"{_fmt(_m(f, 'ceiling_prior_r2_log_g'))} (unbiased "
                                          f"{_fmt(_m(f, 'ceiling_r2_log_g'))})",
                  absent="`fisher -P data=...` (simulated data only)"),
            _decided("1.1 / 1.4", f"latent Ridge R^2 >= {STAGE_1_RIDGE} (Stage 1), best layer x pooling",
                     at("probe_grid"), "1"),
            _decided("1b", f"latent LightGBM R^2 >= {STAGE_1B_LIGHTGBM}", at("probe_grid"), "1b",
                     {PASS: "run 1.2 (noise sweep)", FAIL: not_yet, UNDECIDED: not_yet}),
            _info("1.3", "PCA of the latent to 16-128 dims: is log g concentrated?", at("probe_pca"),
                  lambda r: f"{_fmt_ci(r, 'test_r2_log_g')} with {r['params'].get('pca')} dims",
                  absent="`probe -P pca=32` runs it"),
            _info("A", f"latent -> r vs flux -> r, and vs flux + sigma -> r (the control); above {EXTRA_INFORMATION}: "
                       "real extra information", decomp,
                  lambda d: f"latent (sees sigma) {_fmt_ci(d, 'verdict_latent_r2_residual')}, flux "
                            f"{_fmt_ci(d, 'verdict_flux_r2_residual')}, flux + sigma "
                            f"{_fmt_ci(d, 'verdict_flux_error_r2_residual')}; "
                            f"error-only {_fmt(_m(d, 'error_ridge_test_r2_log_g'))}",
                  decomp["tags"].get("outcome_A", "") if decomp else "")]
    beats = criteria.read(sweep["tags"], "latent_beats_raw") if sweep else None
    rows.append(_decided("1.2", "the latent degrades more slowly than raw flux with noise", sweep, "1.2"))
    rows[-1].next = "" if beats is None else ("latent beats raw flux at high noise -> Stage 2" if beats.status == PASS
                                              else "run 4.1 / 4.2 before Stage 2")
    rows += [_decided("2.1", f"student test cosine(z_s, z*) >= {COSINE_PASS}", student, "2.1",
                      {PASS: f"cosine >= {COSINE_PASS} -> 2.2", FAIL: "2.3 when it underfits, else revisit 2.1"}),
             _decided("2.2", f"student R^2 >= {TEACHER_FRACTION} x teacher and >= raw flux", student, "2.2",
                      {PASS: "-> Stage 3", UNDECIDED: "not shown at this size",
                       FAIL: "below raw flux: back to 2.1; below 0.9 x teacher: analyse"})]
    fits = (_fits(plus), _fits(student))
    rows.append(_info("2.3", "student-plus (flux + error) fits where flux-only does not", plus,
                      lambda p: f"test cosine: flux-only {_fmt(_m(student, 'test_latent_cosine'))}, flux+error "
                                f"{_fmt(_m(p, 'test_latent_cosine'))}; R^2 {_fmt(_m(p, 'student_test_r2_log_g'))}",
                      NOT_DECIDED if None in fits else "flux alone has an information bottleneck"
                      if fits == (PASS, FAIL) else "neither fits: suspect a bug or an unlearnable latent"
                      if fits == (FAIL, FAIL) else "both fit" if fits == (PASS, PASS) else "only flux-only fits"))
    rows.append(_decided("3.1", f"student + head >= raw / denoised flux + same head (fail at -{FAIL_DELTA}; "
                                "acceptable passes)", student, "3.1"))
    if at("supervised_baseline") is not None:
        rows.append(_info("3 (baseline)", "distilled student vs the supervised end-to-end network (lambda_z = 0)",
                          at("supervised_baseline"),
                          lambda b: f"student {_fmt_ci(student, 'student_test_r2_log_g')}, end-to-end "
                                    f"{_fmt_ci(b, 'student_test_r2_log_g')}",
                          _distillation_gain(deltas.get("student_vs_supervised"))))
    rows += [_decided("B", "a flux-only student distilled towards r = log g - the error-only prediction reads r "
                           "(the log g that sigma alone does not explain)", at("student_residual"), "B",
                      {NOT_RUN: "`distill_student -P target=residual` runs it"}),
             _decided("3.2", "the student degrades more slowly than raw flux with noise", sweep, "3.2"),
             _decided("3.3", "a student distilled without labels, heads on 1k-5k labels, above every comparator on "
                             "the same labels", at("sample_efficiency"), "3.3"),
             _decided("4.1", f"removing the error costs delta R^2 < {ERROR_DOMINATES}", at("no_error_teacher"), "4.1"),
             _decided("4.2", f"shuffled sigma drops R^2 by >= {SIGMA_USED}: the teacher uses sigma",
                      at("shuffle_error"), "4.2"),
             _decided("4.3", "shuffled labels give R^2 ~ 0 (no leakage)", at("shuffle_labels"), "4.3")]
    return rows


def _versus(name: str, gain: Interval | None, value) -> tuple:
    """(verdict, phrase) of the student against one rival from the interval of student - rival."""
    if gain is None:
        return None, f"{name} {_fmt(value)} (no interval)"
    return gain.verdict(), f"{name} (student - it {gain.text()})"


def outlier_notes(runs: dict, label: str = "log_g") -> list:
    """A sentence per reader with test spectra off by more than ``intervals.OUTLIER``: its R^2 interval is then
    unreliable, so its MAE with its interval is given to compare on."""
    notes = []
    for step, run in sorted(runs.items()):
        for key, n in sorted((run or {}).get("metrics", {}).items()):
            if key.endswith(f"test_n_outliers_{label}") and n > 0:
                reader = (step + " " + key[:-len(f"test_n_outliers_{label}")].rstrip("_")).strip()
                notes.append(f"{reader}: {int(n)} test spectra off by more than {intervals.OUTLIER:g} dex, so its "
                             f"R^2 interval is unreliable; compare on MAE "
                             f"{_fmt_ci(run, key.replace('n_outliers', 'mae'))} dex.")
    return notes


def answer(rows: list, runs: dict, deltas: dict | None = None) -> str:
    """The plain-language answer: does the student beat the baselines without the sigma shortcut? "Beats" only where
    the 95 % interval of the paired difference excludes zero."""
    deltas = deltas or {}
    student = runs.get("student")
    if student is None:
        return "No student was trained: the research question is not answered yet."
    s = _m(student, "student_test_r2_log_g")
    parts = [f"The distilled flux-only student reads log g with test R^2 {_fmt_ci(student, 'student_test_r2_log_g')} "
             "(95 % interval)."]
    rivals = [("raw noisy flux", _ci(student, "student_minus_raw_test_r2_log_g"), _m(student, "raw_test_r2_log_g")),
              ("denoised flux", _ci(student, "student_minus_denoised_test_r2_log_g"),
               _m(student, "denoised_test_r2_log_g")),
              ("the supervised end-to-end network", deltas.get("student_vs_supervised"),
               _m(runs.get("supervised_baseline"), "student_test_r2_log_g"))]
    rivals += [(_peer_name(runs, m), deltas.get(f"student_vs_{m}"), _m(runs.get(f"peer_{m}"), f"{m}_test_r2_log_g"))
               for m in PEERS if f"peer_{m}" in runs]
    by = {}
    for name, gain, value in rivals:
        if gain is not None or value is not None:
            verdict, phrase = _versus(name, gain, value)
            by.setdefault(verdict, []).append(phrase)
    for verdict, word in ((BETTER, "BEATS"), (intervals.TIE, "TIES with"), (WORSE, "LOSES to"),
                          (None, "is not compared by interval with")):
        if by.get(verdict):
            parts.append(f"It {word} {'; '.join(by[verdict])}.")
    latent = deltas.get("latent_vs_raw")
    if latent is not None:
        parts.append(f"The teacher latent (which sees sigma) against raw noisy flux, best head each: {latent.text()} "
                     f"({latent.verdict()}).")
    control = deltas.get("latent_vs_untrained")
    if control is not None:
        parts.append(f"Against the same network untrained, read at the same layer and pooling: {control.text()}; "
                     + {BETTER: "training adds log g to the latent.", WORSE: "training removes log g from the latent."}
                     .get(control.verdict(), "training adds nothing measurable to the latent's log g."))
    cos = _m(student, "test_latent_cosine")
    if cos is not None:
        reach = _m(student, "test_latent_cosine_reproducible")
        parts.append(f"It imitates the teacher latent with test cosine {cos:.3f} "
                     f"({'>=' if cos >= COSINE_PASS else '<'} {COSINE_PASS})"
                     + ("." if reach is None else f"; about {reach:.3f} is reachable, judged from the teacher's own "
                                                  "latent of the same spectra under two noise draws."))
    ceiling = _m(runs.get("fisher"), "ceiling_prior_r2_log_g")
    if ceiling and s is not None:
        parts.append(f"That is {s / ceiling:.0%} of the prior-aware yardstick (R^2 {ceiling:.3f}; an average "
                     "posterior variance, not a bound).")
    parts += outlier_notes(runs)
    leak = [r for r in rows if r.stage == "4.3"]
    if leak and leak[0].status == FAIL:
        parts.append("WARNING: the label-shuffle guard raised a leakage alarm; no number above can be trusted.")
    return " ".join(parts)


def reference_table(runs: dict) -> pd.DataFrame:
    """This run's numbers (simulated data) beside the reference figures (real PFS data)."""
    raw, grid, decomp = runs.get("probe_raw"), runs.get("probe_grid"), runs.get("decompose_error")
    ours = {"raw_ridge": _m(raw, "best_test_r2_log_g_ridge"), "raw_lightgbm": _m(raw, "best_test_r2_log_g_lightgbm"),
            "error_only": _m(decomp, "error_ridge_test_r2_log_g")}
    for pooling in ("seg_mean_K8", "global_mean", "mean_max"):
        ours[f"latent_{pooling}"] = _m(grid, f"test_r2_log_g_enc_pre_latent_{pooling}_ridge")
    return pd.DataFrame([{"figure": name, "this run (simulated)": ours.get(key), "reference (real PFS data)": ref}
                         for name, key, ref in REFERENCE])


# (method, step, metric, sees sigma): the test R^2 of log g set against the information ceiling
METHODS = [
    ("raw noisy flux, best head by val", "probe_raw", "best_test_r2_log_g", False),
    ("denoised flux + Ridge (the teacher computes it from sigma)", "probe_denoised", "test_r2_log_g", True),
    ("teacher latent, best layer x pooling x head by val", "probe_grid", "best_test_r2_log_g", True),
    ("the teacher's network untrained, same layer x pooling (control)", "probe_untrained", "best_test_r2_log_g", True),
    ("distilled flux-only student", "student", "student_test_r2_log_g", False),
    ("supervised end-to-end network", "supervised_baseline", "student_test_r2_log_g", False),
    ("student-plus (flux + error)", "student_plus", "student_test_r2_log_g", True),
    ("clean error alone + Ridge (Stage A)", "decompose_error", "error_ridge_test_r2_log_g", True),
    *[(f"peer: {PEER_NAMES[m]}", f"peer_{m}", f"{m}_test_r2_log_g", not PEER_BOUNDED[m]) for m in PEERS],
]


def _peer_name(runs: dict, method: str, short: bool = False) -> str:
    """The peer's name, with its test subset when it was scored on fewer test spectra than the student; ``short``:
    without the description's parenthesis and the "(sees sigma)" mark (a figure's label)."""
    n = _m(runs.get(f"peer_{method}"), f"{method}_n_test")
    total = float((runs.get("student") or {"params": {}})["params"].get("n_test", 0))
    name = (PEER_NAMES[method].split(" (")[0] if short
            else PEER_NAMES[method] + (" (sees sigma)" if PEER_SEES_SIGMA[method] else ""))
    return f"{name}, on the first {n:.0f} test spectra" if n and n < total else name


def peer_table(runs: dict, deltas: dict) -> pd.DataFrame | None:
    """The field's estimators beside the student: test R^2 with its interval, the paired student - peer difference and
    its verdict, whether the peer sees sigma, its time (None when no peer ran)."""
    rows = []
    for m in PEERS:
        run = runs.get(f"peer_{m}")
        if run is None:
            continue
        ci, gain = _ci(run, f"{m}_test_r2_log_g"), deltas.get(f"student_vs_{m}")
        rows.append({"peer": PEER_NAMES[m], "test R^2": _fmt_ci(run, f"{m}_test_r2_log_g") if ci else "-",
                     "test spectra": int(_m(run, f"{m}_n_test", 0)),
                     "student - peer": gain.text() if gain else "-", "verdict": gain.verdict() if gain else "-",
                     "sees sigma": "yes" if PEER_SEES_SIGMA[m] else "no",
                     "fit + predict (s)": _m(run, f"{m}_fit_seconds", 0.0) + _m(run, f"{m}_predict_seconds", 0.0),
                     "squared error / Cramer-Rao bound": _fmt(_m(run, f"{m}_crb_ratio_log_g"))})
    return pd.DataFrame(rows) if rows else None


def ceiling_table(runs: dict) -> pd.DataFrame | None:
    """Each method's test R^2 of log g as a fraction of the prior-aware information ceiling (None without a fisher run).

    The ceiling bounds readers of the noisy flux; methods that see sigma (the teacher sees it too) are not bounded
    by it.
    """
    ceiling = _m(runs.get("fisher"), "ceiling_prior_r2_log_g")
    if ceiling is None:
        return None
    rows = []
    for name, step, key, sees_sigma in METHODS:
        r2 = _m(runs.get(step), key)
        if r2 is not None:
            ci = _ci(runs.get(step), key)
            rows.append({"method": name, "test R^2": r2,
                         "95 % interval": "-" if ci is None else f"[{ci.lo:.3f}, {ci.hi:.3f}]", "ceiling": ceiling,
                         "fraction of ceiling": "sees sigma: not bounded" if sees_sigma else f"{r2 / ceiling:.2f}"})
    return pd.DataFrame(rows)


def _ceiling_note(runs: dict) -> str:
    fisher = runs.get("fisher")
    return (f"Bayesian bound (Ziv-Zakai, the labels' own prior; no reader of the noisy flux reaches a higher R^2) "
            f"{_fmt(_m(fisher, 'bound_r2_log_g'))}; prior-aware yardstick "
            f"{_fmt(_m(fisher, 'ceiling_prior_r2_log_g'))} (an average posterior variance: neither a bound nor a "
            f"ceiling; the fractions below are of it); unbiased "
            f"{_fmt(_m(fisher, 'ceiling_r2_log_g'))}; other labels known "
            f"{_fmt(_m(fisher, 'ceiling_known_others_r2_log_g'))}; "
            f"median per-spectrum bound {_fmt(_m(fisher, 'crb_marginal_log_g_q50'))} dex. It bounds readers of the "
            f"noisy flux: "
            "the error is a noiseless function of the labels, so methods that see it are not bounded.")


def _reference_note(runs) -> str:
    note = ("Simulated data here, real PFS spectra in the reference; they are set side by side to show scale, not to "
            "be equal.")
    raw = (runs or {}).get("probe_raw")
    alpha = raw["params"].get("alpha") if raw else None
    if alpha is None:
        return note
    how = " (chosen on validation in each probe, from 1e-3 to 1e5: metric ridge_alpha_log_g)" if alpha == ON_VAL else ""
    return f"{note} The reference's Ridge used alpha 1e-3 on 100k spectra; this run's probes alpha={alpha}{how}."


PEER_NOTE = ("The field's own estimators on the same test spectra: student - peer is the paired difference of test "
             "R^2 with its 95 % interval; better or worse only where the interval excludes 0.")


def forest_table(runs: dict, deltas: dict, label: str = "log_g") -> pd.DataFrame:
    """The answer's paired differences, student minus each other reader (columns reader, value, lo, hi, sees_sigma):
    raw and denoised flux and the teacher latent as the student run paired them, the supervised network and each peer
    from ``cross_run_deltas``; empty without a student."""
    student = runs.get("student")
    if student is None:
        return pd.DataFrame(columns=["reader", "value", "lo", "hi", "sees_sigma"])
    readers = [("raw noisy flux", _ci(student, f"student_minus_raw_test_r2_{label}"), False),
               ("denoised flux", _ci(student, f"student_minus_denoised_test_r2_{label}"), True),
               ("teacher latent", _ci(student, f"student_minus_teacher_test_r2_{label}"), True),
               ("supervised end-to-end network", deltas.get("student_vs_supervised"), False),
               *[(_peer_name(runs, m, short=True), deltas.get(f"student_vs_{m}"), PEER_SEES_SIGMA[m])
                 for m in PEERS if f"peer_{m}" in runs]]
    return pd.DataFrame([{"reader": name, "value": d.value, "lo": d.lo, "hi": d.hi, "sees_sigma": sees}
                         for name, d, sees in readers if d is not None],
                        columns=["reader", "value", "lo", "hi", "sees_sigma"])


def markdown(title: str, rows: list, text: str, reference: pd.DataFrame, figures: dict, ceiling=None, runs=None,
             peers=None, links=None) -> str:
    """The report in Markdown: the forest plot, the answer, the stages with their figures beside them, the tables
    (``figures``: {file name: PNG}, placed by ``report_figures.PLACES``; ``links``: {run id: its page})."""
    placed, links = report_figures.Placed(figures), links or {}
    out = [f"# {report_figures.linked_title(title, links, report_figures.md_link)}", ""]
    out += report_figures.md_figures(placed.take(report_figures.TOP))
    out += ["## Answer", "", text, "", "## Stages and criteria", ""] + report_figures.md_stages(rows, placed, links)
    if peers is not None:
        out += ["## Against the field's estimators", "", PEER_NOTE, "", peers.to_markdown(index=False, floatfmt=".1f"),
                ""] + report_figures.md_figures(placed.take(report_figures.PEERS_TABLE))
    if ceiling is not None:
        out += ["## Against the information ceiling", "", _ceiling_note(runs), "",
                ceiling.to_markdown(index=False, floatfmt=".3f"), ""]
        out += report_figures.md_figures(placed.take(report_figures.CEILING_TABLE))
    out += ["## Against the reference figures", "", _reference_note(runs), "",
            reference.to_markdown(index=False, floatfmt=".3f"), ""]
    rest = placed.rest()
    if rest:
        out += ["## Other figures", ""] + report_figures.md_figures(rest)
    return "\n".join(out).rstrip("\n") + "\n"


def html_page(title: str, rows: list, text: str, reference: pd.DataFrame, figures: dict, ceiling=None,
              runs=None, peers=None, links=None) -> str:
    """A self-contained page laid out as ``markdown``: tables inline, figures as base64 PNG, run ids as links."""
    placed, links = report_figures.Placed(figures), links or {}
    heading = report_figures.linked_title(html.escape(title), links, report_figures.html_link)
    style = ("body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.3em .5em;font-size:.9em}img{max-width:100%}"
             "figcaption{font-size:.9em;color:#444;margin-bottom:1.5em}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}"
            f"</style></head><body><h1>{heading}</h1>"
            + report_figures.html_figures(placed.take(report_figures.TOP), figures)
            + f"<h2>Answer</h2><p>{html.escape(text)}</p><h2>Stages and criteria</h2>"
            + report_figures.html_stages(rows, placed, links))
    if peers is not None:
        page += (f"<h2>Against the field's estimators</h2><p>{html.escape(PEER_NOTE)}</p>"
                 f"{peers.to_html(index=False, float_format='%.1f')}"
                 + report_figures.html_figures(placed.take(report_figures.PEERS_TABLE), figures))
    if ceiling is not None:
        page += (f"<h2>Against the information ceiling</h2><p>{html.escape(_ceiling_note(runs))}</p>"
                 f"{ceiling.to_html(index=False, float_format='%.3f')}"
                 + report_figures.html_figures(placed.take(report_figures.CEILING_TABLE), figures))
    page += (f"<h2>Against the reference figures</h2><p>{html.escape(_reference_note(runs))}</p>"
             f"{reference.to_html(index=False, float_format='%.3f')}")
    rest = placed.rest()
    if rest:
        page += "<h2>Other figures</h2>" + report_figures.html_figures(rest, figures)
    return page + "</body></html>"
