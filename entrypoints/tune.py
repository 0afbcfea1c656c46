"""Optuna studies over the student (width, depth, dropout, lr, loss weights) or a probe head; each trial a
nested MLflow run under this one. The objective is validation R^2 of log g: the test split is never read
unless ``retrain_best=true``, which evaluates the best configuration once on test, in its own marked run.

    mlflow run . -e tune -P data=data/sim -P n_trials=20 --env-manager local
    mlflow run . -e tune -P study=head -P head=lightgbm -P input=noisy_flux --env-manager local
    mlflow run . -e tune -P second_objective=params --env-manager local        # Pareto front
    make dashboard                                                             # optuna-dashboard on the storage
"""
import os
import warnings
from dataclasses import replace

import click
import mlflow
import numpy as np
import optuna
import torch
from optuna.visualization import matplotlib as optuna_plots
from sklearn.metrics import r2_score

from distill import heads, probe, tracking, tuning
from distill.data import LABELS, open_dataset
from distill.device import pick_device
from distill.errors import DistillError
from distill.student import compare
from distill.student.model import Student
from distill.student.train import DistillSettings, DistillTrainer
from distill.teacher import DIRECTIONS
from entrypoints._cli import one_line_errors
from entrypoints._upstream import download_features, features_run
from entrypoints.distill_student import SHARED_HEADS, residual_target
from entrypoints.probe import split_list

TUNING = ("train", "val")  # what an objective may read
LABEL = "log_g"


def default_storage() -> str:
    """Beside the MLflow store: ``optuna.db`` next to a SQLite ``mlflow.db``, else in the working directory."""
    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///"):
        return f"sqlite:///{os.path.join(os.path.dirname(uri[len('sqlite:///'):]), 'optuna.db')}"
    return f"sqlite:///{os.path.abspath('optuna.db')}"


def pair(text: str, name: str, cast=float) -> tuple:
    try:
        lo, hi = (cast(v) for v in split_list(text))
    except ValueError:
        raise DistillError(f"{name}={text!r}: give min,max") from None
    return lo, hi


class StudentObjective:
    """Train one suggested student on train, score log g R^2 on val each epoch (reported for pruning)."""

    def __init__(self, spectra, z, targets, space, settings, device, second, study_name):
        self.spectra, self.z, self.targets = spectra, z, targets
        self.space, self.settings, self.device, self.second, self.study_name = space, settings, device, second, study_name

    def log_g_r2(self, target: str, target_r2: float) -> float:
        """Val R^2 of log g from the R^2 of the target: for the residual r = log g - error-only prediction,
        log g - (prediction + r_hat) = r - r_hat, so R^2(log g) = 1 - (1 - R^2(r)) Var(r) / Var(log g)."""
        if target == LABEL:
            return target_r2
        return 1 - (1 - target_r2) * np.var(self.targets[target]["val"]) / np.var(self.targets[LABEL]["val"])

    def build(self, cfg: dict, number: int) -> DistillTrainer:
        """The trainer of one configuration; initial weights seeded by (seed, trial number)."""
        torch.manual_seed(self.settings.seed * 100_003 + number)
        distil = self.z is not None and cfg["lambda_z"] > 0
        latent_dim = self.z["train"].shape[1] if self.z is not None else 128
        net = Student(cfg["student"], 1, self.spectra["train"].n_pixels, latent_dim, hidden=cfg["hidden"], dropout=cfg["dropout"],
                      head=cfg["head"])
        settings = replace(self.settings, lr=cfg["lr"], lambda_z=cfg["lambda_z"] if distil else 0.0, lambda_y=cfg["lambda_y"])
        return DistillTrainer(net, dict(self.spectra), self.z if distil else None, self.targets[cfg["target"]],
                              settings, self.device)

    def __call__(self, trial: optuna.Trial):
        cfg = tuning.suggest_student(trial, self.space)
        pruned = False
        with tracking.tracked_run("tune", stage="tune", nested=True, study=self.study_name, trial=trial.number):
            mlflow.set_tag("mlflow.runName", f"trial {trial.number}")
            tracking.log_params({**trial.params, "hidden": ",".join(map(str, cfg["hidden"]))})
            trainer = self.build(cfg, trial.number)

            def on_epoch(m):
                value = self.log_g_r2(cfg["target"], m["epoch_val_head_r2"])
                tracking.log_metrics({"val_r2_log_g": value, "train_loss": m["train_loss"], "val_loss": m["val_loss"]},
                                     step=trainer.epoch)
                if self.second == "none":
                    trial.report(value, trainer.epoch)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned after epoch {trainer.epoch}")

            try:
                trainer.fit(on_epoch=on_epoch)
            except optuna.TrialPruned:
                pruned = True
            value = self.log_g_r2(cfg["target"], trainer.evaluate("val")["val_head_r2"])
            n_params = sum(p.numel() for p in trainer.student.parameters())
            tracking.log_metrics({"objective_val_r2_log_g": value, "n_parameters": n_params, "epochs_run": trainer.epoch})
            mlflow.set_tag("optuna_state", "PRUNED" if pruned else "COMPLETE")
        if pruned:
            raise optuna.TrialPruned()
        if self.second == "params":
            return value, n_params
        if self.second == "time":
            return value, 1000 / compare.student_speed(trainer, "val")  # never the test split
        return value


