"""The bad-input corpus: everything a user can get wrong, or plant, ends in one error line and a non-zero exit,
with no traceback, no FINISHED run and the input data unchanged; nothing a user supplies runs code."""
import hashlib
import os
import pickle
import shutil
from pathlib import Path

import click
import h5py
import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from distill import tracking
from distill.data import FLUX_KEY, PARAMS_KEY, write_split
from distill.errors import DistillError
from distill.teacher import PRESETS, BlindSpotUNet1D, save
from entrypoints import ablate, decompose_error, distill_student, extract, fisher, peer, probe, train_teacher, tune
from entrypoints import main as pipeline
from entrypoints import report as report_ep
from entrypoints._cli import one_line_errors
from tests.test_data import damage_chunk_index

MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / "distill-payload-ran"


class Payload:
    """Unpickling this runs a shell command that leaves MARKER behind."""

    def __reduce__(self):
        return os.system, (f"touch {MARKER}",)


def digest(root: Path) -> str:
    h = hashlib.blake2b()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def finished_runs() -> int:
    return len(mlflow.search_runs(search_all_experiments=True, output_format="list",
                                  filter_string="attributes.status = 'FINISHED'"))


def copy_of(tiny_data: Path, tmp_path: Path, name="copy") -> Path:
    out = tmp_path / name
    shutil.copytree(tiny_data, out)
    return out


def pickled_column(data: Path) -> Path:
    """The val split's params rewritten in pandas' fixed format with an object column holding a payload."""
    path = data / "val" / "dataset.h5"
    params = pd.read_hdf(path, PARAMS_KEY).assign(note=[Payload()] * 32)
    with h5py.File(path, "a") as f:
        del f[PARAMS_KEY]
    params.to_hdf(path, key=PARAMS_KEY, mode="a", format="fixed")
    return data


def pickled_attribute(data: Path) -> Path:
    """The val split's params in table format, with the column names of a block replaced by a payload pickle."""
    path = data / "val" / "dataset.h5"
    with h5py.File(path, "a") as f:
        f[f"{PARAMS_KEY}/table"].attrs["values_block_0_kind"] = np.bytes_(pickle.dumps(Payload(), protocol=0))
    return data


def pickled_axis_order(data: Path) -> Path:
    """The val split's params in table format, with the column order attribute replaced by a payload pickle."""
    with h5py.File(data / "val" / "dataset.h5", "a") as f:
        f[PARAMS_KEY].attrs["non_index_axes"] = np.bytes_(pickle.dumps(Payload(), protocol=0))
    return data


def empty_split(data: Path) -> Path:
    path = data / "test" / "dataset.h5"
    with h5py.File(path, "r") as f:
        wave = f["spectrumdataset/wave"][()]
    params = pd.read_hdf(path, PARAMS_KEY).iloc[:0]
    path.unlink()
    with h5py.File(path, "w") as f:
        f["spectrumdataset/wave"] = wave
        for key in ("flux", "error"):
            f.create_dataset(f"dataset/arrays/{key}/value", shape=(0, wave.size), dtype="f4")
    params.to_hdf(path, key=PARAMS_KEY, mode="a", format="fixed")  # pandas writes no empty table
    return data


def rewrite_params(path: Path, change, fmt="table"):
    """Replace a split's params table by ``change(params)``, written in pandas' ``fmt``."""
    params = change(pd.read_hdf(path, PARAMS_KEY))
    with h5py.File(path, "a") as f:
        del f[PARAMS_KEY]
    params.to_hdf(path, key=PARAMS_KEY, mode="a", format=fmt)


def foreign(data: Path) -> Path:
    """The same files with the simulator's 'mag' column dropped: data the simulator did not make."""
    for split in ("train", "val", "test"):
        rewrite_params(data / split / "dataset.h5", lambda p: p.drop(columns=["mag"]))
    return data


def nan_label(data: Path) -> Path:
    """A NaN log g in row 5 of the train split's params."""
    rewrite_params(data / "train" / "dataset.h5", lambda p: p.assign(log_g=p["log_g"].mask(p.index == 5)))
    return data


def params_without_rows(data: Path) -> Path:
    """The val split's params table emptied (pandas' fixed format keeps an empty frame); its 32 spectra stay."""
    rewrite_params(data / "val" / "dataset.h5", lambda p: p.iloc[:0], fmt="fixed")
    return data


def corrupt_chunk_index(data: Path) -> Path:
    """The train split's chunk index of its flux overwritten: the file opens, reading its spectra fails."""
    damage_chunk_index(data / "train" / "dataset.h5")
    return data


