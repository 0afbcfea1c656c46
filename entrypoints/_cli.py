"""Shared command-line behaviour: one-line errors with exit code 2, progress bars."""
import functools
import sys

import click
from tqdm import tqdm

from distill.errors import DistillError


def one_line_errors(fn):
    """Turn a DistillError into ``error: <message>`` on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DistillError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)

    return wrapper


def progress_bar(total: int, desc: str):
    """A tqdm bar on stderr (one line every 30 s when stderr is a log, not a terminal); ``bar.update(n)``."""
    return tqdm(total=total, desc=desc, unit="spec", dynamic_ncols=True, mininterval=1.0 if sys.stderr.isatty() else 30.0)
