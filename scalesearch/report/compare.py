"""The "Comparison of studies" section of a report over several run folders: one row per study,
topology verdicts side by side, and every study's front and hypervolume on shared axes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from scalesearch import pareto
from scalesearch.report import plots, stats
from scalesearch.report.doc import Document
from scalesearch.report.format import fmt_count, fmt_map, topology_cell
from scalesearch.report.runs import Run


def comparison(doc: Document, runs: Sequence[Run], fig_dir: Path, ref_flops: float | None) -> None:
    doc.heading(1, "Comparison of studies")
    labels = {f"{i}: {r.name}": r.records for i, r in enumerate(runs)}
    budgets = sorted({b for r in runs for b in r.budgets}) or [math.inf]
    header = ["study", "dataset", "trials", "feasible", "front size", "hypervolume",
              *("best mAP (no budget)" if math.isinf(b) else f"best mAP <= {fmt_count(b)}" for b in budgets)]
    rows = []
    for label, run in zip(labels, runs):
        hv = pareto.study_hypervolume(run.records, ref_flops) if ref_flops else float("nan")
        best = [pareto.best_under_budget(run.records, b) for b in budgets]
        rows.append([label, run.dataset or "synthetic", len(run.records),
                     len(run.feasible), len(pareto.pareto_front(run.records)), f"{hv:.4f}",
                     *(f"{fmt_map(r.get('map'))} (#{r.number})" if r else "-" for r in best)])
    doc.table(header, rows)
    verdicts = [[label, f"{topology_cell(t.a)} vs {topology_cell(t.b)}", f"{t.diff:+.4f}", f"{t.test_name} {t.p_text}",
                 t.holm_text, t.summary, t.agreement]
                for label, run in zip(labels, runs) if pareto.has_repeats(pareto.aggregate_repeats(run.records))
                for t in stats.compare_topologies(run.records, stats.settings(run.config)[0])]
    if verdicts:
        doc.para("Topologies at matched rungs, per study (details and method in each study's section); each study's "
                 "pairs are one family, Holm-adjusted, and the verdict is the one after correction; the last column "
                 "compares with the paper's Table 5 ordering BiFPN > PANet > FPN.")
        doc.table(["study", "pair", "D = mean(A - B)", "test p", "Holm p", "verdict", "paper Table 5"], verdicts)
    doc.para(f"Hypervolumes share one reference point (FLOPs = {fmt_count(ref_flops)}, mAP = 0).")
    doc.figure(plots.compare_fronts(labels, fig_dir / "compare_fronts.png"), "Pareto front of each study.")
    histories = {k: pareto.hypervolume_history(v, ref_flops) for k, v in labels.items()} if ref_flops else {}
    if any(histories.values()):
        doc.figure(plots.hypervolume_plot(histories, fig_dir / "compare_hypervolume.png"),
                   "Hypervolume over trial number, per study.")
