"""scalesearch: compound scaling and architecture search for EfficientDet-style detectors."""

from scalesearch.cost import Cost, count_cost
from scalesearch.model import build_detector
from scalesearch.scaling import PAPER_RULE, ScalingRule, compound_spec, preset
from scalesearch.spec import DetectorSpec

__all__ = ["Cost", "DetectorSpec", "PAPER_RULE", "ScalingRule", "build_detector", "compound_spec", "count_cost",
           "preset"]
