"""The "Searched scaling rule vs the paper's" section: per-rung duels from fidelity records, fitted coefficients,
the extrapolation record and plain verdicts after Holm's correction across the rungs, with the paired sign-flip
test's p and its smallest reachable value."""

from __future__ import annotations

import pytest
from report_fakes import make_run, record

from scalesearch.extrapolate import FILE as EXTRA, SEARCHED
from scalesearch.fidelity import FILE, FidelityRecord
from scalesearch.files import write_json_atomic
from scalesearch.report import write_report
from scalesearch.report.baseline import Duel, correct
from scalesearch.report.rules import rung_duels, verdict


def row(number, maps, label=None, proxy=0.3, rule=None):
    return FidelityRecord(f"p{number}", number, {"resolution": 256, "fpn_channels": 64, "fpn_repeats": 2,
                                                 "head_repeats": 3}, 1e9, proxy, 4.0, 240, None,
                          tuple(range(len(maps))), maps, label=label, rule=rule, paired=True)


# seven seeds: the two-sided sign-flip test reaches 2/128 alone, 4/128 after Holm over two rungs
HIGH = (0.60, 0.61, 0.62, 0.63, 0.61, 0.62, 0.60)
LOW = (0.50, 0.51, 0.52, 0.53, 0.51, 0.50, 0.52)
MID = (0.55, 0.60, 0.50, 0.58, 0.66, 0.57, 0.65)  # against HIGH: -0.05, -0.01, -0.12, -0.05, +0.05, -0.05, +0.05


def test_verdicts_follow_the_sign_flip_test_and_its_power():
    assert verdict(Duel(row(1, HIGH), row(0, LOW)), "paper rule") == "searched rule better"  # p = 2/128
    assert verdict(Duel(row(1, LOW), row(0, HIGH)), "paper rule") == "paper rule better"
    assert verdict(Duel(row(1, MID), row(0, HIGH)), "paper rule") == "within noise"
    assert verdict(Duel(row(1, HIGH[:4]), row(0, LOW[:4])), "paper rule") == (
        "cannot tell: p < 0.05 is unreachable with 4 paired seeds (need 6 per rule)")  # 2/16; 2/64 < 0.05
    assert Duel(row(1, HIGH), row(0, LOW)).superiority[1:3] == (pytest.approx(2 / 128), pytest.approx(2 / 128))
    two = correct([Duel(row(1, HIGH[:6]), row(0, LOW[:6])), Duel(row(3, HIGH[:6]), row(2, LOW[:6]))])
    assert [verdict(d, "paper rule") for d in two] == [  # 2/64 alone, 4/64 after Holm over the two rungs
        "cannot tell: p < 0.05 after Holm over 2 rungs is unreachable with 6 paired seeds (need 7 per rule)"] * 2


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
    assert "| 1.000 G FLOPs | 1 | 0 |" in text and "| **searched rule better** |" in text
    assert "| +0.1000 (7 paired seeds) | 0.0156 (min 0.0156) → 0.0312 |" in text  # 2/128, x 2 rungs
    assert "The 2 rungs are one family: their p-values are Holm-adjusted (family-wise error 0.05)" in text
    assert ("after Holm's correction of the 2 p-values (family-wise error 0.05), the difference at 1.000 G FLOPs "
            "stays significant.") in text
    assert "**Extrapolation: paper rule better**" in text and "4.000 G FLOPs budget" in text


def test_rungs_whose_seeds_cannot_survive_holm(tmp_path):
    trials = [record(i, phi=i, map_=0.3, budget_flops=[1e9, 1e9, 2e9, 2e9][i],
                     label="paper rule" if i in (0, 2) else None) for i in range(4)]
    run = make_run(tmp_path / "run", trials)
    write_json_atomic(run / FILE, [r.to_json() for r in (
        row(0, LOW[:4], "paper rule"), row(1, HIGH[:4]), row(2, LOW[:4], "paper rule"), row(3, HIGH[:4]))])
    text = write_report([run], tmp_path / "out").read_text()
    # 4 paired seeds: p = 2/16 at best, 0.25 after Holm over 2 rungs; 2 x 2/2^7 < 0.05
    assert ("no rung difference stays significant; the smallest Holm-adjusted p these seeds allow is 0.25, so none "
            "could, whatever the mAPs: 7 paired seeds per rule would make it reachable.") in text
    assert "**searched rule better**" not in text and text.count(
        "cannot tell: p < 0.05 after Holm over 2 rungs is unreachable with 4 paired seeds (need 7 per rule)") == 2


def test_holm_step_down():
    from scalesearch.report.stats import holm

    assert holm([0.0286, 0.771, 0.0571]) == [False, False, False]  # 0.0286 >= 0.05 / 3
    assert holm([0.01, 0.04, 0.03]) == [True, False, False]  # 0.01 < 0.05/3, then 0.03 >= 0.05/2 stops
    assert holm([0.01, 0.02, 0.04]) == [True, True, True]  # 0.01 < 0.0167, 0.02 < 0.025, 0.04 < 0.05
    assert holm([]) == []
    from scalesearch.report.stats import holm_adjusted

    assert holm_adjusted([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
