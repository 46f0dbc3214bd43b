"""Spending training where it matters: a rung-based successive halving for several objectives, and a
zero-cost prefilter. Both decide from the trials seen so far (asynchronous, no waiting for a full rung),
so any number of workers can share them through the study's storage.

Multi-objective successive halving (``search.pruning: successive_halving`` with two objectives)
    Asynchronous successive halving (ASHA, Li et al. 2020) with the "top 1/eta" of a rung taken over a
    non-dominated sorting (NSGA-II's ranking, Deb et al. 2002) instead of one value: a trial evaluated at
    rung ``r`` (``min_resource * eta**k`` steps) goes on if it is in the best ``max(1, n // eta)`` of the
    ``n`` trials that have reached ``r``, ordered by (non-dominated front, crowding distance larger first,
    first objective). Each trial's vector at a rung is its intermediate mAP there with its cost objectives
    (FLOPs, params, latency: known before training), so a cheap detector with a fair mAP at 50 steps
    survives beside an expensive one with a better mAP -- a single-value halving would keep only the
    latter and collapse the front. Optuna's pruners take one value per step (``trial.report`` refuses
    multi-objective studies), hence this.

Zero-cost prefilter (``search.prefilter``)
    Each candidate's zero-cost score (``scalesearch.zero_cost``, one batch) is recorded before training;
    a candidate is trained only when it ranks in the best ``keep`` fraction of the candidates scored so
    far (the score with the study's cost objectives, by the same non-dominated ordering, so a prefilter
    in a mAP-vs-FLOPs study does not just keep the largest detectors). The others end ``pruned`` with the
    reason, at the price of one batch. ``benchmarks/bench_multi_fidelity.py`` measures what it buys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

Vector = Sequence[float]


def front_indices(points: np.ndarray) -> np.ndarray:
    """Non-dominated front index of each row (0 = the Pareto front) of ``points``, all minimised."""
    points = np.asarray(points, dtype=float)
    n = len(points)
    front = np.full(n, -1)
    remaining = np.arange(n)
    level = 0
    while remaining.size:
        sub = points[remaining]
        dominated = np.array([
            bool(np.any(np.all(sub <= sub[i], axis=1) & np.any(sub < sub[i], axis=1))) for i in range(len(sub))])
        front[remaining[~dominated]] = level
        remaining = remaining[dominated]
        level += 1
    return front


def crowding(points: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each row within its own set (boundary points: infinity)."""
    points = np.asarray(points, dtype=float)
    n, m = points.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, math.inf)
    for j in range(m):
        order = np.argsort(points[:, j], kind="stable")
        span = points[order[-1], j] - points[order[0], j]
        distance[order[0]] = distance[order[-1]] = math.inf
        if span > 0:
            distance[order[1:-1]] += (points[order[2:], j] - points[order[:-2], j]) / span
    return distance


def ranking(points: np.ndarray) -> np.ndarray:
    """Row indices best first: by front, then crowding distance (larger first), then the first column."""
    points = np.asarray(points, dtype=float)
    fronts = front_indices(points)
    spread = np.zeros(len(points))
    for level in np.unique(fronts):
        members = np.flatnonzero(fronts == level)
        spread[members] = crowding(points[members])
    return np.array(sorted(range(len(points)), key=lambda i: (fronts[i], -spread[i], points[i, 0], i)))


def minimised(vector: Vector, directions: Sequence[str]) -> list[float]:
    """``vector`` with maximised entries negated (so smaller is better everywhere); missing -> worst."""
    out = []
    for value, direction in zip(vector, directions):
        value = math.inf if value is None or not math.isfinite(value) else float(value) * (
            -1.0 if direction == "maximize" else 1.0)
        out.append(value if math.isfinite(value) else math.inf)
    return out


def in_best_fraction(mine: Vector, peers: Sequence[Vector], directions: Sequence[str], *,
                     fraction: float | None = None, eta: int | None = None) -> bool:
    """Whether ``mine`` ranks among the best of ``peers`` + itself: the best ``ceil(fraction * n)``
    (prefilter) or the best ``max(1, n // eta)`` (successive halving). Ties keep the earlier trials first."""
    rows = np.array([minimised(v, directions) for v in [*peers, mine]])
    n = len(rows)
    keep = max(1, math.ceil(fraction * n) if fraction is not None else n // int(eta or 1))
    return bool(len(rows) - 1 in set(ranking(rows)[:keep].tolist()))


@dataclass(frozen=True)
class ParetoHalving:
    """Rung-based successive halving over non-dominated sorting (module docstring). ``min_resource``:
    steps of the first rung (the study's ``train.eval_every``); ``eta``: the reduction factor."""

    min_resource: int
    max_resource: int
    eta: int = 3

    def __post_init__(self) -> None:
        if self.min_resource < 1 or self.eta < 2:
            raise ValueError(f"bad halving settings: min_resource {self.min_resource}, eta {self.eta}")

    @property
    def rungs(self) -> list[int]:
        """Steps at which a trial can be stopped (the last rung, the full budget, stops nothing)."""
        out, step = [], self.min_resource
        while step < self.max_resource:
            out.append(step)
            step *= self.eta
        return out

    def keep(self, mine: Vector, peers: Sequence[Vector], directions: Sequence[str]) -> bool:
        return in_best_fraction(mine, peers, directions, eta=self.eta)


def rung_key(step: int) -> str:
    """The storage attribute holding a trial's objective vector at the rung of ``step`` steps."""
    return f"rung_{step}"
