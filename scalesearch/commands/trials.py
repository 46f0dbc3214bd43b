"""``scalesearch trials RUN_DIR``: the trial table of a run (either backend), or its records as JSON."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scalesearch.records import TrialRecord

COLUMNS = (("number", "#", "{}"), ("state", "state", "{}"), ("seed", "seed", "{}"),
           ("flops", "GFLOPs", "{:.3f}"), ("params", "Mparams", "{:.3f}"), ("map", "mAP", "{:.4f}"),
           ("map50", "AP50", "{:.4f}"), ("seconds", "s", "{:.1f}"), ("group", "point", "{}"),
           ("duplicate_of", "reused", "#{}"), ("reason", "reason", "{}"))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("trials", help="print or export the trials of a run",
                                   description="Print a run's trial table, or write its records as JSON.")
    parser.add_argument("run_dir", help="run folder (made by scalesearch run)")
    parser.add_argument("--json", metavar="PATH", help="write the list of trial records to PATH ('-' for stdout)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from scalesearch.commands._files import check_output, write_output
    from scalesearch.records import load_records

    out = check_output("--json", args.json) if args.json not in (None, "-") else None
    records = load_records(args.run_dir)
    if args.json:
        text = json.dumps([r.to_json() for r in records], indent=1, default=str)
        if out is None:
            sys.stdout.write(text + "\n")
        else:
            write_output(out, text)
            print(f"wrote {len(records)} records to {out}")
        return 0
    print(format_table(records))
    return 0


def format_table(records: list[TrialRecord]) -> str:
    """Aligned text table, one line per trial (costs in GFLOPs / millions of parameters)."""
    rows = [[title for _, title, _ in COLUMNS]]
    for record in records:
        rows.append([_cell(record, key, fmt) for key, _, fmt in COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _cell(record: TrialRecord, key: str, fmt: str) -> str:
    value = record.get(key)
    if value is None:
        return "-"
    if key in ("flops", "params"):
        value = value / 1e9 if key == "flops" else value / 1e6
    return fmt.format(value)
