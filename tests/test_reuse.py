"""Code identity of a reused step: a digest of the source, so any edit, committed or not, inside a git checkout or
not, is a miss; an unedited re-run is reused."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from distill import tracking
from tests.conftest import REPO

DRIVER = '''"""One step of a parent run, taken as main takes it; prints ran or reused."""
import sys

from distill import tracking
from entrypoints._steps import Steps

with tracking.tracked_run("main"):
    steps = Steps(False, {})
    steps("simulate", "simulate", out=sys.argv[1], n_train=2, n_val=2, n_test=2)
    print(steps.how["simulate"], steps.ids["simulate"])
'''


def project_copy(root: Path) -> Path:
    """The package's source and MLproject, outside any git checkout."""
    root.mkdir()
    for part in ("distill", "entrypoints"):
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "MLproject", root / "MLproject")
    return root


def edit_a_constant(root: Path):
    path = root / "distill" / "data.py"
    text, n = re.subn(r"^NOISE_SEED = (\d+)", lambda m: f"NOISE_SEED = {int(m[1]) + 1}", path.read_text(), flags=re.M)
    assert n == 1
    path.write_text(text)


def test_the_digest_covers_every_source_file_and_nothing_else(tmp_path):
    copy = project_copy(tmp_path / "project")
    assert tracking.digest_of(copy) == tracking.digest_of(REPO)
    (copy / "README.md").write_text("docs are not code\n")
    (copy / "distill" / "__pycache__").mkdir(exist_ok=True)
    (copy / "distill" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert tracking.digest_of(copy) == tracking.digest_of(REPO)
    for edit in (edit_a_constant, lambda r: (r / "MLproject").write_text((r / "MLproject").read_text() + "\n"),
                 lambda r: (r / "entrypoints" / "new.py").write_text("")):
        before = tracking.digest_of(copy)
        edit(copy)
        assert tracking.digest_of(copy) != before


@pytest.mark.slow
def test_an_edit_outside_git_reruns_the_step_and_no_edit_reuses_it(mlflow_store, tmp_path):
    copy = project_copy(tmp_path / "project")
    (copy / "step.py").write_text(DRIVER)

    def step() -> tuple:
        result = subprocess.run([sys.executable, "step.py", str(tmp_path / "sim")], cwd=copy, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        how, run_id = result.stdout.split()[-2:]
        return how, mlflow.get_run(run_id).data.tags["source_digest"]

    assert step() == ("ran", tracking.digest_of(copy))
    assert step() == ("reused", tracking.digest_of(copy))
    edit_a_constant(copy)
    assert step() == ("ran", tracking.digest_of(copy))
