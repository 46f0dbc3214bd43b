"""Report figures (matplotlib, Agg backend). Each function only draws what ``pareto`` computed; axis titles
come from the metric registry (``scalesearch.metrics``).

Every function writes one PNG to ``path`` and returns it. Each topology is drawn in its ``Style`` (a colour and a
marker of its own, ``topology_colors``), the same in every figure; legends name generated topologies by their short
names (``scalesearch.topology_names``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalesearch import pareto
from scalesearch.metrics import get_metric
from scalesearch.records import TrialRecord
from scalesearch.report.format import topology_cell

Record = TrialRecord

# Kelly's colours of maximum contrast (1965) without white, black and grey (grey marks pruned and failed trials),
# strongest first, and seven markers: 19 and 7 are coprime, so the first 133 categories each get a pair of their own.
PALETTE = ("#0067a5", "#be0032", "#008856", "#f38400", "#875692", "#a1caf1", "#e68fac", "#f99379", "#604e97",
           "#f6a600", "#b3446c", "#dcd300", "#882d17", "#8db600", "#654522", "#e25822", "#2b3d26", "#f3c300",
           "#c2b280")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
# Thousands of trials (a supernet study): past DENSE points a scatter draws small translucent dots without outlines
# (rasterised, so a vector copy stays small), rings the front and stars the labelled baselines; past STYLED
# topologies only those on the front keep a style of their own and the others share one grey; past PRUNED_LABELS
# pruned trials their rungs are no longer written beside them. Figures of smaller studies are drawn as before.
DENSE = 150
STYLED = 20
PRUNED_LABELS = 40
CATEGORIES = 20  # values of a categorical parameter a slice panel names on its axis (past them, none)
OTHERS = "0.6"  # the grey of topologies without a style of their own


@dataclass(frozen=True)
class Style:
    """How one category (a topology) is drawn in every figure."""

    color: str
    marker: str


def _axis(name: str, log: bool = False) -> str:
    """An axis title from the metric registry, e.g. ``FLOPs (multiply-adds, log scale)``."""
    metric = get_metric(name)
    notes = [n for n in (metric.unit, "log scale" if log else "") if n]
    return metric.label + (f" ({', '.join(notes)})" if notes else "")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def topology_colors(names: Iterable[str]) -> dict[str, Style]:
    """name -> ``Style``, sorted by name. The built-in topologies hold the first styles in ``list_topologies()``
    order whether or not they appear, so each keeps its style in every report; the others follow, sorted."""
    from scalesearch.topology import list_topologies

    names, builtins = set(names), list_topologies()
    order = [*builtins, *sorted(names - set(builtins))]
    return {name: Style(PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)])
            for i, name in enumerate(order) if name in names}


def _style(colors: dict[str, Style], topology: Any) -> Style:
    return colors.get(str(topology), Style("grey", "o"))


def _legend(ax) -> None:
    """The legend inside the axes while it is short, else to their right (figures are drawn wide enough)."""
    handles = ax.get_legend_handles_labels()[0]
    if len(handles) > 7:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    elif handles:
        ax.legend(fontsize=8, loc="best")


def _short(label: str, width: int = 28) -> str:
    """Legend text: inline topology graphs can be long strings."""
    return label if len(label) <= width else label[: width - 3] + "..."


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def _step(ax, front: Sequence[Record], cost: str, **style) -> None:
    """Draw a front as a staircase: mAP reached with at most that much cost."""
    if front:
        ax.step([r.get(cost) for r in front], [r.get("map") for r in front], where="post", **style)


def _has(record: Record, key: str) -> bool:
    value = record.get(key)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def styled(topologies: Iterable[str], front: Sequence[Record]) -> set[str]:
    """The topologies a figure draws in their own style: every one when there are at most ``STYLED``, else those
    with a trial on ``front`` (the most front trials first, at most ``STYLED``); the others share one grey."""
    names = set(topologies)
    if len(names) <= STYLED:
        return names
    counts = Counter(str(r.get("topology")) for r in front)
    return {t for t, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:STYLED]}


def _dots(dense: bool, size: float = 26, alpha: float | None = 0.85) -> dict[str, Any]:
    """Marker settings of a scatter: ``size`` and ``alpha`` as given, or small translucent rasterised dots."""
    if dense:
        return {"s": 7, "alpha": 0.45, "linewidths": 0, "rasterized": True}
    return {"s": size} if alpha is None else {"s": size, "alpha": alpha}


def _by_topology(records: Iterable[Record]) -> dict[str, list[Record]]:
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(str(r.get("topology")), []).append(r)
    return groups


def scatter_front(records: Sequence[Record], cost: str, path: Path, colors: dict[str, Style],
                  budgets: Sequence[float] = (), title: str = "", baselines: frozenset[int] = frozenset()) -> Path:
    """mAP vs ``cost`` ("flops", "params", "latency_ms") for every feasible trial in its topology's style, with the
    overall front (black), per-topology fronts (dashed), budget lines and the paper-rule baselines (stars).
    Pruned trials are hollow, at their last reported mAP, labelled with that step; infeasible and failed trials
    with a known cost are grey crosses at mAP 0. Past ``DENSE`` trials the dots shrink, the front's trials are
    ringed and the labelled trials (an enqueued baseline) are red stars; past ``STYLED`` topologies the ones off
    the front are grey."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4.8))
    objectives = ("map", cost)
    good = [r for r in pareto.feasible(records) if _has(r, cost)]
    front = pareto.pareto_front(records, objectives)
    dense = len(good) > DENSE
    shown = styled((str(r.get("topology")) for r in records if _has(r, cost)), front)
    groups = _by_topology(r for r in good if r.get("number") not in baselines)
    labelled: set[str] = set()
    for topo, style in colors.items():
        pts = groups.get(topo) if topo in shown else None
        if pts:
            ax.scatter([r.get(cost) for r in pts], [r.get("map") for r in pts], color=style.color,
                       marker=style.marker, label=topology_cell(topo), **_dots(dense))
            labelled.add(topo)
    _others(ax, [r for topo, pts in groups.items() if topo not in shown for r in pts], cost, dense)
    base = [r for r in good if r.get("number") in baselines]
    if base:
        ax.scatter([r.get(cost) for r in base], [r.get("map") for r in base], marker="*", s=140, color="gold",
                   edgecolor="black", zorder=5, label="paper rule")
    pruned = {id(r) for r in _pruned(ax, records, cost, colors, labelled, shown)}
    bad = [r for r in records if not pareto.is_feasible(r) and id(r) not in pruned and _has(r, cost)]
    if bad:
        ax.scatter([r.get(cost) for r in bad], [0.0] * len(bad), marker="x", color="grey", s=8 if dense else 18,
                   linewidths=0.7 if dense else None, label="not trained / failed")
    for topo, topo_front in pareto.fronts_by(records, "topology", objectives).items():
        if topo in shown:
            _step(ax, topo_front, cost, color=_style(colors, topo).color, linestyle="--",
                  **({"linewidth": 0.8, "alpha": 0.6} if dense else {"linewidth": 1}))
    _step(ax, front, cost, color="black", linewidth=1.6, label="Pareto front")
    if cost == "latency_ms":
        _table_shift(ax, good)
    if dense:
        _highlight(ax, front, [r for r in good if r.get("label") and r.get("number") not in baselines
                               and not pareto.is_duplicate(r)], cost)
    for i, budget in enumerate(budgets):
        ax.axvline(budget, color="red", linestyle=":", linewidth=1, label="budget" if i == 0 else None)
    if good or bad or pruned or budgets:
        ax.set_xscale("log")
    ax.set(xlabel=_axis(cost, log=True), ylabel=_axis("map"), title=title)
    ax.grid(alpha=0.3)
    _legend(ax)
    return _save(fig, path)


