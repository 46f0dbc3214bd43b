"""The "Proxy fidelity" sections: the long-budget retraining records of ``scalesearch fidelity`` (read from
``RUN/fidelity.json`` and, backbone frozen, ``RUN/fidelity_frozen.json``; never trained here) against the proxy's
mAP: Kendall's tau and Spearman's rho with bootstrap intervals, the top-1 regret, and a scatter plot."""

from __future__ import annotations

from pathlib import Path

from scalesearch.fidelity import (FILE, FROZEN_FILE, FidelityRecord, batches, bootstrap_interval, kendall,
                                  kendall_against, reliability, spearman, top1_regret)
from scalesearch.report import plots
from scalesearch.report.doc import Document
from scalesearch.report.format import fmt_count
from scalesearch.report.runs import Run

ALPHA = 0.05
TARGET_RELIABILITY = 0.85
WEIGHTS = {"raw": "raw weights", "ema": "EMA of the weights"}


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
    """Proxy vs long-budget mAP per retrained point and the rank-correlation verdict: one section for the
    fine-tuned retraining (``fidelity.json``), one for the frozen-backbone one (``fidelity_frozen.json``)."""
    if run.fidelity:
        _section(doc, run, run.fidelity, "Proxy fidelity", FILE, "", fig_dir, f"{prefix}fidelity.png")
    if run.frozen:
        _section(doc, run, run.frozen, "Proxy fidelity, backbone frozen", FROZEN_FILE,
                 ", the pretrained backbone frozen (`--frozen-backbone`: the feature network and heads trained on "
                 "its cached features)", fig_dir, f"{prefix}fidelity_frozen.png")


def _section(doc: Document, run: Run, rows: list[FidelityRecord], title: str, file: str, how: str,
             fig_dir: Path | None, figure: str) -> None:
    doc.heading(2, title)
    factor = rows[0].factor
    doc.para(f"{len(rows)} distinct spec(s) (front first) retrained by `scalesearch fidelity` at {factor:g}x the "
             f"study's training budget with its data and recipe{how} (`{run.path / file}`).")
    doc.table(["trial", "point", "FLOPs", "proxy mAP", f"{factor:g}x-budget mAP", "seeds"],
              [[r.number, r.group, fmt_count(r.flops), f"{r.proxy_map:.4f}", f"{r.long_map:.4f}", len(r.seeds)]
               for r in rows])
    counts = sorted({len(r.seeds) for r in rows})
    if len(counts) > 1:
        doc.para(f"**Unequal seeds:** the points have {counts[0]} to {counts[-1]} long-budget seeds (a retraining still "
                 "under way, or one given more seeds later); each point's long-budget mAP below is the mean over its "
                 "own seeds, so the reference is noisier for some points than for others.")
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
                                   [_label(r.group) for r in rows], factor, fig_dir / figure)
        doc.figure(path, "Each retrained point: proxy mAP against its long-budget mAP.")


def _seed_checks(doc: Document, run: Run, rows: list) -> None:
    """What limits tau: the long budget's own seed-to-seed agreement (the ceiling any proxy can reach against a
    noisy target) and, when the proxy is a mean over seeds, the tau of one proxy seed alone (what a search that
    trains each point once sees)."""
    from scipy import stats

    lines = []
    _reference_noise(doc, rows)
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


def _measured(rows: list[FidelityRecord]) -> list[FidelityRecord]:
    """The rows the reliability is computed over: all, or (a retraining still under way) those with the most
    seeds, when at least three share two or more."""
    if reliability(rows) is not None:
        return rows
    most = max(len(r.seeds) for r in rows)
    for count in range(most, 1, -1):
        subset = [r for r in rows if len(r.seeds) >= count]
        if len(subset) >= 3 and reliability(subset) is not None:
            return subset
    return rows


