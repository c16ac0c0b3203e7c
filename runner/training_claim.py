"""Which process trains a version. A training records its host and process id on the version
(``metadata.user.runner.training``), so a version left in status ``training`` by a process that is
gone (``kill -9``, a crash, a power cut) can be told from one that trains now, on this machine."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime

from .processes import process_runs
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
    return not process_runs(held["pid"])
