"""scalesearch: compound scaling and architecture search for EfficientDet-style detectors.

The public names load on first use (PEP 562), so ``import scalesearch`` and the command line start
without importing torch, Optuna or Ray until a command needs them.
"""

from __future__ import annotations

from scalesearch.lazy import lazy_exports

_EXPORTS = {
    "Cost": "scalesearch.measure.cost", "count_cost": "scalesearch.measure.cost",
    "build_detector": "scalesearch.model",
    "PAPER_RULE": "scalesearch.scaling", "ScalingRule": "scalesearch.scaling",
    "compound_spec": "scalesearch.scaling", "preset": "scalesearch.scaling",
    "load_records": "scalesearch.records",
    "DetectorSpec": "scalesearch.spec",
    "Topology": "scalesearch.topology", "get_topology": "scalesearch.topology",
    "TrainConfig": "scalesearch.training.train", "train_and_evaluate": "scalesearch.training.train",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("scalesearch", _EXPORTS, globals())
