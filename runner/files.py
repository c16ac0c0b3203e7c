"""Files written whole or not at all: a reader (a sweep report, a later run) never sees half a file.

Standard library only, so the sweep report's command stays quick to start.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path


def write_whole(path: Path, write: Callable[[Path], object]) -> None:
    """``write(partial)`` into a hidden file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_json(path: Path, data) -> None:
    write_whole(path, lambda p: p.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"))
