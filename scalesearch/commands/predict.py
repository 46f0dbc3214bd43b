"""``scalesearch predict CHECKPOINT IMAGE... --out DIR``: draw a trained detector's boxes on images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#9a6324")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("predict", help="draw a checkpoint's detections on images",
                              description="Run a checkpoint written by `scalesearch train --save` on images and draw "
                                          "its boxes, class names and scores.")
    p.add_argument("checkpoint", help="checkpoint file (.pt)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    p.add_argument("--out", required=True, help="folder for the drawn images and detections.json")
    p.add_argument("--score-threshold", type=float, default=0.3, help="draw boxes scoring at least this (default 0.3)")
    p.add_argument("--max-detections", type=int, default=100, help="at most this many boxes per image (default 100)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, or auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scalesearch.checkpoint import load_checkpoint
    from scalesearch.commands.train import resolve_device

    device = resolve_device(args.device)
    model, spec, info = load_checkpoint(args.checkpoint, device)
    names = info.get("category_names") or [str(i) for i in range(spec.num_classes)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {}
    for path in map(Path, args.images):
        image = read_image(path)
        found = detect_image(model, spec, image, device, args.max_detections)
        keep = found["scores"] >= args.score_threshold
        found = {k: v[keep] for k, v in found.items()}
        drawn = draw_detections(image, found, names)
        target = out / f"{path.stem}.png"
        save_png(drawn, target)
        report[str(path)] = _records(found, names)
        print(f"{path}: {int(keep.sum())} boxes -> {target}")
    (out / "detections.json").write_text(json.dumps(report, indent=1))
    return 0


def read_image(path: Path) -> torch.Tensor:
    """uint8 ``Tensor[3, H, W]`` RGB; a missing or unreadable file is a ``UserError``."""
    from scalesearch.data.coco import load_rgb
    from scalesearch.errors import UserError

    if not path.is_file():
        raise UserError(f"image {path}: must be an existing image file, but it was not found")
    try:
        return torch.from_numpy(load_rgb(path)).permute(2, 0, 1)
    except (OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"image {path}: must be a readable image, but it could not be decoded ({exc})") from exc


def detect_image(model, spec, image: torch.Tensor, device: str, max_detections: int = 100) -> dict[str, torch.Tensor]:
    """Detections of one uint8 ``[3, H, W]`` image in its own pixels: boxes xyxy, scores, labels (sorted by score)."""
    from scalesearch.data import transforms as T
    from scalesearch.model import input_normalization
    from scalesearch.train import detector_predictor

    height, width = image.shape[1:]
    new_w, new_h, scale = T.base_size(width, height, spec.resolution)
    batch = T.normalize_pad(T.resize(image, new_w, new_h), spec.resolution, input_normalization(spec))[None].to(device)
    with torch.inference_mode():
        found = detector_predictor(model.eval(), spec, max_detections)(batch)[0]
    found = {k: v.cpu() for k, v in found.items()}
    found["boxes"] = T.clip_boxes(found["boxes"] / scale, width, height)
    return found


def draw_detections(image: torch.Tensor, found: dict[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    """Draw boxes with "name score" captions on a uint8 ``[3, H, W]`` image (one colour per class)."""
    from torchvision.utils import draw_bounding_boxes

    if len(found["boxes"]) == 0:
        return image
    labels = found["labels"].tolist()
    captions = [f"{names[c]} {s:.2f}" for c, s in zip(labels, found["scores"].tolist())]
    colors = [PALETTE[c % len(PALETTE)] for c in labels]
    width = max(1, round(max(image.shape[1:]) / 256))
    return draw_bounding_boxes(image, found["boxes"], captions, colors=colors, width=width)


def save_png(image: torch.Tensor, path: Path) -> None:
    """Write a uint8 ``[3, H, W]`` tensor as PNG."""
    from PIL import Image

    Image.fromarray(image.permute(1, 2, 0).contiguous().numpy()).save(path)


def _records(found: dict[str, torch.Tensor], names: list[str]) -> list[dict[str, Any]]:
    return [
        {"label": names[c], "score": round(s, 4), "box_xyxy": [round(v, 1) for v in b]}
        for c, s, b in zip(found["labels"].tolist(), found["scores"].tolist(), found["boxes"].tolist())
    ]
