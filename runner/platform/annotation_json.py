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

from ..configuration import is_number

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


def _point(value) -> bool:
    return isinstance(value, Mapping) and is_number(value.get("x")) and is_number(value.get("y"))


def _box(value) -> bool:  # Box.from_coordinates: the first two points (a third entry is the angle)
    return isinstance(value, list) and len(value) >= 2 and _point(value[0]) and _point(value[1])


def _ring(value) -> bool:  # Polygon/Polyline.from_json read ring 0 only; an empty one (dl.Polygon(geo=[])) reads back
    return isinstance(value, list) and bool(value) and isinstance(value[0], list) and all(_point(p) for p in value[0])


def _png(value) -> bool:  # Segmentation.from_coordinates drops the 22 characters of this prefix and decodes
    if isinstance(value, Mapping):
        value = value.get("data")
    return isinstance(value, str) and value.startswith("data:image/png;base64,")


def _ellipse(value) -> bool:
    return isinstance(value, Mapping) and _point(value.get("center")) and \
        all(is_number(value.get(k)) for k in ("rx", "ry", "angle"))


_CUBE_CORNERS = tuple(f"{side}_{corner}" for side in ("front", "back") for corner in ("bl", "br", "tl", "tr"))


def _cube(value) -> bool:
    return isinstance(value, Mapping) and is_number(value.get("angle")) and all(_point(value.get(k)) for k in _CUBE_CORNERS)


def _cube_3d(value) -> bool:
    return isinstance(value, Mapping) and all(isinstance(value.get(k), Mapping) for k in ("position", "scale", "rotation"))


def _keys(*keys):
    """A check that ``coordinates`` is an object holding ``keys`` (not null)."""
    return lambda value: isinstance(value, Mapping) and all(value.get(k) is not None for k in keys)


# type -> (check of ``coordinates``, what it must hold): what dtlpy's Annotation.from_json needs to read
# an annotation of that type back (entities/annotation_definitions/*.py, via
# FrameAnnotation.json_to_annotation_definition, which passes ``coordinates`` only, never ``data``).
# Types not here need none: class, text (free text), comparison, and the types dtlpy reads as
# UndefinedAnnotationType (text_mark, item_description, ref_image, ...).
_COORDINATES = {
    "box": (_box, "a list of two points [{x, y}, {x, y}]"),
    "segment": (_ring, "a list of rings, the first a list of points [[{x, y}, ...]]"),
    "polyline": (_ring, "a list of lines, the first a list of points [[{x, y}, ...]]"),
    "point": (_point, "a point {x, y}"),
    "binary": (_png, "a PNG data URL 'data:image/png;base64,...' (or {data: that URL})"),
    "ellipse": (_ellipse, "{center: {x, y}, rx, ry, angle}"),
    "cube": (_cube, "{angle, " + ", ".join(f"{k}: {{x, y}}" for k in _CUBE_CORNERS) + "}"),
    "cube_3d": (_cube_3d, "{position: {...}, scale: {...}, rotation: {...}}"),
    "note": (lambda value: isinstance(value, Mapping) and _box(value.get("box")), "{box: [{x, y}, {x, y}], note: {...}}"),
    "pose": (_keys("templateId", "instanceId"), "{templateId, instanceId}"),
    "gis": (_keys("wgs84_geo_coordinates"), "{wgs84_geo_coordinates, geo_type}"),
    "subtitle": (_keys("text"), "{text}"),
}


# every annotation type dtlpy names
ANNOTATION_TYPES = tuple(sorted(t.value for t in dl.AnnotationType))


def missing_key(data: Mapping) -> str | None:
    """``type`` or ``label`` when annotation JSON lacks it (or holds no non-empty string there);
    ``coordinates`` when its type needs coordinates and they are missing or not in the shape
    dtlpy's ``from_json`` reads (see :func:`coordinates_expected`); else None."""
    key = next((key for key in ("type", "label") if not isinstance(data.get(key), str) or not data[key]), None)
    if key is None:
        check = _COORDINATES.get(data["type"])
        if check is not None and not check[0](data.get("coordinates")):
            return "coordinates"
    return key


def coordinates_expected(annotation_type: str) -> str | None:
    """What ``coordinates`` must hold for an annotation of this type, for messages; None if it needs none."""
    check = _COORDINATES.get(annotation_type)
    return None if check is None else check[1]


def missing_text(data: Mapping, key: str) -> str:
    """``key`` (from :func:`missing_key`) as an error message says what is missing: 'no label',
    "no usable coordinates for its type 'box' (a list of two points ...)"."""
    if key != "coordinates":
        given = data.get(key)
        if given not in (None, ""):  # e.g. dl.Classification(label=7): Dataloop labels are strings
            return f"a {key} that is not a string ({given!r}; e.g. {key}={str(given)!r})"
        return f"no {key}"
    return f"no usable coordinates for its type {data['type']!r} ({coordinates_expected(data['type'])})"


def completed(data: dict) -> dict:
    """Annotation JSON given by hand (an upload of a dict, an export's file) with the keys that
    ``dl.Annotation.from_json`` reads without a default, so what is stored can be listed again;
    ValueError if it has no type or label, or no coordinates dtlpy can read for its type."""
    key = missing_key(data)
    if key is not None:
        raise ValueError(f"annotation {data.get('id') or ''} has {missing_text(data, key)}".replace("  ", " "))
    metadata = data.get("metadata")
    data["metadata"] = metadata = dict(metadata) if isinstance(metadata, dict) else {}
    metadata["system"] = dict(metadata.get("system") or {})
    data.setdefault("creator", None)
    data.setdefault("updatedBy", data["creator"])
    data.setdefault("updatedAt", data.get("createdAt"))
    data.setdefault("coordinates", None)
    return data


def model_stamp(annotation: Mapping) -> dict:
    """A prediction's stamp, ``metadata.system.model`` (model_id, name, confidence); empty for ground truth."""
    return ((annotation.get("metadata") or {}).get("system") or {}).get("model") or {}
