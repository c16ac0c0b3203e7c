"""``BaseModelAdapter``: dtlpy's user-function contract, with wrapper functions that run on a platform.

Users write the user functions (``load``, ``save``, ``train``, ``predict``, ``prepare_item_func``,
``convert_from_dtlpy``, ``evaluate``, ``embed``); the wrapper functions here move data and artifacts
between the platform and those functions. A class written for Dataloop (subclassing
``dl.BaseModelAdapter`` directly) runs with these wrapper functions through :func:`bind_adapter_class`.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import reprlib
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import dtlpy as dl
import numpy as np
from PIL import Image

from . import training_claim
from .batching import BatchResult, BatchRunner
from .configuration import ModelConfiguration, is_whole_number
from .errors import (
    ConfigError,
    EmptySubsetError,
    MissingUserFunction,
    PredictionError,
    RunnerError,
    SaveWroteNothing,
    VectorsRefused,
    one_line,
    returned_wrongly,
)
from .gc_control import libraries_loading_in_job
from .images import eight_bit
from .off_model import OffModel, output_types
from .paths import model_data_folder, model_folder
from .platform import Platform, platform_of
from .platform.base import filters_json
from .predicted_boxes import BoxesOutside, inverted_box
from .prepare_processes import PREPARE_IN, ProcessPrepare, processes_possible
from .run_configuration import changed_for_this_run
from .sharding import Sharding, run_in_shards

logger = logging.getLogger("runner.adapter")


class _SaidByTheStamp(logging.Filter):
    """dtlpy's adapter ``__init__`` warns, for every instance, that a prediction's ``model_info.name``
    is aligned with ``model.name``: here ``_stamp`` does that for every prediction, so it says nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("in case of a mismatch between 'model.name' and 'model_info.name'")


logging.getLogger("ModelAdapter").addFilter(_SaidByTheStamp())

USER_FUNCTIONS = ("load", "save", "train", "predict", "prepare_item_func", "convert_from_dtlpy", "evaluate", "embed")
WRAPPER_FUNCTIONS = ("load_from_model", "save_to_model", "prepare_data", "predict_items", "predict_dataset",
                     "train_model", "evaluate_model", "embed_items", "embed_dataset")
_SIGNATURES = {"load": "load(self, local_path, **kwargs)", "save": "save(self, local_path, **kwargs)",
               "train": "train(self, data_path, output_path, **kwargs)", "predict": "predict(self, batch, **kwargs)",
               "embed": "embed(self, batch, **kwargs)"}
DEFAULT_BATCH_SIZE = 4
DEFAULT_PREPARE_WORKERS = 4
_PAGE_SIZE = 500


