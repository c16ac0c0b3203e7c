"""Classification metrics: label indices in, numbers out (scikit-learn).

Labels are integer indices into ``labels``; a prediction of -1 means "no prediction" and counts as
wrong. Working on integer arrays keeps a million predictions to a few numpy arrays.
"""

from __future__ import annotations

import warnings
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


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str],
                           scores: np.ndarray | None = None, top_k: Sequence[int] = (2, 3, 5)) -> dict:
    """Accuracy, balanced accuracy, Cohen's kappa, macro/micro/weighted precision-recall-F1, per-label
    scores and the confusion matrix (rows: truth, columns: prediction, in ``labels`` order). With
    ``scores`` (per-class scores, one row per item) also top-k accuracy and one-vs-rest ROC-AUC."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    labels = [str(label) for label in labels]
    n_labels = len(labels)
    _check(y_true, y_pred, n_labels, scores)
    indices = list(range(n_labels))
    with warnings.catch_warnings():  # -1 ("no prediction") is a class of y_pred only, on purpose
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        balanced = skm.balanced_accuracy_score(y_true, y_pred)
    out: dict = {
        "n_items": int(y_true.size),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced),
        "cohen_kappa": float(skm.cohen_kappa_score(y_true, y_pred)),
    }
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=indices, average=None, zero_division=0)
    present = support > 0  # as scikit-learn's macro average over the labels given: all of them
    out["precision_macro"], out["recall_macro"], out["f1_macro"] = (float(np.mean(a)) for a in (precision, recall, f1))
    weights = support / support.sum()
    out["precision_weighted"], out["recall_weighted"], out["f1_weighted"] = (
        float(np.sum(a * weights)) for a in (precision, recall, f1))
    micro = skm.precision_recall_fscore_support(y_true, y_pred, labels=indices, average="micro", zero_division=0)
    out["precision_micro"], out["recall_micro"], out["f1_micro"] = (float(v) for v in micro[:3])
    out["labels_without_truth"] = [labels[i] for i in np.flatnonzero(~present)]
    out["per_label"] = {labels[i]: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                                    "support": int(support[i])} for i in indices}
    out["confusion_matrix"] = {"labels": labels,
                               "matrix": skm.confusion_matrix(y_true, y_pred, labels=indices).tolist()}
    if scores is not None:
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
