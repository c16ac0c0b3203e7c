"""Checking a local platform's records against its blob folder, and removing the bytes no record uses.

A record whose file is gone (a blob removed by hand) cannot be repaired from the store alone: the
check names it and what brings it back. Bytes no record uses are left by an import or a save that
stopped between writing its files and committing its records; they are harmless and reclaimable.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...paths import dataloop_path
from .blobs import sha_of_file

# a partial write (.tmp-*) younger than this may be a running job's: only older ones are removed
PARTIAL_WRITE_AGE_S = 3600.0


@dataclass
class Missing:
    kind: str  # "item" or "artifact"
    owner: str  # the dataset's or the model's name
    name: str  # the item's filename or the artifact's name
    path: str  # where its bytes should be
    damaged: str = ""  # empty: the file is gone; else what is wrong with the one there


@dataclass
class StoreCheck:
    items: int = 0  # item records with file bytes, checked
    artifacts: int = 0
    missing: list[Missing] = field(default_factory=list)
    unused: dict[str, int] = field(default_factory=dict)  # sha -> size of blobs no record uses
    # files no record can use, removed as they are: old .tmp-* files of writes that never finished, and
    # files whose name does not belong in their folder (not a blob: put there by something else)
    loose: list[Path] = field(default_factory=list)

    @property
    def reclaimable(self) -> int:
        return sum(self.unused.values()) + sum(_size(path) for path in self.loose)


def check_store(platform, verify: bool = False) -> StoreCheck:
    """Every item and artifact record of the platform folder (all its projects: blobs are shared)
    against the files in ``blobs/``: each there, of the size recorded, and with ``verify`` its bytes
    hashing to its name (a change that kept the size)."""
    blobs = platform.blobs
    items = platform.store.query("SELECT d.name, i.filename, i.blob, i.size FROM items i JOIN datasets d ON d.id = "
                                 "i.dataset_id WHERE i.blob IS NOT NULL ORDER BY d.name, i.filename")
    artifacts = platform.store.query("SELECT m.name, a.name, a.blob, a.size FROM artifacts a JOIN models m ON m.id = "
                                     "a.model_id ORDER BY m.name, a.name")
    result = StoreCheck(items=len(items), artifacts=len(artifacts))
    used: set[str] = set()
    verified: dict[str, bool] = {}  # a blob two records share is hashed once
    for kind, rows in (("item", items), ("artifact", artifacts)):
        for owner, name, sha, size in rows:
            used.add(sha)
            path = blobs.path(sha)
            try:
                held = os.path.getsize(path)
            except FileNotFoundError:
                result.missing.append(Missing(kind, owner, name, path))
                continue
            if size is not None and held != size:
                result.missing.append(Missing(kind, owner, name, path, f"{held} bytes, not the {size} stored"))
                continue
            if verify and sha not in verified:
                verified[sha] = sha_of_file(path) == sha
            if verify and not verified[sha]:
                result.missing.append(Missing(kind, owner, name, path, "its bytes changed since they were stored"))
    old = time.time() - PARTIAL_WRITE_AGE_S
    for folder in _scan(blobs.root):
        if not folder.is_dir() or len(folder.name) != 2:  # .trash-* folders are a delete's (see LocalPlatform)
            continue
        for entry in _scan(folder):
            if entry.name.startswith(".tmp-"):
                if entry.stat().st_mtime < old:
                    result.loose.append(Path(entry.path))
            elif not entry.name.startswith(folder.name) or not entry.is_file():
                result.loose.append(Path(entry.path))
            elif entry.name not in used:
                result.unused[entry.name] = entry.stat().st_size
    return result


def remove_unused(platform, found: StoreCheck) -> tuple[int, int]:
    """Remove the blobs ``found`` lists as unused that are still unused under the store's write lock
    (a job may have stored a record using one since), and the loose files. Returns (files, bytes)
    removed: what is gone now."""
    platform.remove_blobs_unless_used(set(found.unused))
    for path in found.loose:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    gone = [(size, platform.blobs.path(sha)) for sha, size in found.unused.items()]
    gone += [(_size(path), path) for path in found.loose]
    gone = [size for size, path in gone if not os.path.exists(path)]
    return len(gone), sum(gone)


def training_copies(training: set[str] = frozenset()) -> tuple[list[Path], int]:
    """(copies, bytes on disk) of the data ``prepare_data`` wrote under
    ``DATALOOP_PATH/model_data/<model id>_<name>/<timestamp>/`` by default: a training's own copy, which
    no later run reads. The copies of the model ids in ``training`` (trainings under way) are left out.
    Disk use counts whole blocks: a copy is many small files, each taking a block or more."""
    copies = [Path(model.path) / copy.name for model in _scan(dataloop_path() / "model_data")
              if model.is_dir() and model.name.split("_")[0] not in training
              for copy in _scan(Path(model.path)) if copy.is_dir()]
    size = sum(_disk_size(Path(root) / name) for copy in copies for root, _dirs, names in os.walk(copy)
               for name in names)
    return copies, size


def remove_training_copies(copies: list[Path]) -> int:
    """Remove the copies (and a model's folder they leave empty); returns how many are gone."""
    for copy in copies:
        shutil.rmtree(copy, ignore_errors=True)
        with contextlib.suppress(OSError):
            copy.parent.rmdir()
    return sum(not copy.exists() for copy in copies)


def _disk_size(path: Path) -> int:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return 0
    return stat.st_blocks * 512 if hasattr(stat, "st_blocks") else stat.st_size


def _scan(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except FileNotFoundError:
        return []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
