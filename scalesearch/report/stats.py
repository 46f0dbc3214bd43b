"""Comparisons over seeds: paired tests, Holm's correction, and does one fusion network beat another beyond seed noise?

Paired tests (used by every report section that compares points over seeds): two points trained on the same
seeds are compared through their per-seed differences d_i. ``sign_flip_p`` is the exact sign-flip (paired
permutation) test of the mean of d: under H0 each d_i is as likely to carry either sign, so its p is the share of
all 2^n sign assignments whose mean is at least as extreme as the observed one (every assignment up to
``EXACT_FLIPS``, else ``N_RANDOM`` random ones from a fixed seed, marked MC). Two-sided it cannot fall below
2 / 2^n, one-sided below 1 / 2^n (``flip_min_p``): 4 pairs give 0.125 / 0.0625, 5 give 0.0625 / 0.031.

Families: a section that tests several comparisons (topology pairs, rules rungs, retrained points against a
baseline) corrects across them with Holm's step-down method (``holm_adjusted``); a verdict stands when its
Holm-adjusted p is below alpha (``config.compare.alpha``, default ``ALPHA``). ``holm_floors`` bounds from below
the adjusted p each member can reach with its seeds, so a report can say when no mAP could have made it significant.

Topology comparison (the "does BiFPN beat PANet beyond seed noise" question, paper Table 5): trials are matched at
**rungs**, i.e. the same scaling point (phi, resolution, widths, depths; every spec field but ``topology`` and
``fusion``), so two topologies are compared at the same scale and their FLOPs differ only by the fusion network.
For each pair of topologies:

* per rung, Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``) over the seeds, a secondary column;
* overall, a stratified paired sign-flip test: at each rung A and B on the same seed form a pair, and the signs of
  all pairs are flipped jointly; statistic D = mean over rungs of the rung's mean difference (``stratified_flip_p``).
  Seeds that one side ran at a rung and the other did not are left out; a pair of topologies without any common
  seed falls back to the unpaired stratified permutation test (``permutation_p``), labelled unpaired.

The pairs of one study are one family (Holm). ``design_power_warning`` tells a study's author before the run
(``scalesearch run``) how many seeds the unpaired design needs.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scalesearch import pareto
from scalesearch.records import TrialRecord

Record = TrialRecord

# Paper Table 5 (COCO val AP, same backbone and heads; ../shared/REFERENCE.md).
TABLE5 = {"fpn": 42.29, "panet": 44.08, "bifpn": 44.39}
TABLE5_NAMES = {"fpn": "repeated top-down FPN", "panet": "repeated FPN+PANet", "bifpn": "BiFPN (weighted)"}
EXACT_LIMIT = 200_000
EXACT_FLIPS = 2**20
N_RANDOM = 20_000
ALPHA = 0.05
MARGIN = 0.01  # non-inferiority margin in mAP (``config.compare.margin``)
TIE = 1e-9  # assignments within TIE x sum|w d| of the observed statistic count as ties (float sums differ in order)
_NOT_RUNG = {"topology", "fusion"}


def settings(config: Any) -> tuple[float, float]:
    """(alpha, margin) of a study's ``compare`` settings (``config.compare``); (ALPHA, MARGIN) without a config."""
    compare = getattr(config, "compare", None)
    return float(getattr(compare, "alpha", ALPHA)), float(getattr(compare, "margin", MARGIN))


