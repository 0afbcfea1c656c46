"""Stages 2, 3 and B: distil the teacher latent into a flux-only student and judge it against baselines.

    mlflow run . -e distill_student -P data=data/sim --env-manager local
    mlflow run . -e distill_student -P lambda_z=0 -P features=none       # supervised end-to-end baseline
    mlflow run . -e distill_student -P input=flux+error                  # Stage 2.3 student-plus
    mlflow run . -e distill_student -P target=residual                   # Stage B (needs decompose_error)
"""
import shutil
import tempfile
import time
from pathlib import Path

import click
import mlflow
import numpy as np
import pandas as pd
import torch

from distill import decompose, figures, intervals, probe, tracking
from distill.data import LABELS, NOISE_SEED, SPLITS, open_dataset
from distill.device import pick_device
from distill.errors import DistillError, check_choices
from distill.heads import SHARED_HEADS
from distill.student import compare, verdicts
from distill.student import figures as student_figures
from distill.student.model import INPUTS, STUDENTS, Student, StudentPredictor, save_predictor
from distill.student.targets import fixed_targets, pooled_latent
from distill.student.train import DistillSettings, DistillTrainer, latent_scores
from entrypoints import _checkpoints as checkpoints
from entrypoints import _options as opt
from entrypoints import _upstream as upstream
from entrypoints._cli import one_line_errors, progress_bar, split_list

MODES = ("offline", "online")
NO_TEACHER_LATENT_DIM = 128  # z_s size when there is no teacher latent to match (lambda_z=0, features=none)


@click.command()
@opt.data
@click.option("--features", default="latest", show_default=True,
              help="extract run id, latest, or none (no teacher latent)")
@opt.teacher
@opt.latent()
@click.option("--student", default="mlp", type=click.Choice(STUDENTS), show_default=True)
@click.option("--hidden", default="default", show_default=True, help="mlp widths / cnn channels per stage, comma list")
@click.option("--input", "input_", default="flux", type=click.Choice(INPUTS), show_default=True)
@click.option("--target", default="log_g", show_default=True,
              help=f"a label ({', '.join(LABELS)}) or residual (Stage B)")
@click.option("--residual", default="latest", show_default=True,
              help="decompose_error run id or latest (target=residual)")
@click.option("--teacher-mode", default="offline", type=click.Choice(MODES), show_default=True)
@click.option("--lambda-z", default=1.0, type=click.FloatRange(0), show_default=True,
              help="latent loss weight; 0: supervised")
@click.option("--lambda-y", default=1.0, type=click.FloatRange(0), show_default=True,
              help="target loss weight of the head")
@click.option("--epochs", default=20, type=click.IntRange(1), show_default=True)
@click.option("--batch-size", default=128, type=click.IntRange(2), show_default=True)
@click.option("--lr", default=1e-4, type=click.FloatRange(0, min_open=True), show_default=True)
@click.option("--patience", default=5, type=click.IntRange(1), show_default=True, help="epochs without val improvement")
@opt.noise_level
@click.option("--heads", "head_names", default=",".join(SHARED_HEADS), show_default=True,
              help="heads on z_s, z*, raw flux")
@opt.labels
@opt.head_settings
@opt.seed
@click.option("--checkpoint", default="none", show_default=True,
              help="last.pt path or distill_student run id to resume")
