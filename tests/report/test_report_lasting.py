"""The "Does it last?" section: a baseline and its best rival judged at the retraining's budget and a longer one."""

from __future__ import annotations

import dataclasses

from report_fakes import make_run, record
from test_report_baseline import ROWS, latency_study

from scalesearch.fidelity import FILE
from scalesearch.files import write_json_atomic
from scalesearch.report import write_report


def longer(row, maps, curves=None):
    """``row`` retrained at 16x (2400 steps) with ``maps`` on fresh seeds 7.. (no latency of its own)."""
    return dataclasses.replace(row, factor=16.0, steps=2400, seeds=tuple(range(7, 7 + len(maps))), maps=maps,
                               curves=curves, latency=None)


def test_the_verdict_at_both_budgets_and_the_learning_curves(tmp_path):
    run = latency_study(make_run(tmp_path / "run", [record(i, phi=i, map_=0.1 * (i + 1)) for i in range(3)]))
    first = [dataclasses.replace(ROWS[0], curves=(None,) * 6 + ({"150": 0.3, "300": 0.45},)), ROWS[1], ROWS[2]]
    write_json_atomic(run / FILE, [r.to_json() for r in first])
    text = write_report([run], tmp_path / "out").read_text()
    assert "Does it last?" not in text  # no longer retraining yet
    base16 = longer(ROWS[0], (0.60, 0.61, 0.62), ({"600": 0.4, "1200": 0.5}, None, {"600": 0.42, "1200": 0.52}))
    point16 = longer(ROWS[1], (0.55, 0.57, 0.56), ({"600": 0.45, "1200": 0.5}, None, None))
    write_json_atomic(run / "fidelity_x16.json", [r.to_json() for r in (base16, point16)])
    write_json_atomic(run / "fidelity_x16_old.json", [r.to_json() for r in (point16, point16)])  # not a --longer file
    text = write_report([run], tmp_path / "out").read_text()
    assert "## Does it last? Lite0 and trial 1 trained longer" in text and "fresh paired seeds (7, 8, 9" in text
    # 4x: trial 1 dominates (the section above, Holm over 2 points); 16x: 3 seeds all lower, p 0.25 two-sided
    assert "| 4x (600 steps) | 1 |  | 0.6143 ± 0.0151 (n = 7) | +0.1014 (7 paired seeds, higher on 7) | 0.0312 |" in text
    assert "| 16x (2400 steps) | 1 |  | 0.5600 ± 0.0100 (n = 3) | -0.0500 (3 paired seeds, higher on 0) | 0.25 |" in text
    assert ("**The gap changes sign** when both are trained longer: at 4x Δ +0.1014, higher on 7 of 7 seeds "
            "(dominates); at 16x Δ -0.0500, higher on 0 of 3 seeds (cannot tell with these seeds). It moved by "
            "-0.1514 mAP from 4x to 16x (0.6143 → 0.5600 for trial 1, 0.5129 → 0.6100 for Lite0). At 16x, 3 paired "
            "seeds cannot reach p < 0.05 whatever the mAPs (smallest Holm p 0.125): there the table shows the "
            "direction, not a verdict.") in text
    assert (tmp_path / "out" / "figures" / "lasting.png").is_file()
