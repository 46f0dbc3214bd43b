"""The "Learning curves" section: intermediate mAPs per point drawn from the records, and the training-loss
score's rank agreement with the final mAP."""

from __future__ import annotations

from report_fakes import record, report_text

from scalesearch.records import TrialRecord
from scalesearch.report.curves import loss_ranking, point_curves


def _rows():
    rows = []
    # four points; the loss score orders them as the final mAP does except one swap (points 2 and 3)
    for i, (final, loss) in enumerate([(0.10, 1.5), (0.20, 1.2), (0.30, 0.8), (0.40, 0.9)]):
        for seed in (0, 1):
            rows.append(record(2 * i + seed, phi=i, seed=seed, map_=final + 0.01 * seed, steps=40, train_loss=loss,
                               intermediate={"10": final / 4, "20": final / 2 + 0.02 * seed, "30": final * 0.8}))
    rows.append(record(8, phi=0, seed=0, map_=0.10, steps=40, train_loss=1.5, duplicate_of=0,
                       intermediate={"10": 0.9, "20": 0.9, "30": 0.9}))  # a duplicate: counted once, never averaged
    return rows


def test_point_curves_average_the_seeds_and_end_at_the_final_map():
    curves = point_curves([TrialRecord.from_json(r) for r in _rows()])
    assert len(curves) == 4
    _, points = curves["phi=1 topology=bifpn"]
    assert [s for s, _ in points] == [10, 20, 30, 40]
    assert [round(m, 4) for _, m in points] == [0.05, 0.11, 0.16, 0.205]  # seed means; 40: the final mAPs
    assert [round(m, 4) for _, m in curves["phi=0 topology=bifpn"][1]] == [0.025, 0.06, 0.08, 0.105]  # duplicate left out


def test_loss_score_tau_and_the_section(tmp_path):
    tau, p, n = loss_ranking([TrialRecord.from_json(r) for r in _rows()])
    assert n == 4 and round(tau, 4) == round(4 / 6, 4)  # 5 concordant pairs of 6, 1 discordant
    text = report_text(tmp_path, _rows())
    body = text.split("## Learning curves", 1)[1]
    assert "(4 point(s), mean over seeds" in body and "figures/curves.png" in body
    assert "over 4 points = **0.667**" in body
    assert (tmp_path / "report" / "figures" / "curves.png").is_file() or "curves.png" in body
