"""Pareto fronts, hypervolume and seed-repeat aggregation over trial records.

Pure functions over ``scalesearch.records.TrialRecord``s (anything with ``.get(flat_key)`` works, so plain
dicts too); nothing here plots or reads files. Objectives are metric names from ``scalesearch.metrics``,
whose registry gives each one its direction. Conventions, fixed once for the whole project:

* **Feasible** means ``state == "complete"`` with finite ``map``, ``flops`` and ``params``.
  Infeasible, failed, pruned and running trials never enter a front.
* **Dominance**: ``a`` dominates ``b`` when ``a`` is no worse on every objective and strictly better
  on at least one. Equal points therefore do not dominate each other: **duplicates and exact ties are
  all kept on the front** (as Optuna's ``study.best_trials`` does), so a report lists every trial that
  reached a front point, e.g. two seeds that scored the same.
* **Duplicates are not repeats**: a trial marked ``duplicate_of`` (the sampler proposed a point and seed the run
  had already measured; ``scalesearch.records.TrialRecord``) is the same measurement as the trial it names, so
  the seed-repeat aggregates (``aggregate_repeats``, ``seed_repeats``) leave it out. Fronts keep it, as any tie.
* A front over other objectives (e.g. ``("map", "latency_ms")``) also needs every objective finite.
* **Hypervolume** (2-D, exact) is measured in the plane (log10 cost, mAP), cost FLOPs unless the objectives
  name another (e.g. latency): the area dominated by the front and bounded by the reference point
  (log10 ``ref``, mAP 0). Units: decades of cost x mAP. The log axis gives each doubling of compute the
  same weight, as the paper's FLOPs plots do. The reference defaults to twice the largest budget on that
  cost (twice the largest feasible cost when the study has none), so a trial right at the budget still
  adds area.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scalesearch.metrics import get_metric
from scalesearch.spec import DetectorSpec

Record = Any  # a TrialRecord, or any mapping-like object with .get(flat_key)
Objectives = Sequence[str]  # metric names; directions come from the registry

MAP_FLOPS: Objectives = ("map", "flops")
MAP_PARAMS: Objectives = ("map", "params")
# The spec keys of a flat record, in DetectorSpec's order; records written before ``weights`` carry the
# legacy ``pretrained`` flag instead (as ``scalesearch.records`` reads them).
SPEC_FIELDS: tuple[str, ...] = (*(f.name for f in dataclasses.fields(DetectorSpec) if f.name != "name"), "pretrained")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_feasible(record: Record) -> bool:
    """A complete trial with finite mAP, FLOPs and params (the only trials fronts consider)."""
    return record.get("state") == "complete" and all(_finite(record.get(k)) for k in ("map", "flops", "params"))


def feasible(records: Iterable[Record]) -> list[Record]:
    return [r for r in records if is_feasible(r)]


def non_dominated_mask(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``points`` [N, M], all objectives minimised.

    Equal rows do not dominate each other, so duplicates of a front point are all kept.
    """
    points = np.asarray(points, dtype=float).reshape(len(points), -1)
    no_worse = (points[:, None, :] <= points[None, :, :]).all(axis=2)  # [i, j]: i no worse than j
    better = (points[:, None, :] < points[None, :, :]).any(axis=2)
    dominated = (no_worse & better).any(axis=0)
    return ~dominated


def _as_minimised(records: Sequence[Record], objectives: Objectives) -> np.ndarray:
    """[N, M] matrix of the objectives, signs flipped so that every column is minimised."""
    signs = [-1.0 if get_metric(name).maximize else 1.0 for name in objectives]
    return np.array([[s * float(r.get(k)) for s, k in zip(signs, objectives)] for r in records]).reshape(
        len(records), len(objectives)
    )


def cost_of(objectives: Objectives) -> str:
    """The first minimised objective (the cost axis of a front)."""
    return next(name for name in objectives if not get_metric(name).maximize)


def gain_of(objectives: Objectives) -> str:
    """The first maximised objective (the accuracy axis of a front); ``map`` when none is."""
    return next((name for name in objectives if get_metric(name).maximize), "map")


