"""Optuna objectives: a student or a probe head trained on train and scored on validation R^2 of log g.

The test split is never read here. Each trial is recorded through ``trial_run(number, params)``, a context
manager that yields ``log(metrics=None, step=None, **tags)``; the ``tune`` entry point makes it a nested MLflow run.
"""
import contextlib
from dataclasses import replace

import optuna
import torch
from sklearn.metrics import r2_score

from . import decompose, heads, tuning
from .student import compare
from .student.build import Architecture, student_trainer
from .student.train import DistillTrainer

TUNING = ("train", "val")  # the splits an objective may read
LABEL = "log_g"


@contextlib.contextmanager
def unrecorded(number: int, params: dict):
    """A trial_run that records nothing."""
    yield lambda metrics=None, step=None, **tags: None


class StudentObjective:
    """Train one suggested student on train, score log g R^2 on val each epoch (reported for pruning)."""

    def __init__(self, spectra, z, targets, space, settings, device, second="none", trial_run=unrecorded):
        self.spectra, self.z, self.targets = spectra, z, targets
        self.space, self.settings, self.device, self.second, self.trial_run = space, settings, device, second, trial_run

    def log_g_r2(self, target: str, target_r2: float) -> float:
        """Val R^2 of log g from the R^2 of the target (``decompose.log_g_r2``)."""
        if target == LABEL:
            return target_r2
        return decompose.log_g_r2(target_r2, self.targets[target]["val"], self.targets[LABEL]["val"])

    def build(self, cfg: dict, number: int) -> DistillTrainer:
        """The trainer of one configuration; initial weights seeded by (seed, trial number)."""
        torch.manual_seed(self.settings.seed * 100_003 + number)
        architecture = Architecture(cfg["student"], cfg["hidden"], cfg["dropout"], cfg["head"])
        settings = replace(self.settings, lr=cfg["lr"], lambda_z=cfg["lambda_z"], lambda_y=cfg["lambda_y"])
        return student_trainer(architecture, dict(self.spectra), self.z, self.targets[cfg["target"]], settings,
                               self.device)

    def __call__(self, trial: optuna.Trial):
        cfg = tuning.suggest_student(trial, self.space)
        # a residual trial's log g is the error-only prediction (from the clean sigma) + r_hat: it sees sigma
        sees_sigma = str(cfg["target"] == "residual").lower()
        trial.set_user_attr("sees_sigma", sees_sigma)
        pruned = False
        with self.trial_run(trial.number, {**trial.params, "hidden": ",".join(map(str, cfg["hidden"]))}) as log:
            trainer = self.build(cfg, trial.number)

            def on_epoch(m):
                value = self.log_g_r2(cfg["target"], m["epoch_val_head_r2"])
                log({"val_r2_log_g": value, "train_loss": m["train_loss"], "val_loss": m["val_loss"]},
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
            log({"objective_val_r2_log_g": value, "n_parameters": n_params, "epochs_run": trainer.epoch},
                optuna_state="PRUNED" if pruned else "COMPLETE", sees_sigma=sees_sigma)
        if pruned:
            raise optuna.TrialPruned()
        if self.second == "params":
            return value, n_params
        if self.second == "time":
            return value, 1000 / compare.student_speed(trainer, "val")  # never the test split
        return value


class HeadObjective:
    """Fit one suggested probe head on train, score log g R^2 on val."""

    def __init__(self, x, y, head, seed, trial_run=unrecorded):
        self.x, self.y, self.head, self.seed, self.trial_run = x, y, head, seed, trial_run

    def fit(self, params):
        return heads.fit(heads.make_pipeline(self.head, seed=self.seed, **params), self.x["train"], self.y["train"])

    def __call__(self, trial: optuna.Trial):
        params = tuning.suggest_head(trial, self.head)
        with self.trial_run(trial.number, params) as log:
            value = float(r2_score(self.y["val"], self.fit(params).predict(self.x["val"])))
            log({"objective_val_r2_log_g": value})
        return value
