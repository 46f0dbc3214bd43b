"""Whole reports written from fake run folders: fronts, budgets, repeats, several studies, HTML."""

from __future__ import annotations

import re

import numpy as np
from report_fakes import make_run, record, repeated_records, report_text, section

from scalesearch.report import write_report


def test_front_lists_exactly_the_non_dominated_feasible_trials(tmp_path):
    rng = np.random.default_rng(17)  # a draw whose front holds 6 trials on 3 distinct points
    records = [record(i, ["fpn", "bifpn"][i % 2], map_=float(rng.integers(0, 6)) / 10,
                      flops=float(10 ** (9 + rng.integers(0, 5) / 4)),
                      state=["complete", "complete", "infeasible", "failed"][rng.integers(0, 4)]) for i in range(30)]
    expected = sorted(
        a["number"] for a in records if a["state"] == "complete"
        and not any(b["state"] == "complete" and b["map"] >= a["map"] and b["flops"] <= a["flops"]
                    and (b["map"], b["flops"]) != (a["map"], a["flops"]) for b in records)
    )
    text = report_text(tmp_path, records)
    listed = sorted(int(row.split("|")[1]) for row in section(text, "### Pareto front (maximise mAP, minimise FLOPs)"))
    assert listed == expected
    assert len(expected) == 6 and len({(records[n]['map'], records[n]['flops']) for n in expected}) == 3


def test_run_facts_and_best_under_budget(tmp_path):
    records = [record(0, map_=0.2, flops=2e9), record(1, map_=0.3, flops=5e9), record(2, map_=0.4, flops=9e9),
               record(3, map_=0.35, flops=5.5e9)]
    text = report_text(tmp_path, records)
    assert "| machine | Linux-x86_64, 2 cores (host box; python 3.11.7) |" in text
    # a resumed run: the wall time of all its calls first, then the last call's
    assert "50.0 min wall in 2 calls since 2026-11-25 11:00 UTC (the last 42.0 min, 2026-11-25 12:00 to 12:42 UTC)" in text
    rows = section(text, "### Best architecture under each budget")
    assert rows[0] == "| trial | 3 | 2 |"
    assert "| resolution | 256 | 256 |" in rows


def test_html_is_self_contained(tmp_path):
    report_text(tmp_path, repeated_records())
    html = (tmp_path / "out" / "report.html").read_text()
    pngs = list((tmp_path / "out" / "figures").glob("*.png"))
    assert len(pngs) == 6
    assert html.count('src="data:image/png;base64,') == len(pngs)
    assert not re.search(r'(src|href)="(?!data:)', html)


def test_significance_only_with_repeats(tmp_path):
    text = report_text(tmp_path / "a", repeated_records(seeds=4))
    assert "### Seed repeats" in text and "### Topology comparison beyond seed noise" in text
    assert "| mAP over seeds (mean ± std, n) | 0.2809 ± 0.0037, n=4 | 0.2809 ± 0.0037, n=4 |" in text
    # 4 seeds x 2 rungs: 8 pairs, p = 2/256; Holm over the 3 pairs of topologies: 3 x 2/256
    assert ("| bifpn vs fpn | 2 | +0.0304 | paired sign-flip | 0.00781 (smallest reachable with these seeds: 0.00781) "
            "| 0.0234 | bifpn above fpn |") in text
    assert "**Agrees:** bifpn's front lies above fpn's" in text and "44.39" in text
    single = report_text(tmp_path / "b", repeated_records(seeds=1))
    assert "Seed repeats" not in single and "beyond seed noise" not in single


def test_disagreement_is_stated(tmp_path):
    records = repeated_records(seeds=4)
    for r in records:
        if r["topology"] == "fpn":
            r["map"] += 0.1
    text = report_text(tmp_path, records)
    assert "**Disagrees:** bifpn's front lies below fpn's beyond seed noise" in text


def test_multi_run_comparison(tmp_path):
    a = make_run(tmp_path / "a", repeated_records(seeds=4), name="synthetic")
    b = make_run(tmp_path / "b", [record(0, map_=0.5, flops=3e9)], name="bccd")
    text = write_report([a, b], tmp_path / "out").read_text()
    assert "## Comparison of studies" in text
    assert "## Study `synthetic`" in text and "## Study `bccd`" in text
    rows = section(text, "## Comparison of studies")
    assert [row.split("|")[1].strip() for row in rows] == ["0: synthetic", "1: bccd"]
    assert rows[1].endswith("| 0.5000 (#0) | 0.5000 (#0) |")
    assert ("| 0: synthetic | bifpn vs fpn | +0.0304 | paired sign-flip 0.00781 (smallest reachable with these seeds: "
            "0.00781) | 0.0234 | bifpn above fpn | agrees |") in text
    assert (tmp_path / "out" / "figures" / "compare_fronts.png").exists()
    assert (tmp_path / "out" / "figures" / "run1_map_flops.png").exists()
