"""Pareto selection, hypervolume and repeat aggregation on hand-made typed records."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from scalesearch import pareto
from scalesearch.records import TrialRecord


def rec(number, map_, flops, params=None, state="complete", **extra):
    return TrialRecord.from_json({"number": number, "state": state, "map": map_, "flops": flops,
                                  "params": flops / 100 if params is None else params, **extra})


def numbers(records):
    return [r.number for r in records]


def brute_front(records):
    """Independent O(n^2) dominance check with plain Python loops (maximise map, minimise flops)."""
    good = [r.flat for r in records if r.state == "complete" and r.get("map") is not None]
    keep = []
    for a in good:
        beaten = any(
            b["map"] >= a["map"] and b["flops"] <= a["flops"] and (b["map"] > a["map"] or b["flops"] < a["flops"])
            for b in good
        )
        if not beaten:
            keep.append(a["number"])
    return sorted(keep)


def brute_hypervolume(points, ref):
    """Area by coordinate compression: sum the grid cells that some point dominates."""
    pts = [p for p in points if p[0] < ref[0] and p[1] < ref[1]]
    xs = sorted({p[0] for p in pts} | {ref[0]})
    ys = sorted({p[1] for p in pts} | {ref[1]})
    area = 0.0
    for (x0, x1), (y0, y1) in itertools.product(zip(xs, xs[1:]), zip(ys, ys[1:])):
        if any(p[0] <= x0 and p[1] <= y0 for p in pts):
            area += (x1 - x0) * (y1 - y0)
    return area


def test_front_drops_dominated_and_sorts_by_flops():
    records = [rec(0, 0.30, 2e9), rec(1, 0.20, 3e9), rec(2, 0.40, 5e9), rec(3, 0.10, 1e9), rec(4, 0.35, 5e9)]
    assert numbers(pareto.pareto_front(records)) == [3, 0, 2]


def test_duplicates_are_all_kept():
    records = [rec(0, 0.3, 2e9), rec(1, 0.3, 2e9), rec(2, 0.1, 2e9)]
    assert numbers(pareto.pareto_front(records)) == [0, 1]


def test_ties_on_one_axis_keep_only_the_better_point():
    # Same FLOPs, lower mAP -> dominated; same mAP, more FLOPs -> dominated.
    records = [rec(0, 0.3, 2e9), rec(1, 0.2, 2e9), rec(2, 0.3, 4e9), rec(3, 0.5, 4e9)]
    assert numbers(pareto.pareto_front(records)) == [0, 3]


@pytest.mark.parametrize("state", ["infeasible", "failed", "pruned", "running"])
def test_all_infeasible_gives_empty_front_and_zero_hypervolume(state):
    records = [rec(0, None, 9e9, state=state), rec(1, None, 8e9, state=state)]
    assert pareto.pareto_front(records) == []
    assert pareto.study_hypervolume(records, 1e10) == 0.0
    assert pareto.best_under_budget(records, 1e12) is None
    assert pareto.aggregate_repeats(records) == []


def test_nan_map_is_not_feasible():
    assert not pareto.is_feasible(rec(0, float("nan"), 1e9))
    assert pareto.is_feasible(rec(0, 0.0, 1e9))


def test_one_trial_study():
    records = [rec(7, 0.25, 1e9)]
    assert numbers(pareto.pareto_front(records)) == [7]
    # One point at 1 GFLOPs with ref 10 GFLOPs: one decade x 0.25 mAP.
    assert pareto.study_hypervolume(records, 1e10) == pytest.approx(0.25)
    assert pareto.hypervolume_history(records, 1e10) == [(7, pytest.approx(0.25))]


def test_hypervolume_hand_computed():
    # (log10 flops, map): (9, 0.2), (9.5, 0.4) with ref (10, 0): 0.5*0.2 + 0.5*0.4 = 0.3
    records = [rec(0, 0.2, 1e9), rec(1, 0.4, 10**9.5), rec(2, 0.1, 10**9.7)]
    assert pareto.study_hypervolume(records, 1e10) == pytest.approx(0.3)


def test_hypervolume_history_is_monotone_and_skips_infeasible():
    records = [rec(0, 0.2, 1e9), rec(1, None, 1e9, state="infeasible"), rec(2, 0.4, 10**9.5)]
    history = pareto.hypervolume_history(records, 1e10)
    assert [n for n, _ in history] == [0, 1, 2]
    assert [round(v, 9) for _, v in history] == [0.2, 0.2, 0.3]


def test_points_beyond_reference_add_nothing():
    assert pareto.hypervolume_2d(np.array([[2.0, -1.0], [0.0, 0.5]]), (1.0, 0.0)) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_against_brute_force_on_random_points(seed):
    rng = np.random.default_rng(seed)
    n = 40
    # Coarse values so that ties and duplicates occur.
    maps = rng.integers(0, 8, n) / 10
    flops = 10.0 ** (9 + rng.integers(0, 6, n) / 5)
    states = rng.choice(["complete", "complete", "complete", "infeasible"], n)
    records = [rec(i, m if s == "complete" else None, f, state=s)
               for i, (m, f, s) in enumerate(zip(maps, flops, states))]
    assert sorted(numbers(pareto.pareto_front(records))) == brute_front(records)
    good = [r for r in records if r.state == "complete"]
    points = [(math.log10(r.flops), -r.get("map")) for r in good]
    expected = brute_hypervolume(points, (math.log10(4e10), 0.0))
    assert pareto.study_hypervolume(records, 4e10) == pytest.approx(expected)


@pytest.mark.parametrize("objectives", [pareto.MAP_FLOPS, ("map", "latency_ms")])
def test_hypervolume_history_equals_the_sweep_of_every_prefix(objectives):
    """The front kept as trials arrive gives each prefix's hypervolume, ties, duplicates and infeasible trials included."""
    rng = np.random.default_rng(7)
    maps, flops = rng.integers(0, 8, 120) / 10, 10.0 ** (9 + rng.integers(0, 6, 120) / 5)
    states = rng.choice(["complete", "complete", "complete", "pruned"], 120)
    records = [rec(i, m if s == "complete" else None, f, state=s, latency_ms=f / 1e8)
               for i, (m, f, s) in enumerate(zip(maps, flops, states))]
    ref = 4e10 if objectives == pareto.MAP_FLOPS else 400.0
    history = pareto.hypervolume_history(records[::-1], ref, objectives)  # any order in: number order out
    assert [n for n, _ in history] == list(range(120))
    assert [v for _, v in history] == pytest.approx(
        [pareto.study_hypervolume(records[: i + 1], ref, objectives) for i in range(120)], abs=1e-12)