def method(alpha: float = ALPHA, family: int = 1, paired: bool | None = True) -> str:
    """The topology comparison's method paragraph, for a study whose family holds ``family`` pairs; ``paired``:
    whether the records' seeds are common random numbers (``TrialRecord.paired_seeds``: True for all, False for
    none, None when mixed)."""
    seeds = {True: "(seed s drew the same images, augmentations and initial weights for both: common random numbers)",
             False: "(these records predate common random numbers: seed s fixed the image order but not the initial "
                    "weights, so a pair is matched by seed number and its d carries both points' initialisation "
                    "noise)",
             None: "(only some records use common random numbers: for the others seed s fixed the image order but not "
                   "the initial weights, so those pairs are matched by seed number only)"}[paired]
    return (
        "Method: trials are matched at rungs, the same scaling point (every spec field but topology and fusion), "
        "so two topologies are compared at the same scale and their FLOPs differ only by the fusion network. "
        "Per rung: Welch's t-test over seeds (`scipy.stats.ttest_ind(equal_var=False)`), a secondary column. "
        f"Overall: a paired sign-flip test. At each rung, A and B trained with the same seed form a pair {seeds}, "
        "d = mAP(A) - mAP(B) (a seed trained twice counts once, by its mean); a seed that only one of the two ran at "
        "a rung is left out of the pairing. D = mean over rungs of the rung's mean d; its null distribution flips "
        f"the signs of all pairs jointly (every one of the 2^n assignments for n pairs up to "
        f"2^{EXACT_FLIPS.bit_length() - 1}, "
        f"else {N_RANDOM:,} random ones, marked MC), two-sided: p is the share of assignments with |D| at least the "
        "observed |D|. A pair of topologies with no common seed at any rung falls back to the unpaired stratified "
        "permutation test (labels shuffled among the seeds of each rung; its smallest p is 2 / prod C(n_A + n_B, "
        "n_A) over rungs with n_A and n_B seeds), marked unpaired. "
        + (f"The study's {family} pairs form one family: their p-values are Holm-adjusted (step-down, family-wise "
           f"error {alpha:g}), and 'beyond seed noise' means a Holm-adjusted p < {alpha:g}. " if family > 1 else
           f"One pair of topologies, so no correction: 'beyond seed noise' means p < {alpha:g}. ")
        + "Power: with n pairs no p falls below 2 / 2^n (a zero difference counts in n although its flip changes "
        "nothing, so with z zeros p stays at or above 2 / 2^(n - z))"
        + (f", and no Holm-adjusted p below {family} x the family's smallest such floor" if family > 1 else "")
        + "; each p is given with its smallest reachable value, and a pair that cannot reach "
        + ("a Holm-adjusted " if family > 1 else "")
        + f"p < {alpha:g} with its seeds is reported as unable to reach significance, not as within seed noise."
    )


METHOD = method()


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


# ---- paired sign-flip test and Holm's correction -----------------------------------------------------

def flip_min_p(n: int, alternative: str = "two-sided") -> float:
    """The smallest p ``sign_flip_p`` can return with ``n`` paired differences, whatever their values: 2 / 2^n
    two-sided (the observed signs and their mirror), 1 / 2^n one-sided; 1 / (N_RANDOM + 1) beyond EXACT_FLIPS
    (Monte Carlo). ``n`` counts zero differences too: a zero's flip changes nothing, so with z zeros p cannot go
    below 2 / 2^(n - z); the floor stated is the seeds', not these mAPs'. E.g. n = 4: 0.125 / 0.0625."""
    if n < 1:
        return 1.0
    if 2**n > EXACT_FLIPS:
        return 1 / (N_RANDOM + 1)
    return min(1.0, (2 if alternative == "two-sided" else 1) / 2**n)


def _flip_null(wd: np.ndarray) -> np.ndarray:
    """sum_i s_i w_i d_i for every one of the 2^n sign vectors s."""
    null = np.zeros(1)
    for x in wd:
        null = np.concatenate([null + x, null - x])
    return null


def _extreme(null: np.ndarray, observed: float, alternative: str, tol: float) -> np.ndarray:
    """Which values of ``null`` are at least as extreme as ``observed``: |T| >= |t| two-sided, T >= t for
    ``greater`` (H1: mean d > 0), T <= t for ``less``; ``tol`` absorbs float ties."""
    if alternative == "two-sided":
        return np.abs(null) >= abs(observed) - tol
    if alternative == "greater":
        return null >= observed - tol
    if alternative == "less":
        return null <= observed + tol
    raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', but got {alternative!r}")


