"""A check the shipped adapters share in ``load``: a model version's artifacts are this adapter's."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

_LISTED = 6


def artifact_files(folder) -> list[str]:
    """The files under ``folder`` (relative paths, sorted; hidden files left out); none if it does not exist."""
    root = Path(folder)
    if not root.is_dir():
        return []
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*")
                  if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts))


def check_own_artifacts(folder, own: Sequence[str], status: str | None, logger: logging.Logger) -> None:
    """Called when ``folder`` holds none of the adapter's ``own`` files: fine when it is empty (not
    trained yet); a ValueError when it holds other files (another adapter's artifacts). Inside a
    training (status ``training``: it loads first, and a failed run leaves only what its output_path
    held) a warning instead, and the training starts from scratch."""
    found = artifact_files(folder)
    if not found:
        return
    listed = ", ".join(found[:_LISTED]) + (f" and {len(found) - _LISTED} more" if len(found) > _LISTED else "")
    names = own[0] if len(own) == 1 else f"{', '.join(own[:-1])} or {own[-1]}"
    message = (f"model artifacts in {folder} have no {names} (found: {listed}): the version was made by another "
               f"adapter? choose the adapter that trained it (adapter=...)")
    if status != "training":
        raise ValueError(message)
    logger.warning("%s; training starts from scratch", message)


def model_status(adapter) -> str | None:
    """The status of the adapter's model entity (``training`` while it trains), if it has one."""
    return getattr(getattr(adapter, "_model_entity", None), "status", None)
