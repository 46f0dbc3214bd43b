"""Topology comparison over seeds (paired sign-flip test, Holm across pairs) and PED-ANOVA importances, on typed
records."""

from __future__ import annotations

import numpy as np
import pytest
from report_fakes import record, repeated_records, report_text, typed

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
    tests = stats.compare_topologies(typed(repeated_records(seeds=4)))
    assert [(t.a, t.b) for t in tests] == [("bifpn", "panet"), ("bifpn", "fpn"), ("panet", "fpn")]
    assert [t.agreement for t in tests][1] == "agrees"
    # 4 seeds x 2 rungs = 8 pairs, all one sign: p = 2/256; Holm over the 3 pairs gives 3 x 2/256 to each
    assert all(t.paired and t.pairs == 8 and t.p_value == pytest.approx(2 / 256) for t in tests)
    assert [t.p_holm for t in tests] == pytest.approx([6 / 256] * 3) and all(t.family == 3 for t in tests)


def test_rung_labels_name_phi_when_it_decides_the_rest():
    a, b = record(0, "fpn", phi=0), record(1, "bifpn", phi=1)
    assert stats.rung_labels(typed([a, b])) == ["phi=0", "phi=1"]
    c = record(2, "fpn", phi=0, resolution=512)
    assert stats.rung_labels(typed([a, b, c])) == ["resolution=256/fpn_repeats=3/phi=0",
                                                   "resolution=384/fpn_repeats=4/phi=1",
                                                   "resolution=512/fpn_repeats=3/phi=0"]


# ---- power: the smallest p the permutation test can reach ------------------------------------------

@pytest.mark.parametrize("design, expected", [
    ([(2, 2), (2, 2)], 2 / 36),   # C(4, 2)^2 = 36 relabellings; the observed one and its mirror
    ([(3, 3), (3, 3)], 2 / 400),  # C(6, 3)^2 = 400
    ([(3, 3)], 2 / 20),           # C(6, 3) = 20
    ([(1, 1)], 1.0),              # one seed each: every relabelling ties
    ([(1, 2)], 1 / 3),            # unequal seeds: no mirror, so the extreme relabelling can be unique
    ([(2, 2)] * 7, 2 / 6**7),     # 279,936 > EXACT_LIMIT: random relabellings
])
def test_smallest_p_hand_computed(design, expected):
    if stats.relabellings(design) > stats.EXACT_LIMIT:
        expected = 1 / (stats.N_RANDOM + 1)
    assert stats.smallest_p(design) == pytest.approx(expected)


@pytest.mark.parametrize("design", [[(2, 2), (2, 2)], [(3, 3), (3, 3)], [(3, 3)], [(1, 2)], [(2, 3), (3, 2)]])
def test_smallest_p_is_what_the_test_returns_for_separated_data(design):
    # A far above B at every rung (distinct values): the observed labelling is the most extreme one.
    rungs = [(np.arange(n_a) + 100.0 * (k + 1) + 0.37 * k, np.arange(n_b) * 1.1 + 0.013 * k) for k, (n_a, n_b) in
             enumerate(design)]
    p, exact = stats.permutation_p(rungs)
    assert exact and p == pytest.approx(stats.smallest_p(design))


def test_seeds_needed():
    assert [stats.seeds_needed(r) for r in (1, 2, 3)] == [4, 3, 2]  # 2/70; 2/400; 2/216
    assert stats.seeds_needed(0) is None


def test_two_seeds_at_two_rungs_cannot_reach_significance():
    records = typed(repeated_records(seeds=2))
    tests = {(t.a, t.b): t for t in stats.compare_topologies(records)}
    test = tests["bifpn", "fpn"]  # separated by ~10 noise widths, yet 4 pairs give p = 2/16 at best
    assert test.design == ((2, 2), (2, 2)) and test.pairs == 4 and test.p_value == pytest.approx(2 / 16)
    assert test.min_p == pytest.approx(2 / 16) and test.p_holm == pytest.approx(3 * 2 / 16) and not test.reachable
    assert test.p_text == "0.125 (smallest reachable with these seeds: 0.125)"
    # 3 pairs of topologies x 2 / 2^(2 rungs x s) < 0.05 first at s = 4 (3 x 2/256)
    assert test.summary == ("cannot reach significance with 2 seeds per point after Holm over 3 pairs: "
                            "rerun with seeds >= 4")
    assert test.agreement == "not testable (too few seeds)"
    sentence = stats.paper_sentence(test)
    assert "**Not testable:**" in sentence and "4 pairs, so 16 sign assignments" in sentence
    assert "(0.375 after Holm over 3 pairs)" in sentence and "seeds >= 4" in sentence
    three = {(t.a, t.b): t for t in stats.compare_topologies(typed(repeated_records(seeds=3)))}["bifpn", "fpn"]
    assert three.p_value == pytest.approx(2 / 64) and not three.reachable  # below 0.05 alone, not after Holm
    four = {(t.a, t.b): t for t in stats.compare_topologies(typed(repeated_records(seeds=4)))}["bifpn", "fpn"]
    assert four.reachable and four.summary == "bifpn above fpn"
    alone = stats.compare_topologies(typed([r for r in repeated_records(seeds=3) if r["topology"] != "panet"]))
    assert len(alone) == 1 and alone[0].family == 1 and alone[0].summary == "bifpn above fpn"  # a family of one


def test_report_states_the_smallest_reachable_p(tmp_path):
    text = report_text(tmp_path, repeated_records(seeds=2))
    rows = [line for line in text.splitlines() if line.startswith("|") and "smallest reachable" in line]
    assert all("| paired sign-flip | 0.125 (smallest reachable with these seeds: 0.125) | 0.375 | cannot reach "
               "significance with 2 seeds per point after Holm over 3 pairs: rerun with seeds >= 4 |" in row
               for row in rows) and len(rows) == 3
    assert ("(paired sign-flip p = 0.125 (smallest reachable with these seeds: 0.125), Holm-adjusted over 3 pairs: "
            "0.375)") in text
    assert "The study's 3 pairs form one family" in text
    assert "within seed noise" not in text.split("| pair | rungs |", 1)[1]
    assert "**Agrees" not in text  # nothing the correction withdraws is printed in bold


def test_max_flip_p_accounts_for_picking_the_largest_column():
    drops = np.array([0.01, 0.02, -0.005, 0.03, 0.015])
    # one column: the one-sided sign-flip test (2 of 32 flips reach the observed mean: these signs, and -0.005 flipped)
    assert stats.max_flip_p(drops[:, None]) == (stats.sign_flip_p(drops, "greater")[0], True) == (0.0625, True)
    # seven seeds that all drop: only the observed signs reach the maximum, p = 1/128 (the floor)
    assert stats.max_flip_p(np.full((7, 2), 0.02)) == (1 / 128, True)
    # a column far below 0 raises the null's maximum when flipped: conservative, p = 29/128
    finals = np.array([0.60, 0.61, 0.63, 0.59, 0.63, 0.62, 0.62])
    assert stats.max_flip_p(np.array([0.40, 0.70, 0.65])[None, :] - finals[:, None]) == (29 / 128, True)
    # picking the best of many noise columns: the maximum's null distribution, not one column's
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, size=(8, 20))
    best = int(np.argmax(noise.mean(axis=0)))
    assert stats.max_flip_p(noise)[0] > stats.sign_flip_p(noise[:, best], "greater")[0]
    with pytest.raises(ValueError):
        stats.max_flip_p(np.zeros((0, 2)))
