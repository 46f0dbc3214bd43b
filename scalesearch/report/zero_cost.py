"""The "Zero-cost scores" section: how well each score, computed on the untrained spec and one batch
(recorded per trial as ``zero_cost`` by the search), ranks the specs as the proxy training does, and as
the long-budget retraining of ``scalesearch fidelity`` does where ``RUN/fidelity.json`` exists. FLOPs and
params count as scores too (the cheapest baselines). Reads the records only; nothing is scored here."""

from __future__ import annotations

import math
from collections.abc import Sequence

from scalesearch import pareto
from scalesearch.records import State, TrialRecord
from scalesearch.report.doc import Document
from scalesearch.report.runs import Run

COST_SCORES = ("flops", "params")
CITATIONS = ("NASWOT: Mellor et al. 2021, log-determinant of the kernel of binary activation codes over the batch "
             "(the sign of the pre-activation for relu, relu6 and swish); synflow: Tanaka et al. 2020, sum over "
             "conv/linear weights of |theta * dR/dtheta| with |theta| weights, an all-ones image, BatchNorm and "
             "activations bypassed; grad_norm: Abdelfattah et al. 2021, sum over conv/linear layers of the norm "
             "of the detection loss's gradient on one batch")


def score(record: TrialRecord, name: str) -> float | None:
    """A score of a record: a recorded zero-cost score, or its counted FLOPs / params."""
    value = record.get(name) if name in COST_SCORES else record.zero_cost.get(name)
    return float(value) if value is not None and not (isinstance(value, float) and math.isnan(value)) else None


def score_names(records: Sequence[TrialRecord]) -> list[str]:
    """Recorded zero-cost score names (sorted), then FLOPs and params."""
    return sorted({k for r in records for k in r.zero_cost} - {"seconds"}) + list(COST_SCORES)


def points(records: Sequence[TrialRecord]) -> list[tuple[TrialRecord, float]]:
    """One (record, mean proxy mAP) per point of the study: seed repeats share a spec, so their scores are
    one value (the scores use a fixed seed) and their mAPs are averaged. Complete trials with an mAP only."""
    groups: dict[str, list[TrialRecord]] = {}
    for r in records:
        if r.state is State.COMPLETE and r.get("map") is not None and not pareto.is_duplicate(r):
            groups.setdefault(pareto.group_key(r), []).append(r)
    return [(rs[0], sum(r.get("map") for r in rs) / len(rs)) for rs in groups.values()]


def kendall(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, int]:
    """(Kendall tau-b, its p-value, n) of ``scipy.stats.kendalltau``; NaN below two pairs or without spread."""
    from scipy.stats import kendalltau

    n = len(xs)
    if n < 2 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return math.nan, math.nan, n
    result = kendalltau(xs, ys)
    return float(result.statistic), float(result.pvalue), n


def correlations(pairs: Sequence[tuple[TrialRecord, float]], names: Sequence[str]) -> dict[str, tuple[float, float, int]]:
    """Per score: Kendall tau of the score against the paired mAP over the pairs that have the score."""
    out = {}
    for name in names:
        have = [(score(r, name), target) for r, target in pairs if score(r, name) is not None]
        out[name] = kendall([s for s, _ in have], [t for _, t in have])
    return out


def _cell(result: tuple[float, float, int]) -> str:
    tau, p, n = result
    return f"n = {n}" + ("" if tau != tau else f": tau = {tau:.3f} (p = {p:.2g})")


def add_section(doc: Document, run: Run) -> None:
    """Table: each score's Kendall tau with the proxy mAP over complete trials' points, and with the long-budget
    mAP of the retrained points when ``fidelity.json`` exists. Absent when no record carries zero-cost scores."""
    if not any(r.zero_cost for r in run.records):
        return
    names = score_names(run.records)
    proxy = correlations(points(run.records), names)
    by_number = {r.number: r for r in run.records}
    long_pairs = [(by_number[f.number], f.long_map) for f in run.fidelity if f.number in by_number]
    long = correlations(long_pairs, names) if long_pairs else {}
    doc.heading(2, "Zero-cost scores")
    doc.para("Each score is computed once per trial, before training, on the untrained spec (fixed seed, the "
             "backbone's pretrained weights when the spec has them) and the study's first training batch "
             f"(`scalesearch.measure.zero_cost`; {CITATIONS}). The table gives Kendall's tau-b (`scipy.stats.kendalltau`) "
             "between each score and the proxy mAP over the study's complete points (seed repeats averaged), and, "
             "where `scalesearch fidelity` retrained points, the long-budget mAP. A positive tau means the higher "
             "score went with the higher mAP. No public benchmark of these scores on object detection exists; "
             "these numbers are reported as measured, whatever they show.")
    header = ["score", "vs proxy mAP"] + ([f"vs {run.fidelity[0].factor:g}x-budget mAP"] if long else [])
    doc.table(header, [[name, _cell(proxy[name])] + ([_cell(long[name])] if long else []) for name in names])
    ranked = [(proxy[n][0], -i, n) for i, n in enumerate(names) if proxy[n][0] == proxy[n][0]]
    if ranked:
        tau, _, best = max(ranked)  # ties: the first in the table
        if tau > 0:
            doc.para(f"Best by tau against the proxy mAP: **{best}** (tau = {tau:.3f}, n = {proxy[best][2]}).")
        else:
            strongest = min(ranked, key=lambda t: (t[0], -t[1]))[2]  # ties: the first in the table
            doc.para(f"No score ranks the points the way the proxy mAP does: every tau is <= 0 (highest: {best}, "
                     f"tau = {tau:.3f}, n = {proxy[best][2]}). The strongest association is **{strongest}**'s, "
                     f"tau = {proxy[strongest][0]:.3f}, inverted: a higher score went with a lower mAP, so a "
                     "prefilter keeping the highest scores would keep the wrong candidates here.")
    else:
        doc.para("Kendall tau is undefined here: fewer than two complete points with scores, or no spread.")
