"""Segmentation metrics: semantic (one confusion matrix over every pixel) and instance (masks matched by IoU).

Semantic scores come from an integer confusion matrix (rows: truth, columns: prediction), so a dataset is
scored by summing per-image matrices: ``SegmentationAccumulator`` does that item by item from Dataloop
annotation JSON, never holding more than one item's masks. A ratio whose denominator is 0 (e.g. the IoU of a
class absent from both truth and prediction, the precision of a class never predicted) is undefined: NaN in
arrays, ``None`` (JSON null) in the returned dicts, and left out of every mean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from .rasterize import MASK_TYPES, annotation_mask, paint_label_map

SEMANTIC_SCALARS = ("n_pixels", "pixel_accuracy", "mean_iou", "mean_dice", "frequency_weighted_iou")
INSTANCE_SCALARS = ("tp", "fp", "fn", "precision", "recall", "f1", "mean_match_iou")

_PIXEL_CHUNK = 1 << 22  # pixels per bincount pass: bounds the int64 temporaries of a large batch
_F32_EXACT = 1 << 24  # float32 holds every integer up to 2**24: sums of that many 0/1 products are exact
_MATMUL_BUDGET = 1 << 24  # float32 elements of the mask matrices converted at once (64 MB)


def _null(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _ratio(num: ArrayLike, den: ArrayLike) -> np.ndarray:
    """num / den, NaN where den is 0."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.divide(num, den, out=np.full(np.broadcast_shapes(num.shape, den.shape), np.nan), where=den > 0)


def _check_indices(a: np.ndarray, name: str) -> None:
    if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
        raise ValueError(f"{name} must hold integer class indices, got dtype {a.dtype}")


# -- semantic ------------------------------------------------------------------------------------------

def semantic_confusion(truth: ArrayLike, prediction: ArrayLike, n_classes: int,
                       ignore_index: int | None = None) -> np.ndarray:
    """(n_classes, n_classes) int64 confusion matrix of two label maps of one shape (rows: truth).

    Any shape works: one ``(H, W)`` map or a batch ``(N, H, W)``; sum the matrices of several calls to score
    images of different sizes. Pixels whose truth is ``ignore_index`` are skipped (whatever their
    prediction); every other pixel must hold indices in ``0..n_classes-1`` on both sides."""
    t, p = np.asarray(truth), np.asarray(prediction)
    if t.shape != p.shape:
        raise ValueError(f"truth {t.shape} and prediction {p.shape} must have the same shape")
    n = int(n_classes)
    if n != n_classes or n < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    _check_indices(t, "truth")
    _check_indices(p, "prediction")
    t, p = t.reshape(-1), p.reshape(-1)
    out = np.zeros(n * n, np.int64)
    for s in range(0, t.size, _PIXEL_CHUNK):
        tc, pc = t[s:s + _PIXEL_CHUNK], p[s:s + _PIXEL_CHUNK]
        if ignore_index is not None:
            keep = tc != ignore_index
            if not keep.all():
                tc, pc = tc[keep], pc[keep]
        if tc.size == 0:
            continue
        for name, a in (("truth", tc), ("prediction", pc)):
            lo, hi = int(a.min()), int(a.max())
            if lo < 0 or hi >= n:
                where = "" if ignore_index is None else f" (pixels whose truth is not {ignore_index})"
                raise ValueError(f"{name} holds class indices outside 0..{n - 1}{where}: min {lo}, max {hi}")
        out += np.bincount(tc.astype(np.intp) * n + pc.astype(np.intp), minlength=n * n)
    return out.reshape(n, n)


