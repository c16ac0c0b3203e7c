"""The config's own interpolations: ``${dataloop_path:}``, ``${sqlite_url:<file>}``,
``${study_seed:<seed>,<storage>,<study name>}`` (see runner.studies) and ``${top_package:<dotted path>}``.

Registered by the CLI before Hydra composes (the sweeper's settings use them) and again before each
job resolves its config, since a launcher's worker process may run many jobs.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from .paths import dataloop_path


def sqlite_url(file: str) -> str:
    """An SQLAlchemy URL for a SQLite file, its folder created (SQLite creates the file, not the folder)."""
    path = Path(file).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("dataloop_path"):
        OmegaConf.register_new_resolver("dataloop_path", lambda: str(dataloop_path()))
    if not OmegaConf.has_resolver("sqlite_url"):
        OmegaConf.register_new_resolver("sqlite_url", sqlite_url)
    if not OmegaConf.has_resolver("study_seed"):
        OmegaConf.register_new_resolver("study_seed", _study_seed)
    if not OmegaConf.has_resolver("top_package"):
        # the debug preset's verbose loggers: the adapter's own package (mypkg of mypkg.mlp.MlpAdapter)
        OmegaConf.register_new_resolver("top_package", lambda path: str(path).split(".")[0])


def _study_seed(seed, storage, study_name):
    from .studies import study_seed  # imports optuna: only when a search asks for it

    return study_seed(seed, storage, study_name)
