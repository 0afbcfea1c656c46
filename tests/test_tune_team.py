"""`tune` as a team runs it: each worker samples with a seed of its own unless one is given, the automatic study name
digests the data, features and search space, a study that searched another space is not resumed, and each trial and
its MLflow run name each other."""
import json
import re
from dataclasses import replace

import mlflow
import optuna
import pytest
from click.testing import CliRunner

from distill import tuning
from distill.errors import DistillError
from entrypoints import tune

RIDGE = ["--study", "head", "--head", "ridge", "--input", "noisy_flux"]  # the cheapest study: no network to train


def invoke(tiny_data, storage, *args, ok=True):
    result = CliRunner().invoke(tune.main, ["--data", str(tiny_data), "--storage", storage, *RIDGE, *args])
    assert (result.exit_code == 0) == ok, result.output[-3000:]
    return result


@pytest.fixture
def storage(tmp_path):
    return f"sqlite:///{tmp_path}/optuna.db"


def worker_seeds(study: optuna.Study) -> dict:
    return {k.split()[1]: v for k, v in study.user_attrs.items() if k.startswith("sampler_seed ")}


def test_each_worker_samples_with_its_own_seed_unless_one_is_given(mlflow_store, tiny_data, storage):
    """Two workers joining one study in turn: with the same explicit seed the second repeats the first's first trial
    (a reproducible run); without one each draws its own seed, recorded on the study and its run, and they sample
    apart."""
    def two_workers(name, *seed):
        for _ in range(2):
            invoke(tiny_data, storage, "--study-name", name, "--n-trials", "1", *seed)
        study = optuna.load_study(study_name=name, storage=storage)
        return [t.params["alpha"] for t in study.trials], worker_seeds(study)

    alphas, seeds = two_workers("fixed", "--seed", "7")
    assert alphas[0] == alphas[1] and list(seeds.values()) == [7, 7]
    alphas, seeds = two_workers("own-seeds")
    assert alphas[0] != alphas[1] and len(set(seeds.values())) == 2
    for run_id, seed in seeds.items():  # the worker's tune run logs the seed it drew
        assert mlflow.get_run(run_id).data.params["sampler_seed"] == str(seed)
    assert invoke(tiny_data, storage, "--seed", "x", ok=False).output.startswith("error: seed='x': give an integer")


def test_the_automatic_name_digests_data_features_and_space():
    data = {"n_train": 96, "digest_train": "a1", "digest_val": "b2", "digest_test": "c3"}
    space = tuning.study_space("student", tuning.StudentSpace(), "ridge", "none")
    name = tuning.study_name("student", space, data, "none noise 1.0")
    assert re.fullmatch(r"distill-student-[0-9a-f]{12}", name)
    assert tuning.study_name("student", json.loads(tuning.canonical(space)), dict(data), "none noise 1.0") == name
    others = {
        "wider": tuning.study_name("student", tuning.study_space("student", replace(tuning.StudentSpace(),
                                                                                    width=(64, 4096)), "ridge",
                                                                  "none"), data, "none noise 1.0"),
        "pareto": tuning.study_name("student", tuning.study_space("student", tuning.StudentSpace(), "ridge", "params"),
                                    data, "none noise 1.0"),
        "new val split": tuning.study_name("student", space, {**data, "digest_val": "b3"}, "none noise 1.0"),
        "features": tuning.study_name("student", space, data, "run0 enc_pre_latent/seg_mean_K8/fwd noise 1.0"),
    }
    assert name not in others.values() and len(set(others.values())) == len(others), others
    residual = tuning.study_space("student", tuning.student_space("mlp", "linear", "residual"), "ridge", "none")
    assert re.fullmatch(r"distill-student-residual-[0-9a-f]{12}", tuning.study_name("student", residual, data, "x"))
    heads = {tuning.study_name("head", tuning.study_space("head", None, h, "none"), data, "noisy_flux noise 1.0")
             for h in ("ridge", "lightgbm")}
    assert len(heads) == 2 and all(re.fullmatch(r"distill-head-[0-9a-f]{12}", h) for h in heads)


def test_a_study_that_searched_another_space_is_not_resumed(mlflow_store, tiny_data, storage):
    invoke(tiny_data, storage, "--n-trials", "1")  # an automatic name
    (name,) = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=name, storage=storage)
    assert json.loads(study.user_attrs[tuning.SPACE_ATTR])["alpha"] == ["float", 1e-4, 1e3]
    assert set(study.user_attrs["data"]) == {"digest_train", "digest_val", "digest_test"}

    def refused(*args, words):
        result = invoke(tiny_data, storage, "--n-trials", "1", *args, ok=False)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith(f"error: study {name} searched "
                                                                                  "another space"), result.output
        assert words in lines[0], lines[0]

    refused("--study-name", name, "--head", "lightgbm", words='head "ridge" there, "lightgbm" here')
    stored = json.loads(study.user_attrs[tuning.SPACE_ATTR])
    study.set_user_attr(tuning.SPACE_ATTR, tuning.canonical({**stored, "alpha": ["float", 1e-4, 1e4]}))  # planted
    refused(words='alpha ["float",0.0001,10000.0] there, ["float",0.0001,1000.0] here')  # the same name, found
    refused("--study-name", name, words="alpha")
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == 1  # no trial was added
    with pytest.raises(DistillError, match=r"objectives \["):
        tuning.claim_space(study, {**stored, "objectives": ["val_r2_log_g", "params"]})


def test_a_trial_and_its_run_name_each_other(mlflow_store, tiny_data, storage):
    invoke(tiny_data, storage, "--n-trials", "2")
    (name,) = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=name, storage=storage)
    (worker,) = worker_seeds(study)
    for trial in study.trials:
        run = mlflow.get_run(trial.user_attrs[tuning.RUN_ATTR])
        tags = run.data.tags
        assert (tags["optuna_study"], tags["optuna_trial"]) == (name, str(trial.number))
        assert tags["mlflow.runName"] == f"trial {trial.number}" and tags["mlflow.parentRunId"] == worker
        assert run.data.metrics["objective_val_r2_log_g"] == trial.value
    back = mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string=f"tags.optuna_study = '{name}' and tags.optuna_trial = '1'")
    assert [r.info.run_id for r in back] == [study.trials[1].user_attrs[tuning.RUN_ATTR]]
    assert mlflow.get_run(worker).data.tags["study"] == name