def _unique_timestamp_dir(parent: Path) -> Path:
    """A new folder named by the time, to the microsecond; jobs that start together get distinct ones."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y-%m-%d-%H%M%S-%f")
    for suffix in range(1000):
        candidate = parent / (stamp if suffix == 0 else f"{stamp}-{suffix}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RunnerError(f"could not create a fresh run folder under {parent}")


class BaseModelAdapter(dl.BaseModelAdapter):
    """Subclass this (or ``dl.BaseModelAdapter``) and write the user functions."""

    def __init__(self, model_entity: dl.Model | None = None):
        # dtlpy's __init__ would bind its own configuration object; keep its attributes, not its behaviour
        _init_adapter_state(self)
        if model_entity is not None:
            self.load_from_model(model_entity=model_entity)

    # -- state -----------------------------------------------------------------------------------

    @property
    def model_entity(self) -> dl.Model:
        if self._model_entity is None:
            raise RunnerError(f"{type(self).__name__} has no model yet",
                              fix="call adapter.load_from_model(model_entity=<dl.Model>) or set adapter.model_entity")
        return self._model_entity

    @model_entity.setter
    def model_entity(self, model_entity: dl.Model) -> None:
        if not isinstance(model_entity, dl.Model):
            raise TypeError(f"model_entity must be a dl.Model, not {type(model_entity).__name__}")
        self._model_entity = model_entity
        if getattr(model_entity, "project", None) is not None:
            self.project = model_entity.project
        self._configuration = ModelConfiguration(model_entity)
        self.adapter_defaults = self._configuration

    @property
    def configuration(self) -> ModelConfiguration | dict:
        return self._configuration if self._model_entity is not None else {}

    @configuration.setter
    def configuration(self, configuration: dict) -> None:
        self.model_entity.configuration = dict(configuration)
        self.model_entity.update()
        self._configuration = ModelConfiguration(self.model_entity)

    @property
    def platform(self) -> Platform:
        """The platform the wrapper functions use: the one set by the runner, else the model's own."""
        return self._platform if self._platform is not None else platform_of(self.model_entity)

    @platform.setter
    def platform(self, platform: Platform) -> None:
        self._platform = platform

    @property
    def batch_runner(self) -> BatchRunner:
        if self._batch_runner is None:
            check_prepare_settings(self.configuration, f"model {self.model_entity.name!r} configuration")
            self._batch_runner = BatchRunner(self.configuration.get("prepare_workers", DEFAULT_PREPARE_WORKERS),
                                             self._process_prepare())
        return self._batch_runner

    def close_pools(self, failed: bool = False) -> None:
        """End the prepare and writer pools, when a step started them (see ``BatchRunner.close``)."""
        if self._batch_runner is not None:
            self._batch_runner.close(failed=failed)

    def _process_prepare(self):
        """``configuration.prepare_in``: None (threads), or what makes the prepare worker processes."""
        if self.configuration.get("prepare_in", "threads") == "threads":
            return None
        if not processes_possible():
            logger.warning("prepare_in=processes in a worker process (a launcher's job or a shard): preparing on "
                           "threads here, as the pool this process belongs to already uses the cores")
            return None
        return lambda workers: ProcessPrepare(workers, self)

    def _require(self, name: str, operation: str) -> None:
        if getattr(type(self), name) is getattr(dl.BaseModelAdapter, name):
            raise MissingUserFunction(
                f"{type(self).__name__} has no user function {name!r}, which {operation} needs",
                where=f"{type(self).__module__}.{type(self).__qualname__}",
                fix=f"define {_SIGNATURES.get(name, name)} on the adapter class")

    # -- user functions with defaults ------------------------------------------------------------

    def prepare_item_func(self, item: dl.Item):
        """Image → HWC uint8 array (a batch is NHWC; grayscale H×W×1, else RGB, see runner.images);
        text → str; anything else → the item."""
        input_type = self.model_entity.input_type
        mimetype = item.mimetype or ""
        if input_type == "image" or (input_type is None and mimetype.startswith("image/")):
            with self.platform.open_item(item) as source:
                array = np.asarray(eight_bit(Image.open(source)), dtype=np.uint8)
            return array[:, :, None] if array.ndim == 2 else array
        if input_type == "text" or mimetype.startswith("text/"):
            with self.platform.open_item(item) as source:
                return source.read().decode("utf-8")
        return item

    def convert_from_dtlpy(self, data_path, **kwargs):
        """Nothing to convert by default: ``data_path`` already holds ``items/`` and ``json/``."""
        return None

    def evaluate(self, model: dl.Model, dataset: dl.Dataset, filters=None) -> dl.Model:
        """The runner's scikit-learn metrics over this model's predictions; stored with the model."""
        from . import evaluation  # scikit-learn's import (1.5 s) only where metrics are computed

        metrics = evaluation.evaluate(self.platform, model, dataset, filters_json(filters), self.metric_functions)
        self._name_the_subset(model, metrics, filters)
        self.platform.store_evaluation(model, dataset, metrics)
        self._last_metrics = metrics
        return model

    @staticmethod
    def _name_the_subset(model, metrics: dict, filters) -> None:
        """``metrics["subset"]``: the model's subset whose filter was scored (a validation score and a
        test score then do not pass for one another in a listing); absent for another filter. And
        ``metrics["configuration_changes"]``: the configuration keys this run changed, as scored."""
        subsets = ((model.metadata or {}).get("system") or {}).get("subsets") or {}
        wanted = filters_json(filters)
        name = next((name for name, subset in subsets.items() if filters_json(subset) == wanted), None)
        if name is not None and "subset" not in metrics:
            metrics["subset"] = name
        changed = changed_for_this_run(model)  # a score of the version with a setting changed for the run
        if changed and "configuration_changes" not in metrics:
            metrics["configuration_changes"] = changed

    # -- wrapper functions -----------------------------------------------------------------------

    def load_from_model(self, model_entity=None, local_path=None, overwrite=True, **kwargs):
        """Artifacts → ``DATALOOP_PATH/models/<model.name>/`` (or ``local_path``), then the user ``load``."""
        if model_entity is not None:
            self.model_entity = model_entity
        self._require("load", "load_from_model")
        if local_path is None:
            local_path = model_folder(self.model_entity.name)
            if overwrite:  # the runner's own folder: files of an earlier artifact set must not linger
                shutil.rmtree(local_path, ignore_errors=True)
        self.platform.download_artifacts(self.model_entity, local_path, overwrite=overwrite)
        self.artifacts_path = Path(local_path)
        logger.debug("load_from_model %s: %d artifact file(s) in %s", self.model_entity.name,
                     sum(1 for p in Path(local_path).rglob("*") if p.is_file()), local_path)
        try:
            with libraries_loading_in_job():  # see runner/gc_control.py
                self.load(str(local_path), **kwargs)
        except FileNotFoundError as err:
            if not any(Path(local_path).iterdir()):  # the adapter looked for weights a new model has not got
                err.add_note(f"model {self.model_entity.name!r} has no artifacts yet (a base model before its "
                             "first training): load gets an empty folder then, and must build the model from its "
                             "configuration")
            raise

    def save_to_model(self, local_path=None, cleanup=False, replace=True, **kwargs):
        """The user ``save`` into ``local_path``, then every file there becomes the model's artifacts.
        With ``replace`` the previous artifacts are swapped out atomically."""
        self._require("save", "save_to_model")
        if local_path is None:
            local_path = tempfile.mkdtemp(prefix=f"model_{self.model_entity.name}_")
        self.save(local_path=str(local_path), **kwargs)
        root = Path(local_path)
        files = {str(p.relative_to(root).as_posix()): p for p in sorted(root.rglob("*")) if p.is_file()}
        if not files:
            kept = "keeps its previous artifacts" if self.model_entity.artifacts.list() else "has no artifacts"
            raise SaveWroteNothing(f"{type(self).__name__}.save wrote no files, so model {self.model_entity.name!r} "
                                   f"{kept}", where=str(local_path),
                                   fix="make save(local_path) write the model's files into local_path")
        self.platform.add_artifacts(self.model_entity, files, replace=replace)
        logger.debug("save_to_model %s: %d file(s), %d bytes, from %s", self.model_entity.name, len(files),
                     sum(p.stat().st_size for p in files.values()), local_path)
        if cleanup:
            shutil.rmtree(local_path, ignore_errors=True)

    def prepare_data(self, dataset, root_path=None, data_path=None, output_path=None, overwrite=False, **kwargs):
        """Write every model subset to ``data_path/<subset>/{items,json}``, then ``convert_from_dtlpy``."""
        model = self.model_entity
        if root_path is None:
            root_path = _unique_timestamp_dir(model_data_folder(model.id, model.name))
        root_path = Path(root_path)
        data_path = Path(data_path) if data_path is not None else root_path / "datasets" / dataset.id
        output_path = Path(output_path) if output_path is not None else root_path / "output"
        data_path.mkdir(parents=True, exist_ok=True)
        output_path.mkdir(parents=True, exist_ok=True)
        subsets = (model.metadata.get("system") or {}).get("subsets")
        if not subsets:
            raise RunnerError(f"model {model.name!r} has no subsets in metadata.system.subsets",
                              fix="give the model DQL filters per subset, e.g. train / validation / test")
        annotation_subsets = (model.metadata.get("system") or {}).get("annotationsSubsets") or {}
        for subset, subset_filter in subsets.items():
            target = data_path / subset
            if target.is_dir() and any(target.iterdir()) and not overwrite:
                logger.info("subset %r already at %s; kept (overwrite=False)", subset, target)
                continue
            in_subset = self.platform.count_items(dataset, subset_filter)
            if in_subset == 0:
                raise EmptySubsetError(f"subset {subset!r} of model {model.name!r} matches no item in dataset "
                                       f"{dataset.name!r}", where=f"filter: {subset_filter}",
                                       fix="correct the subset filter or import the data it selects")
            annotation_filter = annotation_subsets.get(subset) or self._ground_truth_filter()
            if target.exists():
                shutil.rmtree(target)
            count = 0
            for selection in self._downloaded(subset_filter, annotation_filter):
                count += self.platform.export(dataset, selection, annotation_filter, target)
            if count == 0:
                raise no_annotated_items(subset, model.name, model.output_type, subset_filter, annotation_filter,
                                         bool(self.configuration.get("include_background", False)))
            left_out = in_subset - count
            logger.info("subset %r: %d items → %s%s", subset, count, target, "" if left_out <= 0 else (
                f" ({left_out} of its {in_subset} items left out: they have no annotation the model trains on"
                + ("" if self.configuration.get("include_background") else
                   "; configuration.include_background=true takes in those with none") + ")"))
        self.convert_from_dtlpy(data_path=str(data_path), **kwargs)
        return str(root_path), str(data_path), str(output_path)

    def _downloaded(self, subset_filter: dict, annotation_filter: dict) -> list[dict]:
        return downloaded(subset_filter, annotation_filter, self.model_entity.output_type,
                          bool(self.configuration.get("include_background", False)))

    def _ground_truth_filter(self) -> dict:
        return ground_truth_filter(self.model_entity.output_type,
                                   bool(self.configuration.get("include_model_annotations", False)))

    def _stamp(self, item: dl.Item, collection) -> None:
        model = self.model_entity
        for annotation in collection:
            annotation.item_id = item.id
            metadata = annotation.metadata
            user_model = (metadata.get("user") or {}).get("model")
            if isinstance(user_model, dict):
                user_model.update(model_id=model.id, name=model.name)
            confidence = user_model.get("confidence") if isinstance(user_model, dict) else None
            metadata.setdefault("system", {})["model"] = {"model_id": model.id, "name": model.name,
                                                          "confidence": confidence}

    def _encode_predictions(self, items: list, collections: Sequence):
        """Stamp and encode a batch's annotations: on the thread that predicted, so the writer thread,
        which shares the interpreter lock with the model, mostly waits on I/O."""
        for item, collection in zip(items, collections, strict=True):
            if not isinstance(collection, (dl.AnnotationCollection, list)):
                hint = ("; put each item's annotations in a dl.AnnotationCollection (collection.add(...))"
                        if isinstance(collection, dl.Annotation) else "")
                raise returned_wrongly(TypeError(
                    f"predict must return one dl.AnnotationCollection per item; its list held "
                    f"{type(collection).__name__}{hint}"), self._defined_at("predict"))
            for annotation in collection:
                if not isinstance(annotation, dl.Annotation):
                    raise returned_wrongly(TypeError(
                        f"predict must return one dl.AnnotationCollection per item, holding dl.Annotation objects; an "
                        f"item's held {type(annotation).__name__} {reprlib.repr(annotation)}: build each with "
                        "collection.add(annotation_definition=dl.Box(...), model_info={...})"),
                        self._defined_at("predict"))
                problem = inverted_box(annotation)
                if problem:
                    raise returned_wrongly(ValueError(problem), self._defined_at("predict"))
                self._boxes_outside.check(item, annotation)
                self._off_model.check(self.model_entity, item, annotation)
            self._stamp(item, collection)
        return self.platform.encode_predictions(self.model_entity, items, collections)

    def _write_predictions(self, items: list, encoded) -> list:
        return self.platform.write_predictions(self.model_entity, encoded)

    def _store_predictions(self, items: list, collections: Sequence) -> list:
        return self._write_predictions(items, self._encode_predictions(items, collections))

    def _predict_stream(self, items: Iterable, batch_size: int | None, keep: bool, **kwargs):
        self._require("predict", "predict_items")
        batch_size = self._batch_size(batch_size)
        try:
            return self.batch_runner.run(items, batch_size, self.prepare_item_func,
                                         lambda batch: self._predict_batch(batch, **kwargs), self._write_predictions,
                                         keep, encode=self._encode_predictions, own_files=self._own_files(),
                                         defined_at=self._defined_at("predict"),
                                         prepared_at=self._defined_at("prepare_item_func"))
        finally:
            self._boxes_outside.warn()
            self._off_model.warn(self.model_entity)

    def _own_files(self) -> tuple[str, ...]:
        """The source files of the adapter's own classes (not the runner's or dtlpy's): a failure is
        reported at its line there, even when the adapter is an installed package."""
        files = []
        for cls in type(self).__mro__:
            if cls.__module__.split(".")[0] in ("runner", "dtlpy", "builtins"):
                continue
            with contextlib.suppress(TypeError, OSError):
                files.append(inspect.getsourcefile(cls))
        return tuple(f for f in files if f)

    def _defined_at(self, function: str) -> str:
        return defined_at(type(self), function)

    def _predict_batch(self, batch: list, **kwargs):
        started = time.perf_counter()
        collections = self.predict(batch, **kwargs)
        logger.debug("predict: a batch of %d item(s) in %.3f s", len(batch), time.perf_counter() - started)
        if isinstance(collections, dl.AnnotationCollection):
            raise returned_wrongly(TypeError(
                f"predict returned one dl.AnnotationCollection for a batch of {len(batch)} items; it must return a "
                "list with one dl.AnnotationCollection per item, in order"), self._defined_at("predict"))
        return collections

    def predict_items(self, items: list, batch_size=None, **kwargs):
        """Predict in batches, store each item's annotations (replacing this model's earlier ones) and
        return ``(items, annotations)``. Failed batches are reported together at the end."""
        kwargs.pop("progress", None)
        items = list(items)
        result = self._predict_stream(items, batch_size, keep=True, **kwargs)
        if result.failed:
            raise PredictionError("predict_items", result.failed, len(items), result.first)
        annotations = [a for _batch, stored in result.outputs for a in stored]
        return items, annotations

    def predict_dataset(self, dataset, filters=None, batch_size=None, workers=None, **kwargs) -> int:
        """Predict every file item matching ``filters``, streamed page by page; returns the count.
        With more than one worker (``workers``, default ``self.sharding.workers``) the listing is cut
        into shards of pages, each predicted by its own process or Ray task (see runner.sharding)."""
        kwargs.pop("progress", None)
        sharding = self.sharding if workers is None else replace(self.sharding, workers=workers)
        if sharding.workers > 1:
            return run_in_shards(self, "predict", dataset, filters_json(filters), self._batch_size(batch_size),
                                 sharding, kwargs)
        result = self.predict_pages(dataset, filters, batch_size, **kwargs)
        if result.failed:
            raise PredictionError("predict_dataset", result.failed, result.processed + len(result.failed), result.first)
        return result.processed

    def predict_pages(self, dataset, filters=None, batch_size=None, span: tuple | None = None,
                      page_size: int = _PAGE_SIZE, **kwargs) -> BatchResult:
        """Predict the matching file items (only those in ``span`` of the listing, if given: see
        ``Platform.iter_items``) and return what was processed and what failed, without raising for
        failed items: a shard's work."""
        return self._predict_stream(self._file_items(dataset, filters, page_size, span), batch_size, keep=False,
                                    **kwargs)

    def _file_items(self, dataset, filters, page_size: int = _PAGE_SIZE, span: tuple | None = None):
        """The matching file items (not folders), streamed page by page."""
        listing = self.platform.iter_items(dataset, filters_json(filters), page_size, span)
        return (item for page in listing for item in page if item.type == "file")

    def _batch_size(self, batch_size=None) -> int:
        value = batch_size if batch_size is not None else self.configuration.get("batch_size", DEFAULT_BATCH_SIZE)
        if isinstance(value, str) and value.strip().isdigit() or isinstance(value, float) and value.is_integer():
            value = int(value)  # as a configuration edited by hand may hold it
        if not is_whole_number(value, 1):
            # 0 would predict nothing and score every item wrong
            raise ConfigError(f"batch size {value!r} is not a whole number of at least 1",
                              where="the batch_size argument" if batch_size is not None
                              else f"model {self.model_entity.name!r} configuration.batch_size",
                              fix="a batch size >= 1 (on the command line: batch_size=32)")
        return value

    def train_model(self, model, cleanup=False, progress=None, context=None):
        """status ``training`` → load → prepare_data → user ``train`` → save → status ``trained``. If ``train``
        raises: what is in output_path is saved (a checkpoint to resume from), status ``failed``. The error
        raised carries ``training_stopped``: (the function it stopped in, whether a checkpoint was saved)."""
        self._require("train", "train_model")
        check_train_signature(type(self))  # before the status changes: train would fail as it is called
        if model.status == "failed":  # a training that failed before train ran saved no checkpoint
            logger.warning("model %r failed before%s", model.name, "; training resumes from its saved artifacts"
                           if model.artifacts.list() else ", and has no artifacts: training starts from scratch")
        model.status = "training"
        # who trains it: a version a killed process left in status training is told from one in training now
        model.metadata.setdefault("user", {}).setdefault("runner", {})["training"] = training_claim.claim()
        model.update()
        root_path = output_path = None
        stage = "load_from_model"
        try:
            self.load_from_model(model_entity=model)
            stage = "prepare_data"
            root_path, data_path, output_path = self.prepare_data(dataset=self.model_entity.dataset)

            def on_epoch_end_callback(i_epoch, n_epoch):
                if progress is not None:
                    progress.update(progress=int(100 * (i_epoch + 1) / n_epoch),
                                    message=f"finished epoch {i_epoch + 1}/{n_epoch}")
                logger.info("epoch %d/%d done", i_epoch + 1, n_epoch)

            stage = "train"
            self.train(data_path=data_path, output_path=output_path, on_epoch_end_callback=on_epoch_end_callback)
            stage = "save_to_model"
            self.save_to_model(local_path=output_path, replace=True)
            stage = "saved"  # (a stop signal may still come before the status is)
            model.status = "trained"
            model.update()
        except BaseException as err:
            # a checkpoint only of a train that ran and failed: before it there is nothing trained to save,
            # and after it the save has just failed (or stored the whole training)
            saved = stage in ("train", "saved")
            if stage == "train":  # as dtlpy: the user save on the half-trained adapter
                try:
                    self.save_to_model(local_path=output_path, replace=True)
                except Exception as save_err:  # noqa: BLE001 - the training error is the one to raise
                    saved = False
                    logger.warning("no checkpoint of the failed training was saved: %s", one_line(save_err))
            err.training_stopped = (stage, saved)  # what the version then holds, as a command-line run says
            model.status = "failed"
            model.update()
            raise
        finally:
            if cleanup and root_path is not None:
                shutil.rmtree(root_path, ignore_errors=True)
                with contextlib.suppress(OSError):  # the model's folder, when no other copy is in it
                    Path(root_path).parent.rmdir()
        return model

    def evaluate_model(self, model, dataset, filters=None, progress=None, context=None) -> dict:
        """load → predict_dataset(filters) → user ``evaluate``; returns the metrics stored on the model."""
        platform = self._platform if self._platform is not None else platform_of(model)  # model_entity may be unset
        if platform.count_items(dataset, filters_json(filters)) == 0:  # before loading: nothing to score
            raise EmptySubsetError(f"the filter matches no item of dataset {dataset.name!r}: nothing to evaluate",
                                   where=f"filter: {filters_json(filters)}",
                                   fix="correct the filter (a dir, a filename, a tag as the items hold it)")
        self.load_from_model(model_entity=model)
        self.predict_dataset(dataset, filters=filters)
        self._last_metrics = None
        returned = self.evaluate(model=self.model_entity, dataset=dataset, filters=filters_json(filters))
        if isinstance(returned, dict):  # an evaluate that returns its metrics: store them for it
            self._name_the_subset(self.model_entity, returned, filters)
            self.platform.store_evaluation(self.model_entity, dataset, returned)
            return returned
        if self._last_metrics is not None:
            return self._last_metrics
        return self.platform.latest_evaluation(self.model_entity) or {}

    def _embed_store(self, items: list, vectors: Sequence) -> list:
        try:
            vectors = [np.asarray(v, dtype=np.float32).ravel() for v in vectors]
        except (TypeError, ValueError) as err:
            raise returned_wrongly(ValueError(f"a vector of embed's is not numbers: {err}"),
                                   self._defined_at("embed")) from None
        size = int(self.configuration.get("embeddings_size") or len(vectors[0]))
        if self._feature_set is None or self._feature_set.size != size:
            # the model's set, made with this size when new, or when it holds no vector yet
            self._feature_set = self.platform.feature_set_for(self.model_entity, size)
        try:
            self.platform.store_features(self._feature_set, items, vectors)
        except VectorsRefused as err:
            raise returned_wrongly(err, self._defined_at("embed")) from None
        return vectors

    def _embed_stream(self, items: Iterable, batch_size: int | None, keep: bool, upload: bool, **kwargs):
        self._require("embed", "embed_items")
        batch_size = self._batch_size(batch_size)
        return self.batch_runner.run(items, batch_size, self.prepare_item_func,
                                     lambda batch: self.embed(batch, **kwargs),
                                     self._embed_store if upload else None, keep, name="embed",
                                     own_files=self._own_files(), defined_at=self._defined_at("embed"),
                                     prepared_at=self._defined_at("prepare_item_func"))

    def embed_items(self, items: list, upload_features=None, batch_size=None, progress=None, **kwargs):
        """Embed in batches; store one vector per item in the model's feature set. Returns (items, vectors)."""
        items = list(items)
        result = self._embed_stream(items, batch_size, keep=True, upload=upload_features is not False, **kwargs)
        if result.failed:
            raise PredictionError("embed_items", result.failed, len(items), result.first)
        return ([i for batch, _v in result.outputs for i in batch],
                [v for _batch, vectors in result.outputs for v in vectors])

    def embed_dataset(self, dataset, filters=None, upload_features=None, batch_size=None, progress=None,
                      workers=None, **kwargs):
        """Embed every file item matching ``filters``, streamed; returns the count. With more than one
        worker (as ``predict_dataset``) the shards store their vectors in the model's feature set."""
        sharding = self.sharding if workers is None else replace(self.sharding, workers=workers)
        if sharding.workers > 1 and upload_features is not False:
            self._require("embed", "embed_dataset")
            return run_in_shards(self, "embed", dataset, filters_json(filters), self._batch_size(batch_size),
                                 sharding, kwargs)
        result = self._embed_stream(self._file_items(dataset, filters), batch_size, keep=False,
                                    upload=upload_features is not False, **kwargs)
        if result.failed:
            raise PredictionError("embed_dataset", result.failed, result.processed + len(result.failed), result.first)
        return result.processed

    def embed_pages(self, dataset, filters=None, batch_size=None, span: tuple | None = None,
                    page_size: int = _PAGE_SIZE, **kwargs) -> BatchResult:
        """Embed the matching file items (only those in ``span`` of the listing, if given) and store their
        vectors; failed items are returned, not raised: a shard's work."""
        return self._embed_stream(self._file_items(dataset, filters, page_size, span), batch_size, keep=False,
                                  upload=True, **kwargs)

    @property
    def feature_set(self) -> dl.FeatureSet:
        if self._feature_set is None:
            self._feature_set = self.platform.feature_set_for(
                self.model_entity, int(self.configuration.get("embeddings_size", 256)))
        return self._feature_set


