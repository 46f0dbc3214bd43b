"""benchmarks/bench_supernet_samplers.py's front and domination helpers on pinned points, and its page rendered from
a constructed record through render.py (no supernet, no timing)."""

import sys
from pathlib import Path

_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(_DIR))

import bench_supernet_samplers as bench  # noqa: E402
import render  # noqa: E402


def _p(number, map_, ms, label=None):
    return {"number": number, "group": f"g{number}", "map": map_, "latency_ms": ms, "label": label, "seconds": 3.0}


POINTS = [_p(0, 0.50, 50.0, "EfficientDet-Lite0"), _p(1, 0.45, 30.0), _p(2, 0.40, 35.0), _p(3, 0.52, 60.0),
          _p(4, 0.45, 32.0)]


def test_front_keeps_the_non_dominated_fastest_first():
    assert [p["number"] for p in bench.front(POINTS)] == [1, 0, 3]  # 2 and 4 are beaten by 1


def test_dominated_by_needs_one_strict_improvement():
    assert bench.dominated_by(_p(9, 0.45, 30.0), POINTS) is None  # a tie on both is not domination
    assert bench.dominated_by(_p(9, 0.45, 31.0), POINTS)["number"] == 1
    assert bench.dominated_by(_p(9, 0.53, 10.0), POINTS) is None


def _run(name, sampler, points, front):
    return {"run": f"reports/runs/{name}", "study": name, "sampler": sampler, "trials": 2000,
            "distinct": len(points), "trial_seconds": 3.0 * len(points), "per_hour": 1200,
            "supernet_seconds": {"bifpn": 600.0, "fpn": 500.0}, "front": front, "lite0": POINTS[0],
            "hypervolume": 12.3456, "points": [[p["map"], p["latency_ms"]] for p in points]}


def test_page_and_headline_from_a_record():
    f1 = [{**_p(1, 0.45, 30.0), "faster_than_lite0": True, "dominated_by": None}]
    f2 = [{**_p(4, 0.44, 31.0), "faster_than_lite0": True,
           "dominated_by": {"number": 1, "group": "g1", "map": 0.45, "latency_ms": 30.0}}]
    rec = {"benchmark": "supernet_samplers", "command": "python benchmarks/bench_supernet_samplers.py",
           "cpu_lock": True, "machine_line": "toy machine", "started": "2026-12-05 08:00:00 UTC", "seconds": 5.0,
           "table_run": "reports/runs/b", "reference_point": {"latency_ms": 60.0, "map": 0.0},
           "common": {"n": 3, "max_abs_map_diff": 0.0, "identical": 3}, "retrained_in": "`reports/runs/a/fidelity.json`",
           "to_retrain": ["g4"], "already_retrained": [],
           "runs": [_run("a", "nsga2", POINTS[:3], f1), _run("b", "grid", POINTS, f2)]}
    page = render.RENDERERS["supernet_samplers"](rec)
    assert "| `reports/runs/b` | grid | 2,000 | 5 | 0.00 h | 1,200 | 0.31 h | 1 | 1 | 12.3456 | 1 of 1 |" in page
    assert "yes, by trial 1 (0.4500, 30.00 ms)" in page
    assert "not retrained yet: 1 (g4)" in page and "retrained alone in `reports/runs/a/fidelity.json`: 0;" in page
    assert "differ by at most 0 (3 identical)" in page
    head = render.HEADLINES["supernet_samplers"](rec)[0]
    assert "nsga2 3 distinct of 2,000 trials" in head and "1 of the grid front's 1 point(s) faster than Lite0 by table latency not retrained yet" in head


def test_rank_agreement_of_two_runs():
    same = bench.rank_agreement([0.1, 0.2, 0.3, 0.4], [0.2, 0.3, 0.4, 0.5])
    assert (same["kendall_tau"], same["spearman"], same["mean_map_diff"]) == (1.0, 1.0, 0.1)
    flipped = bench.rank_agreement([0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1])
    assert flipped["kendall_tau"] == -1.0 and flipped["kendall_tau_ci"][1] <= 0
    assert bench.rank_agreement([0.1, 0.2], [0.1, 0.2]) == {}


def test_page_says_when_each_run_trained_its_own_supernets():
    front = [{**_p(1, 0.45, 30.0), "faster_than_lite0": True, "dominated_by": None}]
    a, b = _run("a", "nsga2", POINTS[:3], front), _run("b", "grid", POINTS, front)
    a["supernet_final_loss"], b["supernet_final_loss"] = {"fpn": 2.5}, {"fpn": 2.6}
    rec = {"benchmark": "supernet_samplers", "command": "python benchmarks/bench_supernet_samplers.py",
           "cpu_lock": True, "machine_line": "toy machine", "started": "2026-12-05 08:00:00 UTC", "seconds": 5.0,
           "table_run": "reports/runs/b", "reference_point": {"latency_ms": 60.0, "map": 0.0},
           "common": {"n": 5, "max_abs_map_diff": 0.1, "identical": 0, "kendall_tau": 0.4,
                      "kendall_tau_ci": [0.3, 0.5], "spearman": 0.55, "mean_map_diff": 0.01},
           "same_supernets": False, "supernet_time_ratio": 3.46, "retrained_in": "`reports/runs/a/fidelity.json`",
           "to_retrain": [], "already_retrained": [], "runs": [a, b]}
    page = render.RENDERERS["supernet_samplers"](rec)
    assert "each through supernets of its own" in page and "fpn 2.5000 vs 2.6000" in page
    assert "took 3.46x as long in the second run" in page
    assert "Kendall tau 0.400 (95% bootstrap [0.300, 0.500]), Spearman 0.550" in page
    assert "agree at Kendall tau 0.400" in render.HEADLINES["supernet_samplers"](rec)[0]
