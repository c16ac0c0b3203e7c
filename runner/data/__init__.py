"""Importers that fill the local platform from common dataset layouts, atomically and idempotently."""

from .coco import import_coco
from .dataloop_export import import_dataloop_export
from .digits import import_digits
from .image_folder import (
    import_image_folder,
    import_text_folder,
    import_unlabeled_images,
    import_unlabeled_texts,
)
from .importing import ImportResult
from .shapes import import_shapes

__all__ = ["ImportResult", "import_coco", "import_dataloop_export", "import_digits", "import_image_folder",
           "import_shapes", "import_text_folder", "import_unlabeled_images", "import_unlabeled_texts"]
