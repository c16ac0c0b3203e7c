"""Which files of the config search path this run's group options come from, so that an error can
name the file that writes a setting, or tell that an option's folder is missing from the command line."""

from __future__ import annotations

import contextlib
from pathlib import Path


def adapter_option() -> str | None:
    """The ``adapter=`` option of this run (None outside a Hydra run)."""
    return option_choice("adapter")


def option_choice(group: str) -> str | None:
    """The option of ``group`` this run chose (None outside a Hydra run, or for no such group)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.choices.get(group) if HydraConfig.initialized() else None


def option_files(group: str, option: str | None = None) -> list[Path] | None:
    """This run's files of ``group/option.yaml`` (``option``: this run's choice), in search-path order;
    None when it cannot tell: outside a Hydra run, or with a package's config folder on the search path."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    runtime = HydraConfig.get().runtime
    option = option or runtime.choices.get(group)
    found = []
    for source in runtime.config_sources:
        if source.schema == "file" and (Path(source.path) / group / f"{option}.yaml").is_file():
            found.append(Path(source.path) / group / f"{option}.yaml")
        if source.schema == "pkg" and not source.path.startswith(("hydra.", "hydra_plugins.")):
            return None  # only Hydra reads a package's config folder
    return found


def option_found(group: str, option: str) -> bool:
    files = option_files(group, option)
    return files is None or bool(files)


def file_setting(group: str, key: str) -> Path | None:
    """The file of this run's ``group`` option that writes ``key`` (None: the command line did)."""
    import yaml

    for path in option_files(group) or []:  # the first on the search path is the one Hydra reads
        with contextlib.suppress(OSError, yaml.YAMLError, AttributeError):
            if key in (yaml.safe_load(path.read_text()) or {}):
                return path
    return None
