"""benchmarks/natural_set.py: a tiny build is valid COCO, deterministic, cached, and loads in CocoDetection."""

import importlib.util
import json
from pathlib import Path

import pytest

from servers import TEST_EXTRAS, need_module

need_module("skimage", TEST_EXTRAS)
need_module("sklearn", TEST_EXTRAS)

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "natural_set.py"
_spec = importlib.util.spec_from_file_location("natural_set", _PATH)
natural_set = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(natural_set)


def test_tiny_build_is_valid_deterministic_and_cached(tmp_path):
    from scalesearch.data import CocoDetection

    root = natural_set.natural_dataset(tmp_path / "a", seed=3, train_images=4, val_images=2)
    ids = {"images": set(), "annotations": set()}
    for split, count in (("train", 4), ("val", 2)):
        coco = json.loads((root / "annotations" / f"instances_{split}.json").read_text())
        assert len(coco["images"]) == count and [c["name"] for c in coco["categories"]] == list(natural_set.CLASSES)
        sizes = {im["id"]: (im["width"], im["height"]) for im in coco["images"]}
        for a in coco["annotations"]:
            x, y, w, h = a["bbox"]
            width, height = sizes[a["image_id"]]
            assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= width and y + h <= height
        for key in ids:  # ids unique across the two splits
            new = {item["id"] for item in coco[key]}
            assert not new & ids[key]
            ids[key] |= new
        assert len(CocoDetection(root / "images", root / "annotations" / f"instances_{split}.json", 128, False)) == count

    stamp = (root / "images" / "train_00000.jpg").stat().st_mtime_ns
    assert natural_set.natural_dataset(root, seed=3, train_images=4, val_images=2) == root  # cached: not rewritten
    assert (root / "images" / "train_00000.jpg").stat().st_mtime_ns == stamp
    again = natural_set.natural_dataset(tmp_path / "b", seed=3, train_images=4, val_images=2)
    for path in sorted((root / "images").iterdir()):
        assert (again / "images" / path.name).read_bytes() == path.read_bytes()


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(RuntimeError, match="not overwriting"):
        natural_set.natural_dataset(tmp_path, train_images=1, val_images=1)
    assert (tmp_path / "keep.txt").read_text() == "mine"