class HeadObjective:
    """Fit one suggested probe head on train, score log g R^2 on val."""

    def __init__(self, x, y, head, seed, study_name):
        self.x, self.y, self.head, self.seed, self.study_name = x, y, head, seed, study_name

    def fit(self, params):
        return heads.fit(heads.make_pipeline(self.head, seed=self.seed, **params), self.x["train"], self.y["train"])

    def __call__(self, trial: optuna.Trial):
        params = tuning.suggest_head(trial, self.head)
        with tracking.tracked_run("tune", stage="tune", nested=True, study=self.study_name, trial=trial.number):
            mlflow.set_tag("mlflow.runName", f"trial {trial.number}")
            tracking.log_params(params)
            value = float(r2_score(self.y["val"], self.fit(params).predict(self.x["val"])))
            tracking.log_metrics({"objective_val_r2_log_g": value})
        return value


def log_study(study: optuna.Study, second: str):
    """Best value and parameters, the trials table and Optuna's figures on the parent run."""
    tracking.log_table(study.trials_dataframe(), "tables/trials.json")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise DistillError(f"study {study.study_name}: no trial completed")
    figures = {"optimization_history": optuna_plots.plot_optimization_history, "parallel_coordinate": optuna_plots.plot_parallel_coordinate}
    if second == "none":
        tracking.log_metrics({"best_val_r2_log_g": study.best_value, "n_trials_complete": len(complete)})
        tracking.log_params({f"best_{k}": v for k, v in study.best_params.items()})
        if len(complete) > 1:
            figures["param_importances"] = optuna_plots.plot_param_importances
    else:
        tracking.log_table(tuning.pareto_table(study), "tables/pareto_front.json")
        tracking.log_metrics({"best_val_r2_log_g": max(t.values[0] for t in complete), "n_pareto": len(study.best_trials)})
        figures = {"pareto_front": lambda s: optuna_plots.plot_pareto_front(s, target_names=["val R^2 log g", second])}
    for name, plot in figures.items():
        kwargs = {"target": lambda t: t.values[0], "target_name": "val R^2 log g"} if second != "none" and name != "pareto_front" else {}
        tracking.log_figure(plot(study, **kwargs).figure, f"figures/{name}.png")


