"""The classification metrics equal scikit-learn's functions of the same names."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from runner.metrics import classification_metrics

CASES = [(0, 5, 400, 0.8, True), (1, 3, 50, 0.5, True), (2, 4, 300, 0.95, False), (3, 2, 80, 0.6, True),
         (4, 6, 30, 0.3, True)]


@pytest.mark.parametrize(("seed", "n_labels", "n", "hit_rate", "with_missing"), CASES)
def test_equals_scikit_learn(seed, n_labels, n, hit_rate, with_missing):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, n_labels, n)
    if seed == 4:
        y_true[y_true == 1] = 0  # a label with no ground truth
    low = -1 if with_missing else 0
    y_pred = np.where(rng.random(n) < hit_rate, y_true, rng.integers(low, n_labels, n))
    labels = [f"l{k}" for k in range(n_labels)]
    ours = classification_metrics(y_true, y_pred, labels)
    indices = list(range(n_labels))
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-12)
    with pytest.warns(UserWarning) if (with_missing and -1 in y_pred) else _no_warning():
        balanced = skm.balanced_accuracy_score(y_true, y_pred)
    assert ours["balanced_accuracy"] == pytest.approx(balanced, abs=1e-12)
    assert ours["cohen_kappa"] == pytest.approx(skm.cohen_kappa_score(y_true, y_pred), abs=1e-12)
    for average in ("macro", "micro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=indices, average=average,
                                                         zero_division=0)
        assert (ours[f"precision_{average}"], ours[f"recall_{average}"], ours[f"f1_{average}"]) == pytest.approx(
            (p, r, f), abs=1e-12)
    p, r, f, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=indices, zero_division=0)
    for k, label in enumerate(labels):
        row = ours["per_label"][label]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p[k], r[k], f[k], support[k]))
    assert ours["confusion_matrix"]["matrix"] == skm.confusion_matrix(y_true, y_pred, labels=indices).tolist()


def test_scores_give_top_k_and_roc_auc_as_scikit_learn():
    rng = np.random.default_rng(9)
    y_true = rng.integers(0, 4, 300)
    scores = rng.random((300, 4)) + np.eye(4)[y_true] * 0.5
    scores /= scores.sum(axis=1, keepdims=True)
    ours = classification_metrics(y_true, scores.argmax(axis=1), list("abcd"), scores=scores)
    assert ours["top_2_accuracy"] == pytest.approx(skm.top_k_accuracy_score(y_true, scores, k=2))
    assert ours["roc_auc_ovr_macro"] == pytest.approx(skm.roc_auc_score(y_true, scores, multi_class="ovr"))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="outside"):
        classification_metrics([0, 5], [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match="one length"):
        classification_metrics([0, 1], [0], ["a", "b"])
    with pytest.raises(ValueError, match="no \\(truth, prediction\\) pairs"):
        classification_metrics([], [], ["a"])


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
