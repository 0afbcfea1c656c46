"""The bad-input corpus: everything a user can get wrong, or plant, ends in one error line and a non-zero exit,
with no traceback, no FINISHED run and the input data unchanged; nothing a user supplies runs code."""
import hashlib
import os
import pickle
import shutil
from pathlib import Path

import h5py
import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from distill import tracking
from distill.data import PARAMS_KEY
from distill.teacher import PRESETS, BlindSpotUNet1D, save
from entrypoints import ablate, decompose_error, distill_student, extract, fisher, peer, probe, train_teacher, tune

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


def foreign(data: Path) -> Path:
    """The same files with the simulator's 'mag' column dropped: data the simulator did not make."""
    for split in ("train", "val", "test"):
        path = data / split / "dataset.h5"
        params = pd.read_hdf(path, PARAMS_KEY).drop(columns=["mag"])
        with h5py.File(path, "a") as f:
            del f[PARAMS_KEY]
        params.to_hdf(path, key=PARAMS_KEY, mode="a", format="table")
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
}


def refuse(command, args: list, data: Path, words: str):
    """Run in-process; assert the refusal is one error line, exit status non-zero, no FINISHED run, data intact."""
    before, runs = digest(data), finished_runs()
    result = CliRunner().invoke(command, ["--data", str(data), *args])
    assert isinstance(result.exception, SystemExit) and result.exit_code != 0, (result.exception, result.output)
    lines = [line for line in result.output.splitlines() if line.lower().startswith("error:")]
    assert len(lines) == 1 and words in lines[0], result.output[-2000:]
    assert "Traceback" not in result.output
    assert finished_runs() == runs, "a refused call left a FINISHED run"
    assert digest(data) == before, "the input data changed"


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
