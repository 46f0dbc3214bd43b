"""A trained detector on images: read an image and detect in its own pixels. Drawing is ``scalesearch.training.draw``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalesearch.errors import UserError

if TYPE_CHECKING:
    from torch import Tensor, nn

    from scalesearch.spec import DetectorSpec

def read_image(path: Path) -> Tensor:
    """uint8 ``Tensor[3, H, W]`` RGB; a missing or unreadable file is a ``UserError``."""
    import torch

    from scalesearch.data.coco import load_rgb

    if not path.is_file():
        raise UserError(f"image {path}: must be an existing image file, but it was not found")
    try:
        return torch.from_numpy(load_rgb(path)).permute(2, 0, 1)
    except (OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"image {path}: must be a readable image, but it could not be decoded ({exc})") from exc


def detect_image(model: nn.Module, spec: DetectorSpec, image: Tensor, device: str,
                 max_detections: int = 100) -> dict[str, Tensor]:
    """Detections of one uint8 ``[3, H, W]`` image in its own pixels: boxes xyxy, scores, labels (sorted by score)."""
    import torch

    from scalesearch.data import transforms as T
    from scalesearch.model import input_normalization
    from scalesearch.training.train import detector_predictor

    height, width = image.shape[1:]
    new_w, new_h, scale = T.base_size(width, height, spec.resolution)
    batch = T.normalize_pad(T.resize(image, new_w, new_h), spec.resolution, input_normalization(spec))[None].to(device)
    with torch.inference_mode():
        found = detector_predictor(model.eval(), spec, max_detections)(batch)[0]
    found = {k: v.cpu() for k, v in found.items()}
    found["boxes"] = T.clip_boxes(found["boxes"] / scale, width, height)
    return found


def detection_records(found: dict[str, Tensor], names: list[str]) -> list[dict[str, Any]]:
    """JSON-ready detections: class name, score, xyxy box (pixels, 0.1 px)."""
    return [
        {"label": names[c], "score": round(s, 4), "box_xyxy": [round(v, 1) for v in b]}
        for c, s, b in zip(found["labels"].tolist(), found["scores"].tolist(), found["boxes"].tolist())
    ]