def _table_shift(ax, records: Sequence[Record]) -> None:
    """With ``latency.table`` the cloud stands at the table's prediction and the measured points (the front, the
    enqueued baselines) at the protocol's: each measured point's prediction, hollow, joined to its measurement,
    so that the two clocks show (``latency_table_ms`` beside ``latency_ms``)."""
    moved = [r for r in records if r.get("latency_source") == "measured" and _has(r, "latency_table_ms")
             and not pareto.is_duplicate(r)]
    if not moved:
        return
    for r in moved:
        ax.plot([r.get("latency_table_ms"), r.get("latency_ms")], [r.get("map")] * 2, color="grey", linewidth=0.7,
                alpha=0.8, zorder=3)
    ax.scatter([r.get("latency_table_ms") for r in moved], [r.get("map") for r in moved], s=22, facecolors="none",
               edgecolors="grey", linewidths=0.8, zorder=3, label="measured point at its table prediction")


def _others(ax, records: Sequence[Record], cost: str, dense: bool) -> None:
    """The trials of topologies without a style of their own, one grey, named by how many topologies they are."""
    if records:
        count = len({str(r.get("topology")) for r in records})
        ax.scatter([r.get(cost) for r in records], [r.get("map") for r in records], color=OTHERS, marker="o",
                   label=f"{count} other topologies", **_dots(dense, 14))


