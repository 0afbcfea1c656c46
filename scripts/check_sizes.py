"""The house's size limits: an entry point is a shell (parse, call the library, log); a library module has one purpose.

Usage: ``python scripts/check_sizes.py`` (``make lint``); prints each file over its limit and exits 1.
"""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMITS = {"entrypoints": 200, "distill": 500}  # lines per .py file


def oversized(repo: Path = REPO, limits: dict = LIMITS) -> list[str]:
    """``path: N lines (limit M)`` for every .py file under a limited folder that has more lines than its limit."""
    found = []
    for folder, limit in limits.items():
        for path in sorted((repo / folder).rglob("*.py")):
            n = len(path.read_text().splitlines())
            if n > limit:
                found.append(f"{path.relative_to(repo)}: {n} lines (limit {limit})")
    return found


if __name__ == "__main__":
    problems = oversized()
    for line in problems:
        print(line)
    sys.exit(1 if problems else 0)
