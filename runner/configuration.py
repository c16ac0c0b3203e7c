"""The adapter's view of ``model.configuration``: reading never writes; a change is persisted."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, MutableMapping
from typing import Any

from .run_configuration import as_stored


def is_number(value: Any, finite: bool = False) -> bool:
    """A real number (numpy's too), not a bool, which Python counts as one; with ``finite`` not NaN or
    infinite either."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and (not finite or math.isfinite(value))


def is_whole_number(value: Any, minimum: int | None = None) -> bool:
    """An int (not a bool, which Python counts as one) of at least ``minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and (minimum is None or value >= minimum)


class ModelConfiguration(MutableMapping):
    """Backed by the model entity's own ``configuration`` dict, so the adapter, the model and the
    store agree. Unlike dtlpy's, ``get(key, default)`` does not store the default."""

    def __init__(self, model):
        self._model = model
        if model.configuration is None:
            model.configuration = {}

    @property
    def _data(self) -> dict:
        return self._model.configuration

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self._data and self._data[key] == value:
            return
        self._data[key] = value
        self._persist()

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._persist()

    def _persist(self) -> None:
        """``model.update()``, keeping out of the store what holds for this run only."""
        with as_stored(self._model):
            self._model.update()

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"ModelConfiguration({self._data!r})"

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def update(self, *args, **kwargs) -> None:
        changes = dict(*args, **kwargs)
        if any(k not in self._data or self._data[k] != v for k, v in changes.items()):
            self._data.update(changes)
            self._persist()

    def resolve(self, key: str, *candidates: Any) -> Any:
        """The first candidate that is not None, else the configured value (dtlpy's AdapterDefaults API)."""
        for value in candidates:
            if value is not None:
                return value
        return self._data.get(key)
