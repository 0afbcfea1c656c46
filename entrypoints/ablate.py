"""Stage 4 and robustness: each ablation a nested child run under one `ablate` parent with the summary table.

    mlflow run . -e ablate -P data=data/sim --env-manager local                       # all five
    mlflow run . -e ablate -P kind=shuffle_labels --env-manager local
    mlflow run . -e ablate -P kind=noise_sweep,sample_efficiency -P student=latest --env-manager local
"""
import functools

import click
import mlflow
import numpy as np
import pandas as pd
import torch

from distill import ablations, decompose, figures, intervals, label_efficiency, probe, tracking
from distill.data import LABELS, SPLITS, ArraySpectra, add_noise, noise_draw, open_dataset
from distill.device import pick_device
from distill.errors import DistillError, check_choices
from distill.heads import SHARED_HEADS
from distill.student.model import Student, student_latent
from distill.student.targets import fixed_targets
from distill.student.train import DistillSettings, DistillTrainer
from entrypoints import _options as opt
from entrypoints import _upstream as upstream
from entrypoints._cli import number_list, one_line_errors, progress_bar, split_list

KINDS = ("no_error_teacher", "shuffle_error", "shuffle_labels", "noise_sweep", "sample_efficiency")
MVP = {"no_error_teacher": "4.1", "shuffle_error": "4.2", "shuffle_labels": "4.3", "noise_sweep": "1.2,3.2",
       "sample_efficiency": "3.3"}