def _highlight(ax, front: Sequence[Record], labelled: Sequence[Record], cost: str) -> None:
    """Among thousands of dots: a ring around each front trial and a red star, named, on each labelled trial."""
    ax.scatter([r.get(cost) for r in front], [r.get("map") for r in front], s=30, facecolors="none",
               edgecolors="black", linewidths=0.9, zorder=4)
    for r in labelled:
        ax.scatter([r.get(cost)], [r.get("map")], marker="*", s=170, color="red", edgecolor="black", linewidths=0.6,
                   zorder=6, label=f"{_short(str(r.get('label')))} (trial {r.get('number')})")


def _pruned_reports(records: Sequence[Record]) -> list[tuple[Record, tuple[int, float]]]:
    """(record, its last report) of each pruned trial that reported a mAP before it stopped."""
    found = [(r, pareto.last_report(r)) for r in records if r.get("state") == "pruned"]
    return [(r, last) for r, last in found if last is not None]


def pruned_note(records: Sequence[Record]) -> str:
    """The caption's words for the hollow markers, when some trial was pruned after reporting a mAP."""
    drawn = len(_pruned_reports(records))
    if not drawn:
        return ""
    return "; hollow: pruned trials at their last reported mAP" + (", labelled with that step"
                                                                   if drawn <= PRUNED_LABELS else "")


def _pruned(ax, records: Sequence[Record], cost: str, colors: dict[str, Style], labelled: set[str],
            shown: set[str] | None = None) -> list[Record]:
    """Draw each pruned trial with a known cost hollow at its last reported mAP, labelled with that step (its
    rung) while there are at most ``PRUNED_LABELS``, else one small hollow group per style; a topology not yet in
    the legend (``labelled``, updated) enters it here; topologies outside ``shown`` are grey. Returns those drawn."""
    reported = _pruned_reports(records)
    drawn = [(r, last) for r, last in reported if _has(r, cost)]
    steps = len(reported) <= PRUNED_LABELS
    groups: dict[Style, list[tuple[Record, float]]] = {}
    for r, (step, value) in drawn:
        topo = str(r.get("topology"))
        own = shown is None or topo in shown
        style = _style(colors, topo) if own else Style(OTHERS, "o")
        if not steps:
            groups.setdefault(style, []).append((r, value))
            continue
        label = None if topo in labelled or not own else topology_cell(topo)
        labelled.add(topo)
        ax.scatter([r.get(cost)], [value], facecolors="none", edgecolors=style.color, marker=style.marker, s=26,
                   linewidths=0.9, label=label)
        ax.annotate(str(step), (r.get(cost), value), fontsize=5.5, color="0.35", xytext=(3, -6),
                    textcoords="offset points")
    for style, pts in groups.items():
        ax.scatter([r.get(cost) for r, _ in pts], [v for _, v in pts], facecolors="none", edgecolors=style.color,
                   marker=style.marker, s=12, linewidths=0.6, rasterized=True)
    if drawn:
        ax.scatter([], [], facecolors="none", edgecolors="black", marker="o", s=26,
                   label="pruned (last reported mAP, at step)" if steps else "pruned (last reported mAP)")
    return [r for r, _ in drawn]


