from .classification import CLASSIFICATION_SCALARS, classification_metrics

__all__ = ["CLASSIFICATION_SCALARS", "classification_metrics"]
