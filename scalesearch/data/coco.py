"""``CocoDetection``: any COCO-format detection dataset, resized and padded to a square resolution.

Each image is decoded and resized once, to its *base scale* (long side = R), and kept as uint8 in
memory (``cache``), so epochs after the first cost only the augmentation and normalisation. The
cache is built in the main process before any worker starts; forked DataLoader workers share it.
"""

from __future__ import annotations

import contextlib
import io
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalesearch.data import transforms as T
from scalesearch.data.clean import DatasetStats, check_image_files, clean_annotations, read_json
from scalesearch.errors import UserError

CACHE_BUDGET_BYTES = 4 << 30  # cache decoded images in memory up to this size (auto mode)


@dataclass
class DatasetInfo:
    """Contiguous labels 0..C-1 <-> the dataset's category ids (sorted by id)."""

    num_classes: int
    label_to_category: list[int]
    category_names: list[str]

    @classmethod
    def from_categories(cls, categories: list[dict[str, Any]]) -> "DatasetInfo":
        cats = sorted(categories, key=lambda c: c["id"])
        return cls(len(cats), [int(c["id"]) for c in cats], [str(c.get("name", c["id"])) for c in cats])

    def category_ids(self, labels: torch.Tensor | np.ndarray) -> list[int]:
        """Contiguous labels -> dataset category ids."""
        return [self.label_to_category[int(i)] for i in labels]

    def labels(self, category_ids: list[int]) -> np.ndarray:
        """Dataset category ids -> contiguous labels (int64)."""
        index = {cat: label for label, cat in enumerate(self.label_to_category)}
        return np.asarray([index[int(c)] for c in category_ids], dtype=np.int64)


def load_rgb(path: Path, width: int | None = None, height: int | None = None) -> np.ndarray:
    """Decode an image as uint8 [H, W, 3] RGB (grayscale, palette and RGBA converted), optionally resized.

    Raises ``OSError`` if the file cannot be decoded.
    """
    from PIL import Image

    with Image.open(path) as img:
        if width is not None and img.format == "JPEG":
            img.draft("RGB", (width, height))  # let libjpeg decode at 1/2, 1/4, 1/8 scale when shrinking a lot
        if img.mode in ("P", "LA", "PA", "RGBA") or "transparency" in img.info:
            img = img.convert("RGBA")  # palette/alpha images: drop alpha explicitly (below), not via 'P' quirks
        img = img.convert("RGB")
        if width is not None and img.size != (width, height):
            img = img.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=None)
        return np.array(img)  # writable copy: torch.from_numpy warns on read-only arrays


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image header, or None when the file is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, UnidentifiedImageError, ValueError):
        return None