def topology_drawing(topology: str, name: str, path: Path) -> Path:
    """The graph of an inline ``topology`` string drawn by ``scalesearch.topology_drawing``, titled ``name`` (its short name)."""
    import dataclasses

    from scalesearch.topology_drawing import draw_topology
    from scalesearch.topology import parse_inline

    draw_topology(dataclasses.replace(parse_inline(topology), name=name), path)
    return path


def fidelity_plot(proxy: Sequence[float], long: Sequence[float], labels: Sequence[str], factor: float,
                  path: Path) -> Path:
    """Proxy mAP (x) against long-budget mAP (y) per retrained point, with the y = x line for reference."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.6))
    ax.scatter(proxy, long, s=36, color="tab:blue", zorder=3)
    for x, y, label in zip(proxy, long, labels):
        ax.annotate(_short(label, 32), (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    lo, hi = min(*proxy, *long), max(*proxy, *long)
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--", label="y = x")
    ax.set(xlabel="proxy mAP (the study's budget)", ylabel=f"mAP at {factor:g}x the budget",
           title="Proxy fidelity: does the short run rank as the long one?")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def hypervolume_plot(histories: dict[str, list[tuple[int, float]]], path: Path, cost: str = "flops") -> Path:
    """Hypervolume after each trial, one line per history; ``cost`` names the front's cost axis."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for label, history in histories.items():
        if history:
            ax.step([n for n, _ in history], [v for _, v in history], where="post", label=label)
    ax.set(xlabel="trial number", ylabel=f"hypervolume (decades of {get_metric(cost).label} x mAP)",
           title=f"Search progress (mAP vs {get_metric(cost).label})")
    ax.grid(alpha=0.3)
    if len(histories) > 1:
        ax.legend(fontsize=8)
    return _save(fig, path)


def importance_plot(importances: dict[str, dict[str, float]], path: Path) -> Path:
    """Horizontal bars, one group per target (e.g. mAP, FLOPs)."""
    plt = _plt()
    params = sorted({p for imp in importances.values() for p in imp})
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(params) * max(1, len(importances))))
    height = 0.8 / max(1, len(importances))
    for k, (target, imp) in enumerate(importances.items()):
        ys = [i + k * height for i in range(len(params))]
        ax.barh(ys, [imp.get(p, 0.0) for p in params], height=height, label=target)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(params))], params)
    ax.set(xlabel="importance (PED-ANOVA, normalised)", title="Parameter importances")
    ax.legend(fontsize=8)
    return _save(fig, path)


