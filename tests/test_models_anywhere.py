"""Logged models load and predict where this package cannot be imported; main registers the teacher and student;
``models:/name@alias`` and ``models:/name/version`` resolve, wherever a teacher or student is named, to the version's
run and its weights-only files."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow.exceptions import MlflowException

from distill import registry, tracking
from distill.errors import DistillError
from distill.student.model import STUDENTS, Student, StudentPredictor, save_predictor
from distill.teacher import BlindSpotUNet1D, TeacherConfig, save
from entrypoints import _upstream as upstream

REPO = Path(__file__).resolve().parents[1]
PIXELS = 64
OUTSIDE = textwrap.dedent("""
    import sys
    from pathlib import Path

    repo = Path(sys.argv[1])
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != repo]
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
    try:
        import distill
    except ModuleNotFoundError:
        pass
    else:
        sys.exit(f"distill is importable here: {distill.__file__}")
    import mlflow
    import numpy as np

    for uri, x, out in zip(*[iter(sys.argv[2:])] * 3):
        np.save(out, mlflow.pyfunc.load_model(uri).predict(np.load(x)))
    assert not [m for m in sys.modules if m.split(".")[0] in ("distill", "entrypoints")]
""")


def tiny_teacher(seed=0) -> BlindSpotUNet1D:
    """A 3-layer blind-spot U-Net whose batch norms hold random running statistics (train-mode and eval-mode
    outputs differ)."""
    torch.manual_seed(seed)
    model = BlindSpotUNet1D(TeacherConfig(num_layers=3, embed_dim=4, kernel_size=3))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def tiny_student(kind="mlp", channels=1, seed=0) -> StudentPredictor:
    torch.manual_seed(seed)
    hidden = {"mlp": (16,), "cnn": (4, 4), "starnet": (8, 8)}[kind]
    student = Student(kind, channels, PIXELS, 8, hidden=hidden)
    return StudentPredictor(student, torch.rand(PIXELS), torch.rand(PIXELS) + 0.5, torch.rand(PIXELS),
                            torch.rand(PIXELS) + 0.5, 4.2, 0.7).eval()


def finished_run(entry: str, tmp: Path, tags=None, params=None, files=None, model=None, example=None) -> str:
    """A FINISHED run of ``entry`` with these tags, params, artifact files {name: writer(path)} and logged model."""
    with mlflow.start_run() as run:
        mlflow.set_tags({tracking.ENTRY_POINT_TAG: entry, **(tags or {})})
        mlflow.log_params(params or {})
        work = tmp / run.info.run_id
        work.mkdir()
        for name, write in (files or {}).items():
            write(work / name)
            mlflow.log_artifact(str(work / name))
        if model is not None:
            registry.log_model(model, example)
    return run.info.run_id


def teacher_run(tmp: Path, seed=0) -> str:
    model = tiny_teacher(seed)
    return finished_run("train_teacher", tmp, {"data_dir": str(tmp)}, files={"teacher.pt": lambda p: save(model, p)},
                        model=model, example=np.random.default_rng(0).random((2, 2, PIXELS), np.float32))


def student_run(tmp: Path, seed=0) -> str:
    predictor = tiny_student(seed=seed)
    return finished_run("distill_student", tmp, {"data_dir": str(tmp)}, {"noise_level": 1.0},
                        files={"student_predictor.pt": lambda p: save_predictor(predictor, p)},
                        model=predictor, example=np.random.default_rng(0).random((2, 1, PIXELS), np.float32))


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_models_load_and_predict_where_distill_cannot_be_imported(mlflow_store, tmp_path):
    rng = np.random.default_rng(1)
    cases = []  # (model uri, input of another batch size than the example's, the eager network's output)
    for model, x in ((tiny_teacher(), rng.random((3, 2, PIXELS), np.float32)),
                     (tiny_student(), rng.random((3, 1, PIXELS), np.float32))):
        with mlflow.start_run() as run:
            registry.log_model(model, rng.random((2, *x.shape[1:]), np.float32))
        uri = f"runs:/{run.info.run_id}/model"
        if isinstance(model, StudentPredictor):  # the student by its registered name, as docs/operations.md shows
            registry.register(run.info.run_id, "distill-student")
            uri = "models:/distill-student@newest"
        with torch.no_grad():
            cases.append((uri, x, model(torch.as_tensor(x)).numpy()))
        local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / run.info.run_id)))
        assert (local / "data" / "model.pt2").is_file() and not (local / "data" / "model.pth").exists()
        assert not (local / "code").exists() and "distill" not in (local / "requirements.txt").read_text()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    args = []
    for i, (uri, x, _) in enumerate(cases):
        np.save(outside / f"x{i}.npy", x)
        args += [uri, str(outside / f"x{i}.npy"), str(outside / f"y{i}.npy")]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"MLFLOW_TRACKING_URI": mlflow_store, "MLFLOW_DEFAULT_PREDICTION_DEVICE": "cpu",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}  # MLflow checks the archive holds no pickled object
    result = subprocess.run([sys.executable, "-I", "-c", OUTSIDE, str(REPO), *args], cwd=outside, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for i, (_, _, expected) in enumerate(cases):
        np.testing.assert_allclose(np.load(outside / f"y{i}.npy"), expected, rtol=1e-5, atol=1e-6)


def test_every_student_kind_logs_as_a_program(mlflow_store):
    for kind, channels in [(k, 1) for k in STUDENTS] + [("cnn", 2)]:
        predictor, x = tiny_student(kind, channels), np.random.default_rng(2).random((3, channels, PIXELS), np.float32)
        with mlflow.start_run() as run:
            registry.log_model(predictor, x[:1])  # one row: repeated, so the batch size stays free
        loaded = mlflow.pytorch.load_model(f"runs:/{run.info.run_id}/model")
        with torch.no_grad():
            np.testing.assert_allclose(loaded(torch.as_tensor(x)).numpy(), predictor(torch.as_tensor(x)).numpy(),
                                       rtol=1e-5, atol=1e-6, err_msg=f"{kind}, {channels} channel(s)")


def test_the_entry_points_log_their_models_as_programs_and_main_registers_them():
    for name in ("train_teacher", "distill_student"):
        source = (REPO / "entrypoints" / f"{name}.py").read_text()
        assert "registry.log_model(" in source and "mlflow.pytorch.log_model" not in source
    main = (REPO / "entrypoints" / "main.py").read_text()
    call = main.find("registry.register_main(run.info.run_id)")
    assert 0 < call < main.rfind('steps("report"')


def test_registered_versions_resolve_to_their_runs(mlflow_store, tmp_path):
    teacher, first, second = teacher_run(tmp_path), student_run(tmp_path, 0), student_run(tmp_path, 1)
    main = finished_run("main", tmp_path, {"step_train_teacher": teacher, "step_student": first, "scale": "demo"})
    lines = registry.register_main(main)
    assert lines == [f"registered models:/distill-teacher/1 (@newest, @demo) from run {teacher}",
                     f"registered models:/distill-student/1 (@newest, @demo) from run {first}"]
    assert registry.register_main(main) == lines  # a run already registered keeps its version
    data = str(tmp_path)
    with mlflow.start_run():
        by_id, _ = upstream.student(first, data, 1.0, "cpu")
        for ref in ("models:/distill-student@newest", "models:/distill-student@demo", "models:/distill-student/1",
                    "models:/distill-student/latest"):
            predictor, run = upstream.student(ref, data, 1.0, "cpu")
            assert run.info.run_id == first and same_weights(predictor, by_id), ref
        model, ref = upstream.resolve_teacher("models:/distill-teacher@newest", data)
        assert ref == {"teacher_run_id": teacher} and same_weights(model, upstream.resolve_teacher(teacher, data)[0])

    later = finished_run("main", tmp_path, {"step_student": second, "scale": "study"})  # its teacher: a file
    assert registry.register_main(later) == [
        f"registered models:/distill-student/2 (@newest, @study) from run {second}"]
    resolved = {ref: registry.run_ref(f"models:/distill-{ref}", "student") for ref in
                ("student@newest", "student@study", "student@demo", "student/1", "student/latest", "teacher@newest")}
    assert resolved == {"student@newest": second, "student@study": second, "student@demo": first,
                        "student/1": first, "student/latest": second, "teacher@newest": teacher}
    assert registry.run_ref(first, "student") == first  # anything else passes through


def test_an_unknown_name_alias_or_version_is_one_line(mlflow_store, tmp_path):
    main = finished_run("main", tmp_path, {"step_student": student_run(tmp_path), "scale": "demo"})
    registry.register_main(main)
    for ref, message in (
            ("models:/distill-nothing@newest", "student=models:/distill-nothing@newest: no registered model "
                                               "'distill-nothing'"),
            ("models:/distill-student@nope", "'distill-student' has no alias 'nope' (aliases demo, newest)"),
            ("models:/distill-student/9", "'distill-student' has no version '9' (versions 1)"),
            ("models:/distill-student", "give models:/NAME@ALIAS")):
        with mlflow.start_run(), pytest.raises(DistillError) as e:
            upstream.student(ref, str(tmp_path), 1.0, "cpu")
        assert message in str(e.value) and "\n" not in str(e.value), ref


def test_a_registered_student_is_no_teacher(mlflow_store, tmp_path):
    registry.register(student_run(tmp_path), "distill-student")
    with pytest.raises(DistillError, match="is a distill_student run, not train_teacher"):
        upstream.resolve_teacher("models:/distill-student@newest", str(tmp_path))


def test_a_store_without_a_registry_skips_registration_in_one_line(mlflow_store, tmp_path, monkeypatch):
    main = finished_run("main", tmp_path, {"step_student": student_run(tmp_path), "scale": "demo"})

    def no_registry(*args, **kwargs):
        raise MlflowException("model registry functionality is unavailable")

    monkeypatch.setattr(mlflow.MlflowClient, "search_registered_models", no_registry)
    (line,) = registry.register_main(main)
    assert line.startswith("models not registered: no model registry at sqlite:") and "unavailable" in line
    monkeypatch.undo()
    assert mlflow.MlflowClient().search_registered_models() == []
