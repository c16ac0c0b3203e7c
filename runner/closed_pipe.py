"""Commands whose output is piped into a reader that stops early (``| head``) end quietly."""

from __future__ import annotations

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
