"""The Dataloop platform through the dtlpy SDK.

Every operation goes through dtlpy entity methods only, so the same code runs against the real
platform and, in the tests, against the local platform's entities (which serve those methods
offline). Differences from the local platform: artifact replacement and prediction replacement are
one request at a time (the server offers no transaction), and datasets and base models are created
on Dataloop itself (the importers fill the local platform only).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import dtlpy as dl
import numpy as np

from ..errors import ConfigError, NotFoundError
from .base import Platform

_MISSING = (dl.exceptions.NotFound, LookupError)


def _filters(query: dict | None, resource=dl.FiltersResource.ITEM, page_size: int | None = None) -> dl.Filters:
    if query is None:
        filters = dl.Filters(resource=resource)
    else:
        filters = dl.Filters(custom_filter=copy.deepcopy(query), resource=resource)
    if page_size is not None:
        if filters.custom_filter is not None:
            filters.custom_filter["pageSize"] = page_size
        filters.page_size = page_size
    return filters


class DataloopPlatform(Platform):
    name = "dataloop"

    def __init__(self, project: str | dl.Project):
        if isinstance(project, dl.Project):
            self.project = project
            return
        if dl.token_expired():
            raise ConfigError("dtlpy is not logged in to Dataloop", where="platform=dataloop",
                              fix="log in once with `python -c 'import dtlpy as dl; dl.login()'`, or use platform=local")
        self.project = dl.projects.get(project_name=project)

    def __repr__(self) -> str:
        return f"DataloopPlatform(project={self.project.name!r})"

    def __reduce__(self):
        # a worker process logs in with the same dtlpy token and finds the project again
        return type(self), (self.project.name,)

    # -- datasets and models (the runner's composition) ----------------------------------------

    @staticmethod
    def _find(get, **kwargs):
        """``get(**kwargs)``, or None where the platform says it does not have it."""
        try:
            return get(**kwargs)
        except _MISSING:
            return None

    def find_dataset(self, name: str) -> dl.Dataset | None:
        return self._find(self.project.datasets.get, dataset_name=name)

    def get_dataset(self, dataset_id: str | None = None, name: str | None = None) -> dl.Dataset:
        return self.project.datasets.get(dataset_id=dataset_id, dataset_name=name)

    def find_model(self, name: str) -> dl.Model | None:
        return self._find(self.project.models.get, model_name=name)

    def get_model(self, model_id: str | None = None, name: str | None = None) -> dl.Model:
        model = self.project.models.get(model_id=model_id, model_name=name) if model_id or name else None
        if model is None:
            raise NotFoundError(f"no model {model_id or name!r} in project {self.project.name!r}")
        return model

    def list_models(self) -> list[dl.Model]:
        return list(self.project.models.list().all())

    def create_model(self, name: str, *args, **kwargs) -> dl.Model:
        raise ConfigError(f"no base model {name!r} in Dataloop project {self.project.name!r}",
                          where="model.name", fix="create the model on Dataloop (install its app), then name it here")

    def clone_model(self, from_model: dl.Model, name: str, configuration: dict | None = None,
                    dataset: dl.Dataset | None = None, status: str | None = None, **kwargs) -> dl.Model:
        return self.project.models.clone(from_model=from_model, model_name=name, configuration=configuration,
                                         dataset=dataset, status=status)

    # -- artifacts -----------------------------------------------------------------------------

    def download_artifacts(self, model, local_path, overwrite=True, names=None) -> str:
        Path(local_path).mkdir(parents=True, exist_ok=True)
        if names is None:
            model.artifacts.download(local_path=str(local_path), overwrite=overwrite)
        for name in names or ():
            model.artifacts.download(artifact_name=name, local_path=str(local_path), overwrite=overwrite)
        return str(local_path)

    def add_artifacts(self, model, files: Mapping[str, str | os.PathLike], replace: bool) -> None:
        if replace:  # not atomic on Dataloop: the old set goes, then the new one is uploaded
            for artifact in model.artifacts.list():
                model.artifacts.delete(artifact_name=artifact.local_path if hasattr(artifact, "local_path")
                                       else artifact.name)
        roots = {str(path)[: -len(name)] for name, path in files.items() if str(path).endswith(name)}
        if len(roots) == 1 and all(str(p).endswith(n) for n, p in files.items()):
            model.artifacts.upload(filepath=os.path.join(roots.pop(), "*"), overwrite=True)  # keeps sub-folders
        else:
            for path in files.values():
                model.artifacts.upload(filepath=str(path), overwrite=True)

    # -- items and annotations -----------------------------------------------------------------

    def count_items(self, dataset, filters) -> int:
        return dataset.items.list(filters=_filters(filters, page_size=0)).items_count

    def listing_cuts(self, dataset, filters, positions) -> list[int]:
        # Dataloop's listing pages by offset only, so a cut is its position, looked up again when the
        # shard lists its pages: a filter that the predictions change (annotated, a label) can shift
        # the later shards past items here. Predict over such a filter with one worker on Dataloop.
        return list(positions)

    def iter_items(self, dataset, filters, page_size=500, span=None) -> Iterator[list[dl.Item]]:
        listing = dataset.items.list(filters=_filters(filters, page_size=page_size))
        if span is None:
            for page in listing:
                yield list(page)
            return
        after, through = span  # positions, in whole pages (listing_cuts)
        first = (after or 0) // page_size
        offsets = itertools.count(first) if through is None else range(first, through // page_size)
        for offset in offsets:  # a shard: offset-based pages, as Dataloop splits a dataset into executions
            page = list(listing.return_page(page_offset=offset, page_size=page_size))
            if not page:
                return
            yield page

    def export(self, dataset, filters, annotation_filters, dest, with_json=True) -> int:
        options = [dl.ViewAnnotationOptions.JSON] if with_json else None
        annotations = None if annotation_filters is None else _filters(annotation_filters, dl.FiltersResource.ANNOTATION)
        dataset.items.download(filters=_filters(filters), local_path=str(dest), annotation_options=options,
                               annotation_filters=annotations, to_items_folder=True)
        return self.count_items(dataset, filters)

    def annotations_of(self, items, annotation_filters) -> dict[str, list[dict]]:
        out = {}
        for item in items:
            filters = None if annotation_filters is None else _filters(annotation_filters, dl.FiltersResource.ANNOTATION)
            out[item.id] = [a.to_json() for a in item.annotations.list(filters=filters)]
        return out

    def fingerprint(self, dataset, filters) -> str:
        digest = hashlib.sha256()
        ground_truth = {"filter": {"metadata.system.model.name": {"$exists": False}}, "resource": "annotations"}
        for page in self.iter_items(dataset, filters):
            annotations = self.annotations_of(page, ground_truth)
            for item in page:
                system = (item.metadata or {}).get("system") or {}
                digest.update(f"{item.filename}\0{item.id}\0{system.get('md5', '')}\0{system.get('size', '')}\0".encode())
                for annotation in annotations[item.id]:
                    kept = {k: annotation.get(k) for k in ("type", "label", "coordinates", "attributes")}
                    digest.update(json.dumps(kept, sort_keys=True, default=str).encode())
        return digest.hexdigest()

    def store_predictions(self, model, items, collections) -> list[dl.Annotation]:
        stored: list[dl.Annotation] = []
        for item, collection in zip(items, collections, strict=True):
            earlier = dl.Filters(resource=dl.FiltersResource.ANNOTATION, field="metadata.system.model.name",
                                 values=model.name)
            item.annotations.delete(filters=earlier)
            if len(collection):
                stored.extend(item.annotations.upload(annotations=collection))
        return stored

    # -- evaluations ---------------------------------------------------------------------------

    def store_evaluation(self, model, dataset, metrics) -> None:
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        model.metrics.create(samples=[dl.PlotSample(figure="evaluation", legend=k, x=0, y=v) for k, v in scalars.items()],
                             dataset_id=None if dataset is None else dataset.id)
        model.metadata.setdefault("user", {})["evaluation"] = scalars
        model.update()

    def latest_evaluation(self, model) -> dict | None:
        return (self.get_model(model_id=model.id).metadata.get("user") or {}).get("evaluation")

    # -- features ------------------------------------------------------------------------------

    def feature_set_for(self, model, size) -> dl.FeatureSet:
        existing = model.feature_set
        if existing is not None:
            return existing
        return self.project.feature_sets.create(name=model.name, size=int(size), set_type=model.name,
                                                entity_type=dl.FeatureEntityType.ITEM, project_id=self.project.id,
                                                model_id=model.id)

    def store_features(self, feature_set, items, vectors) -> None:
        if items:
            feature_set.features.create(value=[np.asarray(v, dtype=float).tolist() for v in vectors],
                                        entity=list(items), feature_set_id=feature_set.id,
                                        project_id=self.project.id)