@one_line_errors
def main(data, features, teacher, layer, pooling, direction, student, hidden, input_, target, residual, teacher_mode,
         lambda_z, lambda_y, epochs, batch_size, lr, patience, noise_level, head_names, labels, alpha, num_leaves,
         n_estimators, seed, checkpoint):
    head_list, label_list = split_list(head_names), split_list(labels)
    check_choices("head", head_list, SHARED_HEADS)
    check_choices("label", label_list, LABELS)
    check_choices("target", [target], LABELS + ("residual",))
    if pooling == "attention":
        raise DistillError("pooling=attention is learned with a head; a student needs global_mean, mean_max or "
                           "seg_mean_K{k}")
    if lambda_z == 0 and lambda_y == 0:
        raise DistillError("lambda_z and lambda_y are both 0: nothing to learn")
    try:
        widths = tuple(int(w) for w in split_list(hidden)) if hidden != "default" else None
    except ValueError:
        raise DistillError(f"hidden={hidden!r}: give a comma list of integers, or default") from None
    distilling, online = lambda_z > 0, lambda_z > 0 and teacher_mode == "online"
    latent_spec = f"{layer}|{pooling}|{direction}" if features != "none" or online else "none"
    if features == "none" and distilling and not online:
        raise DistillError("teacher_mode=offline reads z* from an extract run: pass features=<run id|latest>, "
                           "or teacher_mode=online, or lambda_z=0")
    torch.manual_seed(seed)
    device = pick_device()
    ds = open_dataset(data, labels=LABELS)
    stage, mvp = ("B", "B") if target == "residual" else ("2", "2.3" if input_ == "flux+error" else "2.1-2.2,3.1")
    with tracking.tracked_run("distill_student", stage=stage, mvp=mvp, input=input_, target=target, student=student,
                              teacher_mode=teacher_mode, role="student" if distilling else "supervised_baseline"):
        summary = ds.summary()
        tracking.log_dataset(summary, data)
        y_frames = {s: ds[s].params[list(LABELS)].reset_index(drop=True) for s in SPLITS}
        n = {s: len(ds[s]) for s in SPLITS}
        if target == "residual":
            for s, r in upstream.residual_target(residual, data, "log_g", n).items():
                y_frames[s]["residual"] = r
        # where z* comes from: the extract run (offline), the frozen teacher (online), nowhere (lambda_z = 0)
        extract = local = model = z = None
        if features != "none":
            run = upstream.features_run(features, data, noise_level, summary)
            mlflow.set_tag("features_run_id", run.info.run_id)
            local, manifest = upstream.download_features(run, sorted(set(layer.split("+"))), denoised_if_stored=True)
            extract = (run, manifest)
        if distilling:
            model, ref = upstream.teacher_of(teacher, extract, data)
            model = model.to(device).eval().requires_grad_(False)
            mlflow.set_tags(ref)
        if online:
            z = {s: fixed_targets(model, ds[s], s, noise_level, layer, pooling, direction, device) for s in SPLITS}
        elif extract is not None:
            z = probe.latent_features(local, extract[1], layer, pooling, direction).x
            if any(len(z[s]) != n[s] for s in SPLITS):
                raise DistillError(f"extract run {extract[0].info.run_id} holds other split sizes than {data}")

        latent_dim = z["train"].shape[1] if z is not None else NO_TEACHER_LATENT_DIM
        try:
            net = Student(student, 2 if input_ == "flux+error" else 1, ds["train"].n_pixels, latent_dim, hidden=widths)
        except ValueError as e:
            raise DistillError(f"hidden={hidden}: {e}") from None
        settings = DistillSettings(lambda_z=lambda_z, lambda_y=lambda_y, epochs=epochs, batch_size=batch_size, lr=lr,
                                   noise_level=noise_level, input=input_, patience=patience, seed=seed)
        y = {s: y_frames[s][target].to_numpy(np.float64) for s in SPLITS}
        teach = (lambda noisy, sigma: pooled_latent(model, noisy, sigma, layer, pooling, direction)) if online else None
        label_free = lambda_y == 0  # the student never holds a label: heads read its latent afterwards (3.3)
        mlflow.set_tag("label_free", str(label_free).lower())
        trainer = DistillTrainer(net, ds.splits, z if distilling else None, None if label_free else y, settings,
                                 device, teach)
        tracking.log_params({"latent_dim": latent_dim, "hidden_resolved": ",".join(map(str, net.config["hidden"]))})
        tracking.log_metrics({"n_parameters": sum(p.numel() for p in net.parameters())})
        run_record = checkpoints.record("distill_student", summary, noise_level, seed,
                                        net.config | {"input": input_, "target": target, "latent": latent_spec})
        if checkpoint != "none":
            resume(trainer, checkpoints.load(checkpoint, run_record, device, trainer.s))
        work = Path(tempfile.mkdtemp(prefix="student-"))
        train(trainer, student, work, run_record)

        # Stage 2.1: how well z_s imitates z* (best weights, each split's fixed noise)
        predicted = {s: trainer.predict(s) for s in SPLITS}
        if distilling:
            fit = {s: latent_scores(predicted[s][0], trainer.z[s]) for s in SPLITS}
            tracking.log_metrics({f"{s}_{k}": v for s in SPLITS for k, v in fit[s].items()})
            redrawn = fixed_targets(model, ds["test"], "test", noise_level, layer, pooling, direction, device,
                                    noise_seed=NOISE_SEED + 1)  # the same test spectra under another noise draw
            two_draws = latent_scores(trainer.standardise_z(redrawn), trainer.z["test"])["latent_cosine"]
            # one draw agrees with the noise-free latent about as the square root of two draws' agreement
            reproducible = float(np.sqrt(max(two_draws, 0.0)))
            tracking.log_metrics({"test_latent_cosine_two_draws": two_draws,
                                  "test_latent_cosine_reproducible": reproducible})
            report(*verdicts.latent_fit(fit["train"], fit["test"], reproducible), "2_1")

        # Stage 2.2 / B: the same heads on z_s, z*, raw and denoised flux
        sets = {"student": lambda: {s: predicted[s][0] for s in SPLITS},
                "raw": lambda: compare.fixed_noisy_splits(trainer)}
        if z is not None:
            sets["teacher"] = lambda: z
        if extract is not None and extract[1].get("denoised"):
            sets["denoised"] = lambda: probe.baseline_features(ds, "denoised_flux", noise_level, local).x
        elif model is not None:
            sets["denoised"] = lambda: compare.denoise_splits(model, trainer, device)
        read = list(dict.fromkeys(label_list + [target]))
        head_params = opt.head_params(alpha, num_leaves, n_estimators, seed)
        results, lines, best_heads = {}, {}, {}
        for name, fitted in compare.heads_per_set(sets, y_frames, read, head_list, head_params):
            results[name] = fitted
            tracking.log_head_scores(name, fitted)
            if name == "student" and not label_free:
                results[name][target, "head"] = compare.trained_head({s: predicted[s][1] for s in SPLITS}, y, target)
                tracking.log_metrics({f"student_head_{k}": v for k, v in results[name][target, "head"].scores.items()})
            for label in read:
                best_heads[name, label], line = compare.headline(name, results[name], label)
                mlflow.set_tag(f"{name}_best_head_{label}", best_heads[name, label])
                tracking.log_metrics(line)
                lines |= line
        predictions, vs = compare.headlines(results, best_heads, target, y["test"])
        for name, d in vs.items():
            tracking.log_metrics(d.keyed(f"student_minus_{name}_test_r2_{target}"))
        tracking.log_parquet(predictions, "predictions/test.parquet")
        r2 = {name: intervals.Interval.read(lines, f"{name}_test_r2_{target}") for name in results}
        report(*verdicts.student_vs_teacher(r2["student"], r2["raw"], vs["raw"], r2.get("teacher"),
                                            vs.get("teacher_0.9")), "2_2")
        if target == "residual":
            code, text = decompose.verdict(r2["student"], r2["raw"], vs["raw"])
            report(code, text.replace("latent", "student"), "B")  # decompose's reading, student in the latent's place

        # Stage 3.1: the same head on the student and on raw / denoised flux, overall and per bin
        tables, judged, verdict = compare.stage_3_1(results, head_list, target, y["test"], y_frames["test"])
        for head, bins in tables.items():
            tracking.log_figure(student_figures.per_bin_comparison(bins, target, head),
                                f"figures/stage_3_1_per_bin_{head}.png")
        report(*verdict, "3_1")
        tracking.log_table(pd.concat(tables.values(), ignore_index=True), "tables/stage_3_1_per_bin.json")
        best = results["student"][target, judged]
        ceiling = upstream.log_ceiling(summary, noise_level, target) if target in LABELS else None
        tracking.log_figure(figures.predicted_vs_true(y["test"], best.predictions["test"], target,
                                                      f"student + {judged}: test R^2 "
                                                      f"{best.scores[f'test_r2_{target}']:.3f}",
                                                      ceiling if input_ == "flux" else None),  # sigma is unbounded
                            f"figures/{target}_pred_vs_true.png")

        headline = input_ == "flux" and target != "residual" and not label_free  # the one 3.x times against the
        speed = compare.speeds(trainer, model if headline else None, layer, direction)  # teacher: same spectra
        tracking.log_metrics(speed)
        log_student(trainer, work)
        shutil.rmtree(work, ignore_errors=True)
        table = pd.DataFrame([{"features": name, "head": best_heads[name, target],
                               "test_r2": lines[f"{name}_test_r2_{target}"],
                               "test_mae": lines[f"{name}_test_mae_{target}"]} for name in results])
        tracking.log_table(table, "tables/summary.json")
        click.echo(table.to_string(index=False))
        click.echo(", ".join(f"{k} {v:,.1f}" for k, v in speed.items()))


