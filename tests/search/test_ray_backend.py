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
