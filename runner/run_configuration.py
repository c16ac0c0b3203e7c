"""A stored version's configuration changed for one run that does not train it.

Such a run (evaluate, predict, embed) uses the configuration the version was trained with, but for
two kinds of keys: the run settings (``batch_size``, ``prepare_in``, ``prepare_workers``: how the run
goes), and the keys its command line sets (``adapter.configuration.score_threshold=0.5``), which is how
an inference setting is tried, or swept, without training again. Both hold for this run only: the
entity carries them, and what is written back to the store (an adapter that sets a configuration key
and updates its model) keeps the version's own values for them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from typing import Any

RUN_ONLY = "runner_run_only_configuration"  # entity attribute: top-level key -> the version's own value
CHANGED = "runner_configuration_changes"  # entity attribute: dotted key -> this run's value (command line)
_ABSENT = object()
_PREFIXES = ("adapter.configuration.", "model.configuration.")


def given_keys(overrides: Iterable[str]) -> list[tuple[str, bool]]:
    """(dotted configuration key, deleted) of each ``adapter.configuration.*`` / ``model.configuration.*``
    command-line override (``+`` adds, ``~`` deletes)."""
    keys = []
    for override in overrides:
        key = override.split("=", 1)[0]
        bare = key.lstrip("+~")
        for prefix in _PREFIXES:
            if bare.startswith(prefix) and len(bare) > len(prefix):
                keys.append((bare[len(prefix):], key.startswith("~")))
    return keys


def apply_for_this_run(model, values: Mapping[str, Any], keys: Iterable[tuple[str, bool]],
                       recorded: bool = True) -> dict[str, tuple]:
    """Set each key to its value in ``values`` (the run's composed configuration) on the model
    entity's configuration, for this run only; returns ``{key: (the version's value, this run's)}``
    of those that change (``_ABSENT`` where there is none). ``recorded``: an evaluation records them
    (``configuration_changes``); a run setting is not (how the run goes, not what it scores)."""
    configuration = model.configuration
    held: dict[str, Any] = getattr(model, RUN_ONLY, None) or {}
    changes = {}
    for key, deleted in keys:
        path = key.split(".")
        before = _get(configuration, path)
        after = _ABSENT if deleted else _get(values, path)
        if _same(before, after):
            continue
        if path[0] not in held:  # (the sentinel itself, not a deep copy of it)
            held[path[0]] = copy.deepcopy(configuration[path[0]]) if path[0] in configuration else _ABSENT
        _set(configuration, path, after)
        changes[key] = (before, after)
    setattr(model, RUN_ONLY, held)
    if recorded:
        setattr(model, CHANGED, {**(getattr(model, CHANGED, None) or {}),
                                 **{key: None if after is _ABSENT else after for key, (_b, after) in changes.items()}})
    return changes


def to_store(model, configuration: dict) -> dict:
    """The configuration to write back to the store: this run's values replaced by the version's."""
    held = getattr(model, RUN_ONLY, None)
    if not held:
        return configuration
    stored = dict(configuration)
    for key, own in held.items():
        if own is _ABSENT:
            stored.pop(key, None)
        else:
            stored[key] = copy.deepcopy(own)
    return stored


def carried(model) -> dict | None:
    """What a shard worker needs to see the run's configuration on its own copy of the entity
    (picklable); None when the run changed nothing."""
    held = getattr(model, RUN_ONLY, None)
    if not held:
        return None
    return {"configuration": copy.deepcopy(model.configuration),
            "held": {k: (None if v is _ABSENT else v, v is _ABSENT) for k, v in held.items()},
            "changed": changed_for_this_run(model)}


def carry_over(model, this_run: dict | None) -> None:
    """On a worker's entity: the configuration the run's entity had (:func:`carried`)."""
    if not this_run:
        return
    model.configuration = copy.deepcopy(this_run["configuration"])
    setattr(model, RUN_ONLY, {k: _ABSENT if absent else v for k, (v, absent) in this_run["held"].items()})
    setattr(model, CHANGED, dict(this_run["changed"]))


@contextmanager
def as_stored(model):
    """The entity's configuration holds the version's own values while it is written back."""
    held = getattr(model, RUN_ONLY, None)
    if not held:
        yield
        return
    this_run = model.configuration
    model.configuration = to_store(model, this_run)
    try:
        yield
    finally:
        model.configuration = this_run


def changed_for_this_run(model) -> dict[str, Any]:
    """The keys this run's command line changed, with this run's values (None: deleted)."""
    return dict(getattr(model, CHANGED, None) or {})


def with_changes(changes: dict | None) -> str:
    """``min_score=0.9 image_size=4``: the keys a run changed, as its command line set them."""
    return " ".join(f"{key}={value}" for key, value in (changes or {}).items())


def shown(value: Any) -> str:
    return "<not set>" if value is _ABSENT else repr(value) if isinstance(value, str) else str(value)


def _get(tree: Mapping, path: list[str]) -> Any:
    node: Any = tree
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return _ABSENT
        node = node[part]
    return node


def _set(tree: dict, path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        node[part] = child = dict(child) if isinstance(child, Mapping) else {}
        node = child
    if value is _ABSENT:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = copy.deepcopy(value)


def _same(a: Any, b: Any) -> bool:
    return a is b or (a is not _ABSENT and b is not _ABSENT and a == b)
