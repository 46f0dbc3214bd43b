"""Drawings of fusion topologies (matplotlib, imported inside the functions): the graph of one topology, and
every named one into a folder. Torch-free, so reports draw the topologies on their fronts.
"""

from __future__ import annotations

from pathlib import Path

from scalesearch.topology import Topology, get_topology

PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#9a6324")


def draw_topology(topology: Topology, path: str | Path) -> None:
    """Draw ``topology`` as a PNG: one row per level (max at the top), inputs in column 0, node
    ``i`` in column ``i + 1``; arrows are edges, filled circles are outputs, squares fixed fusions."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_in = topology.num_levels
    pos = {i: (0 if i < n_in else i - n_in + 1, topology.level_of(i)) for i in range(n_in + len(topology.nodes))}
    fig = Figure(figsize=(1.4 + 0.55 * (len(topology.nodes) + 1), 0.9 + 0.6 * n_in))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    _draw_edges(ax, topology, pos)
    _draw_nodes(ax, topology, pos)
    ax.set_yticks(range(topology.min_level, topology.max_level + 1),
                  [f"P{lv}" for lv in range(topology.min_level, topology.max_level + 1)])
    ax.set_xticks([0], ["inputs"])
    ax.set_xlim(-0.6, len(topology.nodes) + 0.6)
    ax.set_ylim(topology.min_level - 0.6, topology.max_level + 0.6)
    ax.set_title(f"{topology.name} (P{topology.min_level}-P{topology.max_level}, {len(topology.nodes)} nodes)",
                 fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def _draw_edges(ax, topology: Topology, pos: dict[int, tuple[int, int]]) -> None:
    n_in = topology.num_levels
    for i, node in enumerate(topology.nodes):
        for src in node.inputs:
            (x0, y0), (x1, y1) = pos[src], pos[n_in + i]
            # Bend same-level edges so that they do not run through the nodes between their ends:
            # a sag of ~0.4 rows (arc3 sag = rad * length / 2), upwards on the bottom row.
            rad = min(0.35, 0.8 / (x1 - x0)) if y0 == y1 and x1 - x0 > 1 else 0.0
            rad = -rad if y0 == topology.min_level else rad
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(
                arrowstyle="-|>", color="0.45", lw=0.8, shrinkA=7, shrinkB=7, connectionstyle=f"arc3,rad={rad}"))


def _draw_nodes(ax, topology: Topology, pos: dict[int, tuple[int, int]]) -> None:
    n_in = topology.num_levels
    outputs = set(topology.outputs())
    for i in pos:
        fixed = i >= n_in and topology.nodes[i - n_in].fusion is not None
        color = "tab:green" if i < n_in else ("tab:orange" if i in outputs else "white")
        ax.scatter(*pos[i], s=260, marker="s" if fixed else "o", c=color, edgecolors="black", zorder=3)
        ax.text(*pos[i], str(i), ha="center", va="center", fontsize=6.5, zorder=4)


def draw_topologies(names: list[str], figures_dir: Path, relative_to: Path) -> dict[str, str]:
    """Draw each graph to ``figures_dir/topology_<name>.png``; return name -> path relative to
    ``relative_to`` (absolute where it is not below it), for links in a report."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in names:
        topo = get_topology(name)
        path = figures_dir / f"topology_{topo.name}.png"
        draw_topology(topo, path)
        out[topo.name] = _relative(path, relative_to)
    return out


def _relative(path: Path, start: Path) -> str:
    try:
        return str(path.resolve().relative_to(start.resolve()))
    except ValueError:
        return str(path.resolve())
