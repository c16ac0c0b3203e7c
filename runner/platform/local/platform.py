"""The embedded local platform: one folder with ``platform.db`` (SQLite) and ``blobs/`` (file bytes)."""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import secrets
import shutil
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath

import dtlpy as dl
import numpy as np

from ...errors import ArtifactError, NotFoundError, RunnerError, VectorsRefused
from ...paths import (
    STORE_FILE,
    copies_home,
    dataloop_path,
    default_local_root,
    is_folder_name,
    model_data_folder,
    model_folder,
)
from ...run_configuration import to_store
from ...text_table import first_few
from ..base import Platform
from .blobs import BlobStore
from .client import LocalApiClient, guard_global_client
from .entities import (
    LocalDataset,
    LocalFeatureSet,
    LocalItem,
    LocalModel,
    LocalProject,
    new_annotation_json,
    ontology_id_of,
)
from .store import BLOB_KEY, RecordNotFound, Store, new_id

logger = logging.getLogger("runner")

DEFAULT_PROJECT = "local"


class LocalPlatform(Platform):
    name = "local"

    def __init__(self, root: str | os.PathLike | None = None, project: str = DEFAULT_PROJECT,
                 create_project: bool = True):
        self.root = Path(root) if root is not None else default_local_root()
        new = not (self.root / STORE_FILE).exists()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.store = Store(self.root / STORE_FILE)
            self.blobs = BlobStore(self.root / "blobs")
        except (OSError, sqlite3.DatabaseError) as err:
            raise RunnerError(f"the local platform at {self.root} cannot be opened: {type(err).__name__}: {err}",
                              where="platform.root",
                              fix="point platform.root at a folder you can write (a missing one is created), "
                                  "or at a local platform folder (platform.db + blobs/)") from None
        if any(self.blobs.root.glob(".trash-*")):
            with self.store.write():
                self._recover_trash()
        if not create_project and project not in self.store.project_names():
            raise RecordNotFound(f"no project {project!r} in the local platform at {self.root}", where="project",
                                fix=f"use one of: {', '.join(self.store.project_names()) or 'none (a first run makes one)'}")
        if new:  # a first run, or a DATALOOP_PATH / platform.root that names another folder than meant
            logger.info("a new local platform at %s (there was none)", self.root)
        self.client = LocalApiClient(self)
        guard_global_client()
        self.project = LocalProject(_dict=self.store.get_or_create_project(project), _client_api=self.client)

    def __repr__(self) -> str:
        return f"LocalPlatform(root={str(self.root)!r})"

    @property
    def copies_home(self) -> Path | None:
        """The folder holding this store's local copies in its ``models/`` and ``model_data/`` (see
        ``paths.copies_home``); None when the store has none of its own."""
        return copies_home(self.root)

    def __reduce__(self):
        # to a worker process (sharded predictions) as what opens it again: its own connections
        return type(self), (str(self.root), self.project.name)

    # -- entities ------------------------------------------------------------------------------

    def item_entity(self, item_json: dict, dataset: dl.Dataset | None = None) -> dl.Item:
        stored = item_json
        item_json = dict(item_json)
        blob = item_json.pop(BLOB_KEY, None)
        item = LocalItem.from_json(_json=item_json, client_api=self.client, dataset=dataset, project=self.project)
        item.local_blob = blob
        item.stored_json = stored  # what item_json hands to a worker process: no to_json walk
        return item

    def item_json(self, item: dl.Item) -> dict:
        stored = getattr(item, "stored_json", None)
        return stored if stored is not None else {**item.to_json(), BLOB_KEY: getattr(item, "local_blob", None)}

    def dataset_entity(self, dataset_json: dict) -> dl.Dataset:
        # the count Dataloop's dataset JSON carries as it is fetched
        dataset_json = {**dataset_json, "itemsCount": self.store.count_items(dataset_json["id"], None)}
        dataset = LocalDataset.from_json(_json=dataset_json, client_api=self.client, project=self.project)
        dataset._ontology = dl.Ontology.from_json(
            _json={"id": ontology_id_of(dataset.id), "roots": dataset_json["labels"],
                   "attributes": dataset_json.get("attributes", []), "metadata": {}},
            client_api=self.client, recipe=None, dataset=dataset)
        return dataset

    def model_entity(self, model_json: dict) -> dl.Model:
        if model_json.get("datasetId") and not model_json.get("ontology_id"):
            model_json = {**model_json, "ontology_id": ontology_id_of(model_json["datasetId"])}
        return LocalModel.from_json(_json=model_json, client_api=self.client, project=self.project)

    def feature_set_entity(self, feature_set_json: dict) -> dl.FeatureSet:
        return LocalFeatureSet.from_json(_json=feature_set_json, client_api=self.client)

    # -- datasets ------------------------------------------------------------------------------

    def create_dataset(self, name: str, labels: Sequence[str | dict] = ()) -> dl.Dataset:
        return self.dataset_entity(self.store.create_dataset(self.project.id, name, _label_json(labels)))

    def record_import_source(self, dataset: dl.Dataset, source: dict) -> None:
        """Remember the importer config ``dataset`` was made from."""
        self.store.set_import_source(dataset.id, source)

    def import_source(self, dataset: dl.Dataset) -> dict | None:
        return self.store.import_source(dataset.id)

    def find_dataset(self, name: str) -> dl.Dataset | None:
        found = self.store.find_dataset(self.project.id, name)
        return None if found is None else self.dataset_entity(found)

    def get_dataset(self, dataset_id: str | None = None, name: str | None = None) -> dl.Dataset:
        if dataset_id is not None:
            return self.dataset_entity(self.store.get_dataset(dataset_id))
        dataset = self.find_dataset(name)
        if dataset is None:
            names = [d["name"] for d in self.store.list_datasets(self.project.id)]
            raise RecordNotFound(f"no dataset named {name!r} in the local platform at {self.root}",
                                fix=f"import it first; datasets here: {_some_names(name, names)}")
        return dataset

    def list_datasets(self) -> list[dl.Dataset]:
        return [self.dataset_entity(d) for d in self.store.list_datasets(self.project.id)]

    def set_labels(self, dataset: dl.Dataset, labels: Sequence[str | dict]) -> dl.Dataset:
        self.store.set_dataset_labels(dataset.id, _label_json(labels))
        return self.get_dataset(dataset.id)

    # -- models --------------------------------------------------------------------------------

    def create_model(self, name: str, dataset: dl.Dataset | None, labels: Sequence[str] | None = None,
                     configuration: dict | None = None, input_type: str = "image", output_type: str = "class",
                     subsets: Mapping[str, dict] | None = None, description: str | None = None,
                     status: str = "created") -> dl.Model:
        if labels is None:
            labels = list(dataset.labels_flat_dict) if dataset is not None else []
        model = {
            "name": name, "description": description, "status": status, "labels": list(labels),
            "configuration": dict(configuration or {}), "inputType": input_type, "outputType": output_type,
            "datasetId": None if dataset is None else dataset.id, "tags": [],
            "metadata": {"system": {"subsets": dict(subsets or {})}},
            "context": {"project": self.project.id}, "moduleName": None, "scope": "project", "version": "1.0.0",
        }
        return self.model_entity(self.store.create_model(model))

    def get_model(self, model_id: str | None = None, name: str | None = None) -> dl.Model:
        if model_id is not None:
            return self.model_entity(self.store.get_model(model_id))
        found = self.store.find_model(self.project.id, name)
        if found is None:
            names = [m["name"] for m in self.store.list_models(self.project.id)]
            raise RecordNotFound(f"no model named {name!r} in the local platform at {self.root}",
                                fix=f"use one of: {_some_names(name, names)} (python -m runner.store models lists "
                                    "them), or create it first")
        return self.model_entity(found)

    def find_model(self, name: str) -> dl.Model | None:
        found = self.store.find_model(self.project.id, name)
        return None if found is None else self.model_entity(found)

    def list_models(self) -> list[dl.Model]:
        return [self.model_entity(m) for m in self.store.list_models(self.project.id)]

    def update_model(self, model: dl.Model) -> dl.Model:
        model_json = model.to_json()
        # a run's own settings and command-line configuration stay out of the version's record
        model_json["configuration"] = to_store(model, model_json.get("configuration") or {})
        model_json["context"] = {**(model_json.get("context") or {}), "project": self.project.id}
        return self.model_entity(self.store.update_model(model_json))

    def clone_model(self, from_model: dl.Model, name: str, configuration: dict | None = None,
                    dataset: dl.Dataset | None = None, labels: Sequence[str] | None = None,
                    description: str | None = None, tags: Sequence[str] | None = None,
                    status: str | None = None) -> dl.Model:
        """A new model version: new id, the source's configuration (``configuration`` merged over it),
        labels, subsets and artifacts. Artifacts are shared by content, not copied."""
        source = self.store.get_model(from_model.id)
        clone = {k: v for k, v in source.items() if k not in ("id", "createdAt", "updatedAt", "artifacts")}
        clone.update(name=name, clonedFrom=source["id"], status=status or ("trained" if source["artifacts"] else "created"),
                     configuration={**source.get("configuration", {}), **(configuration or {})})
        if dataset is not None:
            clone["datasetId"] = dataset.id
        if labels is not None:
            clone["labels"] = list(labels)
        if description is not None:
            clone["description"] = description
        if tags is not None:
            clone["tags"] = list(tags)
        with self.store.write():
            created = self.store.create_model(clone)
            self.store.set_artifacts(created["id"], self.store.list_artifacts(source["id"]), replace=True)
        return self.get_model(created["id"])

    # -- artifacts -----------------------------------------------------------------------------

    def model_folder(self, model: dl.Model) -> str:
        return str(model_folder(model.name))

    def download_artifacts(self, model, local_path, overwrite=True, names=None) -> str:
        local_path = Path(local_path)
        local_path.mkdir(parents=True, exist_ok=True)
        stored = self.store.list_artifacts(model.id)
        if names is not None:
            missing = set(names) - {name for name, _b, _s in stored}
            if missing:
                raise ArtifactError(f"model {model.name!r} has no artifact named {sorted(missing)}",
                                    fix=f"artifacts of this model: {[n for n, _b, _s in stored]}")
        fix = ("train the version again, or delete it (python -m runner.store delete-model "
               f"{model.name!r}); python -m runner.store check lists every such file")
        for name, blob, size in stored:
            if names is not None and name not in names:
                continue
            target = local_path / name
            if overwrite or not target.exists():
                self._copy_blob(blob, target, lambda name=name, blob=blob: ArtifactError(
                    f"artifact {name!r} of model {model.name!r} is recorded but its file is gone from the store",
                    where=self.blobs.path(blob), fix="a file under the store's blobs/ was removed by hand: " + fix))
                if target.stat().st_size != size:
                    raise ArtifactError(f"artifact {name!r} of model {model.name!r} is damaged: its file in the store "
                                        f"holds {target.stat().st_size} bytes, not the {size} it was saved with",
                                        where=self.blobs.path(blob), fix="a file under the store's blobs/ was changed "
                                        "by something other than the runner: " + fix)
        return str(local_path)

    def _copy_blob(self, blob: str, target: Path, missing) -> None:
        """Copy a blob out; ``missing()`` is the error when the store lost its file (removed by hand)."""
        try:
            self.blobs.copy_to(blob, target)
        except FileNotFoundError:
            if self.blobs.exists(blob):  # the destination's folder went away meanwhile: not the store
                raise
            raise missing() from None

    def _missing_item_file(self, filename: str, dataset_name: str, blob: str) -> RunnerError:
        return RunnerError(f"the file of item {filename} of dataset {dataset_name!r} is gone from the store",
                           where=self.blobs.path(blob), fix="a file under the store's blobs/ was removed by hand: "
                           + _RESTORE_FIX)

    def add_artifacts(self, model, files, replace) -> None:
        rows = []
        for name, path in files.items():
            if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
                raise ArtifactError(f"artifact name {name!r} must be a relative path inside the model folder")
            rows.append((str(PurePosixPath(name)), self.blobs.put_file(path), os.path.getsize(path)))
        # blobs first (content-addressed, harmless if unused), then one transaction for the records
        with self.store.write():
            for (_name, blob, _size), path in zip(rows, files.values(), strict=True):
                if not self.blobs.exists(blob):  # removed by a delete since (see BlobStore)
                    self.blobs.put_file(path)
            self.store.set_artifacts(model.id, rows, replace=replace)

    # -- items ---------------------------------------------------------------------------------

    def open_item(self, item: dl.Item):
        """The blob file itself: no copy through dtlpy's download and a BytesIO."""
        blob = getattr(item, "local_blob", None) or self.store.item_blob(item.id)[0]
        try:
            source = open(self.blobs.path(blob), "rb")
        except FileNotFoundError:
            raise self._missing_item_file(item.filename, item.dataset.name, blob) from None
        size = (item.metadata.get("system") or {}).get("size")
        held = os.fstat(source.fileno()).st_size
        if isinstance(size, int) and held != size:  # cut short on disk: a decoder's "truncated" would not say where
            source.close()
            raise RunnerError(f"the file of item {item.filename} of dataset {item.dataset.name!r} is damaged: it holds "
                              f"{held} bytes in the store, not the {size} imported", where=self.blobs.path(blob),
                              fix=_RESTORE_FIX)
        return source

    def read_item_bytes(self, item: dl.Item) -> bytes:
        with self.open_item(item) as source:
            return source.read()

    def default_download_path(self, dataset: dl.Dataset) -> str:
        return str(dataloop_path() / "downloads" / dataset.name)

    def count_items(self, dataset, filters) -> int:
        return self.store.count_items(dataset.id, filters)

    def listing_cuts(self, dataset, filters, positions) -> list[int]:
        return self.store.rids_before(dataset.id, filters, positions)

    def iter_items(self, dataset, filters, page_size=500, span=None) -> Iterator[list[dl.Item]]:
        after, through = span or (None, None)
        for page in self.store.iter_items(dataset.id, filters, page_size, after or 0, through):
            yield [self.item_entity(j, dataset=dataset) for j in page]

    def items_with_annotations(self, dataset, filters, annotation_filters, with_annotations=True):
        """(item JSON as an export writes it, with its ``annotations``; its blob key) per matching item,
        read page by page."""
        for page in self.store.iter_items(dataset.id, filters):
            annotations = self.store.annotations_of([j["id"] for j in page], annotation_filters) \
                if with_annotations else {}
            for item_json in page:
                blob = item_json.pop(BLOB_KEY)
                if with_annotations:
                    item_json["annotations"] = annotations[item_json["id"]]
                    item_json["annotationsCount"] = len(item_json["annotations"])
                    item_json["annotated"] = bool(item_json["annotations"])
                yield item_json, blob

    def export(self, dataset, filters, annotation_filters, dest, with_json=True, with_items=True) -> int:
        dest = Path(dest)
        count = 0
        written: set[Path] = set()
        for item_json, blob in self.items_with_annotations(dataset, filters, annotation_filters, with_json):
            relative = item_json["filename"].lstrip("/")
            if with_items and item_json["type"] == "file" and blob:
                self._copy_blob(blob, dest / "items" / relative, lambda item_json=item_json, blob=blob:
                                self._missing_item_file(item_json["filename"], dataset.name, blob))
            if with_json:
                target = (dest / "json" / relative).with_suffix(".json")
                if target in written:  # x.png and x.jpg in one folder: keep both, the second by full name
                    target = dest / "json" / f"{relative}.json"
                written.add(target)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(item_json))
            count += 1
        return count

    def fingerprint(self, dataset, filters) -> str:
        digest = hashlib.sha256()
        ground_truth = {"filter": {"metadata.system.model.name": {"$exists": False}}, "resource": "annotations"}
        for page in self.store.iter_items(dataset.id, filters):
            annotations = self.store.annotations_of([j["id"] for j in page], ground_truth)
            for item_json in page:
                blob = item_json[BLOB_KEY] or ""
                digest.update(f"{item_json['filename']}\0{blob}\0".encode())
                for annotation in annotations[item_json["id"]]:
                    kept = {k: annotation.get(k) for k in ("type", "label", "coordinates", "attributes")}
                    digest.update(json.dumps(kept, sort_keys=True).encode())
        return digest.hexdigest()

    # -- annotations ---------------------------------------------------------------------------

    def annotation_json(self, annotation, item: dl.Item) -> dict:
        return new_annotation_json(annotation, item)

    def annotations_of(self, items, annotation_filters) -> dict[str, list[dict]]:
        return self.store.annotations_of([i.id for i in items], annotation_filters)

    def store_predictions(self, model, items, collections) -> list[dl.Annotation]:
        return self.write_predictions(model, self.encode_predictions(model, items, collections))

    def encode_predictions(self, model, items, collections) -> tuple[list[str], list[tuple], list[dl.Annotation]]:
        rows, out = [], []
        for item, collection in zip(items, collections, strict=True):
            for annotation in collection:
                data = new_annotation_json(annotation, item)
                # always a new record: an annotation object a predict returns for several items (or in
                # every batch) must not carry the id it got for the first one
                data["id"] = annotation.id = new_id()
                rows.append(self.store.annotation_row(data))
                out.append(annotation)
        return [i.id for i in items], rows, out

    def write_predictions(self, model, encoded) -> list[dl.Annotation]:
        item_ids, rows, annotations = encoded
        self.store.replace_model_annotation_rows(model.name, item_ids, rows, model_id=model.id)
        return annotations

    # -- evaluations ---------------------------------------------------------------------------

    def store_evaluation(self, model, dataset, metrics) -> None:
        self.store.add_evaluation(model.id, None if dataset is None else dataset.id, metrics)

    def latest_evaluation(self, model) -> dict | None:
        return self.store.latest_evaluation(model.id)

    # -- features ------------------------------------------------------------------------------

    def feature_set_for(self, model, size) -> dl.FeatureSet:
        """The model's feature set; made with ``size`` if it has none, and given that size if it
        holds no vector yet (a first embed that failed on a wrong size does not fix it for good)."""
        return self.feature_set_entity(self.store.model_feature_set(self.project.id, model.id, model.name, size))

    def store_features(self, feature_set, items, vectors) -> None:
        self.store_vectors(feature_set.id, [item.id for item in items], vectors)

    def store_vectors(self, feature_set_id: str, item_ids: Sequence[str], vectors: Sequence) -> None:
        size = self.store.get_feature_set(feature_set_id)["size"]
        rows = [(item_id, np.asarray(vector, dtype="<f4").ravel()) for item_id, vector in zip(item_ids, vectors, strict=True)]
        # the batch fails whole: said once for the batch, not as if of its first item only
        wrong = [(item_id, array.size) for item_id, array in rows if array.size != size]
        if wrong:
            raise VectorsRefused(f"{len(wrong)} of the batch's {len(rows)} feature vectors have {wrong[0][1]} values "
                                 f"(item {wrong[0][0]}{' and others' if len(wrong) > 1 else ''}), the feature set "
                                 f"holds vectors of {size}",
                                 fix="set configuration.embeddings_size to the vector length embed returns")
        unfit = [item_id for item_id, array in rows if not np.isfinite(array).all()]
        if unfit:
            raise VectorsRefused(f"{len(unfit)} of the batch's {len(rows)} feature vectors hold NaN or infinite "
                                 f"values (item {unfit[0]}{' and others' if len(unfit) > 1 else ''})",
                                 fix="make embed return finite numbers (a norm of 0 divided by?)")
        self.store.upsert_features(feature_set_id, [(item_id, array.tobytes()) for item_id, array in rows])

    def feature_vectors(self, feature_set_id: str, item_ids: Sequence[str] | None = None,
                        dataset: dl.Dataset | None = None) -> tuple[list[str], np.ndarray]:
        """(item ids, one row per item): of ``item_ids`` in their order, or of every item that has a
        vector (of ``dataset``: a set serves each dataset its model embedded) in the order they were added."""
        rows = self.store.features(feature_set_id, item_ids, None if dataset is None else dataset.id)
        if item_ids is not None:
            by_id = dict(rows)
            missing = [i for i in item_ids if i not in by_id]
            if missing:
                raise NotFoundError(f"{len(missing)} of the {len(item_ids)} items asked for have no vector in feature "
                                    f"set {self.store.get_feature_set(feature_set_id)['name']!r}: {first_few(missing)}",
                                    fix="embed them first (pipeline=embed), or ask for items that were embedded")
            rows = [(i, by_id[i]) for i in item_ids]
        size = self.store.get_feature_set(feature_set_id)["size"]
        matrix = np.frombuffer(b"".join(v for _i, v in rows), dtype="<f4").reshape(len(rows), size)
        return [i for i, _v in rows], matrix

    # -- deletion ------------------------------------------------------------------------------

    def models_of(self, dataset: dl.Dataset) -> list[dl.Model]:
        """The models whose dataset is ``dataset``."""
        return [m for m in self.list_models() if m.dataset_id == dataset.id]

    def delete_models(self, models: Sequence[dl.Model], predictions: bool = True) -> None:
        """Delete model versions with their artifacts, metrics, evaluations and feature sets, and (with
        ``predictions``) the annotations they made. Their local folders go too, those beside this
        store (``copies_home``): the artifacts loaded under ``models/`` and the data exported under
        ``model_data/``; a store without such folders of its own leaves them."""
        ids = [model.id for model in models]
        self._delete_records(lambda: self.store.delete_models(self.project.id, ids, predictions))
        self._remove_local_folders(models)

    def delete_dataset(self, dataset: dl.Dataset, with_models: bool = False) -> list[dl.Model]:
        """Delete a dataset with its items, annotations and feature vectors; returns the models deleted
        with it. Its models (``models_of``) go too with ``with_models``; else they keep it: an error."""
        models = self.models_of(dataset)
        if models and not with_models:
            raise RunnerError(f"dataset {dataset.name!r} is the dataset of {len(models)} model(s): "
                              f"{_some_names(None, [m.name for m in models])}",
                              where=f"the local platform at {self.root}",
                              fix="pass with_models=True to delete them with it")
        ids = [model.id for model in models]
        self._delete_records(lambda: self.store.delete_models(self.project.id, ids) | self.store.delete_dataset(dataset.id))
        self._remove_local_folders(models)
        return models

    def _remove_local_folders(self, models: Sequence[dl.Model]) -> None:
        """Deleted models' folders beside this store: copies, so nothing stored is lost. Never those
        under another folder (another store's, of models of the same names and ids after a copy)."""
        home = self.copies_home
        for model in models:
            if home is not None and is_folder_name(model.name):
                for folder in (model_folder(model.name, home), model_data_folder(model.id, model.name, home)):
                    shutil.rmtree(folder, ignore_errors=True)

    def remove_blobs_unless_used(self, shas: set[str]) -> None:
        """Remove those of these blobs that no record uses, by the same path as a delete's."""
        self._delete_records(lambda: shas)

    def _delete_records(self, delete) -> None:
        """Run ``delete`` (which returns the blobs its records used) in one transaction, and move the
        blobs no record uses any more out of the blob folder inside it: blobs are removed only under
        the write lock, where writers check theirs (see ``BlobStore``). The moved blobs come back if
        the transaction fails, and are deleted once it has committed; inside a caller's transaction,
        which may still roll back, the next delete or opening of the store settles them instead."""
        trash = self.blobs.root / f".trash-{secrets.token_hex(6)}"
        moved: list[str] = []
        nested = self.store.writing()
        try:
            with self.store.write():
                self._recover_trash()
                self.blobs.move_out(self.store.unreferenced(delete()), trash, moved)
        except BaseException:
            self.blobs.move_back(moved, trash)
            raise
        if not nested:
            shutil.rmtree(trash, ignore_errors=True)

    def _recover_trash(self) -> None:
        """Under the write lock: the trash a delete left when it stopped (killed) before its clean-up.
        Blobs that records still use (its transaction rolled back) go back; the rest are deleted."""
        for stale in self.blobs.root.glob(".trash-*"):
            try:
                shas = [path.name for path in stale.iterdir()]
            except FileNotFoundError:  # its delete has just cleaned it up
                continue
            self.blobs.move_back(set(shas) - self.store.unreferenced(shas), stale)
            shutil.rmtree(stale, ignore_errors=True)


def _label_json(labels: Sequence[str | dict]) -> list[dict]:
    """Ontology roots from label names (or label dicts); colours spread over the hue circle."""
    import colorsys

    out = []
    for i, label in enumerate(labels):
        if isinstance(label, dict):
            out.append(label)
            continue
        r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.65, 0.95)
        out.append({"tag": label, "displayLabel": label, "color": f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}",
                    "attributes": [], "children": []})
    return out


def _some_names(wanted: str | None, names: list[str], shown: int = 8) -> str:
    """The names closest to ``wanted`` first, at most ``shown`` of them, and how many more there are."""
    if not names:
        return "none"
    close = difflib.get_close_matches(wanted or "", names, n=shown, cutoff=0.0)
    rest = len(names) - len(close)
    return ", ".join(close) + (f" (and {rest} more)" if rest else "")


__all__ = ["LocalPlatform"]


_RESTORE_FIX = ("python -m runner.store check --restore imports the dataset again from its source (the same files put "
                "their bytes back); python -m runner.store check lists every such item")
