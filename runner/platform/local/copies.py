"""The local copies beside a store, in the folder ``paths.copies_home`` names: ``models/<name>/``
(a version's artifacts, loaded there by a run) and ``model_data/<id>_<name>/<timestamp>/`` (the data
``prepare_data`` exported for a training). They are copies: removing one loses nothing stored."""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .disk import disk_use, scan

# a models/ folder changed more recently may be a running job's: a job of another platform sharing the
# folder (a platform.root of another name, the Dataloop platform) loads its model's artifacts there
LEFTOVER_AGE_S = 3600.0


@dataclass
class LocalCopies:
    home: Path
    training_data: dict[Path, int] = field(default_factory=dict)  # copy -> bytes on disk, none a training uses
    model_data_size: int = 0  # every copy, those of trainings under way too
    leftovers: dict[Path, int] = field(default_factory=dict)  # models/<name>/ of no model in the store
    models_size: int = 0
    kept: int = 0  # copies of trainings under way, left

    @property
    def copies(self) -> int:
        return len(self.training_data) + self.kept


def local_copies(platform, home: Path, training: set[str]) -> LocalCopies:
    """The copies under ``home``: the training data copies (but those of the model ids in ``training``,
    trainings under way), and the ``models/`` folders of names no model of the store has any more (a
    delete stopped before it removed them), with what each takes on disk (whole blocks)."""
    found = LocalCopies(home)
    folders = {Path(entry.path): disk_use(Path(entry.path)) for entry in scan(home / "models") if entry.is_dir()}
    found.models_size = sum(folders.values())
    # read after the scan: a model's record is made before its folder, so a folder seen has its name here
    named = model_names(platform)
    old = time.time() - LEFTOVER_AGE_S
    found.leftovers = {f: size for f, size in folders.items() if f.name not in named and _changed(f) < old}
    for model in scan(home / "model_data"):
        if not model.is_dir():
            continue
        for copy in scan(Path(model.path)):
            if not copy.is_dir():
                continue
            size = disk_use(Path(copy.path))
            found.model_data_size += size
            if model.name.split("_")[0] in training:
                found.kept += 1
            else:
                found.training_data[Path(copy.path)] = size
    return found


def model_names(platform) -> set[str]:
    """The names of the store's models, of every project: a models/ folder is named by the name alone."""
    return {row[0] for row in platform.store.query("SELECT DISTINCT name FROM models")}


def remove_training_copies(copies: dict[Path, int]) -> tuple[int, int]:
    """Remove the copies (and a model's folder they leave empty); returns (copies, bytes) gone."""
    for copy in copies:
        shutil.rmtree(copy, ignore_errors=True)
        with contextlib.suppress(OSError):
            copy.parent.rmdir()
    gone = [size for copy, size in copies.items() if not copy.exists()]
    return len(gone), sum(gone)


def remove_leftovers(platform, leftovers: dict[Path, int]) -> tuple[int, int]:
    """Remove the ``models/`` folders that still name no model of the store (one may have been made
    since they were found); returns (folders, bytes) gone."""
    named = model_names(platform)
    for folder in leftovers:
        if folder.name not in named:
            shutil.rmtree(folder, ignore_errors=True)
    gone = [size for folder, size in leftovers.items() if not folder.exists()]
    return len(gone), sum(gone)


def _changed(folder: Path) -> float:
    try:
        return folder.stat().st_mtime
    except FileNotFoundError:
        return 0.0
