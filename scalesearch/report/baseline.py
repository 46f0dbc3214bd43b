"""The "Against the baseline" section: how does each searched architecture stand against a labelled baseline trial
(e.g. EfficientDet-Lite0, enqueued by the study) on long-budget mAP and on the study's cost?

It reads the long-budget retraining records (``RUN/fidelity.json``, ``scalesearch fidelity --include LABEL
--seeds S``) and their latencies measured after training, never the proxy: a claim rests on several seeds at
the long budget. A point and the baseline trained with the same seeds are compared through the per-seed
differences d = mAP(point) - mAP(baseline) on the seeds both ran (``stats.sign_flip_p``):

- superiority: the exact two-sided sign-flip test of mean d (better or worse beyond seed noise);
- non-inferiority with margin delta (``config.compare.margin``, default 0.01 mAP): the one-sided sign-flip test of
  d + delta, H0: mean d <= -delta, so a rejection shows the mAP loss is smaller than delta.

A point sharing fewer than two seeds with the baseline is tested unpaired (``stats.permutation_p`` on the seeds'
mAPs, the same two hypotheses), and says so. The retrained points form one family: each test's p-values are
Holm-adjusted across them (``stats.holm_adjusted``, alpha ``config.compare.alpha``). *Faster* is the study's cost
objective: fewer FLOPs (exact) when that is FLOPs, else measured latency (median lower and interquartile ranges
apart: its 75th percentile below the baseline's 25th). Each point gets one verdict, naming its test and Holm p:
dominates (better and faster), non-inferior and faster, better but slower, worse, or cannot tell with these seeds
(with the paired seeds that would make p < alpha reachable when these cannot). Welch's t-test is a secondary
column. ``RUN/export_*.json`` (``scalesearch latency CKPT --json``) of an exported winner, when present, adds its
ONNX Runtime latency beside its PyTorch one.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from scalesearch.fidelity import CHECKPOINTS, FidelityRecord
from scalesearch.report import plots
from scalesearch.report.doc import Document
from scalesearch.report.format import field_cell, fmt_count, topology_cell
from scalesearch.report.runs import Run
from scalesearch.report.stats import (ALPHA, MARGIN, flip_min_p, flips_needed, holm_adjusted, holm_floors,
                                      max_flip_p, permutation_p, settings, sign_flip_p, smallest_p, welch_pvalue)

_ARCH = ("topology", "fusion", "activation", "resolution", "fpn_channels", "fpn_repeats", "head_repeats")
VERDICTS = ("dominates", "non-inferior and faster", "better but slower", "worse", "cannot tell with these seeds")


def quartiles(row: FidelityRecord) -> tuple[float, float, float] | None:
    """(25th, 50th, 75th percentile) of the row's re-measured total latency, ms; None when not measured."""
    samples = ((row.latency or {}).get("samples_ms") or {}).get("total")
    if not samples:
        return None
    q1, median, q3 = np.percentile(np.asarray(samples, dtype=float), [25, 50, 75])
    return float(q1), float(median), float(q3)


class Test(NamedTuple):
    """One test of a duel: its name in the text, p, the smallest p its seeds allow, and whether it was exact."""

    name: str
    p: float
    min_p: float
    exact: bool