def slice_plot(records: Sequence[Record], params: Sequence[str], path: Path, colors: dict[str, Style],
               objectives: pareto.Objectives = pareto.MAP_FLOPS) -> Path:
    """mAP against each sampled parameter (one panel per parameter), coloured by topology (past ``STYLED``
    topologies, those off the front over ``objectives`` grey); past ``DENSE`` trials, one scatter of small dots
    per topology and panel."""
    plt = _plt()
    cols = min(3, len(params))
    rows = -(-len(params) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    good = [r for r in pareto.feasible(records) if isinstance(r.get("params_sampled"), dict)]
    dense = len(good) > DENSE
    shown = styled((str(r.get("topology")) for r in good), pareto.pareto_front(records, objectives))
    for ax, name in zip(axes.flat, params):
        values = [r.get("params_sampled").get(name) for r in good]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values if v is not None)
        ticks = sorted({str(v) for v in values if v is not None})
        points: dict[Style, tuple[list, list]] = {}
        for v, r in zip(values, good):
            if v is not None:
                topo = str(r.get("topology"))
                style = _style(colors, topo) if topo in shown else Style(OTHERS, "o")
                x = v if numeric else ticks.index(str(v))
                if not dense:  # a few points: each drawn in turn, as they came
                    ax.scatter(x, r.get("map"), color=style.color, marker=style.marker, s=14)
                    continue
                xs, ys = points.setdefault(style, ([], []))
                xs.append(x)
                ys.append(r.get("map"))
        for style, (xs, ys) in points.items():
            ax.scatter(xs, ys, color=style.color, marker=style.marker, **_dots(dense))
        if not numeric and len(ticks) > CATEGORIES:  # e.g. hundreds of generated topologies: no names
            ax.set_xticks([])
            ax.set_xlabel(f"{len(ticks)} values (sorted by name)", fontsize=7)
        elif not numeric:
            ax.set_xticks(range(len(ticks)), ticks, rotation=30, fontsize=7)
        ax.set(title=name, ylabel="mAP")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(params):]:
        ax.set_visible(False)
    return _save(fig, path)


def repeats_plot(groups: Sequence[Record], path: Path, colors: dict[str, Style]) -> Path:
    """Mean mAP of each repeated point with its seed spread (error bar: one standard deviation)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    for topo, style in colors.items():
        pts = sorted((g for g in groups if str(g.record.get("topology")) == topo), key=lambda g: g.flops)
        if pts:
            err = [0.0 if g.n < 2 else g.map_std for g in pts]
            ax.errorbar([g.flops for g in pts], [g.map_mean for g in pts], yerr=err, color=style.color,
                        marker=style.marker, capsize=3, label=topology_cell(topo))
    ax.set_xscale("log")
    ax.set(xlabel=_axis("flops", log=True), ylabel="mAP (mean ± 1 std over seeds)", title="Seed repeats")
    ax.grid(alpha=0.3)
    _legend(ax)
    return _save(fig, path)


def curves_plot(curves: dict[str, tuple[Any, Sequence[tuple[int, float]]]], path: Path,
                colors: dict[str, Style], others: Sequence[Sequence[tuple[int, float]]] = ()) -> Path:
    """One line per point: validation mAP against training step (``report.curves.point_curves``); ``others``
    (the points a study of thousands leaves unnamed) as thin grey lines behind them, one collection."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    if others:
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection([list(points) for points in others], colors=OTHERS, linewidths=0.6,
                                         alpha=0.5, label=f"{len(others)} other points", rasterized=True))
        ax.autoscale_view()
    labelled: set[str] = set()
    for record, points in curves.values():
        topo = str(record.get("topology"))
        style = _style(colors, topo)
        label = None if topo in labelled else topology_cell(topo)
        labelled.add(topo)
        ax.plot([s for s, _ in points], [m for _, m in points], color=style.color, marker=style.marker,
                alpha=0.8, label=label)
    ax.set(xlabel="training step", ylabel="validation mAP (scored weights)", title="Learning curves")
    ax.grid(alpha=0.3)
    _legend(ax)
    return _save(fig, path)