def test_three_objectives_keep_a_cheaper_params_point():
    records = [rec(0, 0.3, 2e9, params=5e6), rec(1, 0.3, 2e9, params=4e6), rec(2, 0.3, 3e9, params=1e6)]
    objectives = ("map", "flops", "params")
    assert numbers(pareto.pareto_front(records, objectives)) == [1, 2]
    assert numbers(pareto.pareto_front(records, pareto.MAP_PARAMS)) == [2]


def test_best_under_budget_breaks_ties_by_cost_then_number():
    records = [rec(0, 0.3, 2e9), rec(1, 0.3, 1.5e9), rec(2, 0.3, 1.5e9), rec(3, 0.5, 6e9)]
    assert pareto.best_under_budget(records, 5e9).number == 1
    assert pareto.best_under_budget(records, 6e9).number == 3
    assert pareto.best_under_budget(records, 1e9) is None


def test_fronts_by_topology():
    records = [rec(0, 0.3, 2e9, topology="bifpn"), rec(1, 0.2, 3e9, topology="bifpn"),
               rec(2, 0.1, 1e9, topology="fpn"), rec(3, 0.4, 4e9, topology="fpn")]
    fronts = pareto.fronts_by(records)
    assert {k: numbers(v) for k, v in fronts.items()} == {"bifpn": [0], "fpn": [2, 3]}


def test_reference_flops_prefers_budgets():
    records = [rec(0, 0.3, 2e9, budget_flops=3e9)]
    assert pareto.reference_flops(records) == 6e9
    assert pareto.reference_flops(records, budgets=[5e9]) == 1e10
    assert pareto.reference_flops([rec(0, 0.3, 2e9)]) == 4e9
    assert pareto.reference_flops([]) is None


def test_aggregate_repeats_mean_std_n():
    records = [rec(0, 0.2, 1e9, group="bifpn/phi0", seed=0), rec(1, 0.4, 1e9, group="bifpn/phi0", seed=1),
               rec(2, 0.3, 2e9, group="fpn/phi0", seed=0), rec(3, None, 1e9, group="bifpn/phi0", state="failed")]
    groups = pareto.aggregate_repeats(records)
    assert [(g.group, g.n, g.seeds) for g in groups] == [("bifpn/phi0", 2, (0, 1)), ("fpn/phi0", 1, (0,))]
    assert groups[0].map_mean == pytest.approx(0.3)
    assert groups[0].map_std == pytest.approx(math.sqrt(0.02))
    assert math.isnan(groups[1].map_std)
    assert pareto.has_repeats(groups) and not pareto.has_repeats(groups[1:])


