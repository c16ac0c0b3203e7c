"""dtlpy entities served by the local platform.

Each class is an ``attrs`` subclass of the dtlpy entity (``isinstance(item, dl.Item)`` holds) whose
repositories are the local ones below. Building them skips dtlpy's per-entity construction of
two dozen network repositories, which also makes them about twenty times cheaper to create.
"""

from __future__ import annotations

import functools
import glob
import io
import json
import os
from collections import namedtuple
from pathlib import Path
from typing import TYPE_CHECKING

import attr
import numpy as np
from dtlpy import entities, miscellaneous, repositories

from ...errors import ArtifactError, UnsupportedOperation
from ..annotation_json import annotation_to_json, completed
from ..base import filters_json
from .client import local_repository, unsupported_repository
from .store import RecordNotFound, new_id, now_iso

if TYPE_CHECKING:
    from .platform import LocalPlatform


def _platform(repo) -> LocalPlatform:
    return repo._client_api.platform


# -- repositories ---------------------------------------------------------------------------------

def _json_only(annotation_options) -> list:
    """The annotation formats asked for, as a list: JSON alone is served (masks and instance maps are
    drawn by Dataloop's own converters)."""
    options = annotation_options if isinstance(annotation_options, list) else [annotation_options]
    if any(o not in (None, entities.ViewAnnotationOptions.JSON, "json") for o in options):
        raise UnsupportedOperation(f"downloading annotations as {annotation_options!r}",
                                   fix="use annotation_options=dl.ViewAnnotationOptions.JSON")
    return options


@local_repository(repositories.Datasets)
class LocalDatasets(repositories.Datasets):
    def get(self, dataset_name=None, dataset_id=None, checkout=False, fetch=None):
        return _platform(self).get_dataset(dataset_id=dataset_id, name=dataset_name)

    def list(self, name=None, creator=None, filters=None):
        return miscellaneous.List(d for d in _platform(self).list_datasets() if name is None or d.name == name)

    def download_annotations(self, dataset, local_path=None, filters=None, annotation_options=None,
                             annotation_filters=None, overwrite=False, **_ignored):
        """The items' JSON with their annotations under ``local_path/json/``, as Dataloop writes them."""
        _json_only(annotation_options)
        platform = _platform(self)
        local_path = local_path or platform.default_download_path(dataset)
        platform.export(dataset, filters_json(filters), filters_json(annotation_filters), local_path, with_items=False)
        return local_path


