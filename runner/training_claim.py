"""Which process trains a version. A training records its host and process id on the version
(``metadata.user.runner.training``), so a version left in status ``training`` by a process that is
gone (``kill -9``, a crash, a power cut) can be told from one that trains now, on this machine."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime

from .reporting import runner_metadata


def claim() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "started": datetime.now(UTC).isoformat(timespec="seconds")}


def process_gone(model) -> bool:
    """Whether ``model`` (an entity or its JSON) is in status ``training`` by a process of this
    machine that no longer runs. False when that cannot be told (another host, no claim recorded)."""
    status = model.get("status") if isinstance(model, dict) else model.status
    held = runner_metadata(model).get("training") or {}
    if status != "training" or held.get("host") != socket.gethostname() or not isinstance(held.get("pid"), int):
        return False
    if held["pid"] == os.getpid():
        return False
    try:
        os.kill(held["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process of that id runs
        return False
    return False
