"""CocoDetection: label mapping, bad-dataset handling, image modes, resize/pad/flip geometry, BCCD."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from coco_fixtures import CATEGORIES, ann, bright_box, write_image
from PIL import Image

from scalesearch.data import CocoDetection, DatasetInfo, resolve_dataset
from scalesearch.errors import UserError

BCCD = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "bccd"  # ../shared beside the checkout


def test_category_ids_round_trip_through_contiguous_labels():
    info = DatasetInfo.from_categories(CATEGORIES)
    assert info.label_to_category == [3, 7, 12]
    assert info.category_names == ["dog", "cat", "bird"]
    assert info.labels([12, 3, 7]).tolist() == [2, 0, 1]
    assert info.category_ids(torch.tensor([2, 0, 1])) == [12, 3, 7]


def test_targets_carry_contiguous_labels(make_coco):
    ds = CocoDetection(*make_coco([ann(1, 1, [0, 0, 10, 10], 12), ann(2, 1, [5, 5, 10, 10], 3)]), 64)
    _, target = ds[0]
    assert target["labels"].tolist() == [2, 0]
    assert ds.info.category_ids(target["labels"]) == [12, 3]


def test_missing_image_file_is_an_error_naming_it(make_coco):
    images = [{"id": 1, "file_name": "gone.jpg", "width": 64, "height": 48}]
    with pytest.raises(UserError, match=r"gone\.jpg.*1 of 1 are missing"):
        CocoDetection(*make_coco([ann(1, 1, [0, 0, 5, 5])], images, write=False), 64)


@pytest.mark.parametrize("payload", [b"not an image at all", b"truncated"])
def test_unreadable_image_is_dropped_and_counted(make_coco, payload):
    images_dir, ann_file = make_coco([ann(1, 1, [0, 0, 10, 10]), ann(2, 2, [0, 0, 10, 10])])
    good = (images_dir / "im1.jpg").read_bytes()
    # the second case keeps a valid JPEG header, so only decoding finds the damage
    (images_dir / "im2.jpg").write_bytes(good[:-10] if payload == b"truncated" else payload)
    ds = CocoDetection(images_dir, ann_file, 64, train=True)
    assert (len(ds), ds.stats.unreadable_images, ds.stats.boxes) == (1, 1, 1)
    assert ds.coco.getImgIds() == [1] and len(ds.coco.getAnnIds()) == 1


def test_uncached_corrupt_image_becomes_a_blank_negative(make_coco):
    images_dir, ann_file = make_coco([ann(1, 1, [0, 0, 10, 10]), ann(2, 2, [0, 0, 10, 10])])
    (images_dir / "im2.jpg").write_bytes((images_dir / "im1.jpg").read_bytes()[:-10])
    ds = CocoDetection(images_dir, ann_file, 64, train=True, cache=False)
    assert len(ds) == 2  # the header reads fine; the damage shows only when decoding
    with pytest.warns(UserWarning, match=r"im2\.jpg could not be decoded"):
        image, target = ds[1]
    assert image.shape == (3, 64, 64) and target["boxes"].shape == (0, 4)


def test_box_outside_the_image_is_clipped_and_counted(make_coco):
    ds = CocoDetection(*make_coco([ann(1, 1, [-4, 40, 20, 20]), ann(2, 1, [1, 1, 5, 5])]), 64)
    assert ds.stats.clipped_boxes == 1
    assert ds.coco.anns[1]["bbox"] == [0.0, 40.0, 16.0, 8.0] and ds.coco.anns[1]["area"] == 128.0
    assert ds[0][1]["boxes"][0].tolist() == [0.0, 40.0, 16.0, 48.0]  # 64 px wide: scale 1


@pytest.mark.parametrize("bbox", [[5, 5, 0, 10], [5, 5, 10, -1], [70, 5, 10, 10], [5, 5, float("nan"), 3], [1, 2]])
def test_zero_area_box_is_dropped_and_counted(make_coco, bbox):
    ds = CocoDetection(*make_coco([ann(1, 1, bbox), ann(2, 1, [1, 1, 5, 5])]), 64)
    assert (ds.stats.zero_area_boxes, ds.stats.boxes) == (1, 1)
    assert list(ds.coco.anns) == [2]


def test_unknown_category_is_an_error_naming_the_annotation(make_coco):
    with pytest.raises(UserError, match=r"annotation 42 .*category_id must be one of \[3, 7, 12\], but got 99"):
        CocoDetection(*make_coco([ann(1, 1, [0, 0, 5, 5]), ann(42, 2, [0, 0, 5, 5], 99)]), 64)


def test_unknown_image_id_is_an_error_naming_the_annotation(make_coco):
    with pytest.raises(UserError, match=r"annotation 5 .*image_id .* but got 9"):
        CocoDetection(*make_coco([ann(5, 9, [0, 0, 5, 5])]), 64)


def test_annotation_file_without_boxes_is_an_error_for_training_only(make_coco):
    paths = make_coco([])
    with pytest.raises(UserError, match=r"instances\.json: training needs boxes"):
        CocoDetection(*paths, 64, train=True)
    ds = CocoDetection(*paths, 64)
    assert (ds.stats.images, ds.stats.images_without_boxes) == (2, 2)
    assert ds[1][1]["boxes"].shape == (0, 4) and ds[1][1]["labels"].dtype == torch.int64


def test_images_without_boxes_are_negatives(make_coco):
    ds = CocoDetection(*make_coco([ann(1, 1, [0, 0, 10, 10])]), 64, train=True)
    assert ds.stats.summary() == "2 images (1 without boxes), 1 boxes; no problems found"
    assert ds[1][1]["boxes"].shape == (0, 4)


def test_summary_lists_the_problems(make_coco):
    ds = CocoDetection(*make_coco([ann(1, 1, [-1, 0, 10, 10]), ann(2, 1, [0, 0, 0, 0]), ann(3, 2, [1, 1, 4, 4], iscrowd=1)]), 64)
    assert ds.stats.summary() == (
        "2 images (1 without boxes), 1 boxes; 1 zero-area boxes dropped, 1 boxes clipped to the image, "
        "1 crowd boxes not trained on"
    )
    assert len(ds.coco.getAnnIds(iscrowd=True)) == 1  # crowd regions stay in the ground truth for COCOeval


def test_bad_json_and_missing_paths_are_errors(make_coco, tmp_path):
    images_dir, ann_file = make_coco([])
    ann_file.write_text("{not json")
    with pytest.raises(UserError, match=r"instances\.json: must be valid JSON"):
        CocoDetection(images_dir, ann_file, 64)
    make_coco([], [{"id": 1, "width": 4, "height": 4}], write=False)
    with pytest.raises(UserError, match=r"instances\.json: every image needs a file_name, but got \{'id': 1"):
        CocoDetection(images_dir, ann_file, 64)
    with pytest.raises(UserError, match=r"dataset .*nowhere: must be a dataset folder"):
        resolve_dataset(tmp_path / "nowhere", "train")
    with pytest.raises(UserError, match=r"must contain annotations/instances_val\.json"):
        resolve_dataset(tmp_path, "val")
    with pytest.raises(UserError, match=r"annotation file .*x\.json: must exist"):
        resolve_dataset((images_dir, tmp_path / "x.json"), "val")


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA"])
def test_grayscale_palette_and_alpha_images_load_as_rgb(make_coco, mode):
    images = [{"id": 1, "file_name": "im.png", "width": 32, "height": 32}]
    images_dir, ann_file = make_coco([ann(1, 1, [0, 0, 5, 5])], images, write=False)
    write_image(images_dir / "im.png", 32, 32, mode, value=100)
    ds = CocoDetection(images_dir, ann_file, 32)
    base = ds.base_image(0)
    assert base.shape == (32, 32, 3) and base.dtype == np.uint8
    if mode != "P":  # a palette index is not a grey level
        assert np.unique(base).tolist() == [100]
    assert ds[0][0].shape == (3, 32, 32)


def _white_box_dataset(make_coco, tmp_path, **kwargs):
    """A 200x100 black image with a white rectangle exactly at its one box [20, 10, 120, 60] (xyxy)."""
    images = [{"id": 1, "file_name": "im.png", "width": 200, "height": 100}]
    images_dir, ann_file = make_coco([ann(1, 1, [20, 10, 100, 50])], images, write=False)
    pixels = np.zeros((100, 200, 3), dtype=np.uint8)
    pixels[10:60, 20:120] = 255
    Image.fromarray(pixels).save(images_dir / "im.png")
    return CocoDetection(images_dir, ann_file, 64, **kwargs)


def test_resize_and_pad_keep_boxes_on_the_object(make_coco, tmp_path):
    image, target = _white_box_dataset(make_coco, tmp_path)[0]
    assert target["scale"] == 0.32 and target["orig_size"] == (100, 200)
    assert target["boxes"].tolist() == [pytest.approx([6.4, 3.2, 38.4, 19.2])]
    # pixels more than ~70% inside the box read brighter than 1.0: x 7..37 (6 is 60% in), y 3..18
    assert bright_box(image.numpy()) == [7, 3, 38, 19]
    assert image[:, 32:].abs().max() == 0  # rows below the 64x32 resized image are padding (mean colour)


def test_flip_mirrors_image_and_boxes(make_coco, tmp_path):
    ds = _white_box_dataset(make_coco, tmp_path, train=True, scale_range=(1.0, 1.0), flip_prob=1.0)
    image, target = ds[0]
    assert target["boxes"].tolist() == [pytest.approx([25.6, 3.2, 57.6, 19.2])]  # x -> 64 - x
    assert bright_box(image.numpy()) == [26, 3, 57, 19]  # mirror of x 7..37 about 32, edges 40-60% in


@pytest.mark.parametrize("key", [(0, 1), (0, 2), (0, 3), (0, 4)])
def test_scale_jitter_keeps_boxes_on_the_object(make_coco, tmp_path, key):
    ds = _white_box_dataset(make_coco, tmp_path, train=True, scale_range=(0.5, 3.0))
    image, target = ds[key]
    x1, y1, x2, y2 = target["boxes"][0].tolist()
    bx1, by1, bx2, by2 = bright_box(image.numpy())
    assert abs(bx1 - x1) <= 1 and abs(by1 - y1) <= 1 and abs(bx2 - x2) <= 1 and abs(by2 - y2) <= 1
    assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 64


def test_uncached_loading_gives_the_same_items(make_coco, tmp_path):
    cached = _white_box_dataset(make_coco, tmp_path, train=True)
    lazy = CocoDetection(cached.images_dir, cached.ann_file, 64, train=True, cache=False)
    assert lazy._cache is None and torch.equal(cached[(0, 3)][0], lazy[(0, 3)][0])


def test_augmentation_is_a_function_of_the_item_seed(make_coco, tmp_path):
    ds = _white_box_dataset(make_coco, tmp_path, train=True)
    assert torch.equal(ds[(0, 7)][0], ds[(0, 7)][0])
    assert not torch.equal(ds[(0, 7)][0], ds[(0, 8)][0])


@pytest.mark.skipif(not BCCD.is_dir(), reason="needs ../shared/datasets/bccd")
def test_bccd_val_loads_cleanly():
    ds = CocoDetection(*resolve_dataset(BCCD, "val"), 384)
    assert ds.info.category_names == ["RBC", "WBC", "Platelets"] and ds.info.label_to_category == [1, 2, 3]
    assert ds.stats.summary() == "72 images (0 without boxes), 945 boxes; no problems found"
    image, target = ds[0]
    assert image.shape == (3, 384, 384) and target["scale"] == 0.75
    assert target["image_id"] == 8 and target["boxes"][0].tolist() == pytest.approx([115.8, 55.2, 232.2, 171.0])
