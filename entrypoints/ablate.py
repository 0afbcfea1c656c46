"""Stage 4 and robustness: each ablation a nested child run under one `ablate` parent with the summary table.

    mlflow run . -e ablate -P data=data/sim --env-manager local                       # all five
    mlflow run . -e ablate -P kind=shuffle_labels --env-manager local
    mlflow run . -e ablate -P kind=noise_sweep,sample_efficiency -P student=latest --env-manager local
"""
import functools
import os
import subprocess
import sys
from pathlib import Path

import click
import mlflow
import numpy as np
import pandas as pd
import torch

from distill import ablations, figures, fisher, probe, tracking
from distill.data import LABELS, SPLITS, ArraySpectra, add_noise, noise_draw, open_dataset
from distill.device import pick_device
from distill.errors import DistillError
from distill.student.targets import fixed_targets
from distill.teacher import DIRECTIONS, load
from entrypoints._cli import one_line_errors
from entrypoints._upstream import download_features, features_run, fisher_table
from entrypoints.distill_student import SHARED_HEADS, teacher_of
from entrypoints.probe import split_list

KINDS = ("no_error_teacher", "shuffle_error", "shuffle_labels", "noise_sweep", "sample_efficiency")
MVP = {"no_error_teacher": "4.1", "shuffle_error": "4.2", "shuffle_labels": "4.3", "noise_sweep": "1.2,3.2",
       "sample_efficiency": "3.3"}
REPO = Path(__file__).resolve().parents[1]


def parse_levels(text: str) -> list:
    try:
        levels = sorted({float(v) for v in split_list(text)})
    except ValueError:
        raise DistillError(f"noise_levels={text!r}: give a comma list of numbers") from None
    if not levels or levels[0] < 0:
        raise DistillError(f"noise_levels={text!r}: noise levels must be >= 0")
    return levels


def parse_sizes(text: str, n_train: int) -> list:
    """Training sizes (0: all) below the training set, then the whole set."""
    try:
        sizes = {int(v) for v in split_list(text)}
    except ValueError:
        raise DistillError(f"sizes={text!r}: give a comma list of integers (0: the whole training set)") from None
    if any(v < 0 for v in sizes):
        raise DistillError(f"sizes={text!r}: sizes must be >= 0")
    return sorted(v for v in sizes if 0 < v < n_train) + [n_train]


