"""One study's sections of a report: facts; the study's own objectives first (scatter, front and hypervolume of
its objective pair, e.g. mAP vs latency); a legend of the generated topologies with drawings of those on a
front; the FLOPs/params views when they are not the objectives; best per budget, importances, seed repeats
and topology comparison. Numbers come from ``pareto``, ``stats`` and ``importance``; figures from ``plots``;
the text only arranges them."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from scalesearch import pareto
from scalesearch.metrics import get_metric
from scalesearch.report import latency, plots, stats
from scalesearch.report.doc import Document
from scalesearch.report.format import (cell, distinct_front, distinct_sentence, field_cell, fmt_count, fmt_map, fmt_std,
                                       front_heading, point_cell,
                                       topology_cell)
from scalesearch.report.importance import importances
from scalesearch.report.runs import Run
from scalesearch.report.status import command_line, machine_line, run_time_line, status_lines
from scalesearch.report.tables import LIMIT, long_table, numbers_cell, write_trials
from scalesearch.topology_names import DIGITS, is_generated

__all__ = ["StudySections", "front_heading", "objective_pair"]

_FRONT_COLUMNS = ("label", "topology", "fusion", "phi", "backbone", "resolution", "fpn_channels", "fpn_repeats",
                  "head_repeats", "seed")
_TRIAL_COLUMNS = ("topology", "fusion", "activation", "phi", "backbone", "resolution", "fpn_channels", "fpn_repeats",
                  "head_repeats", "seed")
MANY_TRIALS = 100  # past this, a study gets a table of the trials that matter, and every trial in trials.csv
TOP = 20  # the best trials by mAP that table lists beside the front and the labelled ones
AGAIN = 10  # points trained again with a seed they had, named before the rest are counted


def objective_pair(run: Run) -> pareto.Objectives:
    """The study's own (accuracy, cost) pair: mAP and its minimised objective (``objectives`` in study.yaml, e.g.
    ``latency_ms``); FLOPs when it has none (a mAP-only study) or no study.yaml."""
    metrics = [o.metric for o in run.config.objectives] if run.config else []
    return ("map", next((m for m in metrics if not get_metric(m).maximize), "flops"))


def _fmt_cost(cost: str, value: float) -> str:
    return f"{value:.2f} ms" if get_metric(cost).unit == "ms" else fmt_count(value)


class StudySections:
    """Adds one study's sections to the document; figures go to ``fig_dir`` with ``prefix``."""

    def __init__(self, doc: Document, fig_dir: Path, colors: dict[str, Any], ref_flops: float | None):
        self.doc, self.fig_dir, self.colors, self.ref_flops = doc, fig_dir, colors, ref_flops
        self.out = fig_dir.parent  # the report's folder: CSV files of long tables go beside report.md
        self.written: set[Path] = set()

    def trials_csv(self, run: Run, prefix: str) -> str:
        """``trials.csv`` (every trial of ``run``, ``tables.write_trials``) beside the report, written once;
        returns its name."""
        path = self.out / f"{prefix}trials.csv"
        if path not in self.written:
            write_trials(run.records, path)
            self.written.add(path)
        return path.name

    def study(self, run: Run, prefix: str) -> None:
        doc = self.doc
        doc.heading(1, f"Study `{run.name}`")
        self.about(run)
        for line in status_lines(run):
            doc.para(line)
        if not run.records:
            return
        pair = objective_pair(run)
        if pair != pareto.MAP_FLOPS:
            self.objective_views(run, prefix, pair)
            self.topologies(run, prefix, pair)
        if any(isinstance(r.get("flops"), (int, float)) for r in run.records):
            self.scatter(run, prefix)
        self.front_tables(run, pair, prefix)
        self.best_trials(run, pair, prefix)
        self.budget_table(run)
        self.hypervolume(run, prefix)
        if pair == pareto.MAP_FLOPS:
            self.topologies(run, prefix, pair)
        self.importance(run, prefix)
        self.repeats(run, prefix)

    def latency(self, run: Run, prefix: str) -> None:
        """The "Accuracy vs latency" section, unless latency is the study's objective (then it came first)."""
        if objective_pair(run)[1] != "latency_ms":
            latency.add_section(self.doc, run, self.fig_dir, prefix, self.colors)

    def objective_views(self, run: Run, prefix: str, pair: pareto.Objectives) -> None:
        """The study's own objectives first: scatter, front (and per topology) and hypervolume of ``pair``."""
        doc, cost = self.doc, pair[1]
        doc.heading(2, f"Accuracy vs {get_metric(cost).label} (the study's objectives)")
        front = pareto.pareto_front(run.records, pair)
        if cost == "latency_ms":
            doc.para(latency.settings_line(run))
            latency.figure(doc, run, self.fig_dir, prefix, self.colors)
            doc.heading(3, front_heading(pair))
            latency.front_table(doc, front)
        else:
            budgets = [b for b in [getattr(run.config.budgets, cost, None) if run.config else None] if b]
            path = plots.scatter_front(run.records, cost, self.fig_dir / f"{prefix}map_{cost}.png", self.colors,
                                       budgets, f"{run.name}: mAP vs {get_metric(cost).label}", run.baselines)
            doc.figure(path, f"mAP vs {get_metric(cost).label} for every trial, one colour and marker per topology; "
                             f"black: Pareto front{plots.pruned_note(run.records)}.")
            doc.heading(3, front_heading(pair))
            self.front_table(front, cost)
        self.topology_fronts(run, pair, prefix)
        if cost == "latency_ms":
            latency.budget_line(doc, run)
        self.hypervolume(run, prefix, pair)

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
        pruned = plots.pruned_note(run.records)
        for cost in ("flops", "params"):
            budgets = run.budgets if cost == "flops" else [b for b in [run.params_budget] if b]
            path = plots.scatter_front(run.records, cost, self.fig_dir / f"{prefix}map_{cost}.png",
                                       self.colors, budgets, f"{run.name}: mAP vs {cost}", run.baselines)
            doc.figure(path, f"mAP vs {cost} for every trial, one colour and marker per topology; black: Pareto "
                             f"front, dashed: per-topology fronts{pruned}{', dotted red: budgets' if budgets else ''}."
                             f"{note}")

    def front_tables(self, run: Run, pair: pareto.Objectives = pareto.MAP_FLOPS, prefix: str = "") -> None:
        """The mAP/FLOPs front (after the study's own front when that is another pair, with what changes)."""
        doc = self.doc
        front = pareto.pareto_front(run.records)
        doc.heading(2, front_heading())
        kept, _ = distinct_front(front)
        doc.para(f"{len(front)} non-dominated feasible trial(s){distinct_sentence(front, kept)} out of "
                 f"{len(run.feasible)} feasible; trials with exactly equal mAP and FLOPs are all listed.")
        self.front_table(front, "flops")
        if pair == latency.MAP_LATENCY:
            doc.para(latency.front_change(latency.timed(run)))
        self.topology_fronts(run, pareto.MAP_FLOPS, prefix)

    def front_table(self, front: list, cost: str) -> None:
        """One row per distinct point of the front (``distinct_front``: duplicates counted in their original's row)."""
        if front:
            front, again = distinct_front(front)
            cols = [c for c in _FRONT_COLUMNS if any(r.get(c) is not None for r in front)]
            extra = [] if cost in ("flops", "params") else [cost]
            dup = ["proposed again"] if again else []
            self.doc.table(["trial", *cols, *(get_metric(c).label for c in extra), "FLOPs", "params", "mAP", "mAP50",
                            *dup],
                           [[r.number, *(field_cell(c, r.get(c)) for c in cols),
                             *(_fmt_cost(c, r.get(c)) for c in extra), fmt_count(r.flops),
                             fmt_count(r.params), fmt_map(r.get("map")), fmt_map(r.get("map50")),
                             *([again.get(r.number, 0)] if dup else [])] for r in front])

    def topology_fronts(self, run: Run, pair: pareto.Objectives, prefix: str = "") -> None:
        """One row per topology with a front: its front's trials, cost range and best mAP, by name; past ``LIMIT``
        topologies, those with the best mAP (every row in a CSV beside the report)."""
        cost = pair[1]
        fronts = pareto.fronts_by(run.records, "topology", pair)
        if len(fronts) > 1:
            label = get_metric(cost).label
            self.doc.heading(3, "Front per topology" + ("" if cost == "flops" else f" (mAP vs {label})"))
            ordered = sorted(fronts.items(), key=lambda item: topology_cell(item[0]))
            best = [max(r.get("map") for r in f) for _, f in ordered]
            rows = [[topology_cell(t), numbers_cell([r.number for r in f]),
                     f"{_fmt_cost(cost, f[0].get(cost))} - {_fmt_cost(cost, f[-1].get(cost))}", fmt_map(m)]
                    for (t, f), m in zip(ordered, best)]
            name = "fronts_by_topology" + ("" if cost == "flops" else f"_{cost}")
            long_table(self.doc, ["topology", "front trials", f"{label} range", "best mAP"], rows,
                       self.out / f"{prefix}{name}.csv", sorted(range(len(rows)), key=lambda i: -best[i]),
                       f"the {LIMIT} topologies with the best mAP", "topologies")

    def topologies(self, run: Run, prefix: str, pair: pareto.Objectives) -> None:
        """One legend of the generated topologies (short name -> graph) and a drawing of each on a front; past
        ``LIMIT`` topologies, those on a front first, then by best mAP (every row in a CSV beside the report)."""
        trials: dict[str, list[int]] = {}
        best: dict[str, float] = {}
        for r in run.records:
            if is_generated(str(r.get("topology"))):
                trials.setdefault(str(r.get("topology")), []).append(r.number)
                if pareto.is_feasible(r):
                    best[str(r.get("topology"))] = max(best.get(str(r.get("topology")), 0.0), r.get("map"))
        if not trials:
            return
        doc = self.doc
        names = sorted(trials, key=topology_cell)
        fronts = {str(r.get("topology")) for p in dict.fromkeys((pair, pareto.MAP_FLOPS))
                  for r in pareto.pareto_front(run.records, p)}
        doc.heading(2, "Generated topologies")
        doc.para(f"A topology generated by a family is named `gen-` and the first {DIGITS} hex digits of the SHA-256 "
                 "of its graph (`scalesearch.topology_names`), the same in every report. The graph reads "
                 "`NAME@P<min>-P<max>:` then each node as `P<level>=<input ids>`: with L levels, ids 0 to L - 1 "
                 "are the input feature maps from P<min> up and node i has id L + i (`scalesearch.topology`).")
        rank = sorted(range(len(names)), key=lambda i: (names[i] not in fronts, -best.get(names[i], 0.0), i))
        long_table(doc, ["name", "graph", "trials", "on a front"],
                   [[topology_cell(t), f"`{t}`", numbers_cell(trials[t]), "yes" if t in fronts else "no"]
                    for t in names], self.out / f"{prefix}generated_topologies.csv", rank,
                   f"the {LIMIT} on a front first, then those with the best mAP", "topologies")
        for t in (t for t in names if t in fronts):
            name = topology_cell(t)
            path = plots.topology_drawing(t, name, self.fig_dir / f"{prefix}topology_{name}.png")
            doc.figure(path, f"`{name}`: one row per level; column 0 the input feature maps, then one column per "
                             "node; orange: each level's output node.")

    def best_trials(self, run: Run, pair: pareto.Objectives, prefix: str) -> None:
        """Past ``MANY_TRIALS`` trials: one table of those that matter (the front over ``pair``, the ``TOP`` best by
        mAP, the labelled ones such as an enqueued baseline), best mAP first, and every trial in ``trials.csv``."""
        if len(run.records) <= MANY_TRIALS:
            return
        everything = pareto.pareto_front(run.records, pair)
        front, again = distinct_front(everything)  # a duplicate is counted in its original's row
        best = sorted(pareto.measurements(run.records), key=lambda r: (-r.get("map"), r.number))[:TOP]
        labelled = [r for r in run.records if r.label and not pareto.is_duplicate(r)]
        on_front = {r.number for r in front}
        chosen = sorted({r.number: r for r in (*front, *best, *labelled)}.values(),
                        key=lambda r: (-(r.get("map") if r.get("map") is not None else -1.0), r.number))
        cost = pair[1]
        cols = [c for c in _TRIAL_COLUMNS if len({repr(r.get(c)) for r in chosen}) > 1]  # what tells them apart
        extra = [] if cost in ("flops", "params") else [cost]
        doc = self.doc
        doc.heading(2, f"Trials: the front, the {TOP} best and the labelled")
        names = ", ".join(f"{r.label} (trial {r.number})" for r in labelled) or "none"
        doc.para(f"{len(chosen)} of {len(run.records)} trials: the {len(everything)} on the {front_heading(pair)}"
                 f"{distinct_sentence(everything, front)}, the "
                 f"{TOP} best by mAP (duplicates aside) and the labelled ones ({names}), best mAP first; the other "
                 f"{len(run.records) - len(chosen)} are left out here. Every trial, one row each from `trials.json`: "
                 f"`{self.trials_csv(run, prefix)}` beside this report.")
        doc.table(["trial", "label", "on the front", *cols, *(get_metric(k).label for k in extra), "FLOPs", "params",
                   "mAP", "state"],
                  [[r.number, r.label or "", "yes" if r.number in on_front else "", *(field_cell(c, r.get(c)) for c in cols),
                    *("-" if r.get(k) is None else _fmt_cost(k, r.get(k)) for k in extra), fmt_count(r.flops),
                    fmt_count(r.params), fmt_map(r.get("map")), r.state.value + (
                        f" (duplicate of {r.duplicate_of})" if pareto.is_duplicate(r) else "") + (
                        f", proposed again {again[r.number]} time(s)" if again.get(r.number) else "")] for r in chosen])

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
        groups = {g.group: g for g in pareto.seed_repeats(run.records)}
        if groups:
            spread = (groups.get(pareto.group_key(r)) if r else None for r in best)
            rows.append(["mAP over seeds (mean ± std, n)",
                         *(f"{g.map_mean:.4f} ± {fmt_map(g.map_std)}, n={g.n}" if g else "-" for g in spread)])
        rows += [[k, *(field_cell(k, r.get(k)) if r else "-" for r in best)] for k in fields]
        base = [r for r in run.records if r.number in run.baselines]
        if base:
            paper = [pareto.best_under_budget(base, b) for b in budgets]
            cells = (f"#{r.number}, {fmt_map(r.get('map'))}" if r else "-" for r in paper)
            rows.append(["paper rule: best (trial, mAP)", *cells])
        doc.table(header, rows)

    def hypervolume(self, run: Run, prefix: str, pair: pareto.Objectives = pareto.MAP_FLOPS) -> None:
        """Hypervolume after each trial over ``pair``; the FLOPs reference is shared by every run of the report."""
        doc, cost = self.doc, pair[1]
        label = get_metric(cost).label
        own = pair != pareto.MAP_FLOPS or objective_pair(run) == pareto.MAP_FLOPS
        doc.heading(2 if pair == pareto.MAP_FLOPS else 3, "Search progress (hypervolume)" if own
                    else "Search progress (hypervolume of the mAP/FLOPs front)")
        ref = self.ref_flops if cost == "flops" else pareto.reference_cost(run.records, cost, self._budgets(run, cost))
        if ref is None:
            doc.para("No feasible trial and no budget: hypervolume is undefined.")
            return
        history = pareto.hypervolume_history(run.records, ref, pair)
        name = "hypervolume" if cost == "flops" else f"hypervolume_{cost}"
        path = plots.hypervolume_plot({run.name: history}, self.fig_dir / f"{prefix}{name}.png", cost)
        doc.para(f"Final hypervolume {history[-1][1]:.4f} (area in the log10 {label} x mAP plane, reference point "
                 f"{label} = {_fmt_cost(cost, ref)}, mAP = 0).")
        doc.figure(path, f"Hypervolume of the mAP/{label} front after each trial.")

    @staticmethod
    def _budgets(run: Run, cost: str) -> list[float]:
        if cost == "flops":
            return run.budgets
        value = getattr(run.config.budgets, cost, None) if run.config else None
        return [value] if value else []

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
        doc.figure(plots.slice_plot(run.records, params, self.fig_dir / f"{prefix}slice.png", self.colors,
                                    objective_pair(run)),
                   "Slice view: mAP against each sampled parameter, one colour and marker per topology.")

    def repeats(self, run: Run, prefix: str) -> None:
        """Points run with two or more distinct seeds; a point trained again with a seed it had is named, not counted.
        Past ``LIMIT`` points, the table and figure show those with the best mean mAP (every row in a CSV)."""
        groups = pareto.aggregate_repeats(run.records)
        if not pareto.has_repeats(groups):
            return
        doc, real = self.doc, pareto.seed_repeats(run.records)
        doc.heading(2, "Seed repeats")
        again = [g for g in groups if len(set(g.seeds)) < g.n]
        if again:
            more = (f"; and {len(again) - AGAIN} more points (each trial in `{self.trials_csv(run, prefix)}`)"
                    if len(again) > AGAIN else "")
            doc.para("Trained again with a seed the point already had (the same measurement, not a repeat): " +
                     "; ".join(f"trials {', '.join(map(str, g.numbers))} (seeds {cell(g.seeds)})"
                               for g in again[:AGAIN]) + more + ".")
        if not real:
            doc.para("No point was run with two distinct seeds.")
        else:
            rank = sorted(range(len(real)), key=lambda i: (-real[i].map_mean, i))
            long_table(doc, ["point", "n", "seeds", "trials", "FLOPs", "mAP mean", "std", "min", "max"],
                       [[point_cell(g.group), g.n, cell(g.seeds), cell(g.numbers), fmt_count(g.flops),
                         fmt_map(g.map_mean), fmt_map(g.map_std), fmt_map(g.map_min), fmt_map(g.map_max)] for g in real],
                       self.out / f"{prefix}seed_repeats.csv", rank, f"the {LIMIT} points with the best mean mAP",
                       "points")
            shown = [real[i] for i in sorted(rank[:LIMIT])]
            doc.figure(plots.repeats_plot(shown, self.fig_dir / f"{prefix}repeats.png", self.colors),
                       "Mean mAP per repeated point, error bars one standard deviation over seeds"
                       + (f" (the {len(shown)} points of the table)." if len(shown) < len(real) else "."))
        self.significance(run, prefix)

    def significance(self, run: Run, prefix: str = "") -> None:
        """Topology pairs at matched rungs: per-rung Welch, the paired sign-flip test over seeds, Holm across pairs.
        Past ``LIMIT`` pairs (or rungs), the tables show those with the smallest Holm p (every row in a CSV), and
        only those pairs get a sentence on the paper's Table 5."""
        doc = self.doc
        alpha, _ = stats.settings(run.config)
        tests = [dataclasses.replace(t, a=topology_cell(t.a), b=topology_cell(t.b))
                 for t in stats.compare_topologies(run.records, alpha)]
        doc.heading(2, "Topology comparison beyond seed noise")
        flags = {bool(r.get("paired_seeds")) for r in run.records if r.state == "complete"}
        doc.para(stats.method(alpha, len(tests), flags.pop() if len(flags) == 1 else (None if flags else True)))
        if not tests:
            doc.para("No two topologies were run at the same scaling point, so none can be compared.")
            return
        order = sorted(range(len(tests)), key=lambda i: (tests[i].p_holm, i))
        rungs = [(i, r) for i, t in enumerate(tests) for r in t.rungs]
        rows = [[f"{tests[i].a} vs {tests[i].b}", r.rung, f"{r.a.mean():.4f} ± {fmt_std(r.a)} (n={len(r.a)})",
                 f"{r.b.mean():.4f} ± {fmt_std(r.b)} (n={len(r.b)})", _pairs_cell(r), f"{r.flops_a / r.flops_b:.3f}",
                 "-" if math.isnan(r.p_welch) else f"{r.p_welch:.3g}"] for i, r in rungs]
        first = {i: k for k, i in enumerate(order)}
        long_table(doc, ["pair", "rung", "mAP A (mean ± std)", "mAP B", "paired seeds: mean d", "FLOPs A/B", "Welch p"],
                   rows, self.out / f"{prefix}topology_rungs.csv",
                   sorted(range(len(rows)), key=lambda k: (first[rungs[k][0]], k)),
                   f"the {LIMIT} rungs of the pairs with the smallest Holm p", "rungs")
        holm = f"Holm p ({len(tests)} pairs)" if len(tests) > 1 else "Holm p (one pair: p)"
        long_table(doc, ["pair", "rungs", "D = mean(A - B)", "test", "p", holm, "verdict"],
                   [[f"{t.a} vs {t.b}", t.rungs_text, f"{t.diff:+.4f}", t.test_name, t.p_text, f"{t.p_holm:.3g}",
                     t.summary] for t in tests], self.out / f"{prefix}topology_pairs.csv", order,
                   f"the {LIMIT} pairs with the smallest Holm p", "pairs")
        doc.table(["paper Table 5 (COCO val AP)", "AP"],
                  [[stats.TABLE5_NAMES[k], v] for k, v in stats.TABLE5.items()])
        for i in sorted(order[:LIMIT]):
            doc.para(stats.paper_sentence(tests[i]))


def _pairs_cell(rung: stats.RungTest) -> str:
    """``3: +0.0123`` (paired seeds and their mean difference), ``(1 left out)`` for seeds of one side only."""
    text = f"{len(rung.d)}: {rung.d.mean():+.4f}" if len(rung.d) else "0"
    return text + (f" ({rung.left_out} left out)" if rung.left_out else "")
