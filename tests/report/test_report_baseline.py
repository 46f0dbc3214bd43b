"""The "Against the baseline" section: dominance over a labelled trial from fidelity records (long-budget seeds,
latency measured after training), with Welch's and the permutation test's p; it reads records only."""

from __future__ import annotations

import json

import numpy as np
import pytest
from report_fakes import make_run, record
from scipy import stats

from scalesearch.fidelity import FILE, FidelityRecord
from scalesearch.files import write_json_atomic
from scalesearch.report import write_report
from scalesearch.report.baseline import Duel, quartiles

BASE_MAPS, FAST_MAPS, NOISY_MAPS = (0.50, 0.51, 0.52), (0.60, 0.61, 0.63), (0.49, 0.53, 0.55)


def latency(values):
    return {"runtime": "torch", "threads": 1, "batch": 1, "warmup": 10, "runs": len(values), "cpu": "test cpu",
            "exclusive": True, "load_average": 0.1, "median_ms": {"total": float(np.median(values))},
            "iqr_ms": {"total": 1.0}, "samples_ms": {"total": list(values)}}


def row(number, maps, samples, label=None, resolution=320):
    spec = {"topology": "bifpn", "fusion": "sum", "activation": "relu6", "resolution": resolution,
            "fpn_channels": 64, "fpn_repeats": 3, "head_repeats": 3}
    return FidelityRecord(f"p{number}", number, spec, 1e9, 0.4, 4.0, 600, None, (0, 1, 2), maps, label=label,
                          latency=latency(samples))


ROWS = [row(0, BASE_MAPS, np.linspace(20, 24, 40), label="Lite0"),
        row(1, FAST_MAPS, np.linspace(10, 12, 40), resolution=256),
        row(2, NOISY_MAPS, np.linspace(15, 17, 40))]


def test_duel_tests_match_scipy_and_the_rule():
    win, noisy = Duel(ROWS[1], ROWS[0]), Duel(ROWS[2], ROWS[0])
    assert win.welch_p == pytest.approx(stats.ttest_ind(FAST_MAPS, BASE_MAPS, equal_var=False).pvalue)
    assert win.permutation == (pytest.approx(0.1), pytest.approx(0.1))  # 3 vs 3: 2 of 20 relabellings
    assert win.dominates and win.verdict == "**dominates**"
    assert not noisy.dominates and noisy.verdict == "mAP within noise, faster"
    assert quartiles(ROWS[0]) == pytest.approx((21.0, 22.0, 23.0))


def test_section_names_the_dominating_point(tmp_path):
    run = make_run(tmp_path / "run", [record(i, phi=i, map_=0.1 * (i + 1)) for i in range(3)])
    write_json_atomic(run / FILE, [r.to_json() for r in ROWS])
    (run / "fidelity_checkpoints").mkdir()
    (run / "fidelity_checkpoints" / "trial1_seed2.pt").write_bytes(b"")  # the best of seeds 0, 1, 2 (mAP 0.63)
    (run / "export_onnxruntime.json").write_text(json.dumps(
        {"runtime": "onnxruntime", "median_ms": {"total": 6.5, "network": 5.0}, "iqr_ms": {"total": 0.2},
         "spec": ROWS[1].spec}))
    text = write_report([run], tmp_path / "out").read_text()
    assert "## Against the baseline: Lite0" in text
    assert "**1 architecture(s) dominate Lite0** at the long budget: trial 1 (bifpn, 256 px): mAP +0.1033" in text
    assert "11.00 [10.50, 11.50] vs 22.00 [21.00, 23.00] ms" in text
    assert "Trial 1's best seed (mAP 0.6300) is `" in text and "trial1_seed2.pt --out winner.onnx --nms`" in text
    assert "trial 1's checkpoint timed with its trained weights" in text
    assert "onnxruntime: 6.50 ms (IQR 0.20; network 5.00)" in text
    assert (tmp_path / "out" / "figures" / "baseline.png").is_file()


def test_nothing_dominates_is_said_with_the_closest_point(tmp_path):
    run = make_run(tmp_path / "run", [record(0, map_=0.1)])
    write_json_atomic(run / FILE, [r.to_json() for r in (ROWS[0], ROWS[2])])
    text = write_report([run], tmp_path / "out").read_text()
    assert "**Nothing dominates Lite0** at the long budget by this test. The most accurate of the faster points " \
           "is trial 2: mAP +0.0133" in text
    assert "; it misses every seed above every baseline seed, Welch p < 0.05 (p = " in text
    assert "The highest mean mAP is" not in text  # the same trial is not named twice


def test_no_section_without_a_labelled_retrained_point(tmp_path):
    run = make_run(tmp_path / "run", [record(0, map_=0.1)])
    write_json_atomic(run / FILE, [r.to_json() for r in ROWS[1:]])
    assert "Against the baseline" not in write_report([run], tmp_path / "out").read_text()