@dataclass(frozen=True)
class Duel:
    """One retrained point against the baseline, at the long budget. ``cost``: ``flops`` or ``latency_ms`` (what
    *faster* means); ``family``, ``holm`` and ``floors``: the section's Holm correction (``correct``), the
    adjusted (superiority, non-inferiority) p and the smallest adjusted p each could reach."""

    point: FidelityRecord
    base: FidelityRecord
    cost: str = "latency_ms"
    alpha: float = ALPHA
    margin: float = MARGIN
    family: int = 1
    holm: tuple[float, float] | None = None
    floors: tuple[float, float] | None = None

    @cached_property
    def common(self) -> tuple[int, ...]:
        """The seeds both trained, in order."""
        return tuple(sorted(set(self.point.seeds) & set(self.base.seeds)))

    @property
    def paired(self) -> bool:
        """Paired tests need at least two common seeds; else the unpaired ones are used."""
        return len(self.common) >= 2

    @cached_property
    def differences(self) -> np.ndarray:
        """mAP of the point minus the baseline's, per common seed."""
        mine, theirs = dict(zip(self.point.seeds, self.point.maps)), dict(zip(self.base.seeds, self.base.maps))
        return np.array([mine[s] - theirs[s] for s in self.common], dtype=float)

    @property
    def diff(self) -> float:
        """Mean paired difference (mean mAP of the point minus the baseline's when unpaired)."""
        return float(self.differences.mean()) if self.paired else self.point.long_map - self.base.long_map

    @property
    def seeds_text(self) -> str:
        """``4 paired seeds`` / ``unpaired, 3 vs 4 seeds``."""
        if self.paired:
            if not (self.point.paired and self.base.paired):
                return f"{len(self.common)} seeds matched by number"
            return f"{len(self.common)} paired seeds"
        return f"unpaired, {len(self.point.maps)} vs {len(self.base.maps)} seeds"

    @property
    def welch_p(self) -> float:
        """Welch's two-sided t-test on the seeds' mAPs; NaN below two seeds on a side or with no variance."""
        return welch_pvalue(np.asarray(self.point.maps), np.asarray(self.base.maps))

    @cached_property
    def superiority(self) -> Test:
        """Two-sided test of mean d = 0: sign-flip on the paired differences, else the unpaired permutation test."""
        if self.paired:
            p, exact = sign_flip_p(self.differences)
            return Test("sign-flip test, two-sided", p, flip_min_p(len(self.common)), exact)
        a, b = np.asarray(self.point.maps), np.asarray(self.base.maps)
        p, exact = permutation_p([(a, b)])
        return Test("unpaired permutation test, two-sided", p, smallest_p([(len(a), len(b))]), exact)

    @cached_property
    def noninferiority(self) -> Test:
        """One-sided test of H0: mean d <= -margin, on d + margin (unpaired: the point's mAPs + margin)."""
        if self.paired:
            p, exact = sign_flip_p(self.differences + self.margin, "greater")
            return Test(f"non-inferiority sign-flip test, margin {self.margin:g}, one-sided", p,
                        flip_min_p(len(self.common), "greater"), exact)
        a, b = np.asarray(self.point.maps) + self.margin, np.asarray(self.base.maps)
        p, exact = permutation_p([(a, b)], alternative="greater")
        return Test(f"unpaired non-inferiority permutation test, margin {self.margin:g}, one-sided", p,
                    smallest_p([(len(a), len(b))], "greater"), exact)

    @property
    def holm_p(self) -> tuple[float, float]:
        """Holm-adjusted (superiority, non-inferiority) p; the raw ones for a family of one."""
        return self.holm or (self.superiority.p, self.noninferiority.p)

    @property
    def holm_floor(self) -> tuple[float, float]:
        """The smallest Holm-adjusted (superiority, non-inferiority) p these seeds allow."""
        return self.floors or (min(1.0, self.family * self.superiority.min_p),
                               min(1.0, self.family * self.noninferiority.min_p))

    @property
    def faster(self) -> bool | None:
        """Fewer FLOPs when the study's cost is FLOPs; else latency: median lower and interquartile ranges apart
        (None when a latency is missing)."""
        if self.cost == "flops":
            return self.point.flops < self.base.flops
        mine, theirs = quartiles(self.point), quartiles(self.base)
        if mine is None or theirs is None:
            return None
        return mine[1] < theirs[1] and mine[2] < theirs[0]

    @property
    def outcome(self) -> tuple[str, Test, float]:
        """(verdict, the test it rests on, that test's Holm-adjusted p); the verdict is one of ``VERDICTS``."""
        (sup, ni), faster = self.holm_p, self.faster is True
        if sup < self.alpha and self.diff > 0 and self.faster is not None:
            return ("dominates" if faster else "better but slower"), self.superiority, sup
        if ni < self.alpha and faster:
            return "non-inferior and faster", self.noninferiority, ni
        if sup < self.alpha and self.diff < 0:
            return "worse", self.superiority, sup
        return VERDICTS[-1], *((self.noninferiority, ni) if faster else (self.superiority, sup))

    @property
    def dominates(self) -> bool:
        return self.outcome[0] == "dominates"

    @property
    def reachable(self) -> bool:
        """Whether the test a faster point needs (non-inferiority), or a slower one's (superiority), could reach a
        Holm-adjusted p < alpha with these seeds."""
        return self.holm_floor[1 if self.faster else 0] < self.alpha

    @property
    def seeds_needed(self) -> int | None:
        """Paired seeds per point with which that test could reach a Holm-adjusted p < alpha in this family."""
        return flips_needed(self.family, self.alpha, "greater" if self.faster else "two-sided")

    @property
    def verdict(self) -> str:
        """``**non-inferior and faster** (non-inferiority sign-flip test, margin 0.01, one-sided; Holm p = 0.031)``;
        a verdict that cannot be reached says how many paired seeds would make it reachable."""
        name, test, p = self.outcome
        if name != VERDICTS[-1]:
            return f"**{name}** ({test.name}; Holm p = {p:.3g})"
        text = f"{name} ({test.name}; Holm p = {p:.3g})"
        if self.faster is None:
            text += "; latency not measured"
        if not self.reachable:
            need = self.seeds_needed
            floor = self.holm_floor[1 if self.faster else 0]
            text += (f": p < {self.alpha:g} unreachable with {self.seeds_text} (smallest Holm p {floor:.3g})"
                     + (f", needs {need} paired seeds" if need else ""))
        return text


