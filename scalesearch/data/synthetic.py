"""The built-in synthetic detection dataset: textured shapes on cluttered backgrounds, in COCO layout.

Classes are shapes (circle, square, triangle, cross, then star, ring, diamond, hexagon); texture and
colour are drawn independently of the class, so only the outline tells classes apart. Objects are
vivid on muted, noisy backgrounds crossed by vivid distractor strokes. Object sizes
are log-uniform from ``min_object`` to ``max_object`` px, so small, medium and large COCO buckets are
all populated and multi-scale fusion matters. Later objects may cover earlier ones, but never more
than ``max_occlusion`` of them; boxes are the visible (modal) extent. Everything is a function of the
seed (numpy ``default_rng``), so the same parameters give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

SHAPES = ("circle", "square", "triangle", "cross", "star", "ring", "diamond", "hexagon")
TEXTURES = ("solid", "stripes", "checker", "noise")
FORMAT_VERSION = 2  # bump when the generator changes, so old caches are not reused


def cache_root() -> Path:
    """``$SCALESEARCH_CACHE`` or ``~/.cache/scalesearch``."""
    return Path(os.environ.get("SCALESEARCH_CACHE") or Path.home() / ".cache" / "scalesearch")


def _polygon(shape: str, w: int, h: int) -> list[tuple[float, float]] | None:
    """Outline of a polygonal shape filling a w x h box (None for the ellipse-based shapes)."""
    unit = {
        "square": [(0, 0), (1, 0), (1, 1), (0, 1)],
        "triangle": [(0.5, 0), (1, 1), (0, 1)],
        "cross": [(0.33, 0), (0.67, 0), (0.67, 0.33), (1, 0.33), (1, 0.67), (0.67, 0.67), (0.67, 1),
                  (0.33, 1), (0.33, 0.67), (0, 0.67), (0, 0.33), (0.33, 0.33)],
        "diamond": [(0.5, 0), (1, 0.5), (0.5, 1), (0, 0.5)],
        "hexagon": [(0.25, 0), (0.75, 0), (1, 0.5), (0.75, 1), (0.25, 1), (0, 0.5)],
    }.get(shape)
    if shape == "star":
        angles = np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 0.5, 0.2)
        unit = list(zip(0.5 - radii * np.cos(angles), 0.5 - radii * np.sin(angles)))
    if unit is None:
        return None
    return [(x * (w - 1), y * (h - 1)) for x, y in unit]


def shape_mask(shape: str, w: int, h: int) -> np.ndarray:
    """bool [h, w] mask of ``shape`` filling a w x h box."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    outline = _polygon(shape, w, h)
    if outline is not None:
        draw.polygon(outline, fill=255)
    else:
        draw.ellipse([0, 0, w - 1, h - 1], fill=255)
        if shape == "ring":  # a ring differs from a circle by its hole (a third of the width)
            draw.ellipse([w / 3, h / 3, w - 1 - w / 3, h - 1 - h / 3], fill=0)
    return np.asarray(canvas) > 127


def vivid(rng: np.random.Generator) -> np.ndarray:
    """A saturated colour (0..255 RGB): one channel high, one low, one anywhere."""
    channels = rng.permutation(3)
    colour = np.empty(3)
    colour[channels] = [rng.uniform(200, 255), rng.uniform(0, 60), rng.uniform(0, 255)]
    return colour


