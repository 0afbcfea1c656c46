"""Processes that end with their parent, temporary directories named by their owner's pid (removed once that pid is
gone), and the ``mlflow run`` launcher of a stopped run."""
import ctypes
import glob
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGTERM, parent: int | None = None):
    """Linux: receive ``signum`` when the parent process dies; exit now if it already has (``parent``: its pid as
    the parent knew it). Elsewhere, nothing."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signum))
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:
        os._exit(128 + int(signum))


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie or another user's process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(parent, prefix: str) -> list:
    """Remove the directories ``{prefix}{pid}-*`` in ``parent`` whose pid is no longer alive; return them."""
    owned = re.compile(re.escape(prefix) + r"(\d+)-")
    stale = [p for p in Path(parent).glob(f"{glob.escape(prefix)}*")
             if (m := owned.match(p.name)) and p.is_dir() and not alive(int(m[1]))]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def owned_tempdir(parent, prefix: str, label: str = "") -> Path:
    """A new directory ``{prefix}{pid}-{label}XXXXXXXX`` in ``parent``, after removing those of dead processes."""
    remove_stale(parent, prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-{label}", dir=parent))


def is_mlflow_run(pid: int) -> bool:
    """Whether process ``pid`` is an ``mlflow run`` command."""
    try:
        return mlflow_run_command(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0"))
    except OSError:
        return False


def mlflow_run_command(argv: list) -> bool:
    """Whether a command line is ``python -m mlflow run ...`` or ``[python] .../mlflow run ...``."""
    return argv[1:4] == ["-m", "mlflow", "run"] or any(Path(a).name == "mlflow" and argv[i + 1:i + 2] == ["run"]
                                                       for i, a in enumerate(argv[:2]))


def end_mlflow_run_parent():
    """End the ``mlflow run`` that started this process, if one did: once the child has exited, it marks a run that
    did not exit 0 FAILED over the status the run set (KILLED). Call when the run has its status, before exiting."""
    parent = os.getppid()
    if is_mlflow_run(parent):
        die_with_parent(0)  # its end must not stop this process
        os.kill(parent, signal.SIGTERM)
