"""Topology comparison over seeds and PED-ANOVA importances, on typed records."""

from __future__ import annotations

import numpy as np
import pytest
from report_fakes import record, repeated_records, typed

from scalesearch.report import stats
from scalesearch.report.importance import importances


def test_importances_need_enough_trials():
    values, note = importances(typed(repeated_records()))
    assert set(values) == {"Pareto front", "mAP"} and set(values["mAP"]) == {"phi", "topology"}
    assert sum(values["mAP"].values()) == pytest.approx(1.0)
    assert importances(typed(repeated_records()[:4])) == ({}, "Skipped: 4 feasible complete trial(s) "
                                                         "with sampled parameters; need 5.")


def test_permutation_p_exact_small_case():
    # Pooled [1, 2, 3, 4]: the 6 splits give A - B in {-2, -1, 0, 0, 1, 2}; |-2| is reached twice.
    p, exact = stats.permutation_p([(np.array([1.0, 2.0]), np.array([3.0, 4.0]))])
    assert exact and p == pytest.approx(2 / 6)


def test_compare_topologies_orders_pairs_by_table5():
    tests = stats.compare_topologies(typed(repeated_records()))
    assert [(t.a, t.b) for t in tests] == [("bifpn", "panet"), ("bifpn", "fpn"), ("panet", "fpn")]
    assert [t.agreement for t in tests][1] == "agrees"


def test_rung_labels_name_phi_when_it_decides_the_rest():
    a, b = record(0, "fpn", phi=0), record(1, "bifpn", phi=1)
    assert stats.rung_labels(typed([a, b])) == ["phi=0", "phi=1"]
    c = record(2, "fpn", phi=0, resolution=512)
    assert stats.rung_labels(typed([a, b, c])) == ["resolution=256/fpn_repeats=3/phi=0",
                                                   "resolution=384/fpn_repeats=4/phi=1",
                                                   "resolution=512/fpn_repeats=3/phi=0"]
