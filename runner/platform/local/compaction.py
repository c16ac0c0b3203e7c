"""Giving the free pages of a local platform's ``platform.db`` back to the disk (SQLite ``VACUUM``).

Deleted records leave their pages free inside the file: SQLite reuses them for new records but never
shrinks it. ``VACUUM`` writes the file again without them. No other writer may change the file while
it runs, so it runs only once it holds the store's write lock, taken as a write takes it; other
processes' writes wait for it as for any write, and readers go on reading (WAL). The file written
again is in the WAL until a checkpoint copies it back, which truncates ``platform.db``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import RunnerError
from .disk import size

# a running job's writes hold the lock for milliseconds: held this long, it is a long write (an
# import, a delete), which a compaction must not keep waiting behind it
LOCK_WAIT_S = 5.0
CHECKPOINT_WAIT_MS = 5000  # for readers to leave the old file, before the checkpoint gives up


@dataclass
class Compaction:
    before: int  # bytes of platform.db and its WAL
    after: int
    checkpointed: bool  # False: readers kept the checkpoint from truncating the file yet


def database_size(store) -> int:
    """Bytes of ``platform.db`` and its WAL (what the database takes; ``-shm`` is an index of the WAL)."""
    return sum(size(Path(f"{store.path}{suffix}")) for suffix in ("", "-wal"))


def free_bytes(store) -> int:
    """Bytes of the file's free pages: what a compaction gives back."""
    con = store.connection()
    return con.execute("PRAGMA freelist_count").fetchone()[0] * con.execute("PRAGMA page_size").fetchone()[0]


def compact(store) -> Compaction:
    """``VACUUM`` the store, then checkpoint its WAL into the file; refused when another process holds
    the write lock (nothing is changed then)."""
    before = database_size(store)
    con = store.connection()
    if not store.when_unlocked(con, "VACUUM", LOCK_WAIT_S):
        raise RunnerError(f"platform.db was not compacted: another process held the store's write lock for "
                          f"{LOCK_WAIT_S:.0f} s (an import, a training or a delete writing to it)",
                          where=str(store.path), fix="nothing was changed; compact again when no job writes to "
                                                     "the store (python -m runner.store check --compact)")
    waited = con.execute("PRAGMA busy_timeout").fetchone()[0]
    con.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
    try:
        busy = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    finally:
        con.execute(f"PRAGMA busy_timeout={waited}")
    return Compaction(before, database_size(store), checkpointed=not busy)
