"""Optuna studies over the student (width, depth, dropout, lr, loss weights) or a probe head; each trial a
nested MLflow run under this one. The objective is validation R^2 of log g: the test split is never read
unless ``retrain_best=true``, which evaluates the best configuration once on test, in its own marked run.

    mlflow run . -e tune -P data=data/sim -P n_trials=20 --env-manager local
    mlflow run . -e tune -P study=head -P head=lightgbm -P input=noisy_flux --env-manager local
    mlflow run . -e tune -P second_objective=params --env-manager local        # Pareto front
    make dashboard                                                             # optuna-dashboard on the storage

Each worker samples with its own seed unless ``seed`` is given; the auto study name digests data, features and space
(``tuning.study_name``); trial runs are tagged ``optuna_study``/``optuna_trial``, trials hold ``mlflow_run_id``.

A storage URL with a password is refused (``mlflow run`` logs it as a parameter): give ``postgresql://user@host/db``
and the password in libpq's pgpass file (``PGPASSFILE``) or ``PGPASSWORD``.
"""
import contextlib

import click
import mlflow
import numpy as np
import optuna
from sklearn.metrics import r2_score

from distill import decompose, probe, tracking, tuning
from distill.data import LABELS, open_dataset
from distill.device import pick_device
from distill.errors import DistillError
from distill.heads import SHARED_HEADS
from distill.objectives import LABEL, TUNING, HeadObjective, StudentObjective
from distill.redact import redact
from distill.student.train import DistillSettings
from entrypoints import _options as opt
from entrypoints._cli import one_line_errors
from entrypoints._upstream import download_features, features_run, residual_target


def trial_runs(study_name: str, store=None):
    """Each trial a nested run under this one: its params, tags optuna_study/optuna_trial, its id on the trial."""
    def log(metrics=None, step=None, **tags):
        tracking.log_metrics(metrics or {}, step=step)
        mlflow.set_tags(tags)

    @contextlib.contextmanager
    def trial_run(number: int, params: dict):
        with tracking.tracked_run("tune", stage="tune", nested=True, study=study_name, trial=number,
                                  optuna_study=study_name, optuna_trial=number) as run:
            mlflow.set_tag("mlflow.runName", f"trial {number}")
            if store is not None:
                tuning.link_trial(store, study_name, number, run.info.run_id)
            tracking.log_params(params)
            yield log
    return trial_run


def log_study(study: optuna.Study, second: str):
    """Best value and parameters, the trials table and Optuna's figures on the parent run."""
    tracking.log_table(study.trials_dataframe(), "tables/trials.json")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise DistillError(f"study {study.study_name}: no trial completed")
    if second == "none":
        tracking.log_metrics({"best_val_r2_log_g": study.best_value, "n_trials_complete": len(complete)})
        tracking.log_params({f"best_{k}": v for k, v in study.best_params.items()})
    else:
        tracking.log_table(tuning.pareto_table(study), "tables/pareto_front.json")
        tracking.log_metrics({"best_val_r2_log_g": max(t.values[0] for t in complete),
                              "n_pareto": len(study.best_trials)})
    for name, fig in tuning.study_figures(study, second).items():
        tracking.log_figure(fig, f"figures/{name}.png")


@click.command()
@opt.data
@click.option("--study", "study_type", default="student", type=click.Choice(tuning.STUDIES), show_default=True)
@click.option("--study-name", default="auto", show_default=True,
              help="auto: distill-{study}-{digest of data, features, space}; the same name resumes / shares a study")
@click.option("--storage", default="auto", show_default=True,
              help="Optuna RDB URL without its password (PGPASSFILE); auto: SQLite optuna.db beside the MLflow store")
@click.option("--n-trials", default=20, type=click.IntRange(1), show_default=True)
@click.option("--timeout", default=0, type=click.IntRange(0), show_default=True, help="seconds (0: none)")
@click.option("--pruner", default="median", type=click.Choice(tuning.PRUNERS), show_default=True)
@click.option("--second-objective", default="none", type=click.Choice(tuning.SECOND_OBJECTIVES), show_default=True)
@click.option("--retrain-best", default=False, type=bool, show_default=True,
              help="refit the best and score it once on test")
@click.option("--seed", default=tuning.AUTO_SEED, show_default=True, help="sampler seed; auto: this worker's own")
@click.option("--features", default="latest", show_default=True, help="extract run id, latest, or none (lambda_z = 0)")
@opt.latent()
@opt.noise_level
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
@click.option("--head", default="ridge", type=click.Choice(SHARED_HEADS), show_default=True,
              help="head study: the head tuned")
@click.option("--input", "input_", default="latent", type=click.Choice(probe.INPUTS[:2] + ("noisy_flux+error",)),
              show_default=True, help="head study: the features")
