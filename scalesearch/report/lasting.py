"""The "Does it last?" section: the verdict against a baseline at the retraining's budget and again at a longer one.

``scalesearch fidelity RUN --longer F2`` retrains the labelled baseline of ``RUN/fidelity.json`` and its most
accurate other point at F2 x the study's budget into ``RUN/fidelity_x<F2>.json`` (``retrain.fidelity.retrain_longer``);
this section reads both files, never trains. At each budget the pair is judged by the tests of the "Against the
baseline" section (``baseline.Duel``): at the retraining's own budget with that section's Holm correction over all
its points, at a longer budget as a family of one (only this pair was retrained there, on fresh seeds, so its
choice as the best of the first retraining does not favour it). Latency is the one measured side by side after the
first retraining (the same networks, read from ``fidelity.json``), so *faster* means the same at every budget. The figure
draws every seed's learning curve (the scored weights' mAP at the study's ``train.curve`` fractions of each budget,
then the final mAP) and their mean.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from scalesearch.errors import UserError
from scalesearch.fidelity import lasting_points
from scalesearch.report import plots
from scalesearch.report.baseline import Duel, cost_of, duels, maps_cell
from scalesearch.report.doc import Document
from scalesearch.report.runs import Run
from scalesearch.report.stats import settings


def add_section(doc: Document, run: Run, fig_dir: Path | None = None, prefix: str = "") -> None:
    """The section when the run folder holds a longer retraining (``fidelity_x<F>.json``) of a baseline and a point
    that ``fidelity.json`` also holds; else nothing."""
    if not run.longer or not run.fidelity:
        return
    stages = _stages(run)
    if len(stages) < 2:
        return
    base, point = stages[0][1].base, stages[0][1].point
    longer = stages[-1][1].base.seeds
    doc.heading(2, f"Does it last? {base.label} and trial {point.number} trained longer")
    doc.para(f"`scalesearch fidelity --longer` retrained {base.label} (trial {base.number}) and trial {point.number}, "
             f"the most accurate other point of the {stages[0][0]:g}x retraining, at a longer budget, on fresh paired "
             f"seeds ({', '.join(str(x) for x in longer)}: its choice as the best on the first seeds does not favour "
             "it there). "
             f"At {stages[0][0]:g}x the verdict is the one of the section above (Holm over its "
             f"{stages[0][1].family} points); at a longer budget only this pair was trained, a family of one. "
             "Latency: the side-by-side measurement after the first retraining (the same networks), so faster means "
             "the same at every budget.")
    rows = []
    for factor, duel in stages:
        for row, d in ((duel.base, None), (duel.point, duel)):
            rows.append([f"{factor:g}x" + (f" ({row.steps} steps)" if row.steps else ""), row.number,
                         row.label or "", maps_cell(row), "-" if d is None else _diff_cell(d),
                         "-" if d is None else f"{d.holm_p[0]:.3g}", "-" if d is None else f"{d.holm_p[1]:.3g}",
                         "baseline" if d is None else d.verdict])
    doc.table(["budget", "trial", "label", "mAP (mean ± sd)", "Δ mAP vs baseline (seeds)", "better/worse Holm p",
               f"non-inferior (Δ > -{stages[0][1].margin:g}) Holm p", "verdict"], rows)
    doc.para(_conclusion(stages))
    if fig_dir is not None:
        lines = [(f"trial {r.number}" + (f" ({r.label})" if r.label else ""), factor, r is d.base, r.seed_curves())
                 for factor, d in stages for r in (d.base, d.point)]
        lines = [line for line in lines if line[3]]
        if lines:
            path = plots.lasting_plot(lines, fig_dir / f"{prefix}lasting.png")
            doc.figure(path, "Learning curves: the scored weights' val mAP during each training (thin: one seed; "
                             "thick: their mean; dashed: the shorter budget). Seeds trained before curves were kept "
                             "are left out of the figure, not of the table.")


def _stages(run: Run) -> list[tuple[float, Duel]]:
    """(factor, duel of the point against the baseline) at the retraining's budget, then at each longer one that
    retrained the same pair (``fidelity.lasting_points``, matched by point, latency from ``fidelity.json``)."""
    try:
        base, point = lasting_points(run.fidelity)
    except UserError:
        return []
    alpha, margin = settings(run.config)
    first = next((d for d in duels(run, str(base.label)) if d.point.group == point.group), None)
    if first is None or first.base.group != base.group:
        return []
    stages: list[tuple[float, Duel]] = [(base.factor, first)]
    for factor, rows in sorted(run.longer.items()):
        found = {r.group: dataclasses.replace(r, latency=src.latency) for r in rows
                 for src in (base, point) if r.group == src.group}
        if factor > base.factor and base.group in found and point.group in found:
            stages.append((factor, Duel(found[point.group], found[base.group], cost_of(run), alpha, margin)))
    return stages


def _higher(duel: Duel) -> int:
    """On how many paired seeds the point beat the baseline."""
    return int((duel.differences > 0).sum())


def _diff_cell(duel: Duel) -> str:
    """``-0.0500 (3 paired seeds, higher on 0)``; unpaired: no count of seeds."""
    higher = f", higher on {_higher(duel)}" if duel.paired else ""
    return f"{duel.diff:+.4f} ({duel.seeds_text}{higher})"


def _conclusion(stages: list[tuple[float, Duel]]) -> str:
    """Whether the gap keeps its sign at every budget, each budget's verdict, and which budgets' seeds cannot reach
    a verdict whatever the mAPs (their tables show a direction only)."""
    held = len({duel.diff > 0 for _, duel in stages}) == 1
    parts = [f"at {factor:g}x Δ {duel.diff:+.4f}" + (f", higher on {_higher(duel)} of {len(duel.differences)} seeds"
                                                   if duel.paired else "") + f" ({duel.outcome[0]})"
             for factor, duel in stages]
    first, last = stages[0][1], stages[-1][1]
    text = (f"{'**The gap keeps its sign**' if held else '**The gap changes sign**'} when both are trained longer: "
            + "; ".join(parts) + f". It moved by {last.diff - first.diff:+.4f} mAP from {stages[0][0]:g}x to "
            f"{stages[-1][0]:g}x ({first.point.long_map:.4f} → {last.point.long_map:.4f} for trial "
            f"{last.point.number}, {first.base.long_map:.4f} → {last.base.long_map:.4f} for {last.base.label}).")
    blocked = [(factor, duel) for factor, duel in stages if not duel.reachable]
    if blocked:
        text += " " + "; ".join(
            f"At {factor:g}x, {duel.seeds_text} cannot reach p < {duel.alpha:g} whatever the mAPs (smallest Holm p "
            f"{duel.holm_floor[1 if duel.faster else 0]:.3g})" for factor, duel in blocked) + \
            ": there the table shows the direction, not a verdict."
    return text