def semantic_metrics(confusion: ArrayLike, class_names: Sequence[str], include_background: bool = True) -> dict:
    """Pixel accuracy, mean IoU / Dice, frequency-weighted IoU and a per-label table from a confusion matrix.

    Per class k (``per_label``): IoU = TP / (TP + FP + FN), Dice = F1 = 2 TP / (2 TP + FP + FN), precision,
    recall and pixel counts. ``mean_iou`` / ``mean_dice`` average the classes present in truth or prediction
    (an absent class has no defined IoU; it is listed in ``classes_in_mean`` only when present);
    ``frequency_weighted_iou`` weights each class's IoU by its share of truth pixels. Class 0 is the
    background: ``include_background=False`` leaves it out of those three (it stays in ``per_label``, the
    confusion matrix and ``pixel_accuracy``, which is over every pixel)."""
    cm = np.asarray(confusion)
    names = [str(c) for c in class_names]
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion must be a square matrix, got shape {cm.shape}")
    if len(names) != cm.shape[0]:
        raise ValueError(f"{len(names)} class names for a {cm.shape[0]}x{cm.shape[0]} confusion matrix")
    if len(set(names)) != len(names):
        raise ValueError(f"class names must be unique, got {names}")
    if not np.issubdtype(cm.dtype, np.integer) or (cm.size and cm.min() < 0):
        raise ValueError("confusion must hold non-negative integer counts")
    if not include_background and len(names) < 2:
        raise ValueError("include_background=False needs a class besides the background (class 0)")
    cm = cm.astype(np.int64)
    total = int(cm.sum())
    if total == 0:
        raise ValueError("the confusion matrix is empty: no pixels were scored")
    tp = np.diag(cm)
    n_truth, n_pred = cm.sum(axis=1), cm.sum(axis=0)
    fp, fn = n_pred - tp, n_truth - tp
    iou = _ratio(tp, tp + fp + fn)
    dice = _ratio(2 * tp, 2 * tp + fp + fn)
    precision, recall = _ratio(tp, n_pred), _ratio(tp, n_truth)
    scored = np.ones(len(names), bool)
    scored[0] = include_background
    in_mean = scored & (n_truth + n_pred > 0)
    weights = np.where(scored, n_truth, 0)
    return {
        "n_pixels": total,
        "pixel_accuracy": float(tp.sum() / total),
        "mean_iou": _null(iou[in_mean].mean()) if in_mean.any() else None,
        "mean_dice": _null(dice[in_mean].mean()) if in_mean.any() else None,
        "frequency_weighted_iou": (float(np.sum(weights[weights > 0] * iou[weights > 0]) / weights.sum())
                                   if weights.sum() else None),
        "classes_in_mean": [names[k] for k in np.flatnonzero(in_mean)],
        "per_label": {name: {"iou": _null(iou[k]), "dice": _null(dice[k]), "precision": _null(precision[k]),
                             "recall": _null(recall[k]), "n_truth_pixels": int(n_truth[k]),
                             "n_predicted_pixels": int(n_pred[k])} for k, name in enumerate(names)},
        "confusion_matrix": {"labels": names, "matrix": cm.tolist()},
    }


# -- instance ------------------------------------------------------------------------------------------