def one_row_training_split(data: Path) -> Path:
    """The train split cut to its first spectrum."""
    path = data / "train" / "dataset.h5"
    with h5py.File(path, "r") as f:
        wave, flux, error = (f[k][:1] if k != "spectrumdataset/wave" else f[k][()] for k in
                             ("spectrumdataset/wave", FLUX_KEY, "dataset/arrays/error/value"))
    params = pd.read_hdf(path, PARAMS_KEY).iloc[:1]
    path.unlink()
    write_split(path, wave, params, [(flux, error)], wave.size)
    return data


# (command, arguments after --data, how to spoil a copy of the data (None: use it as is), words the error says)
CASES = {
    "pickled object column": (probe.main, ["--input", "noisy_flux"], pickled_column, "stored as pickled objects"),
    "pickled metadata attribute": (probe.main, ["--input", "noisy_flux"], pickled_attribute, "cannot read the column"),
    "pickled column order": (probe.main, ["--input", "noisy_flux"], pickled_axis_order, "cannot read the column"),
    "split with no rows": (probe.main, ["--input", "noisy_flux"], empty_split, "holds no spectra"),
    "noise level overflowing float32": (probe.main, ["--input", "noisy_flux", "--noise-level", "1e39"], None,
                                        "not in the range"),
    "empty label list": (probe.main, ["--input", "noisy_flux", "--labels", ","], None, "no label given"),
    "unknown head": (probe.main, ["--input", "noisy_flux", "--head", "svm"], None, "unknown head 'svm'"),
    "ridge alpha neither number nor val": (probe.main, ["--input", "noisy_flux", "--alpha", "auto"], None,
                                           "neither a number >= 0 nor 'val'"),
    "pooling no layer can give": (probe.main, ["--pooling", "seg_mean_K12"], None, "power of two"),
    "segments not a power of two": (extract.main, ["--segments", "48"], None, "segments=48: a power of two"),
    "unknown input": (probe.main, ["--input", "spectrum"], None, "Invalid value for '--input'"),
    "training subset beyond the set": (probe.main, ["--input", "noisy_flux", "--n-train", "5000"], None,
                                       "larger than the training set"),
    "no extract run": (probe.main, [], None, "no FINISHED extract run"),
    "unknown ablation": (ablate.main, ["--kind", "dropout"], None, "unknown kind 'dropout'"),
    "bad noise levels": (ablate.main, ["--noise-levels", "0.1,inf"], None, "finite numbers"),
    "negative sizes": (ablate.main, ["--sizes", "-5"], None, "numbers >= 0"),
    "unknown target": (distill_student.main, ["--target", "mass"], None, "unknown target 'mass'"),
    "nothing to learn": (distill_student.main, ["--lambda-z", "0", "--lambda-y", "0"], None, "nothing to learn"),
    "offline student without features": (distill_student.main, ["--features", "none"], None, "teacher_mode=offline"),
    "unknown label for Stage A": (decompose_error.main, ["--label", "mass"], None, "unknown label 'mass'"),
    "tune bounds": (tune.main, ["--lr", "1e-3"], None, "give min,max"),
    "even kernel": (train_teacher.main, ["--kernel-size", "4"], None, "must be odd"),
    "no teacher": (extract.main, [], None, "no FINISHED train_teacher run"),
    "fisher on foreign data": (fisher.main, [], foreign, "not made by the built-in simulator"),
    "template fit on foreign data": (peer.main, ["--method", "cannon,template_fit"], foreign,
                                     "not made by the built-in simulator"),
    "unknown peer": (peer.main, ["--method", "cannon,svm"], None, "unknown method 'svm'"),
    "checkpoint a text file": (train_teacher.main, ["--checkpoint", "notes.txt"], None, "not a checkpoint"),
    "checkpoint an unknown run": (train_teacher.main, ["--checkpoint", "0" * 32], None, "no such run"),
    "checkpoint not a file": (train_teacher.main, ["--checkpoint", "nowhere.pt"], None, "neither a file nor"),
    "NaN label": (probe.main, ["--input", "noisy_flux"], nan_label, "column log_g has 1 NaN or infinite value"),
    "params table with no rows": (probe.main, ["--input", "noisy_flux"], params_without_rows,
                                  "has 0 rows but the flux has 32"),
    "corrupt chunk index (probe)": (probe.main, ["--input", "noisy_flux"], corrupt_chunk_index,
                                    "train/dataset.h5: cannot read 'dataset/arrays/"),
    "corrupt chunk index (train_teacher)": (train_teacher.main, ["--epochs", "1"], corrupt_chunk_index,
                                            "train/dataset.h5: cannot read 'dataset/arrays/"),
    "noise levels overflowing float32": (ablate.main, ["--noise-levels", "0,1e39"], None,
                                         "1e+39 is not in the range"),
    "more PCA components than spectra": (probe.main, ["--input", "noisy_flux", "--pca", "100000"], None,
                                         "pca=100000: more components"),
    "storage URL holding a password": (tune.main, ["--study", "head", "--input", "noisy_flux", "--storage",
                                                   "postgresql://postgres:planted-S3cret@127.0.0.1:1/optuna"], None,
                                       "holds a password"),
    "training subset of one (probe)": (probe.main, ["--input", "noisy_flux", "--n-train", "1"], None,
                                       "too small for a head"),
    "training subset of one (train_teacher)": (train_teacher.main, ["--train-subset", "1"], None,
                                               "too small for a head"),
    **{f"one-row training split ({command.callback.__module__.split('.')[-1]})": (command, args, one_row_training_split,
                                                                         "too small for a head")
       for command, args in ((probe.main, ["--input", "noisy_flux"]), (train_teacher.main, []), (extract.main, []),
                             (distill_student.main, []), (decompose_error.main, []), (ablate.main, []),
                             (tune.main, ["--study", "head", "--input", "noisy_flux"]), (peer.main, []),
                             (fisher.main, []))},
}


