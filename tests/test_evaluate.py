"""coco_evaluate: pycocotools metrics on hand-made and real ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalesearch.data import CocoDetection, resolve_dataset
from scalesearch.training.evaluate import coco_evaluate

BCCD = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "bccd"  # ../shared beside the checkout
KEYS = ["map", "map50", "map75", "map_small", "map_medium", "map_large"]


@pytest.fixture
def gt(tmp_path):
    """Two 100x100 images, category 5, ground truth: a medium box and a large box."""
    from pycocotools.coco import COCO

    data = {
        "images": [{"id": 1, "width": 100, "height": 100, "file_name": "a"}, {"id": 2, "width": 100, "height": 100, "file_name": "b"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 5, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 5, "bbox": [0, 0, 99, 99], "area": 9801, "iscrowd": 0},
        ],
        "categories": [{"id": 5, "name": "thing"}],
    }
    (tmp_path / "gt.json").write_text(json.dumps(data))
    return COCO(str(tmp_path / "gt.json"))


def as_detections(coco) -> list[dict]:
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0} for a in coco.dataset["annotations"]]


def test_ground_truth_as_detections_scores_one(gt, capsys):
    metrics = coco_evaluate(gt, as_detections(gt))
    assert list(metrics) == KEYS
    assert metrics == pytest.approx({**dict.fromkeys(KEYS, 1.0), "map_small": -1.0})  # no small box: undefined, as in pycocotools
    assert "Average Precision" not in capsys.readouterr().out  # quiet by default


def test_half_recall_scores_the_101_point_interpolation(gt):
    # one of two boxes found at precision 1: recall thresholds 0.00..0.50 have precision 1 -> 51 / 101
    metrics = coco_evaluate(gt, as_detections(gt)[:1])
    assert metrics["map50"] == pytest.approx(51 / 101) and metrics["map_medium"] == pytest.approx(1.0) and metrics["map_large"] == 0.0


def test_no_detections_score_zero_and_write_an_empty_results_file(gt, tmp_path):
    assert coco_evaluate(gt, [], tmp_path / "out" / "res.json") == dict.fromkeys(KEYS, 0.0)
    assert json.loads((tmp_path / "out" / "res.json").read_text()) == []


def test_results_json_and_inputs_are_left_intact(gt, tmp_path):
    dets = [{"image_id": 1, "category_id": 5, "bbox": [10.004, 10, 40, 40], "score": 0.9}]
    coco_evaluate(gt, dets, tmp_path / "res.json")
    assert json.loads((tmp_path / "res.json").read_text()) == [{"image_id": 1, "category_id": 5, "bbox": [10.0, 10.0, 40.0, 40.0], "score": 0.9}]
    assert set(dets[0]) == {"image_id", "category_id", "bbox", "score"}  # pycocotools' loadRes did not add keys


def test_unknown_image_is_rejected(gt):
    with pytest.raises(ValueError, match=r"image_id must be in the ground truth, but got \[7\]"):
        coco_evaluate(gt, [{"image_id": 7, "category_id": 5, "bbox": [0, 0, 5, 5], "score": 1.0}])


@pytest.mark.skipif(not BCCD.is_dir(), reason="needs ../shared/datasets/bccd")
def test_bccd_ground_truth_scores_one():
    ds = CocoDetection(*resolve_dataset(BCCD, "val"), 128, cache=False)
    assert coco_evaluate(ds.coco, as_detections(ds.coco)) == pytest.approx(dict.fromkeys(KEYS, 1.0))
