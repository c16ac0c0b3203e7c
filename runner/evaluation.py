"""The default ``evaluate``: read ground truth and this model's predictions, score them by output type.

Ground truth = annotations with no model stamp; predictions = annotations stamped with this model
(``metadata.system.model.name``). Everything is read page by page into numpy arrays.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import dtlpy as dl
import numpy as np

from .configuration import is_number
from .errors import AdapterOutputError, RunnerError
from .metrics import Boxes, SegmentationAccumulator, classification_metrics, coco_box_metrics, confidence_of
from .off_model import LABELS_FIX, TYPES_FIX
from .platform import Platform
from .platform.annotation_json import model_stamp
from .text_table import closest

logger = logging.getLogger(__name__)

MetricFunction = Callable[[np.ndarray, np.ndarray], float]
_EXAMPLES = 5


class Problems:
    """Counts of bad input by kind, with a few example item ids each."""

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.examples: dict[str, list[str]] = {}
        self.more: set[str] = set()  # kinds with items beyond the examples
        self.other_types: set[str] = set()  # the types of the model's predictions that were left out

    def add(self, kind: str, item_id: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        examples = self.examples.setdefault(kind, [])
        if item_id in examples:  # an item with several such annotations is named once
            return
        if len(examples) < _EXAMPLES:
            examples.append(item_id)
        else:
            self.more.add(kind)

    def describe(self, kind: str) -> str:
        return f"{self.counts[kind]} ({self.items(kind)})"

    def items(self, kind: str) -> str:
        """The example item ids of ``kind``, with ``...`` when there are more."""
        return f"{', '.join(self.examples[kind])}{', ...' if kind in self.more else ''}"


def _annotation_filter(types: list[str], model: dl.Model) -> dict:
    """The annotations of ``types``, and this model's predictions of any type: a model whose predict
    returns another type than its output type must not score zero in silence."""
    return {"filter": {"$or": [{"type": {"$in": list(types)}}, {"metadata.system.model.name": model.name}]},
            "resource": "annotations"}


def _other_type(types: list[str]) -> str:
    return f"predictions of another type than {' / '.join(types)} (left out)"


def _of_types(rows: list[dict], types: list[str], model: dl.Model, problems: Problems, item_id: str) -> list[dict]:
    """``rows`` of the scored types; this model's predictions of other types are counted as a problem."""
    kept = []
    for annotation in rows:
        if annotation.get("type") in types:
            kept.append(annotation)
        elif model_stamp(annotation).get("name") == model.name:
            problems.add(_other_type(types), item_id)
            problems.other_types.add(str(annotation.get("type")))
    return kept


def _refuse_other_types_only(problems: Problems, types: list[str], n_predictions: int, model: dl.Model) -> None:
    kind = _other_type(types)
    if kind in problems.counts and n_predictions == 0:
        found = ", ".join(repr(t) for t in sorted(problems.other_types))
        raise AdapterOutputError(f"model {model.name!r} stored predictions of type {found}, not of its output type "
                                 f"{model.output_type!r}, so none can be scored: {problems.describe(kind)}",
                                 where=f"model {model.name!r}, output_type {model.output_type!r}", fix=TYPES_FIX)


def _unknown_labels(bad: str, unknown: set[str], problems: Problems, model: dl.Model, labels: list[str]) -> RunnerError:
    close = {label: closest(label, labels) for label in sorted(unknown)[:_EXAMPLES]}
    named = ", ".join(f"{label!r}" + (f" (did you mean {meant!r}?)" if meant else "") for label, meant in close.items())
    return AdapterOutputError(f"{bad}: {named}; {problems.counts[bad]} such prediction(s), on items "
                              f"{problems.items(bad)}",
                              where=f"model {model.name!r}, labels {labels}", fix=LABELS_FIX)


@dataclass
class ClassificationData:
    y_true: np.ndarray
    y_pred: np.ndarray
    scores: np.ndarray | None
    labels: list[str]
    problems: Problems