def resume(trainer: DistillTrainer, state: dict):
    """Restore a checked checkpoint's weights, optimiser and history, and log the history it carries."""
    trainer.restore(state)
    click.echo(f"resuming after epoch {trainer.epoch}", err=True)
    for step, m in enumerate(trainer.history, 1):
        tracking.log_metrics(m, step=step)


def train(trainer: DistillTrainer, name: str, work: Path, run_record: dict):
    """Fit with a progress bar; log each epoch's metrics and checkpoint; then timings and the curves."""
    t0, start_epoch, n = time.time(), trainer.epoch, len(trainer.spectra["train"])

    def on_epoch(m):
        tracking.log_metrics(m, step=trainer.epoch)
        bar.set_postfix({"val_loss": f"{m['val_loss']:.4f}"} |
                        ({"cos": f"{m['epoch_val_latent_cosine']:.3f}"} if "epoch_val_latent_cosine" in m else {}))
        checkpoints.log_last(trainer.checkpoint(), run_record, work)

    with progress_bar(max(0, trainer.s.epochs - trainer.epoch) * n, f"distil {name}") as bar:
        trainer.fit(bar.update, on_epoch)
    if trainer.epoch > start_epoch:
        seconds = time.time() - t0
        tracking.log_metrics({"train_seconds": seconds, "epochs_run": trainer.epoch - start_epoch,
                              "train_spectra_per_second": (trainer.epoch - start_epoch) * n / seconds,
                              "teacher_forward_seconds": trainer.teacher_seconds})
    tracking.log_figure(student_figures.training_curves(trainer.history), "figures/training_curves.png")


