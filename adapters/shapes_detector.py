"""Shape detection without a neural network: colour-distance foreground, connected components, and a
scikit-learn classifier over per-component shape features.

Per image: the background colour is the median of the image border; pixels farther than ``threshold``
from it (Euclidean RGB distance) are foreground; each 8-connected component of at least ``min_area``
pixels (holes filled) is a candidate. A classifier trained on the candidates of the ``train`` subset
(labelled by the ground-truth box they overlap with IoU >= ``match_iou``, else ``background``) labels it
from scale- and rotation-invariant features (fill of its box, aspect, solidity, compactness, Hu moments,
radial profile); the confidence is the classifier's probability of that label.

Configuration keys (defaults):

- ``threshold`` (45.0): foreground colour distance from the background, 0..441 (for grayscale 0..255).
- ``border`` (2): width in pixels of the image border whose median colour is the background.
- ``smooth`` (1): side of a median filter over the distance map before thresholding; 1 = none.
- ``min_area`` (20): smallest component kept, in pixels.
- ``match_iou`` (0.5): box IoU for a train component to take a ground-truth label.
- ``min_score`` (0.05 here, 0.5 for the segmenter): predictions below it are dropped.
- ``classifier`` (``{"_target_": "sklearn.ensemble.RandomForestClassifier", "n_estimators": 100,
  "random_state": 0}``): any scikit-learn classifier with ``predict_proba``, built from ``_target_``
  and its parameters.

Persisted as ``shapes_classifier.skops`` (loading refuses any type outside scikit-learn, numpy, scipy)
and ``shapes_model.json`` (the feature set and classes). No pickle.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import dtlpy as dl
import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from adapters.sklearn_classifier import build_estimator, dump_skops, load_trusted_skops
from runner import BaseModelAdapter
from runner.images import eight_bit

from .artifacts import check_own_artifacts, model_status

logger = logging.getLogger(__name__)

MODEL_FILE = "shapes_classifier.skops"
META_FILE = "shapes_model.json"
BACKGROUND = "__background__"
FORMAT = 1
DEFAULT_CLASSIFIER = {"_target_": "sklearn.ensemble.RandomForestClassifier", "n_estimators": 100,
                      "random_state": 0}
FEATURES = ("fill", "aspect", "solidity", "compactness", "circle_fill", "radial_cv", "radial_min_max",
            "hu1", "hu2", "hu3", "hu4", "log_area")
_EIGHT = np.ones((3, 3), bool)


# -- components --------------------------------------------------------------------------------------


@dataclass
class Component:
    """A foreground blob: ``mask`` is its tight boolean crop at ``(top, left)`` of the image."""

    mask: np.ndarray
    top: int
    left: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        """left, top, right, bottom; right/bottom are the last column/row + 1 (COCO's bbox width)."""
        height, width = self.mask.shape
        return self.left, self.top, self.left + width, self.top + height

    def full_mask(self, height: int, width: int) -> np.ndarray:
        out = np.zeros((height, width), bool)
        h, w = self.mask.shape
        out[self.top:self.top + h, self.left:self.left + w] = self.mask
        return out


def foreground_distance(image: np.ndarray, border: int = 2, smooth: int = 1) -> np.ndarray:
    """Per-pixel colour distance from the background colour (median of the ``border``-pixel frame)."""
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    b = max(1, min(int(border), min(pixels.shape[:2]) // 2))
    frame = np.concatenate([pixels[:b].reshape(-1, pixels.shape[2]), pixels[-b:].reshape(-1, pixels.shape[2]),
                            pixels[b:-b, :b].reshape(-1, pixels.shape[2]),
                            pixels[b:-b, -b:].reshape(-1, pixels.shape[2])])
    background = np.median(frame, axis=0)
    distance = np.sqrt(((pixels - background) ** 2).sum(axis=2))
    if int(smooth) > 1:
        distance = ndimage.median_filter(distance, size=int(smooth))
    return distance


def find_components(image: np.ndarray, threshold: float = 45.0, border: int = 2, smooth: int = 1,
                    min_area: int = 20) -> list[Component]:
    """The 8-connected foreground blobs of at least ``min_area`` pixels, holes filled, in scan order."""
    foreground = foreground_distance(image, border, smooth) > float(threshold)
    labels, _count = ndimage.label(foreground, structure=_EIGHT)
    components = []
    for index, where in enumerate(ndimage.find_objects(labels), start=1):
        if where is None:
            continue
        mask = ndimage.binary_fill_holes(labels[where] == index)
        if int(mask.sum()) >= int(min_area):
            components.append(Component(mask, where[0].start, where[1].start))
    return components


def _hu(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    x, y = cols - cols.mean(), rows - rows.mean()
    m00 = float(len(rows))

    def eta(p: int, q: int) -> float:
        return float((x ** p * y ** q).sum()) / m00 ** (1 + (p + q) / 2)

    n20, n02, n11 = eta(2, 0), eta(0, 2), eta(1, 1)
    n30, n03, n21, n12 = eta(3, 0), eta(0, 3), eta(2, 1), eta(1, 2)
    return np.array([n20 + n02,
                     (n20 - n02) ** 2 + 4 * n11 ** 2,
                     (n30 - 3 * n12) ** 2 + (3 * n21 - n03) ** 2,
                     (n30 + n12) ** 2 + (n21 + n03) ** 2])


def shape_features(mask: np.ndarray) -> np.ndarray:
    """Scale- and rotation-invariant features of one tight boolean crop (names in ``FEATURES``)."""
    height, width = mask.shape
    area = float(mask.sum())
    rows, cols = np.nonzero(mask)
    # the pixels as unit squares: their corners span the shape's outline
    corners = np.unique(np.concatenate([np.stack([cols + dx, rows + dy], axis=1)
                                        for dx in (0, 1) for dy in (0, 1)]), axis=0).astype(np.float64)
    try:
        hull = ConvexHull(corners)
        hull_area, hull_perimeter, outline = hull.volume, hull.area, corners[hull.vertices]
    except QhullError:
        hull_area, hull_perimeter, outline = area, 2.0 * (height + width), corners
    centre = np.array([cols.mean() + 0.5, rows.mean() + 0.5])
    edge = mask & ~ndimage.binary_erosion(mask)
    edge_rows, edge_cols = np.nonzero(edge)
    radial = np.hypot(edge_cols + 0.5 - centre[0], edge_rows + 0.5 - centre[1])
    r_max = float(np.hypot(*(outline - centre).T).max())
    return np.array([
        area / (height * width),
        min(height, width) / max(height, width),
        area / max(hull_area, 1.0),
        4 * math.pi * hull_area / max(hull_perimeter, 1.0) ** 2,
        area / (math.pi * max(r_max, 0.5) ** 2),
        float(radial.std() / max(radial.mean(), 1e-6)),
        float(radial.min() / max(radial.max(), 1e-6)),
        *_hu(mask),
        math.log(area),
    ])


def _iou(a, b) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _decode_mask(coordinates) -> np.ndarray:
    """A ``binary`` annotation's PNG data URI → bool mask (alpha > 127, as dtlpy; non-zero without alpha)."""
    uri = coordinates.get("data") if isinstance(coordinates, dict) else coordinates
    payload = uri.split(",", 1)[1] if uri.startswith("data:") else uri
    with Image.open(io.BytesIO(base64.b64decode(payload))) as image:
        if "A" in image.getbands() or "transparency" in image.info:
            return np.asarray(image.convert("RGBA"))[:, :, 3] > 127
        return np.asarray(image.convert("L")) > 0


def truth_boxes(annotations: list[dict]) -> list[tuple[str, tuple[float, float, float, float]]]:
    """(label, (left, top, right, bottom)) of every box, polygon and mask annotation, in the components'
    convention (right/bottom = last pixel + 1)."""
    out = []
    for annotation in annotations:
        kind, coordinates, label = annotation.get("type"), annotation.get("coordinates"), annotation.get("label")
        if kind == "box":
            (x1, y1), (x2, y2) = ((float(p["x"]), float(p["y"])) for p in coordinates)
            out.append((label, (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))))
        elif kind == "segment":
            rings = coordinates if coordinates and isinstance(coordinates[0], list) else [coordinates]
            points = np.array([(float(p["x"]), float(p["y"])) for ring in rings for p in ring])
            x0, y0 = points.min(axis=0)
            x1, y1 = points.max(axis=0)
            out.append((label, (float(x0), float(y0), float(x1) + 1, float(y1) + 1)))
        elif kind == "binary":
            rows, cols = np.nonzero(_decode_mask(coordinates))
            if len(rows):
                out.append((label, (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)))
    return out


def read_image(path: Path) -> np.ndarray:
    """HWC uint8, as the runner's ``prepare_item_func`` gives it (L stays one channel, others → RGB)."""
    with Image.open(path) as image:
        array = np.asarray(eight_bit(image), dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


# -- the adapters ------------------------------------------------------------------------------------


class ShapeComponentsAdapter(BaseModelAdapter):
    """Components + classifier; subclasses turn a classified component into annotations."""

    default_min_score = 0.05

    def load(self, local_path, **kwargs):
        path, meta_path = os.path.join(local_path, MODEL_FILE), os.path.join(local_path, META_FILE)
        if not os.path.exists(path):
            self.model = None  # not trained yet, or the artifacts are another adapter's
            check_own_artifacts(local_path, [MODEL_FILE], model_status(self), logger)
            return
        meta = json.loads(Path(meta_path).read_text()) if os.path.exists(meta_path) else {}
        if meta.get("format") != FORMAT or meta.get("features") != list(FEATURES):
            raise ValueError(f"{meta_path} describes another feature set ({meta.get('features')}); retrain the model")
        self.model = load_trusted_skops(path)

    def save(self, local_path, **kwargs):
        if self.model is None:
            raise ValueError("nothing to save: the shape classifier has not been trained")
        dump_skops(self.model, os.path.join(local_path, MODEL_FILE))
        meta = {"format": FORMAT, "features": list(FEATURES), "classes": [str(c) for c in self.model.classes_],
                "background": BACKGROUND}
        Path(local_path, META_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    # -- shared steps

    def components(self, image: np.ndarray) -> list[Component]:
        get = self.configuration.get
        settings = {"threshold": float(get("threshold", 45.0)), "border": int(get("border", 2)),
                    "smooth": int(get("smooth", 1)), "min_area": int(get("min_area", 20))}
        below = [f"{key}={value:g}" for key, value in settings.items()
                 if value < {"threshold": 0, "border": 1, "smooth": 1, "min_area": 1}[key]]
        if below:  # a negative threshold makes every pixel foreground: one component, the whole image
            raise ValueError(f"configuration {', '.join(below)} is out of range: threshold >= 0, border, smooth and "
                             "min_area >= 1 (see the adapter's docstring)")
        return find_components(image, **settings)

    def _subset_samples(self, subset_path: Path) -> tuple[list[np.ndarray], list[str]]:
        """Features and labels of every component of the subset's images (``background`` when it matches
        no ground truth of a model label)."""
        match_iou = float(self.configuration.get("match_iou", 0.5))
        known = set(self.model_entity.labels or [])  # a model that predicts fewer labels learns only those
        features, labels = [], []
        for json_file in sorted((subset_path / "json").rglob("*.json")):
            item = json.loads(json_file.read_text())
            truth = [(label, box) for label, box in truth_boxes(item.get("annotations") or [])
                     if not known or label in known]
            image = read_image(subset_path / "items" / item["filename"].lstrip("/"))
            for component in self.components(image):
                best, label = 0.0, BACKGROUND
                for truth_label, box in truth:
                    iou = _iou(component.box, box)
                    if iou > best:
                        best, label = iou, truth_label
                features.append(shape_features(component.mask))
                labels.append(label if best >= match_iou else BACKGROUND)
        return features, labels

    def train(self, data_path, output_path, **kwargs):
        features, labels = self._subset_samples(Path(data_path) / "train")
        if not any(label != BACKGROUND for label in labels):
            raise ValueError(f"no component of the train subset under {data_path} matches a ground-truth shape: "
                             "check the annotations, or lower threshold / min_area")
        spec = self.configuration.get("classifier") or DEFAULT_CLASSIFIER
        self.model = build_estimator(spec, key="classifier").fit(np.stack(features), labels)
        counts = {str(c): labels.count(c) for c in sorted(set(labels))}
        logger.info("trained on %d components of the train subset: %s", len(labels), counts)
        validation = Path(data_path) / "validation"
        if (validation / "json").is_dir():
            val_features, val_labels = self._subset_samples(validation)
            if val_labels:
                accuracy = float(np.mean(self.model.predict(np.stack(val_features)) == np.asarray(val_labels)))
                logger.info("component accuracy on the validation subset: %.4f (%d components)",
                            accuracy, len(val_labels))
        callback = kwargs.get("on_epoch_end_callback")
        if callback is not None:
            callback(0, 1)

    def classify(self, images) -> list[list[tuple[Component, str, float]]]:
        """Per image, (component, label, confidence) of every component whose best shape label scores at
        least ``min_score``, in scan order. One classifier call for all the images."""
        if self.model is None:
            raise ValueError(f"{type(self).__name__} has not been trained: run the train pipeline first")
        found = [self.components(image) for image in images]
        flat = [component for components in found for component in components]
        if not flat:
            return [[] for _ in found]
        probabilities = iter(self.model.predict_proba(np.stack([shape_features(c.mask) for c in flat])))
        classes = [str(c) for c in self.model.classes_]
        shape_columns = [k for k, name in enumerate(classes) if name != BACKGROUND]
        min_score = float(self.configuration.get("min_score", self.default_min_score))
        out = []
        for components in found:
            kept = []
            for component in components:
                row = next(probabilities)
                best = max(shape_columns, key=lambda k: row[k])
                if row[best] >= min_score:
                    kept.append((component, classes[best], float(row[best])))
            out.append(kept)
        return out

    def annotate(self, collection: dl.AnnotationCollection, component: Component, label: str,
                 image_shape: tuple[int, ...], model_info: dict | None = None) -> None:
        """Add the annotation(s) of one classified component to ``collection``."""
        raise NotImplementedError

    def predict(self, batch, **kwargs):
        collections = []
        for image, classified in zip(batch, self.classify(batch), strict=True):
            collection = dl.AnnotationCollection()
            for component, label, confidence in classified:
                self.annotate(collection, component, label, image.shape,
                              model_info={"name": self.model_entity.name, "model_id": self.model_entity.id,
                                          "confidence": round(confidence, 6)})
            collections.append(collection)
        return collections


class ShapesDetector(ShapeComponentsAdapter):
    """Boxes (``output_type: box``) around classified foreground components."""

    def annotate(self, collection, component, label, image_shape, model_info=None):
        left, top, right, bottom = component.box
        collection.add(annotation_definition=dl.Box(left=left, top=top, right=right, bottom=bottom, label=label),
                       model_info=model_info)


__all__ = ["Component", "ShapeComponentsAdapter", "ShapesDetector", "find_components",
           "shape_features", "truth_boxes"]
