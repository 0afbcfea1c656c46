"""The ``starnet`` student: the CNN peer's layers (one builder) with a map to the teacher latent; it distils like the
mlp, its predictor file rebuilds it, and ``distill_student student=starnet`` distils, resumes and runs supervised."""
import mlflow
import numpy as np
import pytest
import torch

from distill.data import SPLITS, open_dataset
from distill.peers.cnn import StarNet
from distill.student.model import STUDENTS, Student, StudentPredictor, load_predictor, save_predictor
from distill.student.train import DistillSettings, DistillTrainer
from distill.teacher import PRESETS, BlindSpotUNet1D, save
from tests.conftest import mlflow_run
from tests.test_distill_student_entrypoint import runs
from tests.test_student import in_memory, teacher_latent

QUICK = ("student=starnet", "labels=log_g", "heads=ridge", "batch_size=32", "lr=0.001")


def n_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_peer_and_the_student_share_starnets_layers():
    assert "starnet" in STUDENTS
    assert (n_parameters(StarNet(256)), n_parameters(StarNet(4096))) == (279605, 4211765)  # as before the student
    peer, student = StarNet(4096), Student("starnet", 1, 4096, 128)
    same = [(type(a), getattr(a, "weight", torch.empty(0)).shape) for a in peer.encoder]
    assert same == [(type(b), getattr(b, "weight", torch.empty(0)).shape) for b in student.encoder.features]
    assert n_parameters(student.encoder) == n_parameters(peer.encoder) + 128 * 128 + 128  # the latent map
    z_s, y_hat = student(torch.zeros(3, 1, 4096))
    assert z_s.shape == (3, 128) and y_hat.shape == (3, 1)
    plus = Student("starnet", 2, 4096, 16, hidden=(64, 32))  # input=flux+error, narrower dense layers
    assert plus.encoder.features[0].weight.shape == (4, 2, 8) and plus.config["hidden"] == [64, 32]
    assert plus(torch.zeros(2, 2, 4096))[0].shape == (2, 16)
    with pytest.raises(ValueError, match="too few for StarNet"):
        Student("starnet", 1, 14, 8)


@pytest.fixture(scope="module")
def arrays(tiny_data):
    ds = open_dataset(tiny_data)
    flux, error, y = {}, {}, {}
    for s in SPLITS:
        flux[s], error[s] = ds[s].read()
        y[s] = ds[s].params["log_g"].to_numpy()
    return flux, error, y


def test_a_starnet_student_learns_the_teacher_latent(arrays):
    """The latent error falls with lambda_z > 0, and the trainer logs what it logs of an mlp student."""
    flux, error, y = arrays
    z = teacher_latent(flux, error)
    history = {}
    for kind, hidden, epochs in (("starnet", None, 8), ("mlp", (64,), 1)):
        torch.manual_seed(0)
        settings = DistillSettings(lambda_z=1.0, epochs=epochs, batch_size=16, lr=1e-3, patience=8, noise_level=0.1)
        trainer = DistillTrainer(Student(kind, 1, 4096, z["train"].shape[1], hidden=hidden), in_memory(flux, error),
                                 z, y, settings, torch.device("cpu"))
        before = trainer.evaluate("val") if kind == "starnet" else None
        history[kind] = trainer.fit()
        if kind == "starnet":
            after = trainer.evaluate("val")
            assert after["val_latent_mse"] < before["val_latent_mse"] - 0.3, (before, after)
            assert after["val_latent_cosine"] > before["val_latent_cosine"] + 0.3, (before, after)
    assert set(history["starnet"][0]) == set(history["mlp"][0])


def test_a_starnet_predictor_file_rebuilds_it(tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    student = Student("starnet", 2, 512, 16, hidden=(64, 32), dropout=0.2, head="mlp")
    stats = [rng.uniform(0.5, 1.5, 512).astype(np.float32) for _ in range(4)]
    predictor = StudentPredictor(student, *stats, 2.5, 0.7).eval()
    save_predictor(predictor, tmp_path / "p.pt")
    loaded = load_predictor(tmp_path / "p.pt")
    assert loaded.student.config == student.config and not loaded.training
    x = torch.rand(4, 2, 512)
    with torch.no_grad():
        assert torch.equal(loaded(x), predictor(x))


@pytest.mark.slow
def test_distill_student_starnet_distils_and_resumes(mlflow_store, tiny_data, tmp_path):
    torch.manual_seed(0)
    save(BlindSpotUNet1D(PRESETS["cpu"]), tmp_path / "t.pt")
    data = f"data={tiny_data}"
    result = mlflow_run(data, f"teacher={tmp_path / 't.pt'}", "layer=enc_pre_latent", entry="extract")
    assert result.returncode == 0, result.stderr[-3000:]

    result = mlflow_run(data, "epochs=1", *QUICK, entry="distill_student")
    assert result.returncode == 0, result.stderr[-3000:]
    (first,) = runs(**{"mlflow.project.entryPoint": "distill_student"})
    m, tags = first.data.metrics, first.data.tags
    assert tags["student"] == "starnet" and tags["role"] == "student"
    assert "student_test_r2_log_g" in m and "test_latent_cosine" in m
    assert m["n_parameters"] == n_parameters(Student("starnet", 1, 4096, 16 * 8))  # the 128-d teacher latent
    model = mlflow.pytorch.load_model(f"runs:/{first.info.run_id}/model")
    assert model(torch.rand(3, 1, 4096)).shape == (3, 1 + 16 * 8)

    resumed = mlflow_run(data, "epochs=2", *QUICK, f"checkpoint={first.info.run_id}", entry="distill_student")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after epoch 1" in resumed.stderr
    second = runs(**{"mlflow.project.entryPoint": "distill_student"})[0]
    history = mlflow.MlflowClient().get_metric_history(second.info.run_id, "train_loss")
    assert sorted(h.step for h in history) == [1, 2] and second.data.metrics["epochs_run"] == 1


@pytest.mark.slow
def test_distill_student_starnet_supervised(mlflow_store, tiny_data):
    result = mlflow_run(f"data={tiny_data}", "lambda_z=0", "features=none", "teacher=/nowhere.pt", "epochs=1", *QUICK,
                        entry="distill_student")
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = runs(role="supervised_baseline")
    assert run.data.tags["student"] == "starnet"
    assert "student_test_r2_log_g" in run.data.metrics and "test_latent_mse" not in run.data.metrics


def test_tune_searches_starnets_dense_widths():
    """A starnet trial scales StarNet's dense layers (256, 128), never a CNN's channel list."""
    import optuna

    from distill import tuning
    space = tuning.student_space("starnet", "linear", "log_g")
    trial = optuna.trial.FixedTrial({"student": "starnet", "layers": 2, "width_multiplier": 0.5, "dropout": 0.1,
                                     "lr": 1e-3, "lambda_z": 1.0, "lambda_y": 1.0, "head": "linear",
                                     "target": "log_g"})
    assert tuning.suggest_student(trial, space)["hidden"] == (128, 64)
