"""The "Proxy fidelity" section: the long-budget retraining records of ``scalesearch fidelity`` (read from
``RUN/fidelity.json``, never trained here) against the proxy's mAP: Kendall's tau and Spearman's rho with
bootstrap intervals, the top-1 regret, and a scatter plot."""

from __future__ import annotations

from pathlib import Path

from scalesearch.fidelity import bootstrap_interval, kendall, spearman, top1_regret
from scalesearch.report import plots
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


def _label(group: str) -> str:
    """A point's label without its budget rung (every retrained point's rung is in the table)."""
    return " ".join(part for part in group.split() if not part.startswith("budget="))


def add_section(doc: Document, run: Run, fig_dir: Path | None = None, prefix: str = "") -> None:
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
    low, high = bootstrap_interval(rows, "kendall")
    rho, rho_p = spearman(rows)
    rho_low, rho_high = bootstrap_interval(rows, "spearman")
    doc.para(f"Kendall tau-b (`scipy.stats.kendalltau`) between proxy and long-budget mAP: **tau = {tau:.3f}** "
             f"(95% bootstrap interval {low:.3f} to {high:.3f}, 2000 resamples, seed 0), p = {p:.3g} "
             f"(n = {len(rows)}): {_verdict(tau, p, len(rows))} Spearman rho = {rho:.3f} ({rho_low:.3f} to "
             f"{rho_high:.3f}), p = {rho_p:.3g}. Top-1 regret (long-budget mAP lost by trusting the proxy's "
             f"winner among these): **{top1_regret(rows):.4f}**.")
    _seed_checks(doc, run, rows)
    if fig_dir is not None:
        path = plots.fidelity_plot([r.proxy_map for r in rows], [r.long_map for r in rows],
                                   [_label(r.group) for r in rows], factor, fig_dir / f"{prefix}fidelity.png")
        doc.figure(path, "Each retrained point: proxy mAP against its long-budget mAP.")


def _seed_checks(doc: Document, run: Run, rows: list) -> None:
    """What limits tau: the long budget's own seed-to-seed agreement (the ceiling any proxy can reach against a
    noisy target) and, when the proxy is a mean over seeds, the tau of one proxy seed alone (what a search that
    trains each point once sees)."""
    from scipy import stats

    lines = []
    if all(len(r.maps) >= 2 for r in rows):
        retest = stats.kendalltau([r.maps[0] for r in rows], [r.maps[1] for r in rows])
        lines.append(f"Long-budget first seed vs second seed, same specs: tau = {retest.statistic:.3f} (p = {retest.pvalue:.3g}): how well the long budget agrees "
                     "with itself, a ceiling for any proxy judged against it.")
    first = {}
    for record in run.records:
        if record.get("map") is not None and record.state.value == "complete":
            first.setdefault(record.group, record)  # the point's first seed (records are in number order)
    singles = [(first[r.group].get("map"), r.long_map) for r in rows if r.group in first]
    repeats = {r.group for r in run.records if r.seed != first.get(r.group, r).seed}
    if repeats and len(singles) == len(rows):
        single = stats.kendalltau([a for a, _ in singles], [b for _, b in singles])
        lines.append(f"One proxy seed alone (each point's first trial) against the long-budget mAP: tau = "
                     f"{single.statistic:.3f} (p = {single.pvalue:.3g}).")
    if lines:
        doc.para(" ".join(lines))
