"""Output piped into a reader that stops early (``| head``): a listing ends quietly, a run goes on."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

CLOSED_PIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a tool that a closed pipe stopped


def printing(main: Callable[[], int]) -> int:
    """``main()``, then a flush inside the same guard: Python would print a traceback for the write
    that found the pipe closed, and another at exit for the output still buffered."""
    try:
        try:
            code = main()
        finally:  # after --help's SystemExit too
            sys.stdout.flush()
        return code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush goes nowhere
        return CLOSED_PIPE_EXIT


class _ReaderMayLeave:
    """``sys.stdout`` for a run: once its reader has gone (``| head``, a pager that quit, a closed
    terminal), what the run prints and logs to the console goes nowhere, and the run goes on."""

    def __init__(self, stream):
        self._stream = stream
        self._gone = False

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._reader_gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self) -> None:
        if self._gone:
            return
        self._gone = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())  # the buffered rest goes nowhere too
        logging.getLogger("runner").warning("the console's reader has gone: the run goes on, logging to dlrun.log only")

    def __getattr__(self, name):  # fileno, isatty, encoding...: the real stream's
        return getattr(self._stream, name)


def run_on_when_reader_leaves() -> None:
    """A run's outputs are files and stored records; its console output is a copy of ``dlrun.log``.
    A reader that stops early must not fail the run (a training of hours), so ``sys.stdout`` and the
    logging handlers that write to it (Hydra's, set up before or after this) take the guard."""
    if not isinstance(sys.stdout, _ReaderMayLeave):
        sys.stdout = _ReaderMayLeave(sys.stdout)
    guarded, real = sys.stdout, sys.stdout._stream
    loggers = [logging.root, *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger))]
    for handler in (h for lg in loggers for h in lg.handlers):
        if isinstance(handler, logging.StreamHandler) and handler.stream is real:
            handler.setStream(guarded)
