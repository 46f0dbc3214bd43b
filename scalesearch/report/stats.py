"""Topology comparisons over seeds: does one fusion network beat another beyond seed noise?

Topology comparison (the "does BiFPN beat PANet beyond seed noise" question, paper Table 5):
trials are matched at **rungs**, i.e. the same scaling point (phi, resolution, widths, depths; every
spec field but ``topology`` and ``fusion``), so two topologies are compared at the same scale and their
FLOPs differ only by the fusion network. For each pair of topologies:

* per rung, Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``) over the seeds;
* overall, a stratified permutation test of D = mean over rungs of (mean mAP of A - mean mAP of B):
  the topology labels are shuffled among the seeds of each rung (exactly, over every relabelling,
  when there are at most ``EXACT_LIMIT`` of them; else ``N_RANDOM`` random relabellings), two-sided.

Power: the permutation test cannot return a p below one over its number of relabellings (two over it when
every rung has as many seeds of A as of B, since relabelling every seed the other way round gives -D).
``smallest_p`` computes that floor; every comparison in a report states it next to its p, the verdict
says so when p < ``ALPHA`` could not have been reached, and ``design_power_warning`` tells a study's
author before the run (``scalesearch run``) how many seeds the design needs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scalesearch import pareto
from scalesearch.records import TrialRecord

Record = TrialRecord

# Paper Table 5 (COCO val AP, same backbone and heads; ../shared/REFERENCE.md).
TABLE5 = {"fpn": 42.29, "panet": 44.08, "bifpn": 44.39}
TABLE5_NAMES = {"fpn": "repeated top-down FPN", "panet": "repeated FPN+PANet", "bifpn": "BiFPN (weighted)"}
EXACT_LIMIT = 200_000
N_RANDOM = 20_000
ALPHA = 0.05
_NOT_RUNG = {"topology", "fusion"}
METHOD = (
    "Method: trials are matched at rungs, the same scaling point (every spec field but topology and fusion), "
    "so two topologies are compared at the same scale and their FLOPs differ only by the fusion network. "
    "Per rung: Welch's t-test over seeds (`scipy.stats.ttest_ind(equal_var=False)`). Overall: a stratified "
    "permutation test of D = mean over rungs of (mean mAP of A - mean mAP of B), the topology labels shuffled "
    f"among the seeds of each rung (every relabelling when there are at most {EXACT_LIMIT:,}, else "
    f"{N_RANDOM:,} random ones, marked MC), two-sided; 'beyond seed noise' means p < {ALPHA}. "
    "Power: with n_A and n_B seeds at a rung the test has C(n_A + n_B, n_A) relabellings there and their "
    "product over rungs in all, so no p can fall below 2 / that product (1 / it when n_A != n_B at some rung; "
    f"1 / {N_RANDOM + 1:,} for MC); each p is given with that smallest reachable value, and a pair whose smallest "
    f"reachable p is not below {ALPHA} is reported as unable to reach significance, not as within seed noise."
)


def rung_labels(records: Sequence[Record]) -> list[str]:
    """The scaling point of each record: the spec fields and phi that vary across ``records``,
    except topology and fusion (e.g. ``phi=1/resolution=320``; ``all`` when nothing varies); just
    ``phi=...`` when phi alone tells the rungs apart."""
    keys = [k for k in (*pareto.SPEC_FIELDS, "phi") if k not in _NOT_RUNG and any(r.get(k) is not None for r in records)]
    varying = [k for k in keys if len({repr(r.get(k)) for r in records}) > 1]
    labels = {tuple(repr(r.get(k)) for k in varying) for r in records}
    if "phi" in varying and len(labels) == len({repr(r.get("phi")) for r in records}):
        varying = ["phi"]  # the scaling rule sets the rest from phi: name the rung by phi alone
    return ["/".join(f"{k}={r.get(k)}" for k in varying) or "all" for r in records]


def relabellings(design: Sequence[tuple[int, int]]) -> int:
    """Distinct relabellings of a stratified design, ``[(n_a, n_b) per rung]``: prod C(n_a + n_b, n_a)."""
    return math.prod(math.comb(n_a + n_b, n_a) for n_a, n_b in design)


def smallest_p(design: Sequence[tuple[int, int]]) -> float:
    """The smallest two-sided p ``permutation_p`` can return for ``[(n_a, n_b) per rung]`` seeds,
    whatever the mAPs: 2 / relabellings when n_a == n_b at every rung (each relabelling's mirror gives
    the same |D|), else 1 / relabellings; 1 / (N_RANDOM + 1) when the test falls back to random
    relabellings. E.g. 2 seeds x 2 rungs: 2 / 36; 3 seeds x 2 rungs: 2 / 400; one rung 3 vs 3: 2 / 20."""
    design = list(design)
    if not design or any(n_a < 1 or n_b < 1 for n_a, n_b in design):
        raise ValueError(f"every rung needs at least one seed of each topology, but got {design}")
    total = relabellings(design)
    if total > EXACT_LIMIT:
        return 1 / (N_RANDOM + 1)
    mirrored = all(n_a == n_b for n_a, n_b in design)
    return min(1.0, (2 if mirrored else 1) / total)


def holm(ps: Sequence[float], alpha: float = ALPHA) -> list[bool]:
    """Holm's step-down correction: which of ``ps`` stay significant with a family-wise error rate of ``alpha``.
    Sorted ascending, the i-th smallest (from 0) is compared with alpha / (m - i); the first failure stops."""
    keep = [False] * len(ps)
    for i, k in enumerate(sorted(range(len(ps)), key=lambda k: ps[k])):
        if not ps[k] < alpha / (len(ps) - i):
            break
        keep[k] = True
    return keep


def seeds_needed(rungs: int, alpha: float = ALPHA, max_seeds: int = 100) -> int | None:
    """The fewest seeds per point (the same for both topologies at each of ``rungs`` rungs) with which
    p < ``alpha`` is reachable; None when ``rungs`` < 1 or more than ``max_seeds`` would be needed."""
    if rungs < 1:
        return None
    return next((s for s in range(1, max_seeds + 1) if smallest_p([(s, s)] * rungs) < alpha), None)


def seeds_phrase(counts: Sequence[int]) -> str:
    """``2 seeds`` / ``1 seed`` / ``2-3 seeds`` for the seed counts of a comparison."""
    lo, hi = min(counts), max(counts)
    return f"{lo} seed{'s' if lo != 1 else ''}" if lo == hi else f"{lo}-{hi} seeds"


@dataclass(frozen=True)
class RungTest:
    rung: str
    a: np.ndarray  # mAP of topology A over seeds [n_a]
    b: np.ndarray
    flops_a: float
    flops_b: float
    p_welch: float  # NaN when either side has fewer than two seeds


@dataclass(frozen=True)
class PairTest:
    a: str
    b: str
    rungs: tuple[RungTest, ...]
    diff: float  # D: mean over rungs of (mean A - mean B), mAP units
    p_value: float  # stratified permutation test, two-sided
    exact: bool

    @property
    def design(self) -> tuple[tuple[int, int], ...]:
        """Seeds of A and of B at each rung."""
        return tuple((len(r.a), len(r.b)) for r in self.rungs)

    @property
    def min_p(self) -> float:
        """The smallest p the permutation test could have returned with these seeds (``smallest_p``)."""
        return smallest_p(self.design)

    @property
    def reachable(self) -> bool:
        """Whether p < ALPHA was reachable with these seeds at all."""
        return self.min_p < ALPHA

    @property
    def seeds_needed(self) -> int | None:
        """Seeds per point needed at these rungs for p < ALPHA to be reachable."""
        return seeds_needed(len(self.rungs))

    @property
    def p_text(self) -> str:
        """``0.111 (smallest reachable with these seeds: 0.056)``; ``(MC)`` marks random relabellings."""
        return f"{self.p_value:.3g}{'' if self.exact else ' (MC)'} (smallest reachable with these seeds: {self.min_p:.2g})"

    @property
    def verdict(self) -> str:
        if self.p_value < ALPHA:
            return "above" if self.diff > 0 else "below"
        return "indistinguishable" if self.reachable else "untestable"

    @property
    def seeds_text(self) -> str:
        """``2 seeds per point`` (``2-3 seeds`` when failed trials left some points short)."""
        return f"{seeds_phrase([n for pair in self.design for n in pair])} per point"

    @property
    def fix_text(self) -> str:
        need = self.seeds_needed
        return f"rerun with seeds >= {need}" if need else "rerun with more seeds"

    @property
    def summary(self) -> str:
        """``bifpn above fpn`` / ``within seed noise`` / ``cannot reach significance with 2 seeds per
        point: rerun with seeds >= 3``."""
        if self.verdict == "untestable":
            return f"cannot reach significance with {self.seeds_text}: {self.fix_text}"
        return "within seed noise" if self.verdict == "indistinguishable" else f"{self.a} {self.verdict} {self.b}"

    @property
    def agreement(self) -> str:
        """Against Table 5, which ranks ``a`` above ``b`` (pairs are ordered so): agrees / disagrees /
        not confirmed (within seed noise) / no paper entry."""
        if self.a not in TABLE5 or self.b not in TABLE5:
            return "no paper entry"
        return {"above": "agrees", "below": "disagrees",
                "untestable": "not testable (too few seeds)"}.get(self.verdict, "not confirmed")


def welch_pvalue(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import stats

    if len(a) < 2 or len(b) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return float("nan")
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def _rung_diffs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean(A) - mean(B) under every relabelling of the pooled seeds of one rung."""
    pooled = np.concatenate([a, b])
    total = pooled.sum()
    sums = np.array([pooled[list(idx)].sum() for idx in itertools.combinations(range(len(pooled)), len(a))])
    return sums / len(a) - (total - sums) / len(b)


