"""The "Against the baseline" section: does any searched architecture beat a labelled baseline trial (e.g.
EfficientDet-Lite0, enqueued by the study) on both long-budget mAP and measured latency?

It reads the long-budget retraining records (``RUN/fidelity.json``, ``scalesearch fidelity --include LABEL
--seeds S``) and their latencies measured after training, never the proxy: a claim rests on several seeds at
the long budget. A point *dominates* the baseline when both hold:

- accuracy: its mean long-budget mAP is higher, every one of its seeds is above every seed of the baseline
  (the difference exceeds the seed spread) and Welch's t-test gives p < 0.05 (two-sided);
- latency: its median total latency is lower and the interquartile ranges do not overlap (its 75th
  percentile is below the baseline's 25th).

The exact permutation test's p and its smallest reachable value are stated beside Welch's, so a reader sees
what the seeds can show. ``RUN/export_*.json`` (``scalesearch latency CKPT --json``) of an exported winner,
when present, adds its ONNX Runtime latency beside its PyTorch one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scalesearch.fidelity import CHECKPOINTS, FidelityRecord
from scalesearch.report import plots
from scalesearch.report.doc import Document
from scalesearch.report.format import field_cell, fmt_count, topology_cell
from scalesearch.report.runs import Run
from scalesearch.report.stats import ALPHA, permutation_p, smallest_p, welch_pvalue

_ARCH = ("topology", "fusion", "activation", "resolution", "fpn_channels", "fpn_repeats", "head_repeats")


def quartiles(row: FidelityRecord) -> tuple[float, float, float] | None:
    """(25th, 50th, 75th percentile) of the row's re-measured total latency, ms; None when not measured."""
    samples = ((row.latency or {}).get("samples_ms") or {}).get("total")
    if not samples:
        return None
    q1, median, q3 = np.percentile(np.asarray(samples, dtype=float), [25, 50, 75])
    return float(q1), float(median), float(q3)


@dataclass(frozen=True)
class Duel:
    """One retrained point against the baseline, at the long budget."""

    point: FidelityRecord
    base: FidelityRecord

    @property
    def diff(self) -> float:
        """Mean long-budget mAP of the point minus the baseline's."""
        return self.point.long_map - self.base.long_map

    @property
    def welch_p(self) -> float:
        """Welch's two-sided t-test on the seeds' mAPs; NaN below two seeds on a side or with no variance."""
        return welch_pvalue(np.asarray(self.point.maps), np.asarray(self.base.maps))

    @property
    def permutation(self) -> tuple[float, float]:
        """(exact two-sided permutation p, smallest p reachable with these seeds)."""
        a, b = np.asarray(self.point.maps), np.asarray(self.base.maps)
        p, _ = permutation_p([(a, b)])
        return p, smallest_p([(len(a), len(b))])

    @property
    def beyond_spread(self) -> bool:
        """Every seed of the point above every seed of the baseline."""
        return min(self.point.maps) > max(self.base.maps)

    @property
    def more_accurate(self) -> bool:
        return self.diff > 0 and self.beyond_spread and self.welch_p < ALPHA

    @property
    def faster(self) -> bool | None:
        """Median lower and interquartile ranges apart; None when a latency is missing."""
        mine, theirs = quartiles(self.point), quartiles(self.base)
        if mine is None or theirs is None:
            return None
        return mine[1] < theirs[1] and mine[2] < theirs[0]

    @property
    def dominates(self) -> bool:
        return self.more_accurate and self.faster is True

    @property
    def verdict(self) -> str:
        if self.dominates:
            return "**dominates**"
        acc = ("more accurate" if self.more_accurate else
               "less accurate" if self.diff < 0 and max(self.point.maps) < min(self.base.maps) and self.welch_p < ALPHA
               else "mAP within noise")
        speed = {True: "faster", None: "latency not measured"}.get(self.faster, "not faster")
        return f"{acc}, {speed}"


def duels(run: Run, label: str) -> list[Duel]:
    """Every other retrained point against the retrained point labelled ``label``."""
    base = next(r for r in run.fidelity if r.label == label and r.latency is not None)
    return [Duel(r, base) for r in run.fidelity if r is not base]