class Inputs:
    """What the ablations share, loaded once and only when a child needs it."""

    def __init__(self, ds, data, features, teacher, student, label_free_student, layer, pooling, direction, noise_level,
                 summary, device, opts):
        self.data, self.layer, self.pooling, self.direction, self.opts = data, layer, pooling, direction, opts
        self.noise_level, self.device, self.summary = noise_level, device, summary
        self.arrays = {s: ds[s].read() for s in SPLITS}
        self.y = {s: ds[s].params[list(LABELS)].reset_index(drop=True) for s in SPLITS}
        run = upstream.features_run(features, data, noise_level, summary)
        mlflow.set_tag("features_run_id", run.info.run_id)
        local, manifest = upstream.download_features(run, sorted(set(layer.split("+"))))
        self.extract = (run, manifest)
        self.latent = probe.latent_features(local, manifest, layer, pooling, direction)
        self.latent.name = "teacher"
        self.student_ref, self.label_free_ref, self._teacher_ref = student, label_free_student, teacher

    @functools.cached_property
    def teacher(self):
        model, ref = upstream.teacher_of(self._teacher_ref, self.extract, self.data)
        mlflow.set_tags(ref)
        return model.to(self.device).eval().requires_grad_(False)

    @functools.cached_property
    def no_error(self) -> tuple:
        """(the teacher without the sigma input, its train_teacher run id or None): found or trained once. Trained,
        it runs as long as the teacher (``teacher_epochs`` 0) and always with its loss, so the two differ only in
        sigma."""
        epochs, loss = upstream.teacher_training(self.extract[1])
        model, run_id = upstream.no_error_teacher(self.opts["no_error_teacher"], self.teacher, self.data,
                                                  self.noise_level, self.opts["teacher_epochs"] or epochs, loss)
        return model.to(self.device).eval().requires_grad_(False), run_id

    @functools.cached_property
    def no_error_set(self) -> probe.FeatureSet:
        return probe.FeatureSet({s: self.teacher_latent(self.no_error[0], s) for s in SPLITS}, self.y,
                                "no_error_teacher")

    def teacher_latent(self, model, split, noise_level=None, sigma_error=None) -> np.ndarray:
        nl = self.noise_level if noise_level is None else noise_level
        return fixed_targets(model, ArraySpectra(*self.arrays[split]), split, nl, self.layer, self.pooling,
                             self.direction, self.device, sigma_error=sigma_error)

    def noisy(self, split, noise_level) -> np.ndarray:
        flux, error = self.arrays[split]
        return add_noise(flux, error, noise_level, noise_draw(split, range(len(flux)), flux.shape[1]))

    def noisy_and_sigma(self, split, noise_level) -> np.ndarray:
        """Noisy flux and the true sigma at ``noise_level`` side by side: a flux reader that sees sigma."""
        return np.hstack([self.noisy(split, noise_level), self.arrays[split][1] * np.float32(noise_level)])

    @functools.cached_property
    def raw(self) -> probe.FeatureSet:
        return probe.FeatureSet({s: self.noisy(s, self.noise_level) for s in SPLITS}, self.y, "raw")

    @functools.cached_property
    def student(self):
        """(predictor, run) of the distill_student run given, or None."""
        if self.student_ref == "none":
            return None
        return upstream.student(self.student_ref, self.data, self.noise_level, self.device)

    @functools.cached_property
    def label_free(self):
        """(predictor, run) of the student distilled without labels (3.3), or None."""
        if self.label_free_ref == "none":
            return None
        return upstream.student(self.label_free_ref, self.data, self.noise_level, self.device, label_free=True)

    def student_latent(self, split, noise_level=None, student=None) -> np.ndarray:
        predictor, run = student or self.student
        noisy = self.noisy(split, self.noise_level if noise_level is None else noise_level)
        return student_latent(predictor, noisy, self.arrays[split][1], run.data.tags.get("input", "flux"), self.device)

    @functools.cached_property
    def student_set(self) -> probe.FeatureSet:
        return probe.FeatureSet({s: self.student_latent(s) for s in SPLITS}, self.y, "student")

    @functools.cached_property
    def label_free_set(self) -> probe.FeatureSet:
        return probe.FeatureSet({s: self.student_latent(s, student=self.label_free) for s in SPLITS}, self.y,
                                "label_free_student")

    def supervised_reader(self, label: str, seed: int):
        """k -> test predictions of the label-free student's architecture trained end to end on k labels
        (``lambda_z = 0``) with its training settings: the supervised network at the same labels."""
        predictor, run = self.label_free
        p = run.data.params
        settings = DistillSettings(lambda_z=0.0, lambda_y=1.0, epochs=int(float(p["epochs"])),
                                   batch_size=int(float(p["batch_size"])), lr=float(p["lr"]),
                                   patience=int(float(p["patience"])), noise_level=self.noise_level,
                                   input=run.data.tags.get("input", "flux"), seed=seed)
        y = {s: self.y[s][label].to_numpy(np.float64) for s in SPLITS}

        def read(k):
            rows = probe.subset_rows(len(y["train"]), k, seed)
            flux, error = self.arrays["train"]
            spectra = {"train": ArraySpectra(flux[rows], error[rows])} | {
                s: ArraySpectra(*self.arrays[s]) for s in ("val", "test")}
            torch.manual_seed(seed)
            labelled = y | {"train": y["train"][rows]}
            net = Student(**predictor.student.config)
            trainer = DistillTrainer(net, spectra, None, labelled, settings, self.device)
            with progress_bar(settings.epochs * len(rows), f"supervised network, {len(rows)} labels") as bar:
                trainer.fit(bar.update)
            return trainer.predict("test")[1]
        return read


def heads_on(fs: probe.FeatureSet, label, head_list, head_params) -> dict:
    """``probe.fit_heads`` on one label, every score logged as ``{fs.name}_{head}_{split}_{metric}_{label}``."""
    results = probe.fit_heads(fs, [label], head_list, head_params)
    tracking.log_head_scores(fs.name, results)
    return results


def paired(ctx, other: probe.FeatureSet, label, head_list, head_params) -> tuple:
    """The head best on validation for the teacher latent, fitted on the latent (the reference) and on ``other`` (the
    ablated condition): (head, delta = reference - ablated test R^2 as a paired Interval, the ablated fit). Logs both
    R^2 and the delta with their intervals under the keys every ablation child shares."""
    head, best = probe.best_on_val(heads_on(ctx.latent, label, head_list, head_params), label)
    ablated = heads_on(other, label, head_list, head_params)[label, head]
    y = ctx.y["test"][label].to_numpy(float)
    delta = intervals.delta(y, best.predictions["test"], ablated.predictions["test"])
    key = f"test_r2_{label}"
    tracking.log_metrics({f"reference_{k}": v for k, v in best.scores.items() if k.startswith(key)}
                         | {f"ablated_{k}": v for k, v in ablated.scores.items() if k.startswith(key)}
                         | delta.keyed(f"delta_{key}"))
    return head, delta, ablated