def permutation_p(rungs: Sequence[tuple[np.ndarray, np.ndarray]], seed: int = 0) -> tuple[float, bool]:
    """Two-sided p-value of D under stratified relabelling; (p, exact)."""
    observed = np.mean([a.mean() - b.mean() for a, b in rungs])
    options = [_rung_diffs(a, b) for a, b in rungs]
    size = math.prod(len(o) for o in options)
    if size <= EXACT_LIMIT:
        null = options[0]
        for option in options[1:]:
            null = np.add.outer(null, option).ravel()
        null = null / len(rungs)
        return float(np.mean(np.abs(null) >= abs(observed) - 1e-12)), True
    rng = np.random.default_rng(seed)
    null = np.mean([rng.choice(o, N_RANDOM) for o in options], axis=0)
    hits = np.sum(np.abs(null) >= abs(observed) - 1e-12)
    return float((hits + 1) / (N_RANDOM + 1)), False


def _cells(records: Sequence[Record]) -> dict[tuple[str, str], list[Record]]:
    cells: dict[tuple[str, str], list[Record]] = {}
    good = pareto.feasible(records)
    for r, rung in zip(good, rung_labels(good)):
        cells.setdefault((str(r.get("topology")), rung), []).append(r)
    return cells


def _pair_order(topologies: list[str]) -> list[tuple[str, str]]:
    """Pairs (A, B) with A ranked higher in Table 5 (unknown names last, alphabetical)."""
    rank = sorted(topologies, key=lambda t: (-TABLE5.get(t, -1.0), t))
    return list(itertools.combinations(rank, 2))


