"""A generated detection / segmentation dataset: coloured circles, squares and triangles on noisy backgrounds.

Every image is drawn from its own seeded generator (``seed``, image index), so the same seed gives the
same bytes and annotations, and image ``i`` does not depend on ``n_images``. Each shape is annotated three
ways, all from one polygon: a ``segment`` (``dl.Polygon``; circles as a 24-gon), a ``binary`` mask
(``dl.Segmentation``) that is exactly the polygon rasterized by the runner's rule (the pixels painted in
the image), and a ``box`` around those pixels (``left, top`` = first column / row, ``right, bottom`` = last
column / row + 1, so ``right - left`` is the width in pixels, as COCO's ``bbox``). The three annotations
of one shape share ``metadata.user.shape`` (its index in the image and the generator's parameters).
"""

from __future__ import annotations

import io
import logging
import numbers

import dtlpy as dl
import numpy as np
from PIL import Image
from scipy import ndimage

from ..errors import DataImportError
from ..metrics.rasterize import polygon_mask
from ..platform.local.platform import LocalPlatform
from .digits import SPLITS, split_indices
from .importing import (
    ImportRecord,
    ImportResult,
    annotation_json,
    log_summary,
    palette_dataset,
    store_records,
)
from .recorded_source import records_its_source

logger = logging.getLogger(__name__)

LABELS = ["circle", "square", "triangle"]
CIRCLE_VERTICES = 24
MAX_SHAPES = 4
MIN_CONTRAST = 80.0  # Euclidean RGB distance between a shape's colour and the background's
GAP = 2  # pixels kept free between two shapes
NOISE = (4.0, 16.0)  # range of the per-image standard deviation of the pixel noise (per channel)
_REFERENCE_SIZE = 64  # shape sizes below are for 64x64 images and scale with `size`
_RADIUS = {"circle": (6.0, 13.0), "square": (8.0, 15.0), "triangle": (8.0, 15.0)}  # circumradius, px
_PLACEMENT_TRIES = 50


def shape_polygon(label: str, cx: float, cy: float, radius: float, angle: float) -> np.ndarray:
    """``(n, 2)`` x, y vertices of a shape with circumradius ``radius`` centred at ``cx, cy``, rounded to
    1/100 pixel (what is stored is what is rasterized)."""
    n = {"circle": CIRCLE_VERTICES, "square": 4, "triangle": 3}[label]
    theta = angle + 2 * np.pi * np.arange(n) / n
    points = np.stack([cx + radius * np.cos(theta), cy + radius * np.sin(theta)], axis=1)
    return np.round(points, 2)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _colour(rng: np.random.Generator, away_from: np.ndarray) -> np.ndarray:
    while True:
        colour = rng.integers(0, 256, 3).astype(np.float64)
        if np.linalg.norm(colour - away_from) >= MIN_CONTRAST:
            return colour


def generate_image(seed: int, index: int, size: int = 64) -> tuple[np.ndarray, list[dict]]:
    """One ``size`` x ``size`` RGB uint8 image and its shapes: ``{"label", "polygon" (n, 2), "mask"
    (bool, size x size), "box" (left, top, right, bottom), "colour", "radius", "angle"}``. Shapes do not
    touch (``GAP`` free pixels between them) and lie inside the image."""
    rng = np.random.default_rng([seed, index])
    scale = size / _REFERENCE_SIZE
    background = rng.integers(0, 256, 3).astype(np.float64)
    canvas = np.broadcast_to(background, (size, size, 3)).copy()
    blocked = np.zeros((size, size), bool)  # the shapes so far, grown by GAP pixels
    wanted = int(rng.integers(1, MAX_SHAPES + 1))
    shapes: list[dict] = []
    for _ in range(wanted):
        label = LABELS[int(rng.integers(len(LABELS)))]
        low, high = _RADIUS[label]
        radius = float(rng.uniform(low, high)) * scale
        angle = float(rng.uniform(0, 2 * np.pi)) if label != "circle" else 0.0
        colour = _colour(rng, background)
        for _try in range(_PLACEMENT_TRIES):
            cx, cy = (float(v) for v in rng.uniform(radius + 1, size - 2 - radius, 2))
            polygon = shape_polygon(label, cx, cy, radius, angle)
            mask = polygon_mask(polygon, size, size)
            if not (mask & blocked).any():
                break
        else:
            continue  # no room left for this one
        blocked |= _dilate(mask, GAP)
        canvas[mask] = colour
        rows, cols = np.nonzero(mask)
        shapes.append({"label": label, "polygon": polygon, "mask": mask, "colour": colour.astype(int).tolist(),
                       "radius": round(radius, 2), "angle": round(angle, 4),
                       "box": (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)})
    noise = rng.normal(0.0, float(rng.uniform(*NOISE)), canvas.shape)
    pixels = np.clip(np.rint(canvas + noise), 0, 255).astype(np.uint8)
    return pixels, shapes


def _dilate(mask: np.ndarray, by: int) -> np.ndarray:
    return ndimage.binary_dilation(mask, structure=np.ones((3, 3), bool), iterations=by)


@records_its_source
def import_shapes(platform: LocalPlatform, dataset_name: str = "shapes", n_images: int = 300, size: int = 64,
                  seed: int = 0, split: tuple[float, float, float] = (0.7, 0.15, 0.15)) -> ImportResult:
    """Import ``n_images`` generated RGB PNGs ``/<split>/shapes-<index>.png``, split at random (seeded) into
    /train /validation /test and tagged ``metadata.system.tags.<split>``, with 1-4 shapes each
    (``circle``, ``square``, ``triangle``), every shape as a ``box``, a ``segment`` and a ``binary``."""
    if isinstance(n_images, bool) or not isinstance(n_images, numbers.Integral) or n_images < 1:
        raise DataImportError(f"n_images must be a positive integer, got {n_images!r}", where="n_images",
                              fix="for example n_images=300")
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 32:
        raise DataImportError(f"size must be an integer of at least 32 pixels, got {size!r}", where="size",
                              fix="for example size=64")
    n_images, size = int(n_images), int(size)
    split_of = {index: name for name, indices in split_indices(np.zeros(n_images, int), seed, split).items()
                for index in indices}
    palette = palette_dataset(platform, dataset_name, LABELS)
    records = []
    for index in range(n_images):
        pixels, shapes = generate_image(seed, index, size)
        subset = split_of[index]
        annotations = []
        for number, shape in enumerate(shapes):
            label = shape["label"]
            user = {"shape": {"index": number, "colour": shape["colour"], "radius": shape["radius"],
                              "angle": shape["angle"]}}
            left, top, right, bottom = shape["box"]
            for definition in (dl.Box(left=left, top=top, right=right, bottom=bottom, label=label),
                               dl.Polygon(geo=shape["polygon"], label=label),
                               dl.Segmentation(geo=shape["mask"], label=label)):
                annotations.append(annotation_json(definition, metadata={"user": user}, palette=palette))
        records.append(ImportRecord(
            filename=f"/{subset}/shapes-{index:05d}.png", mimetype="image/png", width=size, height=size,
            data=_png(pixels), metadata={"system": {"tags": {subset: True}},
                                         "user": {"shapes": {"seed": seed, "index": index}}},
            annotations=annotations))
    result = store_records(platform, dataset_name, LABELS, records)
    log_summary(logger, f"generated shapes (seed {seed})", result)
    return result


__all__ = ["LABELS", "SPLITS", "generate_image", "import_shapes", "shape_polygon"]
