"""Spending training where it matters: a rung-based successive halving for several objectives, and a
zero-cost prefilter. Both decide from the trials seen so far (asynchronous, no waiting for a full rung),
so any number of workers can share them. The decisions are backend-neutral (``TrialGates``): a backend feeds
them the peers it knows through a ``PeerBoard`` (Optuna: trial user attributes in the study's storage; Ray: a
board actor of the run, ``BoardStore``).

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
    Each candidate's zero-cost score (``scalesearch.measure.zero_cost``, one batch) is recorded before training;
    a candidate is trained only when it ranks in the best ``keep`` fraction of the candidates scored so
    far (the score with the study's cost objectives, by the same non-dominated ordering, so a prefilter
    in a mAP-vs-FLOPs study does not just keep the largest detectors). The others end ``pruned`` with the
    reason, at the price of one batch. ``benchmarks/bench_multi_fidelity.py`` measures what it buys.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

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


# ---- backend-neutral decisions ----------------------------------------------------------------------

class Pruned(Exception):
    """Raised at an intermediate evaluation by a pruning rule: the trial ends ``pruned`` with this reason."""


class PeerBoard(ABC):
    """What a backend tells one trial of the study's others: JSON values each trial posted under a key."""

    @abstractmethod
    def post(self, key: str, value: Any) -> None:
        """Post this trial's ``value`` under ``key`` (replacing an earlier one of its own)."""

    @abstractmethod
    def peers(self, key: str) -> list[Any]:
        """The values the other trials posted under ``key`` so far."""


class BoardStore:
    """Every trial's posts in one process (Ray's board actor, tests); ``view(owner)`` is one trial's board. With a
    ``path``, a JSON file kept current, so a resumed run decides over the peers of its earlier runs."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.posts: dict[str, dict[str, Any]] = {}
        if path and os.path.exists(path):
            self.posts = json.loads(Path(path).read_text())

    def post(self, owner: int, key: str, value: Any) -> None:
        self.posts.setdefault(key, {})[str(owner)] = value
        if self.path:
            tmp = f"{self.path}.{os.getpid()}.tmp"
            Path(tmp).write_text(json.dumps(self.posts))
            os.replace(tmp, self.path)

    def peers(self, owner: int, key: str) -> list[Any]:
        return [value for who, value in self.posts.get(key, {}).items() if who != str(owner)]

    def view(self, owner: int) -> PeerBoard:
        return BoardView(lambda *a: self.post(owner, *a), lambda key: self.peers(owner, key))


class BoardView(PeerBoard):
    """A ``PeerBoard`` over two callables: one trial's view of a local ``BoardStore``, or of a remote one."""

    def __init__(self, post: Callable[[str, Any], None], peers: Callable[[str], list[Any]]) -> None:
        self._post, self._peers = post, peers

    def post(self, key: str, value: Any) -> None:
        self._post(key, value)

    def peers(self, key: str) -> list[Any]:
        return self._peers(key)


def known_vector(config: Any, record: Any) -> list[float | None]:
    """The study's objectives as known before the estimate (cost and measured metrics; None for trained ones)."""
    from scalesearch.metrics import METRICS

    return [None if METRICS[o.metric].source == "training" else record.get(o.metric) for o in config.objectives]


class TrialGates:
    """The study's prefilter and pruning for one trial (``info``: a ``TrialInfo``), decided over ``board``; hand
    ``costed``, ``gate`` and ``on_eval`` to ``Evaluator.evaluate``. ``report``: a backend's own single-objective
    pruner (``(step, map) -> reason or None``, e.g. Optuna's ``trial.report``/``should_prune``); without one,
    ``successive_halving`` is ``RungHalving`` and ``median`` a median rule over the board."""

    def __init__(self, config: Any, board: PeerBoard | None, info: Any,
                 report: Callable[[int, float], str | None] | None = None) -> None:
        self.config, self.board, self.info, self.record = config, board, info, None
        pruning = config.search.pruning
        if pruning == "none":
            self.rule = None
        elif report is not None and len(config.objectives) == 1:
            self.rule = report
        elif pruning == "median":
            self.rule = self._median
        else:  # successive_halving: one objective, or several over non-dominated sorting
            cfg = config.train_config
            self.rule = RungHalving(ParetoHalving(min_resource=cfg.eval_every, max_resource=cfg.steps),
                                    config.directions, board, self._vector)

    def costed(self, record: Any) -> None:
        self.record = record

    @property
    def prunes(self) -> bool:
        return self.rule is not None

    def on_eval(self, step: int, value: float) -> None:
        """Stop the trial (``Pruned``) when the rule says so."""
        reason = self.rule(step, value) if self.rule is not None else None
        if reason:
            raise Pruned(reason)

    def _vector(self, value: float) -> list[float | None]:
        return [value if v is None else v for v in known_vector(self.config, self.record)]

    def _median(self, step: int, value: float) -> str | None:
        """Stop below the median of the other trials' mAP at this step, once 2 have reached it (Optuna's median
        pruner counts complete trials only; this one every trial that posted at the step)."""
        key = f"step_{step}"
        self.board.post(key, value)
        peers = [v for v in self.board.peers(key) if v is not None]
        if len(peers) < 2:
            return None
        median = statistics.median(peers)
        if (value < median) if self.config.directions[0] == "maximize" else (value > median):
            return f"pruned at step {step} with map {value:.4f}: below the median {median:.4f} of {len(peers)} trials"
        return None

    def gate(self, record: Any) -> str | None:
        """The zero-cost prefilter: train only candidates whose score (with the cost objectives) ranks in the
        best ``keep`` fraction of those scored so far in the study. A seed repeat follows its point's first
        decision (same spec, same score)."""
        settings = self.config.search.prefilter
        if settings is None:
            return None
        point_key = f"prefilter_point_{self.info.point}"
        if self.info.seed_index > 0:
            origin = self.board.peers(point_key)
            return origin[0] or None if origin else None
        score = (record.zero_cost or {}).get(settings.score)
        costs = [(v, o.direction) for v, o in zip(known_vector(self.config, record), self.config.objectives)
                 if v is not None]
        vector = [score, *(v for v, _ in costs)]
        peers = self.board.peers("prefilter")
        self.board.post("prefilter", vector)
        reason = None
        if not in_best_fraction(vector, peers, [settings.direction, *(d for _, d in costs)], fraction=settings.keep):
            shown = "missing" if score is None else f"{score:.4g}"
            reason = (f"prefilter: {settings.score} {shown} not in the best {settings.keep:g} of "
                      f"{len(peers) + 1} candidates scored")
        self.board.post(point_key, reason or "")
        return reason


class RungHalving:
    """``ParetoHalving`` at its rungs: a trial posts its vector (``vector(map)``: the intermediate mAP with its
    cost objectives) under ``rung_key(step)`` and goes on only among the best ``1/eta`` of the trials posted there."""

    def __init__(self, halving: ParetoHalving, directions: Sequence[str], board: PeerBoard,
                 vector: Callable[[float], list[float | None]]) -> None:
        self.halving, self.directions, self.board, self.vector = halving, directions, board, vector
        self.rungs = set(halving.rungs)

    def __call__(self, step: int, value: float) -> str | None:
        if step not in self.rungs:
            return None
        mine, key = self.vector(value), rung_key(step)
        self.board.post(key, mine)
        peers = self.board.peers(key)
        if self.halving.keep(mine, peers, self.directions):
            return None
        return (f"pruned at step {step} with map {value:.4f}: not in the best 1/{self.halving.eta} of "
                f"{len(peers) + 1} trials at this rung")
