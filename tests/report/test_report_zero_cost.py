"""The "Zero-cost scores" section: Kendall tau of each recorded score (and FLOPs, params) with the proxy mAP,
and with the long-budget mAP where RUN/fidelity.json exists; read from the records, never scored here."""

from __future__ import annotations

from report_fakes import make_run, record, report_text

from scalesearch.fidelity import FILE, FidelityRecord
from scalesearch.files import write_json_atomic
from scalesearch.report import write_report


def _rows():
    # mAP rises with phi; naswot agrees fully (tau = 1), synflow is reversed (tau = -1), grad_norm has one swap
    rows = []
    for i, (m, g) in enumerate([(0.1, 1.0), (0.2, 3.0), (0.3, 2.0), (0.4, 4.0)]):
        rows.append(record(i, phi=i, map_=m, flops=1e9 * (i + 1),
                           zero_cost={"naswot": 10.0 + i, "synflow": 1e70 / (i + 1), "grad_norm": g}))
    rows.append(record(4, phi=9, state="infeasible", flops=9e10, zero_cost={"naswot": 0.0, "synflow": 1.0,
                                                                            "grad_norm": 0.0}))
    return rows


def test_section_gives_each_scores_tau_with_the_proxy_map(tmp_path):
    text = report_text(tmp_path, _rows())
    body = text.split("## Zero-cost scores", 1)[1]
    assert "No public benchmark of these scores on object detection exists" in body
    assert "| naswot | n = 4: tau = 1.000 (p = 0.083) |" in body  # scipy.stats.kendalltau, exact p for n = 4
    assert "| synflow | n = 4: tau = -1.000 (p = 0.083) |" in body
    assert "| grad_norm | n = 4: tau = 0.667 (p = 0.33) |" in body
    assert "| flops | n = 4: tau = 1.000 (p = 0.083) |" in body and "| params |" in body
    assert "Best by tau against the proxy mAP: **naswot** (tau = 1.000, n = 4)." in body  # ties: first in the table


def test_section_adds_the_long_budget_map_from_fidelity_records(tmp_path):
    run = make_run(tmp_path / "run", _rows())
    longs = [0.5, 0.3, 0.4, 0.6]  # long-budget order 1 < 2 < 0 < 3
    write_json_atomic(run / FILE, [FidelityRecord(f"phi={i}", i, {}, 1e9 * (i + 1), 0.1 * (i + 1), 4.0, 1200, None,
                                                  (0,), (m,)).to_json() for i, m in enumerate(longs)])
    body = write_report([run], tmp_path / "out").read_text().split("## Zero-cost scores", 1)[1]
    assert "| score | vs proxy mAP | vs 4x-budget mAP |" in body
    # naswot = 10..13 vs long (0.5, 0.3, 0.4, 0.6): pairs 01, 02 discordant, the other 4 concordant -> tau = 1/3
    assert "| naswot | n = 4: tau = 1.000 (p = 0.083) | n = 4: tau = 0.333 (p = 0.75) |" in body


def test_no_section_without_scores(tmp_path):
    assert "Zero-cost scores" not in report_text(tmp_path, [record(0), record(1, phi=1, map_=0.3)])


def test_when_every_score_is_inverted_no_score_is_called_best(tmp_path):
    # mAP rises with phi; every score (and FLOPs / params, made to fall) falls: all tau <= 0
    rows = [record(i, phi=i, map_=0.1 * (i + 1), flops=1e9 * (4 - i), params=1e6 * (4 - i),
                   zero_cost={"naswot": 10.0 - i, "synflow": 5.0 - i, "grad_norm": (4.0, 2.0, 3.0, 1.0)[i]})
            for i in range(4)]
    body = report_text(tmp_path, rows).split("## Zero-cost scores", 1)[1]
    assert "Best by tau" not in body
    # grad_norm (4, 2, 3, 1) vs mAP rising: one concordant pair of 6 -> tau = -2/3, the highest
    assert "every tau is <= 0 (highest: grad_norm, tau = -0.667, n = 4)" in body
    assert "The strongest association is **naswot**'s, tau = -1.000, inverted" in body
