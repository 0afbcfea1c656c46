"""The answer to the research question: every stage's criterion against the measured value, the plan's
decision rules (docs/research-plan.md section 5), and the reference figures, from summaries of tracked runs.

A run summary is ``{"run_id", "metrics", "tags", "params"}``; ``runs`` maps step names (those of the
``main`` entry point) to summaries, and ``ablations`` maps ablate kinds to their child runs' summaries.
"""
import base64
import html
from dataclasses import dataclass

import pandas as pd

from . import criteria, intervals
from .heads import ON_VAL
from .intervals import BETTER, WORSE, Interval
from .peers import BOUNDED as PEER_BOUNDED
from .peers import DESCRIPTIONS as PEER_NAMES
from .peers import METHODS as PEERS
from .peers import SEES_SIGMA as PEER_SEES_SIGMA
from .student.verdicts import PASSING_2_2
from .thresholds import (
    COSINE_PASS,
    ERROR_DOMINATES,
    EXTRA_INFORMATION,
    FAIL_DELTA,
    STAGE_1_RIDGE,
    STAGE_1B_LIGHTGBM,
    TEACHER_FRACTION,
    USEFUL,
)

PASS, FAIL, NOT_RUN, INFO, UNDECIDED = "pass", "fail", "not run", "info", "undecided"

# cross-run comparisons the report draws from the runs' predictions/test.parquet: name -> ((step, column), (step,
# column)), the first minus the second; each column is suffixed with the label
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


def _against(ci: Interval | None, value, stage: str) -> str:
    """The status of ``stage``'s criterion (``distill.criteria``) from the logged interval; a bare value from an
    older run without an interval is judged on the point."""
    if ci is None:
        ci = None if value is None else Interval(value, value, value)
    return NOT_RUN if ci is None else criteria.judge(stage, ci)


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


