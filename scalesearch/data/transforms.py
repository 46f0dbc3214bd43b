"""Image + box transforms on uint8 tensors: letterbox (resize long side, pad), scale jitter, flip.

Images are ``uint8 Tensor[3, H, W]``; boxes are ``float32 Tensor[N, 4]`` xyxy in pixels of the
image they travel with. Padding goes to the bottom and right, so box coordinates never shift
by the padding, and it is 0 after normalisation (the mean colour).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Normalization = tuple[tuple[float, float, float], tuple[float, float, float]]  # (mean, std) of x / 255


def base_size(width: int, height: int, resolution: int) -> tuple[int, int, float]:
    """(width, height, scale) of an image whose long side is resized to ``resolution`` px."""
    scale = resolution / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale)), scale


def normalize_pad(image: torch.Tensor, resolution: int,
                  normalization: Normalization = (IMAGENET_MEAN, IMAGENET_STD)) -> torch.Tensor:
    """uint8 Tensor[3, h, w] (h, w <= R) -> float32 Tensor[3, R, R], ``(x / 255 - mean) / std``, padded with 0.

    ``normalization`` is the backbone's (``scalesearch.model.input_normalization``): ImageNet mean/std
    by default, mean = std = 0.5 for the TF-Lite backbones.
    """
    mean, std = (torch.tensor(v, dtype=torch.float32).view(3, 1, 1) for v in normalization)
    out = torch.zeros(3, resolution, resolution)
    h, w = image.shape[1:]
    out[:, :h, :w] = image.float().mul_(1 / (255 * std)).sub_(mean / std)  # one fused pass: x * a - b
    return out


def resize(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Bilinear, antialiased resize of a uint8 Tensor[3, H, W] to [3, height, width].

    Stays in uint8: torch's uint8 path (fastest for channels-last input, which the HWC cache gives)
    is ~4x faster than resizing in float.
    """
    if image.shape[1:] == (height, width):
        return image
    return F.interpolate(image[None], size=(height, width), mode="bilinear", align_corners=False, antialias=True)[0]


def clip_boxes(boxes: torch.Tensor, width: float, height: float) -> torch.Tensor:
    """Clip xyxy boxes to [0, width] x [0, height]."""
    limits = boxes.new_tensor([width, height, width, height])
    return torch.minimum(boxes.clamp(min=0), limits)


def keep_boxes(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    """Bool mask of boxes at least ``min_size`` px wide and high."""
    return ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)


def hflip(image: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror an image [3, h, w] and its boxes about the vertical centre line x = w / 2."""
    w = image.shape[2]
    flipped = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], dim=1)
    return image.flip(-1), flipped


def jitter_crop(
    image: torch.Tensor,
    boxes: torch.Tensor,
    resolution: int,
    factor: float,
    offset_fraction: tuple[float, float],
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Scale jitter (EfficientDet's training augmentation): resize by ``factor``, then crop to at most R x R.

    offset_fraction: (fx, fy) in [0, 1) picks the crop origin within the overhang of a larger image.
    Returns (image [3, h, w] with h, w <= R, boxes in its pixels, unclipped, the exact size ratio).
    """
    h, w = image.shape[1:]
    new_w, new_h = max(1, round(w * factor)), max(1, round(h * factor))
    image = resize(image, new_w, new_h)
    ratio = new_w / w if w >= h else new_h / h  # ratio of the long side: what boxes scale by
    x0 = int(offset_fraction[0] * (max(new_w - resolution, 0) + 1))
    y0 = int(offset_fraction[1] * (max(new_h - resolution, 0) + 1))
    image = image[:, y0 : y0 + resolution, x0 : x0 + resolution]
    boxes = boxes * ratio - boxes.new_tensor([x0, y0, x0, y0])
    return image, boxes, ratio


def train_augment(
    image: torch.Tensor,
    boxes: torch.Tensor,
    resolution: int,
    rng: np.random.Generator,
    scale_range: tuple[float, float] = (0.75, 1.25),
    flip_prob: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Random scale jitter + crop, then random horizontal flip; boxes are clipped, not filtered.

    Returns (uint8 image [3, h, w] with h, w <= R, boxes [N, 4] clipped to it, scale factor applied).
    """
    factor = float(rng.uniform(*scale_range)) if scale_range[0] != scale_range[1] else scale_range[0]
    fx, fy, flip = rng.random(3)
    image, boxes, ratio = jitter_crop(image, boxes, resolution, factor, (fx, fy))
    boxes = clip_boxes(boxes, image.shape[2], image.shape[1])
    if flip < flip_prob:
        image, boxes = hflip(image, boxes)
    return image, boxes, ratio