def correct(found: list[Duel]) -> list[Duel]:
    """The duels of one section as a family: Holm-adjusted p of each test across them, and their floors."""
    sup = holm_adjusted([d.superiority.p for d in found])
    ni = holm_adjusted([d.noninferiority.p for d in found])
    sup_floor = holm_floors([d.superiority.min_p for d in found])
    ni_floor = holm_floors([d.noninferiority.min_p for d in found])
    return [dataclasses.replace(d, family=len(found), holm=(s, n), floors=(fs, fn))
            for d, s, n, fs, fn in zip(found, sup, ni, sup_floor, ni_floor)]


def cost_of(run: Run) -> str:
    """What *faster* means for the run: ``flops`` when its cost objective is FLOPs (or it has none), else
    ``latency_ms`` (measured latency, the only other cost a retrained point carries)."""
    from scalesearch.report.study import objective_pair

    return "flops" if objective_pair(run)[1] == "flops" else "latency_ms"


def duels(run: Run, label: str) -> list[Duel]:
    """Every other retrained point against the retrained point labelled ``label``, Holm-corrected as a family."""
    base = next(r for r in run.fidelity if r.label == label and r.latency is not None)
    alpha, margin = settings(run.config)
    return correct([Duel(r, base, cost_of(run), alpha, margin) for r in run.fidelity if r is not base])


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
             "with its interquartile range in brackets.")
    doc.para(_method(found))
    rows = [base, *(d.point for d in sorted(found, key=lambda d: -d.point.long_map))]
    by_point = {id(d.point): d for d in found}
    table = []
    for row in rows:
        duel = by_point.get(id(row))
        table.append([row.number, label if row is base else (row.label or ""), *_arch(run, row),
                      fmt_count(row.flops), _params(run, row), f"{row.proxy_map:.4f}", maps_cell(row),
                      "-" if duel is None else f"{duel.diff:+.4f} ({duel.seeds_text})",
                      "-" if duel is None else _p_cell(duel.welch_p),
                      "-" if duel is None else holm_cell(duel.superiority, duel.holm_p[0]),
                      "-" if duel is None else holm_cell(duel.noninferiority, duel.holm_p[1]),
                      _latency_cell(row), "baseline" if duel is None else duel.verdict])
    doc.table(["trial", "label", *_ARCH, "FLOPs", "params", "proxy mAP", f"{base.factor:g}x mAP (mean ± sd)",
               "Δ mAP (seeds)", "Welch p", "better/worse: p (min) → Holm",
               f"non-inferior (Δ > -{found[0].margin:g}): p (min) → Holm", "latency ms [IQR]", "verdict"], table)
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
    _curves_part(doc, rows, base, label, fig_dir, prefix, found[0].alpha)


