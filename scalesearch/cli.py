"""The ``scalesearch`` command.

Each subcommand lives in ``scalesearch/commands/<name>.py`` and exposes ``add_parser(subparsers)``
(which registers the subcommand and sets ``func``) so that commands can be developed apart.
User mistakes (``UserError``) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from scalesearch.errors import UserError

# Order is the order shown by --help.
COMMANDS = ("run", "trials", "report", "fidelity", "extrapolate", "table", "count", "latency", "topologies", "train", "predict",
            "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scalesearch",
        description="Compound scaling and architecture search for EfficientDet-style detectors.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"scalesearch.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"scalesearch.commands.{name}":
                raise
            continue  # command not available in this build
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except UserError as exc:
        print(f"scalesearch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"scalesearch {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
