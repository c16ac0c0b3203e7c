"""A classification folder: ``<folder>/<label>/<image>``, or ``<folder>/<split>/<label>/<image>``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import dtlpy as dl

from ..errors import DataImportError
from ..platform.local.platform import LocalPlatform
from .importing import (
    ImportRecord,
    ImportResult,
    annotation_json,
    is_hidden,
    log_summary,
    read_image,
    require_folder,
    store_records,
)

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# split folder name -> the tag its items get (``val`` is the common short form of ``validation``)
SPLIT_TAGS = {"train": "train", "validation": "validation", "val": "validation", "test": "test"}


def _subdirs(folder: Path) -> list[Path]:
    """The folders in ``folder``; files there belong to no class and are reported."""
    for path in sorted(folder.iterdir()):
        if path.is_file() and not is_hidden(path):
            logger.warning("skipping %s: it is not inside a class folder", path)
    return sorted(p for p in folder.iterdir() if p.is_dir() and not is_hidden(p))


def _class_images(class_dir: Path) -> list[Path]:
    """The images directly in a class folder; anything else is reported and left out: folders in it
    are not read (one level of class folders), nor is a class folder without images (its label is
    still added)."""
    images = []
    for path in sorted(class_dir.iterdir()):
        if is_hidden(path):
            continue
        if path.is_dir():
            logger.warning("skipping %s: a folder inside the class folder %s is not read (only images directly "
                           "in <label>/ or <split>/<label>/ are)", path, class_dir.name)
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            images.append(path)
        else:
            logger.warning("skipping %s: not an image file (extensions: %s)", path, ", ".join(sorted(IMAGE_EXTENSIONS)))
    if not images:
        logger.warning("the class folder %s holds no images: its label %r is added to the dataset all the same",
                       class_dir, class_dir.name)
    return images


def import_image_folder(platform: LocalPlatform, folder: str | os.PathLike, dataset_name: str | None = None,
                        split_dirs: bool = True) -> ImportResult:
    """One ``class`` annotation per image, its label the class folder's name.

    With ``split_dirs`` and top-level folders all named train/validation/val/test, those are splits:
    items go to ``/<split>/<label>/<image>`` (``val`` stored as ``validation``) tagged
    ``metadata.system.tags.<split>``, as an upload of the folder lays them out on Dataloop; otherwise
    items go to ``/<label>/<image>``.
    """
    folder = Path(folder)
    require_folder(folder, "pass as folder (dataset.folder) the folder holding one folder per class")
    top = _subdirs(folder)
    splits = [p for p in top if p.name.lower() in SPLIT_TAGS]
    if split_dirs and splits and len(splits) != len(top):
        raise DataImportError(f"{folder} mixes split folders and class folders",
                              where=", ".join(p.name for p in top),
                              fix="put every class folder under a split folder, or pass split_dirs=False")
    groups = [(p.name, _subdirs(p)) for p in splits] if split_dirs and splits else [(None, top)]

    records, labels = [], []
    for split, class_dirs in groups:
        for class_dir in class_dirs:
            label = class_dir.name
            if label not in labels:
                labels.append(label)
            for path in _class_images(class_dir):
                info = read_image(path)  # raises naming the file; nothing is stored yet
                metadata = {"system": {"tags": {SPLIT_TAGS[split.lower()]: True}}} if split else {}
                records.append(ImportRecord(
                    filename=f"/{SPLIT_TAGS[split.lower()]}/{label}/{path.name}" if split else f"/{label}/{path.name}",
                    mimetype=info.mimetype, width=info.width,
                    height=info.height, source=path, metadata=metadata,
                    annotations=[annotation_json(dl.Classification(label=label))]))
    if not records:
        raise DataImportError(f"no images found in {folder}", where=str(folder),
                              fix="lay the images out as <folder>/<label>/<image> or <folder>/<split>/<label>/<image>")
    result = store_records(platform, dataset_name or folder.name, labels, records)
    log_summary(logger, str(folder), result)
    return result


def import_unlabeled_images(platform: LocalPlatform, folder: str | os.PathLike,
                            dataset_name: str | None = None) -> ImportResult:
    """Every image under ``folder`` (sub-folders included), without annotations: new data to predict
    on. Items keep their path under the folder (``/<sub>/<image>``); the dataset has no labels."""
    folder = Path(folder)
    require_folder(folder, "pass as folder (dataset.folder) the folder holding the images")
    records = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_dir() or is_hidden(path, folder):
            continue
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            logger.warning("skipping %s: not an image file (extensions: %s)", path, ", ".join(sorted(IMAGE_EXTENSIONS)))
            continue
        info = read_image(path)  # raises naming the file; nothing is stored yet
        records.append(ImportRecord(filename=f"/{relative.as_posix()}", mimetype=info.mimetype, width=info.width,
                                    height=info.height, source=path))
    if not records:
        raise DataImportError(f"no images found in {folder}", where=str(folder),
                              fix=f"put the images (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))}) in the folder")
    result = store_records(platform, dataset_name or folder.name, [], records)
    log_summary(logger, str(folder), result)
    return result
