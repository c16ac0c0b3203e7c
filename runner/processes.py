"""Whether a process of this machine still runs: what a killed job left behind (a version in
status training, an export's partial folder) is told from what a running one holds."""

from __future__ import annotations

import os


def process_runs(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process of that id
        return True
    return True