@local_repository(repositories.Items)
class LocalItems(repositories.Items):
    def _build_entities_from_response(self, response_items):
        return miscellaneous.List(_platform(self).item_entity(j, dataset=self._dataset) for j in response_items)

    def _list(self, filters):
        query = filters_json(filters)
        store, dataset_id = _platform(self).store, self._dataset.id
        # counted on the first page a listing asks for (the pages after it keep that figure), and on
        # page 0 always: a listing that starts later (page_offset) has its count too
        key = json.dumps({k: v for k, v in query.items() if k not in ("page", "pageSize")}, sort_keys=True)
        counts = self.__dict__.setdefault("_counts", {})
        if int(query.get("page", 0)) == 0 or key not in counts:
            counts[key] = store.count_items(dataset_id, query)
        return _page_response(query, lambda offset, limit: store.list_items(dataset_id, query, offset, limit),
                              counts[key])

    def list(self, filters=None, page_offset=None, page_size=None):
        if filters is None:
            filters = entities.Filters()
        if isinstance(filters, dict):
            filters = entities.Filters(custom_filter=filters)
        if filters.resource != entities.FiltersResource.ITEM:
            raise UnsupportedOperation(f"dataset.items.list with resource {filters.resource!r}",
                                       fix="list annotations with item.annotations.list()")
        pages = entities.PagedEntities(items_repository=self, filters=filters,
                                       page_offset=filters.page if page_offset is None else page_offset,
                                       page_size=filters.page_size if page_size is None else page_size,
                                       client_api=self._client_api)
        pages.get_page()
        return pages

    def get(self, filepath=None, item_id=None, fetch=None, is_dir=False):
        platform = _platform(self)
        if item_id is None:
            if filepath is None:
                raise ValueError("dataset.items.get needs item_id or filepath")
            found = platform.store.list_items(self._dataset.id, {"filter": {"filename": filepath}}, 0, 1)
            if not found:
                raise RecordNotFound(f"no item {filepath!r} in dataset {self._dataset.name!r}")
            return platform.item_entity(found[0], dataset=self._dataset)
        return platform.item_entity(platform.store.get_item(item_id), dataset=self._dataset)

    def update(self, item=None, filters=None, update_values=None, system_update_values=None, system_metadata=False):
        if item is None or filters is not None or update_values is not None:
            raise UnsupportedOperation("dataset.items.update with filters or update_values",
                                       fix="update one item at a time: item.metadata[...] = ...; item.update()")
        _platform(self).store.update_item_metadata(item.id, item.metadata)
        return item

    def download(self, filters=None, items=None, local_path=None, file_types=None, save_locally=True,
                 to_array=False, annotation_options=None, annotation_filters=None, overwrite=False,
                 to_items_folder=True, **_ignored):
        platform = _platform(self)
        if items is None:
            if not save_locally or to_array:
                raise UnsupportedOperation("dataset.items.download(save_locally=False) over a filter",
                                           fix="download single items: item.download(save_locally=False)")
            options = _json_only(annotation_options)
            local_path = local_path or platform.default_download_path(self._dataset)
            with_json = entities.ViewAnnotationOptions.JSON in options or "json" in options
            platform.export(self._dataset, filters_json(filters), filters_json(annotation_filters),
                            local_path, with_json=with_json)
            return local_path
        if isinstance(items, (list, tuple)):
            return [self.download(items=i, local_path=local_path, save_locally=save_locally, to_array=to_array,
                                  overwrite=overwrite) for i in items]
        item = items if isinstance(items, entities.Item) else self.get(item_id=items)
        data = platform.read_item_bytes(item)
        if to_array:
            from PIL import Image

            return np.asarray(Image.open(io.BytesIO(data)))
        if not save_locally:
            buffer = io.BytesIO(data)
            buffer.name = item.name
            return buffer
        if local_path is None:
            local_path = os.path.join(platform.default_download_path(item.dataset), "items", item.filename.lstrip("/"))
        elif os.path.isdir(local_path):
            local_path = os.path.join(local_path, item.name)
        if overwrite or not os.path.exists(local_path):
            os.makedirs(os.path.dirname(os.path.abspath(local_path)), exist_ok=True)
            Path(local_path).write_bytes(data)
        return local_path


