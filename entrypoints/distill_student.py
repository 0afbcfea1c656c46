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

from distill import decompose, figures, probe, tracking
from distill.data import LABELS, SPLITS, open_dataset
from distill.device import pick_device
from distill.errors import DistillError
from distill.student import compare, verdicts
from distill.student import figures as student_figures
from distill.student.model import DEFAULT_HIDDEN, INPUTS, STUDENTS, Student, StudentPredictor
from distill.student.targets import fixed_targets, pooled_latent
from distill.student.train import DistillSettings, DistillTrainer, latent_scores
from distill.teacher import DIRECTIONS, load
from entrypoints._cli import one_line_errors, progress_bar
from entrypoints._upstream import download_features, features_run, log_ceiling, resolve_checkpoint
from entrypoints.extract import resolve_teacher
from entrypoints.probe import split_list

MODES = ("offline", "online")
SHARED_HEADS = ("ridge", "lightgbm")
NO_TEACHER_LATENT_DIM = 128  # z_s size when there is no teacher latent to match (lambda_z=0, features=none)


def teacher_of(teacher: str, features, data: str):
    """(model, reference) for teacher=features (the one that made the extract run), a path, run id or latest."""
    if teacher != "features":
        model, ref = resolve_teacher(teacher, data)
        if features is not None and model.config.as_dict() != features[1]["teacher_config"]:
            raise DistillError(f"teacher {teacher} is not the teacher of extract run {features[0].info.run_id} (other architecture)")
        return model, ref
    if features is None:
        raise DistillError("teacher=features needs an extract run; pass features=<run id> or teacher=<path|run id|latest>")
    run, manifest = features
    if manifest.get("teacher_run_id"):
        return load(tracking.download(manifest["teacher_run_id"], "teacher.pt")), {"teacher_run_id": manifest["teacher_run_id"]}
    if manifest.get("teacher_path") and Path(manifest["teacher_path"]).is_file():
        return load(manifest["teacher_path"]), {"teacher_path": manifest["teacher_path"]}
    raise DistillError(f"extract run {run.info.run_id} does not say where its teacher is; pass teacher=<path|run id>")


def residual_target(ref: str, data: str, label: str, n: dict) -> dict:
    """Stage B target: the error-only residual r per split from a decompose_error run."""
    run = tracking.resolve_run(ref, "decompose_error", {"data_dir": str(Path(data).resolve())},
                               accept=lambda r: r.data.params.get("label", "log_g") == label)
    try:
        table = pd.read_parquet(tracking.download(run.info.run_id, "residual.parquet"))
    except mlflow.exceptions.MlflowException:
        raise DistillError(f"decompose_error run {run.info.run_id} stored no residual.parquet; run decompose_error again") from None
    out = {s: table[table["split"] == s].sort_values("id")["residual"].to_numpy(np.float64) for s in SPLITS}
    if any(len(out[s]) != n[s] for s in SPLITS):
        raise DistillError(f"decompose_error run {run.info.run_id} has residuals for another dataset")
    mlflow.set_tag("residual_run_id", run.info.run_id)
    return out


