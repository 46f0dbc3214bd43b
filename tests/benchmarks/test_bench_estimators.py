"""benchmarks/bench_estimators.py: the table's statistics on constructed numbers, and its page (no training)."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from scalesearch.fidelity import FidelityRecord, reliability

_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(_DIR))  # render.py and the renderers it imports beside it
_spec = importlib.util.spec_from_file_location("bench_estimators", _DIR / "bench_estimators.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

REFERENCE = {"a": 0.40, "b": 0.42, "c": 0.44, "d": 0.46}


def _record(group, seeds, maps):
    return FidelityRecord(group=group, number=0, spec={}, flops=1.0, proxy_map=0.1, factor=4.0, steps=600,
                          seconds=None, seeds=tuple(seeds), maps=tuple(maps), scored="ema", paired=True)


def test_reference_is_the_mean_over_the_seeds_every_point_shares():
    rows = [_record("a", (0, 1, 2), (0.1, 0.2, 0.9)), _record("b", (0, 1), (0.3, 0.5)), _record("x", (0,), (0.0,))]
    seeds, means = bench.reference_means(rows, ["a", "b"])
    assert seeds == [0, 1] and means == pytest.approx({"a": 0.15, "b": 0.4})
    with pytest.raises(SystemExit, match="none of the estimated points"):
        bench.reference_means(rows, ["z"])


def test_ceiling_is_the_references_reliability_and_unknown_with_one_seed():
    rows = [_record(g, (0, 1), (m, m + 0.01 * (-1) ** i)) for i, (g, m) in enumerate(REFERENCE.items())]
    assert bench.ceiling_tau(rows, list(REFERENCE), [0, 1]) == pytest.approx(reliability(rows).ceiling_tau)
    assert bench.ceiling_tau(rows, list(REFERENCE), [0]) is None
    assert bench.ceiling_ratio(0.3, 0.6) == 0.5
    assert bench.ceiling_ratio(0.3, None) is None and bench.ceiling_ratio(None, 0.6) is None
    assert bench.ceiling_ratio(0.3, 0.0) is None


def test_tau_and_regret_against_the_reference():
    same = bench.row_stats({"a": 1, "b": 2, "c": 3, "d": 4}, REFERENCE, ceiling=0.8, n=50)
    assert same["tau"] == 1.0 and same["regret"] == 0.0 and same["ratio"] == 1.25 and same["n"] == 4
    assert same["low"] <= same["tau"] <= same["high"]
    reverse = bench.row_stats({"a": 4, "b": 3, "c": 2, "d": 1}, REFERENCE, ceiling=None, n=50)
    assert reverse["tau"] == -1.0 and reverse["regret"] == pytest.approx(0.06) and reverse["ratio"] is None
    # a point the estimator lacks is left out; one point gives no tau
    assert bench.row_stats({"a": 1, "b": 2, "c": 3}, REFERENCE, None, n=50)["n"] == 3
    assert bench.row_stats({"a": 1}, REFERENCE, None, n=50)["tau"] is None
    # no spread: tau is undefined (NaN is not written to the record)
    assert bench.row_stats({g: 1.0 for g in REFERENCE}, REFERENCE, None, n=50)["tau"] is None


def test_equal_cpu_steps_scale_the_training_and_keep_the_evaluation():
    assert bench.equal_cpu_steps(150, target_cpu=100.0, train_cpu=18.0, eval_cpu=3.0) == round(150 * 97 / 18)
    assert bench.equal_cpu_steps(150, 100.0, 20.0) == 750  # the plain ratio without an evaluation share
    assert bench.equal_cpu_steps(150, 1.0, 20.0, 3.0) == 1  # never below one step
    with pytest.raises(ValueError, match="train_cpu must be > 0"):
        bench.equal_cpu_steps(150, 100.0, 0.0)


def _row(name, tau, cpu, low=0.1, kind="estimator"):
    return {"name": name, "tau": tau, "cpu_seconds": cpu, "low": low, "kind": kind}


def test_first_per_cpu_second_and_the_front():
    rows = [_row("slow", 0.5, 100.0), _row("fast", 0.3, 20.0), _row("chance", 0.4, 1.0, low=-0.2),
            _row("free", 0.6, 0.0, kind="reference"), _row("worse", 0.2, 50.0), _row("unknown", None, 5.0)]
    assert bench.first_per_cpu(rows) == "fast"  # 0.3 / 20 beats 0.5 / 100; "chance" is not told from chance
    assert bench.first_per_cpu([_row("x", 0.4, 1.0, low=0.0)]) is None
    assert bench.pareto_front(rows) == ["free"]  # free and best: beats everything
    assert bench.pareto_front(rows[:3]) == ["slow", "chance"]  # "chance" is cheaper and better than "fast"
    assert bench.pareto_front([rows[0], rows[1], rows[4]]) == ["slow", "fast"]  # "worse" is beaten by "fast"


def _jobs():
    """Two seeds per point: train (map_raw from the reference order, train_loss reversed), cached at 150 and 300."""
    jobs = {}
    for i, g in enumerate(REFERENCE):
        for seed in (0, 1):
            jobs[bench.job_key("train", g, seed, 150)] = {
                "map_raw": 0.1 + i, "map_ema": 0.2 - i, "train_loss": 1.0 - 0.1 * i, "cpu": 100.0 + i,
                "wall": 60.0, "train_cpu": 90.0}
            for steps, cpu in ((150, 20.0), (300, 35.0)):
                jobs[bench.job_key("cached", g, seed, steps)] = {"map_raw": i, "map_ema": i, "cpu": cpu,
                                                                 "wall": cpu / 2, "train_cpu": cpu - 5}
        jobs[bench.job_key("zero_cost", g, None, None)] = {"naswot": i, "synflow": -i, "grad_norm": 1.0,
                                                           "cpu": 4.0, "wall": 4.5}
        jobs[bench.job_key("recorded", g, None, None)] = {"params": 10 - i, "flops": 1e9 + i, "map": 0.1 * i}
    return jobs


def test_table_reads_each_row_from_its_job():
    rows = {r["name"]: r for r in bench.table(_jobs(), list(REFERENCE), [0, 1], 150, 300, REFERENCE, 0.9, n=50)}
    assert rows["proxy_raw"]["tau"] == 1.0 and rows["proxy_ema"]["tau"] == -1.0
    assert rows["proxy_raw"]["cpu_seconds"] == 203.0  # two seeds per candidate, median over points
    assert rows["proxy_raw"]["values"]["b"] == pytest.approx(1.1)  # the mean over seeds
    assert rows["proxy_loss"]["tau"] == 1.0 and rows["proxy_loss"]["cpu_seconds"] == 180.0  # minus the loss, training only
    assert rows["cached_ema"]["cpu_seconds"] == 40.0 and rows["cached_equal_ema"]["cpu_seconds"] == 70.0
    assert rows["cached_equal_ema"]["steps"] == 300 and "300 steps" in rows["cached_equal_ema"]["label"]
    assert rows["naswot"]["tau"] == 1.0 and rows["synflow"]["tau"] == -1.0 and rows["naswot"]["cpu_seconds"] == 4.0
    assert rows["grad_norm"]["tau"] is None  # constant
    assert rows["params"]["cpu_seconds"] == 0.0 and rows["params"]["tau"] == -1.0
    assert rows["recorded_proxy"]["cpu_seconds"] is None and rows["recorded_proxy"]["tau"] == 1.0
    assert rows["proxy_raw"]["ratio"] == pytest.approx(1 / 0.9, abs=1e-4)
    assert bench.equal_inputs(_jobs(), list(REFERENCE), [0, 1], 150) == (203.0, 30.0, 10.0)


def _page_record(ceiling):
    rows = bench.table(_jobs(), list(REFERENCE), [0, 1], 150, 300, REFERENCE, ceiling, n=50)
    return {"benchmark": "estimators", "command": "python benchmarks/bench_estimators.py", "machine_line": "a machine",
            "seconds": 12.0, "run": "reports/runs/fidelity_bccd_paired", "steps": 150, "seeds": [0, 1], "threads": 2,
            "bootstrap": 50, "points": list(REFERENCE), "equal_steps": 300, "rows": rows,
            "cache": {"bytes": 2**20, "built": True, "rows": 40, "cpu": 30.0, "wall": 16.0},
            "reference": {"seeds": [0], "factor": 4.0, "steps": 600, "scored": "ema", "maps": REFERENCE,
                          "ceiling_tau": ceiling},
            "front": bench.pareto_front(rows), "first": bench.first_per_cpu(rows)}


def test_page_names_the_first_row_and_says_when_the_ceiling_is_unknown():
    import render
    from render_estimators import ordered

    rec = _page_record(None)
    page = render.RENDERERS["estimators"](rec)
    first = next(r for r in rec["rows"] if r["name"] == rec["first"])
    assert first["kind"] == "estimator" and f"First per CPU-second: **{first['label']}**" in page
    assert "Ceiling: unknown" in page and "| n/a |" in page
    assert "| phi" not in page and "| c | 0.4400 |" in page  # the per-point table
    names = [r["name"] for r in ordered(rec["rows"])]
    assert names.index("naswot") > names.index("cached_equal_raw")  # reference rows after the usable ones
    assert render.HEADLINES["estimators"](rec)[0].startswith(f"first per CPU-second: {first['label']}")
    assert "estimators" in render.ORDER and "estimators" in render.TITLES


def test_page_with_a_known_ceiling_and_no_first_row():
    import render

    rec = _page_record(0.8)
    rec["first"] = None
    page = render.RENDERERS["estimators"](rec)
    assert "First per CPU-second: **none**" in page and "Ceiling: 0.800" in page
    assert not any(math.isnan(r["tau"]) for r in rec["rows"] if r["tau"] is not None)


def _scored_row(name, values, cpu, kind="estimator"):
    return {"name": name, "label": name, "kind": kind, "values": values, "cpu_seconds": cpu,
            **bench.row_stats(values, REFERENCE, None, n=50)}


def test_target_check_is_a_paired_comparison_with_the_best_other_row():
    perfect = dict(REFERENCE)  # ranks as the reference does: tau 1
    swapped = {"a": 0.40, "b": 0.44, "c": 0.42, "d": 0.46}  # one discordant pair of 6: tau 2/3
    rows = [_scored_row("supernet", swapped, 10.0), _scored_row("proxy_loss", perfect, 150.0), _scored_row("proxy_ema", perfect, 160.0),
            _scored_row("recorded_proxy", perfect, 1.0, kind="reference")]  # reference rows are never the bar
    target = bench.target_check(rows, REFERENCE, n=200)
    assert target["against"] == "proxy_loss"  # tied on tau with proxy_ema: the cheaper
    assert target["cost_share"] == pytest.approx(10 / 150, abs=1e-4) and target["cost_met"]
    assert target["tau_difference"] == pytest.approx(2 / 3 - 1, abs=1e-4) and not target["tau_met"]
    assert target["low"] <= target["tau_difference"] <= target["high"] <= 0
    assert target["tau_shown"] in ("worse", "cannot tell") and target["n"] == 4
    same = bench.target_check([_scored_row("supernet", perfect, 20.0), rows[1]], REFERENCE, n=200)
    assert same["tau_difference"] == 0 and same["tau_met"] and same["tau_shown"] == "not worse"
    assert not same["cost_met"]  # 20 / 150 > 0.1
    assert bench.target_check(rows[1:], REFERENCE) is None  # no supernet row: nothing to check
    one = {**_scored_row("supernet", {"a": 0.1, "b": 0.2}, 5.0), "values": {"a": 0.1}, "tau": 0.5}
    assert bench.target_check([one, rows[1]], REFERENCE) is None  # one shared point: no ranking to compare


def test_restat_recomputes_the_statistics_from_the_values_alone():
    rec = _page_record(None)
    stale = {**rec, "rows": [{**r, "tau": 0.999, "low": 0.9} for r in rec["rows"]], "first": "params"}
    again = bench.restat(stale)
    assert [(r["tau"], r["low"], r["high"]) for r in again["rows"]] == [(r["tau"], r["low"], r["high"])
                                                                      for r in rec["rows"]]
    assert again["first"] == rec["first"] and again["front"] == rec["front"]
    assert "target" in again  # None here: the constructed table has no supernet row


def test_page_states_the_target_check():
    import render

    rec = _page_record(None)
    rec["target"] = {"row": "supernet", "against": "proxy_loss", "cost_share": 0.0857, "cost_target": 0.1,
                     "cost_met": True, "n": 12, "tau_difference": -0.0909, "low": -0.4828, "high": 0.3667,
                     "tau_met": False, "tau_shown": "cannot tell", "resamples": 2000}
    page = render.RENDERERS["estimators"](rec)
    assert "costs 0.086 of its CPU-seconds per candidate (target 0.1 or less: met)" in page
    assert "tau -0.091 against it (target >= 0: missed on the point estimate)" in page
    assert "[-0.483, +0.367]" in page and "cannot tell the two rankings apart" in page
