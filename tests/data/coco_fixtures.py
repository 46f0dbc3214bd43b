"""Helpers to build tiny COCO datasets (images + instances JSON) in a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CATEGORIES = [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}, {"id": 12, "name": "bird"}]


def write_image(path: Path, width: int, height: int, mode: str = "RGB", value: int = 90) -> None:
    """A flat image of ``value`` in the given PIL mode."""
    colour = {"RGB": (value,) * 3, "RGBA": (value,) * 3 + (128,), "L": value, "P": value, "LA": (value, 255)}[mode]
    Image.new(mode, (width, height), colour).save(path)


def ann(ann_id: int, image_id: int, bbox: list[float], category_id: int = 7, **extra) -> dict:
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": bbox, **extra}


@pytest.fixture
def make_coco(tmp_path):
    """make_coco(annotations, images=None) -> (images_dir, ann_file); default: two 64x48 RGB jpgs, ids 1 and 2."""

    def build(annotations: list[dict], images: list[dict] | None = None, categories=CATEGORIES, write=True):
        images_dir = tmp_path / "images"
        images_dir.mkdir(exist_ok=True)
        if images is None:
            images = [{"id": i, "file_name": f"im{i}.jpg", "width": 64, "height": 48} for i in (1, 2)]
        if write:
            for img in images:
                if not (images_dir / img["file_name"]).exists():
                    write_image(images_dir / img["file_name"], img["width"], img["height"])
        ann_file = tmp_path / "instances.json"
        ann_file.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
        return images_dir, ann_file

    return build


def bright_box(image: np.ndarray, threshold: float = 1.0) -> list[int]:
    """[x1, y1, x2, y2] (exclusive ends) of the pixels of a normalised [3, H, W] image above ``threshold`` in all channels."""
    ys, xs = np.nonzero((image > threshold).all(axis=0))
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
