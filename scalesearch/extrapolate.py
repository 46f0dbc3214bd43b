"""Extrapolation records: what reports read of ``scalesearch extrapolate`` (torch-free).

``RUN/extrapolation.json`` holds, in the fidelity record format (``scalesearch.fidelity.FidelityRecord``), the
best searched scaling rule and a labelled reference rule applied at a FLOPs budget above every rung the study
searched and trained at the long budget over several seeds; ``scalesearch.retrain.extrapolate`` writes it.
"""

from __future__ import annotations

from pathlib import Path

from scalesearch.fidelity import FidelityRecord, load_fidelity

FILE = "extrapolation.json"
SEARCHED = "searched rule"  # the label of the best searched rule's record (the reference keeps its own label)


def load_extrapolation(run_dir: str | Path) -> list[FidelityRecord]:
    """The records of ``RUN/extrapolation.json``; [] when there are none."""
    return load_fidelity(run_dir, FILE, "scalesearch extrapolate")