def stage_rows(runs: dict, ablations: dict, deltas: dict | None = None) -> list:
    """One row per stage / MVP of the plan, in the plan's order; ``deltas`` from ``cross_run_deltas``."""
    deltas = deltas or {}
    rows = []
    grid, decomp = runs.get("probe_grid"), runs.get("decompose_error")
    student, plus, baseline = runs.get("student"), runs.get("student_plus"), runs.get("supervised_baseline")

    fisher = runs.get("fisher")
    rows.append(Row("ceiling", "the log g information in the noisy flux (Bayesian bound on R^2; yardstick; unbiased)",
                    f"bound {_fmt(_m(fisher, 'bound_r2_log_g'))}; yardstick "
                    f"{_fmt(_m(fisher, 'ceiling_prior_r2_log_g'))} (unbiased {_fmt(_m(fisher, 'ceiling_r2_log_g'))})"
                    if fisher else "-",
                    INFO if fisher else NOT_RUN, fisher["run_id"] if fisher else "",
                    "" if fisher else "`fisher -P data=...` (simulated data only)"))
    # Stage 1
    ridge, lgbm = (_m(grid, "best_test_r2_log_g_ridge"),
                   _m(grid, "best_test_r2_log_g_lightgbm")) if grid else (None, None)
    stage_1 = f"latent Ridge R^2 >= {STAGE_1_RIDGE} (Stage 1)"
    if grid is None:
        rows.append(Row("1.1 / 1.4", stage_1, "-", NOT_RUN))
    else:
        rows.append(Row("1.1 / 1.4", f"{stage_1}, best layer x pooling (95 % interval)",
                        _fmt_ci(grid, "best_test_r2_log_g_ridge"),
                        _against(_ci(grid, "best_test_r2_log_g_ridge"), ridge, "1"), grid["run_id"]))
        lgbm_status = _against(_ci(grid, "best_test_r2_log_g_lightgbm"), lgbm, "1b")
        rows.append(Row("1b", f"latent LightGBM R^2 >= {STAGE_1B_LIGHTGBM}",
                        _fmt_ci(grid, "best_test_r2_log_g_lightgbm"), lgbm_status, grid["run_id"],
                        "run 1.2 (noise sweep)" if lgbm_status == PASS else "1.2 is not yet warranted"))
    pca = runs.get("probe_pca")
    rows.append(Row("1.3", "PCA of the latent to 16-128 dims: is log g concentrated?",
                    f"{_fmt_ci(pca, 'test_r2_log_g')} with {pca['params'].get('pca')} dims" if pca else "-",
                    INFO if pca else NOT_RUN, pca["run_id"] if pca else "", "" if pca else "`probe -P pca=32` runs it"))
    # Stage A
    stage_a = (f"latent -> r vs flux -> r, and vs flux + sigma -> r (the control); above {EXTRA_INFORMATION}: real "
               "extra information")
    if decomp is None:
        rows.append(Row("A", stage_a, "-", NOT_RUN))
    else:
        rows.append(Row("A", stage_a,
                        f"latent (sees sigma) {_fmt_ci(decomp, 'verdict_latent_r2_residual')}, flux "
                        f"{_fmt_ci(decomp, 'verdict_flux_r2_residual')}, flux + sigma "
                        f"{_fmt_ci(decomp, 'verdict_flux_error_r2_residual')}; "
                        f"error-only {_fmt(_m(decomp, 'error_ridge_test_r2_log_g'))}", INFO, decomp["run_id"],
                        decomp["tags"].get("verdict", "")))
    # 1.2 / 3.2, 3.3, 4.x
    sweep = ablations.get("noise_sweep")
    latent_beats_raw = None
    if sweep is not None:
        top = max(float(k.rsplit("_", 1)[1]) for k in sweep["metrics"]
                  if k.startswith("raw_") and "_noise_" in k and not k.endswith(("_lo", "_hi")))
        at = {name: next((v for k, v in sweep["metrics"].items()
                          if k.startswith(f"{name}_") and k.endswith(f"_noise_{top:g}")), None)
              for name in ("teacher", "student", "raw")}
        t, r = at["teacher"], at["raw"]
        beats = _ci(sweep, "teacher_minus_raw_test_r2_log_g_noise_top")  # the paired interval decides
        latent_beats_raw = (criteria.judge("latent_beats_raw", beats) == criteria.PASS if beats is not None
                            else t is not None and r is not None and t > max(r, USEFUL))  # runs from before
        rows.append(Row("1.2 / 3.2", "latent (student) degrades more slowly than raw flux with noise",
                        f"at noise {top:g}: "
                        + ", ".join(f"{name} {_fmt(v)}" for name, v in at.items() if v is not None),
                        {"latent_more_robust": PASS, "undecided": UNDECIDED}.get(sweep["tags"]["verdict"], FAIL),
                        sweep["run_id"],
                        "latent beats raw flux at high noise -> Stage 2" if latent_beats_raw
                        else "run 4.1 / 4.2 before Stage 2"))
    else:
        rows.append(Row("1.2 / 3.2", "latent degrades more slowly than raw flux with noise", "-", NOT_RUN))
    # Stage 2
    cos = _m(student, "test_latent_cosine")
    v21 = student["tags"].get("verdict_2_1") if student else None  # the verdicts distill_student logged
    reach = _m(student, "test_latent_cosine_reproducible")
    rows.append(Row("2.1", f"student test cosine(z_s, z*) >= {COSINE_PASS}",
                    _fmt(cos) + ("" if reach is None
                                 else f" (reachable about {reach:.3f}: the teacher's z* under two noise draws)"),
                    NOT_RUN if v21 is None else PASS if v21 == "pass" else FAIL, student["run_id"] if student else "",
                    "" if v21 is None else (f"cosine >= {COSINE_PASS} -> 2.2" if v21 == "pass" else
                                            f"{v21}: " + ("go to 2.3" if v21 == "underfit" else "revisit 2.1"))))
    stage_2_2 = f"student R^2 >= {TEACHER_FRACTION} x teacher and >= raw flux"
    v22 = student["tags"].get("verdict_2_2") if student else None
    if v22 is None:
        rows.append(Row("2.2", stage_2_2, "-", NOT_RUN))
    else:
        s, te, ra = (_m(student, f"{name}_test_r2_log_g") for name in ("student", "teacher", "raw"))
        ok, text22 = v22 in PASSING_2_2, student["tags"].get("verdict_2_2_text", "")
        undecided = v22 in ("undecided", "ties_raw")
        rows.append(Row("2.2", stage_2_2, text22 or f"student {_fmt(s)}, teacher {_fmt(te)}, raw {_fmt(ra)}",
                        PASS if ok else UNDECIDED if undecided else FAIL, student["run_id"],
                        ("the teacher half is vacuous: raw flux decides; " if "vacuous" in text22 else "")
                        + ("-> Stage 3" if ok else "not shown at this size" if undecided
                           else "below raw flux: back to 2.1" if v22 == "below_raw"
                           else f"below {TEACHER_FRACTION} x teacher: analyse")))
    if plus is None:
        rows.append(Row("2.3", "student-plus (flux + error) fits where flux-only does not", "-", NOT_RUN))
    else:
        pc, fc = _m(plus, "test_latent_cosine"), cos
        plus_fits, flux_fits = plus["tags"].get("verdict_2_1") == "pass", v21 == "pass"
        reading = ("flux alone has an information bottleneck" if plus_fits and not flux_fits else
                   "neither fits: suspect a bug or an unlearnable latent" if not plus_fits and not flux_fits else
                   "both fit")
        rows.append(Row("2.3", "student-plus (flux + error) fits where flux-only does not",
                        f"test cosine: flux-only {_fmt(fc)}, flux+error {_fmt(pc)}; R^2 "
                        f"{_fmt(_m(plus, 'student_test_r2_log_g'))}",
                        INFO, plus["run_id"], reading))
    # Stage 3
    stage_3_1 = f"student + head >= raw / denoised flux + same head (fail at -{FAIL_DELTA})"
    if student is None:
        rows.append(Row("3.1", stage_3_1, "-", NOT_RUN))
    else:
        v = student["tags"].get("verdict_3_1", "")
        rows.append(Row("3.1", stage_3_1,
                        f"student {_fmt(_m(student, 'student_test_r2_log_g'))} vs raw "
                        f"{_fmt(_m(student, 'raw_test_r2_log_g'))}, "
                        f"denoised {_fmt(_m(student, 'denoised_test_r2_log_g'))}",
                        {"pass": PASS, "acceptable": INFO, "fail": FAIL, "undecided": UNDECIDED}.get(v, NOT_RUN),
                        student["run_id"],
                        student["tags"].get("verdict_3_1_text", "")))
    if baseline is not None:
        rows.append(Row("3 (baseline)", "distilled student vs the supervised end-to-end network (lambda_z = 0)",
                        f"student {_fmt_ci(student, 'student_test_r2_log_g')}, end-to-end "
                        f"{_fmt_ci(baseline, 'student_test_r2_log_g')}",
                        INFO, baseline["run_id"], _distillation_gain(deltas.get("student_vs_supervised"))))
    stage_b = runs.get("student_residual")
    rows.append(Row("B", "student distilled towards the residual r: student -> r against flux -> r",
                    f"student {_fmt(_m(stage_b, 'student_test_r2_residual'))}, raw "
                    f"{_fmt(_m(stage_b, 'raw_test_r2_residual'))}"
                    if stage_b else "-", INFO if stage_b else NOT_RUN, stage_b["run_id"] if stage_b else "",
                    stage_b["tags"].get("verdict_B",
                                        "") if stage_b else "`distill_student -P target=residual` runs it"))
    eff = ablations.get("sample_efficiency")
    rows.append(Row("3.3", "a student distilled without labels, heads on 1k-5k labels, above every comparator on "
                           "the same labels", eff["tags"]["verdict_text"] if eff else "-",
                    NOT_RUN if eff is None else {"pays_off": PASS, "does_not_pay_off": FAIL}.get(eff["tags"]["verdict"],
                                                                                                   UNDECIDED),
                    eff["run_id"] if eff else ""))
    # Stage 4
    for kind, stage, criterion in (("no_error_teacher", "4.1",
                                    f"removing the error costs delta R^2 < {ERROR_DOMINATES}"),
                                   ("shuffle_error", "4.2", "shuffled sigma: a drop means the teacher uses sigma"),
                                   ("shuffle_labels", "4.3", "shuffled labels give R^2 ~ 0 (no leakage)")):
        run = ablations.get(kind)
        if run is None:
            rows.append(Row(stage, criterion, "-", NOT_RUN))
            continue
        verdict = run["tags"]["verdict"]
        status = (UNDECIDED if verdict == "undecided" else INFO if kind == "shuffle_error"
                  else FAIL if verdict in ("error_dominates", "leakage_alarm") else PASS)
        rows.append(Row(stage, criterion, run["tags"]["verdict_text"], status, run["run_id"], verdict))
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


