"""Dataloop annotation JSON -> boolean masks and label maps (PIL + base64, no dtlpy item or network).

Two annotation types carry a mask:

* ``segment`` (``dl.Polygon``): ``coordinates`` is a list of rings, each a list of ``{"x", "y"[, "z"]}``
  points in pixels (x = column, y = row, origin at the top-left pixel). dtlpy reads only the first ring;
  here every ring is filled and the union taken (a ring is not taken as a hole).
* ``binary`` (``dl.Segmentation``): ``coordinates`` is a PNG data URI (``"data:image/png;base64,..."``,
  or ``{"data": uri}``) of the item's size. dtlpy writes RGBA with alpha 255 on the mask and reads
  ``alpha > 127``; the same here, and a PNG without alpha is read as "non-zero pixels".

Pixel convention of polygons (PIL ``ImageDraw.polygon``, the rule of ``cv2.fillPoly`` that dtlpy uses to
draw polygons): a vertex ``(x, y)`` names pixel ``(column x, row y)`` and every pixel inside the polygon or
on its outline is filled, so the rectangle with integer corners ``(x0, y0)``, ``(x1, y1)`` covers
``(x1 - x0 + 1) * (y1 - y0 + 1)`` pixels. Masks are laid out as COCO's decoded masks: ``(height, width)``,
row-major. pycocotools' ``frPyObjects`` takes pixel ``(c, r)`` as the unit square with corner ``(c, r)``
and so fills one column and one row fewer for the same rectangle; masks drawn here are not bit-equal to it.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

MASK_TYPES = ("segment", "binary")
_INT32 = np.iinfo(np.int32)


def _check_size(height: int, width: int) -> tuple[int, int]:
    h, w = int(height), int(width)
    if h != height or w != width or h < 1 or w < 1:
        raise ValueError(f"image size must be positive integers, got height={height!r}, width={width!r}")
    return h, w


def _name(annotation: Mapping) -> str:
    """How an error names an annotation: its id, and its label so that unsaved ones (id None) are findable."""
    return f"annotation {annotation.get('id')!r} (label {annotation.get('label')!r})"


def polygon_mask(points_xy: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boolean ``(height, width)`` mask of one polygon ring given as ``(n, 2)`` ``x, y`` rows, ``n >= 3``.

    Pixels inside or on the outline are set (see the module docstring); parts outside the image are clipped."""
    h, w = _check_size(height, width)
    pts = np.asarray(points_xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"polygon points must be an (n, 2) array of x, y, got shape {pts.shape}")
    if len(pts) < 3:
        raise ValueError(f"a polygon needs at least 3 points, got {len(pts)}")
    if not np.isfinite(pts).all():
        raise ValueError("polygon coordinates must be finite")
    image = Image.new("1", (w, h), 0)
    ImageDraw.Draw(image).polygon([(float(x), float(y)) for x, y in pts], fill=1)
    return np.array(image, dtype=bool)


def _rings(annotation: Mapping) -> list[np.ndarray]:
    coordinates = annotation.get("coordinates", annotation.get("data"))
    if not isinstance(coordinates, list) or not coordinates:
        raise ValueError(f"{_name(annotation)}: a segment needs a non-empty list of rings as coordinates")
    if isinstance(coordinates[0], Mapping):  # a single ring written flat
        coordinates = [coordinates]
    rings = []
    for i, ring in enumerate(coordinates):
        try:
            pts = np.array([(p["x"], p["y"]) if isinstance(p, Mapping) else (p[0], p[1]) for p in ring],
                           dtype=np.float64).reshape(-1, 2)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise ValueError(f"{_name(annotation)}: ring {i} is not a list of x, y points ({e})") from None
        if len(pts) < 3:
            raise ValueError(f"{_name(annotation)}: polygon ring {i} has {len(pts)} points, at least 3 needed")
        if not np.isfinite(pts).all():
            raise ValueError(f"{_name(annotation)}: polygon ring {i} has non-finite coordinates")
        rings.append(pts)
    return rings