def pareto_front(records: Iterable[Record], objectives: Objectives = MAP_FLOPS) -> list[Record]:
    """The non-dominated feasible records with every objective finite, sorted by the first minimised objective
    (cost), then best first, then number."""
    candidates = [r for r in feasible(records) if all(_finite(r.get(k)) for k in objectives)]
    if not candidates:
        return []
    mask = non_dominated_mask(_as_minimised(candidates, objectives))
    cost, gain = cost_of(objectives), gain_of(objectives)
    front = [r for r, keep in zip(candidates, mask) if keep]
    return sorted(front, key=lambda r: (r.get(cost), -r.get(gain), r.get("number", 0)))


def last_report(record: Record) -> tuple[int, float] | None:
    """(step, mAP) of the last finite intermediate evaluation (``intermediate``: step -> mAP); None without one.
    A pruned trial stopped there: this is its rung and how far it had got."""
    reports = [(int(step), float(value)) for step, value in (record.get("intermediate") or {}).items() if _finite(value)]
    return max(reports) if reports else None


def fronts_by(records: Iterable[Record], key: str = "topology",
              objectives: Objectives = MAP_FLOPS) -> dict[str, list[Record]]:
    """One front per value of ``key`` (e.g. per topology), over that group's feasible records."""
    groups: dict[str, list[Record]] = {}
    for record in feasible(records):
        if all(_finite(record.get(k)) for k in objectives):
            groups.setdefault(str(record.get(key)), []).append(record)
    return {name: pareto_front(group, objectives) for name, group in sorted(groups.items())}