def _init_adapter_state(adapter) -> None:
    adapter.logger = logger
    adapter._model_entity = None
    adapter._configuration = None
    adapter.adapter_defaults = None
    adapter.model = None
    adapter.bucket_path = None
    adapter.project = None
    adapter._feature_set = None
    adapter._batch_runner = None
    adapter._platform = None
    adapter._last_metrics = None
    adapter.metric_functions = None  # name -> f(y_true, y_pred): metrics the default evaluate adds
    adapter.sharding = Sharding()  # how predict_dataset spreads over workers (1: this process)
    adapter.artifacts_path = None  # where load_from_model put the artifacts
    adapter.item_to_batch_mapping = {}
    adapter._boxes_outside = BoxesOutside()
    adapter._off_model = OffModel()


_NOT_COPIED = {"__init__", "__dict__", "__weakref__", "__module__", "__qualname__", "__doc__"}


def check_prepare_settings(configuration: Mapping, where: str) -> None:
    """``prepare_workers`` and ``prepare_in``, which the batch pipeline reads: checked by the adapter as
    it makes its pipeline, and by a command-line run before anything is stored. ``where`` names the
    configuration (``model 'x' configuration``, ``adapter.configuration``)."""
    workers = configuration.get("prepare_workers", DEFAULT_PREPARE_WORKERS)
    if not is_whole_number(workers, 1):
        raise ConfigError(f"configuration.prepare_workers is {workers!r}, not a whole number of at least 1",
                          where=f"{where}.prepare_workers",
                          fix="prepare_workers: 4 (the default; at most one per core is used)")
    prepare_in = configuration.get("prepare_in", "threads")
    if prepare_in not in PREPARE_IN:
        raise ConfigError(f"configuration.prepare_in is {prepare_in!r}, not one of {list(PREPARE_IN)}",
                          where=f"{where}.prepare_in", fix="prepare_in: processes (for a prepare_item_func that runs "
                          "Python code; on the command line +adapter.configuration.prepare_in=processes) or threads "
                          "(the default)")