def read_classification(platform: Platform, model: dl.Model, dataset: dl.Dataset, filters: dict | None,
                        annotation_type: str = "class") -> ClassificationData:
    """Truth and prediction label indices per item (-1: no prediction). When every scored item's
    predictions carry per-class scores (``metadata.user.model.scores`` or one class annotation per
    label), also the score matrix."""
    labels = [str(label) for label in (model.labels or [])]
    index = {label: i for i, label in enumerate(labels)}
    problems = Problems()
    truth, predicted, score_rows = [], [], []
    has_scores = True
    unknown: set[str] = set()  # labels predicted that the model does not have
    types = [annotation_type]
    n_predictions = 0
    for page in platform.iter_items(dataset, filters):
        annotations = platform.annotations_of(page, _annotation_filter(types, model))
        for item in page:
            rows = _of_types(annotations[item.id], types, model, problems, item.id)
            gt = [a for a in rows if not model_stamp(a)]
            preds = [a for a in rows if model_stamp(a).get("name") == model.name]
            n_predictions += len(preds)
            for p in preds:  # before the item may be left out below: such a prediction is an error anyway
                if p["label"] not in index:
                    problems.add("predictions with labels the model does not have", item.id)
                    unknown.add(str(p["label"]))
            if not gt:
                problems.add("items without ground truth", item.id)
                continue
            if len({a["label"] for a in gt}) > 1:  # a multi-label item: one class is scored, said so
                problems.add("items with several ground-truth classes (scored on the first stored)", item.id)
            if gt[0]["label"] not in index:
                problems.add("ground truth with labels the model does not have", item.id)
                continue
            preds = [p for p in preds if p["label"] in index]
            row = np.zeros(len(labels))
            for p in preds:
                confidence = confidence_of(p)
                if confidence is None:
                    problems.add("predictions without confidence (taken as 1.0)", item.id)
                    confidence = 1.0
                row[index[p["label"]]] = max(row[index[p["label"]]], confidence)
                user_scores = ((p.get("metadata") or {}).get("user") or {}).get("model", {}).get("scores")
                if isinstance(user_scores, Mapping):
                    for label, value in user_scores.items():
                        if label in index:
                            row[index[label]] = float(value)
            truth.append(index[gt[0]["label"]])
            if not preds:
                problems.add("items without a prediction (counted wrong)", item.id)
                predicted.append(-1)
            else:
                best = max(preds, key=lambda a: 1.0 if confidence_of(a) is None else confidence_of(a))  # 0.0 is a score
                predicted.append(index[best["label"]])
            has_scores = has_scores and np.count_nonzero(row) > 1
            score_rows.append(row)
    _refuse_other_types_only(problems, types, n_predictions, model)
    bad = "predictions with labels the model does not have"
    if bad in problems.counts:
        raise _unknown_labels(bad, unknown, problems, model, labels)
    if not truth:
        raise RunnerError(f"nothing to evaluate: no item matching the filter has a ground-truth {annotation_type} annotation "
                          f"the model knows ({sum(problems.counts.values())} items left out)",
                          where=f"dataset {dataset.name!r}, filter {filters}",
                          fix="evaluate on a subset whose items carry class labels of the model")
    for kind in problems.counts:
        logger.warning("%s: %s", kind, problems.describe(kind))
    scores = np.stack(score_rows) if has_scores and score_rows else None
    return ClassificationData(np.asarray(truth, np.int64), np.asarray(predicted, np.int64), scores, labels, problems)


def evaluate_classification(platform: Platform, model: dl.Model, dataset: dl.Dataset, filters: dict | None,
                            extra: Mapping[str, MetricFunction] | None = None, annotation_type: str = "class") -> dict:
    """The standard classification metrics, plus ``extra`` metric functions ``f(y_true, y_pred)``
    called on label strings (``"<none>"`` where the model predicted nothing). ``text_mark`` outputs
    (``dl.Text``) are scored the same way: the label of an item's mark is its class."""
    data = read_classification(platform, model, dataset, filters, annotation_type)
    with _warnings_logged("the classification metrics"):
        metrics = classification_metrics(data.y_true, data.y_pred, data.labels, scores=data.scores)
    if metrics["labels_without_truth"]:
        absent = metrics["labels_without_truth"]
        logger.warning("%d of the model's %d labels have no item among those scored (%s): the macro averages count "
                       "each as 0 (scikit-learn's labels=<every label>, zero_division=0) and ROC-AUC is left out; "
                       "the weighted and micro averages, and labels_without_truth, show it", len(absent),
                       len(data.labels), ", ".join(absent[:_EXAMPLES]) + (" ..." if len(absent) > _EXAMPLES else ""))
    if extra:
        names = np.asarray([*data.labels, "<none>"], dtype=object)
        y_true, y_pred = names[data.y_true], names[data.y_pred]  # -1 picks "<none>"
        for name, function in extra.items():
            if name in metrics:  # confusion_matrix, per_label, top_2_accuracy ...: the standard one stays
                leave_out_shadowing_metric(name)
                continue
            with _warnings_logged(f"metrics.scores.{name}"):
                metrics[name] = float(function(y_true, y_pred, **_model_labels(function, data.labels)))
    metrics["problems"] = _problems_json(data.problems)
    return metrics


