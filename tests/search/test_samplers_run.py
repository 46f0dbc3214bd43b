"""Every sampler and pruner the config accepts runs a study to the end (with the fast fake trainer)."""

from __future__ import annotations

import pytest

from conftest import records_json, tiny_study
from scalesearch.cli import main
from scalesearch.search.samplers import PRUNERS, SAMPLERS

CONTINUOUS = {"phi": {"low": -3.0, "high": -2.0}, "topology": ["fpn", "bifpn"], "resolution": 128}


ONE, TWO = ["maximize map"], ["maximize map", "minimize flops"]
CASES = [(s, o) for s in SAMPLERS if s not in ("grid", "brute_force") for o in (ONE, TWO)
         if not (SAMPLERS[s].single_objective and o == TWO)]  # CMA-ES: one objective (a validation error)


@pytest.mark.parametrize("sampler, objectives", CASES, ids=[f"{s}-{len(o)}" for s, o in CASES])
def test_sampler_runs_a_study(tmp_path, fake, sampler, objectives):
    study = tiny_study(tmp_path, objectives=objectives, search={"n_trials": 6, "sampler": sampler, "seed": 1},
                       space=CONTINUOUS)
    assert main(["run", str(study), "--quiet"]) == 0
    records = records_json(tmp_path / "run")
    assert sorted(r["number"] for r in records) == list(range(6)) and {r["state"] for r in records} == {"complete"}
    assert len(fake) == 6


@pytest.mark.parametrize("pruner", [p for p in PRUNERS if p != "none"])
def test_pruner_runs_a_study(tmp_path, fake, pruner):
    study = tiny_study(tmp_path, search={"n_trials": 8, "sampler": "random", "pruning": pruner},
                       train={"steps": 9, "eval_every": 1}, space=CONTINUOUS)
    assert main(["run", str(study), "--quiet"]) == 0
    records = records_json(tmp_path / "run")
    assert len(records) == 8 and {r["state"] for r in records} <= {"complete", "pruned"}
    for record in records:  # a pruned trial stopped before the last evaluation
        last = max(int(k) for k in record["intermediate"])
        assert (last < 9) == (record["state"] == "pruned")


def test_a_resumed_grid_study_walks_the_same_grid_order():
    """A resumed run loads the study with a sampler stream of its own; the grid must not take it: Optuna's
    GridSampler gives trial n the n-th point of its seeded shuffle, so another seed re-proposes measured points
    (~N1 x N2 / grid size of them). Two runs of 300 asks on the 5,120-point grid of supernet_bccd_grid: no repeat."""
    import collections
    from pathlib import Path

    import optuna

    from scalesearch.config import load_study
    from scalesearch.search.optuna_study import open_study

    config = load_study(Path(__file__).resolve().parents[2] / "reports/runs/supernet_bccd_grid/study.yaml")
    grid = config.search_space.grid()
    storage = optuna.storages.InMemoryStorage()
    seen = collections.Counter()
    for own_stream in (False, True):  # the run that creates the study, then a resumed one
        study = open_study(config, storage, own_stream=own_stream)
        for _ in range(300):
            trial = study.ask()
            seen[tuple(trial.suggest_categorical(k, v) for k, v in grid.items())] += 1
            study.tell(trial, [0.1, 1.0])
    assert len(seen) == 600
    assert SAMPLERS["grid"].shared_seed and SAMPLERS["qmc"].shared_seed and not SAMPLERS["nsga2"].shared_seed
