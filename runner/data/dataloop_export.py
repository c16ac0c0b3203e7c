"""A Dataloop export folder: ``items/<filename>`` and ``json/<filename without extension>.json``,
as dtlpy's ``dataset.items.download(annotation_options=JSON)`` and ``LocalPlatform.export`` write it."""

from __future__ import annotations

import json
import logging
import mimetypes
import os
from pathlib import Path
from typing import NoReturn

from ..errors import DataImportError
from ..platform.annotation_json import missing_key, missing_text
from ..platform.local.platform import LocalPlatform
from ..text_table import first_few
from .image_folder import IMAGE_EXTENSIONS
from .importing import (
    ImportRecord,
    ImportResult,
    UnreadableFiles,
    is_hidden,
    log_summary,
    read_image,
    require_folder,
    store_records,
)
from .recorded_source import records_its_source

logger = logging.getLogger(__name__)


def _item_json(path: Path) -> dict:
    """Parse and check one item JSON; annotation entries need at least a type and a label, and the
    coordinates their type has (see ``missing_key``)."""

    def fail(what: str) -> NoReturn:
        raise DataImportError(f"{path}: {what}", where=str(path),
                              fix="json/ must hold Dataloop item JSON (with 'filename' and 'annotations')")

    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        fail(f"cannot read it as JSON: {err}")
    if not isinstance(data, dict) or not isinstance(data.get("filename"), str) or \
            not data["filename"].startswith("/"):
        fail("not Dataloop item JSON: no absolute 'filename'")
    if not isinstance(data.get("metadata", {}), dict) or not isinstance(data.get("annotations", []), list):
        fail("not Dataloop item JSON: 'metadata' must be an object and 'annotations' a list")
    for i, annotation in enumerate(data.get("annotations", [])):
        if not isinstance(annotation, dict) or not isinstance(annotation.get("type"), str):
            fail(f"annotations[{i}] is not Dataloop annotation JSON (it needs a 'type')")
        if not isinstance(annotation.get("label"), str) or not annotation["label"] or \
                not isinstance(annotation.get("metadata", {}), dict):
            fail(f"annotations[{i}] needs a 'label' (a string) and a 'metadata' that is an object, if any")
        key = missing_key(annotation)
        if key is not None:  # coordinates that dtlpy cannot read back for the annotation's type
            fail(f"annotations[{i}] has {missing_text(annotation, key)}")
    return data


def _record(path: Path, filename: str, item: dict | None) -> ImportRecord:
    """The record of one item file; images are decoded, other files keep their given or guessed type."""
    item = item or {}
    metadata = item.get("metadata") or {}
    system = metadata.get("system") or {}
    mimetype = system.get("mimetype") or mimetypes.guess_type(path.name)[0]
    width = height = None
    if path.suffix.lower() in IMAGE_EXTENSIONS or (mimetype or "").startswith("image/"):
        info = read_image(path)
        mimetype, width, height = info.mimetype, info.width, info.height
    return ImportRecord(filename=filename, mimetype=mimetype, width=width, height=height, source=path,
                        metadata=metadata, annotations=list(item.get("annotations") or []),
                        original_name=system.get("originalname"), hidden=bool(item.get("hidden", False)))


@records_its_source
def import_dataloop_export(platform: LocalPlatform, folder: str | os.PathLike,
                           dataset_name: str | None = None) -> ImportResult:
    """Items keep their filename, metadata (``system`` keys describing the file are recomputed) and
    annotations (ids regenerated). An item file without JSON is imported without annotations, with a
    warning naming it, unless it is hidden (``.DS_Store``, anything under ``.git/``: see ``is_hidden``);
    a JSON without its item file is an error, and a hidden file a JSON names is imported."""
    folder = Path(folder)
    items_dir, json_dir = folder / "items", folder / "json"
    require_folder(folder, "pass as folder (dataset.folder) the folder of a Dataloop export, which holds items/ and json/")
    if not items_dir.is_dir() and not json_dir.is_dir():
        raise DataImportError(f"{folder} is not a Dataloop export: it has neither items/ nor json/",
                              where=str(folder), fix="pass the folder that holds items/ and json/")
    records, labels, claimed, unreadable = [], [], set(), UnreadableFiles()
    for json_path in sorted(json_dir.rglob("*.json")) if json_dir.is_dir() else []:
        item = _item_json(json_path)
        if item.get("type", "file") != "file":  # folders of the remote dataset carry no bytes
            continue
        path = items_dir / item["filename"].lstrip("/")
        if not path.is_file():
            if not items_dir.is_dir():  # the folder is missing, not each file: say it once
                raise DataImportError(f"{folder} has json/ but no items/ folder: every item file the JSON names is missing",
                                      where=str(items_dir),
                                      fix="export the items together with the JSON, into items/ beside json/")
            raise DataImportError(f"{json_path}: its item file {path} is missing", where=str(json_path),
                                  fix="export the items together with the JSON, or remove this JSON")
        claimed.add(path)
        records.append(unreadable.read(_record, path, item["filename"], item))
        labels += [a["label"] for a in item.get("annotations", []) if a.get("label")]
    bare = {path: path.relative_to(items_dir).as_posix()
            for path in (sorted(items_dir.rglob("*")) if items_dir.is_dir() else [])
            if path.is_file() and path not in claimed and not is_hidden(path, items_dir)}
    if bare:
        _warn_without_json(folder, list(bare.values()))
    records += [unreadable.read(_record, path, "/" + name, None) for path, name in bare.items()]
    unreadable.check()  # nothing is stored before every file was read
    if not records:  # an empty dataset would only fail later, at the first filter that finds nothing
        raise DataImportError(f"no items found in {folder}: items/ and json/ hold no item file",
                              where=str(folder), fix="export the dataset's items into items/ (and their JSON into json/)")
    result = store_records(platform, dataset_name or folder.name, dict.fromkeys(labels), records)
    log_summary(logger, str(folder), result)
    return result


def _warn_without_json(folder: Path, names: list[str]) -> None:
    """A warning, not an error: the item files are whole and import as unannotated items, and an export
    without JSON is a real one (dtlpy's download without annotation_options, LocalPlatform.export with
    with_json=False). But a JSON lost on the way would leave its annotations out unseen: name the files."""
    if not (folder / "json").is_dir():  # the folder is missing, not each file's JSON: say it once
        logger.warning("%s has no json/ folder: its %d item file(s) are imported without annotations",
                       folder, len(names))
        return
    logger.warning("%d item file(s) in %s have no JSON in %s and are imported without annotations: %s",
                   len(names), folder / "items", folder / "json", first_few(names))