def ground_truth_filter(output_type: str | None, include_model_annotations: bool) -> dict:
    """The annotations a model trains on: its output type (polygons and masks go together), and no
    model's predictions unless ``configuration.include_model_annotations``."""
    clauses = []
    if types := output_types(output_type):
        clauses.append({"type": {"$in": types}})
    if not include_model_annotations:
        clauses.append({"metadata.system.model.name": {"$exists": False}})
    return {"filter": {"$and": clauses}, "resource": "annotations"}


def downloaded(subset_filter: dict | None, annotation_filter: dict | None, output_type: str | None,
               include_background: bool) -> list[dict]:
    """The item filters of a subset's download, as dtlpy's prepare_data makes them: items with an
    annotation the model trains on (the annotation filter joined in), and with
    ``configuration.include_background`` also the items with no annotation at all. An embedding
    model, or one without an output type, takes every item of the subset (dtlpy joins no filter then)."""
    if output_type in ("embedding", None):
        return [subset_filter]
    subset_filter = dict(subset_filter or {"filter": {}, "resource": "items"})
    join_filter = (annotation_filter or {}).get("filter") or {}
    if "join" in subset_filter:  # the subset's own join: both hold for the same annotation
        join_filter = {"$and": [subset_filter["join"].get("filter") or {}, join_filter]}
    annotated = {**subset_filter, "join": {"on": {"resource": "annotations", "local": "itemId", "forigen": "id"},
                                           "filter": join_filter}}
    if not include_background:
        return [annotated]
    background = {k: v for k, v in subset_filter.items() if k != "join"}
    background["filter"] = {"$and": [subset_filter.get("filter") or {}, {"annotated": False}]}
    return [annotated, background]