def report(code: str, text: str, stage: str):
    mlflow.set_tags({f"verdict_{stage}": code, f"verdict_{stage}_text": text})
    click.echo(f"{stage.replace('_', '.')} {code}: {text}")


def log_student(trainer: DistillTrainer, work: Path):
    """The student: the MLflow PyTorch model for serving (raw noisy flux [and error] in; target and z_s out), and
    the same predictor as plain tensors (``student_predictor.pt``, what the pipeline loads) and ``student.pt``."""
    predictor = StudentPredictor(trainer.student, trainer.x_mean, trainer.x_std, trainer.e_mean, trainer.e_std,
                                 trainer.y_mean, trainer.y_std).cpu().eval()
    noisy, error = trainer.fixed_batch("test", 0, 2)
    channels = [noisy] + ([error] if trainer.s.input == "flux+error" else [])
    mlflow.pytorch.log_model(predictor, name="model", input_example=np.stack(channels, axis=1).astype(np.float32),
                             serialization_format="pickle",
                             pip_requirements=tracking.model_requirements(*tracking.TORCH_MODEL))
    save_predictor(predictor, work / "student_predictor.pt")
    torch.save(trainer.student.state_dict(), work / "student.pt")
    for name in ("student_predictor.pt", "student.pt"):
        mlflow.log_artifact(str(work / name))


if __name__ == "__main__":
    main()