@click.command()
@click.option("--data", default="data/sim", show_default=True)
@click.option("--features", default="latest", show_default=True, help="extract run id, latest, or none (no teacher latent)")
@click.option("--teacher", default="features", show_default=True, help="features (the extract run's), checkpoint path, run id, latest")
@click.option("--layer", default="enc_pre_latent", show_default=True, help="layer, or a+b to join layers")
@click.option("--pooling", default="seg_mean_K8", show_default=True, help="global_mean, mean_max, seg_mean_K{k}")
@click.option("--direction", default="fwd", type=click.Choice(DIRECTIONS), show_default=True)
@click.option("--student", default="mlp", type=click.Choice(STUDENTS), show_default=True)
@click.option("--hidden", default="default", show_default=True, help="mlp widths / cnn channels per stage, comma list")
@click.option("--input", "input_", default="flux", type=click.Choice(INPUTS), show_default=True)
@click.option("--target", default="log_g", show_default=True, help=f"a label ({', '.join(LABELS)}) or residual (Stage B)")
@click.option("--residual", default="latest", show_default=True, help="decompose_error run id or latest (target=residual)")
@click.option("--teacher-mode", default="offline", type=click.Choice(MODES), show_default=True)
@click.option("--lambda-z", default=1.0, type=click.FloatRange(0), show_default=True, help="latent loss weight; 0: supervised baseline")
@click.option("--lambda-y", default=1.0, type=click.FloatRange(0), show_default=True, help="target loss weight of the head on z_s")
@click.option("--epochs", default=20, type=click.IntRange(1), show_default=True)
@click.option("--batch-size", default=128, type=click.IntRange(2), show_default=True)
@click.option("--lr", default=1e-4, type=click.FloatRange(0, min_open=True), show_default=True)
@click.option("--patience", default=5, type=click.IntRange(1), show_default=True, help="epochs without val improvement")
@click.option("--noise-level", default=1.0, type=click.FloatRange(0), show_default=True)
@click.option("--heads", "head_names", default=",".join(SHARED_HEADS), show_default=True, help="heads fitted on z_s, z*, raw flux")
@click.option("--labels", default=",".join(LABELS), show_default=True, help="labels the heads read")
@click.option("--alpha", default=1e-3, type=click.FloatRange(0), show_default=True)
@click.option("--num-leaves", default=15, type=click.IntRange(2), show_default=True)
@click.option("--n-estimators", default=50, type=click.IntRange(1), show_default=True)
@click.option("--seed", default=42, type=int, show_default=True)
@click.option("--checkpoint", default="none", show_default=True, help="last.pt path or distill_student run id to resume")
@one_line_errors
def main(data, features, teacher, layer, pooling, direction, student, hidden, input_, target, residual, teacher_mode,
         lambda_z, lambda_y, epochs, batch_size, lr, patience, noise_level, head_names, labels, alpha, num_leaves,
         n_estimators, seed, checkpoint):
    head_list, label_list = split_list(head_names), split_list(labels)
    bad = [h for h in head_list if h not in SHARED_HEADS] + [lb for lb in label_list if lb not in LABELS]
    if bad or not head_list:
        raise DistillError(f"unknown head(s) or label(s) {bad}; heads: {', '.join(SHARED_HEADS)}; labels: {', '.join(LABELS)}")
    if target not in LABELS + ("residual",):
        raise DistillError(f"unknown target {target!r}; valid: {', '.join(LABELS)}, residual")
    if pooling == "attention":
        raise DistillError("pooling=attention is learned with a head; a student needs global_mean, mean_max or seg_mean_K{k}")
    if lambda_z == 0 and lambda_y == 0:
        raise DistillError("lambda_z and lambda_y are both 0: nothing to learn")
    try:
        widths = tuple(int(w) for w in split_list(hidden)) if hidden != "default" else None
    except ValueError:
        raise DistillError(f"hidden={hidden!r}: give a comma list of integers, or default") from None
    distilling = lambda_z > 0
    torch.manual_seed(seed)
    device = pick_device()
    ds = open_dataset(data, labels=LABELS)
    stage, mvp = ("B", "B") if target == "residual" else ("2", "2.3" if input_ == "flux+error" else "2.1-2.2,3.1")
    role = "student" if distilling else "supervised_baseline"
    with tracking.tracked_run("distill_student", stage=stage, mvp=mvp, input=input_, target=target, student=student,
                              teacher_mode=teacher_mode, role=role):
        summary = ds.summary()
        tracking.log_dataset(summary, data)
        y_frames = {s: ds[s].params[list(LABELS)].reset_index(drop=True) for s in SPLITS}
        n = {s: len(ds[s]) for s in SPLITS}
        if target == "residual":
            for s, r in residual_target(residual, data, "log_g", n).items():
                y_frames[s]["residual"] = r
        # where z* comes from: the extract run (offline), the frozen teacher (online), nowhere (lambda_z = 0)
        extract = local = None
        if features != "none":
            run = features_run(features, data, noise_level, summary)
            mlflow.set_tag("features_run_id", run.info.run_id)
            local, manifest = download_features(run, sorted(set(layer.split("+"))), denoised_if_stored=True)
            extract = (run, manifest)
        elif distilling and teacher_mode == "offline":
            raise DistillError("teacher_mode=offline reads z* from an extract run: pass features=<run id|latest>, "
                               "or teacher_mode=online, or lambda_z=0")
        model = None
        if distilling:
            model, ref = teacher_of(teacher, extract, data)
            model = model.to(device).eval().requires_grad_(False)
            mlflow.set_tags(ref)
        z = None
        if teacher_mode == "online" and distilling:
            z = {s: fixed_targets(model, ds[s], s, noise_level, layer, pooling, direction, device) for s in SPLITS}
        elif extract is not None:
            fs = probe.latent_features(local, extract[1], layer, pooling, direction)
            if any(len(fs.x[s]) != n[s] for s in SPLITS):
                raise DistillError(f"extract run {extract[0].info.run_id} holds other split sizes than {data}")
            z = fs.x
        online = None
        if teacher_mode == "online" and distilling:
            online = lambda noisy, sigma: pooled_latent(model, noisy, sigma, layer, pooling, direction)  # noqa: E731

        in_channels = 2 if input_ == "flux+error" else 1
        latent_dim = z["train"].shape[1] if z is not None else NO_TEACHER_LATENT_DIM
        try:
            net = Student(student, in_channels, ds["train"].n_pixels, latent_dim, hidden=widths)
        except ValueError as e:
            raise DistillError(f"hidden={hidden}: {e}") from None
        settings = DistillSettings(lambda_z=lambda_z, lambda_y=lambda_y, epochs=epochs, batch_size=batch_size, lr=lr,
                                   noise_level=noise_level, input=input_, patience=patience, seed=seed)
        y = {s: y_frames[s][target].to_numpy(np.float64) for s in SPLITS}
        trainer = DistillTrainer(net, ds.splits, z if distilling else None, y, settings, device, online)
        tracking.log_params({"latent_dim": latent_dim, "hidden_resolved": ",".join(map(str, widths or DEFAULT_HIDDEN[student]))})
        tracking.log_metrics({"n_parameters": sum(p.numel() for p in net.parameters())})
        if checkpoint != "none":
            try:
                trainer.restore(torch.load(resolve_checkpoint(checkpoint, "distill_student"), map_location=device, weights_only=True))
            except RuntimeError as e:
                raise DistillError(f"checkpoint {checkpoint} was made for another student: {str(e).splitlines()[0]}") from None
            click.echo(f"resuming after epoch {trainer.epoch}", err=True)
            for step, m in enumerate(trainer.history, 1):
                tracking.log_metrics(m, step=step)
        work = Path(tempfile.mkdtemp(prefix="student-"))
        train(trainer, student, work)

        # Stage 2.1: how well z_s imitates z* (best weights, each split's fixed noise)
        predicted = {s: trainer.predict(s) for s in SPLITS}
        if distilling:
            fit = {s: latent_scores(predicted[s][0], trainer.z[s]) for s in SPLITS}
            tracking.log_metrics({f"{s}_{k}": v for s in SPLITS for k, v in fit[s].items()})
            report(*verdicts.latent_fit(fit["train"], fit["val"]), "2_1")

        # Stage 2.2 / B: the same heads on z_s, z*, raw and denoised flux
        # built one at a time when their heads are fitted: at most one full-size matrix in memory
        sets = {"student": lambda: {s: predicted[s][0] for s in SPLITS}, "raw": lambda: compare.fixed_noisy_splits(trainer)}
        if z is not None:
            sets["teacher"] = lambda: z
        if extract is not None and extract[1].get("denoised"):
            sets["denoised"] = lambda: probe.baseline_features(ds, "denoised_flux", noise_level, local).x
        elif model is not None:
            sets["denoised"] = lambda: compare.denoise_splits(model, trainer, device)
        head_params = dict(alpha=alpha, num_leaves=num_leaves, n_estimators=n_estimators, seed=seed)
        read = list(dict.fromkeys(label_list + [target]))
        results, lines, best_heads = {}, {}, {}
        for name in list(sets):
            results[name] = compare.fit_heads(probe.FeatureSet(sets.pop(name)(), y_frames, name), read, head_list, head_params)
            for (label, head), r in results[name].items():
                tracking.log_metrics({f"{name}_{head}_{k}": v for k, v in r.scores.items()})
            if name == "student":
                results[name][target, "head"] = compare.trained_head({s: predicted[s][1] for s in SPLITS}, y, target)
                tracking.log_metrics({f"student_head_{k}": v for k, v in results[name][target, "head"].scores.items()})
            for label in read:
                best_heads[name, label], line = compare.headline(name, results[name], label)
                mlflow.set_tag(f"{name}_best_head_{label}", best_heads[name, label])
                tracking.log_metrics(line)
                lines |= line
        student_r2, raw_r2 = lines[f"student_test_r2_{target}"], lines[f"raw_test_r2_{target}"]
        report(*verdicts.student_vs_teacher(student_r2, lines.get(f"teacher_test_r2_{target}"), raw_r2), "2_2")
        if target == "residual":
            code, text = decompose.verdict(student_r2, raw_r2)
            report(code, text.replace("latent", "student"), "B")  # decompose's reading, student in the latent's place

        # Stage 3.1: the same head on the student and on raw / denoised flux, overall and per bin
        names = ["student"] + [b for b in ("raw", "denoised") if b in results]
        judged = max(head_list, key=lambda h: results["student"][target, h].scores[f"val_r2_{target}"])
        tables = []
        for head in head_list:
            bins = compare.bins_table(results, names, head, target, y["test"], y_frames["test"])
            tables.append(bins)
            tracking.log_figure(student_figures.per_bin_comparison(bins, target, head), f"figures/stage_3_1_per_bin_{head}.png")
            if head == judged:
                overall = {name: results[name][target, head].scores[f"test_r2_{target}"] for name in names}
                code, text = verdicts.end_to_end(overall, bins)
                report(code, f"{head} head: {text}", "3_1")
        tracking.log_table(pd.concat(tables, ignore_index=True), "tables/stage_3_1_per_bin.json")
        best = results["student"][target, judged]
        ceiling = log_ceiling(summary, noise_level, target) if target in LABELS else None
        tracking.log_figure(figures.predicted_vs_true(y["test"], best.predictions["test"], target,
                                                      f"student + {judged}: test R^2 {best.scores[f'test_r2_{target}']:.3f}",
                                                      ceiling if input_ == "flux" else None),  # sigma is not bounded by it
                            f"figures/{target}_pred_vs_true.png")

        # speed: student inference against the teacher's encoder, same machine, same spectra
        speed = {"student_spectra_per_second": compare.student_speed(trainer)}
        if model is not None:
            speed["teacher_encoder_spectra_per_second"] = compare.teacher_encoder_speed(model, trainer, layer, direction)
            speed["speedup_vs_teacher_encoder"] = speed["student_spectra_per_second"] / speed["teacher_encoder_spectra_per_second"]
            speed["teacher_n_parameters"] = sum(p.numel() for p in model.parameters())
        tracking.log_metrics(speed)
        log_student(trainer, work)
        shutil.rmtree(work, ignore_errors=True)
        table = pd.DataFrame([{"features": name, "head": best_heads[name, target],
                               "test_r2": lines[f"{name}_test_r2_{target}"], "test_mae": lines[f"{name}_test_mae_{target}"]}
                              for name in results])
        tracking.log_table(table, "tables/summary.json")
        click.echo(table.to_string(index=False))
        click.echo(", ".join(f"{k} {v:,.1f}" for k, v in speed.items()))