def _arch(run: Run, row: FidelityRecord) -> list[str]:
    return [field_cell(k, row.spec.get(k)) for k in _ARCH]


def _params(run: Run, row: FidelityRecord) -> str:
    record = next((r for r in run.records if r.number == row.number), None)
    return fmt_count(record.params if record else None)


def _latency_cell(row: FidelityRecord) -> str:
    q = quartiles(row)
    return "-" if q is None else f"{q[1]:.2f} [{q[0]:.2f}, {q[2]:.2f}]"


def maps_cell(row: FidelityRecord) -> str:
    maps = np.asarray(row.maps)
    spread = f" ± {maps.std(ddof=1):.4f}" if len(maps) > 1 else ""
    return f"{maps.mean():.4f}{spread} (n = {len(maps)})"


def _p_cell(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3g}"


def add_section(doc: Document, run: Run, fig_dir: Path | None = None, prefix: str = "") -> None:
    """The section, for each labelled retrained point with a re-measured latency that has others to meet; else
    nothing (a labelled point without latency is a reference of another kind, e.g. the paper's scaling rule)."""
    labels = dict.fromkeys(r.label for r in run.fidelity if r.label and r.latency is not None)
    for label in labels:
        found = duels(run, label)
        if found:
            _section(doc, run, label, found, fig_dir, prefix)


def _section(doc: Document, run: Run, label: str, found: list[Duel], fig_dir: Path | None, prefix: str) -> None:
    base = found[0].base
    doc.heading(2, f"Against the baseline: {label}")
    latency = base.latency or {}
    rounds = latency.get("rounds", 1)
    how = (f"{latency.get('runtime')}, {latency.get('threads')} thread(s), batch {latency.get('batch')}, "
           f"{rounds} interleaved round(s) of {latency.get('warmup')} warm-up + "
           f"{latency.get('runs', 0) // max(1, rounds)} timed runs per point, every point measured in each round "
           f"(samples pooled) on {latency.get('cpu')} "
           f"({'the latency lock held' if latency.get('exclusive') else 'lock not held'}, load "
           f"{latency.get('load_average')})" if latency else "not measured")
    doc.para(f"Every point below was retrained at {base.factor:g}x the study's budget ({base.steps} steps) with "
             f"{len(base.seeds)} seed(s) by `scalesearch fidelity`; its latency was measured again after all "
             f"training, with nothing else training: {how}. Latency is the median total (network + decode + NMS) "
             "with its interquartile range in brackets. A point **dominates** the baseline when its mean mAP is "
             "higher, all its seeds lie above all of the baseline's (more than the seed spread), Welch's t-test "
             f"gives p < {ALPHA} (two-sided), and its latency's 75th percentile is below the baseline's 25th. The "
             "exact permutation test's p is given with the smallest p its seeds can reach.")
    rows = [base, *(d.point for d in sorted(found, key=lambda d: -d.point.long_map))]
    by_point = {id(d.point): d for d in found}
    table = []
    for row in rows:
        duel = by_point.get(id(row))
        perm = duel.permutation if duel else None
        table.append([row.number, label if row is base else (row.label or ""), *_arch(run, row),
                      fmt_count(row.flops), _params(run, row), f"{row.proxy_map:.4f}", maps_cell(row),
                      "-" if duel is None else f"{duel.diff:+.4f}", "-" if duel is None else _p_cell(duel.welch_p),
                      "-" if perm is None else f"{perm[0]:.3g} (min {perm[1]:.2g})", _latency_cell(row),
                      "baseline" if duel is None else duel.verdict])
    doc.table(["trial", "label", *_ARCH, "FLOPs", "params", "proxy mAP", f"{base.factor:g}x mAP (mean ± sd)",
               "Δ mAP", "Welch p", "permutation p", "latency ms [IQR]", "verdict"], table)
    doc.para(_conclusion(label, found))
    featured = [d for d in found if d.dominates]
    for duel in featured:
        best = max(range(len(duel.point.maps)), key=lambda i: duel.point.maps[i])
        ckpt = run.path / CHECKPOINTS / f"trial{duel.point.number}_seed{duel.point.seeds[best]}.pt"
        if ckpt.is_file():
            doc.para(f"Trial {duel.point.number}'s best seed (mAP {duel.point.maps[best]:.4f}) is `{ckpt}`: export it "
                     f"with `scalesearch export {ckpt} --out winner.onnx --nms`.")
    exported = _exports(run)
    if exported:
        doc.para(exported)
    if fig_dir is not None:
        path = plots.baseline_plot(run.records, rows, label, fig_dir / f"{prefix}baseline.png", quartiles)
        doc.figure(path, f"Grey: every trial at the proxy budget (its latency measured during the search). Blue: "
                         f"the retrained points at {base.factor:g}x, mean mAP with the seeds' range and latency with "
                         f"its interquartile range; red star: {label}.")


