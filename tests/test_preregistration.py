"""The confirm run's pre-registration: the committed file loads, a changed or uncommitted one is refused, a margin the
code does not use is refused, and main refuses overrides and spectra sealed for another pre-registration."""
import subprocess

import pytest
from click.testing import CliRunner

from distill import preregistration, sealed
from distill.errors import DistillError
from entrypoints import _confirm
from entrypoints import main as main_module


def committed_copy(tmp_path, text=None):
    """The repository's pre-registration (or ``text``) committed in a fresh git repository."""
    repo = tmp_path / "repo"
    repo.mkdir()
    path = repo / "confirm.yaml"
    path.write_text(text if text is not None else preregistration.PATH.read_text())
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "confirm.yaml"], check=True)
    subprocess.run(git + ["commit", "-qm", "pre-registration"], check=True)
    return path


def test_the_repository_pre_registration_is_complete():
    plan = preregistration.load()
    assert set(plan.arms) == set(preregistration.ARMS)
    assert len(plan.teacher_seeds) >= 2 and len(plan.student_seeds) >= 3
    assert "starnet" in plan.students["architectures"]
    assert plan.candidates["segments"] >= max(int(p.rsplit("K", 1)[1]) for p in plan.candidates["poolings"]
                                              if "_K" in p)
    assert len(preregistration.digest()) == 12


def test_a_changed_or_uncommitted_pre_registration_is_refused(tmp_path):
    path = committed_copy(tmp_path)
    preregistration.check_committed(path)  # committed and unchanged: accepted
    path.write_text(path.read_text().replace("seeds: [1, 2, 3]", "seeds: [1, 2]"))
    with pytest.raises(DistillError, match="differs from its committed version"):
        preregistration.check_committed(path)
    loose = tmp_path / "loose.yaml"
    loose.write_text(preregistration.PATH.read_text())
    with pytest.raises(DistillError, match="not committed"):
        preregistration.check_committed(loose)


def test_the_digest_follows_the_bytes(tmp_path):
    path = committed_copy(tmp_path)
    before = preregistration.digest(path)
    path.write_text(path.read_text() + "\n# a comment\n")
    assert preregistration.digest(path) != before


def test_a_margin_the_code_does_not_use_is_refused(tmp_path):
    text = preregistration.PATH.read_text().replace("error_dominates: 0.1", "error_dominates: 0.2")
    with pytest.raises(DistillError, match="margin error_dominates=0.2"):
        preregistration.load(committed_copy(tmp_path, text))


def test_main_refuses_overrides_at_confirm_scale(mlflow_store):
    result = CliRunner().invoke(main_module.main, ["--scale", "confirm", "--n-train", "100"])
    assert result.exit_code != 0 and "scale=confirm takes n_train" in result.output
    result = CliRunner().invoke(main_module.main, ["--scale", "confirm", "--seeds", "5"])
    assert result.exit_code != 0 and "scale=confirm takes seeds" in result.output


def test_main_refuses_a_changed_pre_registration_before_any_run(mlflow_store, tmp_path, monkeypatch):
    path = committed_copy(tmp_path)
    path.write_text(path.read_text() + "# edited after the commit\n")
    monkeypatch.setattr(preregistration, "PATH", path)
    result = CliRunner().invoke(main_module.main, ["--scale", "confirm"])
    assert result.exit_code != 0 and "differs from its committed version" in result.output
    import mlflow
    assert not mlflow.search_runs(search_all_experiments=True, output_format="list")  # refused before a run


def test_spectra_sealed_for_another_pre_registration_are_refused(tmp_path):
    root = tmp_path / "spectra"
    root.mkdir()
    _confirm.seal(str(root), "aaaa")
    assert sealed.digest_of(root) == "aaaa"
    _confirm.seal(str(root), "aaaa")  # the same pre-registration: accepted
    with pytest.raises(DistillError, match="sealed for pre-registration aaaa"):
        _confirm.seal(str(root), "bbbb")
