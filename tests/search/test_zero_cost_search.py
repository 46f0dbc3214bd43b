"""Every trial of a search records its zero-cost scores (infeasible ones too), on one fixed batch."""

from __future__ import annotations

import math

from conftest import records_json, tiny_study
from scalesearch.cli import main
from scalesearch.config import load_study
from scalesearch.search.objective import Evaluator, TrialInfo
from scalesearch.search.space import SearchSpace

import search_fakes


def test_every_trial_records_zero_cost_scores(tmp_path, fake, monkeypatch):
    monkeypatch.delenv("SCALESEARCH_ZERO_COST")  # the fake fixture turns real scores off elsewhere
    study = tiny_study(tmp_path, search={"n_trials": 4})
    spec = SearchSpace(load_study(study)).resolve({"phi": -3.0, "topology": "fpn"}, num_classes=4)
    study = tiny_study(tmp_path, search={"n_trials": 4}, budgets={"flops": search_fakes.fake_cost(spec).flops})
    assert main(["run", str(study), "--quiet"]) == 0
    records = records_json(load_study(study).output_dir())
    assert {r["state"] for r in records} == {"complete", "infeasible"}
    for r in records:
        assert set(r["zero_cost"]) == {"naswot", "synflow", "grad_norm", "seconds"} and r["zero_cost"]["seconds"] > 0
        assert all(math.isfinite(v) for v in r["zero_cost"].values())
    by_point = {}
    for r in records:  # the same spec on the same fixed batch: the same scores, whatever the trial
        scores = {k: v for k, v in r["zero_cost"].items() if k != "seconds"}
        assert by_point.setdefault(r["group"], scores) == scores


def test_zero_cost_scores_can_be_turned_off(tmp_path, fake, monkeypatch):
    monkeypatch.delenv("SCALESEARCH_ZERO_COST")
    config = load_study(tiny_study(tmp_path))
    info = TrialInfo({"phi": -3.0, "topology": "fpn"}, point=0)
    assert set(Evaluator(config).evaluate(info).zero_cost) == {"naswot", "synflow", "grad_norm", "seconds"}
    assert Evaluator(config, zero_cost=False).evaluate(info).zero_cost == {}
    assert Evaluator(load_study(tiny_study(tmp_path, search={"zero_cost": False}))).evaluate(info).zero_cost == {}
    monkeypatch.setenv("SCALESEARCH_ZERO_COST", "0")
    assert Evaluator(config).evaluate(info).zero_cost == {}