def _peer_name(runs: dict, method: str) -> str:
    """The peer's name, with its test subset when it was scored on fewer test spectra than the student."""
    n = _m(runs.get(f"peer_{method}"), f"{method}_n_test")
    total = float((runs.get("student") or {"params": {}})["params"].get("n_test", 0))
    name = PEER_NAMES[method] + (" (sees sigma)" if PEER_SEES_SIGMA[method] else "")
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


def markdown(title: str, rows: list, text: str, reference: pd.DataFrame, figures: dict, ceiling=None, runs=None,
             peers=None) -> str:
    table = pd.DataFrame([r.__dict__ for r in rows]).rename(columns={"run_id": "run"})
    out = [f"# {title}", "", "## Answer", "", text, "", "## Stages and criteria", "",
           table.to_markdown(index=False), ""]
    if peers is not None:
        out += ["## Against the field's estimators", "", PEER_NOTE, "", peers.to_markdown(index=False, floatfmt=".1f"),
                ""]
    if ceiling is not None:
        out += ["## Against the information ceiling", "", _ceiling_note(runs), "",
                ceiling.to_markdown(index=False, floatfmt=".3f"), ""]
    out += ["## Against the reference figures", "", _reference_note(runs), "",
            reference.to_markdown(index=False, floatfmt=".3f"), ""]
    if figures:
        out += ["## Figures", ""] + [f"![{name}](figures/{name})" for name in figures]
    return "\n".join(out) + "\n"