def run_no_error_teacher(ctx, label, head_list, head_params, opts) -> tuple:
    if ctx.no_error[1]:
        mlflow.set_tag("no_error_teacher_run_id", ctx.no_error[1])
    head, delta, no_error = paired(ctx, ctx.no_error_set, label, head_list, head_params)
    stage_a_control(ctx, label, head_list[0], head_params)
    verdict, text = ablations.error_dependence(delta)
    vs_raw = no_error_minus_raw(ctx, no_error, head, head_params)
    return (verdict, f"{text} Without sigma, latent minus raw noisy flux ({head}): {vs_raw.text()}, "
                     f"{vs_raw.verdict()}."), {"head": head, "compared": "teacher vs no_error_teacher",
                                               "value": delta.value}


def no_error_minus_raw(ctx, no_error: probe.LabelResult, head, head_params) -> intervals.Interval:
    """The no-error teacher's latent (its fit ``no_error``) minus raw noisy flux, same head, paired on the test
    spectra: whether the latent reads more log g than the flux once sigma is taken away. Logged as
    ``no_error_minus_raw_test_r2_{label}``."""
    label = no_error.label
    raw = heads_on(ctx.raw, label, [head], head_params)[label, head]
    vs_raw = intervals.delta(ctx.y["test"][label].to_numpy(float), no_error.predictions["test"],
                             raw.predictions["test"])
    tracking.log_metrics(vs_raw.keyed(f"no_error_minus_raw_test_r2_{label}"))
    return vs_raw


def stage_a_control(ctx, label: str, head: str, head_params: dict):
    """Stage A's control arm: the error-only residual r (of the newest decompose_error run on this data) read from
    the latent of the teacher without sigma beside the teacher's own, as ``stage_a_{teacher,no_error_teacher}_...``
    and their paired difference; skipped with a note when no decompose_error run exists."""
    try:
        r = upstream.residual_target("latest", ctx.data, label, {s: len(ctx.y[s]) for s in SPLITS})
    except DistillError as e:
        click.echo(f"Stage A control skipped: {e}", err=True)
        return
    fits = {fs.name: probe.fit_label(decompose.on_target(fs, r, "residual"), "residual", head, **head_params)
            for fs in (ctx.latent, ctx.no_error_set)}
    for name, fit in fits.items():
        tracking.log_metrics(intervals.r2(r["test"], fit.predictions["test"]).keyed(
            f"stage_a_{name}_{head}_test_r2_residual"))
    tracking.log_metrics(intervals.delta(r["test"], fits["teacher"].predictions["test"],
                                         fits["no_error_teacher"].predictions["test"]).keyed(
        f"stage_a_teacher_minus_no_error_{head}_test_r2_residual"))


def run_shuffle_error(ctx, label, head_list, head_params, opts) -> tuple:
    shuffled = {s: ablations.permuted_sigma(ctx.arrays[s][1], opts["seed"] + i) for i, s in enumerate(SPLITS)}
    latents = {s: ctx.teacher_latent(ctx.teacher, s, sigma_error=shuffled[s]) for s in SPLITS}
    head, delta, _ = paired(ctx, probe.FeatureSet(latents, ctx.y, "shuffled_sigma"), label, head_list, head_params)
    return ablations.sigma_use(delta), {"head": head, "compared": "teacher vs teacher with shuffled sigma",
                                        "value": delta.value}


