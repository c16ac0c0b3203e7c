"""Shape segmentation: the components of :mod:`adapters.shapes_detector`, classified the same way, returned
as polygons or masks.

The output follows the model's ``output_type``: ``segment`` gives one ``dl.Polygon`` per shape, ``binary``
one ``dl.Segmentation`` (the component's mask). Training labels components from the ground-truth polygons
/ masks (their extents, matched by box IoU >= ``match_iou``).

Configuration keys: those of :class:`adapters.shapes_detector.ShapesDetector` (``threshold``, ``border``,
``smooth``, ``min_area``, ``match_iou``, ``classifier``), with ``min_score`` defaulting to 0.5 (a pixel map
has no confidence: a doubtful component only costs IoU), and

- ``polygon`` (``contour``): ``contour`` traces the component's outer boundary pixel centres (points inside
  straight runs dropped), which the runner's rasterizer fills back to exactly the component's pixels;
  ``hull`` is the convex hull of the pixel centres (fewer vertices, a few pixels more on slanted edges).
"""

from __future__ import annotations

import dtlpy as dl
import numpy as np
from scipy.spatial import ConvexHull, QhullError

from adapters.shapes_detector import Component, ShapeComponentsAdapter

# the 8 neighbours clockwise on screen (rows grow downward), from east: (row step, column step)
_STEPS = ((0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1))
POLYGON_MODES = ("contour", "hull")


def trace_contour(mask: np.ndarray) -> np.ndarray:
    """``(n, 2)`` x, y of the outer boundary pixel centres of an 8-connected mask, clockwise from its top-left
    pixel (Moore-neighbour tracing), without the points inside straight (axis or diagonal) runs. Filled by
    the rule "pixel centres inside or on the outline", it gives back the mask (holes filled)."""
    height, width = mask.shape
    padded = np.zeros((height + 2, width + 2), bool)
    padded[1:-1, 1:-1] = mask
    rows, cols = np.nonzero(padded)
    if len(rows) == 0:
        raise ValueError("cannot trace an empty mask")
    start = (int(rows[0]), int(cols[0]))
    contour, current, search, second = [start], start, 0, None
    for _ in range(4 * padded.size):
        for turn in range(8):
            k = (search + turn) % 8
            step = (current[0] + _STEPS[k][0], current[1] + _STEPS[k][1])
            if padded[step]:
                break
        else:
            break  # a single pixel
        if current == start and step == second:
            break  # around once
        second = step if second is None else second
        contour.append(step)
        current, search = step, (k + 6) % 8  # next search starts beside the pixel we came from
    if len(contour) > 1 and contour[-1] == start:
        contour.pop()
    points = np.asarray(contour) - 1
    if len(points) > 2:
        before, after = points - np.roll(points, 1, axis=0), np.roll(points, -1, axis=0) - points
        points = points[(before != after).any(axis=1)]
    while len(points) < 3:  # a pixel or a straight line: repeat a point, a polygon needs three
        points = np.concatenate([points, points[-1:]])
    return points[:, ::-1].astype(np.float64)


def hull_polygon(mask: np.ndarray) -> np.ndarray:
    """``(n, 2)`` x, y vertices of the convex hull of the mask's pixel centres."""
    rows, cols = np.nonzero(mask)
    points = np.stack([cols, rows], axis=1).astype(np.float64)
    try:
        return points[ConvexHull(points).vertices]
    except QhullError:  # the pixels are on one line: its two ends
        return trace_contour(mask)


def component_polygon(component: Component, mode: str = "contour") -> np.ndarray:
    """The component's polygon in image coordinates (x = column, y = row of a pixel centre)."""
    if mode not in POLYGON_MODES:
        raise ValueError(f"polygon must be one of {POLYGON_MODES}, got {mode!r}")
    local = trace_contour(component.mask) if mode == "contour" else hull_polygon(component.mask)
    return local + np.array([component.left, component.top], dtype=np.float64)


class ShapesSegmenter(ShapeComponentsAdapter):
    """Polygons (``output_type: segment``) or masks (``output_type: binary``) of classified components."""

    default_min_score = 0.5

    def annotate(self, collection, component, label, image_shape, model_info=None):
        output_type = self.model_entity.output_type or "segment"
        if output_type == "binary":
            definition = dl.Segmentation(geo=component.full_mask(image_shape[0], image_shape[1]), label=label)
        elif output_type == "segment":
            polygon = component_polygon(component, str(self.configuration.get("polygon", "contour")))
            definition = dl.Polygon(geo=polygon, label=label)
        else:
            raise ValueError(f"{type(self).__name__} outputs 'segment' (polygons) or 'binary' (masks); "
                             f"model {self.model_entity.name!r} has output_type {output_type!r}")
        collection.add(annotation_definition=definition, model_info=model_info)


__all__ = ["ShapesSegmenter", "component_polygon", "hull_polygon", "trace_contour"]
