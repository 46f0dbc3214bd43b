"""The spec options shared by commands that take one detector by preset or compound coefficient
(``count``, ``latency``): one definition of the flags, one resolution through ``scaling.spec_for``."""

from __future__ import annotations

import argparse

SPEC_OPTIONS = ("preset", "phi", "resolution", "topology", "fusion", "backbone", "num_classes")


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """``--preset NAME | --phi P`` and the overrides ``--resolution --topology --fusion --backbone --num-classes``."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--preset", metavar="NAME", help="released config d0..d7, d7x, lite0..lite4, lite3x (default d0)")
    which.add_argument("--phi", type=float, metavar="P", help="the paper's compound rule at phi (any real)")
    parser.add_argument("--resolution", type=int, metavar="R", help="input size, a multiple of 32")
    parser.add_argument("--topology", metavar="T", help="topology name, YAML path or inline graph")
    parser.add_argument("--fusion", metavar="F", help="sum, softmax, fast, channel_softmax, channel_fast")
    parser.add_argument("--backbone", metavar="NAME", help="timm EfficientNet-family name")
    parser.add_argument("--num-classes", type=int, metavar="N", help="classes (default 90)")


def given_spec_options(args: argparse.Namespace) -> list[str]:
    """The spec flags given on the command line, as typed (``--num-classes``)."""
    return ["--" + name.replace("_", "-") for name in SPEC_OPTIONS if getattr(args, name) is not None]


def spec_from_args(args: argparse.Namespace):
    """The preset (default D0) or ``PAPER_RULE`` at ``--phi``, with the command-line overrides."""
    from scalesearch.scaling import spec_for

    return spec_for(args.preset, args.phi, resolution=args.resolution, topology=args.topology,
                    num_classes=args.num_classes, backbone=args.backbone,
                    fusion=args.fusion)  # the spec canonicalises fusion aliases
