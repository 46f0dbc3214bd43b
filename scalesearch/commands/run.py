"""``scalesearch run STUDY.yaml``: run or resume a search study."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from scalesearch.search.backend import BACKENDS  # names only: no engine is imported

    parser = subparsers.add_parser(
        "run", help="run (or resume) a search study",
        description="Run a search study; rerunning on the same output folder resumes it.")
    parser.add_argument("study", help="study YAML file (e.g. studies/quickstart.yaml)")
    parser.add_argument("--out", help="run folder (default: the study's output, else runs/<name>)")
    parser.add_argument("--n-trials", type=int, help="finished trials to reach (overrides search.n_trials)")
    parser.add_argument("--backend", choices=BACKENDS.choices(), help="overrides search.backend")
    parser.add_argument("--workers", type=int, help="trial processes on this machine, sharing the study's storage "
                        "and the cores (overrides search.workers)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a study key (value parsed as YAML); repeatable")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scalesearch.config import load_study
    from scalesearch.records import best_record
    from scalesearch.search.runner import run_study

    overrides = list(args.overrides)
    if args.n_trials is not None:
        overrides.append(f"search.n_trials={args.n_trials}")
    if args.backend:
        overrides.append(f"search.backend={args.backend}")
    if args.workers is not None:
        overrides.append(f"search.workers={args.workers}")
    if args.out:
        overrides.append(f"output={json.dumps(args.out)}")  # quoted: a folder named 123 stays a string
    config = load_study(args.study, overrides)
    from scalesearch.report.stats import design_power_warning

    warning = design_power_warning(config)
    if warning:
        print(f"scalesearch run: {warning}", file=sys.stderr)
    run_dir = config.output_dir()
    from scalesearch.machine import portable_command

    command = portable_command(["scalesearch", *sys.argv[1:]])
    records = run_study(config, run_dir, command=command, progress=not args.quiet)
    states: dict[str, int] = {}
    for record in records:
        states[record.state.value] = states.get(record.state.value, 0) + 1
    best = best_record(records)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    print(f"{run_dir}: {len(records)} trials ({counts})")
    repeated = sum(record.get("duplicate_of") is not None for record in records)
    if repeated:
        print(f"{repeated} of them re-proposed a measured point (its result reused, not measured again): "
              f"{len(records) - repeated} distinct" + (
                  "; search.sampler: grid scores distinct points only" if repeated * 4 >= len(records) else ""))
    if best is not None:
        print(f"best: trial {best.number} map {best.get('map'):.4f} at {best.flops / 1e9:.3f}B FLOPs ({best.group})")
    return 0
