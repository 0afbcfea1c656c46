"""A resume continues the training its checkpoint holds: a setting it cannot change is refused in one line naming it,
a stopping rule it can change is applied and tagged, and the logged parameters are the ones the training used."""
from dataclasses import asdict, replace

import mlflow
import pytest
from click.testing import CliRunner

from distill.errors import DistillError
from distill.student.train import DistillSettings
from entrypoints import _checkpoints as checkpoints
from entrypoints import train_teacher


def call(data, *args):
    result = CliRunner().invoke(train_teacher.main, ["--data", str(data), "--batch-size", "32", *args])
    return result, [line for line in result.output.splitlines() if line.startswith("error:")]


def test_a_teacher_resume_refuses_what_it_cannot_change(mlflow_store, tiny_data):
    result, _ = call(tiny_data, "--epochs", "1")
    assert result.exit_code == 0, result.output[-2000:]
    first = mlflow.last_active_run().info.run_id
    for args, named in ((["--lr", "0.5"], "its lr 0.001 differs from this run's 0.5"),
                        (["--batch-size", "16"], "its batch_size 32 differs from this run's 16"),
                        (["--loss", "supervised"], "loss self_supervised differs from this run's supervised"),
                        (["--train-subset", "50"], "train_subset 0 differs from this run's 50"),
                        (["--epochs", "2", "--snapshots", "0"], "the checkpoint resumes after epoch 1")):
        result, errors = call(tiny_data, "--checkpoint", first, *args)
        assert result.exit_code == 2 and len(errors) == 1 and named in errors[0], (args, result.output[-2000:])
    result, _ = call(tiny_data, "--checkpoint", first, "--epochs", "2", "--snapshots", "1,2")
    assert result.exit_code == 0, result.output[-2000:]
    resumed = mlflow.last_active_run()
    assert resumed.data.tags["resume_changed"] == "epochs 1 -> 2" and resumed.data.params["lr"] == "0.001"
    snapshots = {a.path for a in mlflow.MlflowClient().list_artifacts(resumed.info.run_id, "snapshots")}
    assert snapshots == {"snapshots/epoch_1.pt", "snapshots/epoch_2.pt"}  # epoch 1: the weights it resumed from


def student_checkpoint(**settings) -> dict:
    record = {"entry_point": "distill_student", "digests": {"digest_train": "d"}, "noise_level": 1.0, "seed": 42,
              "architecture": {"kind": "mlp"}, "sources": {"features_run_id": "f" * 32, "teacher_mode": "offline"}}
    return {"run": record, "settings": asdict(replace(DistillSettings(), **settings)), "state": {"epoch": 2}}


@pytest.mark.parametrize("change, named", [
    (dict(lambda_z=0.5), "its lambda_z 1.0 differs"), (dict(lambda_y=0.0), "its lambda_y 1.0 differs"),
    (dict(lr=1e-3), "its lr 0.0001 differs"), (dict(batch_size=64), "its batch_size 128 differs"),
    (dict(input="flux+error"), "its input flux differs"), (dict(epochs=1), "it has trained 2 epochs already")])
def test_a_student_resume_checks_every_training_setting(change, named):
    state = student_checkpoint()
    with pytest.raises(DistillError, match=named):
        checkpoints.check("ckpt", state, state["run"], replace(DistillSettings(), **change))


def test_a_student_resume_checks_where_its_targets_came_from(mlflow_store):
    state = student_checkpoint()
    other = state["run"] | {"sources": {"features_run_id": "e" * 32, "teacher_mode": "offline"}}
    with pytest.raises(DistillError, match=f"its sources features_run_id {'f' * 32} differs from this run's"):
        checkpoints.check("ckpt", state, other, DistillSettings())
    older = {"run": {k: v for k, v in state["run"].items() if k != "sources"}} | {"settings": state["settings"]}
    with pytest.raises(DistillError, match="does not record its sources features_run_id"):
        checkpoints.check("ckpt", older, state["run"], DistillSettings())
    with mlflow.start_run() as run:  # a stopping rule is the resumed run's own: applied, and said so
        checkpoints.check("ckpt", state, state["run"], replace(DistillSettings(), epochs=4, patience=9))
    assert mlflow.get_run(run.info.run_id).data.tags["resume_changed"] == "epochs 20 -> 4, patience 5 -> 9"
