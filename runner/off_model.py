"""Predictions outside their model: labels it does not have, annotation types other than its output type.

The Dataloop platform stores them, and so does a predict here; the default evaluate refuses them
(runner/evaluation.py). A predict call counts them and names them in one warning as it ends, so a
``pipeline=predict`` run says so rather than leaving them to be found at the next evaluation.
"""

from __future__ import annotations

import logging
from collections import Counter

from .text_table import closest

logger = logging.getLogger("runner")

LABELS_FIX = ("make the adapter's predict use the model's labels (self.model_entity.labels; labels are case-sensitive), "
              "or add those labels to the model (model.labels)")
TYPES_FIX = ("make predict return annotations of the output type, or set the adapter's output_type "
             "(adapter.output_type=...) to the type predict returns")
_EXAMPLES = 3


def output_types(output_type: str | None) -> list[str]:
    """The annotation types a model of ``output_type`` trains on and is scored on (polygons and masks go
    together); none for an embedding model or one without an output type."""
    if output_type in (None, "embedding"):
        return []
    return ["segment", "binary"] if output_type in ("segment", "binary") else [output_type]


class OffModel:
    """Off-model predictions of one predict call, by label and by type, with a few item ids each."""

    def __init__(self):
        self._reset()

    def _reset(self) -> None:
        self._expected: tuple[set[str], list[str]] | None = None  # the model's labels and types, read once
        self.found = {"labels": Counter(), "types": Counter()}  # off-model value -> predictions
        self.item_counts = {"labels": 0, "types": 0}
        self.items = {"labels": [], "types": []}  # the first few items' ids
        self._last = {"labels": None, "types": None}  # the item counted last

    def check(self, model, item, annotation) -> None:
        if self._expected is None:
            self._expected = {str(label) for label in model.labels or []}, output_types(model.output_type)
        labels, types = self._expected
        if types and annotation.type not in types:  # (evaluate leaves its label unread)
            self._add("types", annotation.type, item.id)
        elif labels and annotation.label is not None and str(annotation.label) not in labels:
            self._add("labels", str(annotation.label), item.id)

    def _add(self, kind: str, value: str, item_id: str) -> None:
        self.found[kind][value] += 1
        if self._last[kind] != item_id:  # an item's annotations come together: it is counted once
            self._last[kind] = item_id
            self.item_counts[kind] += 1
            if len(self.items[kind]) < _EXAMPLES:
                self.items[kind].append(item_id)

    def warn(self, model) -> None:
        labels = sorted(self._expected[0]) if self._expected else []
        for kind, what, refused, fix in (
                ("labels", f"labels model {model.name!r} does not have", "evaluate refuses them", LABELS_FIX),
                ("types", f"annotation types other than the output type of model {model.name!r} "
                          f"({model.output_type!r})",
                 "evaluate does not score them", TYPES_FIX)):
            found = self.found[kind]
            if not found:
                continue
            named = ", ".join(f"{value!r} ({count})" + (f" (did you mean {meant!r}?)" if kind == "labels" and (
                meant := closest(value, labels)) else "") for value, count in found.most_common(_EXAMPLES))
            more = f" and {len(found) - _EXAMPLES} more" if len(found) > _EXAMPLES else ""
            items = ", ".join(self.items[kind]) + (", ..." if self.item_counts[kind] > _EXAMPLES else "")
            logger.warning("%d predictions on %d items have %s: %s%s (items %s); they are stored, as Dataloop stores "
                           "them, but %s: %s", found.total(), self.item_counts[kind], what, named, more, items,
                           refused, fix)
        self._reset()
