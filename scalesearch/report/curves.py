"""The "Learning curves" section: the validation mAP every trial recorded along its training (``intermediate``:
the ``train.curve`` fractions and any ``train.eval_every`` steps, then the final mAP), one line per point (mean
over its seeds) coloured by topology, and how well the free training-loss score (``train_loss``: mean loss over
the last half of the run) ranks the points as their final mAP does. Reads the records only."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scalesearch import pareto
from scalesearch.records import State, TrialRecord
from scalesearch.report import plots
from scalesearch.report.doc import Document
from scalesearch.report.runs import Run

TOP = 20  # points whose learning curves are drawn in colour; a study's other points are thin grey lines


def point_curves(records: Sequence[TrialRecord]) -> dict[str, tuple[TrialRecord, list[tuple[int, float]]]]:
    """Point -> (its first record, [(step, mean mAP over the seeds that reached that step)]): the intermediate
    evaluations and the final mAP at the trial's last step. Complete trials with at least one intermediate
    evaluation; duplicates (a reused result) count once."""
    steps: dict[str, dict[int, list[float]]] = {}
    first: dict[str, TrialRecord] = {}
    for r in records:
        if r.state is not State.COMPLETE or r.get("map") is None or not r.intermediate or pareto.is_duplicate(r):
            continue
        key = pareto.group_key(r)
        first.setdefault(key, r)
        found = steps.setdefault(key, {})
        for step, value in r.intermediate.items():
            if value is not None:
                found.setdefault(int(step), []).append(float(value))
        if r.steps:
            found.setdefault(int(r.steps), []).append(float(r.get("map")))
    return {key: (first[key], sorted((s, statistics.fmean(v)) for s, v in found.items()))
            for key, found in steps.items() if len(found) >= 2}


def loss_ranking(records: Sequence[TrialRecord]) -> tuple[float, float, int] | None:
    """Kendall's tau (and p, n) between minus the training-loss score and the final mAP over the points (seed
    means); None below three points with both."""
    from scalesearch.report.zero_cost import kendall

    groups: dict[str, list[TrialRecord]] = {}
    for r in records:
        if r.state is State.COMPLETE and r.get("map") is not None and r.get("train_loss") is not None \
                and not pareto.is_duplicate(r):
            groups.setdefault(pareto.group_key(r), []).append(r)
    if len(groups) < 3:
        return None
    loss = [-statistics.fmean(r.get("train_loss") for r in rs) for rs in groups.values()]
    maps = [statistics.fmean(r.get("map") for r in rs) for rs in groups.values()]
    return kendall(loss, maps)


def best_curves(curves: dict[str, tuple[TrialRecord, list[tuple[int, float]]]], top: int = TOP
                ) -> tuple[dict[str, tuple[TrialRecord, list[tuple[int, float]]]], list[list[tuple[int, float]]]]:
    """(the ``top`` points with the best final mAP, the others' lines): all of them, none left, when they fit."""
    if len(curves) <= top:
        return curves, []
    ranked = sorted(curves, key=lambda key: (-curves[key][1][-1][1], curves[key][0].number))
    return {key: curves[key] for key in ranked[:top]}, [curves[key][1] for key in ranked[top:]]


def add_section(doc: Document, run: Run, fig_dir: Path | None, colors: dict[str, Any], prefix: str = "") -> None:
    curves = point_curves(run.records)
    ranking = loss_ranking(run.records)
    if not curves and ranking is None:
        return
    doc.heading(2, "Learning curves")
    if curves:
        doc.para(f"Validation mAP of the scored weights along each training ({len(curves)} point(s), mean over "
                 "seeds; the last point of each line is the final mAP). Lines that cross show where a short "
                 "budget would rank points differently from a longer one.")
        if fig_dir is not None:
            best, others = best_curves(curves)
            path = plots.curves_plot(best, fig_dir / f"{prefix}curves.png", colors, others)
            doc.figure(path, "Validation mAP against training step per point, one colour and marker per topology"
                       + (f"; the {len(best)} points with the best final mAP, the other {len(others)} grey."
                          if others else "."))
    if ranking is not None:
        tau, p, n = ranking
        doc.para(f"Training-loss score (`train_loss`, mean training loss over the last half of each run; lower is "
                 f"better, free with every training): Kendall tau between minus the score and the final mAP over "
                 f"{n} points = **{tau:.3f}** (p = {p:.3g}).")
