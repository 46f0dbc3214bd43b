"""benchmarks/bench_latency_table.py: its statistics on constructed numbers, the spec labels, and its page (no
timing; ``--quick`` times 3 real specs)."""

import importlib.util
import sys
from pathlib import Path

import pytest

_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(_DIR))  # render.py and the renderers it imports beside it
_spec = importlib.util.spec_from_file_location("bench_latency_table", _DIR / "bench_latency_table.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _row(i: int, predicted: float, measured: float) -> dict:
    return {"label": f"fpn sum relu6 w{16 * i} x1 h1 256px", "flops": 1e9 * i, "error_pct": round(100 * (predicted /
            measured - 1), 2), "table_seconds": 0.5, "protocol_seconds": 2.0,
            "predicted": {"total_ms": predicted, "network_ms": predicted - 1, "post_ms": 1.0},
            "measured": {"total_ms": measured, "network_ms": measured - 2, "post_ms": 2.0, "iqr_ms": 0.1}}


def test_statistics_of_a_table_that_ranks_right_but_reads_low():
    rows = [_row(i, 9.0 * i + 1, 10.0 * i + 2) for i in range(1, 6)]
    out = bench.summarise(rows, bootstrap=50)
    assert out["kendall"]["tau"] == 1.0 and out["kendall"]["n"] == 5 and out["kendall"]["low"] <= 1.0
    assert out["flops_kendall"]["tau"] == 1.0
    assert out["mape_post_pct"] == 50.0 and out["mape_pct"] == pytest.approx(
        100 * sum(1 - (9 * i + 1) / (10 * i + 2) for i in range(1, 6)) / 5, abs=0.01)
    assert out["build_seconds"] == 2.5 and out["protocol_seconds"] == 2.0 and out["median_error_pct"] < 0


def test_labels_name_family_graphs_by_their_picks():
    params = {"topology": bench.FAMILY, "fusion": "fast", "activation": "relu6", "fpn_channels": 64,
              "fpn_repeats": 3, "head_repeats": 2, "resolution": 320, "bifpn_family.b": 1, "bifpn_family.a": 0}
    assert bench.label(params) == "bifpn_family[01] fast relu6 w64 x3 h2 320px"
    assert bench.label({**params, "topology": "panet"}).startswith("panet fast")


def test_the_page_renders_from_the_record():
    rows = [_row(i, 9.0 * i + 1, 10.0 * i + 2) for i in range(1, 4)]
    record = {"benchmark": "latency_table", "study": bench.STUDY, "n_specs": 3, "seed": 0, "family": True,
              "family_specs": 0, "runtime": "torch", "threads": 1, "batch": 1, "warmup": 10, "runs": 40,
              "latency_machine": {"cpu": "CPU X", "cores": 2, "torch": "2"}, "specs": rows, "entries": 12,
              "prediction_seconds": 0.0002, **bench.summarise(rows, bootstrap=20)}
    page = bench.render_latency_table(record)
    assert "Kendall tau 1.000" in page and "12 entries" in page and "10,000 x the prediction" in page
    assert page.count("| fpn sum relu6") == 3
    from render import HEADLINES

    assert HEADLINES["latency_table"](record)[0].startswith("3 specs: table vs protocol Kendall tau 1.000")
