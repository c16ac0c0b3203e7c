"""Decoded images as the runner's adapters read them: 8-bit grayscale (``L``) or ``RGB``, the same in
training (files under ``data_path``) and in prediction (``prepare_item_func``)."""

from __future__ import annotations

import numpy as np
from PIL import Image

_WIDE = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # one channel, more than 8 bits


def eight_bit(image: Image.Image) -> Image.Image:
    """``L`` or ``RGB``: 16-bit and 32-bit grayscale scaled to 8 bits (Pillow's own ``convert("L")``
    clips them, so most of a 16-bit image turns white); palette, RGBA, CMYK and the rest to ``RGB``
    (a palette image read with ``np.asarray`` gives its palette indices, not its colours)."""
    if image.mode in ("L", "RGB"):
        return image
    if image.mode in _WIDE:
        values = np.asarray(image, dtype=np.float64)
        if image.mode != "F" and (image.mode.startswith("I;16") or values.max(initial=0) > 255):
            values = values / 257.0  # 65535 -> 255
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    return image.convert("RGB")
