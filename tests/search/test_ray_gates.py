"""Pruning and the zero-cost prefilter on the Ray backend, through the same ``TrialGates`` as on Optuna: the trials
post to one board actor of the run, which keeps ``ray_peers.json``; pruned trials are told PRUNED to the searcher.

One real (tiny) study on a local Ray (2 CPUs), about a minute.
"""

from __future__ import annotations

import json

from conftest import records_json, tiny_study
from scalesearch.cli import main
from test_ray_backend import local_ray  # noqa: F401  (fixture)


def test_ray_prunes_and_prefilters_through_the_seam(tmp_path, local_ray):  # noqa: F811
    from ray.tune.search.optuna import OptunaSearch

    study = tiny_study(tmp_path, train={"steps": 4, "eval_every": 2},
                       search={"backend": "ray", "n_trials": 6, "sampler": "random", "workers": 2,
                               "pruning": "successive_halving", "prefilter": {"score": "naswot", "keep": 0.2}},
                       space={"phi": {"low": -3.0, "high": -2.0}, "topology": ["fpn", "bifpn"], "resolution": 128})
    assert main(["run", str(study), "--quiet"]) == 0
    records = records_json(tmp_path / "run")
    assert len(records) == 6 and {r["state"] for r in records} <= {"complete", "pruned"}
    pruned = [r for r in records if r["state"] == "pruned"]
    assert pruned, [r["reason"] for r in records]
    for record in pruned:  # stopped untrained by the prefilter, or at the only rung (2 of 4 steps)
        if record["reason"].startswith("prefilter: naswot"):
            assert record["steps"] == 0 and not record["intermediate"]
        else:
            assert "rung" in record["reason"] and max(int(k) for k in record["intermediate"]) == 2
    assert all(r["estimator"] == "train" for r in records)
    peers = json.loads((tmp_path / "run" / "ray_peers.json").read_text())
    assert len(peers["prefilter"]) == 6  # every candidate scored, on the board
    (state,) = list((tmp_path / "run" / "ray").glob("searcher-state-*.pkl"))
    searcher = OptunaSearch()
    searcher.restore(str(state))
    told = [t.state.name for t in searcher._ot_study.trials if t.state.is_finished()]
    assert sorted(told) == sorted("PRUNED" if r["state"] == "pruned" else "COMPLETE" for r in records)
