"""The "Accuracy vs latency" section: mAP against the measured latency (``latency_ms``, recorded per trial
when a study's objective or budget names a latency metric), the mAP/latency Pareto front beside the
mAP/FLOPs front, and which trials leave or join the front when cost is time instead of FLOPs. Reads the
records only; nothing is timed here. When latency is the study's own objective, ``report.study`` puts these
pieces first instead (``figure``, ``front_table``, ``budget_line``; ``front_change`` beside the FLOPs front)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scalesearch import pareto
from scalesearch.report import plots
from scalesearch.report.doc import Document
from scalesearch.report.format import distinct_front, distinct_sentence, field_cell, fmt_count, fmt_map, front_heading
from scalesearch.report.runs import Run
from scalesearch.report.status import machine_line

MAP_LATENCY: pareto.Objectives = ("map", "latency_ms")
_COLUMNS = ("topology", "fusion", "activation", "phi", "resolution", "fpn_channels", "fpn_repeats", "head_repeats",
            "seed")


def _ms(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) else "-"


def has_latency(run: Run) -> bool:
    return any(isinstance(r.get("latency_ms"), (int, float)) for r in run.records)


def settings_line(run: Run) -> str:
    """How the latencies were measured: the study's ``latency`` settings and the run's machine."""
    s = run.config.latency if run.config else None
    how = (f"{s.runtime}, {s.threads} thread(s), batch {s.batch}, {s.warmup} warm-up + {s.runs} timed runs"
           if s else "settings not recorded")
    return (f"Latency: median total time (network + decode + NMS) per call, {how}, on {machine_line(run)} "
            "(protocol: `scalesearch.measure.latency`).")


def budget(run: Run) -> float | None:
    """The study's latency budget (ms), if it has one."""
    return run.config.budgets.latency_ms if run.config else None


def timed(run: Run) -> list[Any]:
    """The feasible trials with a measured latency."""
    return [r for r in pareto.feasible(run.records) if isinstance(r.get("latency_ms"), (int, float))]


def add_section(doc: Document, run: Run, fig_dir: Path, prefix: str, colors: dict[str, Any]) -> None:
    """The section, when the run's records carry a measured latency; nothing otherwise."""
    if not has_latency(run):
        return
    doc.heading(2, "Accuracy vs latency")
    doc.para(settings_line(run))
    figure(doc, run, fig_dir, prefix, colors)
    front = pareto.pareto_front(timed(run), MAP_LATENCY)
    doc.heading(3, front_heading(MAP_LATENCY))
    front_table(doc, front)
    doc.para(front_change(timed(run)))
    budget_line(doc, run)


def figure(doc: Document, run: Run, fig_dir: Path, prefix: str, colors: dict[str, Any]) -> None:
    """mAP vs latency for every trial (``plots.scatter_front``), with the latency budget when there is one."""
    limit = budget(run)
    path = plots.scatter_front(run.records, "latency_ms", fig_dir / f"{prefix}map_latency.png", colors,
                               [limit] if limit else [], f"{run.name}: mAP vs latency", run.baselines)
    doc.figure(path, "mAP vs latency (ms) for every trial, one colour and marker per topology; black: Pareto front"
                     f"{plots.pruned_note(run.records)}{', dotted red: the latency budget' if limit else ''}.")