@contextlib.contextmanager
def _warnings_logged(what: str):
    """A library's warnings (scikit-learn's "a single label was found" ...) as the run's own, naming
    the metric: printed raw, they show a library's file and line and not which metric they concern."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for message in dict.fromkeys(str(w.message) for w in caught):
        logger.warning("%s: %s", what, message)


def leave_out_shadowing_metric(name: str) -> None:
    """An extra metric under the name of something the evaluate step writes itself is left out, with
    this warning: it would replace the standard value with one computed otherwise."""
    logger.warning("metrics.scores.%s is left out: the evaluate step computes %r itself, over the model's labels; "
                   "to have this function's value too, name it otherwise (e.g. %s_sklearn)", name, name, name)


def _model_labels(function: MetricFunction, labels: list[str]) -> dict:
    """``labels=`` the model's labels for a function that takes them and was not given any: without it,
    scikit-learn scores the labels it sees, "<none>" (no prediction) among them, so an F1 "macro"
    would average over other classes than the standard metrics do."""
    bound = getattr(function, "keywords", {}) or {}
    try:
        takes = "labels" in inspect.signature(function).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        takes = False
    return {"labels": labels} if takes and "labels" not in bound else {}


def _box_xyxy(annotation: dict) -> tuple[float, float, float, float] | None:
    """(left, top, right, bottom) of a Dataloop box, or None when the coordinates are malformed."""
    points = annotation.get("coordinates")
    try:
        (x1, y1), (x2, y2) = ((float(p["x"]), float(p["y"])) for p in points)
    except (TypeError, KeyError, ValueError):
        return None
    box = (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
    return box if np.all(np.isfinite(box)) else None


def _coco_area(annotation: dict, box: tuple) -> float:
    """The area COCOeval ranks a ground-truth box by: the COCO file's ``area`` (of the object's mask)
    when it was imported with one, else the box's."""
    area = (((annotation.get("metadata") or {}).get("user") or {}).get("coco") or {}).get("area")
    if is_number(area, finite=True):
        return float(area)
    return (box[2] - box[0]) * (box[3] - box[1])


def evaluate_detection(platform: Platform, model: dl.Model, dataset: dl.Dataset, filters: dict | None) -> dict:
    """COCO box metrics (the numbers of pycocotools' COCOeval, bbox) of this model's ``box``
    predictions against ground-truth boxes, one image per item."""
    labels = [str(label) for label in (model.labels or [])]
    index = {label: i for i, label in enumerate(labels)}
    problems = Problems()
    truth: dict[str, list] = {"image": [], "label": [], "xyxy": [], "area": []}
    predicted: dict[str, list] = {"image": [], "label": [], "xyxy": [], "score": []}
    n_images = n_predictions = 0
    unknown: set[str] = set()  # labels predicted that the model does not have
    for page in platform.iter_items(dataset, filters):
        annotations = platform.annotations_of(page, _annotation_filter(["box"], model))
        for item in page:
            image = n_images
            n_images += 1
            rows = _of_types(annotations[item.id], ["box"], model, problems, item.id)
            if not any(not model_stamp(a) for a in rows):
                problems.add("items without ground truth (their predictions count as false positives)", item.id)
            for annotation in rows:
                stamp = model_stamp(annotation)
                if stamp and stamp.get("name") != model.name:
                    continue
                n_predictions += bool(stamp)
                kind = "predictions" if stamp else "ground truth"
                if annotation.get("label") not in index:
                    problems.add(f"{kind} with labels the model does not have", item.id)
                    if stamp:
                        unknown.add(str(annotation.get("label")))
                    continue
                box = _box_xyxy(annotation)
                if box is None:
                    problems.add(f"{kind} with malformed box coordinates", item.id)
                    continue
                target = predicted if stamp else truth
                target["image"].append(image)
                target["label"].append(index[annotation["label"]])
                target["xyxy"].append(box)
                if not stamp:
                    truth["area"].append(_coco_area(annotation, box))
                    if ((annotation.get("metadata") or {}).get("user") or {}).get("iscrowd"):
                        problems.add("ground truth marked iscrowd, scored as ordinary boxes", item.id)
                if stamp:
                    confidence = confidence_of(annotation)
                    if confidence is None:
                        problems.add("predictions without confidence (taken as 1.0)", item.id)
                        confidence = 1.0
                    predicted["score"].append(confidence)
    _refuse_other_types_only(problems, ["box"], n_predictions, model)
    # ground truth of labels outside the model's is left out (a warning), as for classification
    bad = "predictions with labels the model does not have"
    if bad in problems.counts:
        raise _unknown_labels(bad, unknown, problems, model, labels)
    for bad in ("predictions with malformed box coordinates", "ground truth with malformed box coordinates"):
        if bad in problems.counts:
            raise RunnerError(f"{bad}: {problems.describe(bad)}", where=f"model {model.name!r}",
                              fix="fix those annotations: a box needs two finite corner points")
    if not truth["image"]:
        raise RunnerError("nothing to evaluate: no item matching the filter has a ground-truth box",
                          where=f"dataset {dataset.name!r}, filter {filters}",
                          fix="evaluate on a subset whose items carry box annotations")
    for kind in problems.counts:
        logger.warning("%s: %s", kind, problems.describe(kind))

    def boxes(rows: dict) -> Boxes:
        xyxy = np.asarray(rows["xyxy"], dtype=np.float64).reshape(-1, 4)
        return Boxes.from_xyxy(np.asarray(rows["image"], np.int64), np.asarray(rows["label"], np.int64), xyxy,
                               score=np.asarray(rows["score"], np.float64) if "score" in rows else None,
                               area=np.asarray(rows["area"], np.float64) if "area" in rows else None)

    metrics = coco_box_metrics(boxes(truth), boxes(predicted), len(labels), n_images=n_images, label_names=labels)
    metrics.update(n_items=n_images, n_truth=len(truth["image"]), n_predictions=len(predicted["image"]))
    metrics["problems"] = _problems_json(problems)
    return metrics


