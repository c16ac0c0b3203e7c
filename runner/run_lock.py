"""One run at a time in a run folder. A run holds an exclusive lock on ``<run folder>/.run.lock``
while it runs, so a second run given the same folder (``hydra.run.dir=fixed``, two sweeps into one
``hydra.sweep.dir``) is refused instead of mixing its outputs with the first one's. The lock is the
kernel's (``flock``): a run killed outright holds it no longer. A run that ends removes the file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".run.lock"


def holder(folder: Path) -> int | None:
    """The process id of the run that holds ``folder`` now (0 when it cannot be read); None when no
    run does."""
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = path.read_text().split(maxsplit=1)[:1]
            return int(pid[0]) if pid and pid[0].isdigit() else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def killed(folder: Path) -> bool:
    """The run that held ``folder`` ended without its own clean-up (``kill -9``, out of memory): its lock
    file is left and no process holds it. Judged on the host that ran it only: a lock taken on another
    node (a cluster's shared folder) cannot be tested from here."""
    try:
        _pid, host = (Path(folder) / LOCK_FILE).read_text().split(maxsplit=1)
    except (OSError, ValueError):
        return False
    return host.strip() == socket.gethostname() and holder(folder) is None


@contextlib.contextmanager
def held(folder: Path) -> Iterator[bool]:
    """Holds ``folder``'s lock for the block; yields False (holding nothing) when another run has it."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(folder) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}".encode())
        try:
            yield True
        finally:  # removed while still held: a run that opened it meanwhile is refused, a later one makes its own
            with contextlib.suppress(FileNotFoundError):
                os.unlink(Path(folder) / LOCK_FILE)
    finally:
        os.close(fd)  # closing it releases the lock