def texture(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """float [h, w, 3] fill pattern (solid, stripes, checker or noise) in shades of one vivid colour.

    Both shades share a hue, so the texture varies inside the object while its outline, which is
    what tells the classes apart, stays the strongest edge.
    """
    kind = TEXTURES[rng.integers(len(TEXTURES))]
    c1 = vivid(rng)
    c2 = c1 * rng.uniform(0.35, 0.65)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "solid":
        t = np.zeros((h, w))
    elif kind == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 12)
        t = (np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) > 0).astype(np.float32)
    elif kind == "checker":
        cell = rng.integers(3, 10)
        t = ((xx // cell + yy // cell) % 2).astype(np.float32)
    else:
        t = rng.uniform(0, 1, (h, w))
    return c1 + t[..., None] * (c2 - c1)


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """float [size, size, 3]: a muted colour gradient + pixel noise + a few distractor strokes and arcs.

    Backgrounds are greyish (low saturation) and objects vivid, so objects stand out, while strokes
    in vivid colours give edges that are not objects.
    """
    from PIL import Image, ImageDraw

    grey = rng.uniform(70, 190, 2)
    c1, c2 = grey[0] + rng.uniform(-20, 20, 3), grey[1] + rng.uniform(-20, 20, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / size
    ramp = (xx * np.cos(angle) + yy * np.sin(angle) + 1.5) / 3
    img = Image.fromarray((c1 + ramp[..., None] * (c2 - c1)).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(1, 5)):  # thin strokes: edges that are not objects
        points = [tuple(p) for p in rng.uniform(0, size, (2, 2))]
        colour = tuple(int(v) for v in vivid(rng))
        if rng.random() < 0.5:
            draw.line(points, fill=colour, width=int(rng.integers(1, 3)))
        else:
            x, y = rng.uniform(0, size, 2)
            r = rng.uniform(8, size / 3)
            draw.arc([x - r, y - r, x + r, y + r], *sorted(rng.uniform(0, 360, 2)), fill=colour, width=2)
    noise = rng.normal(0, rng.uniform(4, 10), (size, size, 3))
    return np.asarray(img, dtype=np.float32) + noise


def _place(
    rng: np.random.Generator, size: int, owner: np.ndarray, areas: list[int],
    min_object: float, max_object: float, max_occlusion: float,
) -> tuple[int, int, int, int] | None:
    """Sample one object box that hides at most ``max_occlusion`` of any earlier object (``areas``: their full sizes, px)."""
    for _ in range(20):
        side = float(np.exp(rng.uniform(np.log(min_object), np.log(max_object))))
        aspect = rng.uniform(0.75, 1.33)
        w, h = max(4, round(side * np.sqrt(aspect))), max(4, round(side / np.sqrt(aspect)))
        w, h = min(w, size), min(h, size)
        x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
        covered = owner[y : y + h, x : x + w]
        # conservative: the whole box counts as covering, whatever shape is drawn in it
        ok = all(
            (owner == k).sum() - (covered == k).sum() >= (1 - max_occlusion) * areas[k]
            for k in np.unique(covered[covered >= 0])
        )
        if ok:
            return x, y, w, h
    return None


def render_image(rng: np.random.Generator, size: int, num_classes: int, max_objects: int,
                 min_object: float, max_object: float, max_occlusion: float,
                 ) -> tuple[np.ndarray, list[tuple[int, list[int]]]]:
    """One uint8 [size, size, 3] image and its objects as (label, [x, y, w, h]) of the visible part."""
    img = background(rng, size)
    owner = np.full((size, size), -1, dtype=np.int32)
    areas, labels = [], []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        placed = _place(rng, size, owner, areas, min_object, max_object, max_occlusion)
        if placed is None:
            continue
        x, y, w, h = placed
        label = int(rng.integers(num_classes))
        mask = shape_mask(SHAPES[label], w, h)
        region = img[y : y + h, x : x + w]
        region[mask] = texture(rng, w, h)[mask]
        owner[y : y + h, x : x + w][mask] = len(areas)
        areas.append(int(mask.sum()))
        labels.append(label)
    objects = []
    for k, label in enumerate(labels):
        ys, xs = np.nonzero(owner == k)
        if len(xs):
            objects.append((label, [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]))
    return np.clip(img, 0, 255).astype(np.uint8), objects


def _split(rng_seed: list[int], split: str, first_id: int, first_ann: int, count: int, out: Path, params: dict) -> dict:
    """Render ``count`` images into ``out/images`` and return the split's COCO dict."""
    from PIL import Image

    images, annotations = [], []
    for n in range(count):
        rng = np.random.default_rng(rng_seed + [n])
        pixels, objects = render_image(
            rng, params["image_size"], params["num_classes"], params["max_objects"],
            params["min_object"], params["max_object"], params["max_occlusion"],
        )
        image_id, name = first_id + n, f"{split}_{n:05d}.jpg"
        Image.fromarray(pixels).save(out / "images" / name, quality=92)
        images.append({"id": image_id, "file_name": name, "width": params["image_size"], "height": params["image_size"]})
        for label, box in objects:
            annotations.append({"id": first_ann + len(annotations), "image_id": image_id,
                                "category_id": label + 1, "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    categories = [{"id": c + 1, "name": SHAPES[c], "supercategory": "shape"} for c in range(params["num_classes"])]
    return {"info": {"description": "scalesearch synthetic shapes", **params}, "images": images,
            "annotations": annotations, "categories": categories}


def synthetic_dataset(
    root: str | Path | None = None,
    *,
    seed: int = 0,
    num_train: int = 400,
    num_val: int = 80,
    image_size: int = 256,
    num_classes: int = 4,
    max_objects: int = 6,
    min_object: float = 20,
    max_object: float = 128,
    max_occlusion: float = 0.4,
) -> Path:
    """Generate (or reuse) the synthetic dataset; returns its folder (``images/``, ``annotations/instances_{train,val}.json``).

    root: cache folder (default ``cache_root()``); the dataset lives in ``root/synthetic-<hash of params>``.
    Sizes are in pixels. ``min_object`` defaults to 20 px because the smallest EfficientDet anchor at
    P3 is 32 px (anchor scale 4 x stride 8), and a box must reach IoU 0.5 with an anchor to be learnt.
    """
    from scalesearch.errors import UserError

    if min(num_train, num_val) < 1:
        raise UserError(f"synthetic num_train/num_val: must be >= 1, but got ({num_train}, {num_val})")
    if not 1 <= num_classes <= len(SHAPES):
        raise UserError(f"synthetic num_classes: must be in 1..{len(SHAPES)}, but got {num_classes}")
    if not 4 <= min_object <= max_object <= image_size:
        raise UserError(f"synthetic object sizes: 4 <= min_object <= max_object <= image_size must hold, "
                        f"but got ({min_object}, {max_object}, {image_size})")
    # typed so that 20 and 20.0 (YAML, CLI) name the same cached dataset
    params = {"seed": int(seed), "num_train": int(num_train), "num_val": int(num_val), "image_size": int(image_size),
              "num_classes": int(num_classes), "max_objects": int(max_objects), "min_object": float(min_object),
              "max_object": float(max_object), "max_occlusion": float(max_occlusion), "version": FORMAT_VERSION}
    key = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    final = Path(root or cache_root()) / f"synthetic-{key}"
    if (final / "annotations" / "instances_val.json").is_file():
        return final
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")  # build aside, publish by rename (parallel-safe)
    (tmp / "images").mkdir(parents=True, exist_ok=True)
    (tmp / "annotations").mkdir(exist_ok=True)
    train = _split([seed, 0], "train", 1, 1, num_train, tmp, params)
    val = _split([seed, 1], "val", num_train + 1, len(train["annotations"]) + 1, num_val, tmp, params)
    for split, coco in (("train", train), ("val", val)):  # image and annotation ids unique across splits
        (tmp / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
    try:
        tmp.rename(final)
    except OSError:  # another process published the same dataset first
        shutil.rmtree(tmp, ignore_errors=True)
    return final
