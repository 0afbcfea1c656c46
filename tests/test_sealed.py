"""The confirm run's test split is sealed: no other tool opens its labels (a planted read trips the guard)."""
import shutil

import pytest
from click.testing import CliRunner

from distill import sealed
from distill.data import open_dataset
from distill.errors import DistillError


@pytest.fixture
def sealed_data(tiny_data, tmp_path):
    root = tmp_path / "confirm"
    shutil.copytree(tiny_data, root)
    sealed.seal(root, "abc123")
    return root


def test_only_the_confirm_run_opens_the_sealed_test_split(sealed_data, monkeypatch):
    monkeypatch.delenv(sealed.ENV, raising=False)
    with pytest.raises(DistillError, match="sealed for the pre-registered confirm run"):
        open_dataset(sealed_data)
    assert set(open_dataset(sealed_data, splits=("train", "val")).splits) == {"train", "val"}
    monkeypatch.setenv(sealed.ENV, "another digest")
    with pytest.raises(DistillError, match="sealed"):
        open_dataset(sealed_data)
    monkeypatch.setenv(sealed.ENV, "abc123")
    assert len(open_dataset(sealed_data)["test"]) == 32


def test_a_development_tool_that_reads_test_is_refused(sealed_data, mlflow_store, monkeypatch):
    from entrypoints import probe
    monkeypatch.delenv(sealed.ENV, raising=False)
    result = CliRunner().invoke(probe.main, ["--data", str(sealed_data), "--input", "noisy_flux"])
    assert result.exit_code != 0 and "sealed" in result.output + str(result.exception)