def run_shuffle_labels(ctx, label, head_list, head_params, opts) -> tuple:
    sets = [ctx.latent] + ([ctx.student_set] if ctx.student else [])
    checks = {}
    for fs in sets:
        for head in head_list:
            checks[fs.name, head] = ablations.shuffle_check(fs, label, head, head_params, opts["shuffles"],
                                                            opts["seed"])
            tracking.log_metrics({f"{fs.name}_{head}_{k}": v for k, v in checks[fs.name, head].items()})
    first = next(iter(checks.values()))  # the teacher latent's first head: true labels against shuffled
    reference = intervals.Interval(first["test_r2"], first["test_r2_lo"], first["test_r2_hi"])
    shuffled = first["shuffled_mean"]  # the interval of the delta is the true labels' (the mean over shuffles fixed)
    tracking.log_metrics(reference.keyed(f"reference_test_r2_{label}") | {f"ablated_test_r2_{label}": shuffled}
                         | intervals.Interval(reference.value - shuffled, reference.lo - shuffled,
                                              reference.hi - shuffled).keyed(f"delta_test_r2_{label}"))
    code, text = ablations.leakage(checks, opts["false_alarm"])
    compared = " and ".join(fs.name for fs in sets) + f", labels shuffled {opts['shuffles']} times"
    return (code, text), {"head": ",".join(head_list), "compared": compared,
                          "value": min(c["shuffled_p_value"] for c in checks.values())}


def table_r2(table: pd.DataFrame, axis: str, features: str, x) -> intervals.Interval:
    """The test R^2 with its interval of one point of a curve table (``intervals.curve_table``)."""
    row = table[(table["features"] == features) & (table[axis] == x)].iloc[0]
    return intervals.Interval.read(row.to_dict(), "test_r2")


SEES_SIGMA = ("teacher", ablations.SIGMA_CONTROL)  # sweep readers that get the true sigma at every noise level


def run_noise_sweep(ctx, label, head_list, head_params, opts) -> tuple:
    """1.2 / 3.2 with controls: the teacher reads the true sigma at every level, so beside it run a flux reader that
    sees sigma too (flux_and_sigma) and the teacher trained without sigma; robustness that comes through sigma shows."""
    levels, head = sorted(set(opts["noise_levels"]) | {ctx.noise_level}), head_list[0]
    no_error = ctx.no_error[0]
    sets = {"teacher": ctx.latent, "raw": ctx.raw,
            ablations.SIGMA_CONTROL: probe.FeatureSet({s: ctx.noisy_and_sigma(s, ctx.noise_level) for s in SPLITS},
                                                      ctx.y, ablations.SIGMA_CONTROL),
            "no_error_teacher": ctx.no_error_set}
    test_at = {"teacher": lambda lv: ctx.teacher_latent(ctx.teacher, "test", lv),
               "raw": lambda lv: ctx.noisy("test", lv),
               ablations.SIGMA_CONTROL: lambda lv: ctx.noisy_and_sigma("test", lv),
               "no_error_teacher": lambda lv: ctx.teacher_latent(no_error, "test", lv)}
    if ctx.student:
        sets["student"], test_at["student"] = ctx.student_set, lambda lv: ctx.student_latent("test", lv)
    y = ctx.y["test"][label].to_numpy(float)
    preds = ablations.noise_curves(sets, test_at, levels, label, head, head_params)
    table = intervals.curve_table(preds, y, "noise_level")
    table["sees_sigma"] = table["features"].isin(SEES_SIGMA)
    tracking.log_metrics({f"{row.features}_{head}_test_r2_{label}_noise_{row.noise_level:g}{end}":
                          getattr(row, f"test_r2{end}") for row in table.itertuples() for end in ("", "_lo", "_hi")})
    top = max(levels)  # the core keys: the teacher at the training level against the highest level
    tracking.log_metrics(table_r2(table, "noise_level", "teacher", ctx.noise_level).keyed(f"reference_test_r2_{label}")
                         | table_r2(table, "noise_level", "teacher", top).keyed(f"ablated_test_r2_{label}")
                         | intervals.delta(y, preds["teacher", ctx.noise_level],
                                           preds["teacher", top]).keyed(f"delta_test_r2_{label}"))
    tracking.log_table(table, "tables/noise_sweep.json")
    shown = table.assign(features=[f"{n} (sees sigma)" if s else n for n, s in zip(table.features, table.sees_sigma)])
    tracking.log_figure(figures.curves(shown, "noise_level", f"{label}: {head} trained at noise {ctx.noise_level:g}",
                                       ceiling=upstream.ceilings(ctx.summary, label, levels)),
                        "figures/noise_sweep.png")
    code, text = ablations.robustness(table, ctx.noise_level)
    return (code, text), {"head": head, "compared": ", ".join(sets) + f" at noise {levels}", "table": table}


