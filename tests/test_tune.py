"""`tune`: trials are nested MLflow runs, pruning is recorded, a study resumes by name, no objective reads test, and no
storage password is written anywhere."""
from pathlib import Path

import mlflow
import optuna
import pytest
from click.testing import CliRunner

from distill import tracking, tuning
from distill.data import SpectrumFile, open_dataset
from distill.device import pick_device
from distill.errors import DistillError
from distill.objectives import TUNING, StudentObjective
from distill.redact import has_password, redact
from distill.student.train import DistillSettings
from entrypoints import tune
from tests.conftest import mlflow_run

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
    (name,) = optuna.get_all_study_names(f"sqlite:///{tmp_path}/optuna.db")
    assert name.startswith("distill-head-")  # the digest: tests/test_tune_team.py
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path}/optuna.db")
    assert len(study.trials) == 2 and "alpha" in study.best_params
    # the guard bites: retraining the best and scoring it on test is the one step that reads test
    result = CliRunner().invoke(tune.main,
                                ["--data", str(tiny_data), "--storage", f"sqlite:///{tmp_path}/optuna.db",
                                 "--study", "head",
                                            "--input", "noisy_flux", "--n-trials", "1", "--retrain-best", "true"])
    assert result.exit_code != 0 and "an objective read the test split" in str(result.exception)


def test_pruned_trial_is_marked(mlflow_store, tiny_data, tmp_path):
    """A pruner that prunes everything: the trial ends PRUNED in Optuna and is tagged so in MLflow."""
    store = tuning.storage(f"sqlite:///{tmp_path}/p.db")
    study = optuna.create_study(storage=store, direction="maximize",
                                pruner=optuna.pruners.ThresholdPruner(lower=2.0))  # R^2 is never >= 2
    ds = open_dataset(tiny_data)
    y = {"log_g": {s: ds[s].params["log_g"].to_numpy() for s in TUNING}}
    space = tuning.StudentSpace(students=("mlp",), width=(16, 32), layers=(1, 1))
    objective = StudentObjective({s: ds[s] for s in TUNING}, None, y, space, DistillSettings(epochs=3, batch_size=32),
                                 pick_device("cpu"), "none", tune.trial_runs(study.study_name, store))
    with tracking.tracked_run("tune"):
        parent = mlflow.active_run().info.run_id
        study.optimize(objective, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED
    (child,) = children(parent)
    assert study.trials[0].user_attrs["mlflow_run_id"] == child.info.run_id  # a pruned trial still names its run
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


@pytest.mark.parametrize("url, shown", [
    ("postgresql://alice:S3cret@db.example:5432/optuna", "postgresql://alice:***@db.example:5432/optuna"),
    ("postgresql+psycopg://alice:p@ss/w:rd@db/optuna", "postgresql+psycopg://alice:***@db/optuna"),
    ("postgresql://alice@db/optuna?sslmode=require&password=S3cret", "postgresql://alice@db/optuna?sslmode=require&"
                                                                     "password=***"),
    ("http://admin:S3cret@127.0.0.1:5000", "http://admin:***@127.0.0.1:5000"),
    ("postgresql://alice@db.example:5432/optuna", "postgresql://alice@db.example:5432/optuna"),
    ("sqlite:////tmp/x/optuna.db", "sqlite:////tmp/x/optuna.db"),
])
def test_a_url_password_is_hidden_wherever_it_is_written(url, shown):
    assert redact(url) == shown and has_password(url) == (url != shown)
    assert redact(f"run 0 not found in {url} (retry)") == f"run 0 not found in {shown} (retry)"


def test_a_storage_url_with_a_password_is_refused(monkeypatch):
    assert tuning.storage_url("auto", "sqlite:////x/mlflow.db") == "sqlite:////x/optuna.db"
    assert tuning.storage_url("postgresql://alice@db/optuna", "") == "postgresql://alice@db/optuna"
    monkeypatch.setenv("MLFLOW_RUN_ID", "abc")
    with pytest.raises(DistillError) as refused:
        tuning.storage_url("postgresql://alice:S3cret@db/optuna", "")
    text = str(refused.value)
    assert "S3cret" not in text and "alice:***@db" in text and "PGPASSFILE" in text and "run abc" in text


def test_a_storage_that_cannot_be_opened_is_one_line(tmp_path):
    for url, words in ((f"sqlite:///{tmp_path}/no/such/dir/optuna.db", "unable to open database file"),
                       ("nosuchdialect://x/y", "nosuchdialect")):
        with pytest.raises(DistillError, match=f"storage={url}: cannot open the Optuna storage .*{words}"):
            tuning.storage(url)


@pytest.mark.slow
def test_a_storage_password_never_reaches_the_store_or_the_logs(postgres_cluster, mlflow_store, tiny_data, tmp_path):
    """A URL without the password, the password in PGPASSFILE (as `make server` writes it): psycopg opens Optuna's
    RDB storage, and no byte of the store (SQLite file, artifacts) and no line of the output holds the password.
    A URL with the password is refused, naming the run whose parameter `mlflow run` wrote it to before the entry
    point started (MLflow logs every -P value first)."""
    url, pgdata, _ = postgres_cluster
    secret = Path(f"{pgdata}.pgpass").read_text().strip().split(":", 4)[4]
    storage = f"{url}/optuna"
    result = mlflow_run(f"data={tiny_data}", "study=head", "input=noisy_flux", "n_trials=2", "study_name=no-leak",
                        f"storage={storage}", entry="tune")
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = [r for r in mlflow.search_runs(search_all_experiments=True, output_format="list")
              if "mlflow.parentRunId" not in r.data.tags]
    assert run.data.params["storage"] == run.data.tags["optuna_storage"] == storage
    assert len(optuna.load_study(study_name="no-leak", storage=storage).trials) == 2
    assert secret not in result.stdout + result.stderr
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]

    leaked = storage.replace("postgres@", f"postgres:{secret}@")
    result = mlflow_run(f"data={tiny_data}", "study=head", "input=noisy_flux", f"storage={leaked}", entry="tune")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0 and len(errors) == 1 and secret not in errors[0], result.stderr[-3000:]
    (refused,) = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                    filter_string="attributes.status = 'FAILED'")
    assert f"run {refused.info.run_id}: delete that run, then `mlflow gc`" in errors[0]
    assert secret in refused.data.params["storage"] and "optuna_storage" not in refused.data.tags


def test_residual_trials_are_never_ranked_with_flux_only_ones():
    with pytest.raises(DistillError, match="ranked apart"):
        tuning.student_space("mlp", "linear", "log_g,residual")
    assert tuning.student_space("mlp", "linear", "residual").targets == ("residual",)
