"""What the store commands (``python -m runner.store``) look up by name, and the new files they
write: one message each for a dataset or a model version that is not there, and a file in the way."""

from __future__ import annotations

from pathlib import Path

from .errors import NotFoundError, RunnerError
from .text_table import did_you_mean


def dataset_named(platform, name: str, where: str | None = None, nothing_done: str = ""):
    """The dataset ``name``; missing, an error listing the datasets there (after ``nothing_done``)."""
    dataset = platform.find_dataset(name)
    if dataset is None:
        names = [d.name for d in platform.list_datasets()]
        raise NotFoundError(f"no dataset named {name!r}{did_you_mean(name, names)} in the local platform at "
                            f"{platform.root}", where=where, fix=f"{nothing_done}datasets here: {', '.join(names) or 'none'}")
    return dataset


def meant_models(name: str, names: list[str]) -> str:
    """The tail of a "no model named" message: the pattern, when models' names start with ``name`` (a
    version's name cut short: the closest name would be its base model's), else the closest name."""
    starting = [n for n in names if n.startswith(name)]
    if len(starting) > 1:
        return f" (did you mean '{name}*'? it names the {len(starting)} models whose names start so)"
    return f" (did you mean {starting[0]}?)" if starting else did_you_mean(name, names)


def model_named(platform, name: str, where: str | None = None):
    """The model (or version) ``name``; missing, an error naming the closest."""
    model = platform.find_model(name)
    if model is None:
        names = [m.name for m in platform.list_models()]
        raise NotFoundError(f"no model named {name!r}{meant_models(name, names)} in the local platform at "
                            f"{platform.root}", where=where, fix="python -m runner.store models lists the models")
    return model


def refuse_existing_file(dest: Path) -> None:
    if dest.exists():
        raise RunnerError(f"{dest} already exists", where=str(dest), fix="name a new file: an export never writes over files")
