"""Dataloop annotation JSON for a still annotation, as ``dl.Annotation.to_json()`` builds it.

``to_json`` spends three quarters of its time in ``attr.asdict`` walking every one of the
annotation's ~36 fields through a filter to keep five. Storing predictions calls it once per
annotation, on the writer thread that shares the interpreter lock with the model, so this builds
the same dict directly. Video annotations (frames, times) take dtlpy's own path; a test holds the
two outputs equal, key order included, for every annotation type the runner stores.
"""

from __future__ import annotations

from collections.abc import Mapping

import attr
import dtlpy as dl

_STATUS_CLEAR = dl.AnnotationStatus.CLEAR
_SCALARS = frozenset((str, int, float, bool, type(None)))


def _plain(value):
    """``attr.asdict``'s copy of a field value: containers copied (tuples and sets as lists), attrs
    instances as dicts, anything else as it is."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if attr.has(type(value)):
        return attr.asdict(value)
    return value


def annotation_to_json(annotation: dl.Annotation) -> dict:
    if (annotation.frames.actual_keys() or (annotation.end_time and annotation.end_time > 0)
            or (annotation.end_frame and annotation.end_frame > 0)):
        return annotation.to_json()
    definition = annotation.annotation_definition
    data = {"id": annotation.id, "url": annotation.url, "creator": annotation.creator,
            "metadata": _plain(annotation.metadata), "hash": annotation.hash}
    item_id = annotation.item_id
    if item_id is None and annotation._item is not None:
        item_id = annotation._item.id
    data["itemId"] = item_id
    data["item"] = annotation.item_url
    data["label"] = definition.label
    data["dataset"] = annotation.dataset_url
    data["createdAt"] = annotation.created_at
    data["updatedBy"] = annotation.updated_by
    data["updatedAt"] = annotation.updated_at
    data["source"] = annotation.source
    if definition.description is not None:
        data["description"] = definition.description
    if annotation.label_suggestions:
        data["labelSuggestions"] = annotation.label_suggestions
    if annotation._item is not None and annotation.dataset_id is None:
        data["datasetId"] = annotation._item.dataset_id
    else:
        data["datasetId"] = annotation.dataset_id
    data["type"] = annotation.type
    if annotation.type != "class":
        data["coordinates"] = annotation.coordinates

    system = data["metadata"].get("system")
    if system is None:
        system = data["metadata"]["system"] = {}
    if annotation.automated is not None:
        system["automated"] = annotation.automated
    if annotation.object_id is not None:
        system["objectId"] = annotation.object_id
    if annotation.status is not None:
        system["status"] = annotation.status if annotation.status != _STATUS_CLEAR else None
    if isinstance(definition, dl.entities.Description):
        system["system"] = True
    attributes = definition.attributes
    system["attributes"] = attributes if attributes is not None else {}
    data["attributes"] = annotation._recipe_1_attributes
    return data


def missing_key(data: Mapping) -> str | None:
    """``type`` or ``label`` when annotation JSON lacks it (or holds no non-empty string there), else None."""
    return next((key for key in ("type", "label") if not isinstance(data.get(key), str) or not data[key]), None)


def completed(data: dict) -> dict:
    """Annotation JSON given by hand (an upload of a dict, an export's file) with the keys that
    ``dl.Annotation.from_json`` reads without a default, so what is stored can be listed again;
    ValueError if it has no type or label."""
    key = missing_key(data)
    if key is not None:
        raise ValueError(f"annotation {data.get('id') or ''} has no {key}".replace("  ", " "))
    metadata = data.get("metadata")
    data["metadata"] = metadata = dict(metadata) if isinstance(metadata, dict) else {}
    metadata["system"] = dict(metadata.get("system") or {})
    data.setdefault("creator", None)
    data.setdefault("updatedBy", data["creator"])
    data.setdefault("updatedAt", data.get("createdAt"))
    data.setdefault("coordinates", None)
    return data
