"""`tune`: trials are nested MLflow runs, pruning is recorded, a study resumes by name, and no objective reads test."""
import mlflow
import optuna
import pytest
from click.testing import CliRunner

from distill import tracking, tuning
from distill.data import SpectrumFile, open_dataset
from distill.device import pick_device
from distill.objectives import TUNING, StudentObjective
from distill.student.train import DistillSettings
from entrypoints import tune

TINY_SEARCH = ["--epochs", "2", "--batch-size", "32", "--students", "mlp", "--width", "16,64", "--layers", "1,2",
               "--features", "none"]


def invoke(tiny_data, tmp_path, *args):
    result = CliRunner().invoke(tune.main,
                                ["--data", str(tiny_data), "--storage", f"sqlite:///{tmp_path}/optuna.db", *args])
    assert result.exit_code == 0, result.output[-3000:]
    return result


def children(parent_id):
    return mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")


@pytest.fixture
def no_test_reads(monkeypatch):
    """Reading any spectrum of the test split fails the run."""
    for name in ("read", "batches"):
        original = getattr(SpectrumFile, name)

        def guarded(self, *args, _original=original, **kwargs):
            assert "test" not in self.path.parts, "an objective read the test split"
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(SpectrumFile, name, guarded)


@pytest.mark.slow
def test_study_trials_are_child_runs_and_the_study_resumes(mlflow_store, tiny_data, tmp_path, no_test_reads):
    invoke(tiny_data, tmp_path, "--n-trials", "3", "--study-name", "s1", *TINY_SEARCH)
    (parent,) = [r for r in mlflow.search_runs(search_all_experiments=True, output_format="list",
                                               filter_string="tags.`mlflow.project.entryPoint` = 'tune'")
                 if "mlflow.parentRunId" not in r.data.tags]
    trials = children(parent.info.run_id)
    assert len(trials) == 3
    for t in trials:
        assert {"student", "layers", "width", "lr", "lambda_y", "dropout"} <= set(t.data.params)
        assert "objective_val_r2_log_g" in t.data.metrics
    assert "best_val_r2_log_g" in parent.data.metrics and "best_lr" in parent.data.params
    figures = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "figures")}
    assert {"figures/optimization_history.png", "figures/param_importances.png"} <= figures

    invoke(tiny_data, tmp_path, "--n-trials", "2", "--study-name", "s1", *TINY_SEARCH)
    study = optuna.load_study(study_name="s1", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert len(study.trials) == 5


def test_head_study_never_reads_test(mlflow_store, tiny_data, tmp_path, no_test_reads):
    invoke(tiny_data, tmp_path, "--study", "head", "--head", "ridge", "--input", "noisy_flux", "--n-trials", "2")
    study = optuna.load_study(study_name="distill-head", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert len(study.trials) == 2 and "alpha" in study.best_params
    # the guard bites: retraining the best and scoring it on test is the one step that reads test
    result = CliRunner().invoke(tune.main,
                                ["--data", str(tiny_data), "--storage", f"sqlite:///{tmp_path}/optuna.db",
                                 "--study", "head",
                                            "--input", "noisy_flux", "--n-trials", "1", "--retrain-best", "true"])
    assert result.exit_code != 0 and "an objective read the test split" in str(result.exception)


def test_pruned_trial_is_marked(mlflow_store, tiny_data, tmp_path):
    """A pruner that prunes everything: the trial ends PRUNED in Optuna and is tagged so in MLflow."""
    study = optuna.create_study(storage=tuning.storage(f"sqlite:///{tmp_path}/p.db"), direction="maximize",
                                pruner=optuna.pruners.ThresholdPruner(lower=2.0))  # R^2 is never >= 2
    ds = open_dataset(tiny_data)
    y = {"log_g": {s: ds[s].params["log_g"].to_numpy() for s in TUNING}}
    space = tuning.StudentSpace(students=("mlp",), width=(16, 32), layers=(1, 1))
    objective = StudentObjective({s: ds[s] for s in TUNING}, None, y, space, DistillSettings(epochs=3, batch_size=32),
                                 pick_device("cpu"), "none", tune.trial_runs("p"))
    with tracking.tracked_run("tune"):
        parent = mlflow.active_run().info.run_id
        study.optimize(objective, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED
    (child,) = children(parent)
    assert child.data.tags["optuna_state"] == "PRUNED" and child.info.status == "FINISHED"
    assert child.data.metrics["epochs_run"] == 1


def test_bad_tune_options_fail_cleanly(mlflow_store, tiny_data):
    for params, message in ((("--lr", "1e-3"), "lr='1e-3': give min,max"),
                            (("--students", "rnn"), "unknown student(s) or head(s) ['rnn']"),
                            (("--targets", "mass"), "targets='mass'"),
                            (("--study", "head", "--second-objective", "params"),
                             "second_objective needs study=student")):
        result = CliRunner().invoke(tune.main, ["--data", str(tiny_data), *params])
        ok = result.exit_code == 2 and result.output.startswith("error: ") and message in result.output
        assert ok, result.output[-1500:]


@pytest.mark.slow
def test_pareto_mode_logs_the_front(mlflow_store, tiny_data, tmp_path):
    invoke(tiny_data, tmp_path, "--n-trials", "2", "--second-objective", "params", *TINY_SEARCH)
    (parent,) = [r for r in mlflow.search_runs(search_all_experiments=True, output_format="list")
                 if "mlflow.parentRunId" not in r.data.tags]
    artifacts = {a.path for d in ("tables",
                                  "figures") for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, d)}
    assert {"tables/pareto_front.json", "figures/pareto_front.png"} <= artifacts
    assert parent.data.metrics["n_pareto"] >= 1


def test_residual_trials_are_marked_as_seeing_sigma(mlflow_store, tiny_data, tmp_path):
    """A residual trial's log g adds the error-only prediction, made from the clean sigma: marked in Optuna and
    MLflow."""
    study = optuna.create_study(storage=tuning.storage(f"sqlite:///{tmp_path}/r.db"), direction="maximize")
    for target in ("log_g", "residual"):
        study.enqueue_trial({"target": target})
    ds = open_dataset(tiny_data)
    log_g = {s: ds[s].params["log_g"].to_numpy() for s in TUNING}
    y = {"log_g": log_g, "residual": {s: v - v.mean() for s, v in log_g.items()}}
    space = tuning.StudentSpace(students=("mlp",), width=(16, 16), layers=(1, 1), targets=("log_g", "residual"))
    objective = StudentObjective({s: ds[s] for s in TUNING}, None, y, space, DistillSettings(epochs=1, batch_size=32),
                                 pick_device("cpu"), "none", tune.trial_runs("r"))
    with tracking.tracked_run("tune"):
        parent = mlflow.active_run().info.run_id
        study.optimize(objective, n_trials=2)
    assert {t.params["target"]: t.user_attrs["sees_sigma"] for t in study.trials} == {"log_g": "false",
                                                                                       "residual": "true"}
    assert sorted(c.data.tags["sees_sigma"] for c in children(parent)) == ["false", "true"]
