"""``scalesearch report RUN_DIR [RUN_DIR ...]``: Markdown + HTML report of one or several studies."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write report.md, report.html and figures from run folders",
        description="Pareto fronts, best architecture per FLOPs budget, hypervolume, parameter importances, "
        "seed-repeat statistics and, when `scalesearch fidelity` has run, the proxy's rank fidelity, from the "
        "run folders' files alone (trials.json, meta.json, study.yaml, fidelity.json; never the backend's "
        "storage, never training). Several run folders are compared side by side.",
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folder(s) written by `scalesearch run`")
    parser.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: RUN_DIR/report for one run, "
                        "report/ in the current folder for several)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scalesearch.machine import portable_command
    from scalesearch.report import write_report

    out = args.out or (Path(args.run_dirs[0]) / "report" if len(args.run_dirs) == 1 else Path("report"))
    command = portable_command(["scalesearch", "report", *args.run_dirs, "--out", str(out)])
    path = write_report(args.run_dirs, out, command=command)
    print(f"wrote {path} and {path.with_suffix('.html')}")
    return 0
