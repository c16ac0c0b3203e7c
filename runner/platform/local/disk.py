"""What files take on disk, for the reports of ``python -m runner.store check``."""

from __future__ import annotations

import os
from pathlib import Path


def scan(folder: Path) -> list[os.DirEntry]:
    """The entries of ``folder`` by name; none when it is not there."""
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except FileNotFoundError:
        return []


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def blocks(stat: os.stat_result) -> int:
    """Bytes on disk: whole blocks, so many small files take several times their bytes."""
    return stat.st_blocks * 512 if hasattr(stat, "st_blocks") else stat.st_size


def disk_size(path: Path) -> int:
    try:
        return blocks(path.stat())
    except FileNotFoundError:
        return 0


def disk_use(folder: Path) -> int:
    """Bytes on disk of every file under ``folder``."""
    return sum(disk_size(Path(root) / name) for root, _dirs, names in os.walk(folder) for name in names)
