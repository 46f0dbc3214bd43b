"""benchmarks/beat_lite0.py's page, headline and README table from a constructed record, rendered through
render.py's family dispatch (one record per dataset), and the README span it fills (no training)."""

import json
import sys
from pathlib import Path

_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(_DIR))

import render  # noqa: E402
import render_beat_lite0 as page  # noqa: E402

SPEC = {"topology": "bifpn", "fusion": "sum", "activation": "relu6", "resolution": 320, "fpn_channels": 64,
        "fpn_repeats": 3, "head_repeats": 3}


def _row(number, maps, latency, **verdict):
    return {"number": number, "label": None, "spec": SPEC, "seeds": list(range(len(maps))), "maps": maps,
            "scored": "ema", "torch_latency_ms": latency, "torch_latency_iqr_ms": [latency - 1, latency + 1], **verdict}


def _record(verdict="cannot tell with these seeds", faster=True):
    win = _row(7, [0.44, 0.45, 0.46], 20.0, verdict=verdict, test="non-inferiority sign-flip test", holm_p=0.25,
               diff=0.004, paired=True, faster=faster, text=f"{verdict} (x; Holm p = 0.25)", seeds_needed=6,
               noninferiority_holm_p=0.25, superiority_holm_p=0.5)
    base = {**_row(0, [0.44, 0.44, 0.45], 30.0), "label": "EfficientDet-Lite0"}
    return {"benchmark": "beat_lite0_supernet_toy", "command": "python benchmarks/beat_lite0.py studies/toy.yaml",
            "cpu_lock": True, "machine_line": "toy machine", "started": "2026-12-04 14:00:00 UTC", "seconds": 10.0,
            "study": "studies/toy.yaml", "run": "reports/runs/toy", "label": "EfficientDet-Lite0", "dataset": "data/toy",
            "top_k": 3, "factor": 4.0, "seeds": 3, "rounds": 2, "sets": [], "points": [win], "winner": win,
            "baseline": base,
            "steps": {"search": {"command": "scalesearch run", "wall_seconds": 600.0, "cpu_seconds": 1100.0},
                      "retrain": {"command": "scalesearch fidelity", "wall_seconds": 1200.0, "cpu_seconds": 2300.0},
                      "export winner": {"command": "scalesearch export", "wall_seconds": 30.0, "cpu_seconds": 20.0},
                      "onnx latency winner round 0": {"command": "scalesearch latency", "wall_seconds": 30.0,
                                                      "cpu_seconds": 20.0}},
            "onnx_latency": {"winner": {"median_ms": 12.5, "iqr_ms": [12.0, 13.0], "runs": 80, "rounds": 2,
                                        "onnx": "reports/runs/toy/onnx/trial7.onnx", "detections": 5},
                             "baseline": {"median_ms": 18.25, "iqr_ms": [18.0, 19.0], "runs": 80, "rounds": 2,
                                          "onnx": "reports/runs/toy/onnx/trial0.onnx", "detections": 6}}}


def test_page_states_steps_verdict_onnx_and_what_the_closest_point_misses():
    text = page.render_beat_lite0(_record())
    assert text.startswith("# Beat EfficientDet-Lite0, search to verdict: supernet_toy\n")
    assert "| search | 10.0 min | 1100 |" in text and "| retrain | 20.0 min | 2300 |" in text
    assert "| 0 (EfficientDet-Lite0) | bifpn sum/relu6, 64 x 3, heads 3, 320 px | 0.4433 ± 0.0058 (n 3) | 30.00 ms" in text
    assert "| winner (`reports/runs/toy/onnx/trial7.onnx`) | 12.50 ms | 12.00 to 13.00 ms | 80 | 5 |" in text
    assert "closest point (the winner above) misses: mean paired difference +0.0040 mAP" in text
    assert "6 paired seeds would make p < 0.05 reachable (3 were run)" in text
    rec = _record()
    seven = list(range(7))
    rec["winner"] = {**rec["winner"], "seeds": seven, "maps": [0.45] * 7}
    rec["baseline"] = {**rec["baseline"], "seeds": seven[1:] + [9], "maps": [0.44] * 7}  # 6 shared with the winner
    assert "p < 0.05 was reachable with these 6 paired seeds but not reached" in page.render_beat_lite0(rec)
    rec["baseline"]["seeds"] = seven[2:] + [8, 9]  # 5 shared: fewer than the 6 needed
    assert "6 paired seeds would make p < 0.05 reachable (5 were run)" in page.render_beat_lite0(rec)
    assert "misses" not in page.render_beat_lite0(_record("non-inferior and faster"))


