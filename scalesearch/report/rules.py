"""The "Searched scaling rule vs the paper's" section: for each FLOPs rung, the proxy's best searched rule against
the reference rule enqueued at that rung (default label ``paper rule``), both retrained at the long budget
(``scalesearch fidelity --per-rung --include 'paper rule' --seeds S``); then both rules one rung above the ladder
(``scalesearch extrapolate``, ``RUN/extrapolation.json``). Each comparison: mean and spread over seeds, the exact
two-sided sign-flip test on the per-seed differences (``baseline.Duel``; unpaired permutation test when the two
share fewer than two seeds) with the smallest p its seeds can reach, Holm-adjusted across the rungs (one family;
alpha ``config.compare.alpha``), and a plain verdict after that correction. Reads records only.
"""

from __future__ import annotations

from scalesearch.extrapolate import SEARCHED
from scalesearch.fidelity import FidelityRecord
from scalesearch.report.baseline import Duel, correct, holm_cell, maps_cell
from scalesearch.report.doc import Document
from scalesearch.report.format import cell, fmt_count
from scalesearch.report.runs import Run
from scalesearch.report.stats import flips_needed, seeds_needed, settings

COEFFICIENTS = ("phi", "width_growth", "fpn_depth_growth", "head_depth_step", "resolution_step",
                "backbone_width_growth", "backbone_depth_growth")
_SHAPE = ("resolution", "fpn_channels", "fpn_repeats", "head_repeats")


def needed(duel: Duel) -> int | None:
    """Seeds per rule with which the duel's family could reach a Holm-adjusted p < alpha (paired, or unpaired)."""
    if duel.paired:
        return flips_needed(duel.family, duel.alpha)
    return seeds_needed(1, duel.alpha / duel.family)


def verdict(duel: Duel, name: str) -> str:
    """``searched rule better`` / ``<name> better`` / ``within noise`` / ``cannot tell: ...``, on the superiority
    test's Holm-adjusted p across the duel's family (its raw p for a family of one)."""
    alpha, family = duel.alpha, duel.family
    if duel.holm_floor[0] >= alpha:
        holm = f" after Holm over {family} rungs" if family > 1 else ""
        return f"cannot tell: p < {alpha:g}{holm} is unreachable with {duel.seeds_text} (need {needed(duel)} per rule)"
    if duel.holm_p[0] < alpha:
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
    rows, (alpha, margin) = run.fidelity, settings(run.config)
    for rung in sorted({_rung(run, r) for r in rows if r.label == label} - {None}):
        reference = next(r for r in rows if r.label == label and _rung(run, r) == rung)
        searched = sorted((r for r in rows if r.label is None and _rung(run, r) == rung), key=lambda r: -r.proxy_map)
        if searched:
            out.append((rung, Duel(searched[0], reference, alpha=alpha, margin=margin)))
    return list(zip([rung for rung, _ in out], correct([duel for _, duel in out])))


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
        first = duels[0][1]
        doc.para(f"Per FLOPs rung: the proxy's best searched rule and the {label} at that rung, each retrained at "
                 f"{factor:g}x the study's budget by `scalesearch fidelity --per-rung`. Test: the exact two-sided "
                 "sign-flip test on the per-seed differences d = mAP(searched) - mAP(reference) on the seeds both ran "
                 "(every sign assignment; with n paired seeds no p falls below 2 / 2^n; the unpaired permutation test "
                 "when they share fewer than two seeds), with the smallest p those seeds can reach. "
                 + (f"The {len(duels)} rungs are one family: their p-values are Holm-adjusted (family-wise error "
                    f"{first.alpha:g}) and each verdict is the one after correction. " if len(duels) > 1 else "")
                 + "Welch's t-test on the seeds' mAPs beside it, as a secondary check.")
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
        alpha, margin = settings(run.config)
        duel = Duel(searched, reference, alpha=alpha, margin=margin)
        doc.heading(3, "Extrapolation: one rung above the ladder")
        budget = (searched.rule or {}).get("budget_flops")
        doc.para(f"Both rules applied at a {fmt_count(budget)} FLOPs budget, above every rung searched (each rule's "
                 f"phi raised to the largest value that fits), trained at {searched.factor:g}x the study's budget "
                 "(`scalesearch extrapolate`). One comparison, so no correction.")
        _table(doc, run, [("extrapolated", duel)], label)
        text = f"Extrapolation: {verdict(duel, label)}"
        doc.para(f"{_bold(text)}. Searched phi {cell(searched.rule.get('phi'))} ({fmt_count(searched.flops)} FLOPs), "
                 f"{label} phi {cell(reference.rule.get('phi'))} ({fmt_count(reference.flops)} FLOPs). A searched "
                 "rule is only useful if it transfers upward.")


def _holm_sentence(duels: list[tuple[float, Duel]]) -> str:
    """Several rungs are several tests: which rung differences survive Holm's correction, and whether any could."""
    first = duels[0][1]
    kept = [fmt_count(rung) for rung, duel in duels if duel.holm_p[0] < first.alpha]
    floor = min(duel.holm_floor[0] for _, duel in duels)
    text = (f"Several rungs, several tests: after Holm's correction of the {len(duels)} p-values (family-wise error "
            f"{first.alpha:g}), " + (f"the difference at {', '.join(kept)} FLOPs stays significant" if kept
                                     else "no rung difference stays significant"))
    if floor >= first.alpha:
        return text + (f"; the smallest Holm-adjusted p these seeds allow is {floor:.3g}, so none could, whatever the "
                       f"mAPs: {needed(first)} paired seeds per rule would make it reachable.")
    return text + "."


def _table(doc: Document, run: Run, rows: list[tuple[str, Duel]], label: str) -> None:
    table = []
    for name, duel in rows:
        text = verdict(duel, label)
        table.append([name, duel.point.number, duel.base.number, fmt_count(duel.point.flops),
                      fmt_count(duel.base.flops),
                      maps_cell(duel.point), maps_cell(duel.base), f"{duel.diff:+.4f} ({duel.seeds_text})",
                      holm_cell(duel.superiority, duel.holm_p[0]),
                      "-" if duel.welch_p != duel.welch_p else f"{duel.welch_p:.3g}",
                      _bold(text)])
    doc.table(["rung", "searched trial", f"{label} trial", "searched FLOPs", f"{label} FLOPs", "searched mAP",
               f"{label} mAP", "Δ (seeds)", "sign-flip p (min) → Holm", "Welch p", "verdict"], table)


def _bold(text: str) -> str:
    """A verdict in bold when it decides (``... better``), plain when it does not."""
    return f"**{text}**" if text.endswith("better") else text
