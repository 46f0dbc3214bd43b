"""``scalesearch predict CHECKPOINT IMAGE... --out DIR``: draw a trained detector's boxes on images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("predict", help="draw a checkpoint's detections on images",
                              description="Run a checkpoint written by `scalesearch train --save` on images and draw "
                                          "its --top-k best boxes, with class names and scores, on each; "
                                          "detections.json lists every kept box. An image with no box "
                                          "says 'no detections'.")
    p.add_argument("checkpoint", help="checkpoint file (.pt)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    p.add_argument("--out", required=True, help="folder for the drawn images and detections.json")
    p.add_argument("--top-k", type=int, default=20,
                   help="draw the k best-scoring boxes of each image, whatever their score (default 20)")
    p.add_argument("--score-threshold", type=float, default=None,
                   help="keep (draw and list) only boxes scoring at least this (default: none)")
    p.add_argument("--max-detections", type=int, default=100,
                   help="at most this many boxes per image in detections.json (default 100)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, or auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scalesearch.training.checkpoint import load_checkpoint
    from scalesearch.commands._files import check_folder
    from scalesearch.training.draw import NO_DETECTIONS, draw_detections, note_on_image, save_png
    from scalesearch.errors import UserError
    from scalesearch.training.inference import detect_image, detection_records, read_image
    from scalesearch.machine import resolve_device

    out = check_folder("--out", args.out)
    if args.max_detections < 1:
        raise UserError(f"--max-detections: must be a positive integer, but got {args.max_detections}")
    if args.top_k < 1:
        raise UserError(f"--top-k: must be a positive integer, but got {args.top_k}")
    device = resolve_device(args.device)
    model, spec, info = load_checkpoint(args.checkpoint, device)
    images = {Path(path): read_image(Path(path)) for path in args.images}  # every image read before any is written
    names = info.get("category_names") or [str(i) for i in range(spec.num_classes)]
    out.mkdir(parents=True, exist_ok=True)
    report = {}
    for path, image in images.items():
        found = detect_image(model, spec, image, device, args.max_detections)
        if args.score_threshold is not None:
            keep = found["scores"] >= args.score_threshold
            found = {k: v[keep] for k, v in found.items()}
        top = {k: v[:args.top_k] for k, v in found.items()}  # sorted by score
        target = out / f"{path.stem}.png"
        drawn = draw_detections(image, top, names)
        if len(top["scores"]) == 0:
            above = f" >= {args.score_threshold:g}" if args.score_threshold is not None else ""
            drawn = note_on_image(drawn, NO_DETECTIONS + above)
        save_png(drawn, target)
        report[str(path)] = detection_records(found, names)
        best = f" (best score {float(top['scores'][0]):.2f})" if len(top["scores"]) else ""
        print(f"{path}: {len(top['scores'])} of {len(found['scores'])} boxes drawn{best} -> {target}")
    (out / "detections.json").write_text(json.dumps(report, indent=1))
    return 0
