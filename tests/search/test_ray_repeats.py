"""Seed repeats on Ray: the searcher is told each objective's mean over a point's repeats, its constraints'
worst, and pruned only when no repeat has values (Ray's own Repeater tells one metric's mean, nothing else)."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from scalesearch.search.ray_backend import PRUNED_KEY, combine_repeats, point_repeater  # noqa: E402

METRICS = ["map", "flops"]


def test_objectives_are_averaged_over_the_repeats_that_have_values():
    results = [{"map": 0.30, "flops": 2.0, "constraint_flops": -1.0, PRUNED_KEY: False},
               {"map": 0.34, "flops": 2.0, "constraint_flops": -1.0, PRUNED_KEY: False},
               {"map": 0.10, PRUNED_KEY: True, "constraint_flops": -1.0}]
    assert combine_repeats(results, METRICS) == {"constraint_flops": -1.0, "map": pytest.approx(0.32), "flops": 2.0,
                                                 PRUNED_KEY: False}


def test_a_point_with_no_values_is_pruned_and_keeps_its_worst_constraint():
    results = [{PRUNED_KEY: True, "constraint_flops": 0.5}, {PRUNED_KEY: True, "constraint_flops": 0.7}]
    assert combine_repeats(results, METRICS) == {"constraint_flops": 0.7, PRUNED_KEY: True}


def test_the_searcher_hears_once_per_point_with_every_objective():
    from ray.tune.search import Searcher

    class Stub(Searcher):
        def __init__(self):
            super().__init__(metric=METRICS, mode=["max", "min"])
            self.told, self.n = [], 0

        def suggest(self, trial_id):
            self.n += 1
            return {"x": self.n}

        def on_trial_complete(self, trial_id, result=None, error=False):
            self.told.append((trial_id, result))

    stub = Stub()
    repeater = point_repeater(stub, 2)
    configs = [repeater.suggest(f"t{i}") for i in range(4)]
    assert [(c["x"], c["__trial_index__"]) for c in configs] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    repeater.on_trial_complete("t0", {"map": 0.2, "flops": 1.0, PRUNED_KEY: False})
    assert stub.told == []  # the point's other seed is still running
    repeater.on_trial_complete("t1", {"map": 0.4, "flops": 1.0, PRUNED_KEY: False})
    repeater.on_trial_complete("t2", {PRUNED_KEY: True})
    repeater.on_trial_complete("t3", {PRUNED_KEY: True})
    assert stub.told == [("t0", {"map": pytest.approx(0.3), "flops": 1.0, PRUNED_KEY: False}),
                         ("t2", {PRUNED_KEY: True})]