def refuse(command, args: list, data: Path | None, words: str):
    """Run in-process (with ``--data data`` unless None); assert the refusal is one error line, exit status non-zero,
    no FINISHED run, data intact."""
    before, runs = digest(data) if data else None, finished_runs()
    result = CliRunner().invoke(command, (["--data", str(data)] if data else []) + args)
    assert isinstance(result.exception, SystemExit) and result.exit_code != 0, (result.exception, result.output)
    lines = [line for line in result.output.splitlines() if line.lower().startswith("error:")]
    assert len(lines) == 1 and words in lines[0], result.output[-2000:]
    assert "Traceback" not in result.output
    assert finished_runs() == runs, "a refused call left a FINISHED run"
    assert data is None or digest(data) == before, "the input data changed"
    return result


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_in_one_line(case, mlflow_store, tiny_data, tmp_path):
    command, args, spoil, words = CASES[case]
    MARKER.unlink(missing_ok=True)
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    data = tiny_data if spoil is None else spoil(copy_of(tiny_data, tmp_path))
    refuse(command, args, data, words)
    assert not MARKER.exists(), "the planted payload ran"


def test_the_payload_is_real(tiny_data, tmp_path):
    """Control: pandas' own reader does run the planted payload, so the refusals above are what stops it."""
    MARKER.unlink(missing_ok=True)
    data = pickled_column(copy_of(tiny_data, tmp_path))
    pd.read_hdf(data / "val" / "dataset.h5", PARAMS_KEY)
    assert MARKER.exists()
    MARKER.unlink()


def plant_run(entry_point: str, status: str, data_dir: str, artifacts=()) -> str:
    with tracking.tracked_run(entry_point) as run:
        mlflow.set_tag("data_dir", data_dir)
        for path in artifacts:
            mlflow.log_artifact(str(path))
    if status != "FINISHED":
        mlflow.MlflowClient().set_terminated(run.info.run_id, status)
    return run.info.run_id


def test_resume_checks_what_it_resumes(mlflow_store, tiny_data, tmp_path):
    """A simulate run, a killed run without last.pt, and a checkpoint of another noise level, seed or dataset are
    each refused in one line naming what differs."""
    killed = plant_run("train_teacher", "KILLED", str(tiny_data))
    other = plant_run("simulate", "FINISHED", str(tiny_data))
    refuse(train_teacher.main, ["--checkpoint", killed], tiny_data, "saved no checkpoints/last.pt")
    refuse(train_teacher.main, ["--checkpoint", other], tiny_data, "a simulate run, not train_teacher")
    result = CliRunner().invoke(train_teacher.main, ["--data", str(tiny_data), "--epochs", "1", "--batch-size", "32"])
    assert result.exit_code == 0, result.output[-2000:]
    first = mlflow.last_active_run().info.run_id
    refuse(train_teacher.main, ["--checkpoint", first, "--noise-level", "0.5"], tiny_data, "its noise level 1.0")
    refuse(train_teacher.main, ["--checkpoint", first, "--seed", "7"], tiny_data, "its seed 42")
    refuse(train_teacher.main, ["--checkpoint", first, "--embed-dim", "8"], tiny_data, "its architecture")
    elsewhere = copy_of(tiny_data, tmp_path)
    with h5py.File(elsewhere / "train" / "dataset.h5", "a") as f:
        f["dataset/arrays/flux/value"][0, 0] += 1.0
    refuse(train_teacher.main, ["--checkpoint", first], elsewhere, "its digests")


