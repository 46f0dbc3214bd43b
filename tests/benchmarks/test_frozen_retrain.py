"""benchmarks/bench_frozen_retrain.py on a toy run (a fake trainer, no training): the record pairs each point's frozen
seeds with its fine-tuned ones, tests the difference with Holm, gives both arms' verdicts against the baseline; and
its page and headline, rendered through render.py's family dispatch."""

import json
import sys
from pathlib import Path

import pytest

_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(_DIR))

import bench_frozen_retrain as bench  # noqa: E402
import render  # noqa: E402
import render_frozen_retrain as page  # noqa: E402

from scalesearch.retrain import fidelity as retrain_module  # noqa: E402


def _trial(number, phi, map_, flops, label=None):
    row = {"number": number, "state": "complete", "seed": 0, "map": map_, "flops": flops, "params": flops / 600,
           "group": f"phi={phi}", "resolution": 256 + 128 * phi, "topology": "bifpn", "num_classes": 4}
    return {**row, "label": label} if label else row


def _run(tmp_path):
    run = tmp_path / "toy"
    run.mkdir()
    (run / "trials.json").write_text(json.dumps([_trial(0, 0, 0.3, 1e9), _trial(1, 1, 0.35, 2e9, "Lite0")]))
    (run / "study.yaml").write_text("name: toy\nspace: {phi: [0, 1]}\ntrain: {steps: 10, curve: [0.5]}\n")
    fine = {256: [0.50, 0.52, 0.51, 0.49, 0.50], 384: [0.55, 0.56, 0.54, 0.55, 0.57]}

    def trainer(spec, seed, number):
        m = fine[spec["resolution"]][seed]
        return retrain_module.Trained(m, m, m, 100.0, {5: m + 0.01})

    retrain_module.retrain(run, 1, 4.0, 5, trainer, numbers=[0, 1], latency=False)
    rows = json.loads((run / "fidelity.json").read_text())
    for row in rows:  # trial 0 (256 px) faster than Lite0, interquartile ranges apart; pretrained backbones
        row["spec"]["weights"] = "package"
        row["latency"] = {"samples_ms": {"total": [float(row["spec"]["resolution"]) + i for i in range(4)]}}
    (run / "fidelity.json").write_text(json.dumps(rows))
    return run