def _reference_noise(doc: Document, rows: list[FidelityRecord]) -> None:
    """The long budget measured against its own noise, per weights: seed sd, seed-vs-seed agreement, the
    reliability of the seed mean (Spearman-Brown), the tau a perfect proxy could reach, and the proxy's tau."""
    used = _measured(rows)
    table = []
    for weights in ("raw", "ema", "scored"):
        if weights == "scored" and table:
            continue  # scored is raw or ema, already shown
        found = reliability(used, weights)
        if found is None:
            continue
        tau, p = kendall_against(used, weights)
        need = found.seeds_for(TARGET_RELIABILITY)
        scored = " (scored)" if weights == used[0].scored or weights == "scored" else ""
        table.append([WEIGHTS.get(weights, "scored weights") + scored, found.seeds, f"{found.seed_sd:.4f}",
                      f"{found.seed_r:.3f}", f"{found.seed_tau:.3f}", f"**{found.mean_r:.3f}**",
                      f"{found.ceiling_tau:.3f}", f"{tau:.3f} (p {p:.3g})", "n/a" if need is None else need])
    if not table:
        doc.para("The reference's own noise needs two or more long-budget seeds per point "
                 "(`scalesearch fidelity --seeds 2`).")
        return
    paired = "paired seeds (the same images, augmentations and initial streams for every point)" if all(
        r.paired for r in used) else "unpaired seeds (each point's own, matched by position)"
    scope = "" if len(used) == len(rows) else f" Over the {len(used)} of {len(rows)} points that have these seeds so far."
    doc.heading(3, "The reference against its own noise")
    doc.para(f"How well the long budget measures these points, from {paired}. Seed sd: median over points of the "
             "standard deviation over seeds. Seed-vs-seed r and tau: Pearson and Kendall between two seeds across "
             "points (mean over seed pairs); r is one seed's reliability. Reliability of the mean: Spearman-Brown "
             "k r / (1 + (k - 1) r) for the k-seed mean (for two seeds, the split-half reliability). Ceiling tau: "
             "what a perfect proxy (the points' true long-budget mAP) would reach against the k-seed mean, "
             "(2 / pi) asin(sqrt(reliability)). Proxy tau: the study's proxy against the k-seed mean. Seeds for "
             f"{TARGET_RELIABILITY}: the seeds whose mean would reach reliability {TARGET_RELIABILITY} (Spearman-Brown "
             f"solved for k).{scope}")
    doc.table(["weights", "seeds k", "seed sd", "seed-vs-seed r", "seed-vs-seed tau", "reliability of the mean",
               "ceiling tau", "proxy tau", f"seeds for {TARGET_RELIABILITY}"], table)
    _weights_gap(doc, rows)
    _history(doc, rows)


def weights_differences(rows: list[FidelityRecord]) -> list[float]:
    """EMA minus raw mAP of every training that evaluated both (one per point and seed)."""
    return [e - r for row in rows if row.raw_maps and row.ema_maps for r, e in zip(row.raw_maps, row.ema_maps)]


def _weights_gap(doc: Document, rows: list[FidelityRecord]) -> None:
    """Which weights measure higher: the paired differences of the two evaluations of each training."""
    from scalesearch.report.stats import flip_min_p, sign_flip_p

    d = weights_differences(rows)
    if not d:
        return
    p, exact = sign_flip_p(d)
    doc.para(f"EMA minus raw weights, the same training evaluated twice: mean {sum(d) / len(d):+.4f} mAP over "
             f"{len(d)} trainings (EMA higher in {sum(x > 0 for x in d)}, lower in {sum(x < 0 for x in d)}); "
             f"sign-flip p = {p:.3g} two-sided ({'exact' if exact else 'MC'}; smallest reachable "
             f"{flip_min_p(len(d)):.2g}).")


def _history(doc: Document, rows: list[FidelityRecord]) -> None:
    """Every retraining batch, so that seeds added after a look at a result are visible; the wall time per
    training."""
    import statistics

    found = batches(rows)
    if not found:
        return
    walls = [w for r in rows for w in (r.wall_seconds or ())]
    wall = f" Wall time per training (training + evaluation of both weights): median {statistics.median(walls) / 60:.1f} min over {len(walls)}." if walls else ""
    doc.para(f"Retraining history: {len(found)} batch(es), one per `scalesearch fidelity` call.{wall}")
    doc.table(["started", "last seed done", "command", "machine", "trainings", "points", "seeds"],
              [[b["batch"], b["finished"], f"`{b['command']}`" + (f" (reused from `{b['reused_from']}`)"
                                                             if b.get("reused_from") else ""), b["machine"], b["trainings"], len(b["points"]),
                ", ".join(map(str, b["seeds"]))] for b in found])
