"""Where things go on disk. Read at call time, so tests and jobs can point DATALOOP_PATH elsewhere."""

from __future__ import annotations

import os
from pathlib import Path


def dataloop_path() -> Path:
    """``$DATALOOP_PATH``, default ``~/.dataloop`` (as dtlpy)."""
    return Path(os.environ.get("DATALOOP_PATH") or Path.home() / ".dataloop")


def default_local_root() -> Path:
    return dataloop_path() / "local"
