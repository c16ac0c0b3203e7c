"""Plain-text tables for the terminal (columns padded to their widest cell, a rule under the header),
and the short lists and suggested names that messages hold."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any


def aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in [header, ["-" * w for w in widths], *rows]]


def number_cell(value: Any, digits: int = 4) -> str:
    """A table cell of a value: a float to ``digits`` decimals, a count (an int) whole, None empty."""
    if value is None:
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def first_few(names: Sequence[str], shown: int = 5) -> str:
    """The first ``shown`` of ``names`` and how many more there are: a message about many stays short."""
    return ", ".join(names[:shown]) + (f" (and {len(names) - shown} more)" if len(names) > shown else "")


def closest(name: str, names: Sequence[str]) -> str | None:
    """The name of ``names`` closest to ``name``: the same but for case first (difflib minds case:
    ``AP`` for ``ap``), else difflib's closest; None when none is close."""
    same_but_case = [n for n in names if n.lower() == name.lower()]
    close = same_but_case or difflib.get_close_matches(name, list(names), n=1)
    return close[0] if close else None


def did_you_mean(name: str, names: Sequence[str], prefix: str = "") -> str:
    """`` (did you mean <prefix><closest>?)`` for a misspelt ``name``; empty when none is close."""
    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def is_pattern(name: str) -> bool:
    """A shell-style pattern (``sklearn-digits-2026*``), not a name."""
    return any(c in name for c in "*?[")


def short_names(keys: list[str]) -> dict[str, str]:
    """``adapter.configuration.estimator.C`` -> ``C``: the shortest dotted suffix no other key shares."""
    names = {}
    for key in keys:
        parts = key.split(".")
        for size in range(1, len(parts) + 1):
            suffix = ".".join(parts[-size:])
            if not any(other != key and (other == suffix or other.endswith("." + suffix)) for other in keys):
                break
        names[key] = suffix
    return names