class CocoDetection(torch.utils.data.Dataset):
    """A COCO instances file + images folder as (image, target) pairs at resolution R.

    ``dataset[i]`` -> (float32 Tensor[3, R, R] normalised by ``normalization`` (mean, std; ImageNet's by default), dict(boxes=float32 Tensor[N, 4]
    xyxy in resized pixels, labels=int64 Tensor[N] in 0..C-1, image_id=int, scale=float resized /
    original, orig_size=(height, width) original pixels)). With ``train=True`` the image is
    scale-jittered, cropped and flipped; the randomness comes from the seed given with the index
    (``dataset[(i, seed)]``, as ``make_loader`` does), or from (``seed``, i) for a plain index.

    Attributes: ``info`` (DatasetInfo), ``coco`` (pycocotools COCO of the cleaned ground truth),
    ``stats`` (DatasetStats), ``image_ids``. ``cache``: keep decoded images in memory (default: when
    they fit in 4 GiB); ``decode_threads``: threads that read and decode images up front.
    """

    seeded_keys = True  # make_loader passes (index, augmentation seed) keys

    def __init__(
        self,
        images_dir: str | Path,
        ann_file: str | Path,
        resolution: int,
        train: bool = False,
        *,
        scale_range: tuple[float, float] = (0.75, 1.25),
        flip_prob: float = 0.5,
        min_box_size: float = 2.0,
        seed: int = 0,
        cache: bool | None = None,
        decode_threads: int = 4,
        normalization: T.Normalization = (T.IMAGENET_MEAN, T.IMAGENET_STD),
    ) -> None:
        self.images_dir, self.ann_file = Path(images_dir), Path(ann_file)
        self.resolution, self.train, self.seed = int(resolution), bool(train), int(seed)
        self.scale_range, self.flip_prob, self.min_box_size = tuple(scale_range), flip_prob, min_box_size
        self.normalization = normalization
        self.stats = DatasetStats()
        data = read_json(self.ann_file)
        check_image_files(data["images"], self.images_dir)
        self.info = DatasetInfo.from_categories(data["categories"])
        images = self._readable_images(data["images"], decode_threads)
        sizes = {img["id"]: (img["width"], img["height"]) for img in images}
        annotations = clean_annotations(data, self.ann_file, sizes, self.stats)
        self.coco = self._build_coco({**data, "images": images, "annotations": annotations})
        self._index(images, annotations)
        if cache is None:
            cache = len(images) * self.resolution**2 * 3 <= CACHE_BUDGET_BYTES
        self._cache: list[np.ndarray] | None = None
        if cache:
            self._fill_cache(decode_threads)
        if self.train and not self.stats.boxes:
            raise UserError(f"annotation file {self.ann_file}: training needs boxes, but it has no usable annotation")

    # -- building -------------------------------------------------------------------------------

    def _readable_images(self, images: list[dict], workers: int) -> list[dict]:
        """Images whose header can be read, with width/height taken from the file (counted if they differ)."""
        paths = [self.images_dir / img["file_name"] for img in images]
        with ThreadPoolExecutor(max(1, workers)) as pool:
            sizes = list(pool.map(_header_size, paths))
        kept = []
        for img, size in zip(images, sizes):
            if size is None:
                self.stats.unreadable_images += 1
                continue
            if (img.get("width"), img.get("height")) != size:
                self.stats.size_mismatches += "width" in img  # a missing size is filled in, not a mismatch
            kept.append({**img, "width": size[0], "height": size[1]})
        return kept

    @staticmethod
    def _build_coco(dataset: dict[str, Any]) -> Any:
        from pycocotools.coco import COCO

        coco = COCO()
        coco.dataset = dataset
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
        return coco

    def _index(self, images: list[dict], annotations: list[dict]) -> None:
        """Per-image file, size, and training boxes (xyxy original px) + contiguous labels."""
        self.images = images
        self.image_ids = [img["id"] for img in images]
        per_image: dict[int, list[dict]] = {i: [] for i in self.image_ids}
        for ann in annotations:
            if not ann["iscrowd"]:
                per_image[ann["image_id"]].append(ann)
        self._boxes, self._labels = [], []
        for image_id in self.image_ids:
            anns = per_image[image_id]
            xywh = np.asarray([a["bbox"] for a in anns], dtype=np.float32).reshape(-1, 4)
            self._boxes.append(np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1))
            self._labels.append(self.info.labels([a["category_id"] for a in anns]))
        self.stats.images = len(images)
        self.stats.boxes = sum(len(b) for b in self._boxes)
        self.stats.images_without_boxes = sum(len(b) == 0 for b in self._boxes)

    def _decode(self, i: int) -> np.ndarray | None:
        img = self.images[i]
        width, height, _ = T.base_size(img["width"], img["height"], self.resolution)
        try:
            return load_rgb(self.images_dir / img["file_name"], width, height)
        except (OSError, ValueError, SyntaxError):  # truncated or corrupt data behind a valid header
            return None

    def _fill_cache(self, workers: int) -> None:
        """Decode every image once at base scale; drop (and count) those that fail to decode."""
        with ThreadPoolExecutor(max(1, workers)) as pool:  # PIL releases the GIL while decoding
            decoded = list(pool.map(self._decode, range(len(self.images))))
        bad = [i for i, arr in enumerate(decoded) if arr is None]
        if bad:
            self.stats.unreadable_images += len(bad)
            keep = [i for i, arr in enumerate(decoded) if arr is not None]
            dropped = {self.image_ids[i] for i in bad}
            data = self.coco.dataset
            self.coco = self._build_coco({
                **data,
                "images": [self.images[i] for i in keep],
                "annotations": [a for a in data["annotations"] if a["image_id"] not in dropped],
            })
            decoded = [decoded[i] for i in keep]
            self._index([self.images[i] for i in keep], self.coco.dataset["annotations"])
        self._cache = decoded

    # -- access ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.images)

    def base_image(self, i: int) -> np.ndarray | None:
        """uint8 [h, w, 3] at base scale (long side = R); None if it fails to decode (uncached mode only)."""
        return self._cache[i] if self._cache is not None else self._decode(i)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, dict[str, Any]]:
        i, item_seed = key if isinstance(key, tuple) else (key, None)
        img = self.images[i]
        _, _, scale = T.base_size(img["width"], img["height"], self.resolution)
        pixels, boxes, labels = self.base_image(i), torch.from_numpy(self._boxes[i]) * scale, torch.from_numpy(self._labels[i])
        if pixels is None:  # uncached mode meets a corrupt file mid-run: a blank negative, not a crash
            warnings.warn(f"image {self.images_dir / img['file_name']} could not be decoded; using a blank image")
            width, height, _ = T.base_size(img["width"], img["height"], self.resolution)
            pixels, boxes, labels = np.full((height, width, 3), 124, np.uint8), boxes[:0], labels[:0]
        image = torch.from_numpy(pixels).permute(2, 0, 1)
        if self.train:
            if item_seed is None:
                item_seed = zlib.crc32(f"{self.seed}:{i}".encode())
            rng = np.random.default_rng(item_seed)
            image, boxes, ratio = T.train_augment(image, boxes, self.resolution, rng, self.scale_range, self.flip_prob)
            keep = T.keep_boxes(boxes, self.min_box_size)
            boxes, labels, scale = boxes[keep], labels[keep], scale * ratio
        target = {
            "boxes": boxes.float(),
            "labels": labels,
            "image_id": int(img["id"]),
            "scale": float(scale),
            "orig_size": (int(img["height"]), int(img["width"])),
        }
        return T.normalize_pad(image, self.resolution, self.normalization), target