def no_annotated_items(subset: str, model_name: str, output_type: str | None, subset_filter, annotation_filter,
                       include_background: bool, held: list[str] | None = None) -> EmptySubsetError:
    """``held``: the annotation types its items have (of a sample), to name instead."""
    return EmptySubsetError(
        f"no item of subset {subset!r} has an annotation of model {model_name!r}'s output type {output_type!r}"
        + ("" if not include_background else " or no annotation at all")
        + ": prepare_data takes, as on Dataloop, only items with such annotations"
        + (f" (its items have annotations of type {', '.join(map(repr, held))})" if held else ""),
        where=f"filter: {subset_filter}; annotations: {annotation_filter}",
        fix="annotate the items, or check the model's output_type against the dataset's annotations"
            + ("" if include_background else "; +adapter.configuration.include_background=true takes items "
                                             "without annotations too"))


def new_adapter(adapter_class: type, model: dl.Model):
    """An instance of a bound adapter class for a run on ``model``. A class whose own ``__init__``
    takes the model (``def __init__(self, model_entity)``, as Dataloop builds an adapter with its
    service's ``init_inputs``) is given it, and so loads it there, as on Dataloop; any other is built
    bare and loads the model in the wrapper function that needs it (one load, not two)."""
    return adapter_class(model_entity=model) if _init_takes_model(adapter_class) else adapter_class()


