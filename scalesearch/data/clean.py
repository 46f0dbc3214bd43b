"""Load and clean a COCO instances file before anything trains on it.

The policy, so that a bad dataset fails at once with a clear message or is filtered with counts,
never halfway through training:
- broken references are errors (``UserError``, naming the file or annotation id): a missing
  annotation file, invalid JSON, no categories, an image file that does not exist, an annotation
  whose ``image_id`` or ``category_id`` is not declared, duplicate ids;
- bad content is filtered and counted in ``DatasetStats``: an unreadable image (dropped with its
  boxes), a box reaching outside its image (clipped), a box of zero or negative width/height or
  non-finite coordinates (dropped), a crowd box (kept for evaluation, not trained on);
- images without boxes are valid negatives, but a training file without any box is an error.
The cleaned dict becomes the ``COCO`` ground truth used for evaluation, so training and
evaluation see the same boxes.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scalesearch.errors import UserError


@dataclass
class DatasetStats:
    """Counts of what loading a dataset kept, fixed and dropped."""

    images: int = 0
    boxes: int = 0
    images_without_boxes: int = 0
    unreadable_images: int = 0
    size_mismatches: int = 0
    clipped_boxes: int = 0
    zero_area_boxes: int = 0
    crowd_boxes: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        """One line for logs, e.g. ``292 images (0 without boxes), 3941 boxes; dropped: ...``."""
        head = f"{self.images} images ({self.images_without_boxes} without boxes), {self.boxes} boxes"
        fixes = {
            "unreadable images dropped": self.unreadable_images,
            "zero-area boxes dropped": self.zero_area_boxes,
            "boxes clipped to the image": self.clipped_boxes,
            "crowd boxes not trained on": self.crowd_boxes,
            "image sizes corrected from the file": self.size_mismatches,
        }
        issues = [f"{n} {what}" for what, n in fixes.items() if n]
        return head + ("; " + ", ".join(issues) if issues else "; no problems found")


def read_json(ann_file: Path) -> dict[str, Any]:
    """Parse an instances file; a missing or malformed file is a ``UserError`` naming it."""
    if not ann_file.is_file():
        raise UserError(f"annotation file {ann_file}: must exist, but it was not found")
    try:
        data = json.loads(ann_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"annotation file {ann_file}: must be valid JSON, but got {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise UserError(f"annotation file {ann_file}: must be a COCO dict with an 'images' list")
    if not data.get("categories"):
        raise UserError(f"annotation file {ann_file}: 'categories' must be a non-empty list")
    unnamed = next((img for img in data["images"] if not isinstance(img, dict) or not img.get("file_name")), None)
    if unnamed is not None:
        raise UserError(f"annotation file {ann_file}: every image needs a file_name, but got {unnamed!r}")
    return data


def _unique_ids(items: list[dict], what: str, ann_file: Path) -> set[int]:
    ids = [item.get("id") for item in items]
    if len(set(ids)) != len(ids) or None in ids:
        dup = next(i for i in ids if ids.count(i) > 1 or i is None)
        raise UserError(f"annotation file {ann_file}: {what} ids must be present and unique, but got {dup!r} twice")
    return set(ids)


def check_image_files(images: list[dict], images_dir: Path) -> None:
    """Every listed image file must exist (checked up front, before any training step)."""
    missing = [img["file_name"] for img in images if not (images_dir / img["file_name"]).is_file()]
    if missing:
        raise UserError(
            f"image file {images_dir / missing[0]}: every image in the annotation file must exist, "
            f"but {len(missing)} of {len(images)} are missing"
        )


def _clean_box(ann: dict, width: int, height: int, stats: DatasetStats) -> list[float] | None:
    """Clip a COCO [x, y, w, h] box to the image; None (counted) if it has no area left."""
    try:
        x, y, w, h = (float(v) for v in ann["bbox"])
    except (KeyError, TypeError, ValueError):
        x = y = w = h = math.nan
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        stats.zero_area_boxes += 1
        return None
    x1, y1 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x2, y2 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
    if x2 <= x1 or y2 <= y1:  # entirely outside the image: nothing left to detect
        stats.zero_area_boxes += 1
        return None
    if (x1, y1, x2, y2) != (x, y, x + w, y + h):
        stats.clipped_boxes += 1
        ann["area"] = (x2 - x1) * (y2 - y1)
    return [x1, y1, x2 - x1, y2 - y1]


def clean_annotations(
    data: dict[str, Any], ann_file: Path, sizes: dict[int, tuple[int, int]], stats: DatasetStats
) -> list[dict]:
    """Validate references and clean boxes; ``sizes`` maps each readable image id to (width, height).

    Returns the kept annotations with ``area`` (box area when missing or clipped) and ``iscrowd``
    filled in. Updates ``stats``.
    """
    image_ids = _unique_ids(data["images"], "image", ann_file)
    category_ids = _unique_ids(data["categories"], "category", ann_file)
    annotations = data.get("annotations") or []
    for i, ann in enumerate(annotations):
        ann.setdefault("id", i + 1)
    _unique_ids(annotations, "annotation", ann_file)
    kept = []
    for ann in annotations:
        if ann.get("image_id") not in image_ids:
            raise UserError(
                f"annotation {ann['id']} in {ann_file}: image_id must be one of the file's images, "
                f"but got {ann.get('image_id')!r}"
            )
        if ann.get("category_id") not in category_ids:
            raise UserError(
                f"annotation {ann['id']} in {ann_file}: category_id must be one of {sorted(category_ids)}, "
                f"but got {ann.get('category_id')!r}"
            )
        if ann["image_id"] not in sizes:  # its image was unreadable and dropped
            continue
        box = _clean_box(ann, *sizes[ann["image_id"]], stats)
        if box is None:
            continue
        crowd = int(bool(ann.get("iscrowd", 0)))
        stats.crowd_boxes += crowd
        # COCO's own area (the mask area where there is one) decides small/medium/large: keep it
        kept.append({**ann, "bbox": box, "area": float(ann.get("area", box[2] * box[3])), "iscrowd": crowd})
    return kept
