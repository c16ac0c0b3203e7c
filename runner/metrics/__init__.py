from .classification import CLASSIFICATION_SCALARS, SCORE_SCALARS, classification_metrics
from .detection import COCO_SCALARS, RECALL_THRESHOLDS, Boxes, coco_box_metrics, coco_eval_arrays
from .rasterize import annotation_mask, label_map, paint_label_map, polygon_mask
from .segmentation import (
    INSTANCE_SCALARS,
    SEMANTIC_SCALARS,
    SegmentationAccumulator,
    confidence_of,
    instance_match,
    mask_iou,
    semantic_confusion,
    semantic_metrics,
)

__all__ = ["CLASSIFICATION_SCALARS", "SCORE_SCALARS", "COCO_SCALARS", "INSTANCE_SCALARS", "RECALL_THRESHOLDS", "SEMANTIC_SCALARS",
           "Boxes", "SegmentationAccumulator", "annotation_mask", "classification_metrics", "coco_box_metrics",
           "coco_eval_arrays", "confidence_of", "instance_match", "label_map", "mask_iou", "paint_label_map", "polygon_mask",
           "semantic_confusion", "semantic_metrics"]
