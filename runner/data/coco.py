"""COCO instances JSON (``images``, ``annotations``, ``categories``) with its image folder."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path, PurePosixPath
from typing import NoReturn

import dtlpy as dl
import numpy as np

from ..configuration import is_number
from ..errors import DataImportError
from ..platform.local.platform import LocalPlatform
from ..text_table import first_few
from .importing import (
    ImportRecord,
    ImportResult,
    UnreadableFiles,
    annotation_json,
    log_summary,
    palette_dataset,
    read_image,
    require_folder,
    store_records,
)
from .recorded_source import records_its_source

logger = logging.getLogger(__name__)


def rle_decode(counts: list[int], height: int, width: int) -> np.ndarray:
    """Uncompressed COCO RLE -> bool mask. Runs alternate background/foreground, starting with
    background, and run down the columns (Fortran order)."""
    runs = np.asarray(counts, dtype=np.int64)
    if runs.ndim != 1 or (runs < 0).any() or int(runs.sum()) != height * width:
        raise ValueError(f"the runs must be non-negative and add up to height*width = {height * width}")
    values = np.arange(len(runs)) % 2 == 1
    return np.repeat(values, runs).reshape(width, height).T


def _describe(section: str, index: int, entry) -> str:
    text = json.dumps(entry)
    return f"{section}[{index}]: {text if len(text) <= 200 else text[:200] + ' ...'}"


@records_its_source
def import_coco(platform: LocalPlatform, annotation_file: str | os.PathLike, images_dir: str | os.PathLike,
                dataset_name: str | None = None, dir: str = "/") -> ImportResult:
    """Items ``<dir>/<file_name>``; per annotation a ``box`` from ``bbox``, a ``segment`` per polygon
    and a ``binary`` mask from an uncompressed RLE (an object with both bbox and segmentation gets
    both). COCO ids and ``area`` are kept in ``metadata.user.coco``; ``iscrowd`` in ``metadata.user.iscrowd``."""
    annotation_file, images_dir = Path(annotation_file), Path(images_dir)

    def fail(what: str, where: str | None = None, fix: str | None = None) -> NoReturn:
        raise DataImportError(f"{annotation_file}: {what}", where=f"{annotation_file}: {where}" if where else
                              str(annotation_file), fix=fix or "fix the COCO file, then import again")

    # the paths first: a folder for the file, or a missing images folder, is one error, not a JSON
    # error or one per image file
    if annotation_file.is_dir():
        jsons = sorted(str(p) for p in annotation_file.glob("*.json"))
        raise DataImportError(f"{annotation_file} is a folder, not a file", where=str(annotation_file),
                              fix="pass the COCO JSON file as annotation_file (dataset.annotation_file) and the folder "
                                  "of its images as images_dir (dataset.images_dir)"
                                  + (f"; the JSON files in {annotation_file}: {first_few(jsons)}" if jsons else ""))
    if not annotation_file.exists():
        raise DataImportError(f"no file {annotation_file}", where=str(annotation_file),
                              fix="pass the path of the COCO JSON file as annotation_file (dataset.annotation_file)")
    images_dir_fix = (f"pass as images_dir (dataset.images_dir) the folder that the file_name entries of "
                      f"{annotation_file} are relative to")
    require_folder(images_dir, images_dir_fix, name="images folder")
    try:
        coco = json.loads(annotation_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        fail(f"cannot read it as JSON: {err}")
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list) for k in ("images", "annotations", "categories")):
        fail("not COCO JSON: it needs the lists 'images', 'annotations' and 'categories'",
             fix="pass a COCO instances file (such as instances_train2017.json)")
    root = PurePosixPath(dir)
    if not root.is_absolute():
        fail(f"dir must be an absolute remote path like '/' or '/train', not {dir!r}")

    categories: dict[int, str] = {}
    for i, cat in enumerate(coco["categories"]):
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or not isinstance(cat.get("name"), str):
            fail("a category needs an integer 'id' and a string 'name'", _describe("categories", i, cat))
        categories[cat["id"]] = cat["name"]
    labels = list(dict.fromkeys(categories.values()))

    ids: set[int] = set()
    for i, image in enumerate(coco["images"]):
        if not isinstance(image, dict) or not isinstance(image.get("id"), int) or not isinstance(image.get("file_name"), str):
            fail("an image needs an integer 'id' and a string 'file_name'", _describe("images", i, image))
        if image["id"] in ids:
            fail(f"image id {image['id']} appears twice", _describe("images", i, image))
        ids.add(image["id"])
    missing = [i for i, image in enumerate(coco["images"]) if not (images_dir / image["file_name"]).is_file()]
    if missing:
        first = coco["images"][missing[0]]
        path = images_dir / first["file_name"]
        if len(missing) == len(coco["images"]) > 1:  # not one of them there: the wrong folder, most likely
            fail(f"none of its {len(missing)} image files is in {images_dir}, e.g. {path}",
                 _describe("images", missing[0], first), fix=images_dir_fix)
        more = (f" ({len(missing)} of its {len(coco['images'])} image files are missing: "
                f"{first_few([coco['images'][i]['file_name'] for i in missing])})") if len(missing) > 1 else ""
        fail(f"the image file {path} does not exist{more}", _describe("images", missing[0], first),
             fix=f"put the missing images under {images_dir}, or remove their entries")

    images: dict[int, tuple[ImportRecord, int, int]] = {}
    unreadable = UnreadableFiles()
    for i, image in enumerate(coco["images"]):
        path = images_dir / image["file_name"]
        info = unreadable.read(read_image, path)
        if info is None:
            continue
        if (image.get("width"), image.get("height")) not in ((None, None), (info.width, info.height)):
            fail(f"{path} is {info.width}x{info.height}, its entry says {image.get('width')}x{image.get('height')}",
                 _describe("images", i, image))
        record = ImportRecord(filename=str(root / PurePosixPath(image["file_name"])), mimetype=info.mimetype,
                              width=info.width, height=info.height, source=path, original_name=path.name,
                              metadata={"user": {"coco": {"image_id": image["id"]}}})
        images[image["id"]] = record, info.width, info.height
    unreadable.check()  # nothing is stored before every image was read

    palette = None  # binary masks need their label colours; built on the first one
    outside: list[str] = []  # boxes reaching past their image: imported as given, named in one warning
    for i, ann in enumerate(coco["annotations"]):
        where = _describe("annotations", i, ann)
        if not isinstance(ann, dict):
            fail("an annotation must be an object", where)
        if ann.get("image_id") not in images:
            fail(f"annotation refers to unknown image id {ann.get('image_id')!r}", where)
        if ann.get("category_id") not in categories:
            fail(f"annotation refers to unknown category id {ann.get('category_id')!r}", where)
        record, width, height = images[ann["image_id"]]
        label = categories[ann["category_id"]]
        user = {"coco": {"annotation_id": ann.get("id"), "category_id": ann["category_id"]}}
        if is_number(ann.get("area"), finite=True):  # COCOeval's area ranges read it (the mask's area), not the box's
            user["coco"]["area"] = ann["area"]
        if ann.get("iscrowd"):
            user["iscrowd"] = ann["iscrowd"]
        definitions = []
        bbox, segmentation = ann.get("bbox"), ann.get("segmentation")
        if bbox is not None:
            if not isinstance(bbox, list) or len(bbox) != 4 or not all(is_number(v, finite=True) for v in bbox) or min(bbox[2:]) < 0:
                fail("bbox must be 4 numbers [x, y, width, height] with width, height >= 0", where)
            x, y, w, h = bbox
            if x + w > width + 1 or y + h > height + 1 or x < -1 or y < -1:  # a pixel's rounding aside
                outside.append(f"annotations[{i}] bbox {bbox} on {width}x{height}")
            definitions.append(dl.Box(left=x, top=y, right=x + w, bottom=y + h, label=label))
        if isinstance(segmentation, list):
            for polygon in segmentation:
                if (not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2
                        or not all(is_number(v, finite=True) for v in polygon)):
                    fail("a segmentation polygon must be a flat list of at least 3 x, y pairs", where)
                definitions.append(dl.Polygon(geo=np.asarray(polygon, dtype=float).reshape(-1, 2), label=label))
        elif isinstance(segmentation, dict):
            counts, size = segmentation.get("counts"), segmentation.get("size")
            if isinstance(counts, str):
                fail("compressed RLE (a 'counts' string) is not supported", where,
                     fix="convert the mask to uncompressed RLE (a list of counts) or polygons")
            if size != [height, width]:
                fail(f"RLE size {size!r} is not the image's [height, width] = {[height, width]}", where)
            try:
                mask = rle_decode(counts, height, width)
            except (TypeError, ValueError) as err:
                fail(f"bad RLE counts: {err}", where)
            palette = palette or palette_dataset(platform, dataset_name or annotation_file.stem, labels)
            definitions.append(dl.Segmentation(geo=mask, label=label))
        elif segmentation is not None:
            fail("segmentation must be a list of polygons or an RLE object", where)
        if not definitions:
            fail("annotation has neither bbox nor segmentation", where)
        record.annotations.extend(annotation_json(d, metadata={"user": user}, palette=palette) for d in definitions)

    if outside:
        logger.warning("%d bbox(es) of %s reach past their image (imported as given; they score as such): %s",
                       len(outside), annotation_file, first_few(outside, 3))
    records = [record for record, _w, _h in images.values()]
    result = store_records(platform, dataset_name or annotation_file.stem, labels, records)
    log_summary(logger, str(annotation_file), result)
    return result