class Inputs:
    """What the ablations share, loaded once and only when a child needs it."""

    def __init__(self, ds, data, features, teacher, student, layer, pooling, direction, noise_level, summary, device):
        self.ds, self.data, self.layer, self.pooling, self.direction = ds, data, layer, pooling, direction
        self.noise_level, self.device, self.summary = noise_level, device, summary
        self.arrays = {s: ds[s].read() for s in SPLITS}
        self.y = {s: ds[s].params[list(LABELS)].reset_index(drop=True) for s in SPLITS}
        run = features_run(features, data, noise_level, summary)
        mlflow.set_tag("features_run_id", run.info.run_id)
        local, manifest = download_features(run, sorted(set(layer.split("+"))))
        self.extract = (run, manifest)
        self.latent = probe.latent_features(local, manifest, layer, pooling, direction)
        self.latent.name = "teacher"
        self.teacher_ref, self._teacher, self.student_ref, self._student = teacher, None, student, None

    def teacher(self):
        if self._teacher is None:
            model, ref = teacher_of(self.teacher_ref, self.extract, self.data)
            self._teacher = model.to(self.device).eval().requires_grad_(False)
            mlflow.set_tags(ref)
        return self._teacher

    def teacher_latent(self, model, split, noise_level=None, sigma_error=None) -> np.ndarray:
        nl = self.noise_level if noise_level is None else noise_level
        return fixed_targets(model, ArraySpectra(*self.arrays[split]), split, nl, self.layer, self.pooling, self.direction, self.device,
                             sigma_error=sigma_error)

    def noisy(self, split, noise_level) -> np.ndarray:
        flux, error = self.arrays[split]
        return add_noise(flux, error, noise_level, noise_draw(split, range(len(flux)), flux.shape[1]))

    def ceiling(self, label, levels) -> pd.Series | None:
        """The prior-aware information ceiling of ``label`` at each noise level (logged), or None without a fisher run."""
        found = fisher_table(self.summary)
        if found is None:
            return None
        ceiling = pd.Series({lv: fisher.ceiling_at(found[1], lv, label)["prior"] for lv in levels})
        mlflow.set_tag("fisher_run_id", found[0])
        tracking.log_metrics({f"ceiling_prior_r2_{label}_noise_{lv:g}": c for lv, c in ceiling.items()})
        return ceiling

    @functools.cached_property
    def raw(self) -> probe.FeatureSet:
        return probe.FeatureSet({s: self.noisy(s, self.noise_level) for s in SPLITS}, self.y, "raw")

    def student(self):
        """(predictor, input kind) of the distill_student run given, or None."""
        if self.student_ref == "none":
            return None
        if self._student is None:
            run = tracking.resolve_run(self.student_ref, "distill_student", {"data_dir": str(Path(self.data).resolve())})
            if run.data.tags.get("data_dir") != str(Path(self.data).resolve()):
                raise DistillError(f"student run {run.info.run_id} was trained on another dataset ({run.data.tags.get('data_dir')})")
            if float(run.data.params.get("noise_level", "nan")) != self.noise_level:
                raise DistillError(f"student run {run.info.run_id} has noise_level {run.data.params.get('noise_level')}, "
                                   f"not {self.noise_level}")
            mlflow.set_tag("student_run_id", run.info.run_id)
            self.student_lambda_y = float(run.data.params.get("lambda_y", "0"))
            predictor = mlflow.pytorch.load_model(f"runs:/{run.info.run_id}/model", map_location=self.device).eval()
            self._student = (predictor, run.data.tags.get("input", "flux"))
        return self._student

    def student_latent(self, split, noise_level=None) -> np.ndarray:
        predictor, kind = self.student()
        noisy = self.noisy(split, self.noise_level if noise_level is None else noise_level)
        error = self.arrays[split][1]
        out = []
        with torch.inference_mode():
            for i in range(0, len(noisy), 512):
                channels = [noisy[i:i + 512]] + ([error[i:i + 512]] if kind == "flux+error" else [])
                x = torch.as_tensor(np.stack(channels, axis=1), device=self.device)
                out.append(predictor(x)[:, 1:].float().cpu().numpy())
        return np.concatenate(out)

    @functools.cached_property
    def student_set(self) -> probe.FeatureSet:
        return probe.FeatureSet({s: self.student_latent(s) for s in SPLITS}, self.y, "student")


def heads_on(fs: probe.FeatureSet, label, head_list, head_params, prefix=None) -> dict:
    """{head: test R^2}; every score logged as ``{prefix}_{head}_{split}_{metric}_{label}``."""
    out = {}
    for head in head_list:
        result = probe.fit_label(fs, label, head, **head_params)
        tracking.log_metrics({f"{prefix or fs.name}_{head}_{k}": v for k, v in result.scores.items()})
        out[head] = result.scores
    return out


def best_head(scores: dict, label: str) -> str:
    return max(scores, key=lambda h: scores[h][f"val_r2_{label}"])