def _own_init(adapter_class: type) -> inspect.Signature | None:
    """The signature of the class's own ``__init__``; None for the runner's or dtlpy's, or for one with
    no signature to read (a builtin's or C extension's)."""
    own = getattr(adapter_class, "__wrapped_adapter__", adapter_class).__init__
    if own in (dl.BaseModelAdapter.__init__, BaseModelAdapter.__init__):
        return None
    try:
        return inspect.signature(own)
    except (TypeError, ValueError):
        return None


def _init_takes_model(adapter_class: type) -> bool:
    signature = _own_init(adapter_class)
    return signature is not None and "model_entity" in signature.parameters


def check_adapter_class(adapter_class: type, steps: Sequence[str]) -> None:
    """A ``ConfigError``, before a run stores anything, for a class ``new_adapter`` cannot build (an
    ``__init__`` with a required argument besides ``model_entity``) or whose ``train`` cannot take the
    call ``train_model`` makes."""
    signature = _own_init(adapter_class)
    after_self = list(signature.parameters.values())[1:] if signature else []
    needed = [p.name for p in after_self if p.default is p.empty and p.name != "model_entity"
              and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if needed:
        own_class = getattr(adapter_class, "__wrapped_adapter__", adapter_class)  # not the binding's __init__
        name = own_class.__name__
        built_as = (f"{name}(model_entity=<the model version>), as Dataloop does" if "model_entity" in
                    signature.parameters else f"{name}() (and as {name}(model_entity=<the model version>), as "
                    "Dataloop does, when __init__ takes model_entity)")
        raise ConfigError(
            f"{name}.__init__{signature} needs {', '.join(map(repr, needed))}, which a run does not give: it builds "
            f"the adapter as {built_as}", where=defined_at(own_class, "__init__"),
            fix=f"give {', '.join(needed)} a default, or read {'it' if len(needed) == 1 else 'them'} from the model's "
                f"configuration in load (self.configuration.get({needed[0]!r}, <default>); set with "
                f"adapter.configuration.{needed[0]}=... on the command line)")
    if "train" in steps:
        check_train_signature(adapter_class)


def check_train_signature(adapter_class: type) -> None:
    """``train`` takes ``train_model``'s call, keywords and all, or a ``ConfigError`` naming its signature."""
    train = adapter_class.train
    try:
        signature = inspect.signature(train)
        signature.bind(None, data_path="", output_path="", on_epoch_end_callback=None)  # None for self
    except ValueError:  # no signature to read: the call will tell
        return
    except TypeError as err:
        raise ConfigError(
            f"{train.__qualname__}{signature} cannot take the call train_model makes, train(data_path=..., "
            f"output_path=..., on_epoch_end_callback=...): {err}", where=defined_at(adapter_class, "train"),
            fix="define it with dtlpy's signature, train(self, data_path, output_path, **kwargs) (the callback, "
                "which reports each epoch's end, comes in kwargs)") from None


def defined_at(adapter_class: type, function: str) -> str:
    """``file:line in Class.function`` of ``function`` of the adapter class."""
    # a decorated one (@torch.no_grad(), any functools.wraps wrapper) is the decorator's function, in
    # the library's file: its __wrapped__ chain ends at the adapter's own
    method = inspect.unwrap(getattr(adapter_class, function, None))
    try:
        return f"{inspect.getsourcefile(method)}:{inspect.getsourcelines(method)[1]} in {method.__qualname__}"
    except (TypeError, OSError):
        return f"{adapter_class.__name__}.{function}"


def bind_adapter_class(cls: type) -> type:
    """The class to instantiate for ``cls``: itself if it subclasses ``runner.BaseModelAdapter``; for a
    class written against ``dl.BaseModelAdapter``, a subclass that keeps its user functions (and
    ``__init__``) and takes the runner's wrapper functions and defaults. Its source is not touched."""
    if not isinstance(cls, type) or not issubclass(cls, dl.BaseModelAdapter):
        raise TypeError(f"{cls!r} is not a model adapter class: subclass runner.BaseModelAdapter or dl.BaseModelAdapter")
    if issubclass(cls, BaseModelAdapter):
        return cls
    namespace = {}
    for name, value in vars(BaseModelAdapter).items():
        if name in _NOT_COPIED:
            continue
        if name in USER_FUNCTIONS and getattr(cls, name) is not getattr(dl.BaseModelAdapter, name):
            continue  # the adapter's own user function
        namespace[name] = value
    replaced = sorted(name for name in WRAPPER_FUNCTIONS if name in namespace and getattr(cls, name, None)
                      is not getattr(dl.BaseModelAdapter, name, None))
    if replaced:  # the class's own versions talk to the Dataloop servers; here they would not run
        logger.warning("%s overrides the wrapper function(s) %s; the runner runs its own instead (they call the "
                       "user functions the same way): move that code into the user functions (%s) to have it run "
                       "here too", cls.__qualname__, ", ".join(replaced), ", ".join(USER_FUNCTIONS))
    original_init = cls.__init__

    def __init__(self, *args, **kwargs):
        _init_adapter_state(self)
        original_init(self, *args, **kwargs)

    namespace.update(__init__=__init__, __module__=cls.__module__, __qualname__=cls.__qualname__,
                     __doc__=cls.__doc__, __wrapped_adapter__=cls)
    return type(cls.__name__, (cls,), namespace)