def compare_topologies(records: Sequence[Record]) -> list[PairTest]:
    """One PairTest per pair of topologies that share at least one rung."""
    cells = _cells(records)
    out = []
    for a, b in _pair_order(sorted({t for t, _ in cells})):
        shared = sorted({r for t, r in cells if t == a} & {r for t, r in cells if t == b})
        if not shared:
            continue
        tests = []
        for rung in shared:
            va = np.array([r.get("map") for r in cells[a, rung]], dtype=float)
            vb = np.array([r.get("map") for r in cells[b, rung]], dtype=float)
            flops_a = float(np.mean([r.get("flops") for r in cells[a, rung]]))
            flops_b = float(np.mean([r.get("flops") for r in cells[b, rung]]))
            tests.append(RungTest(rung, va, vb, flops_a, flops_b, welch_pvalue(va, vb)))
        p, exact = permutation_p([(t.a, t.b) for t in tests])
        diff = float(np.mean([t.a.mean() - t.b.mean() for t in tests]))
        out.append(PairTest(a, b, tuple(tests), diff, p, exact))
    return out


def paper_sentence(test: PairTest) -> str:
    """A plain sentence comparing the proxy verdict with the paper's Table 5 ordering."""
    if test.a not in TABLE5 or test.b not in TABLE5:
        return f"The paper's Table 5 has no entry for {test.a if test.a not in TABLE5 else test.b}."
    gap = TABLE5[test.a] - TABLE5[test.b]
    head = (f"Paper Table 5: {test.a} {TABLE5[test.a]} vs {test.b} {TABLE5[test.b]} COCO AP ({gap:+.2f}). "
            f"Proxy: {test.a} - {test.b} = {test.diff:+.4f} mAP at matched rungs (permutation p = {test.p_text}).")
    ratio = float(np.mean([r.flops_a / r.flops_b for r in test.rungs]))
    if abs(ratio - 1) > 0.005:
        more = "more" if ratio > 1 else "fewer"
        head += f" At these rungs {test.a} uses {abs(ratio - 1):.1%} {more} FLOPs than {test.b}."
    if test.verdict == "above":
        return head + f" **Agrees:** {test.a}'s front lies above {test.b}'s beyond seed noise, as in the paper."
    if test.verdict == "below":
        return head + (f" **Disagrees:** {test.a}'s front lies below {test.b}'s beyond seed noise, "
                       "the reverse of the paper.")
    lean = "the same way as" if test.diff > 0 else "the opposite way to"
    if test.verdict == "untestable":
        return head + (f" **Not testable:** with {test.seeds_text} at {len(test.rungs)} rung(s) the permutation test "
                       f"has only {relabellings(test.design):,} relabellings, so its smallest p is {test.min_p:.2g} "
                       f"and p < {ALPHA} cannot be reached by construction, whatever the mAPs; the mean points "
                       f"{lean} the paper. To tell the two apart, {test.fix_text}.")
    return head + (f" **Not confirmed:** the difference is within seed noise (p >= {ALPHA}); the mean points "
                   f"{lean} the paper, but this proxy cannot tell the two apart.")