def sign_flip_p(d: Sequence[float], alternative: str = "two-sided", weights: Sequence[float] | None = None,
                seed: int = 0) -> tuple[float, bool]:
    """Sign-flip (paired permutation) test of T = sum w_i d_i (the mean of ``d`` when ``weights`` is None); (p, exact).

    p = share of the 2^n sign assignments s with T(s) at least as extreme as the observed T (``_extreme``),
    counting the observed one; exact when 2^n <= EXACT_FLIPS, else (hits + 1) / (N_RANDOM + 1) over N_RANDOM
    random assignments from ``numpy.random.default_rng(seed)``. E.g. d = (1, 2, 3, -0.5), T = 1.375: |T(s)| >= 1.375
    for 4 of 16 assignments (sums +-6.5, +-5.5), p = 0.25; one-sided ``greater`` 2 / 16. Smallest: ``flip_min_p``."""
    d = np.asarray(d, dtype=float)
    if d.size == 0:
        raise ValueError("the sign-flip test needs at least one paired difference")
    w = np.full(d.size, 1 / d.size) if weights is None else np.asarray(weights, dtype=float)
    wd = w * d
    observed, tol = float(wd.sum()), TIE * float(np.abs(wd).sum())
    if 2**d.size <= EXACT_FLIPS:
        return float(np.mean(_extreme(_flip_null(wd), observed, alternative, tol))), True
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(N_RANDOM, d.size))
    hits = int(np.sum(_extreme(signs @ wd, observed, alternative, tol)))
    return (hits + 1) / (N_RANDOM + 1), False


def max_flip_p(d: np.ndarray, seed: int = 0) -> tuple[float, bool]:
    """One-sided sign-flip test of T = max over columns of the column means of ``d`` (seeds x comparisons): whether
    any comparison's mean is above 0 beyond seed noise, the pick of the largest accounted for. Each seed's row is
    flipped as a whole (its comparisons share the seed), so the null distribution of the maximum is exact over the
    2^n flips (Monte Carlo beyond EXACT_FLIPS, as ``sign_flip_p``); (p, exact). With one column it is
    ``sign_flip_p(d, "greater")``. E.g. the drops from each earlier curve step to the end of training, per seed:
    p says whether the best earlier step beat the end, the step chosen from the same curves. Conservative when some
    columns lie far below 0 (an early step well under the end): flipped, they raise the null's maximum."""
    d = np.atleast_2d(np.asarray(d, dtype=float))
    n = d.shape[0]
    if n == 0:
        raise ValueError("the sign-flip test needs at least one seed")
    observed = float((d.mean(axis=0)).max())
    tol = TIE * float(np.abs(d).sum() / n)
    if 2**n <= EXACT_FLIPS:
        signs = np.array(np.meshgrid(*[[1.0, -1.0]] * n, indexing="ij")).reshape(n, -1).T
        exact = True
    else:
        signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(N_RANDOM, n))
        exact = False
    null = (signs @ d / n).max(axis=1)
    hits = int(np.sum(null >= observed - tol))
    return (hits / len(null), True) if exact else ((hits + 1) / (N_RANDOM + 1), False)


def stratified_flip_p(rungs: Sequence[Sequence[float]], alternative: str = "two-sided",
                      seed: int = 0) -> tuple[float, float, bool]:
    """Stratified sign-flip test: ``rungs`` holds each rung's paired differences (rungs without any are dropped);
    the signs of all of them are flipped jointly and the statistic is D = mean over rungs of the rung's mean d
    (weights 1 / (rungs x pairs at that rung)). (D, p, exact); the smallest p is ``flip_min_p`` of all pairs."""
    rungs = [np.asarray(r, dtype=float) for r in rungs if len(r)]
    if not rungs:
        raise ValueError("the stratified sign-flip test needs a rung with at least one paired difference")
    d = np.concatenate(rungs)
    weights = np.concatenate([np.full(len(r), 1 / (len(rungs) * len(r))) for r in rungs])
    p, exact = sign_flip_p(d, alternative, weights, seed)
    return float(np.mean([r.mean() for r in rungs])), p, exact


