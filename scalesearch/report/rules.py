"""The "Searched scaling rule vs the paper's" section: for each FLOPs rung, the proxy's best searched rule against
the reference rule enqueued at that rung (default label ``paper rule``), both retrained at the long budget
(``scalesearch fidelity --per-rung --include 'paper rule' --seeds S``); then both rules one rung above the ladder
(``scalesearch extrapolate``, ``RUN/extrapolation.json``). Each comparison: mean and spread over seeds, the exact
two-sided permutation test's p with the smallest p its seeds can reach, and a plain verdict. Reads records only.
"""

from __future__ import annotations

from scalesearch.extrapolate import SEARCHED
from scalesearch.fidelity import FidelityRecord
from scalesearch.report.baseline import Duel, maps_cell
from scalesearch.report.doc import Document
from scalesearch.report.format import cell, fmt_count
from scalesearch.report.runs import Run
from scalesearch.report.stats import ALPHA, holm, seeds_needed

COEFFICIENTS = ("phi", "width_growth", "fpn_depth_growth", "head_depth_step", "resolution_step",
                "backbone_width_growth", "backbone_depth_growth")
_SHAPE = ("resolution", "fpn_channels", "fpn_repeats", "head_repeats")


def verdict(duel: Duel, name: str) -> str:
    """``searched rule better`` / ``<name> better`` / ``within noise`` / ``cannot tell with n seeds``."""
    p, min_p = duel.permutation
    if min_p >= ALPHA:
        return f"cannot tell: p < {ALPHA} is unreachable with these seeds (need {seeds_needed(1)} per rule)"
    if p < ALPHA:
        return "searched rule better" if duel.diff > 0 else f"{name} better"
    return "within noise"


def _rung(run: Run, row: FidelityRecord) -> float | None:
    record = next((r for r in run.records if r.number == row.number), None)
    return record.budget_flops if record else None


def _coefficients(run: Run, row: FidelityRecord) -> dict[str, object]:
    if row.rule:
        return row.rule
    record = next((r for r in run.records if r.number == row.number), None)
    return {k: record.get(k) for k in COEFFICIENTS} if record else {}


def rung_duels(run: Run, label: str) -> list[tuple[float, Duel]]:
    """(rung, searched vs reference) for every rung with a retrained reference and a retrained searched point;
    the searched point is the proxy's best of its rung (what the search alone would have handed over)."""
    out = []
    rows = run.fidelity
    for rung in sorted({_rung(run, r) for r in rows if r.label == label} - {None}):
        reference = next(r for r in rows if r.label == label and _rung(run, r) == rung)
        searched = sorted((r for r in rows if r.label is None and _rung(run, r) == rung), key=lambda r: -r.proxy_map)
        if searched:
            out.append((rung, Duel(searched[0], reference)))
    return out


def add_section(doc: Document, run: Run, label: str | None = None) -> None:
    """The section, when the run holds per-rung retraining of both rules or an extrapolation; else nothing.
    ``label``: the reference rule's trials (default: the extrapolation's reference, else ``paper rule``)."""
    extra = run.extrapolation
    label = label or next((r.label for r in extra if r.label not in (None, SEARCHED)), "paper rule")
    duels = rung_duels(run, label)
    searched = next((r for r in extra if r.label == SEARCHED), None)
    reference = next((r for r in extra if r.label == label), None)
    if not duels and not (searched and reference):
        return
    doc.heading(2, f"Searched scaling rule vs the {label}")
    if duels:
        factor = duels[0][1].base.factor
        doc.para(f"Per FLOPs rung: the proxy's best searched rule and the {label} at that rung, each retrained at "
                 f"{factor:g}x the study's budget by `scalesearch fidelity --per-rung`. Test: exact two-sided "
                 "permutation test on the seeds' mAPs (with the smallest p those seeds can reach); Welch's t-test "
                 "beside it.")
        _table(doc, run, [(f"{fmt_count(rung)} FLOPs", duel) for rung, duel in duels], label)
        if len(duels) > 1:
            doc.para(_holm_sentence(duels))
        doc.heading(3, "Fitted coefficients")
        keys = [k for k in COEFFICIENTS if any(_coefficients(run, d.point).get(k) is not None for _, d in duels)]
        doc.table(["rung", "rule", *keys, *_SHAPE],
                  [[fmt_count(rung), name, *(cell(_coefficients(run, row).get(k)) for k in keys),
                    *(cell(row.spec.get(k)) for k in _SHAPE)]
                   for rung, duel in duels for name, row in ((SEARCHED, duel.point), (label, duel.base))])
    if searched and reference:
        duel = Duel(searched, reference)
        doc.heading(3, "Extrapolation: one rung above the ladder")
        budget = (searched.rule or {}).get("budget_flops")
        doc.para(f"Both rules applied at a {fmt_count(budget)} FLOPs budget, above every rung searched (each rule's "
                 f"phi raised to the largest value that fits), trained at {searched.factor:g}x the study's budget "
                 "(`scalesearch extrapolate`).")
        _table(doc, run, [("extrapolated", duel)], label)
        doc.para(f"**Extrapolation: {verdict(duel, label)}** (searched phi {cell(searched.rule.get('phi'))}, "
                 f"{fmt_count(searched.flops)} FLOPs; {label} phi {cell(reference.rule.get('phi'))}, "
                 f"{fmt_count(reference.flops)} FLOPs). A searched rule is only useful if it transfers upward.")


def _holm_sentence(duels: list[tuple[float, Duel]]) -> str:
    """Several rungs are several tests: which rung differences survive Holm's correction, and whether any could."""
    ps = [duel.permutation[0] for _, duel in duels]
    kept = [fmt_count(rung) for (rung, _), keep in zip(duels, holm(ps)) if keep]
    floor, first = min(duel.permutation[1] for _, duel in duels), ALPHA / len(ps)
    text = (f"Several rungs, several tests: with Holm's correction of the {len(ps)} permutation p-values "
            f"(family-wise error {ALPHA:g}), "
            + (f"the difference at {', '.join(kept)} FLOPs stays significant" if kept
               else "no rung difference stays significant"))
    if floor >= first:
        return text + (f"; the smallest p these seeds allow ({floor:.2g}) is above the first threshold {first:.2g}, "
                       "so none could: more seeds per rule would be needed.")
    return text + "."


def _table(doc: Document, run: Run, rows: list[tuple[str, Duel]], label: str) -> None:
    table = []
    for name, duel in rows:
        p, min_p = duel.permutation
        table.append([name, duel.point.number, duel.base.number, fmt_count(duel.point.flops), fmt_count(duel.base.flops),
                      maps_cell(duel.point), maps_cell(duel.base), f"{duel.diff:+.4f}",
                      f"{p:.3g} (min {min_p:.2g})", "-" if duel.welch_p != duel.welch_p else f"{duel.welch_p:.3g}",
                      f"**{verdict(duel, label)}**"])
    doc.table(["rung", "searched trial", f"{label} trial", "searched FLOPs", f"{label} FLOPs", "searched mAP",
               f"{label} mAP", "Δ", "permutation p", "Welch p", "verdict"], table)