def _stack(masks: Sequence[np.ndarray] | np.ndarray, name: str) -> np.ndarray:
    """(n, H, W) bool array of a list of (H, W) masks (non-zero = inside) or of an (n, H, W) array."""
    if isinstance(masks, np.ndarray):
        arr = masks
    else:
        arrays = [np.asarray(m) for m in masks]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"{name} have different shapes: {sorted(shapes)}")
        arr = np.stack(arrays) if arrays else np.zeros((0, 0, 0), bool)
    if arr.ndim != 3:
        raise ValueError(f"{name} must be (H, W) masks or one (n, H, W) array, got stacked shape {arr.shape}")
    return arr if arr.dtype == bool else arr != 0


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) IoU of (n, H, W) and (m, H, W) boolean masks: pixel counts by float32 matrix products on the
    bounding box of all masks, in chunks of at most 2**24 pixels so that every count is exact. A pair of
    empty masks has IoU 0."""
    n, m = len(a), len(b)
    out = np.zeros((n, m))
    if n == 0 or m == 0:
        return out
    covered = a.any(axis=0) | b.any(axis=0)
    rows, cols = np.flatnonzero(covered.any(axis=1)), np.flatnonzero(covered.any(axis=0))
    if rows.size == 0:
        return out
    box = (slice(None), slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    a, b = a[box].reshape(n, -1), b[box].reshape(m, -1)
    inter = np.zeros((n, m), np.int64)
    chunk = max(1, min(_F32_EXACT, _MATMUL_BUDGET // (n + m)))
    for s in range(0, a.shape[1], chunk):
        part = a[:, s:s + chunk].astype(np.float32) @ b[:, s:s + chunk].astype(np.float32).T
        inter += np.rint(part).astype(np.int64)
    union = a.sum(axis=1, dtype=np.int64)[:, None] + b.sum(axis=1, dtype=np.int64)[None, :] - inter
    return np.divide(inter, union, out=out, where=union > 0)


def _match(truth: np.ndarray, truth_labels: list, pred: np.ndarray, pred_labels: list, scores: np.ndarray,
           iou_threshold: float) -> tuple[dict, list[dict]]:
    """Greedy matching per label; returns {label: [tp, fp, fn, sum of matched IoU]} and the matches."""
    counts: dict = {}
    matches: list[dict] = []
    t_labels, p_labels = np.array(truth_labels, dtype=object), np.array(pred_labels, dtype=object)
    for label in dict.fromkeys([*truth_labels, *pred_labels]):
        ti = np.flatnonzero(t_labels == label) if len(t_labels) else np.zeros(0, np.intp)
        pi = np.flatnonzero(p_labels == label) if len(p_labels) else np.zeros(0, np.intp)
        pi = pi[np.argsort(-scores[pi], kind="stable")]  # descending score, input order on ties
        iou = mask_iou(truth[ti], pred[pi])
        taken = np.zeros(len(ti), bool)
        tp, iou_sum = 0, 0.0
        for j in range(len(pi)):
            if taken.all():
                break
            candidates = np.where(taken, -1.0, iou[:, j])
            k = int(np.argmax(candidates))  # best IoU; the first truth on ties
            if candidates[k] >= iou_threshold:
                taken[k] = True
                tp += 1
                iou_sum += float(candidates[k])
                matches.append({"truth": int(ti[k]), "prediction": int(pi[j]), "label": label,
                                "iou": float(candidates[k])})
        counts[label] = [tp, len(pi) - tp, len(ti) - tp, iou_sum]
    return counts, matches


def _instance_scores(tp: int, fp: int, fn: int, iou_sum: float) -> dict:
    return {"tp": int(tp), "fp": int(fp), "fn": int(fn), "n_truth": int(tp + fn), "n_predictions": int(tp + fp),
            "precision": _null(_ratio(tp, tp + fp)), "recall": _null(_ratio(tp, tp + fn)),
            "f1": _null(_ratio(2 * tp, 2 * tp + fp + fn)), "mean_match_iou": _null(_ratio(iou_sum, tp))}


def _instance_report(counts: Mapping, iou_threshold: float) -> dict:
    """Micro totals over labels (``INSTANCE_SCALARS``) and a per-label table from per-label counts."""
    total = np.sum([c for c in counts.values()], axis=0) if counts else np.zeros(4)
    return {"iou_threshold": float(iou_threshold), **_instance_scores(*total),
            "per_label": {str(label): _instance_scores(*c) for label, c in counts.items()}}


def _check_threshold(iou_threshold: float) -> float:
    thr = float(iou_threshold)
    if not 0.0 < thr <= 1.0:
        raise ValueError(f"iou_threshold must lie in (0, 1], got {iou_threshold!r}")
    return thr


def instance_match(truth_masks: Sequence[np.ndarray] | np.ndarray, truth_labels: Sequence[str],
                   prediction_masks: Sequence[np.ndarray] | np.ndarray, prediction_labels: Sequence[str],
                   prediction_scores: ArrayLike, iou_threshold: float = 0.5) -> dict:
    """Match the predicted instances of one image to its truth instances by mask IoU.

    Per label, predictions are taken by descending score (input order on ties) and each takes the unmatched
    truth instance of that label with the highest IoU, if that IoU is ``>= iou_threshold`` (on equal IoU the
    first truth instance); a truth instance is matched at most once, labels never match across. Matched
    predictions are true positives, the others false positives, unmatched truth false negatives. Returns
    micro totals (``INSTANCE_SCALARS``; ``mean_match_iou`` = mean IoU of the matches), ``per_label`` with the
    same numbers, and ``matches`` [{truth, prediction (input indices), label, iou}]."""
    thr = _check_threshold(iou_threshold)
    truth, pred = _stack(truth_masks, "truth_masks"), _stack(prediction_masks, "prediction_masks")
    t_labels, p_labels = list(truth_labels), list(prediction_labels)
    scores = np.asarray(prediction_scores, dtype=np.float64).reshape(-1)
    if len(t_labels) != len(truth):
        raise ValueError(f"{len(truth)} truth masks and {len(t_labels)} truth labels")
    if len(p_labels) != len(pred) or len(scores) != len(pred):
        raise ValueError(f"{len(pred)} prediction masks, {len(p_labels)} labels and {len(scores)} scores")
    if len(truth) and len(pred) and truth.shape[1:] != pred.shape[1:]:
        raise ValueError(f"truth masks are {truth.shape[1:]} and prediction masks {pred.shape[1:]}")
    if not np.isfinite(scores).all():
        raise ValueError("prediction scores must be finite")
    counts, matches = _match(truth, t_labels, pred, p_labels, scores, thr)
    return {**_instance_report(counts, thr), "matches": matches}


# -- dataset accumulation ------------------------------------------------------------------------------

def confidence_of(annotation: Mapping) -> float | None:
    """``metadata.user.model.confidence``, else ``metadata.system.model.confidence``; None when neither."""
    metadata = annotation.get("metadata") or {}
    for scope in ("user", "system"):
        value = ((metadata.get(scope) or {}).get("model") or {}).get("confidence")
        if value is not None:
            return float(value)
    return None


class SegmentationAccumulator:
    """Semantic and instance metrics over a dataset, fed one item at a time (``add``), read by ``result``.

    Keeps only the (K+1)^2 confusion matrix and per-label match counts, so memory does not grow with the
    dataset. ``labels`` are the model's labels (names, or a {name: index} map, ordered by index); class 0 is
    ``background`` (pixels no annotation covers), added here, so it must not be a model label. Only
    ``segment`` and ``binary`` annotations are scored; other types on an item (boxes, classes, points) are
    skipped and counted in ``skipped_annotations``."""

    def __init__(self, labels: Sequence[str] | Mapping[str, int], *, iou_threshold: float = 0.5,
                 include_background: bool = True, background: str = "background"):
        if isinstance(labels, str):
            raise ValueError("labels must be a list of label names or a {name: index} map, not one string")
        if isinstance(labels, Mapping):
            if len(set(labels.values())) != len(labels):
                raise ValueError(f"label indices must be distinct, got {dict(labels)}")
            names = [str(name) for name, _ in sorted(labels.items(), key=lambda kv: kv[1])]
        else:
            names = [str(name) for name in labels]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"need at least one label and unique label names, got {names}")
        if background in names:
            raise ValueError(f"{background!r} is a model label; name class 0 otherwise (background=...)")
        self.iou_threshold = _check_threshold(iou_threshold)
        self.include_background = bool(include_background)
        self.class_names = [background, *names]
        self.label_index = {name: k + 1 for k, name in enumerate(names)}
        n = len(self.class_names)
        self.confusion = np.zeros((n, n), np.int64)
        self._counts = np.zeros((n, 3), np.int64)  # per class index: tp, fp, fn
        self._iou_sum = np.zeros(n)
        self.n_items = 0
        self.skipped_annotations: dict[str, int] = {}
        self.predictions_without_confidence = 0

    def _known(self, truth: Sequence[Mapping], pred: Sequence[Mapping]) -> None:
        unknown: dict[str, int] = {}
        n_side = []
        for side in (truth, pred):
            bad = [str(a.get("label")) for a in side if a.get("label") not in self.label_index]
            for label in bad:
                unknown[label] = unknown.get(label, 0) + 1
            n_side.append(len(bad))
        if unknown:
            raise ValueError(f"{n_side[0]} truth and {n_side[1]} prediction annotation(s) have labels that are not "
                             f"model labels: {unknown}; model labels: {self.class_names[1:]}")

    def add(self, height: int, width: int, truth_annotations: Sequence[Mapping],
            prediction_annotations: Sequence[Mapping]) -> None:
        """Score one item of ``height`` x ``width`` pixels from its annotation JSON (``Annotation.to_json()``).

        Label maps are painted in list order (later annotations over earlier ones); instances are matched
        with their confidence (``metadata.{user,system}.model.confidence``, 1.0 when missing, counted).
        Invalid input raises ValueError and leaves the accumulator as it was."""
        skipped: dict[str, int] = {}
        sides = []
        for side in (truth_annotations, prediction_annotations):
            kept = []
            for a in side:
                if a.get("type") in MASK_TYPES:
                    kept.append(a)
                else:
                    skipped[str(a.get("type"))] = skipped.get(str(a.get("type")), 0) + 1
            sides.append(kept)
        truth, pred = sides
        self._known(truth, pred)
        t_masks = [annotation_mask(a, height, width) for a in truth]
        p_masks = [annotation_mask(a, height, width) for a in pred]
        t_index = [self.label_index[a["label"]] for a in truth]
        p_index = [self.label_index[a["label"]] for a in pred]
        confidences = [confidence_of(a) for a in pred]
        scores = np.array([1.0 if c is None else c for c in confidences], np.float64)
        if not np.isfinite(scores).all():
            raise ValueError("prediction confidences must be finite")
        n = len(self.class_names)
        confusion = semantic_confusion(paint_label_map(t_masks, t_index, height, width),
                                       paint_label_map(p_masks, p_index, height, width), n)
        counts, _ = _match(_stack(t_masks, "truth masks"), t_index, _stack(p_masks, "prediction masks"), p_index,
                           scores, self.iou_threshold)
        # commit: nothing above changed the accumulator
        self.confusion += confusion
        for k, (tp, fp, fn, iou_sum) in counts.items():
            self._counts[k] += (tp, fp, fn)
            self._iou_sum[k] += iou_sum
        for kind, count in skipped.items():
            self.skipped_annotations[kind] = self.skipped_annotations.get(kind, 0) + count
        self.predictions_without_confidence += sum(c is None for c in confidences)
        self.n_items += 1

    def result(self) -> dict:
        """``semantic`` (``semantic_metrics`` of the summed confusion matrix, class 0 ``background``),
        ``instance`` (micro totals and per model label, as ``instance_match`` without ``matches``), and the
        counts of items, skipped annotations and predictions without confidence."""
        if self.n_items == 0:
            raise ValueError("nothing to score: no items were added")
        counts = {name: [*self._counts[k], self._iou_sum[k]] for k, name in enumerate(self.class_names) if k > 0}
        return {"n_items": self.n_items,
                "semantic": semantic_metrics(self.confusion, self.class_names, self.include_background),
                "instance": _instance_report(counts, self.iou_threshold),
                "skipped_annotations": dict(self.skipped_annotations),
                "predictions_without_confidence": self.predictions_without_confidence}
