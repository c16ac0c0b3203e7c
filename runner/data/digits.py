"""scikit-learn's bundled digits (1,797 real 8x8 scans, no download) as a classification dataset."""

from __future__ import annotations

import io
import logging

import dtlpy as dl
import numpy as np
from PIL import Image

from ..errors import DataImportError
from ..platform.local.platform import LocalPlatform
from .importing import ImportRecord, ImportResult, annotation_json, log_summary, store_records
from .recorded_source import records_its_source

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
LABELS = [str(d) for d in range(10)]


def split_indices(targets: np.ndarray, seed: int, split: tuple[float, float, float]) -> dict[str, list[int]]:
    """Stratified split: each class is shuffled with one seeded generator and cut at the same fractions,
    so every subset holds every class and the same seed always gives the same subsets."""
    fractions = np.asarray(split, dtype=float)
    if fractions.shape != (3,) or (fractions < 0).any() or not np.isclose(fractions.sum(), 1.0):
        raise DataImportError("split must be three non-negative fractions (train, validation, test) summing to 1",
                              where=f"split={split!r}", fix="for example split=(0.7, 0.15, 0.15)")
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {name: [] for name in SPLITS}
    for cls in np.unique(targets):
        members = rng.permutation(np.flatnonzero(targets == cls))
        cuts = np.rint(np.cumsum(fractions)[:2] * len(members)).astype(int)
        for name, part in zip(SPLITS, np.split(members, cuts), strict=True):
            out[name].extend(int(i) for i in part)
    return {name: sorted(indices) for name, indices in out.items()}


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


@records_its_source
def import_digits(platform: LocalPlatform, dataset_name: str = "digits", seed: int = 0,
                  split: tuple[float, float, float] = (0.7, 0.15, 0.15)) -> ImportResult:
    """Import the digits as grayscale PNGs ``/<split>/digit-<index>.png`` (index into ``load_digits()``,
    so names are stable), tagged ``metadata.system.tags.<split>`` and with one ``class`` annotation each."""
    from sklearn.datasets import load_digits  # sklearn is slow to import; only this importer needs it

    digits = load_digits()
    # pixel values are 0..16
    pixels = np.rint(digits.images * (255 / 16)).clip(0, 255).astype(np.uint8)
    subset_of = {index: name for name, indices in split_indices(digits.target, seed, split).items()
                 for index in indices}
    records = []
    for index, target in enumerate(digits.target):  # in load_digits order: items list in that order
        name = subset_of[index]
        records.append(ImportRecord(
            filename=f"/{name}/digit-{index:05d}.png", mimetype="image/png", width=8, height=8,
            data=_png(pixels[index]), metadata={"system": {"tags": {name: True}}},
            annotations=[annotation_json(dl.Classification(label=LABELS[int(target)]))]))
    result = store_records(platform, dataset_name, LABELS, records)
    log_summary(logger, "sklearn digits", result)
    return result
