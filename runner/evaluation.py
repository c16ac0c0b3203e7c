"""The default ``evaluate``: pair ground truth with this model's predictions, item by item, and score."""

from __future__ import annotations

import logging

import dtlpy as dl

from .errors import RunnerError
from .metrics import classification_metrics
from .platform import Platform

logger = logging.getLogger(__name__)

NO_PREDICTION = "<none>"


def _confidence(annotation: dict) -> float:
    model = ((annotation.get("metadata") or {}).get("system") or {}).get("model") or {}
    value = model.get("confidence")
    return 1.0 if value is None else float(value)


def evaluate_classification(platform: Platform, model: dl.Model, dataset: dl.Dataset, filters: dict | None) -> dict:
    """Ground truth = ``class`` annotations with no model stamp; prediction = this model's ``class``
    annotation with the highest confidence. Items without ground truth are left out (counted)."""
    y_true, y_pred = [], []
    no_truth = no_prediction = 0
    for page in platform.iter_items(dataset, filters):
        annotations = platform.annotations_of(page, {"filter": {"type": "class"}, "resource": "annotations"})
        for item in page:
            truth = [a for a in annotations[item.id] if not (a.get("metadata", {}).get("system", {}) or {}).get("model")]
            preds = [a for a in annotations[item.id]
                     if ((a.get("metadata", {}).get("system", {}) or {}).get("model") or {}).get("name") == model.name]
            if not truth:
                no_truth += 1
                continue
            y_true.append(truth[0]["label"])
            if preds:
                y_pred.append(max(preds, key=_confidence)["label"])
            else:
                no_prediction += 1
                y_pred.append(NO_PREDICTION)
    if not y_true:
        raise RunnerError(f"nothing to evaluate: no item matching the filter has a ground-truth class annotation "
                          f"({no_truth} items without one)", where=f"dataset {dataset.name!r}, filter {filters}",
                          fix="evaluate on a subset whose items carry class labels")
    if no_truth:
        logger.warning("%d items have no ground-truth class annotation and were left out of the evaluation", no_truth)
    labels = list(model.labels or sorted(set(y_true)))
    metrics = classification_metrics(y_true, y_pred, labels)
    metrics.update(items_without_truth=no_truth, items_without_prediction=no_prediction)
    return metrics
