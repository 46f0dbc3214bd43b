"""Ray Tune backend on a local Ray instance (2 CPUs): records in the Optuna schema, resume by restore.

One real (tiny) study: ~25 s on 2 cores, Ray start-up included.
"""

from __future__ import annotations

import pytest

from conftest import tiny_study
from scalesearch.cli import main
from conftest import records_json as load_records
from test_objective import SCHEMA


@pytest.fixture
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_study_records_and_resume(tmp_path, local_ray):
    # phi=-3 at 128 px is 0.075 GFLOPs and phi=-2 is 0.094 (real counts): one point is over budget.
    study = tiny_study(tmp_path, seeds=2, budgets={"flops": "0.08B"},
                       train={"steps": 4, "eval_every": 2},
                       search={"backend": "ray", "n_trials": 4, "sampler": "grid", "workers": 2,
                               "ray": {"asha": True}},
                       space={"phi": [-3.0, -2.0], "resolution": 128})
    assert main(["run", str(study), "--quiet"]) == 0
    records = load_records(tmp_path / "run")
    assert [r["number"] for r in records] == [0, 1, 2, 3]
    by_phi = {phi: [r for r in records if r["phi"] == phi] for phi in (-3.0, -2.0)}
    assert [r["seed"] for r in by_phi[-3.0]] == [0, 1] and [r["seed"] for r in by_phi[-2.0]] == [0, 1]
    assert {r["state"] for r in by_phi[-2.0]} == {"infeasible"}
    assert {r["state"] for r in by_phi[-3.0]} <= {"complete", "pruned"}
    for record in records:
        assert set(SCHEMA) <= set(record) and record["flops"] == (75_372_888 if record["phi"] == -3.0 else 93_802_816)
    assert main(["run", str(study), "--quiet"]) == 0  # restores: nothing new to run
    assert load_records(tmp_path / "run") == records


def test_asha_stops_trials_with_fewer_steps(tmp_path, local_ray):
    study = tiny_study(tmp_path, train={"steps": 8, "eval_every": 2},
                       search={"backend": "ray", "n_trials": 8, "sampler": "random", "workers": 2,
                               "ray": {"asha": True, "grace_period": 1}},
                       space={"phi": {"low": -3.0, "high": -2.0}, "topology": ["fpn", "bifpn"], "resolution": 128})
    assert main(["run", str(study), "--quiet"]) == 0
    records = load_records(tmp_path / "run")
    stopped = [r for r in records if r["state"] == "pruned"]
    complete = [r for r in records if r["state"] == "complete"]
    assert len(records) == 8 and stopped and complete, [r["state"] for r in records]
    for record in stopped:  # stopped at a rung: fewer steps than the full budget
        assert max(int(k) for k in record["intermediate"]) < 8 and "ASHA" in record["reason"]
    assert all(r["steps"] == 8 for r in complete)


def test_budget_constraints_reach_the_ray_sampler(tmp_path, local_ray):
    from ray.tune.search.optuna import OptunaSearch

    # phi=-3 at 128 px is 0.075 GFLOPs, phi=-2 0.094: one point over the budget
    study = tiny_study(tmp_path, budgets={"flops": "0.08B"}, train={"steps": 2},
                       search={"backend": "ray", "n_trials": 4, "sampler": "tpe", "workers": 2},
                       space={"phi": [-3.0, -2.0], "resolution": 128})
    assert main(["run", str(study), "--quiet"]) == 0
    records = load_records(tmp_path / "run")
    infeasible = [r for r in records if r["state"] == "infeasible"]
    assert infeasible and all(r["steps"] is None for r in infeasible)  # never trained
    (state,) = list((tmp_path / "run" / "ray").glob("searcher-state-*.pkl"))
    searcher = OptunaSearch()
    searcher.restore(str(state))
    told = {t.params["phi"]: t.system_attrs for t in searcher._ot_study.trials if t.state.is_finished()}
    constraint = {phi: attrs["constraints:flops"] for phi, attrs in told.items()}
    assert constraint[-2.0] == pytest.approx(93_802_816 / 80e6 - 1.0) and constraint[-3.0] < 0
