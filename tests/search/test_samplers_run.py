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


@pytest.mark.parametrize("sampler", ["nsga2", "nsga3"])
def test_population_sets_the_generation_size(tmp_path, sampler):
    from scalesearch.config import load_study
    from scalesearch.search.samplers import POPULATION

    study = tiny_study(tmp_path, objectives=TWO, search={"sampler": sampler}, space=CONTINUOUS)
    config = load_study(study)
    assert SAMPLERS[sampler].build(config)._population_size == POPULATION == 8
    assert "population" not in config.model_dump(mode="json")["search"]  # old run folders' study.yaml read the same
    study = tiny_study(tmp_path, objectives=TWO, search={"sampler": sampler, "population": 24}, space=CONTINUOUS)
    config = load_study(study)
    assert SAMPLERS[sampler].build(config)._population_size == 24
    assert config.model_dump(mode="json")["search"]["population"] == 24


def test_population_is_refused_for_other_samplers_and_below_two(tmp_path, capsys):
    study = tiny_study(tmp_path, search={"sampler": "tpe", "population": 16}, space=CONTINUOUS)
    assert main(["run", str(study), "--quiet"]) == 2
    assert "search.population: applies to the evolutionary samplers (nsga2, nsga3), not to 'tpe'" in \
        capsys.readouterr().err
    study = tiny_study(tmp_path, objectives=TWO, search={"sampler": "nsga2", "population": 1}, space=CONTINUOUS)
    assert main(["run", str(study), "--quiet"]) == 2
    assert "search.population" in capsys.readouterr().err
