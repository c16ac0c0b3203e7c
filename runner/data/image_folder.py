"""A classification folder: ``<folder>/<label>/<file>``, or ``<folder>/<split>/<label>/<file>``, and
a folder of files without labels; of images (``import_image_folder``) or of text files
(``import_text_folder``: one ``.txt`` file per item, as Dataloop's text items)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import dtlpy as dl

from ..errors import DataImportError
from ..platform.local.platform import LocalPlatform
from .importing import (
    ImportRecord,
    ImportResult,
    UnreadableFiles,
    annotation_json,
    is_hidden,
    log_summary,
    read_image,
    require_folder,
    store_records,
)
from .recorded_source import records_its_source

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
TEXT_EXTENSIONS = {".txt"}


@dataclass(frozen=True)
class FileKind:
    """The files a folder importer takes: images (decoded, for their size) or text (read as UTF-8)."""

    name: str  # "image", "text file"
    extensions: set[str]

    def read(self, path: Path) -> tuple[str, int | None, int | None]:
        """(mimetype, width, height), once the file has been read whole; an unreadable one raises
        naming it, before anything is stored."""
        if self is IMAGE:
            info = read_image(path)
            return info.mimetype, info.width, info.height
        try:
            path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise DataImportError(f"cannot read the text file {path} as UTF-8: {err}", where=str(path),
                                  fix="save it as UTF-8 (or remove it), then import again") from err
        return "text/plain", None, None

    def skipped(self, path: Path) -> None:
        what = self.name if self.name.endswith("file") else f"{self.name} file"
        logger.warning("skipping %s: not %s (extensions: %s)", path, _a(what), ", ".join(sorted(self.extensions)))


def _a(name: str) -> str:
    return ("an " if name[0] in "aeiou" else "a ") + name


IMAGE = FileKind("image", IMAGE_EXTENSIONS)
TEXT = FileKind("text file", TEXT_EXTENSIONS)
# split folder name -> the tag its items get (``val`` is the common short form of ``validation``)
SPLIT_TAGS = {"train": "train", "validation": "validation", "val": "validation", "test": "test"}


def _subdirs(folder: Path) -> list[Path]:
    """The folders in ``folder``; files there belong to no class and are reported."""
    for path in sorted(folder.iterdir()):
        if path.is_file() and not is_hidden(path):
            logger.warning("skipping %s: it is not inside a class folder", path)
    return sorted(p for p in folder.iterdir() if p.is_dir() and not is_hidden(p))


def _class_files(class_dir: Path, kind: FileKind) -> list[Path]:
    """The files of ``kind`` directly in a class folder; anything else is reported and left out: folders
    in it are not read (one level of class folders), nor is a class folder without such files (its
    label is still added)."""
    found = []
    for path in sorted(class_dir.iterdir()):
        if is_hidden(path):
            continue
        if path.is_dir():
            logger.warning("skipping %s: a folder inside the class folder %s is not read (only files directly "
                           "in <label>/ or <split>/<label>/ are)", path, class_dir.name)
        elif path.suffix.lower() in kind.extensions:
            found.append(path)
        else:
            kind.skipped(path)
    if not found:
        logger.warning("the class folder %s holds no %ss: its label %r is added to the dataset all the same",
                       class_dir, kind.name, class_dir.name)
    return found


@records_its_source
def import_image_folder(platform: LocalPlatform, folder: str | os.PathLike, dataset_name: str | None = None,
                        split_dirs: bool = True) -> ImportResult:
    """One ``class`` annotation per image, its label the class folder's name.

    With ``split_dirs`` and top-level folders all named train/validation/val/test, those are splits:
    items go to ``/<split>/<label>/<image>`` (``val`` stored as ``validation``) tagged
    ``metadata.system.tags.<split>``, as an upload of the folder lays them out on Dataloop; otherwise
    items go to ``/<label>/<image>``.
    """
    return _import_class_folder(platform, folder, dataset_name, split_dirs, IMAGE)


@records_its_source
def import_text_folder(platform: LocalPlatform, folder: str | os.PathLike, dataset_name: str | None = None,
                       split_dirs: bool = True) -> ImportResult:
    """As :func:`import_image_folder`, of ``.txt`` files: text items (``text/plain``), which the
    default ``prepare_item_func`` gives the adapter as strings."""
    return _import_class_folder(platform, folder, dataset_name, split_dirs, TEXT)


def _import_class_folder(platform: LocalPlatform, folder: str | os.PathLike, dataset_name: str | None,
                         split_dirs: bool, kind: FileKind) -> ImportResult:
    folder = Path(folder)
    require_folder(folder, "pass as folder (dataset.folder) the folder holding one folder per class")
    top = _subdirs(folder)
    splits = [p for p in top if p.name.lower() in SPLIT_TAGS]
    if split_dirs and splits and len(splits) != len(top):
        raise DataImportError(f"{folder} mixes split folders and class folders",
                              where=", ".join(p.name for p in top),
                              fix="put every class folder under a split folder, or pass split_dirs=False")
    groups = [(p.name, _subdirs(p)) for p in splits] if split_dirs and splits else [(None, top)]

    records, labels, unreadable = [], [], UnreadableFiles()
    for split, class_dirs in groups:
        for class_dir in class_dirs:
            label = class_dir.name
            if label not in labels:
                labels.append(label)
            for path in _class_files(class_dir, kind):
                read = unreadable.read(kind.read, path)  # nothing is stored before every file was read
                if read is None:
                    continue
                mimetype, width, height = read
                metadata = {"system": {"tags": {SPLIT_TAGS[split.lower()]: True}}} if split else {}
                records.append(ImportRecord(
                    filename=f"/{SPLIT_TAGS[split.lower()]}/{label}/{path.name}" if split else f"/{label}/{path.name}",
                    mimetype=mimetype, width=width, height=height, source=path, metadata=metadata,
                    annotations=[annotation_json(dl.Classification(label=label))]))
    unreadable.check()
    _warn_odd_labels(folder, groups)
    if not records:
        raise DataImportError(f"no {kind.name}s found in {folder}", where=str(folder),
                              fix=f"lay the {kind.name}s out as <folder>/<label>/<file> or <folder>/<split>/<label>/"
                                  f"<file> (extensions: {', '.join(sorted(kind.extensions))})"
                                  + _other_kind_hint(folder, kind))
    result = store_records(platform, dataset_name or folder.name, labels, records)
    log_summary(logger, str(folder), result)
    return result


def _warn_odd_labels(folder: Path, groups: list) -> None:
    """Class folders that are most likely one label written two ways (``Circle`` and ``circle``: labels
    are case-sensitive), and, with split folders, a label with no train folder (the model learns
    nothing of it, and its recall is 0)."""
    names = sorted({class_dir.name for _split, class_dirs in groups for class_dir in class_dirs})
    for name in names:
        same = [other for other in names if other != name and other.lower() == name.lower()]
        if same and name < same[0]:
            logger.warning("%s: the class folders %s differ only in case, so they are %d labels (labels are "
                           "case-sensitive); rename them alike if they are one", folder, ", ".join([name, *same]),
                           len(same) + 1)
    trained = {class_dir.name for split, class_dirs in groups if split and SPLIT_TAGS[split.lower()] == "train"
               for class_dir in class_dirs}
    untrained = [name for name in names if name not in trained]
    if any(split for split, _dirs in groups) and untrained:
        logger.warning("%s: label(s) %s have no folder under train/, so a model trained on this dataset learns "
                       "nothing of them", folder, ", ".join(untrained))


def _other_kind_hint(folder: Path, kind: FileKind, labelled: bool = True) -> str:
    """Where the folder holds files of the other kind: the dataset option that imports those."""
    other = TEXT if kind is IMAGE else IMAGE
    if not any(p.suffix.lower() in other.extensions for p in folder.rglob("*") if p.is_file()):
        return ""
    option = ("text_folder" if other is TEXT else "image_folder") if labelled else \
        ("unlabeled_texts" if other is TEXT else "unlabeled_images")
    return f"; it holds {other.name}s: dataset={option} imports those"


@records_its_source
def import_unlabeled_images(platform: LocalPlatform, folder: str | os.PathLike,
                            dataset_name: str | None = None) -> ImportResult:
    """Every image under ``folder`` (sub-folders included), without annotations: new data to predict
    on. Items keep their path under the folder (``/<sub>/<image>``); the dataset has no labels."""
    return _import_unlabeled(platform, folder, dataset_name, IMAGE)


@records_its_source
def import_unlabeled_texts(platform: LocalPlatform, folder: str | os.PathLike,
                           dataset_name: str | None = None) -> ImportResult:
    """As :func:`import_unlabeled_images`, of ``.txt`` files."""
    return _import_unlabeled(platform, folder, dataset_name, TEXT)


def _import_unlabeled(platform: LocalPlatform, folder: str | os.PathLike, dataset_name: str | None,
                      kind: FileKind) -> ImportResult:
    folder = Path(folder)
    require_folder(folder, f"pass as folder (dataset.folder) the folder holding the {kind.name}s")
    records, unreadable = [], UnreadableFiles()
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_dir() or is_hidden(path, folder):
            continue
        if path.suffix.lower() not in kind.extensions:
            kind.skipped(path)
            continue
        read = unreadable.read(kind.read, path)  # nothing is stored before every file was read
        if read is not None:
            records.append(ImportRecord(filename=f"/{relative.as_posix()}", mimetype=read[0], width=read[1],
                                        height=read[2], source=path))
    unreadable.check()
    if not records:
        raise DataImportError(f"no {kind.name}s found in {folder}", where=str(folder),
                              fix=f"put the {kind.name}s (extensions: {', '.join(sorted(kind.extensions))}) in the "
                                  "folder" + _other_kind_hint(folder, kind, labelled=False))
    result = store_records(platform, dataset_name or folder.name, [], records)
    log_summary(logger, str(folder), result)
    return result
