"""The default ``evaluate``: pair ground truth with this model's predictions, item by item, and score."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import dtlpy as dl

from .errors import RunnerError
from .metrics import classification_metrics
from .platform import Platform

logger = logging.getLogger(__name__)

NO_PREDICTION = "<none>"
_CLASS_ANNOTATIONS = {"filter": {"type": "class"}, "resource": "annotations"}

MetricFunction = Callable[[list, list], float]


@dataclass
class ClassificationPairs:
    y_true: list[str] = field(default_factory=list)
    y_pred: list[str] = field(default_factory=list)
    without_truth: int = 0
    without_prediction: int = 0


def _model_stamp(annotation: dict) -> dict:
    return ((annotation.get("metadata") or {}).get("system") or {}).get("model") or {}


def _confidence(annotation: dict) -> float:
    value = _model_stamp(annotation).get("confidence")
    return 1.0 if value is None else float(value)


def classification_pairs(platform: Platform, model: dl.Model, dataset: dl.Dataset, filters: dict | None) -> ClassificationPairs:
    """Ground truth = ``class`` annotations with no model stamp; prediction = this model's ``class``
    annotation with the highest confidence (``<none>`` when it has none). Items without ground truth
    are left out and counted."""
    pairs = ClassificationPairs()
    for page in platform.iter_items(dataset, filters):
        annotations = platform.annotations_of(page, _CLASS_ANNOTATIONS)
        for item in page:
            truth = [a for a in annotations[item.id] if not _model_stamp(a)]
            predictions = [a for a in annotations[item.id] if _model_stamp(a).get("name") == model.name]
            if not truth:
                pairs.without_truth += 1
                continue
            pairs.y_true.append(truth[0]["label"])
            if predictions:
                pairs.y_pred.append(max(predictions, key=_confidence)["label"])
            else:
                pairs.without_prediction += 1
                pairs.y_pred.append(NO_PREDICTION)
    if not pairs.y_true:
        raise RunnerError(f"nothing to evaluate: no item matching the filter has a ground-truth class annotation "
                          f"({pairs.without_truth} items without one)",
                          where=f"dataset {dataset.name!r}, filter {filters}",
                          fix="evaluate on a subset whose items carry class labels")
    if pairs.without_truth:
        logger.warning("%d items have no ground-truth class annotation and were left out of the evaluation",
                       pairs.without_truth)
    return pairs


def evaluate_classification(platform: Platform, model: dl.Model, dataset: dl.Dataset, filters: dict | None,
                            extra: Mapping[str, MetricFunction] | None = None) -> dict:
    """The standard classification metrics, plus ``extra`` metric functions ``f(y_true, y_pred)``."""
    pairs = classification_pairs(platform, model, dataset, filters)
    labels = list(model.labels or sorted(set(pairs.y_true)))
    metrics = classification_metrics(pairs.y_true, pairs.y_pred, labels)
    for name, function in (extra or {}).items():
        metrics[name] = float(function(pairs.y_true, pairs.y_pred))
    metrics.update(items_without_truth=pairs.without_truth, items_without_prediction=pairs.without_prediction)
    return metrics