@click.command()
@click.option("--data", default="data/sim", show_default=True)
@click.option("--study", "study_type", default="student", type=click.Choice(tuning.STUDIES), show_default=True)
@click.option("--study-name", default="auto", show_default=True, help="auto: distill-{study}; the same name resumes / shares a study")
@click.option("--storage", default="auto", show_default=True, help="Optuna RDB URL; auto: SQLite optuna.db beside the MLflow store")
@click.option("--n-trials", default=20, type=click.IntRange(1), show_default=True)
@click.option("--timeout", default=0, type=click.IntRange(0), show_default=True, help="seconds (0: none)")
@click.option("--pruner", default="median", type=click.Choice(tuning.PRUNERS), show_default=True)
@click.option("--second-objective", default="none", type=click.Choice(tuning.SECOND_OBJECTIVES), show_default=True)
@click.option("--retrain-best", default=False, type=bool, show_default=True, help="refit the best and score it once on test")
@click.option("--seed", default=42, type=int, show_default=True)
@click.option("--features", default="latest", show_default=True, help="extract run id, latest, or none (lambda_z = 0)")
@click.option("--layer", default="enc_pre_latent", show_default=True)
@click.option("--pooling", default="seg_mean_K8", show_default=True)
@click.option("--direction", default="fwd", type=click.Choice(DIRECTIONS), show_default=True)
@click.option("--noise-level", default=1.0, type=click.FloatRange(0), show_default=True)
@click.option("--epochs", default=10, type=click.IntRange(1), show_default=True)
@click.option("--batch-size", default=128, type=click.IntRange(2), show_default=True)
@click.option("--patience", default=3, type=click.IntRange(1), show_default=True)
@click.option("--students", default="mlp,cnn", show_default=True)
@click.option("--layers", default="1,4", show_default=True, help="min,max MLP hidden layers / CNN stages")
@click.option("--width", default="64,2048", show_default=True, help="min,max first MLP width")
@click.option("--width-multiplier", default="0.25,2", show_default=True, help="min,max CNN channel multiplier")
@click.option("--dropout", default="0,0.3", show_default=True)
@click.option("--lr", default="1e-5,1e-2", show_default=True)
@click.option("--lambda-z", default="0,2", show_default=True)
@click.option("--lambda-y", default="0.1,2", show_default=True)
@click.option("--student-heads", default="linear", show_default=True, help="linear, mlp")
@click.option("--targets", default="log_g", show_default=True, help="log_g, residual")
@click.option("--residual", default="latest", show_default=True, help="decompose_error run for target residual")
@click.option("--head", default="ridge", type=click.Choice(SHARED_HEADS), show_default=True, help="head study: the head tuned")
@click.option("--input", "input_", default="latent", type=click.Choice(probe.INPUTS[:2] + ("noisy_flux+error",)),
              show_default=True, help="head study: the features")
