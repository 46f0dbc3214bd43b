"""One study's sections of a report: facts, accuracy vs cost, fronts, best per budget, hypervolume,
importances, seed repeats and topology comparison. Numbers come from ``pareto``, ``stats`` and
``importance``; figures from ``plots``; the text only arranges them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from scalesearch import pareto
from scalesearch.metrics import get_metric
from scalesearch.report import plots, stats
from scalesearch.report.doc import Document
from scalesearch.report.format import cell, fmt_count, fmt_map, fmt_std
from scalesearch.report.importance import importances
from scalesearch.report.runs import Run
from scalesearch.report.status import command_line, machine_line, run_time_line, status_lines

_FRONT_COLUMNS = ("label", "topology", "fusion", "phi", "backbone", "resolution", "fpn_channels", "fpn_repeats",
                  "head_repeats", "seed")


def front_heading(objectives: pareto.Objectives = pareto.MAP_FLOPS) -> str:
    """``Pareto front (maximise mAP, minimise FLOPs)``, from the metric registry."""
    words = (f"{get_metric(m).direction.removesuffix('ze')}se {get_metric(m).label}" for m in objectives)
    return f"Pareto front ({', '.join(words)})"


class StudySections:
    """Adds one study's sections to the document; figures go to ``fig_dir`` with ``prefix``."""

    def __init__(self, doc: Document, fig_dir: Path, colors: dict[str, Any], ref_flops: float | None):
        self.doc, self.fig_dir, self.colors, self.ref_flops = doc, fig_dir, colors, ref_flops

    def study(self, run: Run, prefix: str) -> None:
        doc = self.doc
        doc.heading(1, f"Study `{run.name}`")
        self.about(run)
        for line in status_lines(run):
            doc.para(line)
        if not run.records:
            return
        if any(isinstance(r.get("flops"), (int, float)) for r in run.records):
            self.scatter(run, prefix)
        self.front_tables(run)
        self.budget_table(run)
        self.hypervolume(run, prefix)
        self.importance(run, prefix)
        self.repeats(run, prefix)

    def about(self, run: Run) -> None:
        dataset = run.dataset or "built-in synthetic data"
        rows = [["run folder", f"`{run.path}`"], ["dataset", f"`{dataset}`"], ["machine", machine_line(run)],
                ["run time", run_time_line(run)],
                ["FLOPs budgets", ", ".join(fmt_count(b) for b in run.budgets) or "none"]]
        if run.params_budget:
            rows.append(["params budget", fmt_count(run.params_budget)])
        self.doc.table(["", ""], rows)
        self.doc.para("Command:")
        self.doc.code(command_line(run))

    def scatter(self, run: Run, prefix: str) -> None:
        doc, n_base = self.doc, len(run.baselines)
        doc.heading(2, "Accuracy vs cost")
        note = f" Gold stars: the paper's scaling rule ({n_base} trials)." if n_base else ""
        for cost in ("flops", "params"):
            budgets = run.budgets if cost == "flops" else [b for b in [run.params_budget] if b]
            path = plots.scatter_front(run.records, cost, self.fig_dir / f"{prefix}map_{cost}.png",
                                       self.colors, budgets, f"{run.name}: mAP vs {cost}", run.baselines)
            doc.figure(path, f"mAP vs {cost} for every trial, coloured by topology; black: Pareto front, "
                             f"dashed: per-topology fronts{', dotted red: budgets' if budgets else ''}.{note}")

    def front_tables(self, run: Run) -> None:
        doc = self.doc
        front = pareto.pareto_front(run.records)
        doc.heading(2, front_heading())
        doc.para(f"{len(front)} non-dominated feasible trial(s) out of {len(run.feasible)} feasible; "
                 "trials with exactly equal mAP and FLOPs are all listed.")
        if front:
            cols = [c for c in _FRONT_COLUMNS if any(r.get(c) is not None for r in front)]
            doc.table(["trial", *cols, "FLOPs", "params", "mAP", "mAP50"],
                      [[r.number, *(cell(r.get(c)) for c in cols), fmt_count(r.flops),
                        fmt_count(r.params), fmt_map(r.get("map")), fmt_map(r.get("map50"))] for r in front])
        fronts = pareto.fronts_by(run.records)
        if len(fronts) > 1:
            doc.heading(3, "Front per topology")
            doc.table(["topology", "front trials", "FLOPs range", "best mAP"],
                      [[t, ", ".join(str(r.number) for r in f),
                        f"{fmt_count(f[0].flops)} - {fmt_count(f[-1].flops)}",
                        fmt_map(max(r.get("map") for r in f))] for t, f in fronts.items()])

    def budget_table(self, run: Run) -> None:
        doc = self.doc
        budgets = run.budgets or [math.inf]
        best = [pareto.best_under_budget(run.records, b) for b in budgets]
        doc.heading(2, "Best architecture under each budget")
        if not any(best):
            doc.para("No feasible trial fits any budget.")
            return
        sampled = sorted({k for r in best if r for k in (r.params_sampled)})
        fields = [k for k in dict.fromkeys((*pareto.SPEC_FIELDS, "phi", *sampled)) if any(r and r.get(k) is not None for r in best)]
        header = ["", *("no budget" if math.isinf(b) else f"<= {fmt_count(b)} FLOPs" for b in budgets)]
        rows = [["trial", *(r.number if r else "none fits" for r in best)],
                ["mAP", *(fmt_map(r.get("map")) if r else "-" for r in best)],
                ["FLOPs", *(fmt_count(r.flops) if r else "-" for r in best)],
                ["params", *(fmt_count(r.params) if r else "-" for r in best)]]
        groups = {g.group: g for g in pareto.aggregate_repeats(run.records)}
        if pareto.has_repeats(groups.values()):
            spread = (groups[pareto.group_key(r)] if r else None for r in best)
            rows.append(["mAP over seeds (mean ± std, n)",
                         *(f"{g.map_mean:.4f} ± {fmt_map(g.map_std)}, n={g.n}" if g else "-" for g in spread)])
        rows += [[k, *(cell(r.get(k)) if r else "-" for r in best)] for k in fields]
        base = [r for r in run.records if r.number in run.baselines]
        if base:
            paper = [pareto.best_under_budget(base, b) for b in budgets]
            cells = (f"#{r.number}, {fmt_map(r.get('map'))}" if r else "-" for r in paper)
            rows.append(["paper rule: best (trial, mAP)", *cells])
        doc.table(header, rows)

    def hypervolume(self, run: Run, prefix: str) -> None:
        doc = self.doc
        doc.heading(2, "Search progress (hypervolume)")
        if self.ref_flops is None:
            doc.para("No feasible trial and no budget: hypervolume is undefined.")
            return
        history = pareto.hypervolume_history(run.records, self.ref_flops)
        path = plots.hypervolume_plot({run.name: history}, self.fig_dir / f"{prefix}hypervolume.png")
        doc.para(f"Final hypervolume {history[-1][1]:.4f} (area in the log10 FLOPs x mAP plane, reference point "
                 f"FLOPs = {fmt_count(self.ref_flops)}, mAP = 0).")
        doc.figure(path, "Hypervolume of the mAP/FLOPs front after each trial.")

    def importance(self, run: Run, prefix: str) -> None:
        doc = self.doc
        doc.heading(2, "Parameter importances")
        values, note = importances(run.records)
        doc.para(note)
        if not values:
            return
        params = sorted({p for v in values.values() for p in v})
        doc.table(["parameter", *values], [[p, *(f"{v.get(p, 0.0):.3f}" for v in values.values())] for p in params])
        doc.figure(plots.importance_plot(values, self.fig_dir / f"{prefix}importance.png"),
                   "PED-ANOVA importance of each sampled parameter for reaching the Pareto front and a high mAP.")
        doc.figure(plots.slice_plot(run.records, params, self.fig_dir / f"{prefix}slice.png", self.colors),
                   "Slice view: mAP against each sampled parameter, coloured by topology.")

    def repeats(self, run: Run, prefix: str) -> None:
        groups = pareto.aggregate_repeats(run.records)
        if not pareto.has_repeats(groups):
            return
        doc = self.doc
        doc.heading(2, "Seed repeats")
        doc.table(["point", "n", "seeds", "FLOPs", "mAP mean", "std", "min", "max"],
                  [[g.group, g.n, cell(g.seeds), fmt_count(g.flops), fmt_map(g.map_mean),
                    fmt_map(g.map_std), fmt_map(g.map_min), fmt_map(g.map_max)] for g in groups])
        doc.figure(plots.repeats_plot(groups, self.fig_dir / f"{prefix}repeats.png", self.colors),
                   "Mean mAP per repeated point, error bars one standard deviation over seeds.")
        self.significance(run)

    def significance(self, run: Run) -> None:
        doc = self.doc
        tests = stats.compare_topologies(run.records)
        doc.heading(2, "Topology comparison beyond seed noise")
        doc.para(stats.METHOD)
        if not tests:
            doc.para("No two topologies were run at the same scaling point, so none can be compared.")
            return
        rows = [[f"{t.a} vs {t.b}", r.rung, f"{r.a.mean():.4f} ± {fmt_std(r.a)} (n={len(r.a)})",
                 f"{r.b.mean():.4f} ± {fmt_std(r.b)} (n={len(r.b)})", f"{r.flops_a / r.flops_b:.3f}",
                 "-" if math.isnan(r.p_welch) else f"{r.p_welch:.3g}"] for t in tests for r in t.rungs]
        doc.table(["pair", "rung", "mAP A (mean ± std)", "mAP B", "FLOPs A/B", "Welch p"], rows)
        doc.table(["pair", "rungs", "D = mean(A - B)", "permutation p", "verdict"],
                  [[f"{t.a} vs {t.b}", len(t.rungs), f"{t.diff:+.4f}", t.p_text, t.summary] for t in tests])
        doc.table(["paper Table 5 (COCO val AP)", "AP"],
                  [[stats.TABLE5_NAMES[k], v] for k, v in stats.TABLE5.items()])
        for t in tests:
            doc.para(stats.paper_sentence(t))