def _conclusion(label: str, found: list[Duel]) -> str:
    winners = [d for d in found if d.dominates]
    if winners:
        parts = [f"trial {d.point.number} ({topology_cell(d.point.spec.get('topology'))}, "
                 f"{d.point.spec.get('resolution')} px): "
                 f"mAP {d.diff:+.4f} (Welch p = {d.welch_p:.3g}), latency {_latency_cell(d.point)} vs "
                 f"{_latency_cell(d.base)} ms" for d in winners]
        return f"**{len(winners)} architecture(s) dominate {label}** at the long budget: " + "; ".join(parts) + "."
    faster = [d for d in found if d.faster]
    closest = max(faster, key=lambda d: d.diff, default=None)
    text = f"**Nothing dominates {label}** at the long budget by this test."
    if closest is not None:
        text += (f" The most accurate of the faster points is trial {closest.point.number}: mAP {closest.diff:+.4f} "
                 f"against {label} (Welch p = {_p_cell(closest.welch_p)}), latency {_latency_cell(closest.point)} vs "
                 f"{_latency_cell(closest.base)} ms; it misses {_misses(closest)}.")
    better = [d for d in found if d.diff > 0]
    if better:
        best = max(better, key=lambda d: d.diff)
    if better and best is not closest:
        text += (f" The highest mean mAP is trial {best.point.number}'s ({best.diff:+.4f}, Welch p = "
                 f"{_p_cell(best.welch_p)}, latency {_latency_cell(best.point)} ms).")
    return text


def _misses(duel: Duel) -> str:
    """The dominance conditions a point fails, in words."""
    failed = []
    if duel.diff <= 0:
        failed.append("a higher mean mAP")
    elif not duel.beyond_spread:
        failed.append("every seed above every baseline seed")
    if not duel.welch_p < ALPHA:
        failed.append(f"Welch p < {ALPHA:g} (p = {_p_cell(duel.welch_p)})")
    if not duel.faster:
        failed.append("interquartile ranges apart")
    return ", ".join(failed) if failed else "nothing"


def _exports(run: Run) -> str:
    """``RUN/export_*.json`` written by ``scalesearch latency CKPT --json``: one line per runtime."""
    found = []
    for path in sorted(run.path.glob("export_*.json")):
        data: dict[str, Any] = json.loads(path.read_text())
        result = data.get("latency") or data
        median, iqr = result.get("median_ms", {}), result.get("iqr_ms", {})
        if "total" in median:
            found.append(f"{result.get('runtime')}: {median['total']:.2f} ms (IQR {iqr.get('total', 0):.2f}; "
                         f"network {median.get('network', float('nan')):.2f}) from `{path.name}`")
    if not found:
        return ""
    spec = (json.loads(sorted(run.path.glob("export_*.json"))[0].read_text()).get("spec") or {})
    keys = ("topology", "resolution", "fpn_channels", "fpn_repeats", "head_repeats", "activation", "fusion")
    match = next((r for r in run.fidelity if all(r.spec.get(k) == spec.get(k) for k in keys)), None)
    which = f"trial {match.number}'s checkpoint" if match else "a checkpoint"
    return (f"Exported to ONNX (`scalesearch export`), {which} timed with its trained weights by the same protocol "
            "(`scalesearch latency CKPT --runtime R --json`): " + "; ".join(found) + ".")
