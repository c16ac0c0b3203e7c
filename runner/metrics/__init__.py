from .classification import CLASSIFICATION_SCALARS, classification_metrics
from .detection import COCO_SCALARS, RECALL_THRESHOLDS, Boxes, coco_box_metrics, coco_eval_arrays

__all__ = ["CLASSIFICATION_SCALARS", "COCO_SCALARS", "RECALL_THRESHOLDS", "Boxes", "classification_metrics",
           "coco_box_metrics", "coco_eval_arrays"]
