"""A dataset's annotations as one file to hand on, for ``python -m runner.store export --format``:
a CSV with a row per annotation, or a COCO instances JSON (boxes, polygons, masks; a prediction's
confidence as its ``score``). Both read the item JSON an export folder holds (``items_with_annotations``)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from .configuration import is_number
from .metrics.rasterize import annotation_mask, decode_binary
from .platform.annotation_json import model_stamp

CSV_COLUMNS = ("item_id", "filename", "annotation_id", "type", "label", "confidence", "model",
               "left", "top", "right", "bottom", "coordinates")


def _box(annotation: dict) -> tuple[float, float, float, float] | None:
    """(left, top, right, bottom) of a ``box``: its first two points, whichever way round."""
    points = annotation.get("coordinates") or []
    if annotation.get("type") != "box" or len(points) < 2:
        return None
    (x0, y0), (x1, y1) = ((p.get("x"), p.get("y")) for p in points[:2])
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def csv_text(items: Iterable[dict]) -> str:
    """One row per annotation (an item without any: one row, its annotation cells empty, so that a
    reader sees every item exported). Box corners get their own columns; other shapes' coordinates
    are written as their JSON, except a mask's PNG, which only the other formats carry."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        annotations = item.get("annotations") or []
        if not annotations:
            writer.writerow([item["id"], item["filename"], *[""] * (len(CSV_COLUMNS) - 2)])
        for annotation in annotations:
            kind = annotation.get("type")
            stamp = model_stamp(annotation)
            box = _box(annotation)
            coordinates = annotation.get("coordinates")
            shown = "" if kind in ("class", "box", "binary") or coordinates is None else json.dumps(coordinates)
            writer.writerow([item["id"], item["filename"], annotation.get("id", ""), kind, annotation.get("label", ""),
                             stamp.get("confidence", ""), stamp.get("name", ""),
                             *(box if box else [""] * 4), shown])
    return out.getvalue()


def rle_encode(mask: np.ndarray) -> list[int]:
    """Bool mask -> uncompressed COCO RLE counts: runs down the columns (Fortran order), the first a
    run of background (0 when the first pixel is foreground); ``runner.data.coco.rle_decode`` reverses it."""
    flat = np.asarray(mask, bool).flatten(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat.size and flat[0] else runs


def _bbox_of(mask: np.ndarray) -> list[float]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]


def _polygon_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)


def _geometry(annotation: dict) -> dict | None:
    """COCO's bbox, area and segmentation of a box, polygon or mask; None for other types."""
    kind = annotation.get("type")
    if kind == "box":
        left, top, right, bottom = _box(annotation)
        return {"bbox": [left, top, right - left, bottom - top], "area": (right - left) * (bottom - top)}
    if kind == "segment":
        rings = [np.asarray([[p["x"], p["y"]] for p in ring], float) for ring in annotation.get("coordinates") or []]
        rings = [ring for ring in rings if len(ring) >= 3]
        if not rings:
            return None
        every = np.concatenate(rings)
        low, high = every.min(axis=0), every.max(axis=0)
        return {"bbox": [float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])],
                "area": sum(_polygon_area(ring) for ring in rings),
                "segmentation": [ring.flatten().tolist() for ring in rings]}
    if kind == "binary":
        return _mask_geometry(decode_binary(annotation))
    return None


def _mask_geometry(mask: np.ndarray) -> dict:
    return {"bbox": _bbox_of(mask), "area": int(mask.sum()),
            "segmentation": {"counts": rle_encode(mask), "size": [int(mask.shape[0]), int(mask.shape[1])]}}


def coco_json(items: Iterable[dict], labels: Sequence[str], polygons_as_rle: bool = False
              ) -> tuple[dict, Counter, Counter]:
    """A COCO instances document, its categories the dataset's labels in order (ids from 1); an item
    imported from COCO keeps its image id, and an annotation its COCO ``area``. Returns it with the
    count of annotations written per type and of those left out per type (classes, points and the
    like have no COCO instance form). ``polygons_as_rle``: each polygon as the mask the runner draws
    of it (outline pixels in, as Dataloop draws them), which COCO's own polygon fill leaves out."""
    categories = {label: i for i, label in enumerate(dict.fromkeys(labels), start=1)}
    images, annotations = [], []
    written, left_out = Counter(), Counter()
    kept_ids = set()
    pending = []  # items without a COCO id of their own: numbered after those with one
    for item in items:
        coco_id = (((item.get("metadata") or {}).get("user") or {}).get("coco") or {}).get("image_id")
        if isinstance(coco_id, int) and coco_id not in kept_ids:
            kept_ids.add(coco_id)
        else:
            coco_id = None
        pending.append((coco_id, item))
    next_id = max(kept_ids, default=0) + 1
    for coco_id, item in pending:
        if coco_id is None:
            coco_id, next_id = next_id, next_id + 1
        system = (item.get("metadata") or {}).get("system") or {}
        images.append({"id": coco_id, "file_name": item["filename"].lstrip("/"),
                       "width": system.get("width"), "height": system.get("height")})
        for annotation in item.get("annotations") or []:
            kind = annotation.get("type")
            if polygons_as_rle and kind == "segment" and system.get("width") and system.get("height"):
                geometry = _mask_geometry(annotation_mask(annotation, system["height"], system["width"]))
            else:
                geometry = _geometry(annotation)
            if geometry is None:
                left_out[kind] += 1
                continue
            label = annotation.get("label")
            if label not in categories:
                categories[label] = len(categories) + 1
            user = (annotation.get("metadata") or {}).get("user") or {}
            entry = {"id": len(annotations) + 1, "image_id": coco_id, "category_id": categories[label],
                     "iscrowd": int(bool(user.get("iscrowd"))), **geometry}
            imported_area = (user.get("coco") or {}).get("area")
            if is_number(imported_area, finite=True):  # COCOeval's area ranges read it: the file's, kept
                entry["area"] = imported_area
            stamp = model_stamp(annotation)
            if stamp:
                entry["score"] = stamp.get("confidence")
                entry["model"] = stamp.get("name")
            annotations.append(entry)
            written[kind] += 1
    document = {"images": images, "annotations": annotations,
                "categories": [{"id": i, "name": name} for name, i in categories.items()]}
    return document, written, left_out
