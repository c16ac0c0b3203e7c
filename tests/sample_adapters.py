"""Adapters the tests run. ``CentroidAdapter`` is written the way public Dataloop adapters are:
it subclasses ``dl.BaseModelAdapter`` directly and uses only dtlpy's API."""

from __future__ import annotations

import json
import os

import dtlpy as dl
import numpy as np
from PIL import Image

from adapters.sklearn_classifier import SklearnImageClassifier
from runner import BaseModelAdapter


def one_each(batch, definition, model_name: str, confidence: float = 0.5) -> list[dl.AnnotationCollection]:
    """A collection per item of ``batch`` holding one annotation, ``definition()`` (a new one each),
    stamped as ``model_name``'s with ``confidence``."""
    out = []
    for _item in batch:
        collection = dl.AnnotationCollection()
        collection.add(annotation_definition=definition(), model_info={"name": model_name, "confidence": confidence})
        out.append(collection)
    return out


class CentroidAdapter(dl.BaseModelAdapter):
    """Nearest class centroid over pixels, Dataloop style (no runner import)."""

    def load(self, local_path, **kwargs):
        path = os.path.join(local_path, "centroids.npz")
        self.centroids = dict(np.load(path)) if os.path.exists(path) else None

    def save(self, local_path, **kwargs):
        np.savez(os.path.join(local_path, "centroids.npz"), **self.centroids)

    def convert_from_dtlpy(self, data_path, **kwargs):
        # as Dataloop adapters do: read the json/ files of each subset into the adapter's own format
        self.samples = {}
        for subset in os.listdir(data_path):
            rows = []
            json_root = os.path.join(data_path, subset, "json")
            for folder, _dirs, files in os.walk(json_root):
                for name in files:
                    with open(os.path.join(folder, name)) as f:
                        item = json.load(f)
                    labels = [a["label"] for a in item["annotations"] if a["type"] == "class"]
                    if labels:
                        rows.append((os.path.join(data_path, subset, "items", item["filename"].lstrip("/")), labels[0]))
            self.samples[subset] = rows

    def train(self, data_path, output_path, **kwargs):
        scale = self.configuration.get("pixel_scale", 255.0)  # read with a default, as Dataloop adapters do
        sums, counts = {}, {}
        for path, label in self.samples["train"]:
            x = np.asarray(Image.open(path), dtype=np.float64).ravel() / scale
            sums[label] = sums.get(label, 0) + x
            counts[label] = counts.get(label, 0) + 1
        self.centroids = {label: sums[label] / counts[label] for label in sums}
        missing = set(self.model_entity.labels) - set(self.centroids)
        self.model_entity.metrics.create(
            samples=[dl.PlotSample(figure="classes seen", legend="train", x=0, y=len(self.centroids))],
            dataset_id=self.model_entity.dataset_id)
        self.configuration["classes_without_samples"] = sorted(missing)
        kwargs["on_epoch_end_callback"](0, 1)

    def predict(self, batch, **kwargs):
        labels = sorted(self.centroids)
        matrix = np.stack([self.centroids[label] for label in labels])
        scale = self.configuration.get("pixel_scale", 255.0)
        out = []
        for image in batch:
            x = np.asarray(image, dtype=np.float64).ravel() / scale
            distance = np.linalg.norm(matrix - x, axis=1)
            best = int(np.argmin(distance))
            collection = dl.AnnotationCollection()
            collection.add(annotation_definition=dl.Classification(label=labels[best]),
                           model_info={"name": self.model_entity.name, "model_id": self.model_entity.id,
                                       "confidence": float(1.0 / (1.0 + distance[best]))})
            out.append(collection)
        return out

    def embed(self, batch, **kwargs):
        return [np.asarray(image, dtype=np.float32).ravel() / 255.0 for image in batch]


class CentroidBuiltWithItsModel(CentroidAdapter):
    """Takes its model in ``__init__``, as Dataloop builds an adapter (the service's ``init_inputs``),
    and reads its configuration there."""

    def __init__(self, model_entity: dl.Model):
        super().__init__(model_entity=model_entity)
        self.scale_at_init = self.model_entity.configuration.get("pixel_scale", 255.0)
        self.loaded_at_init = self.model_entity.name


class FlakyAdapter(BaseModelAdapter):
    """Predicts the constant label "0", and fails any batch holding an item named in ``fail_names``."""

    fail_names: set[str] = set()

    def load(self, local_path, **kwargs):
        self.model = "constant"

    def save(self, local_path, **kwargs):
        with open(os.path.join(local_path, "constant.txt"), "w") as f:
            f.write("0")

    def prepare_item_func(self, item):
        return item.name

    def predict(self, batch, **kwargs):
        bad = [name for name in batch if name in self.fail_names]
        if bad:
            raise RuntimeError(f"cannot predict {bad}")
        return one_each(batch, lambda: dl.Classification(label="0"), self.model_entity.name)


class NoPredictAdapter(BaseModelAdapter):
    def load(self, local_path, **kwargs):
        pass


class ConfiguredFlakyAdapter(FlakyAdapter):
    """FlakyAdapter whose failing names come from the model configuration (``fail_names``), so a
    worker process that loads the model fails on the same items."""

    def load(self, local_path, **kwargs):
        super().load(local_path, **kwargs)
        self.fail_names = set(self.configuration.get("fail_names", []))


class EvaluateReturnsModel(SklearnImageClassifier):
    """evaluate as many Dataloop adapters write it: metrics sent with model.metrics.create, the model
    returned (no metrics dict)."""

    def evaluate(self, model, dataset, filters=None):
        model.metrics.create(samples=[dl.PlotSample(figure="eval", legend="score", x=0, y=0.5)],
                             dataset_id=dataset.id)
        return model


class PrepareReportsWhere(BaseModelAdapter):
    """prepare_item_func returns where it ran (process id) and what ``load`` read from the artifacts;
    it raises on the names in ``configuration.fail_names``, returns None for those in ``configuration.none_names``
    and ends its process on ``configuration.exit_name``;
    ``configuration.fail_load_in_workers`` makes ``load`` fail in any process but the main one;
    ``configuration.return_generator`` returns a value that does not pickle.
    predict labels each item with that process id, so the stored annotations show where it was prepared."""

    def load(self, local_path, **kwargs):
        import multiprocessing

        if self.configuration.get("fail_load_in_workers") and multiprocessing.parent_process() is not None:
            raise RuntimeError("this load runs in the main process only")
        with open(os.path.join(local_path, "tag.txt")) as f:
            self.tag = f.read()

    def save(self, local_path, **kwargs):
        with open(os.path.join(local_path, "tag.txt"), "w") as f:
            f.write(getattr(self, "tag", "from-artifacts"))

    def prepare_item_func(self, item):
        if item.name in self.configuration.get("fail_names", []):
            raise ValueError(f"cannot prepare {item.name}\nsecond line of the message")
        if item.name in self.configuration.get("none_names", []):
            return None  # a path of the function that forgot its return
        if item.name == self.configuration.get("exit_name"):
            os._exit(3)  # a worker that dies (out of memory, a crash in a C library)
        if self.configuration.get("return_generator"):
            return (value for value in range(3))  # a value that does not pickle
        return os.getpid(), self.tag, super().prepare_item_func(item).shape

    def predict(self, batch, **kwargs):
        out = []
        for pid, tag, shape in batch:
            collection = dl.AnnotationCollection()
            collection.add(annotation_definition=dl.Classification(label=f"{pid}/{tag}/{shape[0]}x{shape[1]}"),
                           model_info={"name": self.model_entity.name, "confidence": 1.0})
            out.append(collection)
        return out