def decode_binary(annotation: Mapping) -> np.ndarray:
    """The boolean mask of a ``binary`` annotation, in the PNG's own size (``alpha > 127`` as dtlpy)."""
    coordinates = annotation.get("coordinates", annotation.get("data"))
    if isinstance(coordinates, Mapping):
        coordinates = coordinates.get("data")
    if not isinstance(coordinates, str):
        raise ValueError(f"{_name(annotation)}: binary coordinates must be a PNG data URI string")
    payload = coordinates.split(",", 1)[1] if coordinates.startswith("data:") else coordinates
    try:
        with Image.open(io.BytesIO(base64.b64decode(payload, validate=True))) as image:
            image.load()
            if "A" in image.getbands() or "transparency" in image.info:
                return np.array(image.convert("RGBA"))[:, :, 3] > 127
            return np.array(image.convert("L")) > 0
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError) as e:
        raise ValueError(f"{_name(annotation)}: binary coordinates are not a base64 PNG ({e})") from None


def annotation_mask(annotation_json: Mapping, height: int, width: int) -> np.ndarray:
    """Boolean ``(height, width)`` mask of a ``segment`` (union of its rings) or ``binary`` annotation.

    Raises ValueError naming the annotation for a ring of fewer than 3 points, a binary mask whose size is
    not the item's, or another annotation type (boxes, points, classes carry no mask)."""
    h, w = _check_size(height, width)
    kind = annotation_json.get("type")
    if kind == "segment":
        mask = np.zeros((h, w), bool)
        for ring in _rings(annotation_json):
            mask |= polygon_mask(ring, h, w)
        return mask
    if kind == "binary":
        mask = decode_binary(annotation_json)
        if mask.shape != (h, w):
            raise ValueError(f"{_name(annotation_json)}: binary mask is {mask.shape[0]}x{mask.shape[1]} "
                             f"(height x width), the item is {h}x{w}")
        return mask
    raise ValueError(f"{_name(annotation_json)}: type {kind!r} has no mask; expected one of {MASK_TYPES}")


def _check_values(background: int, values: Sequence[int]) -> None:
    for v in (background, *values):
        if int(v) != v or not _INT32.min <= int(v) <= _INT32.max:
            raise ValueError(f"label value {v!r} is not an int32 integer")


def paint_label_map(masks: Sequence[np.ndarray], values: Sequence[int], height: int, width: int,
                    background: int = 0) -> np.ndarray:
    """int32 ``(height, width)`` map: ``background``, then each mask painted with its value in order (a
    later mask overwrites an earlier one where they overlap)."""
    h, w = _check_size(height, width)
    if len(masks) != len(values):
        raise ValueError(f"{len(masks)} masks and {len(values)} values")
    _check_values(background, values)
    out = np.full((h, w), background, dtype=np.int32)
    for mask, value in zip(masks, values, strict=True):
        mask = np.asarray(mask)
        if mask.shape != (h, w):
            raise ValueError(f"mask of shape {mask.shape} on a {h}x{w} map")
        out[mask if mask.dtype == bool else mask != 0] = value
    return out


def label_map(annotations: Sequence[Mapping], label_index: Mapping[str, int], height: int, width: int,
              background: int = 0) -> np.ndarray:
    """int32 ``(height, width)`` semantic map of mask annotations: ``background`` where none is, else
    ``label_index[label]`` of the last annotation (in list order) covering the pixel: later annotations are
    painted over earlier ones. An annotation whose label is not in ``label_index`` raises ValueError."""
    h, w = _check_size(height, width)
    unknown = [a for a in annotations if a.get("label") not in label_index]
    if unknown:
        raise ValueError(f"{len(unknown)} annotation(s) with labels not in label_index, e.g. {_name(unknown[0])}")
    values = [label_index[a["label"]] for a in annotations]
    _check_values(background, values)
    out = np.full((h, w), background, dtype=np.int32)
    for annotation, value in zip(annotations, values, strict=True):  # one mask at a time in memory
        out[annotation_mask(annotation, h, w)] = value
    return out
