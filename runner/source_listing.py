"""Whether the files a dataset was imported from have changed since: a digest of their paths, sizes
and modification times, taken from a listing of the folders (no file is read), so a run can notice a
folder that gained files and import it again (the importers add only what the dataset lacks)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def is_path_key(key: str) -> bool:
    """A key of an importer's config that names a file or folder (``folder``, ``images_dir``, ...)."""
    return key == "folder" or key.endswith(("_dir", "_file", "_folder", "_path"))


def source_paths(source: dict | None) -> list[str]:
    """The files and folders an importer's config names, in its order."""
    return [value for key, value in (source or {}).items() if is_path_key(key) and isinstance(value, str)]


def source_listing(source: dict | None) -> str | None:
    """The digest of every file under the source's paths; None for a source that names none (an
    importer that makes its data: digits, shapes)."""
    paths = sorted(source_paths(source))
    if not paths:
        return None
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path}\0".encode())
        for relative, size, mtime in _files(Path(path)):
            digest.update(f"{relative}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()


def _files(path: Path):
    """(relative path, size, mtime in ns) of the file, or of every file below the folder, sorted; a path
    that is not there gives nothing (the importer says what is wrong with it)."""
    if path.is_file():
        stat = path.stat()
        yield path.name, stat.st_size, stat.st_mtime_ns
        return
    found = []
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in files:
            full = os.path.join(folder, name)
            try:
                stat = os.stat(full)
            except OSError:  # removed while listed
                continue
            found.append((os.path.relpath(full, path), stat.st_size, stat.st_mtime_ns))
    yield from sorted(found)
