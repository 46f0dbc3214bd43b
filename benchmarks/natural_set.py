"""A small natural-photo detection set, for checking ImageNet-pretrained fine-tuning vs training from scratch.

BCCD (blood cells) is far from ImageNet, so it says little about what a pretrained backbone buys on
ordinary photos. This set is cut-and-paste: objects cropped from photos bundled in Python wheels (no
download at any time) are pasted onto random crops of other bundled photos. Train and val use
different background photos and different RNG streams, so val measures transfer to unseen scenes.
Everything is a function of the seed (numpy ``default_rng``); the same parameters give the same files.

    python benchmarks/natural_set.py [--out DIR]      # needs scikit-image and scikit-learn installed
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

FORMAT_VERSION = 2  # bump when the generator changes, so old caches are rebuilt
DEFAULT_ROOT = Path(__file__).resolve().parents[1] / ".cache" / "natural_set"
MARKER = "natural_set.json"

# name: (package, file inside the package); all shipped inside the wheels (skimage's pooch-fetched ones are not used)
PHOTOS = {
    "chelsea": ("skimage", "data/chelsea.png"), "coffee": ("skimage", "data/coffee.png"),
    "astronaut": ("skimage", "data/astronaut.png"), "motorcycle": ("skimage", "data/motorcycle_left.png"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    "rocket": ("skimage", "data/rocket.jpg"), "grass": ("skimage", "data/grass.png"),
    "brick": ("skimage", "data/brick.png"), "gravel": ("skimage", "data/gravel.png"),
    "hubble": ("skimage", "data/hubble_deep_field.jpg"),
    "china": ("sklearn", "datasets/images/china.jpg"), "flower": ("sklearn", "datasets/images/flower.jpg"),
}
CLASSES = ("cat", "cup", "person", "motorcycle")
# (class, photo, tight box x0, y0, x1, y1 in source px, x1/y1 exclusive), chosen by eye on a 50 px grid.
# No rocket class: the rocket in rocket.jpg is ~1:8.5, beyond what 0.5/1/2 aspect anchors reach at IoU 0.5.
OBJECTS = (
    ("cat", "chelsea", (20, 0, 390, 300)),           # the face (ears cut by the photo's top edge)
    ("cup", "coffee", (170, 14, 414, 306)),          # cup with handle and spoon tip, no saucer
    ("person", "astronaut", (18, 12, 372, 512)),     # head to photo bottom, incl. part of the held helmet
    ("person", "grace_hopper", (16, 20, 512, 600)),  # cap to photo bottom
    ("motorcycle", "motorcycle", (92, 72, 686, 452)),  # mirror to tyres
)
# held-out backgrounds; none shows any class (motorcycle_right is the same scene as the object, so unused)
BACKGROUNDS = {"train": ("china", "rocket", "grass", "brick"), "val": ("flower", "gravel", "hubble")}
SIZE_RANGE = (320, 416)    # canvas width and height, px, each drawn independently (Lite0 trains at 320)
SCALE_RANGE = (0.12, 0.6)  # object's longer side / canvas's shorter side, log-uniform
MAX_OBJECTS = 4
MAX_OCCLUSION = 0.3        # a later paste may hide at most this fraction of any earlier object


@functools.lru_cache(maxsize=None)
def load_photo(name: str) -> np.ndarray:
    """uint8 [H, W, 3] (read-only) of a bundled photo, grey ones repeated to 3 channels."""
    package, rel = PHOTOS[name]
    spec = importlib.util.find_spec(package)  # locate without importing: no side effects, no data fetcher
    if spec is None or spec.origin is None:
        raise RuntimeError(f"natural_set needs the '{package}' package for {rel}: "
                           "pip install scikit-image scikit-learn matplotlib")
    return np.asarray(Image.open(Path(spec.origin).parent / rel).convert("RGB"))


def jitter(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    """Mild colour jitter of float [h, w, 3]: contrast and brightness x0.8-1.2, per-channel gain x0.9-1.1."""
    mean = pixels.mean()
    out = (pixels - mean) * rng.uniform(0.8, 1.2) + mean
    return out * rng.uniform(0.8, 1.2) * rng.uniform(0.9, 1.1, 3)


def background(rng: np.random.Generator, photo: np.ndarray, w: int, h: int) -> np.ndarray:
    """float [h, w, 3]: a random crop (50-100% of the largest w:h window) of ``photo``, resized, maybe flipped."""
    ph, pw = photo.shape[:2]
    ch = rng.uniform(0.5, 1.0) * min(ph, pw * h / w)
    cw = ch * w / h
    x, y = rng.uniform(0, pw - cw), rng.uniform(0, ph - ch)
    img = Image.fromarray(photo).resize((w, h), Image.BILINEAR, box=(x, y, x + cw, y + ch))
    pixels = np.asarray(img, dtype=np.float32)
    return jitter(rng, pixels[:, ::-1] if rng.random() < 0.5 else pixels)


def object_patch(rng: np.random.Generator, photo: str, box: tuple, side: float) -> np.ndarray:
    """float [h, w, 3] object crop whose longer side is ``side`` px, maybe flipped, colour-jittered."""
    x0, y0, x1, y1 = box
    k = side / max(x1 - x0, y1 - y0)
    size = (max(8, round((x1 - x0) * k)), max(8, round((y1 - y0) * k)))
    crop = Image.fromarray(load_photo(photo)).resize(size, Image.LANCZOS, box=box)
    pixels = np.asarray(crop, dtype=np.float32)
    return jitter(rng, pixels[:, ::-1] if rng.random() < 0.5 else pixels)


def feather(h: int, w: int) -> np.ndarray:
    """float [h, w, 1] alpha from 0.5 at the border to 1 at ~3% inside, so the paste has no razor edge yet its
    outermost pixels are still mostly object: the box stays exactly the pasted rectangle."""
    r = max(1, round(0.03 * min(h, w)))
    ys, xs = np.minimum(np.arange(h), np.arange(h)[::-1]), np.minimum(np.arange(w), np.arange(w)[::-1])
    return 0.5 + 0.5 * np.minimum(np.minimum.outer(ys, xs), r)[..., None] / r


def compose(rng: np.random.Generator, split: str) -> tuple[np.ndarray, list[tuple[int, list[int]]]]:
    """One uint8 [h, w, 3] image and its objects as (class index, [x, y, w, h] of the visible extent, px)."""
    w, h = (int(v) for v in rng.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1, 2))
    names = BACKGROUNDS[split]
    img = background(rng, load_photo(names[rng.integers(len(names))]), w, h)
    owner = np.full((h, w), -1, dtype=np.int32)  # index of the topmost object at each pixel
    areas, labels = [], []
    for _ in range(int(rng.integers(1, MAX_OBJECTS + 1))):
        label = int(rng.integers(len(CLASSES)))  # classes balanced, whatever the number of crops per class
        crops = [(photo, box) for cls, photo, box in OBJECTS if cls == CLASSES[label]]
        photo, box = crops[rng.integers(len(crops))]
        for _ in range(20):  # retry positions/sizes until no earlier object is hidden too much
            side = float(np.exp(rng.uniform(*np.log(SCALE_RANGE)))) * min(w, h)
            patch = object_patch(rng, photo, box, side)
            ph, pw = patch.shape[:2]
            x, y = int(rng.integers(0, w - pw + 1)), int(rng.integers(0, h - ph + 1))
            covered = owner[y : y + ph, x : x + pw]
            if all((owner == k).sum() - (covered == k).sum() >= (1 - MAX_OCCLUSION) * areas[k]
                   for k in np.unique(covered[covered >= 0])):
                alpha = feather(ph, pw)
                img[y : y + ph, x : x + pw] = alpha * patch + (1 - alpha) * img[y : y + ph, x : x + pw]
                covered[...] = len(areas)
                areas.append(ph * pw)
                labels.append(label)
                break
    objects = []
    for k, label in enumerate(labels):  # modal boxes, as in COCO and scalesearch's synthetic set
        ys, xs = np.nonzero(owner == k)
        objects.append((label, [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]))
    return np.clip(img, 0, 255).astype(np.uint8), objects


def write_split(seed: int, split: str, count: int, first_id: int, first_ann: int, out: Path) -> dict:
    """Render ``count`` images into ``out/images``; returns the split's COCO dict."""
    images, annotations = [], []
    for n in range(count):
        rng = np.random.default_rng([seed, list(BACKGROUNDS).index(split), n])  # one stream per split and image
        pixels, objects = compose(rng, split)
        image_id, name = first_id + n, f"{split}_{n:05d}.jpg"
        Image.fromarray(pixels).save(out / "images" / name, quality=85)
        images.append({"id": image_id, "file_name": name, "width": pixels.shape[1], "height": pixels.shape[0]})
        for label, bbox in objects:
            annotations.append({"id": first_ann + len(annotations), "image_id": image_id, "category_id": label + 1,
                                "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0})
    categories = [{"id": c + 1, "name": name, "supercategory": "natural"} for c, name in enumerate(CLASSES)]
    info = {"description": "scalesearch natural cut-and-paste set", "backgrounds": list(BACKGROUNDS[split]),
            "sources": {k: "/".join(v) for k, v in PHOTOS.items()}}
    return {"info": info, "images": images, "annotations": annotations, "categories": categories}


def natural_dataset(root: Path | None = None, *, seed: int = 0, train_images: int = 240, val_images: int = 60) -> Path:
    """Build (or reuse) the set; returns ROOT with ``images/*.jpg`` and ``annotations/instances_{train,val}.json``.

    The folder is reused when its marker file holds the same parameters; otherwise it is rebuilt aside and
    swapped in. A non-empty ROOT without the marker is refused rather than deleted.
    """
    root = Path(root or DEFAULT_ROOT)
    params = {"seed": int(seed), "train_images": int(train_images), "val_images": int(val_images),
              "version": FORMAT_VERSION}
    marker = root / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == params:
        return root
    if root.exists() and any(root.iterdir()) and not marker.is_file():
        raise RuntimeError(f"{root} exists, is not empty and is not a natural_set folder; not overwriting it")
    tmp = root.with_name(f".{root.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    (tmp / "annotations").mkdir()
    train = write_split(seed, "train", train_images, 1, 1, tmp)
    val = write_split(seed, "val", val_images, train_images + 1, len(train["annotations"]) + 1, tmp)
    for split, coco in (("train", train), ("val", val)):  # image and annotation ids unique across splits
        (tmp / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
    (tmp / MARKER).write_text(json.dumps(params))  # written last: a half-built folder never looks finished
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help=f"dataset folder (default {DEFAULT_ROOT})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-images", type=int, default=240)
    parser.add_argument("--val-images", type=int, default=60)
    args = parser.parse_args()
    start = time.perf_counter()
    root = natural_dataset(args.out, seed=args.seed, train_images=args.train_images, val_images=args.val_images)
    print(f"{root}  ({time.perf_counter() - start:.1f} s)")
    for split in ("train", "val"):
        coco = json.loads((root / "annotations" / f"instances_{split}.json").read_text())
        per_class = np.bincount([a["category_id"] - 1 for a in coco["annotations"]], minlength=len(CLASSES))
        print(f"  {split}: {len(coco['images'])} images, {len(coco['annotations'])} boxes "
              f"({', '.join(f'{c} {n}' for c, n in zip(CLASSES, per_class))})")


if __name__ == "__main__":
    main()
