"""Paired tests of the report layer: the exact sign-flip test and its floor, Holm-adjusted p-values, the stratified
paired topology test, and the five verdicts of a point against a baseline (superiority and non-inferiority)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from report_fakes import record, typed

from scalesearch.fidelity import FidelityRecord
from scalesearch.report import stats
from scalesearch.report.baseline import VERDICTS, Duel, correct

D = (0.02, 0.01, 0.03, -0.005)  # mean 0.01375


def enumerate_p(d, alternative):
    """Every one of the 2^n sign assignments, written out."""
    observed, count = np.mean(d), 0
    for signs in itertools.product((1, -1), repeat=len(d)):
        t = np.mean(np.multiply(signs, d))
        count += {"two-sided": abs(t) >= abs(observed) - 1e-15, "greater": t >= observed - 1e-15,
                  "less": t <= observed + 1e-15}[alternative]
    return count / 2 ** len(d)


def test_sign_flip_p_equals_the_hand_enumeration():
    # Sums of +-0.02 +-0.01 +-0.03 +-0.005 at least 0.055 in size: 0.065 and the observed 0.055, and their mirrors.
    assert stats.sign_flip_p(D) == (pytest.approx(4 / 16), True)
    assert stats.sign_flip_p(D, "greater") == (pytest.approx(2 / 16), True)
    assert stats.sign_flip_p(D, "less") == (pytest.approx(15 / 16), True)  # only 0.065 lies above
    for alternative in ("two-sided", "greater", "less"):
        assert stats.sign_flip_p(D, alternative)[0] == pytest.approx(enumerate_p(D, alternative))
    with pytest.raises(ValueError):
        stats.sign_flip_p([])


def test_sign_flip_floor_is_reached_by_one_signed_differences():
    assert stats.flip_min_p(4) == 2 / 16 and stats.flip_min_p(4, "greater") == 1 / 16
    assert [stats.flip_min_p(n) for n in (1, 2, 3, 5, 6)] == [1.0, 0.5, 0.25, 2 / 32, 2 / 64]
    same = (0.01, 0.02, 0.03, 0.04)
    assert stats.sign_flip_p(same)[0] == stats.flip_min_p(4)
    assert stats.sign_flip_p(same, "greater")[0] == stats.flip_min_p(4, "greater")
    # a zero counts in n but its flip changes nothing: p stays at 2 / 2^(n - zeros)
    assert stats.sign_flip_p((0.01, 0.0, 0.02, 0.03))[0] == pytest.approx(2 / 8)


def test_sign_flip_beyond_the_exact_limit_is_monte_carlo_and_reproducible():
    d = np.linspace(0.001, 0.021, 21)  # 2^21 assignments > EXACT_FLIPS
    p, exact = stats.sign_flip_p(d)
    assert not exact and p == pytest.approx(1 / (stats.N_RANDOM + 1)) == stats.flip_min_p(21)
    noisy = np.sin(np.arange(21))
    assert stats.sign_flip_p(noisy) == stats.sign_flip_p(noisy)  # fixed seed


def test_holm_adjusted_p_values():
    assert stats.holm_adjusted([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])  # 3 x 0.01, 2 x 0.03, monotone
    assert stats.holm_adjusted([0.01, 0.02, 0.04]) == pytest.approx([0.03, 0.04, 0.04])
    assert stats.holm_adjusted([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    assert stats.holm_adjusted([]) == []
    assert stats.holm([0.01, 0.04, 0.03]) == [True, False, False]
    assert stats.holm_floors([0.125, 0.0625]) == [0.125, 0.125]  # 2 x the family's smallest floor
    assert stats.holm_floors([0.5, 0.01, 0.01]) == [0.5, 0.03, 0.03]
    # paired seeds for Holm p < 0.05: one two-sided test 6 (2/64); three 7 (3 x 2/128); five one-sided 7 (5/128)
    assert [stats.flips_needed(), stats.flips_needed(3), stats.flips_needed(5, alternative="greater")] == [6, 7, 7]
    assert stats.flips_needed(3, per=2) == 4  # 3 pairs of topologies at 2 rungs: 8 pairs, 3 x 2/256


# ---- the stratified paired topology test ----------------------------------------------------------------

def two_rungs():
    """phi=0: A and B on seeds 0, 1 (d = +0.02, +0.04); phi=1: A on seeds 0, 1, B on seed 0 only (d = -0.01)."""
    rows = [(0, "bifpn", 0, 0.30), (0, "bifpn", 1, 0.34), (0, "fpn", 0, 0.28), (0, "fpn", 1, 0.30),
            (1, "bifpn", 0, 0.40), (1, "bifpn", 1, 0.45), (1, "fpn", 0, 0.41)]
    return typed([record(i, topo, phi, seed, map_) for i, (phi, topo, seed, map_) in enumerate(rows)])


def test_stratified_sign_flip_on_two_rungs():
    (test,) = stats.compare_topologies(two_rungs())
    assert test.paired and test.test_name == "paired sign-flip" and test.pairs == 3
    assert [list(r.d) for r in test.rungs] == [pytest.approx([0.02, 0.04]), pytest.approx([-0.01])]
    assert [r.left_out for r in test.rungs] == [0, 1]  # seed 1 at phi=1 ran for bifpn only
    # D = mean(mean(0.02, 0.04), -0.01) = 0.01; weights 1/4, 1/4, 1/2: terms +-0.005 +-0.01 +-0.005.
    # |sum| >= 0.01 for (+,+,+), (+,+,-), (-,+,+) and their mirrors: 6 of 8.
    assert test.diff == pytest.approx(0.01) and test.p_value == pytest.approx(6 / 8) and test.exact
    assert test.min_p == 2 / 8 and test.family == 1 and test.p_holm == test.p_value
    # the pooled mean of the three differences would weigh them alike: 4 of 8
    assert stats.sign_flip_p([0.02, 0.04, -0.01])[0] == pytest.approx(4 / 8)
    assert stats.stratified_flip_p([[0.02, 0.04], [-0.01], []]) == (pytest.approx(0.01), pytest.approx(0.75), True)


def test_no_common_seed_falls_back_to_the_unpaired_test():
    rows = typed([record(0, "bifpn", 0, 0, 0.30), record(1, "bifpn", 0, 1, 0.31),
                  record(2, "fpn", 0, 2, 0.20), record(3, "fpn", 0, 3, 0.21)])
    (test,) = stats.compare_topologies(rows)
    assert not test.paired and test.test_name == "unpaired permutation" and test.pairs == 0
    assert test.p_value == pytest.approx(2 / 6) and test.min_p == pytest.approx(2 / 6)
    assert "unpaired permutation p = 0.333" in stats.paper_sentence(test)


# ---- a point against a baseline: superiority and non-inferiority ------------------------------------------

def fid(number, maps, flops, seeds=None, label=None):
    spec = {"topology": "bifpn", "resolution": 256}
    return FidelityRecord(f"p{number}", number, spec, flops, 0.3, 4.0, 600, None,
                          tuple(seeds or range(len(maps))), tuple(maps), label=label, paired=True)


BASE = (0.50, 0.52, 0.49, 0.51, 0.53, 0.50)  # six seeds: two-sided floor 2/64, one-sided 1/64


def duel(shift, flops, base=BASE, **kw):
    point = fid(1, [b + s for b, s in zip(base, shift)], flops)
    return Duel(point, fid(0, base, 1e9, label="Lite0"), cost="flops", **kw)


@pytest.mark.parametrize("shift, flops, verdict, test, p", [
    ((0.02, 0.03, 0.01, 0.02, 0.025, 0.015), 8e8, "dominates", "sign-flip test, two-sided", 2 / 64),
    ((0.003, -0.002, 0.001, -0.004, 0.002, -0.001), 8e8, "non-inferior and faster",
     "non-inferiority sign-flip test, margin 0.01, one-sided", 1 / 64),
    ((0.02, 0.03, 0.01, 0.02, 0.025, 0.015), 1.2e9, "better but slower", "sign-flip test, two-sided", 2 / 64),
    ((-0.03, -0.02, -0.04, -0.03, -0.025, -0.035), 8e8, "worse", "sign-flip test, two-sided", 2 / 64),
    ((0.02, -0.02, 0.01, -0.01, 0.03, -0.03), 1.2e9, "cannot tell with these seeds", "sign-flip test, two-sided", 1),
])
def test_each_verdict_on_a_constructed_case(shift, flops, verdict, test, p):
    found = duel(shift, flops)
    name, used, holm_p = found.outcome
    assert (name, used.name, holm_p) == (verdict, test, pytest.approx(p))
    assert found.paired and found.seeds_text == "6 paired seeds" and found.diff == pytest.approx(np.mean(shift))
    assert found.verdict.startswith(f"**{verdict}** ({test}; Holm p = " if verdict != VERDICTS[-1] else verdict)


def test_the_margin_decides_non_inferiority():
    shift = (-0.012, -0.011, -0.013, -0.012, -0.011, -0.014)  # a loss of about 0.012
    assert duel(shift, 8e8).outcome[0] == "worse"  # below the baseline beyond noise, loss not within 0.01
    assert duel(shift, 8e8, margin=0.02).outcome[0] == "non-inferior and faster"  # within 0.02


def test_cannot_tell_when_the_seeds_cannot_reach_alpha():
    found = duel((0.02, 0.03, 0.01), 8e8, base=BASE[:3])  # 3 pairs: one-sided floor 1/8
    assert found.outcome[0] == "cannot tell with these seeds" and not found.reachable
    assert found.verdict == ("cannot tell with these seeds (non-inferiority sign-flip test, margin 0.01, one-sided; "
                             "Holm p = 0.125): p < 0.05 unreachable with 3 paired seeds (smallest Holm p 0.125), "
                             "needs 5 paired seeds")


def test_holm_across_the_points_withdraws_a_verdict():
    win, tie = duel((0.02, 0.03, 0.01, 0.02, 0.025, 0.015), 8e8), duel((0.01, -0.01, 0.02, -0.02, 0.005, -0.003), 1.2e9)
    assert win.outcome[0] == "dominates"  # alone: p = 2/64 < 0.05
    family = correct([win, tie])
    assert [d.family for d in family] == [2, 2] and family[0].holm_p[0] == pytest.approx(2 * 2 / 64)
    # better: 2 x 2/64 >= 0.05 after Holm over 2 points, so "dominates" is withdrawn; non-inferior: 2 x 1/64 stands
    assert family[0].outcome[0] == "non-inferior and faster" and family[0].holm_p[1] == pytest.approx(2 / 64)
    assert family[0].holm_floor == (pytest.approx(4 / 64), pytest.approx(2 / 64))
    assert "dominates" not in family[0].verdict and family[1].outcome[0] == "cannot tell with these seeds"
    assert family[1].verdict.startswith("cannot tell with these seeds (sign-flip test, two-sided; Holm p = ")


def test_points_sharing_fewer_than_two_seeds_are_tested_unpaired():
    point = fid(1, (0.60, 0.61, 0.62, 0.63), 8e8, seeds=(3, 4, 5, 6))
    found = Duel(point, fid(0, (0.50, 0.51, 0.52, 0.53), 1e9, seeds=(0, 1, 2, 3)), cost="flops")
    assert not found.paired and found.seeds_text == "unpaired, 4 vs 4 seeds"
    assert found.superiority.name == "unpaired permutation test, two-sided"
    # C(8, 4) = 70 relabellings: the observed split and its mirror two-sided, alone one-sided
    assert found.superiority[1:3] == (pytest.approx(2 / 70), pytest.approx(2 / 70))
    assert found.noninferiority[1:3] == (pytest.approx(1 / 70), pytest.approx(1 / 70))
    assert found.diff == pytest.approx(0.10) and found.outcome[0] == "dominates"
    few = Duel(fid(1, (0.60, 0.61, 0.62), 8e8, seeds=(0, 4, 5)), fid(0, (0.50, 0.51, 0.52), 1e9), cost="flops")
    assert not few.paired and few.noninferiority.p == pytest.approx(1 / 20)  # one common seed: unpaired
    assert few.outcome[0] == "cannot tell with these seeds"  # 1/20 is not below 0.05


def test_method_says_whether_seeds_are_common_random_numbers():
    from scalesearch.report.stats import method

    assert "(seed s drew the same images, augmentations and initial weights for both" in method(0.05, 3, True)
    assert "these records predate common random numbers" in method(0.05, 3, False)
    assert "only some records use common random numbers" in method(0.05, 3, None)


def test_a_rung_without_a_common_seed_is_counted_as_left_out():
    rows = [(0, "bifpn", 0, 0.30), (0, "bifpn", 1, 0.34), (0, "fpn", 0, 0.28), (0, "fpn", 1, 0.30),
            (1, "bifpn", 0, 0.40), (1, "fpn", 1, 0.41)]  # phi=1: no seed both ran
    (test,) = stats.compare_topologies(typed([record(i, t, phi, s, m) for i, (phi, t, s, m) in enumerate(rows)]))
    assert test.paired and len(test.rungs) == 2 and test.paired_rungs == 1
    assert test.rungs_text == "1 of 2 (1 without a common seed left out)"
    assert test.diff == pytest.approx(0.03)  # the paired rung alone
    assert stats.compare_topologies(two_rungs())[0].rungs_text == "2"
