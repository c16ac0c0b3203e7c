"""Content-addressed file bytes: ``<root>/<sha[:2]>/<sha>``. Writes go to a temp file then rename,
so a crash never leaves a half-written blob under its final name."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

_CHUNK = 1 << 20


class BlobStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)

    def path(self, sha: str) -> str:
        # a plain string: pathlib would intern every new sha for the life of the process
        return os.path.join(self._root, sha[:2], sha)

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        if not os.path.exists(target):
            self._write(target, lambda f: f.write(data))
        return sha

    def put_file(self, src: str | os.PathLike) -> str:
        digest = hashlib.sha256()
        with open(src, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                digest.update(chunk)
        sha = digest.hexdigest()
        target = self.path(sha)
        if not os.path.exists(target):
            with open(src, "rb") as source:
                self._write(target, lambda f: shutil.copyfileobj(source, f, _CHUNK))
        return sha

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
