"""The "Searched scaling rule vs the paper's" section: per-rung duels from fidelity records, fitted coefficients,
the extrapolation record and plain verdicts with the permutation test's p and its smallest reachable value."""

from __future__ import annotations

import pytest
from report_fakes import make_run, record

from scalesearch.extrapolate import FILE as EXTRA, SEARCHED
from scalesearch.fidelity import FILE, FidelityRecord
from scalesearch.files import write_json_atomic
from scalesearch.report import write_report
from scalesearch.report.baseline import Duel
from scalesearch.report.rules import rung_duels, verdict


def row(number, maps, label=None, proxy=0.3, rule=None):
    return FidelityRecord(f"p{number}", number, {"resolution": 256, "fpn_channels": 64, "fpn_repeats": 2,
                                                 "head_repeats": 3}, 1e9, proxy, 4.0, 240, None,
                          tuple(range(len(maps))), maps, label=label, rule=rule)


HIGH, LOW, MID = (0.60, 0.61, 0.62, 0.63), (0.50, 0.51, 0.52, 0.53), (0.55, 0.60, 0.50, 0.58)


def test_verdicts_follow_the_permutation_test_and_its_power():
    assert verdict(Duel(row(1, HIGH), row(0, LOW)), "paper rule") == "searched rule better"  # p = 2/70
    assert verdict(Duel(row(1, LOW), row(0, HIGH)), "paper rule") == "paper rule better"
    assert verdict(Duel(row(1, MID), row(0, LOW)), "paper rule") == "within noise"
    assert verdict(Duel(row(1, HIGH[:3]), row(0, LOW[:3])), "paper rule").startswith(
        "cannot tell: p < 0.05 is unreachable with these seeds (need 4 per rule)")
    assert Duel(row(1, HIGH), row(0, LOW)).permutation == (pytest.approx(2 / 70), pytest.approx(2 / 70))


def test_section_per_rung_and_extrapolation(tmp_path):
    trials = [record(i, phi=i, map_=0.3, budget_flops=[1e9, 1e9, 2e9, 2e9, 2e9][i],
                     label="paper rule" if i in (0, 2) else None) for i in range(5)]
    run = make_run(tmp_path / "run", trials)
    write_json_atomic(run / FILE, [r.to_json() for r in (
        row(0, LOW, "paper rule"), row(1, HIGH), row(2, HIGH, "paper rule"), row(3, MID, proxy=0.4),
        row(4, HIGH, proxy=0.35))])
    rule = {"phi": -0.5, "width_growth": 1.2, "budget_flops": 4e9}
    write_json_atomic(run / EXTRA, [r.to_json() for r in (
        row(1, LOW, SEARCHED, rule=rule), row(2, HIGH, "paper rule", rule={**rule, "width_growth": 1.35}))])
    from scalesearch.report.runs import load_run

    duels = rung_duels(load_run(run), "paper rule")
    assert [(rung, d.point.number, d.base.number) for rung, d in duels] == [(1e9, 1, 0), (2e9, 3, 2)]  # proxy's pick
    text = write_report([run], tmp_path / "out").read_text()
    assert "## Searched scaling rule vs the paper rule" in text and "### Fitted coefficients" in text
    assert "| 1.000 G FLOPs | 1 | 0 |" in text and "**searched rule better**" in text
    assert "0.0286 (min 0.029)" in text
    # rung 1: p = 2/70 = 0.0286, the smallest 4 vs 4 allows, is not below 0.05 / 2: no rung survives, and none could
    assert "with Holm's correction of the 2 permutation p-values (family-wise error 0.05), no rung difference stays " \
           "significant; the smallest p these seeds allow (0.029) is above the first threshold 0.025" in text
    assert "**Extrapolation: paper rule better**" in text and "4.000 G FLOPs budget" in text


def test_holm_step_down():
    from scalesearch.report.stats import holm

    assert holm([0.0286, 0.771, 0.0571]) == [False, False, False]  # 0.0286 >= 0.05 / 3
    assert holm([0.01, 0.04, 0.03]) == [True, False, False]  # 0.01 < 0.05/3, then 0.03 >= 0.05/2 stops
    assert holm([0.01, 0.02, 0.04]) == [True, True, True]  # 0.01 < 0.0167, 0.02 < 0.025, 0.04 < 0.05
    assert holm([]) == []
