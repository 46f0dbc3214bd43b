"""``scalesearch predict CHECKPOINT IMAGE... --out DIR``: draw a trained detector's boxes on images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


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
    from scalesearch.commands._files import check_folder
    from scalesearch.draw import draw_detections, save_png
    from scalesearch.errors import UserError
    from scalesearch.inference import detect_image, detection_records, read_image
    from scalesearch.machine import resolve_device

    out = check_folder("--out", args.out)
    if args.max_detections < 1:
        raise UserError(f"--max-detections: must be a positive integer, but got {args.max_detections}")
    device = resolve_device(args.device)
    model, spec, info = load_checkpoint(args.checkpoint, device)
    images = {Path(path): read_image(Path(path)) for path in args.images}  # every image read before any is written
    names = info.get("category_names") or [str(i) for i in range(spec.num_classes)]
    out.mkdir(parents=True, exist_ok=True)
    report = {}
    for path, image in images.items():
        found = detect_image(model, spec, image, device, args.max_detections)
        keep = found["scores"] >= args.score_threshold
        found = {k: v[keep] for k, v in found.items()}
        target = out / f"{path.stem}.png"
        save_png(draw_detections(image, found, names), target)
        report[str(path)] = detection_records(found, names)
        print(f"{path}: {int(keep.sum())} boxes -> {target}")
    (out / "detections.json").write_text(json.dumps(report, indent=1))
    return 0
