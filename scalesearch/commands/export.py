"""``scalesearch export CKPT --out model.onnx [--opset 17] [--nms] [--max-detections 100]``: a checkpoint as ONNX."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export a checkpoint to ONNX",
                              description="Export a checkpoint written by `scalesearch train --save` to ONNX: input "
                                          "`images` float32 [B, 3, R, R] RGB in [0, 1] (normalisation inside the "
                                          "graph, dynamic batch); outputs the raw class logits and box codes, or with "
                                          "--nms decoded boxes, scores, labels and num_detections after class-aware "
                                          "NMS (the same as `scalesearch predict`).")
    p.add_argument("checkpoint", help="checkpoint file (.pt)")
    p.add_argument("--out", required=True, help="ONNX file to write")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 11..20 (default 17)")
    p.add_argument("--nms", action="store_true", help="decode boxes and run NMS inside the graph")
    p.add_argument("--max-detections", type=int, default=100,
                   help="with --nms: detections per image, padded (default 100)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scalesearch.commands._files import check_output
    from scalesearch.errors import UserError
    from scalesearch.measure.export import check_opset, export_checkpoint, graph_signature

    out = check_output("--out", args.out)
    check_opset(args.opset, "--opset")
    if args.max_detections < 1:
        raise UserError(f"--max-detections: must be a positive integer, but got {args.max_detections}")
    path = export_checkpoint(args.checkpoint, out, opset=args.opset, nms=args.nms, max_detections=args.max_detections)
    signature = graph_signature(path)
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, opset {args.opset}, "
          f"inputs {_shapes(signature['inputs'])}, outputs {_shapes(signature['outputs'])}")
    return 0


def _shapes(values: dict[str, list]) -> str:
    return ", ".join(f"{name} [{', '.join(map(str, shape))}]" for name, shape in values.items())
