"""Feature-fusion topologies as data: FPN, PANet, BiFPN, QuFPN and custom node graphs.

A topology is a list of nodes. Ids ``0 .. num_levels-1`` are the backbone/extra feature maps of
levels ``min_level .. max_level``; node ``i`` gets id ``num_levels + i``. Each node fuses its inputs
(resampled to its level) and the network's output at each level is the last node of that level
(EfficientDet, arXiv 1911.09070, Sec. 3.1 and Fig. 2). Built-in node lists equal effdet 0.4.1's
``effdet/config/fpn_config.py`` node for node, input order included, so parameter counts match.

A ``DetectorSpec.topology`` string is one of:

* a built-in name (``list_topologies()``), generated for any ``min_level .. max_level``;
* a YAML file (``*.yaml`` / ``*.yml``) with the schema::

      name: my_graph
      min_level: 3
      max_level: 7
      nodes:                       # in order; node i has id num_levels + i
        - {level: 6, inputs: [3, 4]}
        - {level: 5, inputs: [2, 5], fusion: fast}   # optional fixed fusion for this node

* an inline graph, ``Topology.to_string()``: ``NAME@P<min>-P<max>:P6=3+4,P5=2+5,...`` where a node
  may end in ``~FUSION`` to fix its fusion (no spaces or shell-special characters, so it fits on a
  command line unquoted and in a trial record).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from scalesearch.errors import UserError, unknown_name
from scalesearch.registry import Registry
from scalesearch.topology_graph import FUSION_ALIASES, FUSIONS, Node, Topology, canonical_fusion, validate_node

__all__ = ["FUSIONS", "FUSION_ALIASES", "Node", "Topology", "TopologyFamily", "canonical_fusion", "family_from_dict",
           "get_topology", "list_topologies", "load_family", "load_topology", "parse_inline", "save_topology",
           "topology_from_dict"]

_INLINE_RE = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)@P(?P<min>\d+)-P(?P<max>\d+):(?P<nodes>.*)$")
_NODE_RE = re.compile(r"^P(?P<level>\d+)=(?P<inputs>-?\d+(?:\+-?\d+)*)(?:~(?P<fusion>[a-z_]+))?$")


# ---- built-in generators ------------------------------------------------------------------------

# name -> generator ``(min_level, max_level) -> Topology``; a new built-in is one decorated function.
GENERATORS: Registry[Callable[[int, int], Topology]] = Registry("topology")


class _Builder:
    """Appends nodes and tracks, per level, the ids that produced it (index 0 is the input map)."""

    def __init__(self, min_level: int, max_level: int) -> None:
        self.min_level, self.max_level = min_level, max_level
        self.num_levels = max_level - min_level + 1
        self.ids = {level: [level - min_level] for level in range(min_level, max_level + 1)}
        self.nodes: list[Node] = []

    def last(self, level: int) -> int:
        return self.ids[level][-1]

    def add(self, level: int, inputs: list[int], fusion: str | None = None) -> int:
        self.nodes.append(Node(level, tuple(inputs), fusion))
        new_id = self.num_levels + len(self.nodes) - 1
        self.ids[level].append(new_id)
        return new_id

    def top_down(self, first: int, with_top_pass: bool) -> None:
        """Nodes ``first .. min_level`` each fuse their level's last id with the level above's."""
        if with_top_pass:
            self.add(self.max_level, [self.last(self.max_level)])
        for level in range(first, self.min_level - 1, -1):
            self.add(level, [self.last(level), self.last(level + 1)])

    def topology(self, name: str) -> Topology:
        return Topology(name, self.min_level, self.max_level, tuple(self.nodes))


@GENERATORS.register("fpn")
def _fpn(lo: int, hi: int) -> Topology:
    """Top-down only (Lin et al. 2017; the paper's Fig. 2a, repeated). The top level passes through
    one single-input node (a separable conv on the smallest map, the cheapest place) so that every
    level has an output: exactly PANet's top-down half, which makes Table 5's FPN-vs-PANet
    comparison differ only by the bottom-up path."""
    b = _Builder(lo, hi)
    b.top_down(hi - 1, with_top_pass=True)
    return b.topology("fpn")


@GENERATORS.register("panet")
def _panet(lo: int, hi: int) -> Topology:
    """PANet (Liu et al. 2018; Fig. 2b): top-down then bottom-up, as effdet's ``pan`` config."""
    b = _Builder(lo, hi)
    b.top_down(hi - 1, with_top_pass=True)
    b.add(lo, [b.last(lo)])
    for level in range(lo + 1, hi + 1):
        b.add(level, [b.last(level), b.last(level - 1)])
    return b.topology("panet")


def _bifpn_paths(b: _Builder) -> None:
    """BiFPN (Sec. 3.3, Fig. 2d): top-down, then bottom-up where each middle node also takes its
    level's input (the same-level skip edge) and every id at that level, as effdet/automl."""
    b.top_down(b.max_level - 1, with_top_pass=False)
    for level in range(b.min_level + 1, b.max_level + 1):
        b.add(level, b.ids[level] + [b.last(level - 1)])


@GENERATORS.register("bifpn")
def _bifpn(lo: int, hi: int) -> Topology:
    b = _Builder(lo, hi)
    _bifpn_paths(b)
    return b.topology("bifpn")


@GENERATORS.register("qufpn")
def _qufpn(lo: int, hi: int) -> Topology:
    """QuFPN (Wu et al. 2020, IEEE 9225379; as effdet's ``qufpn``): BiFPN's two paths, then a
    bottom-up path from the inputs and a top-down path back, then one quad-add node per level that
    fuses the first pair's and the second pair's outputs. effdet fuses the quad-add nodes with
    fast normalized fusion whatever the config says, so those nodes carry ``fusion="fast"``."""
    b = _Builder(lo, hi)
    _bifpn_paths(b)
    first = {level: b.last(level) for level in range(lo, hi + 1)}
    up = {lo: 0}  # path 3 starts from the P_min input map (id 0)
    for level in range(lo + 1, hi + 1):
        up[level] = b.add(level, [level - lo, up[level - 1]])
    down = {hi: up[hi]}
    for level in range(hi - 1, lo, -1):
        down[level] = b.add(level, [level - lo, up[level], down[level + 1]])
    down[lo] = b.add(lo, [0, down[lo + 1]])
    for level in range(lo, hi + 1):
        b.add(level, [first[level], down[level]], fusion="fast")
    return b.topology("qufpn")


def list_topologies() -> list[str]:
    """Names of the built-in topologies."""
    return list(GENERATORS)


@functools.lru_cache(maxsize=256)
def _builtin(name: str, min_level: int, max_level: int) -> Topology:
    if not 1 <= min_level < max_level:
        raise UserError(f"topology {name!r}: 1 <= min_level < max_level must hold, "
                        f"but got (min_level={min_level}, max_level={max_level})")
    return GENERATORS.get(name)(min_level, max_level)


# ---- parsing ------------------------------------------------------------------------------------

def parse_inline(text: str) -> Topology:
    """Parse ``Topology.to_string()``'s form; ``UserError`` naming the bad node otherwise."""
    match = _INLINE_RE.match(text.strip())
    if not match:
        raise UserError(f"inline topology: must look like 'NAME@P3-P7:P6=3+4,P5=2+5,...', but got {text!r}")
    lo, hi = int(match["min"]), int(match["max"])
    nodes = []
    for i, part in enumerate(match["nodes"].split(",") if match["nodes"] else []):
        node = _NODE_RE.match(part.strip())
        if not node:
            raise UserError(f"inline topology {match['name']!r} node {hi - lo + 1 + i}: must look like "
                            f"'P4=1+7+8' or 'P3=8+20~fast', but got {part!r}")
        fusion = canonical_fusion(node["fusion"]) if node["fusion"] else None
        nodes.append(Node(int(node["level"]), tuple(int(x) for x in node["inputs"].split("+")), fusion))
    return Topology(match["name"], lo, hi, tuple(nodes))


def _require(data: Any, key: str, kind: type, where: str) -> Any:
    if key not in data:
        raise UserError(f"{where}: missing key {key!r}")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise UserError(f"{where}.{key}: must be {kind.__name__}, but got {value!r}")
    return value


def _check_keys(data: Any, allowed: set[str], where: str) -> None:
    if not isinstance(data, dict):
        raise UserError(f"{where}: must be a mapping, but got {data!r}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} (valid keys: {', '.join(sorted(allowed))})")


def topology_from_dict(data: Any, where: str = "topology") -> Topology:
    """Build a topology from the YAML schema (module docstring); ``where`` prefixes errors."""
    _check_keys(data, {"name", "min_level", "max_level", "nodes"}, where)
    nodes = []
    for i, entry in enumerate(_require(data, "nodes", list, where)):
        at = f"{where}: nodes[{i}]"
        _check_keys(entry, {"level", "inputs", "fusion"}, at)
        inputs = _require(entry, "inputs", list, at)
        fusion = entry.get("fusion")
        nodes.append(Node(_require(entry, "level", int, at), tuple(inputs),
                          canonical_fusion(fusion) if fusion is not None else None))
    return Topology(_require(data, "name", str, where), _require(data, "min_level", int, where),
                    _require(data, "max_level", int, where), tuple(nodes))


def _read_yaml(path: Path) -> Any:
    import yaml

    if not path.is_file():
        raise UserError(f"topology file {str(path)!r} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"topology file {str(path)!r}: invalid YAML ({exc})".replace("\n", " ")) from None


def load_topology(path: str | Path) -> Topology:
    """Load a YAML topology file (schema in the module docstring)."""
    return topology_from_dict(_read_yaml(Path(path)), where=str(path))


def save_topology(topology: Topology, path: str | Path) -> None:
    """Write ``topology`` as YAML, loadable by ``load_topology`` / ``get_topology``."""
    import yaml

    Path(path).write_text(yaml.safe_dump(topology.to_dict(), sort_keys=False, default_flow_style=None))


def get_topology(name_or_path_or_inline: str, min_level: int = 3, max_level: int = 7) -> Topology:
    """Resolve a spec's ``topology`` string (built-in name, YAML path or inline graph).

    Built-ins are generated for ``min_level .. max_level``; a file or inline graph carries its own
    levels, which must be the requested ones.
    """
    text = name_or_path_or_inline
    if text in GENERATORS:
        return _builtin(text, min_level, max_level)
    if text.endswith((".yaml", ".yml")):  # checked first: an inline graph never ends so
        topo = load_topology(text)
    elif "@" in text:
        topo = parse_inline(text)
    elif "/" in text:
        topo = load_topology(text)
    else:
        raise unknown_name("topology", text, list_topologies())
    if (topo.min_level, topo.max_level) != (min_level, max_level):
        raise UserError(f"topology {topo.name!r}: graph covers P{topo.min_level}..P{topo.max_level}, "
                        f"but the spec asks for P{min_level}..P{max_level}")
    return topo


# ---- parameterized families (for search) --------------------------------------------------------

@dataclass(frozen=True)
class TopologyFamily:
    """A graph family: a fixed sequence of nodes (ids and levels fixed), each with one or more
    candidate input sets. A sampler picks one candidate per node with several (a "decision").

    YAML schema (``load_family``): ``name``, ``min_level``, ``max_level`` and ``nodes``, each
    ``{level: L, inputs: [ids]}`` (fixed) or ``{level: L, candidates: [[ids], [ids], ...]}``,
    optionally with ``fusion``. Every candidate is validated at load, so every build is valid.
    """

    name: str
    min_level: int
    max_level: int
    candidates: tuple[tuple[Node, ...], ...]  # per node: its options, all at the same level

    def __post_init__(self) -> None:
        base = self._topology({key: 0 for key in self.choices()})
        where = f"topology family {self.name!r}"
        for i, options in enumerate(self.candidates):
            for node in options[1:]:
                validate_node(base, where, base.num_levels + i, node)

    def _decision(self, i: int) -> str:
        return f"node{self.max_level - self.min_level + 1 + i}_P{self.candidates[i][0].level}"

    def choices(self) -> dict[str, int]:
        """Decision name (``node9_P4``) -> number of candidate input sets, for nodes with >= 2."""
        return {self._decision(i): len(opts) for i, opts in enumerate(self.candidates) if len(opts) > 1}

    @property
    def num_graphs(self) -> int:
        return functools.reduce(lambda a, b: a * b, self.choices().values(), 1)

    def build(self, choice_index_by_name: dict[str, int]) -> Topology:
        """The topology for one candidate index per decision (all of ``choices()``, no others)."""
        options = self.choices()
        for key in choice_index_by_name:
            if key not in options:
                raise unknown_name(f"decision of topology family {self.name!r}", key, options)
        for key, count in options.items():
            if key not in choice_index_by_name:
                raise UserError(f"topology family {self.name!r}: missing decision {key!r}")
            index = choice_index_by_name[key]
            if not isinstance(index, int) or not 0 <= index < count:
                raise UserError(f"topology family {self.name!r}: decision {key!r} must be in 0..{count - 1}, "
                                f"but got {index!r}")
        return self._topology(choice_index_by_name)

    def _topology(self, picks: dict[str, int]) -> Topology:
        nodes = [opts[picks[self._decision(i)]] if len(opts) > 1 else opts[0]
                 for i, opts in enumerate(self.candidates)]
        code = ".".join(str(picks[key]) for key in self.choices())
        return Topology(f"{self.name}-{code}" if code else self.name, self.min_level, self.max_level, tuple(nodes))


def family_from_dict(data: Any, where: str = "topology family") -> TopologyFamily:
    """Build a family from its YAML schema (``TopologyFamily``); ``where`` prefixes errors."""
    _check_keys(data, {"name", "min_level", "max_level", "nodes"}, where)
    candidates = []
    for i, entry in enumerate(_require(data, "nodes", list, where)):
        at = f"{where}: nodes[{i}]"
        _check_keys(entry, {"level", "inputs", "candidates", "fusion"}, at)
        if ("inputs" in entry) == ("candidates" in entry):
            raise UserError(f"{at}: give exactly one of 'inputs' or 'candidates', but got {sorted(entry)}")
        sets = [_require(entry, "inputs", list, at)] if "inputs" in entry else _require(entry, "candidates", list, at)
        if not sets or not all(isinstance(s, list) for s in sets):
            raise UserError(f"{at}.candidates: must be a non-empty list of input lists, but got {sets!r}")
        fusion = canonical_fusion(entry["fusion"]) if entry.get("fusion") is not None else None
        level = _require(entry, "level", int, at)
        candidates.append(tuple(Node(level, tuple(s), fusion) for s in sets))
    return TopologyFamily(_require(data, "name", str, where), _require(data, "min_level", int, where),
                          _require(data, "max_level", int, where), tuple(candidates))


def load_family(path: str | Path) -> TopologyFamily:
    """Load a ``TopologyFamily`` YAML file (e.g. ``spaces/topology_bifpn_family.yaml``)."""
    return family_from_dict(_read_yaml(Path(path)), where=str(path))
