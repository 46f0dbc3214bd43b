"""``scalesearch extrapolate RUN_DIR --flops F``: the best searched scaling rule and the paper's, one rung up."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = ("Apply the best searched scaling rule of a finished compound-coefficient study and a labelled reference "
               "rule (the paper's, enqueued by the study) at a FLOPs budget above every rung searched: each rule's phi "
               "is raised to the largest value whose spec fits, and both are trained at F times the study's budget "
               "over S seeds into RUN_DIR/extrapolation.json (a rerun resumes). `scalesearch report` says whether "
               "the searched rule still wins there.")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("extrapolate", help="train the best searched rule and the paper's one rung up",
                                   description=DESCRIPTION)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder of a compound-coefficient study")
    parser.add_argument("--flops", required=True, metavar="F", help="FLOPs budget above the ladder, e.g. 2B or 2e9")
    parser.add_argument("--seeds", type=int, default=4, metavar="S",
                        help="seeds per rule (default 4: the fewest with which p < 0.05 is reachable)")
    parser.add_argument("--factor", type=float, default=4.0, metavar="X", help="long budget = X x the study's steps")
    parser.add_argument("--against", default="paper rule", metavar="LABEL",
                        help="label of the reference rule's trials (default 'paper rule')")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scalesearch.config_parts import parse_count
    from scalesearch.errors import UserError
    from scalesearch.extrapolate import FILE
    from scalesearch.machine import portable_command
    from scalesearch.retrain.extrapolate import extrapolate

    try:
        flops = parse_count(args.flops)
    except ValueError as exc:
        raise UserError(f"--flops: {exc}, but got {args.flops!r}") from None
    if not Path(args.run_dir, "study.yaml").is_file():
        raise UserError(f"RUN_DIR {args.run_dir!r}: must be a run folder with study.yaml (written by scalesearch run)")
    if not args.factor > 0:
        raise UserError(f"--factor: must be > 0, but got {args.factor}")
    rows = extrapolate(args.run_dir, flops, args.seeds, args.factor, args.against, log=print,
                       command=portable_command(["scalesearch", *sys.argv[1:]]))
    print(f"wrote {Path(args.run_dir) / FILE} ({len(rows)} rules)")
    return 0
