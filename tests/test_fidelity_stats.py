"""Fidelity statistics: equal to scipy's on fixed inputs; the bootstrap interval is deterministic for a seed."""

from __future__ import annotations

import pytest
from scipy import stats

from scalesearch.fidelity import FidelityRecord, bootstrap_interval, kendall, spearman, top1_regret

PROXY = [0.30, 0.32, 0.35, 0.31, 0.40, 0.38]
LONG = [0.41, 0.45, 0.44, 0.40, 0.52, 0.47]


def _rows(proxy=PROXY, long=LONG):
    return [FidelityRecord(f"g{i}", i, {}, 1e9, p, 4.0, 600, None, (0,), (q,)) for i, (p, q) in enumerate(zip(proxy, long))]


def test_kendall_and_spearman_equal_scipy():
    assert kendall(_rows()) == pytest.approx((stats.kendalltau(PROXY, LONG).statistic, stats.kendalltau(PROXY, LONG).pvalue))
    assert spearman(_rows())[0] == pytest.approx(stats.spearmanr(PROXY, LONG).statistic)
    assert kendall(_rows())[0] == pytest.approx(11 / 15)  # 13 concordant, 2 discordant pairs of 15


def test_bootstrap_interval_is_deterministic_and_brackets_tau():
    first = bootstrap_interval(_rows(), "kendall", n=500, seed=3)
    assert first == bootstrap_interval(_rows(), "kendall", n=500, seed=3)
    assert first == pytest.approx((1 / 9, 1.0))  # six points: a wide interval, as it should be
    assert first[0] <= kendall(_rows())[0] <= first[1]


def test_top1_regret_is_what_trusting_the_proxy_costs():
    assert top1_regret(_rows()) == pytest.approx(0.0)  # the proxy's best (0.40) is also the long best (0.52)
    assert top1_regret(_rows(long=[0.41, 0.45, 0.60, 0.40, 0.52, 0.47])) == pytest.approx(0.08)
