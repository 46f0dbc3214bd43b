"""The built-in synthetic dataset: deterministic, cached by its parameters, valid COCO."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from scalesearch.data import CocoDetection, resolve_dataset, synthetic_dataset
from scalesearch.data.synthetic import shape_mask
from scalesearch.errors import UserError

TINY = dict(num_train=6, num_val=3, image_size=64, min_object=8, max_object=40)


def digest(folder) -> dict[str, str]:
    """sha1 of every file under a dataset folder, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.*"))}


def test_same_seed_gives_identical_files(tmp_path):
    a = synthetic_dataset(tmp_path / "a", seed=3, **TINY)
    b = synthetic_dataset(tmp_path / "b", seed=3, **TINY)
    assert a.name == b.name and len(digest(a)) == 6 + 3 + 2
    assert digest(a) == digest(b)


def test_different_seed_gives_different_data(tmp_path):
    a = synthetic_dataset(tmp_path, seed=3, **TINY)
    b = synthetic_dataset(tmp_path, seed=4, **TINY)
    assert a != b
    assert (a / "annotations/instances_train.json").read_text() != (b / "annotations/instances_train.json").read_text()
    assert (a / "images/train_00000.jpg").read_bytes() != (b / "images/train_00000.jpg").read_bytes()


def test_cached_by_parameters(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALESEARCH_CACHE", str(tmp_path))
    first = synthetic_dataset(seed=1, **TINY)
    assert first.parent == tmp_path
    stamp = (first / "annotations/instances_train.json").stat().st_mtime_ns
    assert synthetic_dataset(seed=1, **TINY) == first
    assert (first / "annotations/instances_train.json").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name]  # no temporary folders left behind


def test_int_and_float_parameters_name_the_same_cache(tmp_path):
    assert synthetic_dataset(tmp_path, **TINY) == synthetic_dataset(tmp_path, **{**TINY, "min_object": 8.0})


def test_is_valid_coco_with_boxes_inside_the_images(tmp_path):
    root = synthetic_dataset(tmp_path, seed=0, **TINY)
    train = json.loads((root / "annotations/instances_train.json").read_text())
    val = json.loads((root / "annotations/instances_val.json").read_text())
    assert [c["name"] for c in train["categories"]] == ["circle", "square", "triangle", "cross"]
    assert not {i["id"] for i in train["images"]} & {i["id"] for i in val["images"]}
    assert not {a["id"] for a in train["annotations"]} & {a["id"] for a in val["annotations"]}
    boxes = np.array([a["bbox"] for a in train["annotations"] + val["annotations"]])
    assert (boxes[:, 2:] > 0).all() and (boxes[:, :2] >= 0).all() and (boxes[:, :2] + boxes[:, 2:] <= 64).all()
    ds = CocoDetection(*resolve_dataset(root, "val"), 64)
    assert ds.stats.summary().endswith("no problems found") and len(ds) == 3


def test_default_dataset_spans_object_sizes(tmp_path):
    root = synthetic_dataset(tmp_path, seed=0, num_train=40, num_val=1)
    areas = np.array([a["area"] for a in json.loads((root / "annotations/instances_train.json").read_text())["annotations"]])
    small, large = (areas < 32**2).mean(), (areas > 96**2).mean()
    assert 0.15 < small < 0.5 and 0.03 < large < 0.3  # small, medium and large COCO buckets are all used


def test_shapes_differ_by_outline():
    masks = {name: shape_mask(name, 30, 30) for name in ("circle", "square", "triangle", "cross", "ring")}
    areas = {name: int(m.sum()) for name, m in masks.items()}
    assert areas["square"] == 900 and areas["triangle"] < areas["cross"] < areas["circle"] < areas["square"]
    assert not masks["ring"][15, 15] and masks["circle"][15, 15]


def test_rejects_bad_parameters(tmp_path):
    with pytest.raises(UserError, match=r"num_classes: must be in 1\.\.8, but got 9"):
        synthetic_dataset(tmp_path, num_classes=9)
    with pytest.raises(UserError, match=r"num_train/num_val: must be >= 1, but got \(0, 80\)"):
        synthetic_dataset(tmp_path, num_train=0)
    with pytest.raises(UserError, match=r"min_object <= max_object"):
        synthetic_dataset(tmp_path, min_object=50, max_object=20)
