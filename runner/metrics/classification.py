"""Classification metrics: label indices in, numbers out (scikit-learn).

Labels are integer indices into ``labels``; a prediction of -1 means "no prediction" and counts as
wrong. Working on integer arrays keeps a million predictions to a few numpy arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn import metrics as skm

NO_PREDICTION = -1

CLASSIFICATION_SCALARS = ("n_items", "accuracy", "balanced_accuracy", "cohen_kappa",
                          *(f"{score}_{average}" for score in ("precision", "recall", "f1")
                            for average in ("macro", "micro", "weighted")))


def _check(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int, scores: np.ndarray | None) -> None:
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be 1-d arrays of one length")
    if y_true.size == 0:
        raise ValueError("no (truth, prediction) pairs to score")
    if y_true.min() < 0 or y_true.max() >= n_labels:
        raise ValueError(f"y_true holds label indices outside 0..{n_labels - 1}")
    if y_pred.min() < NO_PREDICTION or y_pred.max() >= n_labels:
        raise ValueError(f"y_pred holds label indices outside -1..{n_labels - 1}")
    if scores is not None and scores.shape != (y_true.size, n_labels):
        raise ValueError(f"scores must have shape (n_items, n_labels) = {(y_true.size, n_labels)}, got {scores.shape}")


def _prf(tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 with scikit-learn's ``zero_division=0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = np.where(actual > 0, tp / np.maximum(actual, 1), 0.0)
        denominator = precision + recall
        f1 = np.where(denominator > 0, 2 * precision * recall / np.where(denominator > 0, denominator, 1), 0.0)
    return precision, recall, f1


TOP_K = (2, 3, 5)
# computed only when the adapter gives per-class scores
SCORE_SCALARS = (*(f"top_{k}_accuracy" for k in TOP_K), "roc_auc_ovr_macro")


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str],
                           scores: np.ndarray | None = None, top_k: Sequence[int] = TOP_K) -> dict:
    """Accuracy, balanced accuracy, Cohen's kappa, macro/micro/weighted precision-recall-F1, per-label
    scores and the confusion matrix (rows: truth, columns: prediction, in ``labels`` order). With
    ``scores`` (per-class scores, one row per item) also top-k accuracy and one-vs-rest ROC-AUC.

    The numbers are those of the scikit-learn functions of the same names (``labels`` = every label,
    ``zero_division=0``; Cohen's kappa with sklearn's default ``labels=None``, so an item with no
    prediction counts as disagreeing, not left out; the tests hold them equal), derived from one
    confusion matrix: calling each
    scikit-learn function maps every prediction through a Python dict again, seconds at a million."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    labels = [str(label) for label in labels]
    n_labels = len(labels)
    _check(y_true, y_pred, n_labels, scores)
    # column n_labels holds "no prediction"
    full = np.bincount(y_true * (n_labels + 1) + np.where(y_pred < 0, n_labels, y_pred),
                       minlength=n_labels * (n_labels + 1)).reshape(n_labels, n_labels + 1)
    confusion = full[:, :n_labels]
    n = int(y_true.size)
    tp = np.diag(confusion).astype(np.float64)
    actual = full.sum(axis=1).astype(np.float64)      # support
    predicted = confusion.sum(axis=0).astype(np.float64)
    present = actual > 0
    precision, recall, f1 = _prf(tp, predicted, actual)
    weights = actual / n
    micro = _prf(tp.sum(keepdims=True), predicted.sum(keepdims=True), actual.sum(keepdims=True))
    # Cohen's kappa over the classes seen in truth or prediction, "no prediction" included when it occurs
    seen = np.concatenate([present | (predicted > 0), [full[:, n_labels].sum() > 0]])
    square = np.zeros((n_labels + 1, n_labels + 1))
    square[:n_labels, :] = full
    square = square[np.ix_(seen, seen)]
    expected = np.outer(square.sum(axis=1), square.sum(axis=0)) / n
    off_diagonal = 1 - np.eye(len(square))
    kappa = 1 - (off_diagonal * square).sum() / (off_diagonal * expected).sum() if (off_diagonal * expected).sum() else 1.0
    out: dict = {
        "n_items": n,
        "accuracy": float(tp.sum() / n),
        "balanced_accuracy": float(np.mean(recall[present])),
        "cohen_kappa": float(kappa),
    }
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
        out[f"{name}_macro"] = float(np.mean(values))
        out[f"{name}_weighted"] = float(np.sum(values * weights))
    out["precision_micro"], out["recall_micro"], out["f1_micro"] = (float(v[0]) for v in micro)
    out["labels_without_truth"] = [labels[i] for i in np.flatnonzero(~present)]
    out["per_label"] = {labels[i]: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                                    "support": int(actual[i])} for i in range(n_labels)}
    out["confusion_matrix"] = {"labels": labels, "matrix": confusion.tolist()}
    if scores is not None:
        indices = list(range(n_labels))
        for k in top_k:
            if k < n_labels:
                out[f"top_{k}_accuracy"] = float(skm.top_k_accuracy_score(y_true, scores, k=k, labels=indices))
        if np.all(present) and n_labels >= 2:
            # one-vs-rest per label, averaged: scikit-learn's "ovr" macro, without its demand that a
            # row of confidences sums to one
            per_label = [skm.roc_auc_score(y_true == k, scores[:, k]) for k in indices]
            out["roc_auc_ovr_macro"] = float(np.mean(per_label))
            for k, value in zip(indices, per_label, strict=True):
                out["per_label"][labels[k]]["roc_auc"] = float(value)
    return out
