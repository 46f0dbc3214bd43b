"""The objective through ``scalesearch run``: budgets, failures, seeds, pruning and the record schema."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

import scalesearch.training.train
import search_fakes
from conftest import tiny_study
from scalesearch.cli import main
from scalesearch.config import load_study
from conftest import records_json as load_records
from scalesearch.search.space import SearchSpace
from scalesearch.training.train import TrainingFailed

SCHEMA = ("number", "state", "flops", "params", "map", "map50", "map75", "map_small", "map_medium",
          "map_large", "seconds", "train_seconds", "images_per_second", "seed", "reason", "budget_flops",
          "values", "intermediate", "params_sampled", "group", "topology", "fusion", "resolution",
          "fpn_channels", "fpn_repeats", "head_repeats", "backbone", "width_multiplier", "phi")


def _run(study, *extra) -> list[dict]:
    assert main(["run", str(study), "--quiet", *extra]) == 0
    return load_records(load_study(study).output_dir())


def _flops(study, phi, topology) -> int:
    spec = SearchSpace(load_study(study)).resolve({"phi": phi, "topology": topology}, num_classes=4)
    return search_fakes.fake_cost(spec).flops


def test_infeasible_specs_are_never_trained_and_say_why(tmp_path, fake):
    study = tiny_study(tmp_path, search={"n_trials": 6})
    small, large = _flops(study, -3.0, "fpn"), _flops(study, -2.0, "fpn")
    study = tiny_study(tmp_path, search={"n_trials": 6}, budgets={"flops": (small + large) // 2})
    records = _run(study)
    infeasible = [r for r in records if r["state"] == "infeasible"]
    assert len(records) == 6 and infeasible and len(fake) == 6 - len(infeasible)
    assert all(spec.name == "phi=-3" for spec in fake)  # only the cheap point was trained
    for record in infeasible:
        assert record["phi"] == -2.0 and record["flops"] == large and record["map"] is None
        assert record["reason"] == f"flops {large / 1e9:.3f}B over the budget {(small + large) // 2 / 1e9:.3f}B"
        assert record["values"] == [0.0]


def test_nan_trial_is_failed_with_its_reason_and_the_study_goes_on(tmp_path, fake, monkeypatch):
    def diverging(spec, *args, **kwargs):
        if spec.topology == "fpn":
            raise TrainingFailed("loss is nan at step 2")
        return search_fakes.fake_train(spec, *args, **kwargs)

    monkeypatch.setattr(scalesearch.training.train, "train_and_evaluate", diverging)
    records = _run(tiny_study(tmp_path, search={"n_trials": 6, "seed": 3}))
    failed = [r for r in records if r["state"] == "failed"]
    assert len(records) == 6 and failed and len(failed) < 6
    assert {r["reason"] for r in failed} == {"training failed: loss is nan at step 2"}
    assert all(r["topology"] == "fpn" and r["values"] is None for r in failed)
    assert all(r["state"] == "complete" for r in records if r["topology"] == "bifpn")


def test_a_crashing_trial_is_failed_with_its_error(tmp_path, fake, monkeypatch):
    def crash(spec, *args, **kwargs):
        if spec.topology == "fpn":
            raise RuntimeError("out of memory\nmore detail")
        return search_fakes.fake_train(spec, *args, **kwargs)

    monkeypatch.setattr(scalesearch.training.train, "train_and_evaluate", crash)
    records = _run(tiny_study(tmp_path, search={"n_trials": 6, "seed": 3}))
    assert {r["reason"] for r in records if r["topology"] == "fpn"} == {"error: RuntimeError: out of memory"}
    assert len(records) == 6 and any(r["state"] == "complete" for r in records)


def test_nan_metrics_are_failed(tmp_path, monkeypatch, fake):
    def nan_map(spec, train_data, val_data, cfg, **kwargs):
        result = search_fakes.fake_train(spec, train_data, val_data, cfg, **kwargs)
        result.metrics["map"] = float("nan")
        return result

    monkeypatch.setattr(scalesearch.training.train, "train_and_evaluate", nan_map)
    records = _run(tiny_study(tmp_path, search={"n_trials": 2}))
    assert [r["reason"] for r in records] == ["evaluation gave non-finite map"] * 2


def test_seed_repeats_share_a_group_and_ladder_rungs_alternate(tmp_path, fake):
    study = tiny_study(tmp_path, seeds=2, budgets={"flops": ["1T", "2T"], "assign": "round_robin"}, search={"n_trials": 8},
                       space={"phi": {"low": -3.0, "high": -2.0}, "resolution": 128})
    records = _run(study)
    groups = {}
    for record in records:
        groups.setdefault(record["group"], []).append(record)
    assert sorted(len(g) for g in groups.values()) == [2, 2, 2, 2]
    for group in groups.values():
        assert sorted(r["seed"] for r in group) == [0, 1]
        assert group[0]["params_sampled"] == group[1]["params_sampled"]
        assert group[0]["map"] == pytest.approx(group[1]["map"] - 0.001)  # fake mAP moves with the seed
    rungs = [r["budget_flops"] for r in sorted(records, key=lambda r: r["number"]) if r["seed"] == 0]
    assert rungs == [1e12, 2e12, 1e12, 2e12]


def test_fit_assigns_the_smallest_rung_a_spec_fits(tmp_path, fake):
    study = tiny_study(tmp_path)
    small, large = _flops(study, -3.0, "fpn"), _flops(study, -2.0, "fpn")
    records = _run(tiny_study(tmp_path, budgets={"flops": [small, large - 1]}, search={"n_trials": 6},
                              space={"phi": [-3.0, -2.0], "resolution": 128}))
    for record in records:
        assert (record["phi"], record["budget_flops"], record["state"]) in (
            (-3.0, small, "complete"), (-2.0, large - 1, "infeasible"))
    # the sampler proposes the two points again: a point and seed measured once is not trained again
    assert len(fake) == sum(r["state"] == "complete" and r["duplicate_of"] is None for r in records) == 1
    assert sum(r["duplicate_of"] is None for r in records) == len({r["phi"] for r in records}) == 2


def test_pruning_stops_poor_trials_early(tmp_path, fake):
    # Over two points every later trial would be a duplicate (reused: never trained, so never pruned again): four
    # points (phi x topology), the weaker ones pruned as they come.
    study = tiny_study(tmp_path, search={"n_trials": 8, "pruning": "median", "sampler": "tpe"},
                       train={"steps": 4, "eval_every": 2}, space={"phi": [-3.0, -2.0], "topology": ["fpn", "bifpn"],
                                                                   "resolution": 128})
    records = _run(study)
    measured = [r for r in records if r["duplicate_of"] is None]
    assert {r["state"] for r in measured} == {"complete", "pruned"}
    for record in records:
        assert list(record["intermediate"]) == (["2", "4"] if record["state"] == "complete" else ["2"])
    best = max(r["map"] for r in measured if r["state"] == "complete")
    assert all(r["intermediate"]["2"] < best / 2 for r in measured if r["state"] == "pruned")  # weaker at step 2


def test_records_have_the_schema_and_trials_json_matches_the_storage(tmp_path, fake, capsys):
    study = tiny_study(tmp_path, space={"phi": [-3.0, -2.0], "fusion": ["sum", "fast"], "resolution": 128})
    records = _run(study)
    run_dir = tmp_path / "run"
    assert sorted(p.name for p in run_dir.iterdir() if not p.name.startswith(".")) == [
        "meta.json", "study.db", "study.yaml", "trials.json"]
    assert json.loads((run_dir / "trials.json").read_text()) == records
    for record in records:
        assert set(SCHEMA) <= set(record)
        assert record["params_sampled"] == {"phi": record["phi"], "fusion": record["fusion"]}
        assert record["values"] == [record["map"]]
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["study_name"] == "tiny" and meta["end"] >= meta["start"] and meta["runs"] == 1
    assert main(["trials", str(run_dir), "--json", str(tmp_path / "out.json")]) == 0
    assert json.loads((tmp_path / "out.json").read_text()) == records
    capsys.readouterr()
    assert main(["trials", str(run_dir)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:6] == ["#", "state", "seed", "GFLOPs", "Mparams", "mAP"] and len(table) == 5


def test_enqueued_baseline_runs_first_with_its_label(tmp_path, fake):
    study = tiny_study(tmp_path, space={"phi": -3.0, "width_growth": {"low": 1.2, "high": 1.5}, "resolution": 128},
                       search={"n_trials": 3, "enqueue": [{"label": "paper rule", "params": {"width_growth": 1.35}}]})
    records = _run(study)
    assert (records[0]["label"], records[0]["width_growth"]) == ("paper rule", 1.35)
    assert [r["label"] for r in records[1:]] == [None, None]
    assert main(["run", str(study), "--quiet", "--n-trials", "4"]) == 0  # resuming does not enqueue it again
    assert [r["label"] for r in load_records(tmp_path / "run")].count("paper rule") == 1


@pytest.mark.parametrize("pruner", ["successive_halving", "hyperband"])
def test_multi_fidelity_pruners_stop_trials_at_a_lower_rung(tmp_path, fake, pruner):
    study = tiny_study(tmp_path, search={"n_trials": 8, "pruning": pruner, "sampler": "random"},
                       train={"steps": 6, "eval_every": 2}, space={"phi": {"low": -3.0, "high": -2.0}, "resolution": 128})
    records = _run(study)
    assert len(records) == 8 and {r["state"] for r in records} <= {"complete", "pruned"}
    for record in records:  # a pruned trial stopped after fewer evaluations than a complete one
        assert len(record["intermediate"]) == 3 if record["state"] == "complete" else len(record["intermediate"]) < 3


def test_meta_sums_the_wall_time_of_every_call_that_made_the_run(tmp_path, fake):
    study = tiny_study(tmp_path, space={"phi": [-3.0, -2.0], "resolution": 128}, search={"n_trials": 2})
    meta_path = tmp_path / "run" / "meta.json"

    def elapsed(meta):
        return (datetime.fromisoformat(meta["end"]) - datetime.fromisoformat(meta["start"])).total_seconds()

    _run(study)
    first = json.loads(meta_path.read_text())
    assert (first["runs"], first["wall_seconds"]) == (1, round(elapsed(first), 1))
    # a resumed run adds this call's wall time, not the idle time since the first call started
    first = {**first, "first_start": "2026-01-01T00:00:00+00:00", "wall_seconds": 1000.0}
    meta_path.write_text(json.dumps(first))
    assert main(["run", str(study), "--quiet", "--n-trials", "3"]) == 0
    second = json.loads(meta_path.read_text())
    assert second["runs"] == 2 and second["first_start"] == "2026-01-01T00:00:00+00:00"
    assert second["wall_seconds"] == round(1000.0 + elapsed(second), 1)
    # resumed before the key existed: the earlier calls' wall time is unknown, and stays unknown
    meta_path.write_text(json.dumps({k: v for k, v in second.items() if k != "wall_seconds"}))
    assert main(["run", str(study), "--quiet", "--n-trials", "4"]) == 0
    third = json.loads(meta_path.read_text())
    assert (third["runs"], third["wall_seconds"]) == (3, None)