def test_a_quoted_data_path_works(mlflow_store, tiny_data, tmp_path):
    """Upstream runs are found for a dataset whose path holds a quote (MLflow filters cannot escape it)."""
    data = copy_of(tiny_data, tmp_path, "it's data")
    torch.manual_seed(0)
    save(BlindSpotUNet1D(PRESETS["cpu"]), tmp_path / "teacher.pt")
    plant_run("train_teacher", "FINISHED", str(data.resolve()), [tmp_path / "teacher.pt"])
    result = CliRunner().invoke(extract.main, ["--data", str(data), "--layer", "enc_last"])
    assert result.exit_code == 0, result.output[-2000:]


def store_files_holding(root: Path, secret: str) -> list:
    """The files under ``root`` (the SQLite store, its artifacts) whose bytes hold ``secret``."""
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_a_storage_password_is_refused_before_it_is_logged(mlflow_store, tiny_data, tmp_path):
    """The password in a storage URL reaches no parameter, tag, artifact or output line: refused before any run."""
    secret = "planted-S3cret"
    url = f"postgresql://postgres:{secret}@127.0.0.1:1/optuna"
    result = refuse(tune.main, ["--study", "head", "--input", "noisy_flux", "--storage", url], tiny_data,
                    "PGPASSFILE")
    assert secret not in result.output and "postgres:***@127.0.0.1:1/optuna" in result.output
    assert not store_files_holding(tmp_path, secret)


def test_a_password_in_an_error_is_hidden(mlflow_store, tmp_path):
    """Whatever URL an error names (a tracking or storage URI with user:password), its line and the run's error tag
    show ``user:***@``."""
    @click.command()
    @one_line_errors
    def fails():
        with tracking.tracked_run("probe"):
            raise DistillError("run 0 not found in postgresql://alice:planted-S3cret@db.example:5432/mlflow")

    result = CliRunner().invoke(fails, [])
    assert result.exit_code == 2 and "postgresql://alice:***@db.example:5432/mlflow" in result.output
    assert "planted-S3cret" not in result.output
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert "alice:***@" in run.data.tags["error"] and not store_files_holding(tmp_path, "planted-S3cret")


@pytest.mark.slow
def test_a_wrong_database_password_is_one_line(postgres, mlflow_store, tiny_data, tmp_path, monkeypatch):
    wrong = tmp_path / "wrong.pgpass"
    wrong.write_text("127.0.0.1:*:*:postgres:not-the-password\n")
    wrong.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(wrong))
    refuse(tune.main, ["--study", "head", "--input", "noisy_flux", "--n-trials", "1", "--storage",
                       f"{postgres}/optuna"], tiny_data, "password authentication failed")


@pytest.fixture
def main_run(mlflow_store, tiny_data):
    """A FINISHED main run with no steps (its report says every stage was not run)."""
    return plant_run("main", "FINISHED", str(tiny_data))


def test_report_refuses_an_unknown_run_id(mlflow_store, tmp_path):
    refuse(report_ep.main, ["--run-id", "0" * 32, "--out", str(tmp_path / "rep")], None, "no such run")
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("status", ["FAILED", "KILLED", "RUNNING"])
def test_report_refuses_a_main_run_that_did_not_finish(mlflow_store, tiny_data, tmp_path, status):
    """No report for a main run that failed, was stopped or still runs elsewhere; out is left as it was."""
    run_id = plant_run("main", status, str(tiny_data))
    refuse(report_ep.main, ["--run-id", run_id, "--out", str(tmp_path / "rep")], None, "only a FINISHED main run")
    assert not (tmp_path / "rep").exists()


def test_out_refuses_a_directory_the_project_did_not_make(main_run, tmp_path):
    """A user's directory keeps every file: report and main refuse it before any work; a file is refused too."""
    home = tmp_path / "home" / "results"
    (home / "figures").mkdir(parents=True)
    (home / "notes.txt").write_text("a week of notes\n")
    (home / "figures" / "mine.png").write_bytes(b"\x89PNG mine")
    before = digest(home)
    refuse(report_ep.main, ["--run-id", main_run, "--out", str(home)], None, "not made by distill")
    assert digest(home) == before
    refuse(pipeline.main, ["--teacher", "nowhere.pt", "--out", str(home)], None, "not made by distill")
    assert digest(home) == before
    refuse(report_ep.main, ["--run-id", main_run, "--out", str(home / "notes.txt")], None, "not a directory")
    assert digest(home) == before


def test_report_writes_a_new_directory_and_only_replaces_its_own_files(main_run, tmp_path):
    out = tmp_path / "reports" / "latest"
    for _ in range(2):  # the second time into the directory it made, beside a file the user added
        result = CliRunner().invoke(report_ep.main, ["--run-id", main_run, "--out", str(out)])
        assert result.exit_code == 0, result.output[-2000:]
        assert {"report.md", "report.html", ".distill-report"} <= {p.name for p in out.iterdir()}
        (out / "notes.txt").write_text("mine\n")
    assert (out / "notes.txt").read_text() == "mine\n"
