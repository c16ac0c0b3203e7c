"""A declarative runner for Dataloop-style model adapters, with an embedded local platform."""

from __future__ import annotations

import os
import warnings

from .dtlpy_logger import claim_dtlpy_logger

__version__ = "0.1.0"

claim_dtlpy_logger()  # before anything imports dtlpy: see runner/dtlpy_logger.py

# conf/hydra/launcher/<name>.yaml sets a few keys of the launcher plugin's schema of the same name;
# Hydra merges the file over that schema (so typos are caught) and warns that it does. Here, not in
# the CLI alone: a launcher's worker processes compose each job's config again, and they import
# this package (for the run's callbacks) but not the CLI module.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/\w+' is validated against ConfigStore schema",
                        category=UserWarning)
# Optuna's SQLite storage (hparams_search) is pinned to sqlalchemy<2 in pyproject.toml, which is what
# sqlalchemy's warning on importing it asks for: its own switch silences it (read as sqlalchemy loads)
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")


def __getattr__(name: str):
    # dtlpy takes about a second to import: load it when the adapter class is first asked for
    if name in ("BaseModelAdapter", "bind_adapter_class"):
        from . import adapter

        return getattr(adapter, name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")


__all__ = ["BaseModelAdapter", "bind_adapter_class"]
