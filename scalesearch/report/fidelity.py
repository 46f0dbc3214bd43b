"""The "Proxy fidelity" section: the long-budget retraining records of ``scalesearch fidelity`` (read from
``RUN/fidelity.json``, never trained here) against the proxy's mAP, with Kendall's tau."""

from __future__ import annotations

from scalesearch.fidelity import kendall
from scalesearch.report.doc import Document
from scalesearch.report.format import fmt_count
from scalesearch.report.runs import Run

ALPHA = 0.05


def _verdict(tau: float, p: float, n: int) -> str:
    if tau > 0 and p < ALPHA:
        return "the proxy ranks these specs as the longer training does, beyond chance."
    if tau > 0:
        return (f"the rankings lean the same way, but with n = {n} that is not established (p >= {ALPHA}); "
                "retrain more specs (`scalesearch fidelity --top-k`) to tell.")
    return "the proxy does not keep the longer training's ranking: treat its order of these specs with doubt."


def add_section(doc: Document, run: Run) -> None:
    """Table of proxy vs long-budget mAP per retrained point and the rank-correlation verdict."""
    rows = run.fidelity
    if not rows:
        return
    doc.heading(2, "Proxy fidelity")
    factor = rows[0].factor
    doc.para(f"{len(rows)} distinct spec(s) (front first) retrained by `scalesearch fidelity` at {factor:g}x the "
             f"study's training budget with its data and recipe (`{run.path / 'fidelity.json'}`).")
    doc.table(["trial", "point", "FLOPs", "proxy mAP", f"{factor:g}x-budget mAP", "seeds"],
              [[r.number, r.group, fmt_count(r.flops), f"{r.proxy_map:.4f}", f"{r.long_map:.4f}", len(r.seeds)]
               for r in rows])
    if len(rows) < 2:
        doc.para("Kendall tau needs at least two retrained specs.")
        return
    tau, p = kendall(rows)
    if tau != tau:  # NaN: one side has all-equal values
        doc.para("Kendall tau is undefined: all proxy or all long-budget mAPs are equal.")
        return
    doc.para(f"Kendall tau-b (`scipy.stats.kendalltau`) between proxy and long-budget mAP: **tau = {tau:.3f}**, "
             f"p = {p:.3g} (n = {len(rows)}): {_verdict(tau, p, len(rows))}")
