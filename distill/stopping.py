"""Stopping on a signal: SIGTERM, SIGHUP and SIGINT raise ``Stopped`` (a KeyboardInterrupt) in the main thread, so an
entry point unwinds as on Ctrl-C; inside ``held()`` the stop waits until the block has finished (ending an MLflow run
must not be cut in half, or the run stays RUNNING for ever)."""
import contextlib
import signal
import threading

SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
_state = {"depth": 0, "pending": None}
EVERYWHERE = threading.Event()
"""Set when a stop reached the main thread while other threads wait (for Slurm jobs): each of them stops too. Never
cleared: a stopped process ends."""


class Stopped(KeyboardInterrupt):
    """A stop signal arrived; its name (``SIGTERM``, ...) is the message."""


def stop(signum, frame):
    """The signal handler: raise ``Stopped`` now, or after the outermost ``held()`` block."""
    name = signal.Signals(signum).name
    if _state["depth"]:
        _state["pending"] = name
    else:
        raise Stopped(name)


@contextlib.contextmanager
def held():
    """Hold stop signals during the block; one that arrived meanwhile raises ``Stopped`` once the block is done."""
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        pending = None if _state["depth"] else _state["pending"]
        if pending:
            _state["pending"] = None
    if pending:
        raise Stopped(pending)