def run_sample_efficiency(ctx, label, head_list, head_params, opts) -> tuple:
    n_train, seed = len(ctx.y["train"]), opts["seed"]
    sizes = [v for v in opts["sizes"] if 0 < v < n_train] + [n_train]
    readers = {name: label_efficiency.head_reader(fs, label, seed=seed)
               for name, fs in (("teacher", ctx.latent), ("raw", ctx.raw))}
    readers["raw_lightgbm"] = label_efficiency.head_reader(ctx.raw, label, "lightgbm", head_params, seed)
    subject = "teacher"
    if ctx.label_free:
        subject = "label_free_student"
        readers = {subject: label_efficiency.head_reader(ctx.label_free_set, label, seed=seed)} | readers | {
            "supervised_network": ctx.supervised_reader(label, seed)}
    y_test = ctx.y["test"][label].to_numpy(float)
    preds = label_efficiency.predictions(readers, sizes)
    table = intervals.curve_table(preds, y_test, "n_train")
    gain = label_efficiency.gains(preds, y_test, subject)
    tracking.log_metrics({f"{row.features}_test_r2_{label}_n_{row.n_train}{end}": getattr(row, f"test_r2{end}")
                          for row in table.itertuples() for end in ("", "_lo", "_hi")}
                         | {k: v for n, (_, d) in gain.items()
                            for k, v in d.keyed(f"gain_test_r2_{label}_n_{n}").items()})
    k = min(gain)  # the core keys at the fewest labels: the subject against its best comparator
    best, d = gain[k]
    tracking.log_metrics(table_r2(table, "n_train", subject, k).keyed(f"ablated_test_r2_{label}")
                         | table_r2(table, "n_train", best, k).keyed(f"reference_test_r2_{label}")
                         | d.keyed(f"delta_test_r2_{label}"))
    tracking.log_table(table, "tables/sample_efficiency.json")
    ceiling = upstream.ceilings(ctx.summary, label, [ctx.noise_level])
    tracking.log_figure(figures.curves(table, "n_train", f"{label}: R^2 against labelled training spectra",
                                       log_x=True, ceiling=None if ceiling is None else ceiling.iloc[0]),
                        "figures/sample_efficiency.png")
    code, text = label_efficiency.verdict(gain, subject.replace("_", " "))
    if not ctx.label_free:
        text += " No label-free student was given (label_free_student=none): the teacher latent stands in."
    return (code, text), {"head": "ridge (alpha on validation)", "compared": ", ".join(readers) + f" at {sizes} labels",
                          "table": table, "value": d.value}


RUNNERS = {"no_error_teacher": run_no_error_teacher, "shuffle_error": run_shuffle_error,
           "shuffle_labels": run_shuffle_labels, "noise_sweep": run_noise_sweep,
           "sample_efficiency": run_sample_efficiency}


@click.command()
@opt.data
@click.option("--kind", default="all", show_default=True, help=f"all, or a comma list of {', '.join(KINDS)}")
@opt.features
@opt.teacher
@click.option("--student", default="none", show_default=True, help="distill_student run id, latest, or none")
@click.option("--label-free-student", default="none", show_default=True,
              help="sample_efficiency: a distill_student run with lambda_y=0 (run id, latest, or none)")
@click.option("--no-error-teacher", default="auto", show_default=True,
              help="auto (find or train), checkpoint path, or run id")
