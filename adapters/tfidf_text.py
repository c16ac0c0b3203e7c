"""Text classification: TF-IDF features and any scikit-learn classifier, over text items
(``text/plain``, given to ``predict`` as strings by the default ``prepare_item_func``).

Configuration keys: ``vectorizer`` (keyword arguments of ``TfidfVectorizer``, e.g. ``ngram_range:
[1, 2]``), ``estimator`` (``{"_target_": "sklearn.linear_model.LogisticRegression", ...}``).
Persisted with skops, as the image classifier.
"""

from __future__ import annotations

import json
from pathlib import Path

from .sklearn_classifier import DEFAULT_ESTIMATOR, SkopsClassifier, build_estimator


class TfidfTextClassifier(SkopsClassifier):
    model_file = "text_model.skops"

    def train(self, data_path, output_path, **kwargs):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline

        texts, labels = _labelled_texts(Path(data_path) / "train")
        vectorizer = dict(self.configuration.get("vectorizer") or {})
        if "ngram_range" in vectorizer:  # YAML gives a list; scikit-learn checks for a tuple
            vectorizer["ngram_range"] = tuple(vectorizer["ngram_range"])
        estimator = build_estimator(self.configuration.get("estimator") or DEFAULT_ESTIMATOR)
        self.model = make_pipeline(TfidfVectorizer(**vectorizer), estimator).fit(texts, labels)
        callback = kwargs.get("on_epoch_end_callback")
        if callback is not None:
            callback(0, 1)

    def predict(self, batch, **kwargs):
        if any(not isinstance(text, str) for text in batch):
            raise ValueError("the items are not text: this adapter reads text items (text/plain), as "
                             "dataset=text_folder imports them")
        return self.classifications(list(batch))


def _labelled_texts(subset_path: Path) -> tuple[list[str], list[str]]:
    """The texts of a subset folder (``items/`` + ``json/``, as prepare_data writes it) with their class."""
    texts, labels = [], []
    for json_file in sorted((subset_path / "json").rglob("*.json")):
        item = json.loads(json_file.read_text())
        classes = [a["label"] for a in item.get("annotations", []) if a.get("type") == "class"]
        if classes:
            texts.append((subset_path / "items" / item["filename"].lstrip("/")).read_text(encoding="utf-8"))
            labels.append(classes[0])
    if not texts:
        raise ValueError(f"no labelled texts under {subset_path}: the train subset needs class annotations")
    return texts, labels


__all__ = ["TfidfTextClassifier"]
