"""``scalesearch topologies``: params and FLOPs of every topology x fusion at D0..D3, and drawings.

The counts and report are ``scalesearch.topology_counts``, effdet's counts beside ours
``scalesearch.peers``, the drawings ``scalesearch.topology_drawing``; this module parses arguments and writes.
"""

from __future__ import annotations

import argparse
import shlex
import time
from datetime import datetime, timezone
from pathlib import Path

from scalesearch.errors import UserError
from scalesearch.topology import FUSIONS, canonical_fusion, get_topology, list_topologies

DEFAULT_VARIANTS = ("d0", "d1", "d2", "d3")
EXAMPLE_GRAPHS = ("spaces/custom_example.yaml",)


def _split(text: str, kind: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise UserError(f"--{kind}: must list at least one name, but got {text!r}")
    return items


def run(args: argparse.Namespace) -> int:
    from scalesearch.commands._files import check_folder, check_output, write_output
    from scalesearch.topology_drawing import draw_topologies
    from scalesearch.machine import describe
    from scalesearch.peers import effdet_params
    from scalesearch.scaling import preset
    from scalesearch.topology_counts import measure, render_markdown

    start = time.time()
    md_path = check_output("--md", args.md)
    figures_dir = check_folder("--figures", args.figures) if args.figures else None
    variants = [v.lower() for v in _split(args.variants, "variants")]
    topologies = list(args.topologies)
    fusions = [canonical_fusion(f) for f in _split(args.fusions, "fusions")]
    for name in variants:
        preset(name)  # fail on a bad name before drawing or counting anything
    for name in topologies + (list(args.draw) if args.figures else []):
        get_topology(name)
    figures = {}
    if figures_dir:
        figures = draw_topologies(topologies + list(args.draw), figures_dir,
                                  md_path.parent if md_path else Path.cwd())
    rows = measure(variants, topologies, fusions, progress=not args.quiet)
    effdet = effdet_params((r.variant, r.topology, r.fusion) for r in rows)
    meta = {
        "command": f"`{_command(args)}`",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": describe(),
        "run time": f"{time.time() - start:.0f} s",
    }
    text = render_markdown(rows, topologies, meta, figures, effdet)
    if md_path:
        write_output(md_path, text + "\n")
        print(f"wrote {md_path}" + (f" and {len(figures)} figures in {args.figures}" if figures else ""))
    else:
        print(text)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "topologies", help="params and FLOPs of every topology x fusion, and graph drawings",
        description="Count params and FLOPs of every built-in topology x fusion at D0..D3 and draw the graphs.")
    parser.set_defaults(func=run)
    parser.add_argument("--md", help="write the markdown report here (default: print it)")
    parser.add_argument("--figures", help="draw topology_<name>.png files into this folder")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help="comma-separated presets")
    parser.add_argument("--topologies", nargs="+", default=list_topologies(),
                        help="topology names, YAML paths or inline graphs (default: the built-ins)")
    parser.add_argument("--fusions", default=",".join(FUSIONS), help="comma-separated fusion methods")
    parser.add_argument("--draw", nargs="*", default=list(EXAMPLE_GRAPHS),
                        help="extra graphs to draw only (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no per-count progress lines")


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run, every option spelled out."""
    parts = ["scalesearch", "topologies"]
    for key in ("md", "figures", "variants", "fusions"):
        if getattr(args, key):
            parts += [f"--{key}", getattr(args, key)]
    parts += ["--topologies", *args.topologies, "--draw", *args.draw]
    return " ".join(shlex.quote(str(p)) for p in parts)
