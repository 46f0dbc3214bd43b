"""COCO box evaluation with pycocotools' ``COCOeval``.

``coco_evaluate`` scores detections in *original image pixels* against a ground-truth ``COCO``
object (usually ``CocoDetection.coco``, the cleaned ground truth of a dataset) and returns the six
summary numbers the search and reports use.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any, Iterable

# Indices into COCOeval.stats (pycocotools' summarize() order, maxDets=100).
METRIC_INDEX = {"map": 0, "map50": 1, "map75": 2, "map_small": 3, "map_medium": 4, "map_large": 5}


def empty_metrics() -> dict[str, float]:
    """The metrics of a model that detects nothing: every key 0.0."""
    return {key: 0.0 for key in METRIC_INDEX}


def _results(detections: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Plain-JSON copies of the detections (loadRes mutates its input and rejects numpy scalars)."""
    return [
        {
            "image_id": int(d["image_id"]),
            "category_id": int(d["category_id"]),
            "bbox": [round(float(v), 2) for v in d["bbox"]],
            "score": round(float(d["score"]), 5),
        }
        for d in detections
    ]


def _load_gt(coco_gt: Any) -> Any:
    """Accept a ``COCO`` object or a path to an instances JSON file."""
    if isinstance(coco_gt, (str, Path)):
        from pycocotools.coco import COCO

        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(coco_gt))
    return coco_gt


def coco_evaluate(
    coco_gt: Any,
    detections: Iterable[dict[str, Any]],
    results_json: str | Path | None = None,
    *,
    verbose: bool = False,
) -> dict[str, float]:
    """COCO bbox metrics of ``detections`` against ``coco_gt``.

    detections: dicts with ``image_id``, ``category_id`` (the dataset's own ids, not contiguous
        labels), ``bbox`` = [x, y, w, h] in original image pixels, and ``score``.
    results_json: when given, the detections are written there as a COCO results file.
    Returns ``map`` (AP@[.5:.95]), ``map50``, ``map75``, ``map_small``, ``map_medium``,
    ``map_large`` as floats in [0, 1]; all 0.0 without detections. Like pycocotools, a size bucket
    without any ground-truth box scores -1.0 (undefined, not zero).
    """
    results = _results(detections)
    if results_json is not None:
        Path(results_json).parent.mkdir(parents=True, exist_ok=True)
        Path(results_json).write_text(json.dumps(results))
    if not results:  # pycocotools' loadRes indexes results[0]: no detections means nothing to score
        return empty_metrics()
    from pycocotools.cocoeval import COCOeval

    gt = _load_gt(coco_gt)
    unknown = {r["image_id"] for r in results} - set(gt.getImgIds())
    if unknown:
        raise ValueError(f"detections: image_id must be in the ground truth, but got {sorted(unknown)[:5]}")
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        evaluator = COCOeval(gt, gt.loadRes(results), iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {key: float(evaluator.stats[i]) for key, i in METRIC_INDEX.items()}
