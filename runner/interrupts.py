"""SIGTERM and SIGINT as an exception, held back while a run writes its last outputs.

A run stopped by a signal ends as an interrupted one (``Terminated``: run.json ``failed``, the version
``failed``). Once its steps are done, though, the signal waits until the outputs and run.json are
written (``hold`` ... ``release``): else a run could leave ``metrics.json`` and a ``trained``
version beside a run.json that says it failed, or a run.json that still says ``running``. A
process told to stop starts no further job (``stop``)."""

from __future__ import annotations

import os
import signal


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler's time limit) or SIGINT turned into an exception, so a run ends as
    an interrupted one does: the run and the model version are marked failed, a checkpoint is saved.
    ``after_completion``: the signal came while the run wrote its last outputs, which it finished first."""

    def __init__(self, signum: int = signal.SIGTERM, after_completion: bool = False):
        super().__init__(int(signum), after_completion)  # as args: a launcher's worker pickles it to the sweep
        self.signal = signal.Signals(signum)
        self.after_completion = after_completion

    def __str__(self) -> str:
        return f"interrupted by {self.signal.name}"


_held = False
_deferring = 0  # the main thread's store transactions now open (runner/platform/local/store.py)
_pending: int | None = None
_stopping: int | None = None
_run_completed = False
_run_started = False


def hold() -> None:
    """From here until ``release``, SIGTERM and SIGINT wait."""
    global _held
    _held = True


def held_back(signum: int) -> bool:
    """For the signal handler: True (the signal is noted, to be raised by ``release`` or delivered
    by ``undefer``) while held, or while a store transaction is open and no signal waits yet."""
    global _pending
    if _held or (_deferring and _pending is None):
        _pending = signum
        return True
    _pending = None  # a second signal during a transaction: it stops the run now, as the user insists
    return False


def defer() -> None:
    """A store transaction begins on the main thread: SIGTERM and SIGINT wait for it to end. Raised
    between its BEGIN and its COMMIT (or inside contextlib's own frames, where no ``except`` of the
    transaction's can catch it), a stop would leave it open: holding the store's write lock, with
    every later write of the process joining it and never committed."""
    global _deferring
    _deferring += 1


def undefer() -> None:
    """The transaction has ended: a signal that waited is sent again, and handled as any other."""
    global _deferring, _pending
    _deferring -= 1
    if not _deferring and not _held and _pending is not None:
        signum, _pending = _pending, None
        os.kill(os.getpid(), signum)


def release(raise_pending: bool = True) -> None:
    """Stop holding; a signal that came meanwhile is raised now (unless the run is failing anyway)."""
    global _held, _pending
    pending, _held, _pending = _pending, False, None
    if pending is not None and raise_pending:
        raise Terminated(pending, after_completion=True)


def stop(signum: int) -> None:
    """This process was told to stop: a job it would start next (a launcher's worker takes the next
    job of the sweep) ends at once, recorded as interrupted, instead of running to be killed."""
    global _stopping
    _stopping = signum


def stopping() -> int | None:
    return _stopping


def note_run(completed: bool) -> None:
    """Whether this process's last run wrote run.json ``completed``: a signal after that ends the
    process, not the run."""
    global _run_completed, _run_started
    _run_completed, _run_started = completed, True


def run_completed() -> bool:
    return _run_completed


def run_started() -> bool:
    """Whether a run started in this process (its config composed)."""
    return _run_started
