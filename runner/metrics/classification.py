"""Classification metrics: label arrays in, numbers out (scikit-learn)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn import metrics as skm

CLASSIFICATION_SCALARS = ("n_items", "accuracy", "balanced_accuracy",
                          *(f"{score}_{average}" for score in ("precision", "recall", "f1")
                            for average in ("macro", "micro", "weighted")))


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict:
    """Accuracy, balanced accuracy, macro/micro/weighted precision-recall-F1, per-label scores and
    the confusion matrix (rows: truth, columns: prediction, in ``labels`` order)."""
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels and y_pred {y_pred.size}; they must pair up")
    if y_true.size == 0:
        raise ValueError("no (truth, prediction) pairs to score")
    labels = list(labels)
    out: dict = {
        "n_items": int(y_true.size),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
    }
    for average in ("macro", "micro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average,
                                                         zero_division=0)
        out[f"precision_{average}"], out[f"recall_{average}"], out[f"f1_{average}"] = float(p), float(r), float(f)
    p, r, f, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None,
                                                           zero_division=0)
    out["per_label"] = {label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                "support": int(support[i])} for i, label in enumerate(labels)}
    out["confusion_matrix"] = {"labels": labels,
                               "matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()}
    return out
