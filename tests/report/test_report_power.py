"""The design power warning: a study whose seed comparison cannot reach p < 0.05 is told so at
validation time, by ``scalesearch run``, before anything is trained."""

from __future__ import annotations

import pytest
import yaml

import scalesearch.search.runner
from scalesearch.cli import main
from scalesearch.config import validate_study
from scalesearch.report import stats

def study(seeds=2, n_trials=None, **space):
    space = {"topology": ["fpn", "panet", "bifpn"], "phi": [-3.0, -2.0], "resolution": 128, **space}
    points = 3 * 2
    return {"name": "power", "seeds": seeds, "space": space, "search": {"sampler": "grid",
                                                                          "n_trials": n_trials or points * seeds}}


def warning(**kw):
    return stats.design_power_warning(validate_study(study(**kw)))


def test_two_seeds_at_two_rungs_warns_and_names_the_seeds_needed():
    text = warning(seeds=2)
    # 3 pairs of topologies, 2 x 2 paired differences each: 3 x 2/16 = 0.375; 4 seeds: 3 x 2/256 = 0.023
    assert text == ("warning: this study compares 3 pair(s) of topologies over 2 paired seeds at 2 rung(s), so the "
                    "report's sign-flip test has 4 paired differences per pair and its smallest Holm-adjusted p is "
                    "0.38: p < 0.05 cannot be reached by construction; set seeds: 4 (and search.n_trials: 24 to keep "
                    "6 points)")
    assert "\n" not in text


@pytest.mark.parametrize("kw", [
    {"seeds": 4},                                    # 3 x 2/256
    {"seeds": 1},                                    # no seed test at all
    {"seeds": 2, "topology": "bifpn"},               # one topology: nothing to compare
    {"seeds": 3, "phi": [-3.0, -2.0, -1.0]},         # 3 rungs: 3 x 2/512
    {"seeds": 2, "topology": ["fpn", "bifpn"], "phi": [-4.0, -3.0, -2.0, -1.0],
     "n_trials": 16},                                # one pair, 2 x 4 differences: 2/256
])
def test_no_warning_when_reachable_or_no_comparison(kw):
    assert warning(**kw) is None


def test_rungs_are_capped_by_the_trial_budget():
    # 3 phi values but only 4 points (8 trials / 2 seeds): a pair shares at most 2 rungs.
    assert stats.design_rungs(validate_study(study(seeds=2, n_trials=8, phi=[-3.0, -2.0, -1.0]))) == (3, 2)
    assert "at 2 rung(s)" in warning(seeds=2, n_trials=8, phi=[-3.0, -2.0, -1.0])
    assert "at 1 rung(s)" in warning(seeds=3, phi=[-3.0]) and "set seeds: 7" in warning(seeds=3, phi=[-3.0])


@pytest.mark.parametrize("seeds, warns", [(2, True), (4, False)])
def test_run_command_warns_on_stderr_and_still_runs(tmp_path, monkeypatch, capsys, seeds, warns):
    ran = []
    monkeypatch.setattr(scalesearch.search.runner, "run_study", lambda config, run_dir, **_: ran.append(config) or [])
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**study(seeds=seeds), "output": str(tmp_path / "run")}))
    assert main(["run", str(path), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert len(ran) == 1 and ran[0].seeds == seeds  # a warning, not an error
    assert ("scalesearch run: warning: this study compares 3 pair(s) of topologies over 2 paired seeds at 2 rung(s)"
            in err) == warns
    assert (err.count("\n") == 1) if warns else err == ""