@click.option("--teacher-epochs", default=0, type=click.IntRange(0), show_default=True,
              help="epochs when auto trains one (0: the teacher's own)")
@opt.latent()
@click.option("--heads", "head_names", default="ridge", show_default=True,
              help="comma list; the sweep and curves use the first")
@opt.label
@click.option("--noise-level", default=1.0, type=click.FloatRange(0, opt.MAX_NOISE_LEVEL), show_default=True,
              help="the training noise level")
@click.option("--noise-levels", default=",".join(f"{v:g}" for v in ablations.NOISE_LEVELS), show_default=True)
@click.option("--sizes", default=",".join(map(str, ablations.TRAIN_SIZES)), show_default=True,
              help="0: the whole training set")
@click.option("--false-alarm", default=ablations.FALSE_ALARM, type=click.FloatRange(0, 1, min_open=True),
              show_default=True,
              help="shuffle_labels: the guard's false-alarm rate on an honest pipeline")
@click.option("--shuffles", default=ablations.SHUFFLES, type=click.IntRange(2), show_default=True,
              help="shuffle_labels: label permutations per feature set and head")
@opt.head_settings
@opt.seed
@one_line_errors
def main(data, kind, features, teacher, student, label_free_student, no_error_teacher, teacher_epochs, layer, pooling,
         direction, head_names,
         label, noise_level, noise_levels, sizes, false_alarm, shuffles, alpha, num_leaves, n_estimators, seed):
    kinds, head_list = list(KINDS) if kind == "all" else split_list(kind), split_list(head_names)
    check_choices("kind", kinds, KINDS)
    check_choices("head", head_list, SHARED_HEADS)
    check_choices("label", [label], LABELS)
    if pooling == "attention":
        raise DistillError("pooling=attention is learned with a head; ablations need a fixed pooling")
    opts = dict(noise_levels=opt.noise_level_list(noise_levels), sizes=number_list(sizes, "sizes", int),
                false_alarm=false_alarm, shuffles=shuffles, seed=seed, no_error_teacher=no_error_teacher,
                teacher_epochs=teacher_epochs)
    head_params = opt.head_params(alpha, num_leaves, n_estimators, seed)
    ds = open_dataset(data, labels=LABELS)
    with tracking.tracked_run("ablate", stage="4", mvp=",".join(MVP[k] for k in kinds), kind=kind):
        summary = ds.summary()
        tracking.log_dataset(summary, data)
        ctx = Inputs(ds, data, features, teacher, student, label_free_student, layer, pooling, direction, noise_level,
                     summary, pick_device(), opts)
        rows = []
        for k in kinds:
            with tracking.tracked_run("ablate", stage="4", mvp=MVP[k], nested=True, kind=k) as child:
                mlflow.set_tag("mlflow.runName", k)
                tracking.log_params({"kind": k, "label": label, "heads": ",".join(head_list), "layer": layer,
                                     "pooling": pooling, "direction": direction, "noise_level": noise_level})
                (code, text), info = RUNNERS[k](ctx, label, head_list, head_params, opts)
                mlflow.set_tags({"verdict": code, "verdict_text": text, "compared": info["compared"]})
                if k == "shuffle_labels" and code != "pass":
                    mlflow.set_tag("leakage_alarm", "true")
            click.echo(f"{k} ({MVP[k]}) {code}: {text}")
            rows.append({"kind": k, "mvp": MVP[k], "verdict": code, "value": info.get("value", np.nan),
                         "head": info["head"],
                         "compared": info["compared"], "text": text, "run_id": child.info.run_id})
            if k == "shuffle_labels" and code != "pass":
                mlflow.set_tag("leakage_alarm", "true")
        table = pd.DataFrame(rows)
        tracking.log_table(table, "tables/summary.json")
        mlflow.set_tags({f"verdict_{r['kind']}": r["verdict"] for r in rows})
        click.echo(table[["kind", "mvp", "verdict", "value"]].to_string(index=False))


if __name__ == "__main__":
    main()
