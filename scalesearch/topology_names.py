"""Short, stable names for generated topologies, for reports.

A topology a family generates is recorded as its whole inline graph (``Topology.to_string()``, e.g.
``bifpn_family-1.1.1.1.0.0.2.1@P3-P7:P6=3+4+2,...``), too long for a table cell or a legend. Its short name is
``gen-`` and the first hex digits of the SHA-256 of the canonical graph string (parsed and written back, so
spacing and fusion aliases do not change it): the same graph gets the same name on every run and machine.
Built-in names and topology files are already readable and keep their names.
"""

from __future__ import annotations

import hashlib

from scalesearch.errors import UserError

PREFIX = "gen-"
DIGITS = 8  # 1944 graphs (the BiFPN family) under 6 digits collide with probability ~11 %, under 8 ~0.04 %


def is_generated(topology: str) -> bool:
    """Whether ``topology`` is an inline graph (``NAME@P3-P7:...``) rather than a built-in name or a file."""
    return "@" in topology and not topology.endswith((".yaml", ".yml"))


def canonical(topology: str) -> str:
    """The inline graph parsed and written back (``Topology.to_string()``); the text itself when it does not parse."""
    from scalesearch.topology import parse_inline

    try:
        return parse_inline(topology).to_string()
    except UserError:
        return topology.strip()


def short_name(topology: str, digits: int = DIGITS) -> str:
    """``gen-3fa2c1d0`` for an inline graph (``digits`` hex digits of its canonical string's SHA-256); any other
    topology string unchanged."""
    if not is_generated(topology):
        return topology
    return PREFIX + hashlib.sha256(canonical(topology).encode()).hexdigest()[:digits]

