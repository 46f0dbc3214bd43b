"""``scalesearch report RUN_DIR [RUN_DIR ...]``: Markdown + HTML report of one or several studies."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from scalesearch.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write report.md, report.html and figures from run folders",
        description="Pareto fronts, best architecture per FLOPs budget, hypervolume, parameter importances, "
        "seed-repeat statistics and (optionally) a proxy-fidelity check, from the trial records alone. "
        "Several run folders are compared side by side.",
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folder(s) written by `scalesearch run`")
    parser.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: RUN_DIR/report for one run, "
                        "report/ in the current folder for several)")
    parser.add_argument("--fidelity-top-k", type=int, metavar="K",
                        help="retrain each study's K best specs for --fidelity-minutes and report Kendall tau")
    parser.add_argument("--fidelity-minutes", type=float, metavar="M", help="training minutes per retrained spec")
    parser.set_defaults(func=run)


def _command(args: argparse.Namespace, out: Path) -> str:
    """The command line that makes this report, with every option spelled out."""
    words = ["scalesearch", "report", *args.run_dirs, "--out", str(out)]
    if args.fidelity_top_k is not None:
        words += ["--fidelity-top-k", str(args.fidelity_top_k), "--fidelity-minutes", f"{args.fidelity_minutes:g}"]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    from scalesearch.report import write_report

    if (args.fidelity_top_k is None) != (args.fidelity_minutes is None):
        raise UserError("--fidelity-top-k/--fidelity-minutes: must be given together, but got only one of them")
    fidelity = None if args.fidelity_top_k is None else (args.fidelity_top_k, args.fidelity_minutes)
    out = args.out or (Path(args.run_dirs[0]) / "report" if len(args.run_dirs) == 1 else Path("report"))
    path = write_report(args.run_dirs, out, fidelity=fidelity, command=_command(args, out))
    print(f"wrote {path} and {path.with_suffix('.html')}")
    return 0