def holm_adjusted(ps: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: sorted ascending, the i-th smallest (from 0) becomes (m - i) x p, made
    monotone (never below the adjusted p before it) and capped at 1; a comparison stays significant with a
    family-wise error rate alpha when its adjusted p < alpha. E.g. [0.01, 0.04, 0.03] -> [0.03, 0.06, 0.06]."""
    out, running = [1.0] * len(ps), 0.0
    for i, k in enumerate(sorted(range(len(ps)), key=lambda k: ps[k])):
        running = max(running, min(1.0, (len(ps) - i) * ps[k]))
        out[k] = running
    return out


def holm(ps: Sequence[float], alpha: float = ALPHA) -> list[bool]:
    """Holm's step-down correction: which of ``ps`` stay significant with a family-wise error rate of ``alpha``
    (sorted ascending, the i-th smallest from 0 against alpha / (m - i); the first failure stops)."""
    return [p < alpha for p in holm_adjusted(ps)]


def holm_floors(min_ps: Sequence[float]) -> list[float]:
    """For a family whose tests can reach at best ``min_ps`` (each one's smallest p with its seeds), a lower
    bound on the Holm-adjusted p each can reach: max(m x the family's smallest floor, its own floor), capped at 1.
    At or above alpha, no mAPs could make that comparison significant; for a family of equal designs it is
    exactly m x the floor."""
    if not min_ps:
        return []
    first = len(min_ps) * min(min_ps)
    return [min(1.0, max(first, p)) for p in min_ps]


def flips_needed(family: int = 1, alpha: float = ALPHA, alternative: str = "two-sided", per: int = 1,
                 most: int = 40) -> int | None:
    """The fewest seeds (each giving ``per`` pairs, e.g. one per rung) with which a family of ``family`` sign-flip
    tests of equal design can reach a Holm-adjusted p < ``alpha``: family x flip_min_p(seeds x per) < alpha.
    None beyond ``most``. E.g. one two-sided test: 6 (2/64); three: 7 (3 x 2/128)."""
    return next((s for s in range(1, most + 1) if family * flip_min_p(s * per, alternative) < alpha), None)


# ---- the unpaired stratified permutation test ----------------------------------------------------------

def relabellings(design: Sequence[tuple[int, int]]) -> int:
    """Distinct relabellings of a stratified design, ``[(n_a, n_b) per rung]``: prod C(n_a + n_b, n_a)."""
    return math.prod(math.comb(n_a + n_b, n_a) for n_a, n_b in design)


def smallest_p(design: Sequence[tuple[int, int]], alternative: str = "two-sided") -> float:
    """The smallest p ``permutation_p`` can return for ``[(n_a, n_b) per rung]`` seeds,
    whatever the mAPs: two-sided 2 / relabellings when n_a == n_b at every rung (each relabelling's mirror gives
    the same |D|), else 1 / relabellings; one-sided 1 / relabellings; 1 / (N_RANDOM + 1) when the test falls back
    to random relabellings. E.g. 2 seeds x 2 rungs: 2 / 36; 3 seeds x 2 rungs: 2 / 400; one rung 3 vs 3: 2 / 20."""
    design = list(design)
    if not design or any(n_a < 1 or n_b < 1 for n_a, n_b in design):
        raise ValueError(f"every rung needs at least one seed of each topology, but got {design}")
    total = relabellings(design)
    if total > EXACT_LIMIT:
        return 1 / (N_RANDOM + 1)
    mirrored = alternative == "two-sided" and all(n_a == n_b for n_a, n_b in design)
    return min(1.0, (2 if mirrored else 1) / total)


def seeds_needed(rungs: int, alpha: float = ALPHA, max_seeds: int = 100) -> int | None:
    """The fewest seeds per point (the same for both topologies at each of ``rungs`` rungs) with which
    the unpaired test can reach p < ``alpha``; None when ``rungs`` < 1 or more than ``max_seeds`` would be needed."""
    if rungs < 1:
        return None
    return next((s for s in range(1, max_seeds + 1) if smallest_p([(s, s)] * rungs) < alpha), None)


def seeds_phrase(counts: Sequence[int]) -> str:
    """``2 seeds`` / ``1 seed`` / ``2-3 seeds`` for the seed counts of a comparison."""
    lo, hi = min(counts), max(counts)
    return f"{lo} seed{'s' if lo != 1 else ''}" if lo == hi else f"{lo}-{hi} seeds"


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


def permutation_p(rungs: Sequence[tuple[np.ndarray, np.ndarray]], seed: int = 0,
                  alternative: str = "two-sided") -> tuple[float, bool]:
    """p-value of D = mean over rungs of (mean A - mean B) under stratified relabelling (two-sided, or one-sided
    ``greater`` / ``less`` as in ``_extreme``); (p, exact)."""
    observed = float(np.mean([a.mean() - b.mean() for a, b in rungs]))
    options = [_rung_diffs(a, b) for a, b in rungs]
    size = math.prod(len(o) for o in options)
    if size <= EXACT_LIMIT:
        null = options[0]
        for option in options[1:]:
            null = np.add.outer(null, option).ravel()
        null = null / len(rungs)
        return float(np.mean(_extreme(null, observed, alternative, 1e-12))), True
    rng = np.random.default_rng(seed)
    null = np.mean([rng.choice(o, N_RANDOM) for o in options], axis=0)
    hits = np.sum(_extreme(null, observed, alternative, 1e-12))
    return float((hits + 1) / (N_RANDOM + 1)), False


# ---- topology pairs ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RungTest:
    rung: str
    a: np.ndarray  # mAP of topology A over seeds [n_a]
    b: np.ndarray
    flops_a: float
    flops_b: float
    p_welch: float  # NaN when either side has fewer than two seeds
    d: np.ndarray = field(default_factory=lambda: np.empty(0))  # A - B per seed both ran [pairs]
    left_out: int = 0  # seeds only one side ran at this rung (not paired)


@dataclass(frozen=True)
class PairTest:
    a: str
    b: str
    rungs: tuple[RungTest, ...]
    diff: float  # D: mean over rungs of the mean paired difference (of mean A - mean B when unpaired), mAP units
    p_value: float  # paired sign-flip test (unpaired stratified permutation test without common seeds), two-sided
    exact: bool
    paired: bool = True
    holm_p: float | None = None  # Holm-adjusted across the study's pairs (None: a family of one)
    family: int = 1
    alpha: float = ALPHA
    floor: float | None = None  # the smallest Holm-adjusted p these seeds allow (``holm_floors``)

    @property
    def design(self) -> tuple[tuple[int, int], ...]:
        """Seeds of A and of B at each rung."""
        return tuple((len(r.a), len(r.b)) for r in self.rungs)

    @property
    def pairs(self) -> int:
        """Paired differences over all rungs."""
        return sum(len(r.d) for r in self.rungs)

    @property
    def paired_rungs(self) -> int:
        return sum(1 for r in self.rungs if len(r.d))

    @property
    def rungs_text(self) -> str:
        """The rungs the test used: ``3``, or ``2 of 3 (1 without a common seed left out)`` when paired."""
        left = len(self.rungs) - self.paired_rungs if self.paired else 0
        return (f"{self.paired_rungs} of {len(self.rungs)} ({left} without a common seed left out)" if left
                else str(len(self.rungs)))

    @property
    def test_name(self) -> str:
        return "paired sign-flip" if self.paired else "unpaired permutation"

    @property
    def min_p(self) -> float:
        """The smallest p the test could have returned with these seeds (``flip_min_p`` / ``smallest_p``)."""
        return flip_min_p(self.pairs) if self.paired else smallest_p(self.design)

    @property
    def p_holm(self) -> float:
        return self.p_value if self.holm_p is None else self.holm_p

    @property
    def reachable(self) -> bool:
        """Whether a Holm-adjusted p < alpha was reachable with these seeds at all."""
        return (self.min_p * self.family if self.floor is None else self.floor) < self.alpha

    @property
    def seeds_needed(self) -> int | None:
        """Seeds per point (both topologies, every paired rung) needed for a Holm-adjusted p < alpha to be reachable."""
        if self.paired:
            return flips_needed(self.family, self.alpha, per=self.paired_rungs)
        return seeds_needed(len(self.rungs), self.alpha / self.family)

    @property
    def p_text(self) -> str:
        """``0.0312 (smallest reachable with these seeds: 0.031)``; ``(MC)`` marks random assignments."""
        return f"{self.p_value:.3g}{'' if self.exact else ' (MC)'} (smallest reachable with these seeds: {self.min_p:.3g})"

    @property
    def holm_text(self) -> str:
        """``0.0938`` (or ``0.0312 (one comparison)`` when the family has one pair)."""
        return f"{self.p_holm:.3g}" if self.family > 1 else f"{self.p_holm:.3g} (one comparison)"

    @property
    def verdict(self) -> str:
        if self.p_holm < self.alpha:
            return "above" if self.diff > 0 else "below"
        return "indistinguishable" if self.reachable else "untestable"

    @property
    def seeds_text(self) -> str:
        """``2 seeds per point`` (``2-3 seeds`` when failed trials left some points short)."""
        return f"{seeds_phrase([n for pair in self.design for n in pair])} per point"

    @property
    def holm_phrase(self) -> str:
        """`` after Holm over 3 pairs`` ('' for a family of one)."""
        return f" after Holm over {self.family} pairs" if self.family > 1 else ""

    @property
    def fix_text(self) -> str:
        need = self.seeds_needed
        return f"rerun with seeds >= {need}" if need else "rerun with more seeds"

    @property
    def summary(self) -> str:
        """``bifpn above fpn`` / ``within seed noise`` / ``cannot reach significance with 2 seeds per
        point after Holm over 3 pairs: rerun with seeds >= 4``."""
        if self.verdict == "untestable":
            return f"cannot reach significance with {self.seeds_text}{self.holm_phrase}: {self.fix_text}"
        return "within seed noise" if self.verdict == "indistinguishable" else f"{self.a} {self.verdict} {self.b}"

    @property
    def agreement(self) -> str:
        """Against Table 5, which ranks ``a`` above ``b`` (pairs are ordered so): agrees / disagrees /
        not confirmed (within seed noise) / no paper entry."""
        if self.a not in TABLE5 or self.b not in TABLE5:
            return "no paper entry"
        return {"above": "agrees", "below": "disagrees",
                "untestable": "not testable (too few seeds)"}.get(self.verdict, "not confirmed")


def _cells(records: Sequence[Record]) -> dict[tuple[str, str], list[Record]]:
    cells: dict[tuple[str, str], list[Record]] = {}
    good = pareto.measurements(records)  # a duplicate (a reused result) is not a seed
    for r, rung in zip(good, rung_labels(good)):
        cells.setdefault((str(r.get("topology")), rung), []).append(r)
    return cells


def _pair_order(topologies: list[str]) -> list[tuple[str, str]]:
    """Pairs (A, B) with A ranked higher in Table 5 (unknown names last, alphabetical)."""
    rank = sorted(topologies, key=lambda t: (-TABLE5.get(t, -1.0), t))
    return list(itertools.combinations(rank, 2))


def _by_seed(cell: list[Record]) -> dict[int, float]:
    """mAP per seed of one cell, a seed trained more than once by its mean; records without a seed are left out."""
    seeds: dict[int, list[float]] = {}
    for r in cell:
        if r.get("seed") is not None:
            seeds.setdefault(int(r.get("seed")), []).append(float(r.get("map")))
    return {s: float(np.mean(v)) for s, v in seeds.items()}


def _rung_test(rung: str, cell_a: list[Record], cell_b: list[Record]) -> RungTest:
    va = np.array([r.get("map") for r in cell_a], dtype=float)
    vb = np.array([r.get("map") for r in cell_b], dtype=float)
    sa, sb = _by_seed(cell_a), _by_seed(cell_b)
    common = sorted(set(sa) & set(sb))
    d = np.array([sa[s] - sb[s] for s in common], dtype=float)
    return RungTest(rung, va, vb, float(np.mean([r.get("flops") for r in cell_a])),
                    float(np.mean([r.get("flops") for r in cell_b])), welch_pvalue(va, vb), d,
                    len(set(sa) ^ set(sb)))


def _pair_test(a: str, b: str, tests: list[RungTest]) -> PairTest:
    """The paired stratified sign-flip test over the rungs' common seeds; unpaired permutation test without any."""
    if any(len(t.d) for t in tests):
        diff, p, exact = stratified_flip_p([t.d for t in tests])
        return PairTest(a, b, tuple(tests), diff, p, exact)
    p, exact = permutation_p([(t.a, t.b) for t in tests])
    diff = float(np.mean([t.a.mean() - t.b.mean() for t in tests]))
    return PairTest(a, b, tuple(tests), diff, p, exact, paired=False)


def compare_topologies(records: Sequence[Record], alpha: float = ALPHA) -> list[PairTest]:
    """One PairTest per pair of topologies that share at least one rung, Holm-adjusted across those pairs."""
    cells = _cells(records)
    rungs: dict[str, set[str]] = {}
    for topology, rung in cells:
        rungs.setdefault(topology, set()).add(rung)
    out = []
    for a, b in _pair_order(sorted(rungs)):
        shared = sorted(rungs[a] & rungs[b])
        if shared:
            out.append(_pair_test(a, b, [_rung_test(rung, cells[a, rung], cells[b, rung]) for rung in shared]))
    adjusted, floors = holm_adjusted([t.p_value for t in out]), holm_floors([t.min_p for t in out])
    return [dataclasses.replace(t, holm_p=h, family=len(out), alpha=alpha, floor=f)
            for t, h, f in zip(out, adjusted, floors)]


def paper_sentence(test: PairTest) -> str:
    """A plain sentence comparing the proxy verdict (after Holm's correction) with the paper's Table 5 ordering."""
    if test.a not in TABLE5 or test.b not in TABLE5:
        return f"The paper's Table 5 has no entry for {test.a if test.a not in TABLE5 else test.b}."
    gap = TABLE5[test.a] - TABLE5[test.b]
    holm = f", Holm-adjusted over {test.family} pairs: {test.p_holm:.3g}" if test.family > 1 else ""
    head = (f"Paper Table 5: {test.a} {TABLE5[test.a]} vs {test.b} {TABLE5[test.b]} COCO AP ({gap:+.2f}). "
            f"Proxy: {test.a} - {test.b} = {test.diff:+.4f} mAP at matched rungs ({test.test_name} p = {test.p_text}"
            f"{holm}).")
    ratio = float(np.mean([r.flops_a / r.flops_b for r in test.rungs]))
    if abs(ratio - 1) > 0.005:
        more = "more" if ratio > 1 else "fewer"
        head += f" At these rungs {test.a} uses {abs(ratio - 1):.1%} {more} FLOPs than {test.b}."
    noise = f"beyond seed noise{test.holm_phrase} (family-wise error {test.alpha:g})"
    if test.verdict == "above":
        return head + f" **Agrees:** {test.a}'s front lies above {test.b}'s {noise}, as in the paper."
    if test.verdict == "below":
        return head + f" **Disagrees:** {test.a}'s front lies below {test.b}'s {noise}, the reverse of the paper."
    lean = "the same way as" if test.diff > 0 else "the opposite way to"
    if test.verdict == "untestable":
        count = (f"{test.pairs} pairs, so {2**test.pairs:,} sign assignments" if test.paired
                 else f"{relabellings(test.design):,} relabellings")
        floor = test.min_p * test.family if test.floor is None else test.floor
        after = f" ({floor:.3g} after Holm over {test.family} pairs)" if test.family > 1 else ""
        return head + (f" **Not testable:** with {test.seeds_text} at {test.rungs_text} rung(s) the {test.test_name} "
                       f"test has {count}; its smallest p is {test.min_p:.3g}{after}, so p < {test.alpha:g} cannot be "
                       f"reached by construction, whatever the mAPs; the mean points {lean} the paper. To tell the "
                       f"two apart, {test.fix_text}.")
    return head + (f" **Not confirmed:** the difference is within seed noise (p >= {test.alpha:g}{test.holm_phrase}); "
                   f"the mean points {lean} the paper, but this proxy cannot tell the two apart.")


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
    topology choice) but whose design cannot reach a Holm-adjusted p < ALPHA even at its best (every pair at
    every rung the space and trial budget allow, every seed complete, every pair of topologies in one family);
    None otherwise. It names the seeds needed. The report's test is the paired sign-flip test: ``seeds x rungs``
    paired differences per pair of topologies, smallest p 2 / 2^(seeds x rungs), times the family size after Holm.
    Pure: reads ``config.seeds``, ``config.space`` and ``config.search.n_trials`` only."""
    seeds = config.seeds
    topologies, rungs = design_rungs(config)
    if seeds < 2 or topologies < 2 or rungs < 1 or math.isinf(rungs):
        return None
    rungs = int(rungs)
    family = math.comb(topologies, 2)
    floor = min(1.0, family * flip_min_p(seeds * rungs))
    if floor < ALPHA:
        return None
    need = flips_needed(family, per=rungs)
    points = config.search.n_trials // seeds
    fix = (f"set seeds: {need} (and search.n_trials: {need * points} to keep {points} points)" if need
           else "add seeds or rungs")
    return (f"warning: this study compares {family} pair(s) of topologies over {seeds} paired seeds at {rungs} "
            f"rung(s), so the report's sign-flip test has {seeds * rungs} paired differences per pair and its "
            f"smallest Holm-adjusted p is {floor:.2g}: p < {ALPHA} cannot be reached by construction; {fix}")
