"""``extrapolate``: the best searched rule and the paper's, fitted to a budget above the ladder and trained at the
long budget (fake trainer and FLOPs counter): choice of rules, phi fit, records, resume, one-line errors."""

from __future__ import annotations

import json

import pytest
import yaml

from scalesearch.errors import UserError
from scalesearch.extrapolate import FILE, SEARCHED, load_extrapolation
from scalesearch.fidelity import FILE as FIDELITY, FidelityRecord
from scalesearch.files import write_json_atomic
from scalesearch.retrain.extrapolate import extrapolate, fit_phi

STUDY = {"name": "rules", "space": {"phi": {"low": -3.0, "high": -2.0}, "width_growth": {"low": 1.1, "high": 1.6},
                                    "fpn_depth_growth": {"low": 0.5, "high": 1.5}, "resolution": 128},
         "budgets": {"flops": [1e6, 2e6]}, "train": {"steps": 10}}


def trial(number, map_, budget, width_growth, label=None, phi=-2.5):
    params = {"phi": phi, "width_growth": width_growth, "fpn_depth_growth": 1.0}
    return {"number": number, "state": "complete", "seed": 0, "map": map_, "flops": budget * 0.9, "params": 1000,
            "budget_flops": budget, "group": f"p{number}", "label": label, "params_sampled": params, **params,
            "resolution": 128, "topology": "bifpn", "num_classes": 3}


def make_run(path):
    path.mkdir()
    rows = [trial(0, 0.30, 1e6, 1.35, "paper rule", phi=-3.0), trial(1, 0.35, 1e6, 1.5, phi=-3.0),
            trial(2, 0.40, 2e6, 1.35, "paper rule"), trial(3, 0.45, 2e6, 1.2), trial(4, 0.42, 2e6, 1.55)]
    (path / "trials.json").write_text(json.dumps(rows))
    (path / "study.yaml").write_text(yaml.safe_dump(STUDY))
    return path


def count(spec):
    return float(spec.fpn_channels) * 4e4  # grows with phi through the BiFPN width


class Trainer:
    def __init__(self):
        self.calls = []

    def __call__(self, spec, seed, number):
        self.calls.append((number, seed))
        return 0.5 + 0.01 * spec["fpn_channels"] / 64 + 0.001 * seed


def test_fit_phi_is_the_largest_grid_phi_under_the_budget():
    phi, value, flops = fit_phi(lambda p: p, 0.26, 0.0, lambda v: v, span=1.0)
    assert (phi, flops) == (0.25, 0.25)
    with pytest.raises(UserError, match="--flops: .* below the rule's FLOPs at its searched phi"):
        fit_phi(lambda p: p, -1.0, 0.0, lambda v: v)


def test_both_rules_fitted_trained_and_resumed(tmp_path):
    run = make_run(tmp_path / "run")
    trainer = Trainer()
    rows = extrapolate(run, 3e6, seeds=2, trainer=trainer, count=count)
    assert [(r.label, r.number) for r in rows] == [(SEARCHED, 3), ("paper rule", 2)]  # proxy's best at the top rung
    assert trainer.calls == [(3, 0), (3, 1), (2, 0), (2, 1)]
    for row in rows:
        assert row.flops <= 3e6 and row.rule["phi"] > -2.5 and row.steps == 40 and row.seeds == (0, 1)
        assert count(type("S", (), {"fpn_channels": row.spec["fpn_channels"]})) == row.flops > 2e6
    assert rows[0].rule["width_growth"] == 1.2 and rows[1].rule["width_growth"] == 1.35
    again = Trainer()
    assert extrapolate(run, 3e6, seeds=2, trainer=again, count=count) == load_extrapolation(run) and again.calls == []
    assert len(json.loads((run / FILE).read_text())) == 2


def test_the_long_budget_winner_of_the_top_rung_is_the_searched_rule(tmp_path):
    run = make_run(tmp_path / "run")
    write_json_atomic(run / FIDELITY, [FidelityRecord("p3", 3, {}, 1.0, 0.45, 4.0, 40, None, (0,), (0.2,)).to_json(),
                                       FidelityRecord("p4", 4, {}, 1.0, 0.42, 4.0, 40, None, (0,), (0.3,)).to_json()])
    rows = extrapolate(run, 3e6, seeds=1, trainer=Trainer(), count=count)
    assert rows[0].number == 4


@pytest.mark.parametrize("flops, against, message", [(2e6, "paper rule", "--flops: must be above the study's top rung"),
                                                     (3e6, "Lite0", "--against: no finished trial is labelled 'Lite0'")])
def test_bad_settings_are_one_line_errors(tmp_path, flops, against, message):
    with pytest.raises(UserError, match=message):
        extrapolate(make_run(tmp_path / "run"), flops, against=against, trainer=Trainer(), count=count)
