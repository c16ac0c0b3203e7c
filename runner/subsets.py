"""Subset filters computed from the data, for splits DQL cannot express by itself."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import dtlpy as dl

from .errors import ConfigError
from .platform import Platform


def random_split(platform: Platform, dataset: dl.Dataset, seed: int, fractions: Mapping[str, float],
                 base: dict | None = None) -> dict[str, dict]:
    """A seeded random split of the items matching ``base`` into ``fractions`` (summing to 1), as
    ``{"id": {"$in": [...]}}`` filters. An item's subset depends only on the seed and its path in the
    dataset (``filename``), not on its id, which each store makes afresh: the split is the same on
    every run, in every store that holds the same files (another machine, a re-import), and does not
    move when items are added."""
    names = list(fractions) if isinstance(fractions, Mapping) else []
    example = "e.g. subsets.fractions.train=0.7 (in its YAML: fractions: {train: 0.7, validation: 0.15, test: 0.15})"
    for name in names:
        if isinstance(fractions[name], bool) or not isinstance(fractions[name], (int, float)):
            raise ConfigError(f"random_split fraction {name!r} is {fractions[name]!r}, not a number",
                              where=f"subsets.fractions.{name}", fix=example)
    weights = [float(fractions[n]) for n in names]
    if not names or any(w < 0 for w in weights) or abs(sum(weights) - 1.0) > 1e-6:
        raise ConfigError(f"random_split fractions must be non-negative and sum to 1, got {fractions!r}",
                          where="subsets.fractions", fix=example)
    bounds, total = [], 0.0
    for w in weights:
        total += w
        bounds.append(total)
    chosen: dict[str, list[str]] = {n: [] for n in names}
    for page in platform.iter_items(dataset, base):
        for item in page:
            digest = hashlib.sha256(f"{seed}:{item.filename}".encode()).digest()
            u = int.from_bytes(digest[:8], "big") / 2**64
            index = next((i for i, b in enumerate(bounds) if u < b), len(names) - 1)
            chosen[names[index]].append(item.id)
    return {name: {"filter": {"$and": [{"hidden": False}, {"type": "file"}, {"id": {"$in": sorted(ids)}}]},
                   "resource": "items"} for name, ids in chosen.items()}


def of_model(platform: Platform, dataset: dl.Dataset, name: str) -> dict[str, dict]:
    """The subsets model ``name`` was trained with (``metadata.system.subsets``), for scoring a version
    on its own test items: a split chosen afresh could hold items it was trained on."""
    model = platform.get_model(name=name)
    subsets = ((model.metadata or {}).get("system") or {}).get("subsets") or {}
    choose = "choose the subsets to use: subsets=by_dir, subsets=by_tag or subsets=random_split seed=<n>"
    if model.dataset_id != dataset.id:
        from .model_details import with_its_settings

        try:
            own = platform.get_dataset(dataset_id=model.dataset_id).name
        except Exception:  # noqa: BLE001 - the name only adds a hint
            own = None
        raise ConfigError(f"subsets=model: model {name!r} was trained on "
                          f"{f'dataset {own!r}' if own else 'another dataset'}, not {dataset.name!r}, so its subsets "
                          "do not apply here", where="subsets",
                          fix=(f"evaluate it on its own dataset (dataset.name={own}), or " if own else "") + choose
                          + "; to score it on every item of this dataset: subsets=by_dir pipeline.evaluate_subset=null "
                            "(pipeline.predict_subset=null to predict)" + with_its_settings(model, ["evaluate"]))
    if not subsets:
        raise ConfigError(f"subsets=model: model {name!r} records no subsets (metadata.system.subsets)",
                          where="subsets", fix=choose)
    return dict(subsets)