def no_error_teacher(ctx: Inputs, ref: str, teacher_epochs: int):
    """The teacher without the sigma input: a checkpoint path, a train_teacher run id, or auto (the newest
    matching run for this data and architecture; else trained here for ``teacher_epochs``, 0: as many
    epochs as the teacher's own run, so the two differ only in the sigma input)."""
    if Path(ref).is_file():
        model = load(ref)
    else:
        config = ctx.teacher().config.as_dict()
        same = lambda r: all(r.data.params.get(f"arch_{k}") == str(v) for k, v in config.items() if k != "input_sigma")  # noqa: E731
        tags = {"data_dir": str(Path(ctx.data).resolve()), "input_sigma": "false"}
        run = tracking.find_run("train_teacher", tags=tags, accept=same) if ref == "auto" else tracking.resolve_run(ref, "train_teacher")
        if run is None:
            teacher_epochs = teacher_epochs or own_epochs(ctx)
            click.echo(f"training a teacher without sigma ({teacher_epochs} epochs)", err=True)
            args = dict(data=ctx.data, num_layers=config["num_layers"], embed_dim=config["embed_dim"],
                        kernel_size=config["kernel_size"], use_bn=str(config["use_bn"]).lower(), input_sigma="false",
                        epochs=teacher_epochs, noise_level=ctx.noise_level)
            command = [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", "train_teacher", "--env-manager", "local"]
            env = {k: v for k, v in os.environ.items() if k != "MLFLOW_RUN_ID"}  # a run of its own, not this one
            done = subprocess.run(command + [a for k, v in args.items() for a in ("-P", f"{k}={v}")], env=env,
                                  capture_output=True, text=True)
            if done.returncode:
                raise DistillError(f"training the no-error teacher failed: {done.stderr.strip().splitlines()[-1]}")
            run = tracking.find_run("train_teacher", tags=tags, accept=same)
        mlflow.set_tag("no_error_teacher_run_id", run.info.run_id)
        model = load(tracking.download(run.info.run_id, "teacher.pt"))
    if model.config.input_sigma:
        raise DistillError(f"no_error_teacher={ref}: that teacher reads sigma; give one trained with input_sigma=false")
    return model.to(ctx.device).eval().requires_grad_(False)


def own_epochs(ctx: Inputs) -> int:
    """Epochs of the train_teacher run behind the extract run (8, train_teacher's default, when unknown)."""
    run_id = ctx.extract[1].get("teacher_run_id")
    return int(float(tracking.get_run(run_id).data.params.get("epochs", 8))) if run_id else 8


def run_no_error_teacher(ctx, label, head_list, head_params, opts) -> tuple:
    with_sigma = heads_on(ctx.latent, label, head_list, head_params)
    model = no_error_teacher(ctx, opts["no_error_teacher"], opts["teacher_epochs"])
    fs = probe.FeatureSet({s: ctx.teacher_latent(model, s) for s in SPLITS}, ctx.y, "no_error_teacher")
    without = heads_on(fs, label, head_list, head_params)
    head = best_head(with_sigma, label)
    r2, r2_0 = with_sigma[head][f"test_r2_{label}"], without[head][f"test_r2_{label}"]
    tracking.log_metrics({"delta_test_r2": r2 - r2_0})
    return ablations.error_dependence(r2, r2_0), {"head": head, "compared": "teacher vs no_error_teacher", "value": r2 - r2_0}


def run_shuffle_error(ctx, label, head_list, head_params, opts) -> tuple:
    true = heads_on(ctx.latent, label, head_list, head_params)
    model = ctx.teacher()
    latents = {}
    for i, s in enumerate(SPLITS):
        error = ctx.arrays[s][1]
        latents[s] = ctx.teacher_latent(model, s, sigma_error=ablations.permuted_sigma(error, opts["seed"] + i))
    shuffled = heads_on(probe.FeatureSet(latents, ctx.y, "shuffled_sigma"), label, head_list, head_params)
    head = best_head(true, label)
    r2, r2_sh = true[head][f"test_r2_{label}"], shuffled[head][f"test_r2_{label}"]
    tracking.log_metrics({"drop_test_r2": r2 - r2_sh})
    return ablations.sigma_use(r2, r2_sh), {"head": head, "compared": "teacher vs teacher with shuffled sigma", "value": r2 - r2_sh}


def run_shuffle_labels(ctx, label, head_list, head_params, opts) -> tuple:
    sets = [ctx.latent] + ([ctx.student_set] if ctx.student() else [])
    checks = {}
    for fs in sets:
        for head in head_list:
            checks[fs.name, head] = ablations.shuffle_check(fs, label, head, head_params, opts["shuffles"], opts["seed"],
                                                            opts["tolerance"])
            tracking.log_metrics({f"{fs.name}_{head}_{k}": v for k, v in checks[fs.name, head].items()})
    worst = max(checks.values(), key=lambda c: c["shuffled_mean"] - c["tolerance_used"])
    code, text = ablations.leakage(worst["shuffled_mean"], worst["tolerance_used"])
    if code != "pass":
        mlflow.set_tag("leakage_alarm", "true")
    compared = " and ".join(fs.name for fs in sets) + f", labels shuffled {opts['shuffles']} times"
    return (code, text), {"head": ",".join(head_list), "compared": compared, "value": worst["shuffled_mean"]}


def run_noise_sweep(ctx, label, head_list, head_params, opts) -> tuple:
    levels = sorted(set(opts["noise_levels"]) | {ctx.noise_level})
    sets, test_at = {"teacher": ctx.latent, "raw": ctx.raw}, {}
    model = ctx.teacher()
    test_at["teacher"] = lambda lv: ctx.teacher_latent(model, "test", lv)
    test_at["raw"] = lambda lv: ctx.noisy("test", lv)
    if ctx.student():
        sets["student"] = ctx.student_set
        test_at["student"] = lambda lv: ctx.student_latent("test", lv)
    curves = ablations.noise_curves(sets, test_at, levels, label, head_list[0], head_params)
    table = ablations.curve_table(curves, "noise_level")
    for row in table.itertuples():
        tracking.log_metrics({f"{row.features}_{head_list[0]}_test_r2_{label}_noise_{row.noise_level:g}": row.test_r2})
    tracking.log_table(table, "tables/noise_sweep.json")
    tracking.log_figure(figures.curves(table, "noise_level", f"{label}: {head_list[0]} trained at noise {ctx.noise_level:g}",
                                       ceiling=ctx.ceiling(label, levels)), "figures/noise_sweep.png")
    code, text = ablations.robustness(curves, ctx.noise_level)
    return (code, text), {"head": head_list[0], "compared": ", ".join(curves) + f" at noise {levels}", "table": table}


def run_sample_efficiency(ctx, label, head_list, head_params, opts) -> tuple:
    sizes = parse_sizes(opts["sizes"], len(ctx.y["train"]))
    sets = {"teacher": ctx.latent, "raw": ctx.raw}
    if ctx.student():
        sets["student"] = ctx.student_set
    curves = ablations.size_curves(sets, sizes, label, head_list[0], head_params, opts["seed"])
    table = ablations.curve_table(curves, "n_train")
    for row in table.itertuples():
        tracking.log_metrics({f"{row.features}_{head_list[0]}_test_r2_{label}_n_{row.n_train}": row.test_r2})
    tracking.log_table(table, "tables/sample_efficiency.json")
    ceiling = ctx.ceiling(label, [ctx.noise_level])
    tracking.log_figure(figures.curves(table, "n_train", f"{label}: learning curves ({head_list[0]})", log_x=True,
                                       ceiling=None if ceiling is None else ceiling.iloc[0]), "figures/sample_efficiency.png")
    code, text = ablations.sample_efficiency(curves, "student" if "student" in curves else "teacher")
    if "student" in curves and ctx.student_lambda_y > 0:
        text += (f" Caveat: the student saw all {len(ctx.y['train'])} training labels while distilling (lambda_y = "
                 f"{ctx.student_lambda_y:g}); a fair curve needs a student distilled with lambda_y = 0.")
    return (code, text), {"head": head_list[0], "compared": ", ".join(curves) + f" at n_train {sizes}", "table": table}


RUNNERS = {"no_error_teacher": run_no_error_teacher, "shuffle_error": run_shuffle_error,
           "shuffle_labels": run_shuffle_labels, "noise_sweep": run_noise_sweep, "sample_efficiency": run_sample_efficiency}


@click.command()
@click.option("--data", default="data/sim", show_default=True)
@click.option("--kind", default="all", show_default=True, help=f"all, or a comma list of {', '.join(KINDS)}")
@click.option("--features", default="latest", show_default=True, help="extract run id, or latest for this data and noise")
@click.option("--teacher", default="features", show_default=True, help="features (the extract run's), checkpoint path, run id, latest")
@click.option("--student", default="none", show_default=True, help="distill_student run id, latest, or none")
@click.option("--no-error-teacher", default="auto", show_default=True, help="auto (find or train), checkpoint path, or run id")
@click.option("--teacher-epochs", default=0, type=click.IntRange(0), show_default=True,
              help="epochs when auto trains one (0: the teacher's own)")
@click.option("--layer", default="enc_pre_latent", show_default=True)
@click.option("--pooling", default="seg_mean_K8", show_default=True)
@click.option("--direction", default="fwd", type=click.Choice(DIRECTIONS), show_default=True)
@click.option("--heads", "head_names", default="ridge", show_default=True, help="comma list; the sweep and the curves use the first")
@click.option("--label", default="log_g", show_default=True)
@click.option("--noise-level", default=1.0, type=click.FloatRange(0), show_default=True, help="the training noise level")
@click.option("--noise-levels", default=",".join(f"{v:g}" for v in ablations.NOISE_LEVELS), show_default=True)
@click.option("--sizes", default=",".join(map(str, ablations.TRAIN_SIZES)), show_default=True, help="0: the whole training set")
@click.option("--tolerance", default=ablations.SHUFFLE_TOLERANCE, type=click.FloatRange(0), show_default=True,
              help="shuffle_labels: floor of the leakage bar on the mean shuffled test R^2")
@click.option("--shuffles", default=ablations.SHUFFLES, type=click.IntRange(1), show_default=True,
              help="shuffle_labels: label permutations per feature set and head")
@click.option("--alpha", default=1e-3, type=click.FloatRange(0), show_default=True)
@click.option("--num-leaves", default=15, type=click.IntRange(2), show_default=True)
@click.option("--n-estimators", default=50, type=click.IntRange(1), show_default=True)
@click.option("--seed", default=42, type=int, show_default=True)
@one_line_errors
def main(data, kind, features, teacher, student, no_error_teacher, teacher_epochs, layer, pooling, direction, head_names,
         label, noise_level, noise_levels, sizes, tolerance, shuffles, alpha, num_leaves, n_estimators, seed):
    kinds = list(KINDS) if kind == "all" else split_list(kind)
    head_list = split_list(head_names)
    bad = [k for k in kinds if k not in KINDS] + [h for h in head_list if h not in SHARED_HEADS]
    if bad or not kinds or not head_list:
        raise DistillError(f"unknown kind(s) or head(s) {bad}; kinds: all, {', '.join(KINDS)}; heads: {', '.join(SHARED_HEADS)}")
    if label not in LABELS:
        raise DistillError(f"unknown label {label!r}; valid: {', '.join(LABELS)}")
    if pooling == "attention":
        raise DistillError("pooling=attention is learned with a head; ablations need a fixed pooling")
    opts = dict(noise_levels=parse_levels(noise_levels), sizes=sizes, tolerance=tolerance, shuffles=shuffles, seed=seed,
                no_error_teacher=no_error_teacher, teacher_epochs=teacher_epochs)
    parse_sizes(sizes, 0)  # fail on bad text before any work
    head_params = dict(alpha=alpha, num_leaves=num_leaves, n_estimators=n_estimators, seed=seed)
    ds = open_dataset(data, labels=LABELS)
    with tracking.tracked_run("ablate", stage="4", mvp=",".join(MVP[k] for k in kinds), kind=kind):
        summary = ds.summary()
        tracking.log_dataset(summary, data)
        ctx = Inputs(ds, data, features, teacher, student, layer, pooling, direction, noise_level, summary, pick_device())
        rows = []
        for k in kinds:
            with tracking.tracked_run("ablate", stage="4", mvp=MVP[k], nested=True, kind=k):
                mlflow.set_tag("mlflow.runName", k)
                tracking.log_params({"kind": k, "label": label, "heads": ",".join(head_list), "layer": layer, "pooling": pooling,
                                     "direction": direction, "noise_level": noise_level})
                (code, text), info = RUNNERS[k](ctx, label, head_list, head_params, opts)
                mlflow.set_tags({"verdict": code, "verdict_text": text, "compared": info["compared"]})
                child = mlflow.active_run().info.run_id
            click.echo(f"{k} ({MVP[k]}) {code}: {text}")
            rows.append({"kind": k, "mvp": MVP[k], "verdict": code, "value": info.get("value", np.nan), "head": info["head"],
                         "compared": info["compared"], "text": text, "run_id": child})
            if k == "shuffle_labels" and code != "pass":
                mlflow.set_tag("leakage_alarm", "true")
        table = pd.DataFrame(rows)
        tracking.log_table(table, "tables/summary.json")
        mlflow.set_tags({f"verdict_{r['kind']}": r["verdict"] for r in rows})
        click.echo(table[["kind", "mvp", "verdict", "value"]].to_string(index=False))


if __name__ == "__main__":
    main()
