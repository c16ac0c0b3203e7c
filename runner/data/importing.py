"""The write path shared by the importers: validated records in, one atomic and idempotent import out.

Importers read and check their source completely (images decoded, JSON parsed) and hand over
:class:`ImportRecord` s; nothing is written before that. Here blobs go first (content-addressed, so
a failed transaction leaves only unreferenced bytes), then items, annotations, the dataset and its
labels in one ``store.write()`` transaction.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import dtlpy as dl
from PIL import Image, UnidentifiedImageError

from ..errors import DataImportError, RunnerError
from ..platform.annotation_json import annotation_to_json, completed, missing_key, missing_text
from ..platform.local.blobs import sha_of_bytes, sha_of_file
from ..platform.local.platform import LocalPlatform, _label_json
from ..platform.local.store import new_id, now_iso
from ..text_table import first_few

# item metadata.system keys computed from the stored bytes, never taken from the source
RECOMPUTED_SYSTEM_KEYS = ("mimetype", "width", "height", "size", "originalname")
# annotation keys that point at records of the source; the store gives new ones
_REFERENCE_KEYS = ("id", "itemId", "datasetId", "item", "dataset", "url")


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    mode: str
    mimetype: str


@dataclass
class ImportRecord:
    """One item to store. ``data`` or ``source`` holds the bytes; ``annotations`` are Dataloop
    annotation JSON without ids (see :func:`annotation_json`)."""

    filename: str  # remote path, '/train/0001.png'
    mimetype: str | None
    width: int | None = None
    height: int | None = None
    data: bytes | None = None
    source: Path | None = None
    metadata: dict = field(default_factory=dict)  # extra item metadata; system keys above are recomputed
    annotations: list[dict] = field(default_factory=list)
    original_name: str | None = None
    hidden: bool = False

    @property
    def origin(self) -> str:
        return str(self.source) if self.source is not None else self.filename


@dataclass(frozen=True)
class ImportResult:
    dataset: dl.Dataset
    added: int
    skipped: int

    def __str__(self) -> str:
        return f"dataset {self.dataset.name!r}: {self.added} items added, {self.skipped} already there"


def is_hidden(path: Path, root: Path | None = None) -> bool:
    """A hidden OS file or folder (``.DS_Store``, ``._x.png``, ``.git``): its name starts with a dot,
    or with ``root`` the name of any folder between ``root`` and it does. Importers skip these."""
    return any(part.startswith(".") for part in (path.relative_to(root).parts if root is not None else (path.name,)))


def require_folder(folder: Path, fix: str, name: str = "folder") -> None:
    """Refuse a folder argument that is missing, or that is a file ("no folder x" would be false:
    it is there). A JSON file given for a folder is often a COCO file meant for the COCO importer,
    whose arguments (and config keys) name it and its images' folder: the fix says so."""
    if folder.is_dir():
        return
    if not folder.exists():  # where: the path it was looked for at (a relative one is from the working folder)
        raise DataImportError(f"no {name} {folder}", where=os.path.abspath(folder), fix=fix)
    if folder.suffix.lower() == ".json":
        fix += (f"; if {folder} is a COCO annotation file, import it with dataset=coco "
                f"dataset.annotation_file={folder} dataset.images_dir=<the folder of its images> "
                "(import_coco(platform, annotation_file, images_dir))")
    raise DataImportError(f"{folder} is a file, not a folder", where=str(folder), fix=fix)


class UnreadableFiles:
    """The files of one import that cannot be read, gathered: one error at the end names them all, so
    a folder with several bad files takes one run to find them, not one run each."""

    def __init__(self):
        self.failed: list[DataImportError] = []

    def read(self, read, *args):
        """``read(*args)``; None, noting the error, when it raises a DataImportError."""
        try:
            return read(*args)
        except DataImportError as err:
            self.failed.append(err)
            return None

    def check(self) -> None:
        if len(self.failed) == 1:
            raise self.failed[0]
        if self.failed:
            raise DataImportError(f"{len(self.failed)} files cannot be read, so nothing was imported: "
                                  + first_few([err.what for err in self.failed], 10),
                                  where=first_few([err.where or "" for err in self.failed], 10),
                                  fix=self.failed[0].fix)