@one_line_errors
def main(data, study_type, study_name, storage, n_trials, timeout, pruner, second_objective, retrain_best, seed,
         features, layer, pooling, direction, noise_level, epochs, batch_size, patience, students, layers, width,
         width_multiplier, dropout, lr, lambda_z, lambda_y, student_heads, targets, residual, head, input_):
    space = tuning.student_space(students, student_heads, targets, layers=layers, width=width,
                                 width_multiplier=width_multiplier, dropout=dropout, lr=lr, lambda_z=lambda_z,
                                 lambda_y=lambda_y)
    if study_type == "head" and second_objective != "none":
        raise DistillError("second_objective needs study=student (a head has no student to count or time)")
    seed, searched = tuning.sampler_seed(seed), tuning.study_space(study_type, space, head, second_objective)
    url = tuning.storage_url(storage, mlflow.get_tracking_uri())
    ds = open_dataset(data, labels=LABELS)
    store = tuning.storage(url)
    with tracking.tracked_run("tune", stage="tune", study_type=study_type) as tune_run:
        summary = ds.summary()
        tracking.log_dataset(summary, data)
        mlflow.set_tag("optuna_storage", redact(url))
        tracking.log_params({"sampler_seed": seed})
        y = {LABEL: {s: ds[s].params[LABEL].to_numpy(np.float64) for s in TUNING}}
        local = manifest = features_id = None
        r = (residual_target(residual, data, LABEL, {s: len(ds[s]) for s in ("train", "val", "test")})
             if study_type == "student" and "residual" in space.targets else None)  # decompose_error's, per split
        if features != "none" and (study_type == "student" or input_ == "latent"):
            run = features_run(features, data, noise_level, summary)
            mlflow.set_tag("features_run_id", features_id := run.info.run_id)
            local, manifest = download_features(run, sorted(set(layer.split("+"))))
        feats = tuning.features_key(features_id, study_type, input_, f"{layer}/{pooling}/{direction}", noise_level)
        name = tuning.study_name(study_type, searched, summary, feats) if study_name == "auto" else study_name
        mlflow.set_tag("study", name)
        study = tuning.open_study(name, store, searched, pruner, seed, tune_run.info.run_id, summary, feats)
        latent = None if manifest is None else probe.latent_features(local, manifest, layer, pooling, direction)
        if study_type == "student":
            z = None if latent is None else {s: latent.x[s] for s in TUNING}
            if r is not None:
                y["residual"] = {s: r[s] for s in TUNING}
            settings = DistillSettings(epochs=epochs, batch_size=batch_size, noise_level=noise_level,
                                       patience=patience, seed=seed)
            objective = StudentObjective({s: ds[s] for s in TUNING}, z, y, space, settings, pick_device(),
                                         second_objective, trial_runs(name, store))
        else:
            if input_ == "latent":
                if latent is None:
                    raise DistillError("input=latent needs an extract run; pass features=<run id|latest>")
                x = {s: latent.x[s] for s in TUNING}
            else:
                x = probe.baseline_features(ds, input_, noise_level, splits=TUNING).x
            objective = HeadObjective(x, y[LABEL], head, seed, trial_runs(name, store))
        mine = []  # this worker's trials (other workers may share the study)
        study.optimize(objective, n_trials=n_trials, timeout=timeout or None, show_progress_bar=True,
                       callbacks=[lambda _, trial: mine.append(trial.number)])
        tracking.log_metrics({"n_trials_total": len(study.trials), "n_trials_this_run": len(mine)})
        log_study(study, second_objective)
        if second_objective == "none":
            click.echo(f"study {name}: {len(study.trials)} trials; best val R^2 log g {study.best_value:.3f} with "
                       f"{study.best_params}")
            if retrain_best:
                test_y = {LABEL: ds["test"].params[LABEL].to_numpy(np.float64)} | ({} if r is None else
                                                                                   {"residual": r["test"]})
                if study_type == "student":
                    test_x = lambda: ds["test"]  # noqa: E731
                elif input_ == "latent":
                    test_x = lambda: latent.x["test"]  # noqa: E731
                else:
                    test_x = lambda: probe.baseline_features(ds, input_, noise_level,  # noqa: E731
                                                             splits=("test",)).x["test"]
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
        r2 = float(r2_score(test_y[target], y_hat))
        if target != LABEL:
            r2 = decompose.log_g_r2(r2, test_y[target], test_y[LABEL])
        tracking.log_metrics({"test_r2_log_g": r2})
        click.echo(f"best configuration on test (evaluated once): R^2 log g {r2:.3f}")


if __name__ == "__main__":
    main()
