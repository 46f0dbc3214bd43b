"""scalesearch: compound scaling and architecture search for EfficientDet-style detectors."""

from scalesearch.cost import Cost, count_cost
from scalesearch.model import build_detector
from scalesearch.scaling import PAPER_RULE, ScalingRule, compound_spec, preset
from scalesearch.search.records import load_records
from scalesearch.spec import DetectorSpec
from scalesearch.topology import Topology, get_topology
from scalesearch.train import TrainConfig, train_and_evaluate

__all__ = ["Cost", "DetectorSpec", "PAPER_RULE", "ScalingRule", "TrainConfig", "Topology", "build_detector",
           "compound_spec", "count_cost", "get_topology", "load_records", "preset", "train_and_evaluate"]
