"""Where things go on disk. Read at call time, so tests and jobs can point DATALOOP_PATH elsewhere."""

from __future__ import annotations

import functools
import os
from pathlib import Path

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")  # the shipped config groups


@functools.cache
def shipped_config() -> dict:
    """``conf/config.yaml``, read once per process (a job of a sweep reads it again otherwise): its
    defaults list and top-level keys. Not to be changed by the caller."""
    import yaml

    return yaml.safe_load((Path(CONFIG_DIR) / "config.yaml").read_text()) or {}


def dataloop_path() -> Path:
    """``$DATALOOP_PATH``, default ``~/.dataloop`` (as dtlpy)."""
    return Path(os.environ.get("DATALOOP_PATH") or Path.home() / ".dataloop")


def dataloop_path_problem() -> str | None:
    """Why ``DATALOOP_PATH`` cannot hold the store (and dtlpy's own files, which dtlpy writes there as it
    is imported), as an error message; None when it can. Checked before anything imports dtlpy, whose
    own failure there is a traceback."""
    given = os.environ.get("DATALOOP_PATH")
    fix = "point DATALOOP_PATH at a folder you can write (it is made if missing), or unset it (~/.dataloop)"
    if given is not None and not given.strip():
        return f"DATALOOP_PATH is set but empty\n  where: DATALOOP_PATH\n  fix: {fix}"
    path = dataloop_path().expanduser()
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    why = None
    if path.exists() and not path.is_dir():
        why = "is a file, not a folder"
    elif existing is not None and not existing.is_dir():
        why = f"cannot be made: {existing} is a file"
    elif existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        why = "is read-only" if existing == path else f"cannot be made: {existing} is read-only"
    return None if why is None else f"DATALOOP_PATH {path} {why}\n  where: DATALOOP_PATH\n  fix: {fix}"


def default_local_root() -> Path:
    return dataloop_path() / "local"


STORE_FILE = "platform.db"  # the local platform's SQLite file, in its root folder


def holds_store(root: str | os.PathLike) -> bool:
    """Whether ``root`` holds a local platform: opening one that does not would make an empty one."""
    return (Path(root) / STORE_FILE).is_file()


def is_folder_name(name) -> bool:
    """A name that is one folder of a path: not empty, no separator, not ``.`` or ``..``."""
    return (isinstance(name, str) and bool(name.strip()) and name not in (".", "..")
            and not any(c in name for c in "/\\\0"))


def checked_model_name(name: str) -> str:
    """``name``, if it can name a model's folders (artifacts, exported data); else an ArtifactError."""
    if not is_folder_name(name):
        from .errors import ArtifactError

        raise ArtifactError(f"model name {name!r} cannot name a folder: the model's artifacts and data would be "
                            f"written outside {dataloop_path()}", where=f"model {name!r}",
                            fix="give the model a name without '/', '\\' or a NUL")
    return name


def copies_home(root: str | os.PathLike) -> Path | None:
    """The folder whose ``models/`` and ``model_data/`` hold the local copies of the store at ``root``.

    A run keeps them under its ``DATALOOP_PATH``, whose store is ``DATALOOP_PATH/local`` (platform.root's
    default): a store at ``<folder>/local`` has ``<folder>/models`` and ``<folder>/model_data``. A store
    in a folder of another name has none of its own: a run with ``platform.root=<it>`` kept its copies
    under its ``DATALOOP_PATH``, beside the store there, which a command on this store must not touch.
    The path is made absolute without following links, so a store reached through a link keeps the
    copies beside the link, as the runner wrote them."""
    root = Path(os.path.normpath(Path(root).absolute()))
    return root.parent if root.name == "local" else None


def model_folder(name: str, home: Path | None = None) -> Path:
    """``<home>/models/<name>`` (home: ``DATALOOP_PATH``), where a model's artifacts are loaded (the
    folder emptied first)."""
    return (home or dataloop_path()) / "models" / checked_model_name(name)


def model_data_folder(model_id: str, name: str, home: Path | None = None) -> Path:
    """``<home>/model_data/<id>_<name>`` (home: ``DATALOOP_PATH``), where ``prepare_data`` exports a
    model's data by default."""
    return (home or dataloop_path()) / "model_data" / f"{model_id}_{checked_model_name(name)}"
