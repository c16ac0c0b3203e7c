"""Image classification with any scikit-learn estimator over resized pixels.

Configuration keys: ``image_size`` (side the images are resized to, default 8), ``grayscale``
(default true), ``estimator`` (``{"_target_": "sklearn.linear_model.LogisticRegression", ...}``).
Persisted with skops; loading refuses any type outside scikit-learn and numpy.
"""

from __future__ import annotations

import importlib
import importlib.abc
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import dtlpy as dl
import numpy as np
from PIL import Image

from runner import BaseModelAdapter
from runner.images import eight_bit

from .artifacts import check_own_artifacts, model_status
from .settings import flag, whole

logger = logging.getLogger(__name__)

MODEL_FILE = "model.skops"
DEFAULT_ESTIMATOR = {"_target_": "sklearn.linear_model.LogisticRegression", "max_iter": 1000}
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.", "scipy.")


def build_estimator(spec: dict, key: str = "estimator"):
    """An estimator from ``{"_target_": "sklearn.<module>.<Class>", **params}``; only scikit-learn classes.
    ``key`` names the configuration key in messages."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"{key} must be a mapping such as {{_target_: sklearn.linear_model.LogisticRegression, "
                         f"max_iter: 1000}}, got {spec!r}")
    spec = dict(spec)
    target = spec.pop("_target_", None)
    if not isinstance(target, str) or not target.startswith("sklearn."):
        raise ValueError(f"{key}._target_ must name a scikit-learn class such as "
                         f"'sklearn.linear_model.LogisticRegression', got {target!r}")
    module_name, _, class_name = target.rpartition(".")
    try:
        estimator_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{key}._target_ {target!r} cannot be imported: {err}") from err
    return estimator_class(**spec)


def _skops_io():
    """``skops.io``, imported without torch. Its import lists every scikit-learn estimator by walking
    scikit-learn's packages, ``sklearn.externals.array_api_compat.torch`` among them, which imports
    torch when it is installed: seconds, and a scikit-learn job stopped by Ctrl-C in that import is
    left with a half-initialised torch. While torch is not imported yet, it is kept out of that walk
    (which skips a package whose import fails); it imports as usual afterwards."""
    if "skops.io" in sys.modules or "torch" in sys.modules:
        import skops.io as sio

        return sio
    blocker = _NoTorch()  # an import finder, not sys.modules["torch"] = None: code that asks whether torch
    sys.meta_path.insert(0, blocker)  # is imported ("torch" in sys.modules) must not find it half-there
    try:
        import skops.io as sio
    finally:
        sys.meta_path.remove(blocker)
    return sio


class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (kept out of skops's import)", name=name)
        return None


def load_trusted_skops(path: str):
    """The object in a skops file, refusing any type outside scikit-learn, numpy and scipy: nothing is
    unpickled."""
    sio = _skops_io()  # slow to import (it walks every scikit-learn estimator): only when needed
    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if refused:
        raise ValueError(f"{path} holds types outside scikit-learn/numpy/scipy: {refused}; refusing to load it")
    return sio.load(path, trusted=untrusted)


def dump_skops(obj, path: str) -> None:
    _skops_io().dump(obj, path)


def class_probabilities(estimator, features: np.ndarray) -> np.ndarray:
    """``predict_proba`` where the estimator has it; else a softmax of ``decision_function``; else one-hot."""
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(features)
    if hasattr(estimator, "decision_function"):
        decision = np.asarray(estimator.decision_function(features), dtype=np.float64)
        if decision.ndim == 1:  # binary: the score of classes_[1]
            decision = np.stack([-decision, decision], axis=1)
        decision -= decision.max(axis=1, keepdims=True)
        exp = np.exp(decision)
        return exp / exp.sum(axis=1, keepdims=True)
    predicted = estimator.predict(features)
    return (predicted[:, None] == estimator.classes_[None, :]).astype(np.float64)


class SkopsClassifier(BaseModelAdapter):
    """A scikit-learn classifier kept in one skops file (``model_file``): its load, save, and the
    classifications its class probabilities give. Subclasses train it and feed it."""

    model_file = MODEL_FILE

    def load(self, local_path, **kwargs):
        path = os.path.join(local_path, self.model_file)
        if os.path.exists(path):
            self.model = load_trusted_skops(path)
            return
        self.model = None  # not trained yet, or the artifacts are another adapter's
        check_own_artifacts(local_path, [self.model_file], model_status(self), logger)

    def save(self, local_path, **kwargs):
        if self.model is None:
            raise ValueError("nothing to save: the classifier has not been trained")
        dump_skops(self.model, os.path.join(local_path, self.model_file))

    def classifications(self, features) -> list[dl.AnnotationCollection]:
        """One collection per row of ``features``: the most probable class, its probability the confidence."""
        if self.model is None:
            raise ValueError("the classifier has not been trained: run the train pipeline first")
        probabilities = class_probabilities(self.model, features)
        collections = []
        for row in probabilities:
            best = int(np.argmax(row))
            collection = dl.AnnotationCollection()
            collection.add(annotation_definition=dl.Classification(label=str(self.model.classes_[best])),
                           model_info={"name": self.model_entity.name, "model_id": self.model_entity.id,
                                       "confidence": float(row[best])})
            collections.append(collection)
        return collections


class SklearnImageClassifier(SkopsClassifier):

    def load(self, local_path, **kwargs):
        self._image_settings()  # a bad key fails here, before prepare_data exports anything
        spec = self.configuration.get("estimator")
        if spec is not None and not isinstance(spec, Mapping):
            build_estimator(spec)  # its ValueError says what an estimator setting looks like
        super().load(local_path, **kwargs)

    def _image_settings(self) -> tuple[int, bool]:
        return whole(self.configuration, "image_size", 8), flag(self.configuration, "grayscale", True)

    def _features(self, image: np.ndarray) -> np.ndarray:
        size, grayscale = self._image_settings()
        picture = Image.fromarray(image.squeeze(-1) if image.ndim == 3 and image.shape[-1] == 1 else image)
        picture = picture.convert("L" if grayscale else "RGB").resize((size, size), Image.BILINEAR)
        return np.asarray(picture, dtype=np.float32).ravel() / 255.0

    def train(self, data_path, output_path, **kwargs):
        features, labels = self._load_subset(Path(data_path) / "train")
        spec = self.configuration.get("estimator") or DEFAULT_ESTIMATOR
        self.model = build_estimator(spec).fit(features, labels)
        callback = kwargs.get("on_epoch_end_callback")
        if callback is not None:
            callback(0, 1)

    def _load_subset(self, subset_path: Path) -> tuple[np.ndarray, list[str]]:
        features, labels = [], []
        for json_file in sorted((subset_path / "json").rglob("*.json")):
            item = json.loads(json_file.read_text())
            classes = [a["label"] for a in item.get("annotations", []) if a.get("type") == "class"]
            if not classes:
                continue
            with Image.open(subset_path / "items" / item["filename"].lstrip("/")) as image:
                features.append(self._features(np.asarray(eight_bit(image))))  # as prepare_item_func reads it
            labels.append(classes[0])
        if not features:
            raise ValueError(f"no labelled images under {subset_path}: the train subset needs class annotations")
        return np.stack(features), labels

    def predict(self, batch, **kwargs):
        if self.model is None:  # before the features: an untrained model says so, not a resize error
            raise ValueError("the classifier has not been trained: run the train pipeline first")
        return self.classifications(np.stack([self._features(image) for image in batch]))


__all__ = ["SklearnImageClassifier", "SkopsClassifier", "build_estimator", "class_probabilities", "dump_skops", "load_trusted_skops"]
