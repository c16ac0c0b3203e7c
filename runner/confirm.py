"""Asking before a command of ``python -m runner.store`` removes something: on a terminal, or ``--yes``."""

from __future__ import annotations

import sys

from .errors import RunnerError


def refuse_unasked(yes: bool, what: str = "a delete") -> None:
    """Without ``--yes``, a question needs a terminal to be asked on: refused before anything is done."""
    if not yes and not sys.stdin.isatty():
        raise RunnerError(f"{what} needs confirmation, and there is no terminal to ask on", where="stdin is not a terminal",
                          fix="add --yes")


def confirm(question: str, yes: bool, what: str = "a delete") -> bool:
    """Whether to go on: ``--yes``, or a yes to ``question`` on the terminal."""
    if yes:
        return True
    refuse_unasked(yes, what)
    try:
        answer = input(f"{question} [y/N] ")
    except (EOFError, KeyboardInterrupt):  # Ctrl-D, Ctrl-C: no
        answer = ""
        print()
    if answer.strip().lower() in ("y", "yes"):
        return True
    print("nothing deleted")
    return False
