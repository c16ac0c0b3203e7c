"""SIGTERM as an exception, held back while a run writes its last outputs.

A run stopped by SIGTERM ends as an interrupted one (``Terminated``: run.json ``failed``, the version
``failed``). Once its steps are done, though, the signal waits until the outputs and run.json are
written (``hold`` ... ``release``): else a run could leave ``metrics.json`` and a ``trained``
version beside a run.json that says it failed."""

from __future__ import annotations

import signal


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler's time limit) turned into an exception, so a run ends as an
    interrupted one does: the run and the model version are marked failed, a checkpoint is saved."""

    signal = signal.SIGTERM


_held = False
_pending = False


def hold() -> None:
    """From here until ``release``, a SIGTERM waits."""
    global _held
    _held = True


def held_back() -> bool:
    """For the SIGTERM handler: True (the signal is noted, to be raised by ``release``) while held."""
    global _pending
    if _held:
        _pending = True
    return _held


def release(raise_pending: bool = True) -> None:
    """Stop holding; a SIGTERM that came meanwhile is raised now (unless the run is failing anyway)."""
    global _held, _pending
    pending, _held, _pending = _pending, False, False
    if pending and raise_pending:
        raise Terminated()