def read_image(source: bytes | str | os.PathLike, name: str | None = None) -> ImageInfo:
    """Decode an image fully (``verify`` catches bad structure, ``load`` truncated pixel data)."""
    where = name or str(source if not isinstance(source, bytes) else "<bytes>")

    def open_():
        return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)

    try:
        with open_() as image:
            image.verify()
        with open_() as image:  # verify() leaves the image unusable: reopen to decode
            image.load()
            fmt = image.format or ""
            return ImageInfo(image.width, image.height, image.mode, Image.MIME.get(fmt, f"image/{fmt.lower()}"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataImportError(f"cannot decode the image {where}: {err}", where=where,
                              fix="replace or remove the file, then import again") from err


def annotation_json(definition, metadata: dict | None = None, palette: dl.Dataset | None = None) -> dict:
    """Dataloop annotation JSON built by dtlpy itself, without ids (the store sets them).

    ``palette``: a dataset entity whose ontology gives binary masks their label colour; without
    it dtlpy would look the dataset up through its global (network) client.
    """
    if definition.type == "binary" and palette is None:
        raise ValueError("a binary annotation needs a palette dataset (see palette_dataset)")
    annotation = dl.Annotation.new(annotation_definition=definition, automated=False,
                                   metadata={} if metadata is None else dict(metadata))
    if palette is not None:
        annotation._dataset = palette
    data = annotation_to_json(annotation)
    for key in _REFERENCE_KEYS:
        data.pop(key, None)
    return data


def merged_labels(existing: Sequence[dict], new: Iterable[str]) -> list[str | dict]:
    """Existing ontology roots (kept as they are, colours included) plus the new label names."""
    have = {label["tag"] for label in existing}
    out: list[str | dict] = list(existing)
    for name in new:
        if name not in have:
            have.add(name)
            out.append(name)
    return out


def palette_dataset(platform: LocalPlatform, dataset_name: str, labels: Sequence[str]) -> dl.Dataset:
    """An unsaved dataset entity whose ontology has the colours the labels will have after import."""
    found = platform.store.find_dataset(platform.project.id, dataset_name)
    roots = _label_json(merged_labels(found["labels"] if found is not None else [], labels))
    return platform.dataset_entity({"id": "unsaved", "name": dataset_name, "projects": [platform.project.id],
                                    "labels": roots, "attributes": [], "metadata": {}})


def _check_records(records: Sequence[ImportRecord]) -> None:
    seen: dict[str, str] = {}
    for record in records:
        path = PurePosixPath(record.filename)
        if not path.is_absolute() or ".." in path.parts or path.name in ("", ".") or str(path) != record.filename:
            raise DataImportError(f"bad remote filename {record.filename!r}", where=record.origin,
                                  fix="remote filenames are absolute POSIX paths like '/train/0001.png'")
        if (record.data is None) == (record.source is None):
            raise ValueError(f"record {record.filename}: give exactly one of data and source")
        if record.filename in seen:
            raise DataImportError(f"two files would be stored as {record.filename}",
                                  where=f"{seen[record.filename]} and {record.origin}",
                                  fix="rename one of them")
        seen[record.filename] = record.origin
        for annotation in record.annotations:
            key = missing_key(annotation)
            if key is not None:
                raise DataImportError(f"an annotation of {record.filename} has {missing_text(annotation, key)}",
                                      where=record.origin, fix="every annotation needs a type, a label and the "
                                                               "coordinates of its type, as Dataloop writes them")


def store_records(platform: LocalPlatform, dataset_name: str, labels: Iterable[str],
                  records: Sequence[ImportRecord], source: str = "sdk") -> ImportResult:
    """Store validated records into ``dataset_name`` (created if missing), all or nothing.

    Records whose filename the dataset already holds are skipped with their annotations, so a
    rerun adds nothing. Labels become the union of the dataset's and ``labels``.
    ``source`` is the annotations' ``source`` where they do not carry one.
    """
    _check_records(records)
    labels = list(labels)
    store = platform.store
    found = platform.find_dataset(dataset_name)
    already = store.existing_filenames(found.id, [r.filename for r in records]) if found is not None else {}
    _refuse_changed_files(dataset_name, records, already)
    _restore_removed_files(platform, dataset_name, records, already)
    # blobs before the transaction: content-addressed, an unused one is harmless
    blobs = {record.filename: _put_blob(platform, record) for record in records if record.filename not in already}

    with store.write():
        # read again under the write lock: another import or a delete may have run since
        dataset = platform.find_dataset(dataset_name) or platform.create_dataset(dataset_name)
        already = store.existing_filenames(dataset.id, [r.filename for r in records])
        for record in records:  # blobs a delete removed since, or of items it removed (see BlobStore)
            put = blobs.get(record.filename)
            if record.filename not in already and (put is None or not platform.blobs.exists(put[0])):
                blobs[record.filename] = _put_blob(platform, record)
        created = now_iso()
        items, annotations = [], []
        for record in records:
            if record.filename in already:
                continue
            blob, size = blobs[record.filename]
            path = PurePosixPath(record.filename)
            item_id = new_id()
            system = {k: v for k, v in (record.metadata.get("system") or {}).items() if k not in RECOMPUTED_SYSTEM_KEYS}
            system.setdefault("tags", {})
            system.update(mimetype=record.mimetype, width=record.width, height=record.height, size=size,
                          originalname=record.original_name or path.name)
            items.append({"id": item_id, "dataset_id": dataset.id, "filename": record.filename,
                          "dir": str(path.parent), "name": path.name, "type": "file", "hidden": record.hidden,
                          "mimetype": record.mimetype, "blob": blob, "size": size, "created_at": created,
                          "metadata": {**record.metadata, "system": system}})
            for annotation in record.annotations:
                data = {k: v for k, v in annotation.items() if k not in _REFERENCE_KEYS}
                data.update(id=new_id(), itemId=item_id, datasetId=dataset.id,
                            createdAt=data.get("createdAt") or created, source=data.get("source") or source)
                annotations.append(completed(data))
        if store.insert_items(items) != len(items):
            raise RunnerError(f"dataset {dataset_name!r} changed during the import", fix="run the import again")
        store.insert_annotations(annotations)
        dataset = platform.set_labels(dataset, merged_labels(store.get_dataset(dataset.id)["labels"], labels))
    return ImportResult(dataset, added=len(items), skipped=len(records) - len(items))


def _refuse_changed_files(dataset_name: str, records: Sequence[ImportRecord], already: dict[str, str | None]) -> None:
    """A file the dataset holds already is skipped, so it must be the same file: other bytes under
    that name (another seed, an edited folder) would leave the dataset stale, or mixed with it."""
    changed = [r for r in records if r.filename in already and already[r.filename] != _sha(r)]
    if changed:
        raise DataImportError(f"{len(changed)} file(s) that dataset {dataset_name!r} already holds have other bytes "
                              f"in this import, e.g. {changed[0].filename}", where=changed[0].origin,
                              fix="import into a new dataset name, or delete the dataset first (python -m "
                                  f"runner.store delete-dataset {dataset_name} --with-models)")


def _restore_removed_files(platform: LocalPlatform, dataset_name: str, records: Sequence[ImportRecord],
                           already: dict[str, str | None]) -> None:
    """Files the dataset holds whose bytes were removed from the store by hand (``python -m
    runner.store check`` finds them): a new import of the same files puts the same bytes back."""
    restored = [_put_blob(platform, r) for r in records
                if already.get(r.filename) and not platform.blobs.exists(already[r.filename])]
    if restored:
        logging.getLogger(__name__).warning("dataset %r: put back the bytes of %d item file(s) that were missing "
                                            "from the store", dataset_name, len(restored))


def _sha(record: ImportRecord) -> str:
    return sha_of_bytes(record.data) if record.data is not None else sha_of_file(record.source)


def _put_blob(platform, record) -> tuple[str, int]:
    """The record's bytes into the blob folder: (sha, size)."""
    if record.data is not None:
        return platform.blobs.put_bytes(record.data), len(record.data)
    return platform.blobs.put_file(record.source), os.path.getsize(record.source)


def log_summary(logger: logging.Logger, what: str, result: ImportResult) -> None:
    logger.info("imported %s into %s", what, result)