def compare_fronts(runs: dict[str, Sequence[Record]], path: Path) -> Path:
    """The overall mAP/FLOPs front of each run, one colour per run."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for label, records in runs.items():
        front = pareto.pareto_front(records)
        _step(ax, front, "flops", label=label, linewidth=1.5)
        if front:
            ax.scatter([r.get("flops") for r in front], [r.get("map") for r in front], s=16)
    ax.set_xscale("log")
    ax.set(xlabel=_axis("flops", log=True), ylabel=_axis("map"), title="Pareto fronts by study")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def baseline_plot(records: Sequence[Record], rows: Sequence[Any], label: str, path: Path,
                  quartiles: Any) -> Path:
    """Every trial's proxy mAP vs its latency (grey) and the retrained points (``FidelityRecord``s; the first
    is the baseline, a red star): mean long-budget mAP with the seeds' range, median latency with its
    interquartile range (``quartiles(row)`` -> (q25, median, q75))."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    timed = [r for r in pareto.feasible(records) if isinstance(r.get("latency_ms"), (int, float))]
    ax.scatter([r.get("latency_ms") for r in timed], [r.get("map") for r in timed], color="lightgrey",
               label="trials (proxy budget)", **_dots(len(timed) > DENSE, 18, None))
    _step(ax, pareto.pareto_front(timed, ("map", "latency_ms")), "latency_ms", color="grey", linewidth=1,
          label="proxy front")
    for i, row in enumerate(rows):
        q = quartiles(row)
        if q is None:
            continue
        maps = list(row.maps)
        mean = sum(maps) / len(maps)
        style = (dict(color="red", marker="*", markersize=14, label=label) if i == 0 else
                 dict(color="tab:blue", marker="o", markersize=6, label="retrained" if i == 1 else None))
        ax.errorbar([q[1]], [mean], xerr=[[q[1] - q[0]], [q[2] - q[1]]], yerr=[[mean - min(maps)], [max(maps) - mean]],
                    linestyle="none", capsize=3, zorder=4, **style)
        ax.annotate(str(row.number), (q[1], mean), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set(xlabel=_axis("latency_ms"), ylabel=_axis("map"), title=f"Against {label}: mAP vs latency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def _seed_lines(ax, seeds: Sequence[Sequence[tuple[int, float]]], label: str, **style: Any) -> None:
    """Each seed's learning curve a thin line, their mean at each step a thick one with markers (``label``)."""
    for curve in seeds:
        ax.plot([s for s, _ in curve], [m for _, m in curve], linewidth=0.6, alpha=0.35, **style)
    by_step: dict[int, list[float]] = {}
    for step, value in (point for curve in seeds for point in curve):
        by_step.setdefault(step, []).append(value)
    steps = sorted(by_step)
    ax.plot(steps, [sum(by_step[s]) / len(by_step[s]) for s in steps], linewidth=2, marker="o", markersize=4,
            label=label, **style)


def _seeds_text(seeds: Sequence[Any]) -> str:
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}"


def lasting_plot(lines: Sequence[tuple[str, float, bool, Sequence[Sequence[tuple[int, float]]]]], path: Path) -> Path:
    """Learning curves at several budgets: per (name, factor, is_baseline, per-seed curves of (step, mAP) ending at the
    final step), each seed a thin line and the mean over seeds a thick one; the baseline red, the other point blue,
    the longest budget solid and shorter ones dashed."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    longest = max(factor for _, factor, _, _ in lines)
    for name, factor, base, seeds in lines:
        _seed_lines(ax, seeds, f"{name}, {factor:g}x ({_seeds_text(seeds)})", color="tab:red" if base else "tab:blue",
                    linestyle="-" if factor == longest else "--")
    ax.set(xlabel="training step", ylabel=_axis("map"), title="Does it last? Learning curves at two budgets")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def retraining_curves_plot(lines: Sequence[tuple[str, bool, Sequence[Sequence[tuple[int, float]]]]], label: str,
                           path: Path) -> Path:
    """The retrained points' learning curves at one budget: per (name, is_baseline, per-seed curves of (step, mAP)
    ending at the final step), each seed thin and the mean thick; the baseline red, each other point its own colour."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    others = iter(c for c in plt.rcParams["axes.prop_cycle"].by_key()["color"] if c not in ("#d62728",))
    for name, base, seeds in lines:
        _seed_lines(ax, seeds, f"{name} ({_seeds_text(seeds)})", color="tab:red" if base else next(others, "grey"))
    ax.set(xlabel="training step", ylabel=_axis("map"), title=f"Against {label}: learning curves of the retraining")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)
