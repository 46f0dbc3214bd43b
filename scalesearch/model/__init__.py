"""EfficientDet-style detector modules built from a ``DetectorSpec``."""

from scalesearch.model.backbone import input_normalization
from scalesearch.model.detector import EfficientDet, build_detector

__all__ = ["EfficientDet", "build_detector", "input_normalization"]
