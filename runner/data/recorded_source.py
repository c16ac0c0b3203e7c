"""The source a dataset was imported from, as the store keeps it: the importer's config (``_target_``
and its arguments), which a run compares with its own ``dataset.source`` and ``check --restore``
imports again from. An import made from Python records one too."""

from __future__ import annotations

import functools
import inspect
import json
import os

from ..source_listing import is_path_key, source_listing


def as_recorded(source: dict | None) -> dict | None:
    """``source`` as the store keeps it (JSON types: tuples become lists), so the two compare; file and
    folder paths absolute, so ``photos``, ``./photos/`` and ``/abs/photos`` are one folder and
    ``photos`` seen from another working folder is another."""
    if not source:
        return None
    plain = json.loads(json.dumps(source, default=os.fspath))
    return {key: os.path.realpath(os.path.expanduser(value)) if is_path_key(key) and isinstance(value, str) else value
            for key, value in plain.items()}


def with_defaults(source: dict | None) -> dict | None:
    """``source`` with the importer's defaults filled in: ``split_dirs: true`` given or left out is the
    same import. As it is when its ``_target_`` cannot be read."""
    if not source or "_target_" not in source:
        return source
    from hydra.utils import get_method

    try:
        signature = inspect.signature(get_method(source["_target_"]))
        bound = signature.bind_partial(**{key: value for key, value in source.items() if key != "_target_"})
    except Exception:  # noqa: BLE001 - an importer gone or renamed: compared as written
        return source
    bound.apply_defaults()
    given = {key: value for key, value in bound.arguments.items() if key != "platform"}
    return as_recorded({"_target_": source["_target_"], **given})


def records_its_source(importer):
    """An importer that, called from Python, records its source as a run's config would (a run records
    its own after it): a later run naming the dataset with another folder is then refused, not merged
    into it, and ``check --restore`` can import it again. A source recorded before is kept."""
    signature = inspect.signature(importer)

    @functools.wraps(importer)
    def importing(platform, *args, **kwargs):
        given = dict(signature.bind(platform, *args, **kwargs).arguments)
        given.pop("platform")
        source = as_recorded({"_target_": f"runner.data.{importer.__name__}", **given})
        listing = source_listing(source)  # before the import, as a run takes it: a file added meanwhile shows next time
        result = importer(platform, *args, **kwargs)
        if platform.import_source(result.dataset) is None:
            if "dataset_name" in signature.parameters:  # named after its folder when not given: as a run names it
                source["dataset_name"] = result.dataset.name
            platform.record_import_source(result.dataset, source)
            if listing is not None:
                platform.store.set_import_listing(result.dataset.id, listing)
        return result

    return importing
