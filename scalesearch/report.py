"""Study reports: ``report.md`` + PNG figures + a self-contained ``report.html``, from run folders.

Everything comes from the run folders' records, meta.json and study.yaml (``report_runs``);
fronts and hypervolumes from ``pareto``; statistics from ``report_stats``; figures from
``report_plots``. The report answers "which architecture should I use under my FLOPs budget, and
how sure are we?" and says plainly when a study is empty, crashed or has nothing feasible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scalesearch import pareto, report_fidelity, report_plots, report_stats
from scalesearch.report_doc import Document, Para, render_html, render_markdown
from scalesearch.report_runs import Run, command_line, load_run, machine_line, run_time_line, status_lines

Record = dict[str, Any]
_FRONT_COLUMNS = ("label", "topology", "fusion", "phi", "backbone", "resolution", "fpn_channels", "fpn_repeats",
                  "head_repeats", "seed")


def fmt_count(value: Any) -> str:
    """2.571e9 -> '2.571 G'; None -> '-'."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "-"
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3f} {unit}"
    return f"{value:g}"


def fmt_map(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    return "-" if value is None else str(value)


class _Builder:
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
        dataset = (run.config.get("dataset") or {}).get("path") or "built-in synthetic data"
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
            path = report_plots.scatter_front(run.records, cost, self.fig_dir / f"{prefix}map_{cost}.png",
                                              self.colors, budgets, f"{run.name}: mAP vs {cost}", run.baselines)
            doc.figure(path, f"mAP vs {cost} for every trial, coloured by topology; black: Pareto front, "
                             f"dashed: per-topology fronts{', dotted red: budgets' if budgets else ''}.{note}")

    def front_tables(self, run: Run) -> None:
        doc = self.doc
        front = pareto.pareto_front(run.records)
        doc.heading(2, "Pareto front (maximise mAP, minimise FLOPs)")
        doc.para(f"{len(front)} non-dominated feasible trial(s) out of {len(run.feasible)} feasible; "
                 "trials with exactly equal mAP and FLOPs are all listed.")
        if front:
            cols = [c for c in _FRONT_COLUMNS if any(r.get(c) is not None for r in front)]
            doc.table(["trial", *cols, "FLOPs", "params", "mAP", "mAP50"],
                      [[r["number"], *(_cell(r.get(c)) for c in cols), fmt_count(r["flops"]),
                        fmt_count(r["params"]), fmt_map(r["map"]), fmt_map(r.get("map50"))] for r in front])
        fronts = pareto.fronts_by(run.records)
        if len(fronts) > 1:
            doc.heading(3, "Front per topology")
            doc.table(["topology", "front trials", "FLOPs range", "best mAP"],
                      [[t, ", ".join(str(r["number"]) for r in f),
                        f"{fmt_count(f[0]['flops'])} - {fmt_count(f[-1]['flops'])}",
                        fmt_map(max(r["map"] for r in f))] for t, f in fronts.items()])

    def budget_table(self, run: Run) -> None:
        doc = self.doc
        budgets = run.budgets or [math.inf]
        best = [pareto.best_under_budget(run.records, b) for b in budgets]
        doc.heading(2, "Best architecture under each budget")
        if not any(best):
            doc.para("No feasible trial fits any budget.")
            return
        sampled = sorted({k for r in best if r for k in (r.get("params_sampled") or {})})
        fields = [k for k in dict.fromkeys((*pareto.SPEC_FIELDS, "phi", *sampled)) if any(r and k in r for r in best)]
        header = ["", *("no budget" if math.isinf(b) else f"<= {fmt_count(b)} FLOPs" for b in budgets)]
        rows = [["trial", *(r["number"] if r else "none fits" for r in best)],
                ["mAP", *(fmt_map(r["map"]) if r else "-" for r in best)],
                ["FLOPs", *(fmt_count(r["flops"]) if r else "-" for r in best)],
                ["params", *(fmt_count(r["params"]) if r else "-" for r in best)]]
        groups = {g["group"]: g for g in pareto.aggregate_repeats(run.records)}
        if pareto.has_repeats(groups.values()):
            spread = (groups[pareto.group_key(r)] if r else None for r in best)
            rows.append(["mAP over seeds (mean ± std, n)",
                         *(f"{g['map_mean']:.4f} ± {fmt_map(g['map_std'])}, n={g['n']}" if g else "-" for g in spread)])
        rows += [[k, *(_cell(r.get(k)) if r else "-" for r in best)] for k in fields]
        base = [r for r in run.records if r["number"] in run.baselines]
        if base:
            paper = [pareto.best_under_budget(base, b) for b in budgets]
            cells = (f"#{r['number']}, {fmt_map(r['map'])}" if r else "-" for r in paper)
            rows.append(["paper rule: best (trial, mAP)", *cells])
        doc.table(header, rows)

    def hypervolume(self, run: Run, prefix: str) -> None:
        doc = self.doc
        doc.heading(2, "Search progress (hypervolume)")
        if self.ref_flops is None:
            doc.para("No feasible trial and no budget: hypervolume is undefined.")
            return
        history = pareto.hypervolume_history(run.records, self.ref_flops)
        path = report_plots.hypervolume_plot({run.name: history}, self.fig_dir / f"{prefix}hypervolume.png")
        doc.para(f"Final hypervolume {history[-1][1]:.4f} (area in the log10 FLOPs x mAP plane, reference point "
                 f"FLOPs = {fmt_count(self.ref_flops)}, mAP = 0).")
        doc.figure(path, "Hypervolume of the mAP/FLOPs front after each trial.")

    def importance(self, run: Run, prefix: str) -> None:
        doc = self.doc
        doc.heading(2, "Parameter importances")
        values, note = report_stats.importances(run.records)
        doc.para(note)
        if not values:
            return
        params = sorted({p for v in values.values() for p in v})
        doc.table(["parameter", *values], [[p, *(f"{v.get(p, 0.0):.3f}" for v in values.values())] for p in params])
        doc.figure(report_plots.importance_plot(values, self.fig_dir / f"{prefix}importance.png"),
                   "PED-ANOVA importance of each sampled parameter for reaching the Pareto front and a high mAP.")
        doc.figure(report_plots.slice_plot(run.records, params, self.fig_dir / f"{prefix}slice.png", self.colors),
                   "Slice view: mAP against each sampled parameter, coloured by topology.")

    def repeats(self, run: Run, prefix: str) -> None:
        groups = pareto.aggregate_repeats(run.records)
        if not pareto.has_repeats(groups):
            return
        doc = self.doc
        doc.heading(2, "Seed repeats")
        doc.table(["point", "n", "seeds", "FLOPs", "mAP mean", "std", "min", "max"],
                  [[g["group"], g["n"], _cell(g["seeds"]), fmt_count(g["flops"]), fmt_map(g["map_mean"]),
                    fmt_map(g["map_std"]), fmt_map(g["map_min"]), fmt_map(g["map_max"])] for g in groups])
        doc.figure(report_plots.repeats_plot(groups, self.fig_dir / f"{prefix}repeats.png", self.colors),
                   "Mean mAP per repeated point, error bars one standard deviation over seeds.")
        self.significance(run)

    def significance(self, run: Run) -> None:
        doc = self.doc
        tests = report_stats.compare_topologies(run.records)
        doc.heading(2, "Topology comparison beyond seed noise")
        doc.para(report_stats.METHOD)
        if not tests:
            doc.para("No two topologies were run at the same scaling point, so none can be compared.")
            return
        rows = [[f"{t.a} vs {t.b}", r.rung, f"{r.a.mean():.4f} ± {_std(r.a)} (n={len(r.a)})",
                 f"{r.b.mean():.4f} ± {_std(r.b)} (n={len(r.b)})", f"{r.flops_a / r.flops_b:.3f}",
                 "-" if math.isnan(r.p_welch) else f"{r.p_welch:.3g}"] for t in tests for r in t.rungs]
        doc.table(["pair", "rung", "mAP A (mean ± std)", "mAP B", "FLOPs A/B", "Welch p"], rows)
        doc.table(["pair", "rungs", "D = mean(A - B)", "permutation p", "verdict"],
                  [[f"{t.a} vs {t.b}", len(t.rungs), f"{t.diff:+.4f}", f"{t.p_value:.3g}" + ("" if t.exact else " (MC)"),
                    t.summary]
                   for t in tests])
        doc.table(["paper Table 5 (COCO val AP)", "AP"],
                  [[report_stats.TABLE5_NAMES[k], v] for k, v in report_stats.TABLE5.items()])
        for t in tests:
            doc.para(report_stats.paper_sentence(t))


def _std(values) -> str:
    return f"{values.std(ddof=1):.4f}" if len(values) > 1 else "-"


def _comparison(doc: Document, runs: Sequence[Run], fig_dir: Path, ref_flops: float | None) -> None:
    doc.heading(1, "Comparison of studies")
    labels = {f"{i}: {r.name}": r.records for i, r in enumerate(runs)}
    budgets = sorted({b for r in runs for b in r.budgets}) or [math.inf]
    header = ["study", "dataset", "trials", "feasible", "front size", "hypervolume",
              *("best mAP (no budget)" if math.isinf(b) else f"best mAP <= {fmt_count(b)}" for b in budgets)]
    rows = []
    for label, run in zip(labels, runs):
        hv = pareto.study_hypervolume(run.records, ref_flops) if ref_flops else float("nan")
        best = [pareto.best_under_budget(run.records, b) for b in budgets]
        rows.append([label, (run.config.get("dataset") or {}).get("path") or "synthetic", len(run.records),
                     len(run.feasible), len(pareto.pareto_front(run.records)), f"{hv:.4f}",
                     *(f"{fmt_map(r['map'])} (#{r['number']})" if r else "-" for r in best)])
    doc.table(header, rows)
    verdicts = [[label, f"{t.a} vs {t.b}", f"{t.diff:+.4f}", f"{t.p_value:.3g}", t.summary, t.agreement]
                for label, run in zip(labels, runs) if pareto.has_repeats(pareto.aggregate_repeats(run.records))
                for t in report_stats.compare_topologies(run.records)]
    if verdicts:
        doc.para("Topologies at matched rungs, per study (details and method in each study's section); "
                 "the last column compares with the paper's Table 5 ordering BiFPN > PANet > FPN.")
        doc.table(["study", "pair", "D = mean(A - B)", "permutation p", "verdict", "paper Table 5"], verdicts)
    doc.para(f"Hypervolumes share one reference point (FLOPs = {fmt_count(ref_flops)}, mAP = 0).")
    doc.figure(report_plots.compare_fronts(labels, fig_dir / "compare_fronts.png"), "Pareto front of each study.")
    histories = {k: pareto.hypervolume_history(v, ref_flops) for k, v in labels.items()} if ref_flops else {}
    if any(histories.values()):
        doc.figure(report_plots.hypervolume_plot(histories, fig_dir / "compare_hypervolume.png"),
                   "Hypervolume over trial number, per study.")


def build_report(runs: Sequence[Run], out_dir: Path) -> Document:
    """The whole document; figures are written under ``out_dir/figures``."""
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    records = [r for run in runs for r in run.records]
    ref_flops = pareto.reference_flops(records, [b for run in runs for b in run.budgets])
    colors = report_plots.topology_colors(str(r.get("topology")) for r in records)
    doc = Document("Report: " + ", ".join(r.name for r in runs))
    if len(runs) > 1:
        _comparison(doc, runs, fig_dir, ref_flops)
    builder = _Builder(doc, fig_dir, colors, ref_flops)
    for i, run in enumerate(runs):
        builder.study(run, f"run{i}_" if len(runs) > 1 else "")
    return doc


def write_report(run_dirs: Sequence[str | Path], out_dir: str | Path, *, fidelity: tuple[int, float] | None = None,
                 trainer: report_fidelity.Trainer | None = None, command: str | None = None) -> Path:
    """Write ``report.md``, ``report.html`` and ``figures/*.png`` to ``out_dir``; returns report.md.

    ``fidelity`` = (k, minutes) retrains each study's k best specs for that long (``report_fidelity``);
    ``trainer`` replaces the real training there (tests); ``command`` is the report's own command line.
    """
    import datetime as dt

    runs = [load_run(p) for p in run_dirs]
    out = Path(out_dir)
    doc = build_report(runs, out)
    made = f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
    doc.blocks.insert(0, Para(f"Written {made} by `{command}`." if command else f"Written {made}."))
    if fidelity is not None:
        k, minutes = fidelity
        doc.heading(1, "Proxy fidelity")
        for run in runs:
            rows = report_fidelity.retrain(run, k, minutes, trainer)
            report_fidelity.add_section(doc, run, rows, minutes, out)
    (out / "report.md").write_text(render_markdown(doc, out))
    (out / "report.html").write_text(render_html(doc))
    return out / "report.md"
