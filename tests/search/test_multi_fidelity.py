"""Multi-objective successive halving and the zero-cost prefilter (``scalesearch.search.multi_fidelity``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import scalesearch.measure.zero_cost
from conftest import records_json, tiny_study
from scalesearch.cli import main
from scalesearch.search.multi_fidelity import ParetoHalving, crowding, front_indices, in_best_fraction, ranking

MAP_FLOPS = ("maximize", "minimize")


def test_front_indices_by_hand():
    # minimised points: (1,4) (2,2) (4,1) are the front; (3,3) is dominated by (2,2); (4,4) by all three
    points = np.array([[1, 4], [3, 3], [2, 2], [4, 4], [4, 1]], dtype=float)
    assert front_indices(points).tolist() == [0, 1, 0, 2, 0]


def test_crowding_by_hand():
    points = np.array([[0.0, 4.0], [1.0, 2.0], [4.0, 0.0]])
    # middle point: (4-0)/4 + (4-0)/4 = 2; the boundary points are infinitely crowded-apart
    assert crowding(points).tolist() == [math.inf, 2.0, math.inf]


def test_ranking_orders_front_then_spread_then_first_objective():
    points = np.array([[2.0, 2.0], [1.0, 4.0], [3.0, 3.0], [4.0, 1.0], [1.5, 3.0]])
    # front 0: rows 0, 1, 3, 4; boundary rows 1 (x=1) and 3 (y=1) first, ordered by x; then 4 vs 0 by crowding:
    # row 4: |2-1|/3 + |4-2|/3 = 1.0, row 0: |4-1.5|/3 + |3-1|/3 = 1.5 -> row 0 first; row 2 is front 1
    assert ranking(points).tolist() == [1, 3, 0, 4, 2]


def test_in_best_fraction_keeps_a_cheap_point_a_single_value_would_drop():
    peers = [(0.30, 2e9), (0.28, 1.9e9), (0.25, 1.8e9)]
    cheap = (0.10, 0.2e9)  # worst mAP, but the cheapest: a boundary of the front
    assert in_best_fraction(cheap, peers, MAP_FLOPS, eta=2)  # best 2 of 4: cheap and the best mAP
    assert not in_best_fraction((0.20, 2.5e9), peers, MAP_FLOPS, eta=2)  # dominated by every peer
    assert in_best_fraction((0.5, 9e9), [], MAP_FLOPS, eta=3)  # the first trial at a rung goes on
    assert not in_best_fraction((None, 1e9), [(0.1, 1e9)], MAP_FLOPS, fraction=0.5)  # a missing value is worst


def test_halving_rungs():
    assert ParetoHalving(min_resource=10, max_resource=150).rungs == [10, 30, 90]
    assert ParetoHalving(min_resource=50, max_resource=150).rungs == [50]
    with pytest.raises(ValueError):
        ParetoHalving(min_resource=0, max_resource=10)


def test_multi_objective_halving_stops_trials_at_a_rung(tmp_path, fake):
    study = tiny_study(tmp_path, objectives=["maximize map", "minimize flops"],
                       search={"n_trials": 10, "pruning": "successive_halving", "sampler": "random"},
                       train={"steps": 9, "eval_every": 3},
                       space={"phi": {"low": -3.0, "high": -1.0}, "topology": ["fpn", "bifpn"], "resolution": 128})
    assert main(["run", str(study), "--quiet"]) == 0
    records = records_json(tmp_path / "run")
    assert len(records) == 10
    pruned = [r for r in records if r["state"] == "pruned"]
    complete = [r for r in records if r["state"] == "complete"]
    assert pruned and complete and len(pruned) + len(complete) == 10
    for record in pruned:  # stopped at the only rung (3 steps) and says why
        assert max(int(k) for k in record["intermediate"]) == 3 and "rung" in record["reason"]
    for record in complete:
        assert max(int(k) for k in record["intermediate"]) == 9
    # the halving replayed by hand: each pruned trial is outside the best n // 3 at its rung, in trial order
    seen = []
    for record in sorted(records, key=lambda r: r["number"]):
        vector = (record["intermediate"]["3"], record["flops"])
        kept = in_best_fraction(vector, seen, MAP_FLOPS, eta=3)
        assert kept == (record["state"] == "complete")
        seen.append(vector)


def test_halving_settings_are_validated(tmp_path, fake, capsys):
    study = tiny_study(tmp_path, objectives=["maximize map", "minimize flops"],
                       search={"pruning": "median"}, train={"steps": 4, "eval_every": 2})
    assert main(["run", str(study), "--quiet"]) == 2
    assert "only 'successive_halving'" in capsys.readouterr().err
    study = tiny_study(tmp_path, search={"pruning": "successive_halving"}, train={"steps": 4})
    assert main(["run", str(study), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train.eval_every must be set" in err


def _fake_scores(spec, train_data, cfg, batches=None):
    return {"naswot": float(spec.fpn_channels), "synflow": 1.0, "grad_norm": 1.0}


def test_prefilter_trains_only_the_best_scored_fraction(tmp_path, fake, monkeypatch):
    monkeypatch.setattr(scalesearch.measure.zero_cost, "trial_scores", _fake_scores)
    study = tiny_study(tmp_path, search={"n_trials": 10, "sampler": "random",
                                         "prefilter": {"score": "naswot", "keep": 0.5}},
                       space={"phi": {"low": -3.0, "high": -1.0}, "resolution": 128})
    assert main(["run", str(study), "--quiet"]) == 0
    records = sorted(records_json(tmp_path / "run"), key=lambda r: r["number"])
    assert len(records) == 10 and len(fake) < 10  # fewer trainings than candidates
    seen = []
    for record in records:
        score = record["zero_cost"]["naswot"]
        kept = in_best_fraction((score,), seen, ("maximize",), fraction=0.5)
        assert (record["state"] == "complete") == kept
        if not kept:
            assert record["reason"].startswith("prefilter: naswot") and record["steps"] == 0
        seen.append((score,))
    assert len(fake) == sum(r["state"] == "complete" for r in records)


def test_prefilter_needs_zero_cost_scores(tmp_path, fake, capsys):
    study = tiny_study(tmp_path, search={"zero_cost": False, "prefilter": {"keep": 0.5}})
    assert main(["run", str(study), "--quiet"]) == 2
    assert "search.prefilter" in capsys.readouterr().err
