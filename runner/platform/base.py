"""The narrow interface the wrapper functions use, whatever platform holds the data.

User functions never see it: they get dtlpy entities. The wrapper functions call it for the bulk
operations where going item by item through entity methods would be slow or not atomic.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import dtlpy as dl


def filters_json(filters) -> dict | None:
    """The DQL JSON of a ``dl.Filters`` or of its prepared dict; None for no filter."""
    if filters is None or isinstance(filters, dict):
        return filters or None
    if isinstance(filters, dl.Filters):
        return filters.prepare()
    raise TypeError(f"filters must be a dl.Filters or its prepared JSON dict, not {type(filters).__name__}")


class Platform(ABC):
    name: str

    @abstractmethod
    def download_artifacts(self, model: dl.Model, local_path: str | Path, overwrite: bool = True,
                           names: Sequence[str] | None = None) -> str:
        """Write the model's artifact files under ``local_path``; return it."""

    @abstractmethod
    def add_artifacts(self, model: dl.Model, files: Mapping[str, str | Path], replace: bool) -> None:
        """Make ``files`` (artifact name -> local file) the model's artifacts. With ``replace`` the
        previous set is dropped atomically: readers see the old complete set or the new one."""

    def item_json(self, item: dl.Item) -> dict:
        """The item as JSON that ``item_entity`` (in this or another process) makes an entity again."""
        return item.to_json()

    def item_entity(self, item_json: dict, dataset: dl.Dataset | None = None) -> dl.Item:
        return dl.Item.from_json(_json=item_json, client_api=dl.client_api, dataset=dataset)

    def open_item(self, item: dl.Item) -> BinaryIO:
        """The item's bytes as a binary file object (closed by the caller)."""
        return item.download(save_locally=False)

    @abstractmethod
    def count_items(self, dataset: dl.Dataset, filters: dict | None) -> int:
        """How many items match the DQL filter."""

    @abstractmethod
    def listing_cuts(self, dataset: dl.Dataset, filters: dict | None, positions: Sequence[int]) -> list:
        """Cut the matching items' listing now, before each of ``positions`` (ascending, above 0, in
        whole pages of the ``page_size`` the shards list with): one key per cut, for ``iter_items``'s
        ``span``. Shards are cut once, before any of them runs, because a shard's predictions can
        change which items the filter matches (``annotated``, a label), and a position looked up later
        would then point past items no shard predicts."""

    @abstractmethod
    def iter_items(self, dataset: dl.Dataset, filters: dict | None, page_size: int = 500,
                   span: tuple | None = None) -> Iterator[list[dl.Item]]:
        """The matching items a page at a time; memory holds one page. ``span``: ``(after, through)``,
        two keys from ``listing_cuts`` (None: the listing's start, its end): only the items between
        those cuts, in the platform's listing order: a shard of the listing."""

    @abstractmethod
    def export(self, dataset: dl.Dataset, filters: dict | None, annotation_filters: dict | None,
               dest: str | Path, with_json: bool = True) -> int:
        """Write ``dest/items/<filename>`` and ``dest/json/<dir>/<stem>.json`` (Dataloop item JSON with
        the annotations that match ``annotation_filters``) for every matching item; return the count."""

    @abstractmethod
    def fingerprint(self, dataset: dl.Dataset, filters: dict | None) -> str:
        """A content hash of the matching items (bytes) and their ground-truth annotations."""

    @abstractmethod
    def annotations_of(self, items: Sequence[dl.Item], annotation_filters: dict | None) -> dict[str, list[dict]]:
        """item id -> the JSON of its annotations matching the filter."""

    @abstractmethod
    def store_predictions(self, model: dl.Model, items: Sequence[dl.Item],
                          collections: Sequence[dl.AnnotationCollection]) -> list[dl.Annotation]:
        """Replace the model's earlier annotations on ``items`` by ``collections`` (one per item)."""

    def encode_predictions(self, model: dl.Model, items: Sequence[dl.Item],
                           collections: Sequence[dl.AnnotationCollection]):
        """The CPU-bound part of ``store_predictions``, run on the thread that predicted; returns what
        ``write_predictions`` takes. By default there is nothing to do ahead."""
        return items, collections

    def write_predictions(self, model: dl.Model, encoded) -> list[dl.Annotation]:
        """The rest of ``store_predictions``, on the writer thread."""
        return self.store_predictions(model, *encoded)

    @abstractmethod
    def store_evaluation(self, model: dl.Model, dataset: dl.Dataset, metrics: dict) -> None:
        """Keep the metrics of an evaluation with the model."""

    @abstractmethod
    def latest_evaluation(self, model: dl.Model) -> dict | None:
        """The metrics of the model's last evaluation, if any."""

    @abstractmethod
    def feature_set_for(self, model: dl.Model, size: int) -> dl.FeatureSet:
        """The model's feature set, created on first use."""

    @abstractmethod
    def store_features(self, feature_set: dl.FeatureSet, items: Sequence[dl.Item], vectors: Sequence) -> None:
        """Store one vector per item (replacing earlier vectors of those items)."""
