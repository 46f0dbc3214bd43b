"""A fusion topology's graph: ``Node``, ``Topology``, the fusion names and the graph's validation.

Ids ``0 .. num_levels-1`` are the backbone/extra feature maps of levels ``min_level .. max_level``; node
``i`` gets id ``num_levels + i`` (EfficientDet, arXiv 1911.09070, Sec. 3.1). ``scalesearch.topology``
builds, parses and names graphs and re-exports these names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from scalesearch.errors import UserError, unknown_name

FUSIONS = ("sum", "softmax", "fast", "channel_softmax", "channel_fast")
FUSION_ALIASES = {
    "attn": "softmax",
    "fastattn": "fast",
    "channel_attn": "channel_softmax",
    "channel_fastattn": "channel_fast",
}
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


def canonical_fusion(name: str) -> str:
    """Map a fusion name or alias (``attn``, ``fastattn``, ...) to one of ``FUSIONS``."""
    name = FUSION_ALIASES.get(name, name)
    if name not in FUSIONS:
        raise unknown_name("fusion", name, FUSIONS + tuple(FUSION_ALIASES))
    return name


@dataclass(frozen=True)
class Node:
    """One fusion node: output ``level`` and the ids of its ``inputs`` (in fusion-weight order).

    ``fusion`` fixes this node's fusion method regardless of the spec's (``None``: use the spec's).
    Only QuFPN's quad-add nodes use it: effdet always fuses them with fast normalized fusion.
    """

    level: int
    inputs: tuple[int, ...]
    fusion: str | None = None

    def __post_init__(self) -> None:
        # YAML and JSON give lists; keep nodes hashable.
        object.__setattr__(self, "inputs", tuple(self.inputs))


@dataclass(frozen=True)
class Topology:
    """A validated node graph over levels ``min_level .. max_level`` (see the module docstring)."""

    name: str
    min_level: int
    max_level: int
    nodes: tuple[Node, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        _validate(self)

    @property
    def num_levels(self) -> int:
        return self.max_level - self.min_level + 1

    def level_of(self, node_id: int) -> int:
        """Level of any id: an input feature map (``id < num_levels``) or a node."""
        if node_id < self.num_levels:
            return self.min_level + node_id
        return self.nodes[node_id - self.num_levels].level

    def outputs(self) -> list[int]:
        """Id of the last node of each level, ``min_level .. max_level``."""
        last = {node.level: self.num_levels + i for i, node in enumerate(self.nodes)}
        return [last[level] for level in range(self.min_level, self.max_level + 1)]

    def to_string(self) -> str:
        """The inline form, parsed back by ``get_topology`` (round trip exact)."""
        body = ",".join(
            f"P{n.level}=" + "+".join(map(str, n.inputs)) + (f"~{n.fusion}" if n.fusion else "")
            for n in self.nodes
        )
        return f"{self.name}@P{self.min_level}-P{self.max_level}:{body}"

    def to_dict(self) -> dict[str, Any]:
        """The YAML schema as plain data (see ``save_topology``)."""
        nodes = []
        for n in self.nodes:
            entry: dict[str, Any] = {"level": n.level, "inputs": list(n.inputs)}
            if n.fusion:
                entry["fusion"] = n.fusion
            nodes.append(entry)
        return {"name": self.name, "min_level": self.min_level, "max_level": self.max_level, "nodes": nodes}


def _validate(topo: Topology) -> None:
    """Raise ``UserError`` naming the first bad node: levels, inputs (earlier ids only), coverage."""
    where = f"topology {topo.name!r}"
    if not isinstance(topo.name, str) or not _NAME_RE.match(topo.name):
        raise UserError(f"{where}: name must use only letters, digits, '_', '.', '-', but got {topo.name!r}")
    if not (isinstance(topo.min_level, int) and isinstance(topo.max_level, int)
            and 1 <= topo.min_level < topo.max_level):
        raise UserError(f"{where}: 1 <= min_level < max_level must hold, "
                        f"but got (min_level={topo.min_level!r}, max_level={topo.max_level!r})")
    for i, node in enumerate(topo.nodes):
        validate_node(topo, where, topo.num_levels + i, node)
    produced = {node.level for node in topo.nodes}
    for level in range(topo.min_level, topo.max_level + 1):
        if level not in produced:
            raise UserError(f"{where}: no node produces P{level} "
                            f"(every level P{topo.min_level}..P{topo.max_level} needs one)")


def validate_node(topo: Topology, where: str, node_id: int, node: Node) -> None:
    """Raise ``UserError`` unless ``node`` (id ``node_id``) fits ``topo``: its level, fusion and inputs
    (earlier ids only, each once); ``where`` prefixes the message."""
    label = f"{where} node {node_id} (P{node.level})"
    if not isinstance(node.level, int) or not topo.min_level <= node.level <= topo.max_level:
        raise UserError(f"{label}: level must be in P{topo.min_level}..P{topo.max_level}, but got {node.level!r}")
    if not node.inputs:
        raise UserError(f"{label}: needs at least one input, but got none")
    if node.fusion is not None and node.fusion not in FUSIONS:
        raise UserError(f"{label}: fusion must be one of {', '.join(FUSIONS)}, but got {node.fusion!r}")
    seen: set[int] = set()
    for x in node.inputs:
        if not isinstance(x, int) or isinstance(x, bool) or x < 0:
            raise UserError(f"{label}: input {x!r} is not a valid id (valid ids 0..{node_id - 1})")
        if x == node_id:
            raise UserError(f"{label}: input {x} is the node itself, a cycle (valid ids 0..{node_id - 1})")
        if x > node_id:
            # Inputs must be earlier ids: that order is what keeps the graph acyclic.
            raise UserError(f"{label}: input {x} does not exist yet (valid ids 0..{node_id - 1})")
        if x in seen:
            raise UserError(f"{label}: input {x} is listed twice")
        seen.add(x)
