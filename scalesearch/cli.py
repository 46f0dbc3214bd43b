"""The ``scalesearch`` command.

Each subcommand lives in ``scalesearch/commands/<name>.py`` and exposes ``add_parser(subparsers)``
(which registers the subcommand and sets ``func``) so that commands can be developed apart; ``COMMANDS``
declares it by that path, so a new command is its module and one name below.
User mistakes (``UserError``) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from scalesearch.errors import UserError
from scalesearch.registry import Registry

COMMANDS: Registry[Callable[[argparse._SubParsersAction], None]] = Registry("command")
for _name in ("run", "trials", "report", "fidelity", "extrapolate", "table", "count", "latency", "topologies", "train",
              "predict", "export"):  # the order shown by --help
    COMMANDS.declare(_name, f"scalesearch.commands.{_name}:add_parser")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scalesearch",
        description="Compound scaling and architecture search for EfficientDet-style detectors.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            add_parser = COMMANDS.get(name)
        except ModuleNotFoundError as exc:
            if exc.name != f"scalesearch.commands.{name}":
                raise
            continue  # command not available in this build
        add_parser(sub)
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