def test_record_pairs_the_arms_and_gives_both_verdicts(tmp_path, monkeypatch):
    run = _run(tmp_path)
    frozen = {256: [0.60, 0.61, 0.63, 0.60, 0.62], 384: [0.56, 0.55, 0.55, 0.56, 0.57]}

    def fake_frozen(config, factor, cache_dir, device=None, progress=False, log=None, built=None, save_dir=None):
        assert save_dir is None  # no --save
        assert factor == 4.0 and cache_dir == run / "estimator" / "features"
        built["tf_efficientnet_lite0 256 px"] = 12.5
        return lambda spec, seed, number: retrain_module.Trained(
            frozen[spec["resolution"]][seed], None, None, 20.0, {5: 0.3})

    saved = {}
    monkeypatch.setattr(retrain_module, "frozen_trainer", fake_frozen)
    monkeypatch.setattr(bench, "save_record", lambda record: saved.update(record) or tmp_path / "x.json")
    assert bench.main([str(run), "--label", "Lite0"]) == 0
    rec = saved
    assert rec["benchmark"] == "frozen_retrain_toy" and rec["call"]["wall_seconds"] >= 0
    by = {p["number"]: p for p in rec["points"]}
    assert by[0]["frozen"]["maps"] == frozen[256] and by[0]["finetuned"]["seeds"] == [0, 1, 2, 3, 4]
    test = by[0]["frozen_minus_finetuned"]
    assert test["mean"] == pytest.approx(0.108) and test["higher"] == 5 and test["p"] == pytest.approx(2 / 32)
    assert test["holm_p"] == pytest.approx(2 / 32 * 2)  # Holm over 2 points; trial 1's p is larger
    assert test["holm_floor"] == pytest.approx(2 / 32 * 2)  # 5 seeds, 2 points: no p could reach 0.05
    assert rec["call"]["cache_build_seconds"] == {"tf_efficientnet_lite0 256 px": 12.5}
    assert rec["recipe"] == {"backbone_lr_mult": 1.0, "freeze_backbone_bn": False, "scale_range": [1.0, 1.0],
                             "flip_prob": 0.5} and len(rec["finetuned_sessions"]) == 1
    assert rec["finetuned_training_seconds"] == 1000.0 and rec["frozen_training_seconds"] == 200.0
    fine_v, frozen_v = rec["verdicts"]["finetuned"][0], rec["verdicts"]["frozen"][0]
    assert fine_v["number"] == frozen_v["number"] == 0
    # 5 seeds: two-sided sign-flip p >= 2/32, one-sided >= 1/32; trial 0 is faster (256 px latencies below 384)
    assert fine_v["verdict"] == "cannot tell with these seeds" and fine_v["diff"] == pytest.approx(-0.05)
    assert frozen_v["verdict"] == "non-inferior and faster" and frozen_v["diff"] == pytest.approx(0.054)

    md = page.render_frozen_retrain(rec)
    assert "| Lite0 (trial 1): bifpn" in md and "+0.1080, higher on 5 of 5 | 0.0625 (0.125)" in md
    # trial 0 (40 steps): fine-tuned peaks at its curve step 5 (+0.01 over the end), frozen at the end
    assert "| 100 → 20 | 5 (0.5140) / 40 (0.6120) |" in md
    assert "| -0.0500 | cannot tell with these seeds" in md and "| +0.0540 | **non-inferior and faster**" in md
    assert ("Frozen against fine-tuned: trial 0 untestable with 5 paired seeds (smallest Holm p 0.125), higher on 5 "
            "of 5 (+0.1080, Holm p 0.125)") in md
    assert "building the feature caches in this call: tf_efficientnet_lite0 256 px 12.5 s" in md
    assert "backbone lr x1, backbone BatchNorm trained" in md
    head = page.headline_frozen_retrain(rec)[0]
    both = page.pooled(rec["points"])  # per seed: mean over the 2 points; all 5 seed means positive
    assert both["seeds"] == [0, 1, 2, 3, 4] and both["higher"] == 5 and both["mean"] == pytest.approx(0.056)
    assert both["p"] == pytest.approx(2 / 32) and both["min_p"] == pytest.approx(2 / 32)
    assert "Frozen minus fine-tuned over the 2 points +0.0560, untestable with 5 seeds (higher on 5 of 5 seeds; p 0.0625" in md
    assert head == ("frozen − fine-tuned backbone, mAP at the same steps and seeds: over the 2 points +0.0560, "
                    "untestable with 5 seeds (higher on 5 of 5 seeds; p 0.0625, smallest possible 0.0625); per point "
                    "trial 0 +0.1080 (higher on 5 of "
                    "5 seeds; untestable, smallest Holm p 0.125), Lite0 +0.0040 (higher on 3 of 5 seeds; untestable, "
                    "smallest Holm p 0.125)")


def test_within_noise_only_when_the_seeds_could_have_shown_more():
    seven = {"differences": [0.01, -0.01, 0.02, 0.0, 0.01, -0.02, 0.01], "higher": 4, "mean": 0.0029}
    assert page._change({**seven, "holm_p": 0.6, "holm_floor": 0.0156}) == "within seed noise"
    assert page._change({**seven, "holm_p": 0.0156, "holm_floor": 0.0156}) == "higher"
    assert page._change({**seven, "mean": -0.01, "holm_p": 0.03, "holm_floor": 0.0156}) == "lower"
    assert page._short({**seven, "mean": -0.01, "holm_p": 0.03, "holm_floor": 0.0156}) == "lower, Holm p 0.03"


def test_family_record_renders_through_render_py(tmp_path):
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    rec = {"benchmark": "frozen_retrain_toy", "command": "python benchmarks/bench_frozen_retrain.py reports/runs/toy",
           "cpu_lock": True, "machine_line": "toy machine", "started": "2026-12-06 14:00:00 UTC", "seconds": 10.0,
           "run": "reports/runs/toy", "label": "Lite0", "points": []}
    (folder / "frozen_retrain_toy.json").write_text(json.dumps(rec))
    assert render.render_benchmarks(folder, tmp_path / "index.md") == 0
    text = (folder / "frozen_retrain_toy.md").read_text()
    assert text.startswith("# Frozen or fine-tuned backbone at the long budget: toy")
    assert "No point was retrained with the backbone frozen yet." in text
