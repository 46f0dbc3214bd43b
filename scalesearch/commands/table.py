"""``scalesearch table``: the D0..D7x family counted, beside the paper's Table 2 and scaling rule.

The rows and their Markdown come from ``scalesearch.tables``; this module parses arguments and writes.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time

from scalesearch.errors import UserError


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (from the parsed arguments)."""
    words = ["scalesearch", "table"] + (["--family", args.family] if args.family != "d" else [])  # d: the default
    for key in ("json", "md", "topology", "fusion"):
        if getattr(args, key) is not None:
            words += [f"--{key}", shlex.quote(str(getattr(args, key)))]
    return " ".join(words + (["--quiet"] if args.quiet else []))


def run(args: argparse.Namespace) -> int:
    from scalesearch import tables
    from scalesearch.commands._files import check_output, write_output
    from scalesearch.topology import canonical_fusion, get_topology

    if args.family == "lite" and (args.topology or args.fusion):
        raise UserError("table --family lite: the Lite table shows the released configs only, "
                        "but --topology/--fusion were given")
    json_path, md_path = check_output("--json", args.json), check_output("--md", args.md)
    if args.topology is not None:
        get_topology(args.topology)  # a bad name or graph fails before the progress bar
    if args.fusion is not None:
        canonical_fusion(args.fusion)
    start = time.perf_counter()
    if args.family == "lite":
        rows = tables.build_lite_rows(progress=not args.quiet)
        text, report = tables.render_lite_markdown(rows), tables.lite_report
    else:
        rows = tables.build_rows(args.topology, args.fusion, progress=not args.quiet)
        text, report = tables.render_markdown(rows), tables.d_report
    seconds = time.perf_counter() - start
    print(text, end="")
    if json_path:
        write_output(json_path, json.dumps(rows, indent=2) + "\n")
    if md_path:
        write_output(md_path, report(rows, _command(args), seconds))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("table", help="params and FLOPs of D0..D7x beside the paper's Table 2",
                              description=__doc__.splitlines()[0])
    p.add_argument("--family", choices=("d", "lite"), default="d",
                   help="d: D0..D7x beside the paper's Table 2 (default); lite: EfficientDet-Lite0..Lite4")
    p.add_argument("--json", metavar="PATH", help="write the rows as JSON")
    p.add_argument("--md", metavar="PATH", help="write a markdown report (command, machine, date, run time)")
    p.add_argument("--topology", metavar="T", help="replace every preset's topology (name, YAML path or inline)")
    p.add_argument("--fusion", metavar="F", help="replace every preset's fusion (sum, softmax, fast, channel_*)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