@one_line_errors
def main(data, study_type, study_name, storage, n_trials, timeout, pruner, second_objective, retrain_best, seed, features, layer,
         pooling, direction, noise_level, epochs, batch_size, patience, students, layers, width, width_multiplier, dropout, lr,
         lambda_z, lambda_y, student_heads, targets, residual, head, input_):
    space = tuning.StudentSpace(students=tuple(split_list(students)), layers=pair(layers, "layers", int), width=pair(width, "width", int),
                                width_multiplier=pair(width_multiplier, "width_multiplier"), dropout=pair(dropout, "dropout"),
                                lr=pair(lr, "lr"), lambda_z=pair(lambda_z, "lambda_z"), lambda_y=pair(lambda_y, "lambda_y"),
                                heads=tuple(split_list(student_heads)), targets=tuple(split_list(targets)))
    try:
        tuning.check_space(space)
    except ValueError as e:
        raise DistillError(str(e)) from None
    if set(space.targets) - {LABEL, "residual"}:
        raise DistillError(f"targets={targets!r}: choose from log_g, residual")
    if study_type == "head" and second_objective != "none":
        raise DistillError("second_objective needs study=student (a head has no student to count or time)")
    name = f"distill-{study_type}" if study_name == "auto" else study_name
    url = default_storage() if storage == "auto" else storage
    ds = open_dataset(data, labels=LABELS)
    with tracking.tracked_run("tune", stage="tune", study=name, study_type=study_type):
        summary = ds.summary()
        tracking.log_dataset(summary, data)
        mlflow.set_tag("optuna_storage", url)
        y = {LABEL: {s: ds[s].params[LABEL].to_numpy(np.float64) for s in TUNING}}
        local = manifest = None
        if features != "none" and (study_type == "student" or input_ == "latent"):
            run = features_run(features, data, noise_level, summary)
            mlflow.set_tag("features_run_id", run.info.run_id)
            local, manifest = download_features(run, sorted(set(layer.split("+"))))
        if study_type == "student":
            z = None
            if manifest is not None:
                latent = probe.latent_features(local, manifest, layer, pooling, direction)
                z = {s: latent.x[s] for s in TUNING}
            if "residual" in space.targets:
                r = residual_target(residual, data, LABEL, {s: len(ds[s]) for s in ("train", "val", "test")})
                y["residual"] = {s: r[s] for s in TUNING}
            settings = DistillSettings(epochs=epochs, batch_size=batch_size, noise_level=noise_level, patience=patience, seed=seed)
            objective = StudentObjective({s: ds[s] for s in TUNING}, z, y, space, settings, pick_device(), second_objective, name)
        else:
            if input_ == "latent":
                if manifest is None:
                    raise DistillError("input=latent needs an extract run; pass features=<run id|latest>")
                fs = probe.latent_features(local, manifest, layer, pooling, direction)
                x = {s: fs.x[s] for s in TUNING}
            else:
                x = probe.baseline_features(ds, input_, noise_level, splits=TUNING).x
            objective = HeadObjective(x, y[LABEL], head, seed, name)
        study = tuning.create_study(name, url, second_objective, pruner, seed)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        mine = []  # this worker's trials (other workers may share the study)
        study.optimize(objective, n_trials=n_trials, timeout=timeout or None, show_progress_bar=True,
                       callbacks=[lambda _, trial: mine.append(trial.number)])
        tracking.log_metrics({"n_trials_total": len(study.trials), "n_trials_this_run": len(mine)})
        log_study(study, second_objective)
        if second_objective == "none":
            click.echo(f"study {name}: {len(study.trials)} trials; best val R^2 log g {study.best_value:.3f} with {study.best_params}")
            if retrain_best:
                test_y = {LABEL: ds["test"].params[LABEL].to_numpy(np.float64)}
                if "residual" in space.targets and study_type == "student":
                    test_y["residual"] = residual_target(residual, data, LABEL, {s: len(ds[s]) for s in ("train", "val", "test")})["test"]
                if study_type == "student":
                    test_x = lambda: ds["test"]  # noqa: E731
                elif input_ == "latent":
                    test_x = lambda: probe.latent_features(local, manifest, layer, pooling, direction).x["test"]  # noqa: E731
                else:
                    test_x = lambda: probe.baseline_features(ds, input_, noise_level, splits=("test",)).x["test"]  # noqa: E731
                retrain(study, objective, test_x, test_y)
        else:
            click.echo(tuning.pareto_table(study).to_string(index=False))


def retrain(study: optuna.Study, objective, test_x, test_y: dict):
    """The best configuration refitted on train (val for early stopping) and scored once on test, in its own run.

    ``test_x()``: the head study's test features; ``test_y``: test log g (and residual) per target."""
    with tracking.tracked_run("tune", stage="tune", nested=True, test_evaluation="true", trial=study.best_trial.number):
        mlflow.set_tag("mlflow.runName", "best configuration, evaluated once on test")
        tracking.log_params(study.best_params)
        if isinstance(objective, HeadObjective):
            y_hat, target = objective.fit(study.best_params).predict(test_x()), LABEL
        else:
            cfg = tuning.suggest_student(optuna.trial.FixedTrial(study.best_params), objective.space)
            trainer = objective.build(cfg, study.best_trial.number)
            trainer.fit()
            trainer.spectra["test"] = test_x()
            y_hat, target = trainer.predict("test")[1], cfg["target"]
        # log g - (error-only prediction + r_hat) = r - r_hat: the residual's errors are log g's
        sse = float(((test_y[target] - y_hat) ** 2).sum())
        r2 = 1 - sse / float(((test_y[LABEL] - test_y[LABEL].mean()) ** 2).sum())
        tracking.log_metrics({"test_r2_log_g": r2})
        click.echo(f"best configuration on test (evaluated once): R^2 log g {r2:.3f}")


if __name__ == "__main__":
    main()
