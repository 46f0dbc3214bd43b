"""``TrialRecord.duplicate_of``: decoding old and new records, the measurement key, reusing a result, and marking
trials trained concurrently with the same point and seed (``scalesearch.records``)."""

from __future__ import annotations

import json

import pytest

from scalesearch.records import (
    State, TrialRecord, as_duplicate, check_trial, load_records, mark_concurrent_duplicates, measurement_key,
)

SPEC = {"topology": "fpn", "fpn_channels": 64, "resolution": 128}


def rec(number, seed=0, state="complete", map_=0.3, **extra):
    return TrialRecord.from_json({"number": number, "state": state, "seed": seed, "map": map_, "flops": 1e9,
                                  "params": 1e6, "budget_flops": 2e9, "phi": -3.0, **SPEC, **extra})


def test_old_records_decode_without_duplicate_and_new_ones_round_trip(tmp_path):
    old = {"number": 0, "state": "complete", "map": 0.2, "values": [0.2], "schema_version": 2}
    new = {**old, "number": 1, "duplicate_of": 0}
    (tmp_path / "trials.json").write_text(json.dumps([old, new]))
    first, second = load_records(tmp_path)
    assert (first.duplicate_of, second.duplicate_of) == (None, 0)
    assert "duplicate_of" not in second.space  # a field, not a space value
    assert TrialRecord.from_json(second.to_json()) == second and second.to_json()["duplicate_of"] == 0
    with pytest.raises(ValueError, match="duplicate_of: must be an integer or null"):
        check_trial({**new, "duplicate_of": "0"})


def test_measurement_key_is_spec_space_budget_and_seed():
    base = rec(0)
    assert measurement_key(base) == measurement_key(rec(7, label="other", params_sampled={"x": 1}))
    assert measurement_key(base) != measurement_key(rec(1, seed=1))
    assert measurement_key(base) != measurement_key(rec(1, phi=-2.0))
    assert measurement_key(base) != measurement_key(rec(1, budget_flops=4e9))
    assert measurement_key(base) != measurement_key(rec(1, fpn_channels=80))
    assert measurement_key(base.to_json()) == measurement_key(base)  # the flat form keys alike


def test_as_duplicate_takes_the_outcome_and_keeps_its_own_identity():
    earlier = rec(3, intermediate={"2": 0.1}, steps=4, estimate_seconds=5.0, estimate_cpu_seconds=9.0,
                  latency_ms=12.0, reason=None, zero_cost={"naswot": 1.5})
    mine = TrialRecord(number=8, state=State.RUNNING, seed=0, label="again", params_sampled={"phi": -3.0},
                       spec=dict(earlier.spec), space=dict(earlier.space), budget_flops=2e9, flops=10**9, params=10**6)
    dup = as_duplicate(mine, earlier)
    assert (dup.number, dup.label, dup.params_sampled, dup.duplicate_of) == (8, "again", {"phi": -3.0}, 3)
    assert (dup.state, dup.metrics, dup.intermediate, dup.steps) == (State.COMPLETE, earlier.metrics, {"2": 0.1}, 4)
    assert (dup.latency_ms, dup.zero_cost) == (12.0, {"naswot": 1.5})
    assert (dup.estimate_seconds, dup.estimate_cpu_seconds) == (None, None)  # nothing estimated
    assert as_duplicate(mine.replace(number=9), dup).duplicate_of == 3  # points at the measurement itself


def test_trials_trained_concurrently_are_marked_and_chains_point_at_the_first():
    records = [rec(5, map_=0.31), rec(2, map_=0.3), rec(4, seed=1), rec(6, map_=0.31, duplicate_of=5),
               rec(7, state="failed", map_=None)]
    marked = {r.number: r for r in mark_concurrent_duplicates(records)}
    assert [marked[n].duplicate_of for n in (2, 4, 5, 6, 7)] == [None, None, 2, 2, None]
    assert marked[5].get("map") == 0.31  # its own measurement stays
