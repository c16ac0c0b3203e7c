"""Content-addressed file bytes: ``<root>/<sha[:2]>/<sha>``. Writes go to a temp file then rename,
so a crash never leaves a half-written blob under its final name.

Blobs are written before the records that reference them (outside the store's write lock) and
removed only under that lock (``move_out``). So a writer checks its blobs again once it holds the
lock (``exists``) and puts back any that a delete removed in between.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20


def sha_of_bytes(data: bytes) -> str:
    """The name bytes are stored under."""
    return hashlib.sha256(data).hexdigest()


def sha_of_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _holds(path: str, size: int) -> bool:
    """Whether the blob is there whole: one of another size (cut short on disk) is written again."""
    try:
        return os.path.getsize(path) == size
    except FileNotFoundError:
        return False


class BlobStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)

    def path(self, sha: str) -> str:
        # a plain string: pathlib would intern every new sha for the life of the process
        return os.path.join(self._root, sha[:2], sha)

    def put_bytes(self, data: bytes) -> str:
        sha = sha_of_bytes(data)
        target = self.path(sha)
        if not _holds(target, len(data)):
            self._write(target, lambda f: f.write(data))
        return sha

    def put_file(self, src: str | os.PathLike) -> str:
        sha = sha_of_file(src)
        target = self.path(sha)
        if not _holds(target, os.path.getsize(src)):
            with open(src, "rb") as source:
                self._write(target, lambda f: shutil.copyfileobj(source, f, _CHUNK))
        return sha

    def exists(self, sha: str) -> bool:
        return os.path.exists(self.path(sha))

    def move_out(self, shas: Iterable[str], trash: str | os.PathLike, moved: list[str]) -> None:
        """Move these blobs into ``trash``, one rename each, appending each moved one to ``moved``
        (so ``move_back`` can undo it, even after a failure half-way)."""
        trash = Path(trash)
        for sha in shas:
            if os.path.exists(self.path(sha)):
                trash.mkdir(parents=True, exist_ok=True)
                os.replace(self.path(sha), trash / sha)
                moved.append(sha)

    def move_back(self, shas: Iterable[str], trash: str | os.PathLike) -> None:
        for sha in shas:
            with contextlib.suppress(FileNotFoundError):  # already back
                os.replace(Path(trash) / sha, self.path(sha))

    def read(self, sha: str) -> bytes:
        with open(self.path(sha), "rb") as f:
            return f.read()

    def copy_to(self, sha: str, dest: str | os.PathLike) -> None:
        """Copy the blob to ``dest``. A copy, not a link: an adapter that edits its data files
        must not reach into the store."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path(sha), dest)

    def _write(self, target: str, write) -> None:
        folder = os.path.dirname(target)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
