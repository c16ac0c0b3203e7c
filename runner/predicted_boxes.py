"""Checks of the boxes a ``predict`` returns, made before they are stored.

A box whose right edge lies left of its left edge is always a mistake (``dl.Box`` takes two
corners; passing a width as ``right`` is the usual one), so it fails its batch at the adapter's
``predict``. A box that misses its image altogether (coordinates scaled for another size) is
counted and named in one warning when the predict call ends: such a box scores as a false positive.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("runner")


def inverted_box(annotation) -> str | None:
    """Why a ``box`` annotation's corners are the wrong way round, or None."""
    if annotation.type != "box":
        return None
    box = annotation.annotation_definition
    left, top, right, bottom = box.left, box.top, box.right, box.bottom
    if right < left or bottom < top:
        return (f"predict returned a box with {'right < left' if right < left else 'bottom < top'} (left={left:g}, "
                f"top={top:g}, right={right:g}, bottom={bottom:g}): dl.Box takes two corners, so right = left + width "
                "and bottom = top + height")
    return None


class BoxesOutside:
    """Predicted boxes that miss their item's image entirely, counted across a predict call."""

    def __init__(self):
        self.count = 0
        self.example = ""

    def check(self, item, annotation) -> None:
        if annotation.type != "box":
            return
        system = (item.metadata or {}).get("system") or {}
        width, height = system.get("width"), system.get("height")
        if not width or not height:
            return
        box = annotation.annotation_definition
        if box.right < 0 or box.bottom < 0 or box.left > width or box.top > height:
            self.count += 1
            if not self.example:
                self.example = (f"item {item.id}: ({box.left:g}, {box.top:g})-({box.right:g}, {box.bottom:g}) on a "
                                f"{width}x{height} image")

    def warn(self) -> None:
        if self.count:
            logger.warning("%d predicted boxes lie wholly outside their image (e.g. %s), so they score as false "
                           "positives: are the coordinates in the item's own pixels, not the resized input's?",
                           self.count, self.example)
        self.count, self.example = 0, ""