def _page_response(query: dict, fetch, total: int) -> dict:
    """One page of a listing as Dataloop's query endpoints answer, for dtlpy's PagedEntities:
    ``fetch(offset, limit)`` reads one row past the page, to tell whether another follows."""
    page, size = int(query.get("page", 0)), int(query.get("pageSize", 1000))
    found = [] if size == 0 else fetch(page * size, size + 1)
    return {"items": found[:size], "totalItemsCount": total, "totalPagesCount": 0 if size == 0 else -(-total // size),
            "hasNextPage": size > 0 and len(found) > size}


@local_repository(repositories.Annotations)
class LocalAnnotations(repositories.Annotations):
    def _entities(self, jsons):
        return entities.AnnotationCollection.from_json(_json=jsons, item=self._item)

    def _list(self, filters):
        """A page of ``dataset.annotations.list(filters)``: the dataset's annotations matching the
        annotation DQL, as Dataloop's query endpoint answers (dtlpy's own ``list`` pages over it)."""
        query = filters_json(filters)
        store, dataset_id = _platform(self).store, self._dataset.id
        return _page_response(query, lambda offset, limit: store.list_annotations(dataset_id, query, offset, limit),
                              store.count_matching_annotations(dataset_id, query))

    def _build_entities_from_response(self, response_items):
        annotations = miscellaneous.List(entities.Annotation.from_json(_json=j, item=self._item, dataset=self._dataset)
                                         for j in response_items)
        for annotation in annotations:
            annotation._annotations = self
        return annotations

    def list(self, filters=None, page_offset=None, page_size=None):
        if self._item is None:  # dataset.annotations.list: pages, as on Dataloop
            if isinstance(filters, dict):
                filters = entities.Filters(custom_filter=filters, resource=entities.FiltersResource.ANNOTATION)
            if filters is not None and filters.resource != entities.FiltersResource.ANNOTATION:
                raise UnsupportedOperation("dataset.annotations.list with an items filter",
                                           fix="pass a dl.Filters(resource=dl.FiltersResource.ANNOTATION)")
            return super().list(filters=filters, page_offset=page_offset, page_size=page_size)
        query = filters_json(filters)
        if query is not None and query.get("resource", "annotations") != "annotations":
            raise UnsupportedOperation("item.annotations.list with an items filter",
                                       fix="pass a dl.Filters(resource=dl.FiltersResource.ANNOTATION)")
        jsons = _platform(self).store.annotations_of([self._item.id], query)[self._item.id]
        collection = self._entities(jsons)
        for annotation in collection:
            annotation._annotations = self
        return collection

    def get(self, annotation_id):
        annotation = entities.Annotation.from_json(_json=_platform(self).store.get_annotation(annotation_id),
                                                   item=self._item)
        annotation._annotations = self
        return annotation

    def upload(self, annotations, merge=False):
        if isinstance(annotations, entities.AnnotationCollection):
            annotations = annotations.annotations
        elif isinstance(annotations, (entities.Annotation, dict)):
            annotations = [annotations]
        jsons = [_platform(self).annotation_json(a, self._item) for a in annotations]
        _platform(self).store.insert_annotations(jsons)
        return self._entities(jsons)

    def update(self, annotations, system_metadata=False):
        if isinstance(annotations, entities.AnnotationCollection):
            annotations = annotations.annotations
        elif not isinstance(annotations, list):
            annotations = [annotations]
        jsons = [_platform(self).annotation_json(a, self._item) for a in annotations]
        _platform(self).store.update_annotations(jsons)
        return self._entities(jsons).annotations

    def builder(self):
        return entities.AnnotationCollection(item=self._item)

    def delete(self, annotation=None, annotation_id=None, filters=None):
        store = _platform(self).store
        if annotation is not None or annotation_id is not None:
            return store.delete_annotations(annotation_ids=[annotation_id or annotation.id]) > 0
        if filters is None:
            raise ValueError("item.annotations.delete needs an annotation, an annotation_id or filters")
        store.delete_annotations(item_id=self._item.id, dql_json=filters_json(filters))
        return True


def ontology_id_of(dataset_id: str) -> str:
    """A local dataset has one recipe holding one ontology: its labels."""
    return f"ontology-{dataset_id}"


def recipe_id_of(dataset_id: str) -> str:
    return f"recipe-{dataset_id}"


@local_repository(repositories.Ontologies)
class LocalOntologies(repositories.Ontologies):
    """The ontology of a dataset (``dataset.ontologies``, ``recipe.ontologies``, ``model.ontologies``)."""

    def list(self, project_ids=None):
        return miscellaneous.List([self._dataset._get_ontology()])

    def get(self, ontology_id):
        ontology = self._dataset._get_ontology()
        if ontology_id != ontology.id:
            raise RecordNotFound(f"ontology {ontology_id!r} not found", where=f"dataset {self._dataset.name!r}",
                                fix=f"its ontology is {ontology.id!r} (dataset.ontology_ids)")
        return ontology


@local_repository(repositories.Recipes)
class LocalRecipes(repositories.Recipes):
    """The dataset's one recipe, which holds its ontology."""

    def list(self, filters=None):
        return miscellaneous.List([self._recipe()])

    def get(self, recipe_id):
        if recipe_id != recipe_id_of(self._dataset.id):
            raise RecordNotFound(f"recipe {recipe_id!r} not found", where=f"dataset {self._dataset.name!r}",
                                fix=f"its recipe is {recipe_id_of(self._dataset.id)!r} (dataset.recipes.list())")
        return self._recipe()

    def _recipe(self):
        dataset = self._dataset
        return LocalRecipe.from_json(_json={"id": recipe_id_of(dataset.id), "title": f"{dataset.name} recipe",
                                            "ontologyIds": dataset.ontology_ids, "projectIds": [dataset.project.id]},
                                     client_api=self._client_api, dataset=dataset, project=dataset.project)


@local_repository(repositories.Models)
class LocalModels(repositories.Models):
    def get(self, model_name=None, model_id=None):
        return _platform(self).get_model(model_id=model_id, name=model_name)

    def list(self, filters=None):
        """The project's models, oldest first, paged as Dataloop's listing is (``.all()``, ``.items``,
        ``items_count``; iterating it gives pages)."""
        if filters is not None:
            raise UnsupportedOperation("project.models.list(filters)", fix="call project.models.list()")
        filters = entities.Filters(resource=entities.FiltersResource.MODEL)
        pages = entities.PagedEntities(items_repository=self, filters=filters, page_offset=filters.page,
                                       page_size=filters.page_size, client_api=self._client_api)
        pages.get_page()
        return pages

    def _list(self, filters):
        query = filters_json(filters)
        found = _platform(self).store.list_models(_platform(self).project.id)
        return _page_response(query, lambda offset, limit: found[offset:offset + limit], len(found))

    def _build_entities_from_response(self, response_items):
        return miscellaneous.List(_platform(self).model_entity(j) for j in response_items)

    def update(self, model, system_metadata=False, reload_services=True):
        return _platform(self).update_model(model)

    def wait_for_model_ready(self, model):
        """A local clone is whole once made: no model here waits in status ``cloning``."""
        return model

    def clone(self, from_model, model_name, dataset=None, configuration=None, status=None, scope=None,
              project_id=None, labels=None, description=None, tags=None, **_filters):
        return _platform(self).clone_model(from_model, model_name, configuration=configuration, dataset=dataset,
                                           labels=labels, description=description, tags=tags, status=status)


class StoredArtifact(entities.LocalArtifact):
    """An entry of ``model.artifacts.list()``: dtlpy's ``LocalArtifact`` (``local_path``: the file's path
    among the model's artifacts) with the ``name`` and ``filename`` that the ``ItemArtifact`` entries
    of Dataloop's listing have, which adapters read."""

    @property
    def name(self) -> str:
        return os.path.basename(self.local_path)

    @property
    def filename(self) -> str:
        return "/" + self.local_path


@local_repository(repositories.Artifacts)
class LocalArtifacts(repositories.Artifacts):
    def list(self, execution_id=None, package_name=None, model_name=None):
        return miscellaneous.List(StoredArtifact(local_path=name)
                                  for name, _blob, _size in _platform(self).store.list_artifacts(self.model.id))

    def upload(self, filepath, package_name=None, package=None, execution_id=None, execution=None,
               model_name=None, overwrite=False):
        """``filepath``: a file, a folder, or a glob such as ``<folder>/*`` (as save_to_model passes)."""
        paths = sorted(glob.glob(filepath)) if any(c in filepath for c in "*?[") else [filepath]
        files: dict[str, str] = {}
        for path in paths:
            if os.path.isdir(path):
                base = path if not any(c in filepath for c in "*?[") else os.path.dirname(path)
                for root, _dirs, names in os.walk(path):
                    for name in names:
                        full = os.path.join(root, name)
                        files[os.path.relpath(full, base)] = full
            elif os.path.isfile(path):
                files[os.path.basename(path)] = path
        if not files:
            raise ArtifactError(f"no files to upload as artifacts of model {self.model.name!r}",
                                where=f"filepath={filepath!r}",
                                fix="save the model's files into that folder before uploading")
        _platform(self).add_artifacts(self.model, files, replace=False)
        return self.list()

    def delete(self, artifact_id=None, artifact_name=None, execution_id=None, model_name=None, package_name=None):
        name = artifact_name or artifact_id
        kept = [row for row in _platform(self).store.list_artifacts(self.model.id) if row[0] != name]
        _platform(self).store.set_artifacts(self.model.id, kept, replace=True)
        return True

    def download(self, artifact_id=None, artifact_name=None, execution_id=None, package_name=None,
                 model_name=None, local_path=None, overwrite=False, save_locally=True):
        if local_path is None:
            local_path = _platform(self).model_folder(self.model)
        return _platform(self).download_artifacts(self.model, local_path, overwrite=overwrite,
                                                  names=None if artifact_name is None else [artifact_name])


@local_repository(repositories.Metrics)
class LocalMetrics(repositories.Metrics):
    def create(self, samples, dataset_id=None):
        if not isinstance(samples, list):
            samples = [samples]
        payload = []
        for sample in samples:
            sample_json = sample.to_json() if hasattr(sample, "to_json") else dict(sample)
            sample_json["modelId"], sample_json["datasetId"] = self.model.id, dataset_id
            payload.append(sample_json)
        _platform(self).store.add_metric_samples(self.model.id, dataset_id, payload)
        return True

    def list(self, filters=None):
        return miscellaneous.List(
            entities.PlotSample(figure=s.get("figure", ""), legend=s.get("legend", ""),
                                x=s.get("data", {}).get("x"), y=s.get("data", {}).get("y"))
            for s in _platform(self).store.metric_samples(self.model.id))


@local_repository(repositories.FeatureSets)
class LocalFeatureSets(repositories.FeatureSets):
    def get(self, feature_set_name=None, feature_set_id=None):
        platform = _platform(self)
        if feature_set_id is not None:
            return platform.feature_set_entity(platform.store.get_feature_set(feature_set_id))
        found = platform.store.find_feature_sets(platform.project.id, name=feature_set_name)
        if not found:
            from dtlpy import exceptions

            raise exceptions.NotFound("404", f"feature set {feature_set_name!r} not found")
        return platform.feature_set_entity(found[0])

    def list(self, filters=None):
        platform = _platform(self)
        query = filters_json(filters) or {}
        model_id = None
        for clause in query.get("filter", {}).get("$and", []):
            if "modelId" in clause:
                model_id = clause["modelId"]
            else:
                raise UnsupportedOperation(f"feature_sets.list with the filter {clause}",
                                           fix="filter feature sets by modelId only")
        found = [platform.feature_set_entity(j) for j in platform.store.find_feature_sets(platform.project.id,
                                                                                            model_id=model_id)]
        return _ListPage(found)

    def create(self, name, size, set_type, entity_type, project_id=None, model_id=None, org_id=None):
        platform = _platform(self)
        return platform.feature_set_entity(
            platform.store.create_feature_set(platform.project.id, name, size, model_id, set_type))


class _ListPage(miscellaneous.List):
    """A single page of results with the ``items`` / ``items_count`` of dtlpy's paged listings."""

    @property
    def items(self):
        return self

    @property
    def items_count(self):
        return len(self)


@local_repository(repositories.Features)
class LocalFeatures(repositories.Features):
    def create(self, value, project_id=None, feature_set_id=None, entity=None, version=None, parent_id=None,
               org_id=None):
        if feature_set_id is None:
            if self._feature_set is None:
                raise ValueError("features.create needs feature_set_id")
            feature_set_id = self._feature_set.id
        if not isinstance(entity, list):
            entity, value = [entity], [value]
        if len(entity) != len(value):
            raise ValueError("The number of vectors must be equal to the number of entities")
        _platform(self).store_vectors(feature_set_id, [e.id for e in entity], value)
        return True

    def vectors(self, item_ids=None, dataset=None) -> tuple[list[str], np.ndarray]:
        """(item ids, float32 matrix) of this feature set: of ``item_ids`` in their order, or of every
        embedded item (of ``dataset``, an entity or its name) in the order the items were added; a local
        convenience for nearest-neighbour queries."""
        platform = _platform(self)
        if isinstance(dataset, str):
            dataset = platform.get_dataset(name=dataset)
        return platform.feature_vectors(self._feature_set.id, item_ids, dataset)


# -- entities -------------------------------------------------------------------------------------

class _LocalJson:
    """dtlpy's ``to_json`` excludes the parent class's ``_repositories`` field; ours redefines it."""

    def to_json(self, *args, **kwargs):
        reps = self._repositories
        self._repositories = None
        try:
            data = super().to_json(*args, **kwargs)
        finally:
            self._repositories = reps
        data.pop("_repositories", None)
        return data


@functools.cache
def _repositories_type(fields: tuple[str, ...]) -> type:
    return namedtuple("repositories", fields)


def _repositories(spec: str, **local):
    """The ``_repositories`` namedtuple of an entity. ``spec`` lists ``field:DtlpyRepository`` pairs
    (``field:`` for a slot dtlpy leaves empty); fields not given in ``local`` hold a repository that
    refuses every call, naming it."""
    fields = dict(pair.split(":") for pair in spec.split())
    values = {name: local[name] if name in local else
              (unsupported_repository(getattr(repositories, cls)) if cls else None) for name, cls in fields.items()}
    return _repositories_type(tuple(fields))(**values)


@attr.s(repr=False, eq=False)
class LocalItem(_LocalJson, entities.Item):
    _repositories = attr.ib(repr=False)

    @_repositories.default
    def set_repositories(self):
        dataset = self._dataset
        return _repositories(
            "annotations:Annotations datasets:Datasets items:Items codebases:Codebases artifacts:Artifacts "
            "modalities: features:Features assignments:Assignments tasks:Tasks "
            "resource_executions:ResourceExecutions collections:Collections",
            annotations=None,  # built on first use: most items never touch their annotations
            datasets=dataset.datasets if dataset is not None else LocalDatasets(client_api=self._client_api),
            items=dataset.items if dataset is not None else None)

    @property
    def annotations(self):
        reps = self._repositories
        if reps.annotations is None:
            repository = LocalAnnotations(client_api=self._client_api, item=self, dataset=self._dataset,
                                          dataset_id=self.dataset_id)
            self._repositories = reps = reps._replace(annotations=repository)
        return reps.annotations

    @property
    def dataset(self):
        if self._dataset is None:
            self._dataset = self._client_api.platform.get_dataset(dataset_id=self.dataset_id)
            self._repositories = self.set_repositories()
        return self._dataset

    @property
    def items(self):
        return self.dataset.items


@attr.s(repr=False, eq=False)
class LocalDataset(_LocalJson, entities.Dataset):
    _repositories = attr.ib(repr=False)

    @_repositories.default
    def set_repositories(self):
        project = self.project
        datasets = project.datasets if project is not None else LocalDatasets(client_api=self._client_api)
        return _repositories(
            "items:Items recipes:Recipes datasets:Datasets assignments:Assignments tasks:Tasks "
            "annotations:Annotations ontologies:Ontologies features:Features feature_sets:FeatureSets "
            "settings:Settings schema:Schema collections:Collections",
            items=LocalItems(client_api=self._client_api, dataset=self, datasets=datasets, project=project),
            datasets=datasets,
            recipes=LocalRecipes(client_api=self._client_api, dataset=self, project=project),
            ontologies=LocalOntologies(client_api=self._client_api, dataset=self, project=project),
            annotations=LocalAnnotations(client_api=self._client_api, dataset=self),
            feature_sets=project.feature_sets if project is not None else None)

    @property
    def ontology_ids(self):
        return [ontology_id_of(self.id)]


@attr.s(repr=False, eq=False)
class LocalRecipe(_LocalJson, entities.Recipe):
    _repositories = attr.ib(repr=False)

    @_repositories.default
    def set_repositories(self):
        dataset = self._dataset
        return _repositories("ontologies:Ontologies recipes:Recipes", recipes=dataset.recipes,
                             ontologies=dataset.ontologies)


@attr.s(repr=False, eq=False)
class LocalModel(_LocalJson, entities.Model):
    _repositories = attr.ib(repr=False)

    @_repositories.default
    def set_repositories(self):
        project = self.project
        return _repositories(
            "projects:Projects datasets:Datasets models:Models packages:Packages ontologies:Ontologies "
            "artifacts:Artifacts metrics:Metrics dpks:Dpks services:Services",
            datasets=project.datasets, models=project.models,
            artifacts=LocalArtifacts(client_api=self._client_api, project=project, project_id=self.project_id,
                                     model=self),
            metrics=LocalMetrics(client_api=self._client_api, model=self))

    @property
    def ontology(self):
        """The ontology of its dataset, as on Dataloop, where a model made from a dataset takes its ontology."""
        if self._ontology is None and self.ontology_id is not None and self.dataset_id is not None:
            self._ontology = self.dataset.ontologies.get(ontology_id=self.ontology_id)
        return super().ontology


@attr.s(repr=False, eq=False)
class LocalFeatureSet(_LocalJson, entities.FeatureSet):
    _repositories = attr.ib(repr=False)

    @_repositories.default
    def set_repositories(self):
        project = self._client_api.platform.project
        return _repositories("feature_sets:FeatureSets features:Features", feature_sets=project.feature_sets,
                             features=LocalFeatures(client_api=self._client_api, project=project, feature_set=self))


class LocalProject(entities.Project):
    @property
    def _repositories(self):
        if self._repositories_cache is None:
            self._repositories_cache = _repositories(
                "projects:Projects triggers:Triggers datasets:Datasets items:Items recipes:Recipes "
                "packages:Packages codebases:Codebases artifacts:Artifacts services:Services "
                "executions:Executions assignments:Assignments tasks:Tasks bots:Bots webhooks:Webhooks "
                "models:Models analytics:Analytics ontologies:Ontologies drivers:Drivers pipelines:Pipelines "
                "feature_sets:FeatureSets features:Features integrations:Integrations settings:Settings "
                "apps:Apps dpks:Dpks compositions:Compositions",
                datasets=LocalDatasets(client_api=self._client_api, project=self),
                models=LocalModels(client_api=self._client_api, project=self),
                feature_sets=LocalFeatureSets(client_api=self._client_api, project=self))
        return self._repositories_cache


def new_annotation_json(annotation, item) -> dict:
    """Dataloop annotation JSON for an annotation about to be stored on ``item``."""
    if isinstance(annotation, entities.Annotation):
        if annotation._item is None:  # without it dtlpy looks colours up through its global client
            annotation._item = item
        data = annotation_to_json(annotation)
    else:
        data = dict(annotation)
    data["id"] = data.get("id") or new_id()
    data["itemId"] = item.id
    data["datasetId"] = item.dataset_id
    data["createdAt"] = data.get("createdAt") or now_iso()
    data.pop("item", None)
    data.pop("dataset", None)
    try:
        return completed(data)
    except ValueError as err:
        raise ValueError(f"{err} (item {item.id}): give it as a dl.Annotation, or a dict with a type, a label and the coordinates its type needs") from None


__all__ = ["LocalDataset", "LocalFeatureSet", "LocalItem", "LocalModel", "LocalProject", "new_annotation_json"]
