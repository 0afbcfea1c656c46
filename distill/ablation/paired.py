"""The ablations judged on one paired difference at the training noise level: 4.1 (the teacher without sigma), 4.2
(sigma shuffled across spectra) and 4.3 (labels shuffled: the leakage guard)."""
from dataclasses import replace

from .. import ablations, decompose, figures, intervals, probe
from ..data import SPLITS
from ..errors import DistillError
from .finding import AblationSettings, Finding
from .inputs import AblationInputs


def heads_on(fs: probe.FeatureSet, s: AblationSettings, heads, found: Finding) -> dict:
    """``probe.fit_heads`` on the label, every score kept as ``{fs.name}_{head}_{split}_{metric}_{label}``."""
    results = probe.fit_heads(fs, [s.label], heads, s.head_params)
    found.metrics |= {f"{fs.name}_{head}_{k}": v for (_, head), r in results.items() for k, v in r.scores.items()}
    return results


def paired(ctx: AblationInputs, other: probe.FeatureSet, s: AblationSettings, found: Finding) -> tuple:
    """The head best on validation for the teacher latent, fitted on the latent (the reference) and on ``other`` (the
    ablated condition): (head, delta = reference - ablated test R^2 as a paired Interval, the ablated fit). Keeps both
    R^2 and the delta with their intervals under the keys every ablation shares."""
    label = s.label
    head, best = probe.best_on_val(heads_on(ctx.latent, s, s.heads, found), label)
    ablated = heads_on(other, s, s.heads, found)[label, head]
    y = ctx.y["test"][label].to_numpy(float)
    delta = intervals.delta(y, best.predictions["test"], ablated.predictions["test"])
    key = f"test_r2_{label}"
    found.metrics |= ({f"reference_{k}": v for k, v in best.scores.items() if k.startswith(key)}
                      | {f"ablated_{k}": v for k, v in ablated.scores.items() if k.startswith(key)}
                      | delta.keyed(f"delta_{key}"))
    return head, delta, ablated


def run_no_error_teacher(ctx: AblationInputs, s: AblationSettings) -> Finding:
    found = Finding()
    if ctx.no_error[1]:
        found.tags["no_error_teacher_run_id"] = ctx.no_error[1]
    head, delta, no_error = paired(ctx, ctx.no_error_set, s, found)
    stage_a_control(ctx, s, found)
    verdict = ablations.error_dependence(delta)
    vs_raw = no_error_minus_raw(ctx, no_error, head, s, found)
    found.verdict(replace(verdict, text=f"{verdict.text} Without sigma, latent minus raw noisy flux ({head}): "
                                        f"{vs_raw.text()}, {vs_raw.verdict()}."))
    found.head, found.compared, found.value = head, "teacher vs no_error_teacher", delta.value
    return found


def no_error_minus_raw(ctx: AblationInputs, no_error: probe.LabelResult, head: str, s: AblationSettings,
                       found: Finding) -> intervals.Interval:
    """The no-error teacher's latent (its fit ``no_error``) minus raw noisy flux, same head, paired on the test
    spectra: whether the latent reads more log g than the flux once sigma is taken away
    (``no_error_minus_raw_test_r2_{label}``)."""
    label = no_error.label
    raw = heads_on(ctx.raw, s, [head], found)[label, head]
    vs_raw = intervals.delta(ctx.y["test"][label].to_numpy(float), no_error.predictions["test"],
                             raw.predictions["test"])
    found.metrics |= vs_raw.keyed(f"no_error_minus_raw_test_r2_{label}")
    return vs_raw


def stage_a_control(ctx: AblationInputs, s: AblationSettings, found: Finding):
    """Stage A's control arm: the error-only residual r (of the newest decompose_error run on this data) read from
    the latent of the teacher without sigma beside the teacher's own with the first head, as
    ``stage_a_{teacher,no_error_teacher}_...`` and their paired difference; skipped with a note when there is no r."""
    head = s.heads[0]
    try:
        r = ctx.upstream.residual(s.label, {split: len(ctx.y[split]) for split in SPLITS})
    except DistillError as e:
        found.notes.append(f"Stage A control skipped: {e}")
        return
    fits = {fs.name: probe.fit_label(decompose.on_target(fs, r, "residual"), "residual", head, **s.head_params)
            for fs in (ctx.latent, ctx.no_error_set)}
    for name, fit in fits.items():
        found.metrics |= intervals.r2(r["test"], fit.predictions["test"]).keyed(
            f"stage_a_{name}_{head}_test_r2_residual")
    found.metrics |= intervals.delta(r["test"], fits["teacher"].predictions["test"],
                                     fits["no_error_teacher"].predictions["test"]).keyed(
        f"stage_a_teacher_minus_no_error_{head}_test_r2_residual")


def run_shuffle_error(ctx: AblationInputs, s: AblationSettings) -> Finding:
    found = Finding()
    shuffled = {split: ablations.permuted_sigma(ctx.arrays[split][1], s.seed + i) for i, split in enumerate(SPLITS)}
    latents = {split: ctx.teacher_latent(ctx.teacher, split, sigma_error=shuffled[split]) for split in SPLITS}
    head, delta, _ = paired(ctx, probe.FeatureSet(latents, ctx.y, "shuffled_sigma"), s, found)
    found.verdict(ablations.sigma_use(delta))
    found.head, found.compared, found.value = head, "teacher vs teacher with shuffled sigma", delta.value
    return found


def run_shuffle_labels(ctx: AblationInputs, s: AblationSettings) -> Finding:
    found, label = Finding(), s.label
    sets = [ctx.latent] + ([ctx.student_set] if ctx.student else [])
    checks, values = {}, {}
    for fs in sets:
        for head in s.heads:
            values[fs.name, head] = {}
            checks[fs.name, head] = ablations.shuffle_check(fs, label, head, s.head_params, s.shuffles, s.seed,
                                                            values[fs.name, head])
            found.metrics |= {f"{fs.name}_{head}_{k}": v for k, v in checks[fs.name, head].items()}
    found.figures["figures/shuffle_labels_null.png"] = figures.shuffled_labels_null(
        {f"{name} + {head}": v | {"p_value": checks[name, head]["shuffled_p_value"]}
         for (name, head), v in values.items()}, label)
    first = next(iter(checks.values()))  # the teacher latent's first head: true labels against shuffled
    reference = intervals.Interval(first["test_r2"], first["test_r2_lo"], first["test_r2_hi"])
    shuffled = first["shuffled_mean"]  # the interval of the delta is the true labels' (the mean over shuffles fixed)
    found.metrics |= (reference.keyed(f"reference_test_r2_{label}") | {f"ablated_test_r2_{label}": shuffled}
                      | intervals.Interval(reference.value - shuffled, reference.lo - shuffled,
                                           reference.hi - shuffled).keyed(f"delta_test_r2_{label}"))
    found.verdict(ablations.leakage(checks, s.false_alarm))
    found.head = ",".join(s.heads)
    found.compared = " and ".join(fs.name for fs in sets) + f", labels shuffled {s.shuffles} times"
    found.value = min(c["shuffled_p_value"] for c in checks.values())
    return found