# ---- power of a study's design, before it runs ------------------------------------------------------

def _axis_size(value: Any) -> float:
    """How many distinct values a space entry takes: a scalar 1, choices their count, a stepped or int
    range its grid size, a continuous range infinity (duck-typed on ``config``'s param models)."""
    if hasattr(value, "choices"):
        value = value.choices
    if isinstance(value, (list, tuple)):
        return float(len({repr(v) for v in value}))
    if hasattr(value, "low") and hasattr(value, "high"):
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (value.low, value.high, value.step or 1))
        if value.step is None and not ints:
            return math.inf
        return float(math.floor((value.high - value.low) / (value.step or 1) + 1e-9) + 1)
    return 1.0


def design_rungs(config: Any) -> tuple[int, int | float]:
    """(topologies, rungs) a study's report can compare: the topology choices, and the most rungs any
    pair of topologies can share -- the distinct scaling points of the space (every free parameter but
    topology and fusion), at most half the points the trial budget runs (n_trials // seeds)."""
    space = config.space
    topologies = int(_axis_size(space.get("topology", "")))
    points = config.search.n_trials // config.seeds
    space_rungs = math.prod(_axis_size(v) for k, v in space.items() if k not in _NOT_RUNG)
    rungs = min(space_rungs, points // 2)
    return topologies, int(rungs) if math.isfinite(rungs) else rungs


def design_power_warning(config: Any) -> str | None:
    """One line for a study whose report will run the topology comparison over seeds (seeds > 1 and a
    topology choice) but whose design cannot reach p < ALPHA even at its best (every pair at every rung
    the space and trial budget allow, every seed complete); None otherwise. It names the seeds needed.
    Pure: reads ``config.seeds``, ``config.space`` and ``config.search.n_trials`` only."""
    seeds = config.seeds
    topologies, rungs = design_rungs(config)
    if seeds < 2 or topologies < 2 or rungs < 1 or math.isinf(rungs):
        return None
    rungs = int(rungs)
    floor = smallest_p([(seeds, seeds)] * rungs)
    if floor < ALPHA:
        return None
    need = seeds_needed(rungs)
    points = config.search.n_trials // seeds
    fix = (f"set seeds: {need} (and search.n_trials: {need * points} to keep {points} points)" if need
           else "add seeds or rungs")
    return (f"warning: this study compares topologies over {seeds} seeds at {rungs} rung(s), so the report's "
            f"stratified permutation test has {relabellings([(seeds, seeds)] * rungs):,} relabellings and its "
            f"smallest p is {floor:.2g}: p < {ALPHA} cannot be reached by construction; {fix}")