def test_group_key_is_the_records_group():
    assert pareto.group_key(rec(0, 0.2, 1e9, group="phi=0 topology=bifpn", seed=1)) == "phi=0 topology=bifpn"


def test_group_key_without_label_ignores_seed():
    # Plain mappings without a ``group`` (hand-made rows) fall back to their spec fields and phi.
    a = {"topology": "bifpn", "resolution": 256, "phi": 0, "seed": 0}
    b, c = {**a, "seed": 1}, {**a, "topology": "fpn", "seed": 1}
    assert pareto.group_key(a) == pareto.group_key(b) != pareto.group_key(c)


def test_front_over_latency_needs_a_measured_latency():
    records = [rec(0, 0.3, 1e9, latency_ms=20.0), rec(1, 0.4, 2e9), rec(2, 0.35, 3e9, latency_ms=10.0)]
    assert numbers(pareto.pareto_front(records, ("map", "latency_ms"))) == [2]
    assert pareto.reference_cost(records, "latency_ms") == 40.0
    assert pareto.reference_cost(records, "latency_ms", budgets=[15.0]) == 30.0
    # Only trial 2 counts: log10(40) - log10(10) decades x 0.35 mAP.
    assert pareto.study_hypervolume(records, 40.0, ("map", "latency_ms")) == pytest.approx(math.log10(4) * 0.35)


def test_last_report_is_the_last_finite_step():
    pruned = rec(0, None, 1e9, state="pruned", intermediate={"50": 0.1, "100": 0.2, "150": None})
    assert pareto.last_report(pruned) == (100, 0.2)
    assert pareto.last_report(rec(1, None, 1e9, state="pruned")) is None


def test_seed_repeats_need_distinct_seeds():
    records = [rec(0, 0.3, 1e9, seed=0, group="a"), rec(1, 0.3, 1e9, seed=0, group="a"),
               rec(2, 0.2, 2e9, seed=0, group="b"), rec(3, 0.4, 2e9, seed=1, group="b"),
               rec(4, 0.5, 2e9, seed=1, group="b")]
    assert pareto.has_repeats(pareto.aggregate_repeats(records))
    [group] = pareto.seed_repeats(records)
    assert (group.group, group.n, group.seeds, group.numbers) == ("b", 2, (0, 1), (2, 3))
    assert group.map_mean == pytest.approx(0.3)


def test_duplicates_are_never_seed_repeats():
    # trial 1 reused trial 0's result (the sampler proposed the same point and seed again): one measurement, n 1
    records = [rec(0, 0.3, 1e9, seed=0, group="a"), rec(1, 0.3, 1e9, seed=0, group="a", duplicate_of=0),
               rec(2, 0.2, 2e9, seed=0, group="b"), rec(3, 0.4, 2e9, seed=1, group="b"),
               rec(4, 0.2, 2e9, seed=0, group="b", duplicate_of=2)]
    groups = pareto.aggregate_repeats(records)
    assert [(g.group, g.n, g.seeds, g.numbers) for g in groups] == [("a", 1, (0,), (0,)), ("b", 2, (0, 1), (2, 3))]
    assert math.isnan(groups[0].map_std)  # not "n 2, std 0"
    assert groups[1].map_std == pytest.approx(math.sqrt(0.02))
    [group] = pareto.seed_repeats(records)
    assert (group.group, group.n, group.numbers) == ("b", 2, (2, 3))
    assert not pareto.has_repeats(pareto.aggregate_repeats(records[:2]))
    assert numbers(pareto.measurements(records)) == [0, 2, 3]
    assert numbers(pareto.pareto_front(records[:2])) == [0, 1]  # a front keeps it, as any tie


def test_summarise_leaves_duplicates_out():
    records = [rec(0, 0.3, 1e9, seed=0), rec(1, 0.3, 1e9, seed=0, duplicate_of=0), rec(2, 0.5, 1e9, seed=1)]
    summary = pareto._summarise("a", records)
    assert (summary.n, summary.numbers, summary.map_mean) == (2, (0, 2), pytest.approx(0.4))
