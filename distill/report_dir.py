"""Where a report is written (``out=``): only into a directory distill owns, and only its own files there.

A directory is distill's when it does not exist, is empty, or holds the marker ``.distill-report`` (written with each
report, listing the files it wrote); a report directory from before the marker (``report.md`` headed
``# distill report``, ``report.html``, ``figures/*.png``, nothing else) counts too. Any other directory is refused
before any work starts. In its own directory a report replaces the files it writes, removes those the previous report
listed and this one does not write, and leaves every other file alone.
"""
import contextlib
import json
import os
from pathlib import Path, PurePosixPath

from .errors import DistillError

MARKER = ".distill-report"
LEGACY = {"report.md", "report.html", "figures"}


def check(out) -> Path:
    """``out`` as a path a report may be written to, or a one-line refusal."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise DistillError(f"out={out}: not a directory; give a new or empty directory, or one a report made")
    if path.is_dir() and any(path.iterdir()) and not (path / MARKER).is_file() and not _legacy(path):
        raise DistillError(f"out={out}: a directory not made by distill (no {MARKER} in it) and not empty; give a new "
                           "or empty directory (nothing in this one was changed)")
    return path


def write(out, files: dict) -> Path:
    """Write ``files`` ({relative path: bytes}) under ``out``, replacing only what the previous report there wrote."""
    path = check(out)
    old = _listed(path)
    try:
        _replace(path / MARKER, _marker(old | set(files)))  # owned while written: a crash leaves nothing unlisted
        for rel, data in files.items():
            _replace(path / rel, data)
        stale = [path / rel for rel in sorted(old - set(files))]
        for file in stale:
            if file.is_file() and not file.is_symlink():
                file.unlink()
        for folder in {file.parent for file in stale} - {path}:
            with contextlib.suppress(OSError):  # a folder only the old report used, if now empty
                folder.rmdir()
        _replace(path / MARKER, _marker(set(files)))
    except OSError as e:
        raise DistillError(f"out={out}: cannot write the report ({e})") from None
    return path


def _legacy(path: Path) -> bool:
    """A report directory written before the marker existed."""
    names = {p.name for p in path.iterdir()}
    figures = path / "figures"
    try:
        head = (path / "report.md").read_text(errors="replace")[:32]
    except OSError:
        return False
    return names <= LEGACY and head.startswith("# distill report") and (not figures.exists() or (
        figures.is_dir() and all(p.suffix == ".png" and p.is_file() for p in figures.iterdir())))


def _listed(path: Path) -> set:
    """The files the previous report wrote, as its marker lists them (only plain relative paths inside ``path``)."""
    try:
        listed = json.loads((path / MARKER).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {rel for rel in listed if isinstance(rel, str) and _plain(rel)}


def _plain(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    return bool(parts) and not PurePosixPath(rel).is_absolute() and ".." not in parts and rel != MARKER


def _marker(files: set) -> bytes:
    return json.dumps({"written_by": "distill report", "files": sorted(files)}, indent=1).encode()


def _replace(target: Path, data: bytes):
    """Write ``target`` whole or not at all (a temporary file beside it, then renamed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
