"""Shared command-line behaviour: the entry-point guard (one-line errors, clean stops, a scratch directory),
progress bars, comma lists."""
import functools
import math
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import click
from tqdm import tqdm

from distill import processes, stopping
from distill.errors import DistillError
from distill.redact import redact

REPO = Path(__file__).resolve().parents[1]  # the MLflow project


def one_line_errors(fn):
    """The entry-point guard.

    - A DistillError prints ``error: <message>`` on stderr (any URL's password hidden) and exits with status 2.
    - SIGTERM, SIGHUP and SIGINT unwind the entry point (its run ends KILLED with an ``error`` tag, see
      ``tracking.tracked_run``), print ``stopped: <signal>`` and exit with 128 + the signal number; the process
      also stops when the process that started it dies.
    - Temporary files live in one scratch directory per call (``distill-{pid}-*``), removed however the call ends;
      those a killed process left are removed by the next call.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        handlers = {s: signal.signal(s, stopping.stop) for s in stopping.SIGNALS}
        processes.die_with_parent()  # SIGTERM when the process that started it dies
        scratch = str(processes.owned_tempdir(tempfile.gettempdir(), "distill-"))
        saved = tempfile.tempdir, os.environ.get("TMPDIR")
        tempfile.tempdir = os.environ["TMPDIR"] = scratch
        try:
            return fn(*args, **kwargs)
        except DistillError as e:
            click.echo(f"error: {redact(e)}", err=True)
            sys.exit(2)
        except KeyboardInterrupt as e:
            name = str(e) if isinstance(e, stopping.Stopped) else "SIGINT"
            click.echo(f"stopped: {name}", err=True)
            sys.exit(128 + getattr(signal, name))
        finally:
            for s, h in handlers.items():
                signal.signal(s, h)
            tempfile.tempdir = saved[0]
            if saved[1] is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved[1]
            shutil.rmtree(scratch, ignore_errors=True)

    return wrapper


def progress_bar(total: int, desc: str, unit: str = "spec"):
    """A tqdm bar on stderr (one line every 30 s when stderr is a log, not a terminal); ``bar.update(n)``."""
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True,
                mininterval=1.0 if sys.stderr.isatty() else 30.0)


def split_list(text: str) -> list:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [s.strip() for s in str(text).split(",") if s.strip()]


def number_list(text: str, name: str, cast=float) -> list:
    """Sorted distinct numbers >= 0 of a comma list, or one line saying what is wrong."""
    try:
        values = sorted({cast(v) for v in split_list(text)})
    except ValueError:
        raise DistillError(f"{name}={text!r}: give a comma list of numbers") from None
    if not values or values[0] < 0 or not all(map(math.isfinite, values)):
        raise DistillError(f"{name}={text!r}: give a comma list of finite numbers >= 0")
    return values