def html_page(title: str, rows: list, text: str, reference: pd.DataFrame, figures: dict, ceiling=None,
              runs=None, peers=None) -> str:
    """A self-contained page: tables inline, figures as base64 PNG."""
    table = pd.DataFrame([r.__dict__ for r in rows]).rename(columns={"run_id": "run"})
    imgs = "".join(f"<figure><img "
                   f"src='data:image/png;base64,{base64.b64encode(png).decode()}'><figcaption>{html.escape(name)}"
                   f"</figcaption></figure>" for name, png in figures.items())
    style = ("body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.3em .5em;font-size:.9em}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta "
            f"charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><h2>Answer</h2><p>{html.escape(text)}</p><h2>Stages and criteria</h2>"
            f"{table.to_html(index=False, escape=True)}"
            + ("" if peers is None else f"<h2>Against the field's estimators</h2><p>{html.escape(PEER_NOTE)}</p>"
               f"{peers.to_html(index=False, float_format='%.1f')}")
            + ("" if ceiling is None else f"<h2>Against the information "
                                          f"ceiling</h2><p>{html.escape(_ceiling_note(runs))}</p>"
               f"{ceiling.to_html(index=False, float_format='%.3f')}")
            + "<h2>Against the reference figures</h2>"
            f"<p>{html.escape(_reference_note(runs))}</p>{reference.to_html(index=False, float_format='%.3f')}"
            f"<h2>Figures</h2>{imgs}</body></html>")
