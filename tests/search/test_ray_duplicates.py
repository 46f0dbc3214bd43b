"""Duplicates on the Ray backend: a trial whose point and seed another trial of the run measured reuses its result
through the run's board actor (``duplicate_of``, nothing estimated, the searcher told the same values); two trials
of the same point and seed trained at once are both kept, the later marked ``duplicate_of`` the earlier.

Two real (tiny) studies on a local Ray (2 CPUs), about half a minute each.
"""

from __future__ import annotations

import json

from conftest import records_json, tiny_study
from scalesearch import pareto
from scalesearch.cli import main
from scalesearch.records import load_records
from test_ray_backend import local_ray  # noqa: F401  (fixture)

ONE_POINT = {"phi": -3.0, "resolution": 128}  # every trial proposes the same point


def test_ray_reuses_a_measured_point_and_marks_concurrent_ones(tmp_path, local_ray):  # noqa: F811
    from ray.tune.search.optuna import OptunaSearch

    (tmp_path / "one").mkdir(), (tmp_path / "two").mkdir()
    one = tiny_study(tmp_path / "one", space=ONE_POINT, search={"backend": "ray", "n_trials": 3, "workers": 1})
    assert main(["run", str(one), "--quiet"]) == 0
    records = records_json(tmp_path / "one" / "run")
    assert [(r["number"], r["state"], r["duplicate_of"]) for r in records] == [
        (0, "complete", None), (1, "complete", 0), (2, "complete", 0)]
    assert records[0]["estimate_seconds"] is not None and records[0]["steps"] == 2
    for dup in records[1:]:  # not trained: the first trial's result
        assert dup["estimate_seconds"] is None and dup["map"] == records[0]["map"]
        assert dup["values"] == records[0]["values"] and dup["train_seconds"] == records[0]["train_seconds"]
    peers = json.loads((tmp_path / "one" / "run" / "ray_peers.json").read_text())
    assert [list(posts) for posts in peers.values()] == [["0"]]  # only the measurement posts itself
    (state,) = list((tmp_path / "one" / "run" / "ray").glob("searcher-state-*.pkl"))
    searcher = OptunaSearch()
    searcher.restore(str(state))
    told = [t.values for t in searcher._ot_study.trials if t.state.is_finished()]
    assert told == [records[0]["values"]] * 3
    assert [g.n for g in pareto.aggregate_repeats(load_records(tmp_path / "one" / "run"))] == [1]

    # two workers: both trials start at once, so both train (Ray does not wait; had the first ended before the
    # second started, the second would reuse it): the later is marked either way, never a repeat
    two = tiny_study(tmp_path / "two", space=ONE_POINT, search={"backend": "ray", "n_trials": 2, "workers": 2})
    assert main(["run", str(two), "--quiet"]) == 0
    first, second = records_json(tmp_path / "two" / "run")
    assert (first["duplicate_of"], second["duplicate_of"]) == (None, 0)
    assert [g.n for g in pareto.aggregate_repeats(load_records(tmp_path / "two" / "run"))] == [1]
