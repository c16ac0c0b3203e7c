"""Checking a local platform's records against its blob folder, and removing the bytes no record uses.

A record whose file is gone (a blob removed by hand) cannot be repaired from the store alone: the
check names it and what brings it back. Bytes no record uses are left by an import or a save that
stopped between writing its files and committing its records; they are harmless and reclaimable.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .blobs import sha_of_file
from .disk import blocks, disk_size, scan, size

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
    blobs_on_disk: int = 0  # bytes on disk (whole blocks) of every file in blobs/
    # (project, model, dataset id) of the models whose dataset is gone (a delete of it raced their making)
    without_dataset: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def reclaimable(self) -> int:
        return sum(self.unused.values()) + sum(size(path) for path in self.loose)


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
    result.without_dataset = [tuple(row) for row in platform.store.query(
        "SELECT p.name, m.name, m.dataset_id FROM models m JOIN projects p ON p.id = m.project_id LEFT JOIN "
        "datasets d ON d.id = m.dataset_id WHERE m.dataset_id IS NOT NULL AND d.id IS NULL ORDER BY p.name, m.name")]
    used: dict[str, int] = {}  # sha -> bytes on disk; a blob two records share is counted once
    verified: dict[str, bool] = {}  # ... and hashed once
    for kind, rows in (("item", items), ("artifact", artifacts)):
        for owner, name, sha, stored in rows:
            path = blobs.path(sha)
            try:
                held = os.stat(path)
            except FileNotFoundError:
                used.setdefault(sha, 0)
                result.missing.append(Missing(kind, owner, name, path))
                continue
            used[sha] = blocks(held)
            if stored is not None and held.st_size != stored:
                result.missing.append(Missing(kind, owner, name, path, f"{held.st_size} bytes, not the {stored} "
                                                                       "stored"))
                continue
            if verify and sha not in verified:
                verified[sha] = sha_of_file(path) == sha
            if verify and not verified[sha]:
                result.missing.append(Missing(kind, owner, name, path, "its bytes changed since they were stored"))
    old = time.time() - PARTIAL_WRITE_AGE_S
    unused_on_disk = 0
    for folder in scan(blobs.root):
        if not folder.is_dir() or len(folder.name) != 2:  # .trash-* folders are a delete's (see LocalPlatform)
            continue
        for entry in scan(folder):
            if entry.name.startswith(".tmp-"):
                if entry.stat().st_mtime < old:
                    result.loose.append(Path(entry.path))
            elif not entry.name.startswith(folder.name) or not entry.is_file():
                result.loose.append(Path(entry.path))
            elif entry.name not in used:
                result.unused[entry.name] = entry.stat().st_size
                unused_on_disk += blocks(entry.stat())
    result.blobs_on_disk = sum(used.values()) + unused_on_disk + sum(disk_size(path) for path in result.loose)
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
    gone = [(held, platform.blobs.path(sha)) for sha, held in found.unused.items()]
    gone += [(size(path), path) for path in found.loose]
    gone = [held for held, path in gone if not os.path.exists(path)]
    return len(gone), sum(gone)
