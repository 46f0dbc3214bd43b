"""Topology comparisons over seeds: does one fusion network beat another beyond seed noise?

Topology comparison (the "does BiFPN beat PANet beyond seed noise" question, paper Table 5):
trials are matched at **rungs**, i.e. the same scaling point (phi, resolution, widths, depths; every
spec field but ``topology`` and ``fusion``), so two topologies are compared at the same scale and their
FLOPs differ only by the fusion network. For each pair of topologies:

* per rung, Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``) over the seeds;
* overall, a stratified permutation test of D = mean over rungs of (mean mAP of A - mean mAP of B):
  the topology labels are shuffled among the seeds of each rung (exactly, over every relabelling,
  when there are at most ``EXACT_LIMIT`` of them; else ``N_RANDOM`` random relabellings), two-sided.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

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
    f"{N_RANDOM:,} random ones, marked MC), two-sided; 'beyond seed noise' means p < {ALPHA}."
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
    def verdict(self) -> str:
        if self.p_value < ALPHA:
            return "above" if self.diff > 0 else "below"
        return "indistinguishable"

    @property
    def summary(self) -> str:
        """``bifpn above fpn`` / ``within seed noise``."""
        return "within seed noise" if self.verdict == "indistinguishable" else f"{self.a} {self.verdict} {self.b}"

    @property
    def agreement(self) -> str:
        """Against Table 5, which ranks ``a`` above ``b`` (pairs are ordered so): agrees / disagrees /
        not confirmed (within seed noise) / no paper entry."""
        if self.a not in TABLE5 or self.b not in TABLE5:
            return "no paper entry"
        return {"above": "agrees", "below": "disagrees"}.get(self.verdict, "not confirmed")


def _welch(a: np.ndarray, b: np.ndarray) -> float:
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
            tests.append(RungTest(rung, va, vb, flops_a, flops_b, _welch(va, vb)))
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
            f"Proxy: {test.a} - {test.b} = {test.diff:+.4f} mAP at matched rungs (permutation p = {test.p_value:.3g}).")
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
    return head + (f" **Not confirmed:** the difference is within seed noise (p >= {ALPHA}); the mean points "
                   f"{lean} the paper, but this proxy cannot tell the two apart.")