def test_page_says_where_reused_seeds_were_trained():
    rec = {**_record(), "retrain_wall_seconds": 1800.0}
    assert "(all sessions): 30 min wall.\n" in page.render_beat_lite0(rec)
    text = page.render_beat_lite0({**rec, "reuse": "reports/runs/other"})
    assert "30 min wall (the seeds copied by `--reuse` from `reports/runs/other` count with the time they took there)." in text


def test_readme_table_and_headline():
    table = page.readme_table(_record("dominates"))
    assert "| data/toy | mAP mean ± sd (n) at 4x | latency torch | latency ONNX Runtime (NMS inside) | verdict |" in table
    assert "| winner: trial 7, bifpn sum/relu6, 64 x 3, heads 3, 320 px | 0.4500 ± 0.0100 (n 3) | 20.00 ms | 12.50 ms |" in table
    assert "search 10 min, retrain 20 min, export 1 min" in table
    assert page.readme_table({"benchmark": "beat_lite0_x"}) == "not measured yet"
    lines = page.headline_beat_lite0(_record())
    assert lines[1] == ("ONNX Runtime: EfficientDet-Lite0 18.25 ms, winner 12.50 ms; wall time: search 10 min, "
                        "retrain 20 min, export 1 min")


def test_family_records_render_through_render_py(tmp_path):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "beat_lite0_supernet_toy.json").write_text(json.dumps(_record()))
    assert render.render_benchmarks(folder, tmp_path / "index.md") == 0
    assert (folder / "beat_lite0_supernet_toy.md").read_text().startswith("# Beat EfficientDet-Lite0, search to verdict")
    index = (tmp_path / "index.md").read_text()
    assert "## Beat EfficientDet-Lite0, search to verdict: supernet_toy" in index and "ONNX Runtime:" in index


def test_a_frozen_backbone_record_says_so_and_totals_search_to_verdict():
    rec = {**_record("dominates"), "benchmark": "beat_lite0_supernet_toy_frozen", "backbone": "frozen",
           "retrain_wall_seconds": 900.0,
           "checkpoints": {"winner": {"checkpoint": "reports/runs/toy/fidelity_frozen_checkpoints/trial7_seed0.pt",
                                      "seed": 0, "map": 0.44, "recorded_map": 0.44},
                           "baseline": {"checkpoint": "reports/runs/toy/fidelity_frozen_checkpoints/trial0_seed0.pt",
                                        "seed": 0, "map": 0.441, "recorded_map": 0.44}}}
    rec["steps"]["search"]["from"], rec["steps"]["search"]["ran"] = "meta.json", "2026-12-04 on AMD EPYC"
    rec["steps"]["retrain"]["wall_seconds"] = 60.0  # resumed: this call trained little; the records hold 900 s
    table = page.readme_table(rec)
    assert "| data/toy | mAP mean ± sd (n) at 4x, backbone frozen | latency torch |" in table
    assert "search 10 min, retrain 15 min, export 1 min; total 26 min;" in table  # 600 + 900 + 60 s
    text = page.render_beat_lite0(rec)
    assert "with the pretrained backbone frozen (`scalesearch fidelity --frozen-backbone`" in text
    assert "as `fidelity_frozen.json` records it (all sessions): 15 min wall." in text
    assert "Search to verdict: 26 min wall (search 10.0, retrain 15.0, export 1.0)." in text
    assert "(meta.json, 2026-12-04 on AMD EPYC) |" in text
    assert "- exported winner: `reports/runs/toy/fidelity_frozen_checkpoints/trial7_seed0.pt`, seed 0, mAP 0.4400, " \
           "the same as recorded" in text
    assert "seed 0, mAP 0.4410, recorded 0.4400 (+0.001)" in text
    assert _record()["benchmark"] != rec["benchmark"] and "backbone frozen" not in page.readme_table(_record())


def test_a_finished_search_counts_every_call_that_made_it(tmp_path):
    import pytest
    from beat_lite0 import finished_search

    (tmp_path / "trials.json").write_text(json.dumps([{"number": i, "state": "complete"} for i in range(3)]))
    meta = {"command": "scalesearch run s.yaml", "start": "2026-12-07T10:57:04+00:00", "machine": {"cpu": "toy"},
            "end": "2026-12-07T10:57:16+00:00", "runs": 2, "wall_seconds": 8081.0}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    assert finished_search(tmp_path, 4) is None  # not finished: the search step runs (and resumes it)
    done = finished_search(tmp_path, 3)
    assert (done["wall_seconds"], done["ran"]) == (8081.0, "2026-12-07 on toy, 2 calls")
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "runs": 1, "wall_seconds": None}))
    assert finished_search(tmp_path, 3)["wall_seconds"] == 12.0  # one call: its own start to end
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "wall_seconds": None}))
    with pytest.raises(SystemExit, match="resumed before meta.json summed"):  # the last call alone would be a lie
        finished_search(tmp_path, 3)
