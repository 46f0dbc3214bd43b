"""benchmarks/bench_supernet_axes.py's probe parsing and per-probe statistics on pinned values, and its page rendered
from a constructed record through render.py (no supernet, no training)."""

import sys
from pathlib import Path

import pytest

_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(_DIR))

import bench_supernet_axes as bench  # noqa: E402
import render  # noqa: E402

SPEC = {"topology": "bifpn", "fpn_channels": 64, "fpn_repeats": 3, "head_repeats": 3, "resolution": 320,
        "fusion": "sum", "activation": "relu6"}
ANCHOR = {"name": "EfficientDet-Lite0", "spec": SPEC, "inherited": 0.17, "seeds": [0, 1, 2, 3],
          "maps": [0.50, 0.52, 0.51, 0.53]}


def _probe(axis, value, inherited, maps, seeds=(0, 1, 2, 3)):
    spec = {**SPEC, axis: value}
    return {"name": bench.probe_name(spec, ANCHOR), "axis": axis, "spec": spec, "inherited": inherited,
            "seeds": list(seeds), "maps": list(maps)}


def test_parse_probe_types_values_and_refuses_bad_text():
    assert bench.parse_probe("0:resolution=256") == (0, "resolution", 256)
    assert bench.parse_probe("1089:topology=fpn") == (1089, "topology", "fpn")
    with pytest.raises(SystemExit, match="ANCHOR:KEY=VALUE"):
        bench.parse_probe("resolution=256")
    with pytest.raises(SystemExit, match="'anchor_scale' is not an elastic axis"):
        bench.parse_probe("0:anchor_scale=4")


def test_axis_row_pairs_seeds_and_judges_the_sign():
    probe = _probe("resolution", 256, 0.25, [0.45, 0.46, 0.44, 0.47])
    assert probe["name"] == "EfficientDet-Lite0 @ resolution=256"
    row = bench.axis_row(ANCHOR, probe)
    assert row["inherited_diff"] == 0.08 and row["alone_diffs"] == [-0.05, -0.06, -0.07, -0.06]
    assert row["alone_diff"] == -0.06 and row["agree"] is False
    assert row["p"] == 0.125  # 4 seeds, all one sign: 2 of 16 sign assignments as extreme
    # only the seeds both have are paired
    part = bench.axis_row(ANCHOR, _probe("head_repeats", 1, 0.10, [0.49, 0.50], seeds=(1, 3)))
    assert part["seeds"] == [1, 3] and part["alone_diffs"] == [-0.03, -0.03] and part["agree"] is True


def test_ranking_over_anchors_and_probes():
    points = [ANCHOR, _probe("resolution", 256, 0.25, [0.45, 0.46, 0.44, 0.47]),
              _probe("resolution", 224, 0.20, [0.40, 0.41, 0.42, 0.40])]
    rank = bench.ranking(points, 200)
    assert rank["n"] == 3 and rank["seeds"] == [0, 1, 2, 3]
    assert rank["tau"] == pytest.approx(-1 / 3, abs=1e-4)  # Lite0 last by inheritance, first trained alone


def test_page_and_headline_from_a_record():
    anchor7 = {**ANCHOR, "seeds": list(range(7)), "maps": [0.50, 0.52, 0.51, 0.53, 0.52, 0.51, 0.50]}
    wrong = bench.axis_row(anchor7, _probe("resolution", 256, 0.25, [0.45, 0.46, 0.44, 0.47, 0.46, 0.45, 0.44],
                                           seeds=range(7)))
    right = bench.axis_row(anchor7, _probe("head_repeats", 1, 0.15, [0.49, 0.52, 0.50, 0.53, 0.52, 0.50, 0.51],
                                           seeds=range(7)))
    rec = {"benchmark": "supernet_axes", "command": "python benchmarks/bench_supernet_axes.py", "cpu_lock": True,
           "machine_line": "toy machine", "started": "2026-12-07 14:00:00 UTC", "seconds": 5.0,
           "run": "reports/runs/x", "estimator_dir": "reports/runs/x/estimator", "steps": 600,
           "reproduced": {"point": "EfficientDet-Lite0", "seed": 0, "recorded": 0.5, "again": 0.5},
           "rows": [wrong, right], "ranking": {"n": 3, "tau": -0.333, "low": -1.0, "high": 1.0, "ratio": None,
                                              "regret": 0.05, "seeds": [0, 1], "ceiling_tau": 0.9},
           "points": [anchor7]}
    page = render.RENDERERS["supernet_axes"](rec)
    assert wrong["p"] == pytest.approx(1 / 64) and wrong["agree"] is False
    assert "| EfficientDet-Lite0 @ resolution=256 | resolution | 320 -> 256 | 0.1700 -> 0.2500 | +0.0800 | " \
           "-0.0600 [-0.0700, -0.0500] | 7 | 0.0156 | **disagree** |" in page
    assert "agree (trained alone within seed noise)" in page  # heads 1: -0.0014, not told apart
    assert "wrong way, beyond seed noise, on 1 of 2 probes: EfficientDet-Lite0 @ resolution=256" in page
    assert "reproduced exactly" in page
    head = render.HEADLINES["supernet_axes"](rec)[0]
    assert head.startswith("supernet axes: inherited and trained-alone differences agree in sign on 1 of 2 probes; "
                           "wrong beyond seed noise on 1 (EfficientDet-Lite0 @ resolution=256)")


