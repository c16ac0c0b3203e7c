"""What a run ran on, for its ``run.json``: Python and the versions of the packages a result depends
on, the host, the store, and the git commit of the adapter's code. Two runs of one command on two
machines (or two stores) otherwise leave identical records, and the one that differs cannot be told."""

from __future__ import annotations

import importlib.metadata
import inspect
import platform
import socket
import subprocess
from pathlib import Path

PACKAGES = ("adapter-runner", "dtlpy", "hydra-core", "omegaconf", "numpy", "scikit-learn", "torch", "pillow")


def run_environment(adapter_class: type | None, store: str | None) -> dict:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:  # torch is an extra
            continue
    return {"python": platform.python_version(), "packages": found, "host": socket.gethostname(),
            "store": store, "code": _git_state(_code_folder(adapter_class))}


def _code_folder(adapter_class: type | None) -> Path:
    """The folder of the adapter's module (the code that ran), else the working folder."""
    try:
        return Path(inspect.getsourcefile(adapter_class)).resolve().parent
    except (TypeError, OSError):
        return Path.cwd()


def _git_state(folder: Path) -> dict | None:
    """The commit of the git work tree holding ``folder``, and whether tracked files differ from it;
    None outside a work tree (or without git)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    found = git("rev-parse", "--show-toplevel", "HEAD")  # one process for both: a job starts with this
    if found is None:
        return None
    repository, commit = found.splitlines()
    changed = git("status", "--porcelain", "--untracked-files=no")
    return {"repository": repository, "commit": commit, "changed": None if changed is None else bool(changed)}
