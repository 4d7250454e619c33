"""SIGTERM as a clean exit: what a batch system's time limit sends before it kills a job.

Python's default SIGTERM action ends the process at once: no ``finally`` block runs, so a
half-written temporary file stays behind and the rule's log does not say why the job ended.
Inside :func:`exit_on_sigterm` the signal raises :class:`Terminated` instead (exit status
143 = 128 + SIGTERM, as the shell reports a killed process), which unwinds normally: atomic
writes remove their temporary files, the log records the termination, and declared outputs
are never created. Inside :func:`deferred_sigterm` (around a checkpoint write) the signal
waits until the block has finished, so the epoch just trained is saved before the exit and
the rerun resumes after it. SLURM sends SIGTERM ``KillWait`` seconds (default 30) before
SIGKILL, enough to finish one checkpoint.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_deferring = 0
_pending = False


class Terminated(SystemExit):
    """Raised by SIGTERM inside :func:`exit_on_sigterm`; exits with status 143."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)

    def __str__(self) -> str:
        return "SIGTERM received (batch-system time limit or scancel); the rerun resumes from the checkpoint"


def _on_sigterm(signum, frame) -> None:
    global _pending
    if _deferring:
        _pending = True
    else:
        raise Terminated()


@contextlib.contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` for the block (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def deferred_sigterm() -> Iterator[None]:
    """Hold a SIGTERM caught by :func:`exit_on_sigterm` until the block has finished."""
    global _deferring, _pending
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _pending:
            _pending = False
            raise Terminated()
