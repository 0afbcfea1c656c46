"""The size check behind ``make lint`` notices a file that grows past its limit."""
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_sizes", REPO / "scripts" / "check_sizes.py")
check_sizes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_sizes)


def test_an_entry_point_past_its_limit_is_named(tmp_path):
    (tmp_path / "entrypoints").mkdir()
    (tmp_path / "entrypoints" / "thin.py").write_text("x = 1\n" * 10)
    (tmp_path / "entrypoints" / "grown.py").write_text("x = 1\n" * 11)
    assert check_sizes.oversized(tmp_path, {"entrypoints": 10}) == ["entrypoints/grown.py: 11 lines (limit 10)"]


def test_the_repository_keeps_its_limits():
    assert check_sizes.oversized() == []