def front_table(doc: Document, front: list[Any]) -> None:
    """The mAP/latency front, one row per trial: its architecture, latencies (ms), FLOPs and mAP; with the
    per-block table in play, where each latency came from and the table's prediction beside a measurement."""
    everything = list(front)
    front, again = distinct_front(front)
    if len(front) < len(everything):
        doc.para(f"{len(everything)} trial(s) on this front{distinct_sentence(everything, front)}.")
    cols = [c for c in _COLUMNS if any(r.get(c) is not None for r in front)]
    if len(front) > 1:  # what every row shares is said once, so the table fits a page beside its new columns
        same = [c for c in cols if len({repr(r.get(c)) for r in front}) == 1]
        if same:
            doc.para("Same in every row: " + ", ".join(f"{c} {field_cell(c, front[0].get(c))}" for c in same) + ".")
        cols = [c for c in cols if c not in same]
    tabled = any(r.get("latency_source") == "table" or r.get("latency_table_ms") is not None for r in front)
    extra = ["source", "table (ms)"] if tabled else []
    dup = ["proposed again"] if again else []
    doc.table(["trial", *cols, "latency (ms)", *extra, "IQR (ms)", "network (ms)", "post (ms)", "FLOPs", "mAP", *dup],
              [[r.number, *(field_cell(c, r.get(c)) for c in cols), _ms(r.latency_ms),
                *([r.get("latency_source") or "-", _ms(r.get("latency_table_ms"))] if tabled else []),
                _ms(r.latency_iqr_ms), _ms(r.latency_network_ms), _ms(r.latency_post_ms), fmt_count(r.flops),
                fmt_map(r.get("map")), *([again.get(r.number, 0)] if dup else [])]
               for r in front])
    line = table_line(front)
    if line:
        doc.para(line)


def table_line(records: list[Any]) -> str:
    """How the per-block table's predictions compare with the protocol, on the trials that have both (the final
    front's points, measured after the search): Kendall tau-b and mean absolute percentage error; "" when no
    trial has both."""
    both = [r for r in distinct_front(records)[0] if r.get("latency_source") == "measured"
            and isinstance(r.get("latency_table_ms"), (int, float)) and isinstance(r.get("latency_ms"), (int, float))]
    if not both:
        return ""
    table = [float(r.latency_table_ms) for r in both]
    measured = [float(r.latency_ms) for r in both]
    mape = 100 * sum(abs(t - m) / m for t, m in zip(table, measured)) / len(both)
    text = (f"Latency source: every trial's latency was first the per-block table's prediction (`latency.table`); "
            f"the {len(both)} distinct point(s) above were then measured by the protocol (`latency` column; the table's "
            f"prediction beside it): mean absolute error {mape:.1f} %")
    if len(both) >= 3 and len(set(measured)) > 1 and len(set(table)) > 1:
        from scipy.stats import kendalltau

        tau, p = kendalltau(table, measured)
        text += f", Kendall tau-b {tau:.3f} (p {p:.2g}, n {len(both)})"
    return text + "."


def budget_line(doc: Document, run: Run) -> None:
    """The best trial under the latency budget, when the study has one."""
    limit = budget(run)
    if limit:
        best = pareto.best_under_budget(timed(run), limit, cost="latency_ms")
        doc.para(f"Best under the latency budget {limit:g} ms: " + (
            f"trial {best.number}, mAP {fmt_map(best.get('map'))}, {_ms(best.latency_ms)} ms" if best else "none fits."))


def front_change(records: list[Any]) -> str:
    """Which trials leave and which join the front when the cost axis is latency instead of FLOPs, each with
    what it is and what it costs, so the reason shows (e.g. the same FLOPs, a slower activation)."""
    by_flops = {r.number for r in pareto.pareto_front(records)}
    by_time = {r.number for r in pareto.pareto_front(records, MAP_LATENCY)}
    left, joined = sorted(by_flops - by_time), sorted(by_time - by_flops)
    if not left and not joined:
        return f"The mAP/latency front holds the same {len(by_time)} trial(s) as the mAP/FLOPs front."
    by_number = {r.number: r for r in records}

    def describe(numbers: list[int]) -> str:
        if not numbers:
            return "none"
        what = {n: " ".join(field_cell(k, by_number[n].get(k)) for k in ("topology", "fusion", "activation"))
                for n in numbers}
        return "; ".join(f"trial {n} ({what[n]}, "
                         f"{fmt_count(by_number[n].flops)} FLOPs, {_ms(by_number[n].latency_ms)} ms, mAP "
                         f"{fmt_map(by_number[n].get('map'))})" for n in numbers)

    return (f"With latency instead of FLOPs as the cost ({len(by_flops)} trials on the mAP/FLOPs front, "
            f"{len(by_time)} on the mAP/latency front): leave the front: {describe(left)}. Join it: {describe(joined)}.")