def hypervolume_2d(points: np.ndarray, ref: Sequence[float]) -> float:
    """Exact area dominated by ``points`` [N, 2] (both minimised) and bounded by ``ref`` (x, y).

    Points not strictly better than ``ref`` on both axes add nothing. Sweep over x: each strip
    [x_i, x_{i+1}) is dominated up to the best y seen so far.
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    pts = pts[(pts[:, 0] < ref[0]) & (pts[:, 1] < ref[1])]
    if len(pts) == 0:
        return 0.0
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]
    best_y = np.minimum.accumulate(pts[:, 1])
    right = np.append(pts[1:, 0], ref[0])
    return float(np.sum((right - pts[:, 0]) * (ref[1] - best_y)))


def reference_flops(records: Iterable[Record], budgets: Iterable[float] = ()) -> float | None:
    """Twice the largest FLOPs budget, else twice the largest feasible FLOPs; None with neither."""
    return reference_cost(records, "flops", budgets)


def reference_cost(records: Iterable[Record], cost: str = "flops", budgets: Iterable[float] = ()) -> float | None:
    """Twice the largest budget on ``cost`` (``budgets``, and for FLOPs the records' ``budget_flops``), else twice
    the largest finite ``cost`` of a feasible record; None with neither."""
    records = list(records)
    budgets = [float(b) for b in budgets]
    if cost == "flops":
        budgets += [float(r.get("budget_flops")) for r in records if _finite(r.get("budget_flops"))]
    if budgets:
        return 2.0 * max(budgets)
    values = [float(r.get(cost)) for r in feasible(records) if _finite(r.get(cost))]
    return 2.0 * max(values) if values else None


def study_hypervolume(records: Iterable[Record], ref: float, objectives: Objectives = MAP_FLOPS) -> float:
    """Hypervolume of the front over ``objectives`` (gain, cost) in (log10 cost, gain), reference (log10 ref, 0)."""
    cost, gain = cost_of(objectives), gain_of(objectives)
    good = [r for r in feasible(records) if _finite(r.get(cost)) and _finite(r.get(gain))]
    if not good:
        return 0.0
    points = np.array([[math.log10(r.get(cost)), -float(r.get(gain))] for r in good])
    return hypervolume_2d(points, (math.log10(ref), 0.0))


def hypervolume_history(records: Iterable[Record], ref: float,
                        objectives: Objectives = MAP_FLOPS) -> list[tuple[int, float]]:
    """(trial number, hypervolume of the trials numbered up to it), for every trial in number order.

    The front so far is kept as the trials arrive: a trial it dominates (or equals) adds no area and costs one
    comparison with the front, so 2,000 trials cost O(trials x front), not a sweep over every earlier trial each."""
    cost, gain = cost_of(objectives), gain_of(objectives)
    corner = (math.log10(ref), 0.0)
    front, value, out = np.empty((0, 2)), 0.0, []
    for r in sorted(records, key=lambda r: r.get("number")):
        if is_feasible(r) and _finite(r.get(cost)) and _finite(r.get(gain)):
            point = np.array([math.log10(r.get(cost)), -float(r.get(gain))])
            if not (front <= point).all(axis=1).any():  # neither dominated nor equalled: the front moves
                front = np.vstack([front[~(point <= front).all(axis=1)], point])
                value = hypervolume_2d(front, corner)
        out.append((r.get("number"), value))
    return out


def best_under_budget(records: Iterable[Record], budget: float, cost: str = "flops") -> Record | None:
    """The feasible record with the highest mAP among those with ``cost <= budget``.

    Ties on mAP go to the cheaper trial, then to the lower trial number. None when nothing fits.
    """
    fits = [r for r in feasible(records) if r.get(cost) <= budget]
    if not fits:
        return None
    return min(fits, key=lambda r: (-r.get("map"), r.get(cost), r.get("number", 0)))


def group_key(record: Record) -> str:
    """The record's ``group`` label; without one, its spec fields and ``phi`` (all but the seed)."""
    if record.get("group") not in (None, ""):
        return str(record.get("group"))
    return "/".join(f"{k}={record.get(k)}" for k in (*SPEC_FIELDS, "phi") if record.get(k) is not None)


@dataclass(frozen=True)
class Repeats:
    """The seed repeats of one point: mAP over seeds (``map_std`` is the sample standard deviation, ddof=1;
    NaN when n == 1), mean FLOPs and params (equal within a group), trial numbers, seeds, and ``record``,
    the group's first record (for its spec fields)."""

    group: str
    n: int
    map_mean: float
    map_std: float
    map_min: float
    map_max: float
    flops: float
    params: float
    numbers: tuple[int, ...]
    seeds: tuple[int, ...]
    record: Record


def is_duplicate(record: Record) -> bool:
    """Whether the record measured again what an earlier trial measured (``duplicate_of`` set): not a repeat."""
    return record.get("duplicate_of") is not None


def measurements(records: Iterable[Record]) -> list[Record]:
    """The feasible records that are measurements of their own (duplicates left out): what seeds are counted over."""
    return [r for r in feasible(records) if not is_duplicate(r)]


def aggregate_repeats(records: Iterable[Record]) -> list[Repeats]:
    """Seed repeats of the same point (``group_key``), over the feasible records that are not duplicates, sorted by
    mean FLOPs. Records written before duplicates were marked may still hold one point trained twice with one seed
    (``seed_repeats`` counts such a seed once)."""
    groups: dict[str, list[Record]] = {}
    for record in measurements(records):
        groups.setdefault(group_key(record), []).append(record)
    return sorted((_summarise(name, rs) for name, rs in groups.items()), key=lambda g: (g.flops, g.group))


def _summarise(name: str, records: list[Record]) -> Repeats:
    records = [r for r in records if not is_duplicate(r)] or records  # callers pass measurements already
    maps = np.array([r.get("map") for r in records], dtype=float)
    records = sorted(records, key=lambda r: r.get("number", 0))
    return Repeats(
        group=name, n=len(maps), map_mean=float(maps.mean()),
        map_std=float(maps.std(ddof=1)) if len(maps) > 1 else float("nan"),
        map_min=float(maps.min()), map_max=float(maps.max()),
        flops=float(np.mean([r.get("flops") for r in records])),
        params=float(np.mean([r.get("params") for r in records])),
        numbers=tuple(r.get("number") for r in records), seeds=tuple(r.get("seed") for r in records),
        record=records[0],
    )


def has_repeats(groups: Iterable[Repeats]) -> bool:
    """True when at least one aggregated point was run more than once (with any seeds)."""
    return any(g.n > 1 for g in groups)


def seed_repeats(records: Iterable[Record]) -> list[Repeats]:
    """The points run with at least two distinct seeds, each summarised over its first record per seed: a duplicate
    (``duplicate_of``) is left out, and a point trained twice with the same seed in a run that did not mark
    duplicates yet is the same measurement too, counted once."""
    groups: dict[str, dict[Any, Record]] = {}
    for record in sorted(measurements(records), key=lambda r: r.get("number", 0)):
        groups.setdefault(group_key(record), {}).setdefault(record.get("seed"), record)
    real = [_summarise(name, list(by_seed.values())) for name, by_seed in groups.items() if len(by_seed) > 1]
    return sorted(real, key=lambda g: (g.flops, g.group))
