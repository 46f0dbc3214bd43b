"""``scalesearch count``: params and FLOPs per part of one preset or compound-scaled spec."""

from __future__ import annotations

import argparse
import json

from scalesearch.commands._spec import add_spec_arguments, spec_from_args
from scalesearch.spec import DetectorSpec


def render(spec: DetectorSpec, cost) -> str:
    """A small text table: one line per part, then the total."""
    lines = [f"{spec.name or 'spec'}: {spec.backbone} R={spec.resolution} W={spec.fpn_channels} "
             f"D_fpn={spec.fpn_repeats} D_head={spec.head_repeats} {spec.topology}/{spec.fusion} "
             f"P{spec.min_level}-P{spec.max_level} classes={spec.num_classes}",
             f"{'part':<10} {'params':>14} {'FLOPs':>18}"]
    for part, (params, flops) in cost.by_part.items():
        lines.append(f"{part:<10} {params:>14,} {flops:>18,}")
    lines.append(f"{'total':<10} {cost.params:>14,} {cost.flops:>18,}  ({cost.flops / 1e9:.3f}B multiply-adds)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from scalesearch.commands._files import check_output, write_output
    from scalesearch.measure.cost import count_cost

    out = check_output("--json", args.json)
    spec = spec_from_args(args)
    cost = count_cost(spec)
    print(render(spec, cost))
    if out:
        write_output(out, json.dumps({"spec": spec.to_dict(), **cost.to_dict()}, indent=2) + "\n")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("count", help="params and FLOPs per part of one spec",
                              description=__doc__.splitlines()[0])
    add_spec_arguments(p)
    p.add_argument("--json", metavar="PATH", help="write the spec and counts as JSON")
    p.set_defaults(func=run)
