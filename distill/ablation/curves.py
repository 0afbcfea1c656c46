"""The ablations read along a curve: 1.2 / 3.2 (test R^2 against the noise level) and 3.3 (test R^2 against the
labelled training spectra)."""
import pandas as pd

from .. import ablations, criteria, figures, intervals, label_efficiency, probe
from ..data import SPLITS
from .finding import AblationSettings, Finding
from .inputs import AblationInputs

SEES_SIGMA = ("teacher", ablations.SIGMA_CONTROL)  # sweep readers that get the true sigma at every noise level


def table_r2(table: pd.DataFrame, axis: str, features: str, x) -> intervals.Interval:
    """The test R^2 with its interval of one point of a curve table (``intervals.curve_table``)."""
    row = table[(table["features"] == features) & (table[axis] == x)].iloc[0]
    return intervals.Interval.read(row.to_dict(), "test_r2")


def run_noise_sweep(ctx: AblationInputs, s: AblationSettings) -> Finding:
    """1.2 / 3.2 with controls: the teacher reads the true sigma at every level, so beside it run a flux reader that
    sees sigma too (flux_and_sigma) and the teacher trained without sigma; robustness that comes through sigma shows."""
    found, label = Finding(), s.label
    levels, head = sorted(set(s.noise_levels) | {ctx.noise_level}), s.heads[0]
    no_error = ctx.no_error[0]
    control = ablations.SIGMA_CONTROL
    sets = {"teacher": ctx.latent, "raw": ctx.raw,
            control: probe.FeatureSet({split: ctx.noisy_and_sigma(split, ctx.noise_level) for split in SPLITS},
                                      ctx.y, control),
            "no_error_teacher": ctx.no_error_set}
    test_at = {"teacher": lambda lv: ctx.teacher_latent(ctx.teacher, "test", lv),
               "raw": lambda lv: ctx.noisy("test", lv),
               control: lambda lv: ctx.noisy_and_sigma("test", lv),
               "no_error_teacher": lambda lv: ctx.teacher_latent(no_error, "test", lv)}
    if ctx.student:
        sets["student"], test_at["student"] = ctx.student_set, lambda lv: ctx.student_latent("test", lv)
    y = ctx.y["test"][label].to_numpy(float)
    preds = ablations.noise_curves(sets, test_at, levels, label, head, s.head_params)
    table = intervals.curve_table(preds, y, "noise_level")
    table["sees_sigma"] = table["features"].isin(SEES_SIGMA)
    found.metrics |= {f"{row.features}_{head}_test_r2_{label}_noise_{row.noise_level:g}{end}":
                      getattr(row, f"test_r2{end}") for row in table.itertuples() for end in ("", "_lo", "_hi")}
    top = max(levels)  # the core keys: the teacher at the training level against the highest level
    found.metrics |= (table_r2(table, "noise_level", "teacher", ctx.noise_level).keyed(f"reference_test_r2_{label}")
                      | table_r2(table, "noise_level", "teacher", top).keyed(f"ablated_test_r2_{label}")
                      | intervals.delta(y, preds["teacher", ctx.noise_level],
                                        preds["teacher", top]).keyed(f"delta_test_r2_{label}"))
    found.tables["tables/noise_sweep.json"] = table
    shown = table.assign(features=[f"{n} (sees sigma)" if seen else n
                                   for n, seen in zip(table.features, table.sees_sigma)])
    found.figures["figures/noise_sweep.png"] = figures.curves(
        shown, "noise_level", f"{label}: {head} trained at noise {ctx.noise_level:g}",
        ceiling=ctx.upstream.ceilings(label, levels))
    slower = ablations.slower_than_raw(preds, y, ctx.noise_level, top)
    found.metrics |= {k: v for name, d in slower.items() for k, v in d.keyed(f"{name}_slower_than_raw_{label}").items()}
    beats = intervals.delta(y, preds["teacher", top], preds["raw", top])  # "latent beats raw flux at high noise"
    found.metrics |= beats.keyed(f"teacher_minus_raw_test_r2_{label}_noise_top")
    for verdict in ablations.robustness(table, ctx.noise_level, slower):
        found.verdict(verdict)
    found.verdict(criteria.verdict("latent_beats_raw", beats, f"At noise {top:g}, the highest of the sweep."))
    found.head, found.compared, found.table = head, ", ".join(sets) + f" at noise {levels}", table
    return found


def run_sample_efficiency(ctx: AblationInputs, s: AblationSettings) -> Finding:
    found, label, seed = Finding(), s.label, s.seed
    n_train = len(ctx.y["train"])
    sizes = [v for v in s.sizes if 0 < v < n_train] + [n_train]
    readers = {name: label_efficiency.head_reader(fs, label, seed=seed)
               for name, fs in (("teacher", ctx.latent), ("raw", ctx.raw))}
    readers["raw_lightgbm"] = label_efficiency.head_reader(ctx.raw, label, "lightgbm", s.head_params, seed)
    subject = "teacher"
    if ctx.label_free:
        subject = "label_free_student"
        readers = {subject: label_efficiency.head_reader(ctx.label_free_set, label, seed=seed)} | readers | {
            "supervised_network": ctx.supervised_reader(label, seed)}
    y_test = ctx.y["test"][label].to_numpy(float)
    preds = label_efficiency.predictions(readers, sizes)
    table = intervals.curve_table(preds, y_test, "n_train")
    gain = label_efficiency.gains_every(preds, y_test, subject)  # over every comparator: none picked on test
    found.metrics |= ({f"{row.features}_test_r2_{label}_n_{row.n_train}{end}": getattr(row, f"test_r2{end}")
                       for row in table.itertuples() for end in ("", "_lo", "_hi")}
                      | label_efficiency.keyed_gains(gain, label))
    k = min(gain)  # the core keys at the fewest labels: the subject against raw-flux Ridge, fixed beforehand
    d = gain[k]["raw"]
    found.metrics |= (table_r2(table, "n_train", subject, k).keyed(f"ablated_test_r2_{label}")
                      | table_r2(table, "n_train", "raw", k).keyed(f"reference_test_r2_{label}")
                      | d.keyed(f"delta_test_r2_{label}"))
    found.tables["tables/sample_efficiency.json"] = table
    ceiling = ctx.upstream.ceilings(label, [ctx.noise_level])
    found.figures["figures/sample_efficiency.png"] = figures.curves(
        table, "n_train", f"{label}: R^2 against labelled training spectra", log_x=True,
        ceiling=None if ceiling is None else ceiling.iloc[0])
    word, text = label_efficiency.verdict_every(gain, label_efficiency.p_values(preds, y_test, subject),
                                                subject.replace("_", " "), n_val=len(ctx.y["val"]))
    if not ctx.label_free:
        text += " No label-free student was given (label_free_student=none): the teacher latent stands in."
    found.verdict(criteria.outcome("3.3", word, text))
    found.undecided_why = text
    found.head, found.table, found.value = "ridge (alpha on validation)", table, d.value
    found.compared = ", ".join(readers) + f" at {sizes} labels"
    return found