def train(trainer: DistillTrainer, name: str, work: Path):
    """Fit with a progress bar; log each epoch's metrics and checkpoint; then timings and the curves."""
    t0, start_epoch, n = time.time(), trainer.epoch, len(trainer.spectra["train"])

    def on_epoch(m):
        tracking.log_metrics(m, step=trainer.epoch)
        bar.set_postfix({"val_loss": f"{m['val_loss']:.4f}"} |
                        ({"cos": f"{m['epoch_val_latent_cosine']:.3f}"} if "epoch_val_latent_cosine" in m else {}))
        torch.save(trainer.checkpoint(), work / "last.pt")
        mlflow.log_artifact(str(work / "last.pt"), "checkpoints")

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
    """The student as an MLflow PyTorch model (raw noisy flux [and error] in; target and z_s out) and its weights."""
    predictor = StudentPredictor(trainer.student, trainer.x_mean, trainer.x_std, trainer.e_mean, trainer.e_std,
                                 trainer.y_mean, trainer.y_std).cpu().eval()
    noisy, error = trainer.fixed_batch("test", 0, 2)
    channels = [noisy] + ([error] if trainer.s.input == "flux+error" else [])
    mlflow.pytorch.log_model(predictor, name="model", input_example=np.stack(channels, axis=1).astype(np.float32),
                             serialization_format="pickle")
    torch.save(trainer.student.state_dict(), work / "student.pt")
    mlflow.log_artifact(str(work / "student.pt"))


if __name__ == "__main__":
    main()