def evaluate_segmentation(platform: Platform, model: dl.Model, dataset: dl.Dataset, filters: dict | None) -> dict:
    """Semantic metrics (IoU, Dice, pixel accuracy per label and their means, from rasterized masks
    through a confusion matrix) and instance matching by mask IoU, item by item."""
    labels = [str(label) for label in (model.labels or [])]
    # class 0 is the pixels no annotation covers; a model label "background" keeps its own name
    background = next(name for name in ("background", "_background", "__background__", "(unannotated)")
                      if name not in labels)
    accumulator = SegmentationAccumulator(labels, background=background)
    problems = Problems()
    types = ["segment", "binary"]
    n_items = n_predictions = 0
    for page in platform.iter_items(dataset, filters):
        annotations = platform.annotations_of(page, _annotation_filter(types, model))
        for item in page:
            system = (item.metadata or {}).get("system") or {}
            height, width = system.get("height"), system.get("width")
            if not height or not width:
                problems.add("items without metadata.system.height/width", item.id)
                continue
            rows = _of_types(annotations[item.id], types, model, problems, item.id)
            truth = [a for a in rows if not model_stamp(a)]
            # an object stored both as polygon and as mask is one instance: score against the model's own kind
            truth = [a for a in truth if a["type"] == model.output_type] or truth
            predictions = [a for a in rows if model_stamp(a).get("name") == model.name]
            n_predictions += len(predictions)
            if not truth:
                problems.add("items without ground truth (their predictions count as false positives)", item.id)
            try:
                accumulator.add(int(height), int(width), truth, predictions)
            except ValueError as err:
                raise RunnerError(f"cannot score item {item.id}: {err}", where=f"dataset {dataset.name!r}",
                                  fix="fix the annotation named, or add its label to the model") from None
            n_items += 1
    if "items without metadata.system.height/width" in problems.counts:
        kind = "items without metadata.system.height/width"
        raise RunnerError(f"{kind}: {problems.describe(kind)}", where=f"dataset {dataset.name!r}",
                          fix="import the items with their image size (the importers record it)")
    if n_items == 0:
        raise RunnerError("nothing to evaluate: no item matches the filter", where=f"filter {filters}")
    _refuse_other_types_only(problems, types, n_predictions, model)
    for kind in problems.counts:
        logger.warning("%s: %s", kind, problems.describe(kind))
    result = accumulator.result()
    metrics = dict(result["semantic"])  # scalars, per_label, confusion_matrix: as for classification
    for key, value in result["instance"].items():
        metrics[f"instance_{key}"] = value
    metrics.update(skipped_annotations=result["skipped_annotations"],
                   predictions_without_confidence=result["predictions_without_confidence"])
    metrics["n_items"] = n_items
    metrics["problems"] = _problems_json(problems)
    return metrics


def _problems_json(problems: Problems) -> dict:
    return {kind: {"count": problems.counts[kind], "examples": problems.examples[kind]} for kind in problems.counts}


def evaluate(platform: Platform, model: dl.Model, dataset: dl.Dataset, filters: dict | None,
             extra: Mapping[str, MetricFunction] | None = None) -> dict:
    """Metrics for the model's output type."""
    if model.output_type in ("class", None):
        return evaluate_classification(platform, model, dataset, filters, extra)
    if model.output_type == "text_mark":  # dl.Text marks on text items: the mark's label is the item's class
        return evaluate_classification(platform, model, dataset, filters, extra, annotation_type="text_mark")
    if model.output_type == "box":
        return evaluate_detection(platform, model, dataset, filters)
    if model.output_type in ("segment", "binary"):
        return evaluate_segmentation(platform, model, dataset, filters)
    raise RunnerError(f"the default evaluate has no metrics for output type {model.output_type!r} yet",
                      where=f"model {model.name!r}",
                      fix="define evaluate(self, model, dataset, filters) on the adapter")