def test_per_resolution_rows_and_tau_difference():
    probe = _probe("resolution", 256, 0.25, [0.45, 0.46, 0.44, 0.47])
    row = bench.axis_row(ANCHOR, probe)
    other = bench.variant_row(row, 0.30, 0.28)
    assert other == {"probe": "EfficientDet-Lite0 @ resolution=256", "diff": -0.02, "agree": True}
    assert row["agree"] is False
    third = _probe("resolution", 224, 0.20, [0.40, 0.41, 0.42, 0.40])
    inherited = {ANCHOR["name"]: 0.30, probe["name"]: 0.28, third["name"]: 0.27}
    d = bench.ranking_difference([ANCHOR, probe, third], inherited, 200)
    assert d["n"] == 3 and d["difference"] == pytest.approx(1 + 1 / 3, abs=1e-4)  # +1 (per resolution) - (-1/3)
    assert d["low"] <= d["difference"] <= d["high"]


def test_variant_sections_on_the_page():
    probe = _probe("resolution", 256, 0.25, [0.45, 0.46, 0.44, 0.47])
    row = bench.axis_row(ANCHOR, probe)
    rank = {"n": 2, "tau": -1.0, "low": None, "high": None, "ratio": None, "regret": 0.06, "seeds": [0, 1, 2, 3],
            "ceiling_tau": None}

    def variant(steps, anchor, mine, cpu):
        return {"steps": steps, "supernets": {"bifpn 320 px": {"steps": steps, "seconds": 90.0, "cpu_seconds": cpu,
                                                               "loaded": False}},
                "inherited": {ANCHOR["name"]: anchor, probe["name"]: mine},
                "rows": [bench.variant_row(row, anchor, mine)], "ranking": {**rank, "tau": 1.0 if mine < anchor else -1.0},
                "against_run": {"difference": 2.0, "low": 2.0, "high": 2.0, "n": 2}}

    rec = {"benchmark": "supernet_axes", "command": "c", "machine_line": "toy", "run": "reports/runs/x",
           "estimator_dir": "reports/runs/x/estimator", "steps": 600, "run_supernet_steps": 600,
           "run_resolutions": [224, 256, 288, 320], "trained_here": 0, "trained_before": 4,
           "reproduced": {"point": "EfficientDet-Lite0", "seed": 0, "recorded": 0.5, "again": 0.5},
           "rows": [row], "ranking": rank, "points": [ANCHOR, probe],
           "variants": [variant(150, 0.10, 0.15, 170.0), variant(600, 0.30, 0.28, 600.0)]}
    page = render.RENDERERS["supernet_axes"](rec)
    assert "| EfficientDet-Lite0 @ resolution=256 | -0.0600 (p 0.1250) | +0.0800 (other sign) | +0.0500 (other sign) " \
           "| -0.0200 (same sign) |" in page
    assert "- 150 steps each (the same compute per topology); CPU-min per supernet: bifpn 320 px 2.8" in page
    assert "- 600 steps each (4x the compute per topology)" in page
    assert "read 4 back from the work file" in page
    assert "| EfficientDet-Lite0 | 0.1700 | 0.1000 | 0.3000 | 0.5150 ± 0.0129 | 4 |" in page
    head = render.HEADLINES["supernet_axes"](rec)[0]
    assert "per-resolution supernets, 150 steps: tau -1.000, resolution probes of the other sign 1 of 1" in head
    assert "per-resolution supernets, 600 steps: tau +1.000, resolution probes of the other sign 0 of 1" in head
