"""``scalesearch latency``: measured latency (network, post-processing, total) of one spec or checkpoint."""

from __future__ import annotations

import argparse
import json

from scalesearch.commands._spec import add_spec_arguments


def run(args: argparse.Namespace) -> int:
    from scalesearch.commands._files import check_output, write_output
    from scalesearch.commands._spec import given_spec_options
    from scalesearch.errors import UserError
    from scalesearch.measure.latency import LatencySettings, check_settings, measure_latency, render

    out = check_output("--json", args.json)
    check_settings(args.runtime, args.threads, args.batch, args.warmup, args.runs, prefix="--")
    given = given_spec_options(args)
    if args.checkpoint and given:
        raise UserError(f"{given[0]}: a checkpoint fixes its spec, so give CKPT or spec options, not both")
    settings = LatencySettings(args.runtime, args.threads, args.batch, args.warmup, args.runs)
    if args.checkpoint and args.checkpoint.endswith(".onnx"):
        return _onnx_file(args, settings, out)
    model, spec = _model_and_spec(args)
    result = measure_latency(spec, settings, model=model)
    name = args.checkpoint or spec.name or "spec"
    print(render(result, f"{name}: {spec.backbone} R={spec.resolution} {spec.topology}/{spec.fusion}, "
                         f"{spec.num_classes} classes"))
    if out:
        write_output(out, json.dumps({"spec": spec.to_dict(), **result.to_json()}, indent=1) + "\n")
    return 0


def _onnx_file(args: argparse.Namespace, settings, out) -> int:
    """An exported graph timed as it is, in ONNX Runtime (NMS inside when it was exported with --nms)."""
    from scalesearch.commands._files import write_output
    from scalesearch.errors import UserError
    from scalesearch.measure.latency import measure_onnx_graph, render

    if args.runtime != "onnxruntime":
        raise UserError(f"--runtime: an ONNX file ({args.checkpoint}) runs in onnxruntime, but got {args.runtime!r}; "
                        "add --runtime onnxruntime")
    result = measure_onnx_graph(args.checkpoint, settings)
    print(render(result, f"{args.checkpoint}: ONNX graph, R={result.resolution}"))
    if out:
        write_output(out, json.dumps({"onnx": args.checkpoint, **result.to_json()}, indent=1) + "\n")
    return 0


def _model_and_spec(args: argparse.Namespace):
    """(the checkpoint's model, its spec) or (None: built at seed 0, the preset / ``--phi`` spec)."""
    from scalesearch.commands._spec import spec_from_args

    if args.checkpoint:
        from scalesearch.training.checkpoint import load_checkpoint

        model, spec, _ = load_checkpoint(args.checkpoint, "cpu")
        return model, spec
    return None, spec_from_args(args)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from scalesearch.measure.latency import RUNTIMES  # names only: torch and onnxruntime are imported to measure

    p = subparsers.add_parser(
        "latency", help="measured latency of one spec or checkpoint (network, post-processing, total)",
        description="Time a detector on this machine by the protocol of scalesearch.measure.latency: a fixed seeded image, "
                    "W warm-up then R timed runs, median and interquartile range of network (backbone + feature "
                    "network + heads), post-processing (decode + NMS) and both together.")
    p.add_argument("checkpoint", nargs="?", metavar="CKPT", help="a checkpoint from `scalesearch train --save`, or an ONNX file from `scalesearch export` (timed "
                        "as it is, NMS inside if exported with --nms; needs --runtime onnxruntime)")
    add_spec_arguments(p)
    p.add_argument("--runtime", default="torch", metavar="NAME",
                   help=f"one of {', '.join(RUNTIMES)} (default: torch, eager)")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="intra-op threads (default 1)")
    p.add_argument("--batch", type=int, default=1, metavar="B", help="images per call (default 1)")
    p.add_argument("--warmup", type=int, default=10, metavar="W", help="untimed warm-up runs (default 10)")
    p.add_argument("--runs", type=int, default=40, metavar="R", help="timed runs (default 40)")
    p.add_argument("--json", metavar="PATH", help="write the spec, settings, machine and every timing as JSON")
    p.set_defaults(func=run)