def mean_by_step(seeds: list[list[tuple[int, float]]]) -> dict[int, float]:
    """Mean mAP over the seeds' learning curves at each step any of them recorded."""
    by_step: dict[int, list[float]] = {}
    for step, value in (point for curve in seeds for point in curve):
        by_step.setdefault(step, []).append(value)
    return {step: float(np.mean(by_step[step])) for step in sorted(by_step)}


def _drops(seeds: list[list[tuple[int, float]]]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """(earlier steps, per seed the mAP at each earlier step minus the final mAP, the final mAPs) over the seeds whose
    curve has every step any of them recorded (a seed missing one is left out)."""
    steps = sorted({step for curve in seeds for step, _ in curve})
    whole = [dict(curve) for curve in seeds if {step for step, _ in curve} == set(steps)]
    if not whole or len(steps) < 2:
        return steps[:-1], np.zeros((0, max(0, len(steps) - 1))), np.zeros(0)
    final = np.array([curve[steps[-1]] for curve in whole])
    return steps[:-1], np.array([[curve[step] for step in steps[:-1]] for curve in whole]) - final[:, None], final


def _curves_part(doc: Document, rows: list[FidelityRecord], base: FidelityRecord, label: str, fig_dir: Path | None,
                 prefix: str, alpha: float = ALPHA) -> None:
    """The retrained points' learning curves (mean val mAP at each curve step and at the end) and whether the budget
    overfits: a point whose mean peaks before its final step lost val mAP by training on, claimed only where the
    loss holds on its seeds: a one-sided sign-flip test of the largest mean drop from any earlier curve step to the
    end (``stats.max_flip_p``: each seed flipped as a whole, so picking the peak from the same curves is accounted
    for), Holm over the points that peaked early."""
    curved = [(row, row.seed_curves()) for row in rows]
    curved = [(row, seeds) for row, seeds in curved if seeds]
    if not curved:
        return
    steps = sorted({step for _, seeds in curved for curve in seeds for step, _ in curve})
    table, early = [], []
    for row, seeds in curved:
        mean = mean_by_step(seeds)
        peak = max(mean, key=lambda step: (mean[step], step))  # a tie with the end is no early peak
        earlier, drops, final = _drops(seeds)
        if peak != max(mean) and len(final) and drops.mean(axis=0).max() > 0:
            top = int(np.argmax(drops.mean(axis=0)))
            n = len(final)
            early.append((f"trial {row.number}{f' ({row.label})' if row.label else ''} at step {earlier[top]}, "
                          f"{(drops[:, top] + final).mean():.4f} → {final.mean():.4f} over {n} seed{'s' if n != 1 else ''}",
                          max_flip_p(drops)[0], flip_min_p(n, "greater")))
        table.append([row.number, label if row is base else (row.label or ""), len(seeds),
                      *(f"{mean[step]:.4f}" if step in mean else "-" for step in steps), peak])
    doc.para(f"Learning curves of the retraining: the scored weights' val mAP at the study's `train.curve` fractions "
             f"of the {base.factor:g}x budget and at its end, mean over the seeds that kept a curve.")
    doc.table(["trial", "label", "seeds", *(f"step {step}" for step in steps), "peak step"], table)
    if early:
        adjusted = holm_adjusted([p for _, p, _ in early])
        floors = holm_floors([floor for _, _, floor in early])
        named = [(f"{text}, Holm p {q:.3g}", q < alpha, floor >= alpha)
                 for (text, _, _), q, floor in zip(early, adjusted, floors)]
        held = [text for text, lost, _ in named if lost]
        noise = [text for text, lost, _ in named if not lost]
        if held:
            doc.para(f"**{len(held)} of {len(curved)} points lost val mAP after an early peak, beyond seed noise** "
                     f"({'; '.join(held)}; one-sided sign-flip test of the largest mean drop from any earlier curve "
                     "step to the end, each seed's curve flipped as a whole so that picking the peak is accounted "
                     "for, Holm over the points that peaked early): training on lowered their val mAP, a sign that "
                     "this budget over-fits the training images (few images, many epochs). The verdicts above are at "
                     "the final step, the budget fixed before training; picking each point's best step by this val "
                     "mAP would be a choice made on the data that judges it.")
        if noise:
            text = (f"{len(noise)} of {len(curved)} points peaked before the end, a drop not shown beyond seed noise "
                    f"({'; '.join(noise)}; Holm p not below {alpha:g})")
            blocked = [floor for _, lost, floor in named if not lost and floor]
            if blocked:
                text += (f"; {len(blocked)} of them cannot reach p < {alpha:g} with their seeds whatever the mAPs, so "
                         "their rows show a direction, not a test")
            doc.para(text + ".")
    else:
        doc.para(f"Every point's mean val mAP is highest at the end of training: the {base.factor:g}x budget did "
                 "not over-fit, and a longer one may still gain.")
    if fig_dir is not None:
        lines = [(f"trial {row.number}" + (f" ({row.label})" if row.label else ""), row is base, seeds)
                 for row, seeds in curved]
        path = plots.retraining_curves_plot(lines, label, fig_dir / f"{prefix}baseline_curves.png")
        doc.figure(path, f"Learning curves of the retrained points at {base.factor:g}x (thin: one seed; thick: their "
                         f"mean); red: {label}.")


def holm_cell(test: Test, holm: float) -> str:
    """``0.125 (min 0.12) → 0.625``; ``(MC)`` marks random sign assignments."""
    return f"{test.p:.3g}{'' if test.exact else ' (MC)'} (min {test.min_p:.3g}) → {holm:.3g}"


def _method(found: list[Duel]) -> str:
    first = found[0]
    faster = ("fewer FLOPs (the study's cost objective; exact)" if first.cost == "flops" else
              "a lower median latency with the interquartile ranges apart (its 75th percentile below the "
              "baseline's 25th); 'slower' means not shown faster")
    return (f"Tests: the point and the baseline are compared through the per-seed differences d = mAP(point) - "
            f"mAP(baseline) on the seeds both ran. Better or worse: the exact sign-flip test of mean d (all 2^n sign "
            f"assignments of the n differences, two-sided). Non-inferior: the one-sided sign-flip test of d + "
            f"{first.margin:g} (H0: mean d <= -{first.margin:g} mAP, the study's `compare.margin`), so a rejection "
            f"shows the mAP loss is smaller than {first.margin:g}. A point sharing fewer than two seeds with the "
            "baseline gets the unpaired permutation test of the seeds' mAPs for both questions, marked unpaired. "
            f"With n paired seeds no p falls below 2 / 2^n two-sided, 1 / 2^n one-sided (min in the table). The "
            f"{_points(len(found))} are one family: each question's p-values are Holm-adjusted across them "
            f"(family-wise error {first.alpha:g}, `compare.alpha`), and a verdict stands on an adjusted p < "
            f"{first.alpha:g}. Faster means {faster}. Verdicts: **dominates** (better and faster), **non-inferior "
            "and faster**, **better but slower**, **worse**, or cannot tell with these seeds (none of these shown; "
            "when no mAPs could reach an adjusted p < alpha with these seeds, it says how many paired seeds would). "
            "Welch's t-test on the seeds' mAPs is given beside, as a secondary check. A point without a measured "
            "latency is never called faster or slower." + _matching(found))


def _matching(found: list[Duel]) -> str:
    """What the seed pairing rests on: common random numbers, or (records written before them) seed numbers."""
    if all(d.point.paired and d.base.paired for d in found):
        return (" Paired seeds: seed s drew the same images, augmentations and initial weights for every point "
                "(common random numbers).")
    return (" Seeds matched by number: these records were trained before paired seeds (common random numbers), "
            "so seed s fixed the image order and augmentations but not the initial weights; the sign-flip test "
            "holds for them as for independent runs.")


def _conclusion(label: str, found: list[Duel]) -> str:
    winners = [d for d in found if d.dominates]
    after = f"after Holm's correction over {_points(len(found))} (family-wise error {found[0].alpha:g})"
    if winners:
        parts = [f"trial {d.point.number} ({topology_cell(d.point.spec.get('topology'))}, "
                 f"{d.point.spec.get('resolution')} px): mAP {d.diff:+.4f} ({d.superiority.name}, Holm p = "
                 f"{d.holm_p[0]:.3g}), latency {_latency_cell(d.point)} vs {_latency_cell(d.base)} ms" for d in winners]
        text = (f"**{len(winners)} architecture(s) dominate {label}** at the long budget {after}: "
                + "; ".join(parts) + ".")
    else:
        text = f"**Nothing dominates {label}** at the long budget {after}."
    counts = {v: [d for d in found if d.outcome[0] == v] for v in VERDICTS}
    text += " Verdicts: " + "; ".join(f"{v}: {_trials(ds)}" for v, ds in counts.items() if ds) + "."
    faster = [d for d in found if d.faster and not d.dominates]
    closest = max(faster, key=lambda d: d.diff, default=None)
    if closest is not None:
        text += (f" The most accurate of the faster points is trial {closest.point.number}: mAP {closest.diff:+.4f} "
                 f"against {label} over {closest.seeds_text} (Holm p {closest.holm_p[0]:.3g} better/worse, "
                 f"{closest.holm_p[1]:.3g} non-inferior; Welch p = {_p_cell(closest.welch_p)}), latency "
                 f"{_latency_cell(closest.point)} vs {_latency_cell(closest.base)} ms. {_misses(closest)}")
    blocked = [d for d in found if d.outcome[0] == VERDICTS[-1] and not d.reachable]
    if blocked:
        ni, sup = flips_needed(len(found), found[0].alpha, "greater"), flips_needed(len(found), found[0].alpha)
        text += (f" {_trials(blocked).capitalize()} cannot reach an adjusted p < {found[0].alpha:g} with their seeds "
                 f"whatever the mAPs: with {_points(len(found))} in the family, non-inferiority needs {ni} paired "
                 f"seeds per point and better/worse {sup}.")
    return text


def _misses(duel: Duel) -> str:
    """Which condition of *non-inferior and faster* a faster point misses, and by how much."""
    if duel.diff <= -duel.margin:
        return (f"It misses non-inferiority by its mean: a mAP loss of {-duel.diff:.4f} is {-duel.diff - duel.margin:.4f} "
                f"beyond the margin {duel.margin:g}.")
    return (f"Its mean difference {duel.diff:+.4f} lies above -{duel.margin:g}, but non-inferiority is not shown with "
            f"these seeds (Holm p {duel.holm_p[1]:.3g}, not below {duel.alpha:g}).")


def _points(n: int) -> str:
    return f"{n} point{'s' if n != 1 else ''}"


def _trials(duels: list[Duel]) -> str:
    """``trial 11`` / ``trials 24, 28``."""
    numbers = ", ".join(str(n) for n in sorted(d.point.number for d in duels))
    return f"trial{'s' if len(duels) > 1 else ''} {numbers}"


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
