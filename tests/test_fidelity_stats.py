"""Fidelity statistics: equal to scipy's on fixed inputs; the bootstrap interval is deterministic for a seed."""

from __future__ import annotations

import dataclasses

import pytest
from scipy import stats

from scalesearch.fidelity import FidelityRecord, bootstrap_difference, bootstrap_interval, kendall, spearman, top1_regret

PROXY = [0.30, 0.32, 0.35, 0.31, 0.40, 0.38]
LONG = [0.41, 0.45, 0.44, 0.40, 0.52, 0.47]


def _rows(proxy=PROXY, long=LONG):
    return [FidelityRecord(f"g{i}", i, {}, 1e9, p, 4.0, 600, None, (0,), (q,)) for i, (p, q) in enumerate(zip(proxy, long))]


def test_kendall_and_spearman_equal_scipy():
    assert kendall(_rows()) == pytest.approx((stats.kendalltau(PROXY, LONG).statistic, stats.kendalltau(PROXY, LONG).pvalue))
    assert spearman(_rows())[0] == pytest.approx(stats.spearmanr(PROXY, LONG).statistic)
    assert kendall(_rows())[0] == pytest.approx(11 / 15)  # 13 concordant, 2 discordant pairs of 15


def test_spearman_of_a_constant_side_is_nan_without_a_warning():
    import math
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rho, p = spearman(_rows(proxy=[0.3] * 6))
        assert math.isnan(rho) and math.isnan(p)
        rho, p = spearman(_rows(long=[0.4] * 6))
    assert math.isnan(rho) and math.isnan(p)


def test_bootstrap_interval_is_deterministic_and_brackets_tau():
    first = bootstrap_interval(_rows(), "kendall", n=500, seed=3)
    assert first == bootstrap_interval(_rows(), "kendall", n=500, seed=3)
    assert first == pytest.approx((1 / 9, 1.0))  # six points: a wide interval, as it should be
    assert first[0] <= kendall(_rows())[0] <= first[1]


def test_top1_regret_is_what_trusting_the_proxy_costs():
    assert top1_regret(_rows()) == pytest.approx(0.0)  # the proxy's best (0.40) is also the long best (0.52)
    assert top1_regret(_rows(long=[0.41, 0.45, 0.60, 0.40, 0.52, 0.47])) == pytest.approx(0.08)


def _paired(seed_a, seed_b, weights="raw"):
    return [FidelityRecord(f"g{i}", i, {}, 1e9, 0.1 * i, 4.0, 600, None, (0, 1), (a, b), raw_maps=(a, b), paired=True)
            for i, (a, b) in enumerate(zip(seed_a, seed_b))]


def test_reliability_of_the_seed_mean_by_spearman_brown():
    import math

    from scalesearch.fidelity import reliability, seeds_for_reliability, spearman_brown

    found = reliability(_paired([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 4.0, 3.0]), "raw")
    assert found.seed_r == pytest.approx(0.8)  # sum of products 4 over sqrt(5 * 5)
    assert found.mean_r == pytest.approx(1.6 / 1.8) == spearman_brown(0.8, 2)
    assert found.seed_tau == pytest.approx(4 / 6)  # 5 concordant pairs, 1 discordant
    assert found.ceiling_tau == pytest.approx(2 / math.pi * math.asin(math.sqrt(1.6 / 1.8)))
    assert found.seed_sd == pytest.approx(0.5 / math.sqrt(2))  # |differences| 0, 0, 1, 1 -> sd 0, 0, .707, .707
    assert found.seeds_for(0.85) == 2 and seeds_for_reliability(0.8, 0.95) == 5  # 0.19 / 0.04 = 4.75 -> 5
    assert seeds_for_reliability(-0.1, 0.85) is None
    assert reliability(_paired([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 4.0, 3.0]), "ema") is None  # not evaluated


def test_unpaired_seeds_are_matched_by_position_and_paired_ones_by_seed():
    from scalesearch.fidelity import seed_matrix

    rows = _paired([1.0, 2.0, 3.0], [2.0, 3.0, 5.0])
    shifted = FidelityRecord("x", 9, {}, 1e9, 0.0, 4.0, 600, None, (1, 2), (7.0, 8.0), raw_maps=(7.0, 8.0), paired=True)
    assert seed_matrix([*rows, shifted], "raw") is None  # paired rows share only seed 1
    unpaired = [dataclasses.replace(r, paired=False) for r in [*rows, shifted]]
    assert seed_matrix(unpaired, "raw") == ([0, 1], [[1.0, 2.0], [2.0, 3.0], [3.0, 5.0], [7.0, 8.0]])


def test_history_batches_group_the_seeds_each_call_trained():
    from scalesearch.fidelity import batches

    one = {"batch": "2026-12-03 10:00:00 UTC", "command": "a", "machine": "m"}
    two = {"batch": "2026-12-03 12:00:00 UTC", "command": "b", "machine": "m"}
    rows = [FidelityRecord("g0", 0, {}, 1e9, 0.1, 4.0, 600, None, (0, 1), (0.1, 0.2), history=(
                {**one, "seed": 0, "finished": "2026-12-03 10:05:00 UTC"},
                {**two, "seed": 1, "finished": "2026-12-03 12:09:00 UTC"})),
            FidelityRecord("g1", 1, {}, 1e9, 0.1, 4.0, 600, None, (0,), (0.1,), history=(
                {**one, "seed": 0, "finished": "2026-12-03 10:07:00 UTC"},))]
    assert [(b["command"], b["finished"], b["points"], b["seeds"], b["trainings"]) for b in batches(rows)] == [
        ("a", "2026-12-03 10:07:00 UTC", ["g0", "g1"], [0], 2), ("b", "2026-12-03 12:09:00 UTC", ["g0"], [1], 1)]


def test_the_weights_gap_is_a_paired_comparison_of_each_training():
    from scalesearch.report.fidelity import weights_differences

    rows = [FidelityRecord("g0", 0, {}, 1e9, 0.1, 4.0, 600, None, (0, 1), (0.5, 0.6), raw_maps=(0.48, 0.61),
                           ema_maps=(0.5, 0.6), paired=True),
            FidelityRecord("g1", 1, {}, 1e9, 0.1, 4.0, 600, None, (0,), (0.4,), raw_maps=(0.4,), paired=True)]
    assert weights_differences(rows) == pytest.approx([0.02, -0.01])  # g1 has no EMA: left out


def test_bootstrap_difference_is_paired_and_deterministic():
    same = bootstrap_difference(_rows(), _rows(), n=300, seed=1)
    assert same == (0.0, 0.0, 0.0)  # one estimator against itself: every resample differs by exactly 0
    reversed_ = _rows(proxy=[-p for p in PROXY])
    diff, low, high = bootstrap_difference(_rows(), reversed_, n=300, seed=1)
    assert diff == pytest.approx(2 * 11 / 15)  # tau and -tau
    assert (diff, low, high) == bootstrap_difference(_rows(), reversed_, n=300, seed=1)
    # Paired: each resample scores both sides on the same points, so every difference is 2 x that resample's tau
    # and the interval is twice the single interval of the same draws.
    assert (low, high) == pytest.approx(tuple(2 * x for x in bootstrap_interval(_rows(), n=300, seed=1)))
    with pytest.raises(ValueError, match="same points"):
        bootstrap_difference(_rows(), _rows()[::-1])
    with pytest.raises(ValueError, match="same reference"):
        bootstrap_difference(_rows(), _rows(long=[x + 0.01 for x in LONG]))
