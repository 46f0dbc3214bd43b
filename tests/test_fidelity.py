"""Long-budget retraining of a finished run's best specs, with a fake trainer: picks, budget, resume."""

from __future__ import annotations

import json

import pytest

from scalesearch.errors import UserError
from scalesearch.fidelity import FILE, kendall, load_fidelity
from scalesearch.retrain.fidelity import pick, retrain
from scalesearch.records import TrialRecord

POINTS = [(0.3, 3e9), (0.2, 2e9), (0.1, 1e9), (0.05, 4e9)]  # (proxy mAP, FLOPs) of phi = 0..3


def trial(number, phi, map_, flops, seed=0):
    return {"number": number, "state": "complete", "seed": seed, "map": map_, "flops": flops, "params": flops / 600,
            "group": f"phi={phi}", "resolution": 256 + 128 * phi, "topology": "bifpn", "num_classes": 4}


def make_run(path, steps=100):
    path.mkdir()
    rows = [trial(i, i, m, f) for i, (m, f) in enumerate(POINTS)] + [trial(4, 0, 0.32, 3e9, seed=1)]
    rows[3]["label"] = "baseline"  # phi=3: dominated, never among the top picks
    (path / "trials.json").write_text(json.dumps(rows))
    (path / "study.yaml").write_text(f"name: fake\nseeds: 2\nspace: {{phi: [0, 1, 2, 3]}}\ntrain: {{steps: {steps}}}\n")
    return path


class FakeTrainer:
    def __init__(self, maps):
        self.maps, self.calls = maps, []

    def __call__(self, spec, seed, number):
        self.calls.append((spec["resolution"], seed))
        return self.maps[spec["resolution"]]


def test_pick_counts_seed_repeats_once():
    records = [TrialRecord.from_json(trial(i, i % 3, 0.1 * i, 1e9 * (1 + i % 3), seed=i // 3)) for i in range(9)]
    assert [r.group for r in pick(records, 4)] == ["phi=2", "phi=1", "phi=0"]


def test_retrain_records_each_spec_at_factor_times_the_budget(tmp_path):
    run = make_run(tmp_path / "run")
    trainer = FakeTrainer({256: 0.5, 384: 0.4, 512: 0.45})
    rows = retrain(run, top_k=3, factor=3.0, seeds=2, trainer=trainer)
    # paired seeds: the study's seeds 0, 1 for every point (not the picked trial's), seed-major
    assert trainer.calls == [(256, 0), (384, 0), (512, 0), (256, 1), (384, 1), (512, 1)]
    assert [(r.group, r.steps, r.seeds, r.paired) for r in rows] == [
        ("phi=0", 300, (0, 1), True), ("phi=1", 300, (0, 1), True), ("phi=2", 300, (0, 1), True)]
    assert [h["seed"] for h in rows[0].history] == [0, 1] and rows[0].history[0]["command"] == "retrain()"
    assert rows[0].proxy_map == pytest.approx(0.31)  # mean over the point's proxy seeds
    assert load_fidelity(run) == rows
    tau, _ = kendall(rows)
    assert tau == pytest.approx(1 / 3)


def test_a_rerun_resumes_and_never_retrains(tmp_path):
    run = make_run(tmp_path / "run")
    retrain(run, top_k=2, trainer=FakeTrainer({256: 0.5, 384: 0.4}))
    again = FakeTrainer({256: 0.0, 384: 0.0, 512: 0.45})
    rows = retrain(run, top_k=3, trainer=again)
    assert again.calls == [(512, 0)] and [r.long_map for r in rows] == [0.5, 0.4, 0.45]
    assert len(json.loads((run / FILE).read_text())) == 3


def test_a_rerun_with_another_budget_is_refused(tmp_path):
    run = make_run(tmp_path / "run")
    retrain(run, top_k=2, trainer=FakeTrainer({256: 0.5, 384: 0.4}))
    with pytest.raises(UserError, match="--factor 4 --seeds 1, but got --factor 2"):
        retrain(run, top_k=2, factor=2.0, trainer=FakeTrainer({}))
    retrain(run, top_k=2, seeds=2, trainer=FakeTrainer({256: 0.3, 384: 0.2}))
    with pytest.raises(UserError, match="--seeds 2, but got --factor 4 --seeds 1"):
        retrain(run, top_k=2, seeds=1, trainer=FakeTrainer({}))


def test_more_seeds_train_only_the_missing_ones(tmp_path):
    run = make_run(tmp_path / "run")
    retrain(run, top_k=2, trainer=FakeTrainer({256: 0.5, 384: 0.4}))
    more = FakeTrainer({256: 0.3, 384: 0.2})
    rows = retrain(run, top_k=2, seeds=3, trainer=more)
    assert len(more.calls) == 4 and all(seed != rows[0].seeds[0] for _, seed in more.calls[:2])
    assert sorted(len(r.seeds) for r in rows) == [3, 3] and len(set(rows[0].seeds)) == 3
    assert sorted(r.maps[0] for r in rows) == [0.4, 0.5]  # the first seed's result is kept, not retrained


def test_include_adds_a_labelled_trial_and_unknown_labels_are_refused(tmp_path):
    run = make_run(tmp_path / "run")
    rows = retrain(run, top_k=2, include=["baseline"], trainer=FakeTrainer({256: 0.5, 384: 0.4, 640: 0.1}))
    assert [(r.group, r.label, r.number) for r in rows] == [("phi=0", None, 4), ("phi=1", None, 1),
                                                            ("phi=3", "baseline", 3)]
    with pytest.raises(UserError, match="--include/--against: no finished trial is labelled 'Lite0' .*labels in this run: "
                                        "baseline"):
        retrain(run, top_k=2, include=["Lite0"], trainer=FakeTrainer({}))


class FakeLatency:
    def __init__(self, samples):
        self.samples = samples

    def to_json(self):
        return {"median_ms": {"total": 0.0}, "iqr_ms": {"total": 0.0}, "runs": len(self.samples),
                "samples_ms": {"total": list(self.samples)}}


def test_latency_is_measured_interleaved_and_pooled_after_training(tmp_path):
    from scalesearch.config import load_study
    from scalesearch.retrain.fidelity import measure_latencies

    run = make_run(tmp_path / "run")
    retrain(run, top_k=2, trainer=FakeTrainer({256: 0.5, 384: 0.4}), latency=False)
    assert all(r.latency is None for r in load_fidelity(run))
    measured = []

    def measure(spec, settings):  # the machine slows down by 1 ms per measurement
        measured.append(spec.resolution)
        return FakeLatency([spec.resolution / 100 + len(measured)] * 2)

    config = load_study(run / "study.yaml")
    measure_latencies(run, config, measure=measure, rounds=2)
    measure_latencies(run, config, measure=measure, rounds=2)  # a rerun measures nothing twice
    assert measured == [256, 384, 256, 384]  # round by round, every point in each
    first, second = (r.latency for r in load_fidelity(run))
    assert first["samples_ms"]["total"] == pytest.approx([3.56, 3.56, 5.56, 5.56]) and first["runs"] == 4 and first["rounds"] == 2
    assert first["median_ms"]["total"] == pytest.approx(4.56) and first["iqr_ms"]["total"] == pytest.approx(2.0)
    assert second["median_ms"]["total"] == pytest.approx(3.84 + 3)
    measure_latencies(run, config, measure=measure, rounds=1, again=True)
    assert len(measured) == 6 and load_fidelity(run)[0].latency["rounds"] == 1


def test_against_picks_only_points_cheaper_than_the_labelled_one(tmp_path):
    rows = [trial(i, i, m, f) for i, (m, f) in enumerate(POINTS)]
    rows[0]["label"] = "Lite0"  # phi=0: 3 GFLOPs, mAP 0.3; cheaper: phi=1 (2G, 0.2), phi=2 (1G, 0.1)
    records = [TrialRecord.from_json(r) for r in rows]
    assert [r.group for r in pick(records, 1, against="Lite0")] == ["phi=1", "phi=0"]
    assert [r.group for r in pick(records, 5, against="Lite0")] == ["phi=1", "phi=2", "phi=0"]
    assert [r.group for r in pick(records, 2)] == ["phi=0", "phi=1"]


def test_study_trainer_saves_a_checkpoint_that_loads(tmp_path):
    """Real (tiny) training: ``--save`` keeps the model as trial<N>_seed<S>.pt with the data's categories."""
    from scalesearch.training.checkpoint import load_checkpoint
    from scalesearch.config import validate_study
    from scalesearch.retrain.fidelity import study_trainer
    from scalesearch.scaling import PAPER_RULE

    config = validate_study({"name": "t", "space": {"phi": -3.0}, "dataset": {"synthetic": {"num_train": 8, "num_val": 4, "image_size": 128}},
                             "train": {"steps": 1, "batch_size": 4, "warmup_steps": 1, "eval_batch_size": 4}})
    spec = PAPER_RULE.spec(-3.0, resolution=128, num_classes=4).to_dict()  # circle, square, triangle, cross
    map_ = study_trainer(config, 2.0, save_dir=tmp_path)(spec, 5, 7)
    model, loaded, info = load_checkpoint(tmp_path / "trial7_seed5.pt")
    assert loaded.resolution == 128 and info["steps"] == 2 and info["seed"] == 5
    assert info["metrics"]["map"] == pytest.approx(map_.map) and len(info["category_names"]) == 4
    assert set(map_.curve) == {1}  # train.curve's 0.25, 0.5, 0.75 of 2 steps: step 1 only (0 and 2 excluded)


def test_per_rung_picks_the_best_of_each_rung_and_every_labelled_point(tmp_path):
    rows = [trial(i, i, m, f) for i, (m, f) in enumerate([(0.3, 1e9), (0.2, 1e9), (0.5, 2e9), (0.4, 2e9)])]
    rows += [trial(4, 9, 0.1, 1e9), trial(5, 8, 0.6, 2e9)]
    for row, budget in zip(rows, [1e9, 1e9, 2e9, 2e9, 1e9, 2e9]):
        row["budget_flops"] = budget
    rows[4]["label"] = rows[5]["label"] = "paper rule"  # the paper's rule at each rung, even the best one
    records = [TrialRecord.from_json(r) for r in rows]
    assert [r.number for r in pick(records, 1, include=["paper rule"], per_rung=True)] == [0, 2, 5, 4]
    with pytest.raises(UserError, match="--top-k: must be >= 2 for a rank correlation"):
        retrain(make_run(tmp_path / "run"), top_k=1, trainer=FakeTrainer({}))


def test_each_seed_is_recorded_as_soon_as_it_is_trained(tmp_path):
    run = make_run(tmp_path / "run")

    class Crash(FakeTrainer):
        def __call__(self, spec, seed, number):
            if len(self.calls) == 1:
                raise KeyboardInterrupt  # killed while training the point's second seed
            return super().__call__(spec, seed, number)

    with pytest.raises(KeyboardInterrupt):
        retrain(run, top_k=2, seeds=2, trainer=Crash({256: 0.5}))
    assert [(r.group, r.seeds, r.maps) for r in load_fidelity(run)] == [("phi=0", (0,), (0.5,))]
    again = FakeTrainer({256: 0.3, 384: 0.4})
    rows = retrain(run, top_k=2, seeds=2, trainer=again, command="scalesearch fidelity run --seeds 2")
    assert again.calls == [(384, 0), (256, 1), (384, 1)]
    assert [(r.seeds, r.maps) for r in rows] == [((0, 1), (0.5, 0.3)), ((0, 1), (0.4, 0.4))]
    first, second = rows[0].history  # two batches: the crashed call and the rerun, each named
    assert (first["command"], second["command"]) == ("retrain()", "scalesearch fidelity run --seeds 2")
    assert first["batch"] <= second["batch"] and {"machine", "finished"} <= set(second)


def test_both_weights_and_wall_time_are_recorded_per_seed(tmp_path):
    from scalesearch.retrain.fidelity import Trained

    run = make_run(tmp_path / "run")
    outcomes = iter([Trained(0.5, 0.45, 0.5, 10.0), Trained(0.4, 0.41, 0.4, 11.0), Trained(0.6, 0.5, 0.6, 12.0),
                     Trained(0.3, 0.3, 0.3, 9.0)])
    retrain(run, top_k=2, seeds=1, trainer=lambda spec, seed, number: next(outcomes))
    rows = retrain(run, top_k=2, seeds=2, trainer=lambda spec, seed, number: next(outcomes))
    assert [(r.seeds, r.maps, r.raw_maps, r.ema_maps, r.wall_seconds) for r in rows][0] == (
        (0, 1), (0.5, 0.6), (0.45, 0.5), (0.5, 0.6), (10.0, 12.0))
    assert load_fidelity(run) == rows


def test_unpaired_records_are_not_extended_with_paired_seeds(tmp_path):
    run = make_run(tmp_path / "run")
    retrain(run, top_k=2, trainer=FakeTrainer({256: 0.5, 384: 0.4}))
    rows = json.loads((run / FILE).read_text())
    for row in rows:
        row.update(schema_version=2)
        for key in ("scored", "paired", "raw_maps", "ema_maps", "wall_seconds", "history"):
            row.pop(key)
    (run / FILE).write_text(json.dumps(rows))
    old = load_fidelity(run)
    assert not old[0].paired and old[0].raw_maps == old[0].maps and old[0].scored == "raw"
    with pytest.raises(UserError, match="unpaired seeds"):
        retrain(run, top_k=2, seeds=2, trainer=FakeTrainer({}))


def test_learning_curves_are_kept_per_seed_beside_seeds_trained_without_one(tmp_path):
    """A seed trained before curves were kept has None; later seeds keep the scored weights' curve."""
    from scalesearch.retrain.fidelity import Trained

    run = make_run(tmp_path / "run")
    outcomes = iter([Trained(0.5), Trained(0.4), Trained(0.6, curve={25: 0.2, 50: 0.45}),
                     Trained(0.3, curve={25: 0.1, 50: 0.25})])
    retrain(run, top_k=2, seeds=1, trainer=lambda spec, seed, number: next(outcomes))
    assert all(r.curves is None for r in load_fidelity(run))
    rows = retrain(run, top_k=2, seeds=2, trainer=lambda spec, seed, number: next(outcomes))
    assert rows[0].curves == (None, {"25": 0.2, "50": 0.45}) and rows[1].curves == (None, {"25": 0.1, "50": 0.25})
    assert load_fidelity(run) == rows
    bad = json.loads((run / FILE).read_text())
    bad[0]["curves"] = [{"25": 0.2}]
    (run / FILE).write_text(json.dumps(bad))
    with pytest.raises(UserError, match="curves: must hold one value per seed"):
        load_fidelity(run)


def test_longer_retrains_the_baseline_and_the_best_other_point_into_its_own_file(tmp_path):
    """``--longer``: the labelled baseline (with a latency) and the most accurate other point of fidelity.json at a
    longer budget, on fresh seeds after fidelity.json's, into fidelity_x<F>.json beside it; fidelity.json untouched."""
    from scalesearch.fidelity import longer_file
    from scalesearch.retrain.fidelity import retrain_longer

    run = make_run(tmp_path / "run")
    retrain(run, top_k=2, seeds=2, include=["baseline"], trainer=FakeTrainer({256: 0.5, 384: 0.55, 640: 0.52}))
    with pytest.raises(UserError, match="--longer: fidelity.json must hold a labelled baseline with a measured "
                                        "latency and another retrained point"):
        retrain_longer(run, 16.0, trainer=FakeTrainer({}))  # no latency yet: the report could not judge it
    rows = json.loads((run / FILE).read_text())
    for row in rows:
        row["latency"] = {"samples_ms": {"total": [float(row["spec"]["resolution"])]}}
    (run / FILE).write_text(json.dumps(rows))
    before = (run / FILE).read_text()
    with pytest.raises(UserError, match="--longer: must exceed the budget of fidelity.json"):
        retrain_longer(run, 4.0, trainer=FakeTrainer({}))
    trainer = FakeTrainer({384: 0.6, 640: 0.58})
    longer = retrain_longer(run, 16.0, seeds=3, trainer=trainer)
    assert trainer.calls == [(640, 2), (384, 2), (640, 3), (384, 3), (640, 4), (384, 4)]  # phi=3 labelled, phi=1 best
    assert [(r.group, r.label, r.steps, r.seeds) for r in longer] == [
        ("phi=3", "baseline", 1600, (2, 3, 4)), ("phi=1", None, 1600, (2, 3, 4))]
    assert load_fidelity(run, longer_file(16.0)) == longer and (run / FILE).read_text() == before
    assert retrain_longer(run, 16.0, seeds=3, trainer=FakeTrainer({})) == longer  # resumed: nothing to train
    empty = make_run(tmp_path / "empty")
    with pytest.raises(UserError, match="--longer: fidelity.json must hold a labelled baseline"):
        retrain_longer(empty, 16.0, trainer=FakeTrainer({}))


def test_reuse_copies_the_seeds_another_run_trained_and_trains_only_the_rest(tmp_path):
    first = make_run(tmp_path / "first")
    retrain(first, top_k=1, seeds=3, include=["baseline"], trainer=FakeTrainer({256: 0.5, 640: 0.1}),
            command="scalesearch fidelity first")
    second = make_run(tmp_path / "second")
    rows = json.loads((second / "trials.json").read_text())
    rows[3]["number"], rows[3]["map"] = 7, 0.06  # the baseline is another trial of this run, with its own proxy
    (second / "trials.json").write_text(json.dumps(rows))
    trainer = FakeTrainer({256: 0.9, 384: 0.4, 640: 0.9})
    got = retrain(second, top_k=2, seeds=2, include=["baseline"], trainer=trainer, reuse=first)
    assert sorted(trainer.calls) == [(384, 0), (384, 1)]  # phi=0 and the baseline came from the first run
    base = next(r for r in got if r.label == "baseline")
    assert (base.number, base.seeds, base.maps, base.proxy_map, base.latency) == (7, (0, 1), (0.1, 0.1), 0.06, None)
    assert len(base.history) == 2 and all(h["reused_from"].endswith("first/fidelity.json") for h in base.history)
    assert next(r for r in got if r.group == "phi=0").maps == (0.5, 0.5)
    from scalesearch.fidelity import batches

    found = batches(got)  # the report's history table: one batch copied from the first run, one trained here
    assert [(b["trainings"], b["reused_from"] is not None) for b in found] == [(4, True), (2, False)]


def test_reuse_is_refused_across_recipes_and_without_a_file(tmp_path):
    first = make_run(tmp_path / "first", steps=100)
    other = make_run(tmp_path / "other", steps=50)
    with pytest.raises(UserError, match="--reuse: .*first.*fidelity.json not found"):
        retrain(other, top_k=2, trainer=FakeTrainer({}), reuse=first)
    retrain(first, top_k=2, trainer=FakeTrainer({256: 0.5, 384: 0.4}))
    with pytest.raises(UserError, match=r"--reuse: .* trains differently .*\(train.steps differs\)"):
        retrain(other, top_k=2, trainer=FakeTrainer({}), reuse=first)


def test_progress_counts_the_trainings_and_keeps_the_log_lines_whole(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    lines = []
    retrain(run, top_k=2, seeds=2, trainer=FakeTrainer({256: 0.5, 384: 0.4}), log=lines.append, progress=True)
    err = capsys.readouterr().err
    assert "retrain" in err and "4/4" in err and "trial 1 seed 1" in err  # 2 points x 2 seeds, the last one named
    assert len(lines) == 4 and all("long-budget mAP" in line for line in lines)
    retrain(run, top_k=2, seeds=3, trainer=FakeTrainer({256: 0.5, 384: 0.4}), log=lines.append)
    assert capsys.readouterr().err == ""  # no bar unless asked


def test_frozen_backbone_retrains_fidelity_points_on_their_seeds_into_its_own_file(tmp_path):
    """``--frozen-backbone``: fidelity.json's points (or the ``--trial`` ones) on its first S seeds (the same seeds,
    so that each pairs with its fine-tuned training) at its budget, seed-major, into fidelity_frozen.json;
    fidelity.json untouched, a rerun trains nothing, unknown trials and seeds beyond the shared ones refused."""
    from scalesearch.fidelity import FROZEN_FILE
    from scalesearch.retrain.fidelity import retrain_frozen

    run = make_run(tmp_path / "run")
    with pytest.raises(UserError, match="fidelity.json: not found or empty; retrain the run first"):
        retrain_frozen(run, trainer=FakeTrainer({}))
    retrain(run, top_k=2, factor=4.0, seeds=3, include=["baseline"],
            trainer=FakeTrainer({256: 0.5, 384: 0.55, 640: 0.52}))
    with pytest.raises(UserError, match=r"^--frozen-backbone: trial 4 has no pretrained backbone"):
        retrain_frozen(run, trainer=FakeTrainer({}))
    rows = json.loads((run / FILE).read_text())
    for row in rows:
        row["spec"]["weights"] = "package"
    (run / FILE).write_text(json.dumps(rows))
    before = (run / FILE).read_text()
    with pytest.raises(UserError, match=r"^--trial: trial 2 is not in .*fidelity.json \(it holds 4, 1, 3\)$"):
        retrain_frozen(run, numbers=[2], trainer=FakeTrainer({}))
    with pytest.raises(UserError, match=r"^--seeds: must be 1..3 \(the consecutive seeds from 0"):
        retrain_frozen(run, seeds=4, trainer=FakeTrainer({}))
    trainer = FakeTrainer({384: 0.6, 640: 0.5})
    rows = retrain_frozen(run, numbers=[3, 1], seeds=2, trainer=trainer)
    assert trainer.calls == [(640, 0), (384, 0), (640, 1), (384, 1)]
    assert [(r.group, r.label, r.steps, r.factor, r.seeds, r.maps) for r in rows] == [
        ("phi=3", "baseline", 400, 4.0, (0, 1), (0.5, 0.5)), ("phi=1", None, 400, 4.0, (0, 1), (0.6, 0.6))]
    assert load_fidelity(run, FROZEN_FILE) == rows and (run / FILE).read_text() == before
    assert retrain_frozen(run, numbers=[3, 1], seeds=2, trainer=FakeTrainer({})) == rows  # resumed: nothing to train
    more = FakeTrainer({256: 0.4, 384: 0.6, 640: 0.5})
    assert len(retrain_frozen(run, trainer=more)) == 3  # every point, all 3 seeds: only what is missing trains
    assert sorted(more.calls) == [(256, 0), (256, 1), (256, 2), (384, 2), (640, 2)]


def test_frozen_trainer_trains_on_features_cached_once_per_resolution(tmp_path):
    """Real (tiny) trainings with the pretrained backbone frozen: the entry is built by the first training and read
    back by the next (also by a new trainer), both weights' mAP and the curve are kept, and a seed gives the same
    mAP each time (it pairs with the fine-tuned training of that seed)."""
    import torch

    from scalesearch.config import validate_study
    from scalesearch.model import build_detector
    from scalesearch.model.backbone import build_backbone
    from scalesearch.retrain.fidelity import frozen_trainer
    from scalesearch.spec import DetectorSpec

    weights = tmp_path / "tiny.pth"
    tiny = DetectorSpec(resolution=128, width_multiplier=0.25, depth_multiplier=0.25, fpn_channels=16,
                        fpn_repeats=1, head_repeats=1, num_classes=4)
    torch.manual_seed(0)
    torch.save(build_backbone(tiny, weights=False).state_dict(), weights)
    config = validate_study({"name": "t", "space": {"phi": -3.0},
                             "dataset": {"synthetic": {"num_train": 8, "num_val": 4, "image_size": 128}},
                             "train": {"steps": 2, "batch_size": 4, "warmup_steps": 1, "eval_batch_size": 4}})
    spec = tiny.replace(weights=str(weights)).to_dict()
    said: list[str] = []
    first = frozen_trainer(config, 2.0, tmp_path / "features", log=said.append, save_dir=tmp_path / "ckpt")(spec, 5, 7)
    assert len(said) == 1 and said[0].startswith("feature cache ") and " 128 px built in " in said[0]
    assert len(list((tmp_path / "features").glob("features-*.pt"))) == 1
    again = frozen_trainer(config, 2.0, tmp_path / "features", log=said.append)
    assert again(spec, 5, 7).map == pytest.approx(first.map) and len(said) == 1  # read back, not built
    assert first.map_raw is not None and first.map_ema is not None and set(first.curve) == {1, 2, 3}
    assert first.wall_seconds > 0 and first.map >= 0
    # --save: a whole detector, its backbone the pretrained one as loaded, its trained parts the scored weights
    from scalesearch.training.checkpoint import load_checkpoint

    model, loaded, info = load_checkpoint(tmp_path / "ckpt" / "trial7_seed5.pt")
    assert loaded.resolution == 128 and info["backbone"] == "frozen" and info["steps"] == 4 and info["seed"] == 5
    assert info["metrics"]["map"] == pytest.approx(first.map) and len(info["category_names"]) == 4
    pretrained = torch.load(weights, weights_only=True)
    backbone = model.backbone.state_dict()
    assert pretrained.keys() == backbone.keys() and all(torch.equal(pretrained[k], backbone[k]) for k in pretrained)
    untrained = build_detector(tiny.replace(weights=str(weights)), weights=False, init_seed=5)
    assert not all(torch.equal(a, b) for a, b in zip(untrained.fpn.state_dict().values(),
                                                     model.fpn.state_dict().values()))  # the trained parts came in


def test_save_trains_a_recorded_first_seed_again_for_its_missing_checkpoint(tmp_path):
    """Checkpoints are not committed: ``--save`` on points whose seeds are all recorded trains each point's first
    seed again (after the rest) for its checkpoint, logs its mAP beside the recorded one and leaves the record as it
    was; once the checkpoint is there, nothing trains."""
    run = make_run(tmp_path / "run")
    rows = retrain(run, top_k=2, seeds=2, trainer=FakeTrainer({256: 0.5, 384: 0.4}))

    class Saving(FakeTrainer):
        def __call__(self, spec, seed, number):
            (run / "fidelity_checkpoints").mkdir(exist_ok=True)
            (run / "fidelity_checkpoints" / f"trial{number}_seed{seed}.pt").write_text("model")
            return super().__call__(spec, seed, number)

    said, again = [], Saving({256: 0.5, 384: 0.41})
    assert retrain(run, top_k=2, seeds=2, trainer=again, log=said.append, save=True) == rows
    assert again.calls == [(256, 0), (384, 0)]  # the first seed of each point, nothing recorded anew
    refits = [line for line in said if "trained again for its checkpoint" in line]
    assert refits[0] == ("phi=0 seed 0: trained again for its checkpoint (fidelity_checkpoints/trial4_seed0.pt, not "
                         "recorded anew): mAP 0.5000, recorded 0.5000 (the same)")
    assert refits[1].endswith("mAP 0.4100, recorded 0.4000 (+0.01 from it)")
    idle = FakeTrainer({})
    retrain(run, top_k=2, seeds=2, trainer=idle, save=True)
    assert idle.calls == []
    import shutil

    shutil.rmtree(run / "fidelity_checkpoints")  # a third seed to train: its checkpoint will do, nothing again
    third = Saving({256: 0.5, 384: 0.4})
    retrain(run, top_k=2, seeds=3, trainer=third, save=True)
    assert third.calls == [(256, 2), (384, 2)]


def test_frozen_backbone_against_a_label_is_the_retraining_itself(tmp_path):
    """``--frozen-backbone --against LABEL``: no fidelity.json needed; the labelled trial and the K best front points
    cheaper than it, at F x the study's budget on S paired seeds, into fidelity_frozen.json; points without a
    pretrained backbone, a seconds budget and --trial are refused in one line before any training."""
    from scalesearch.fidelity import FROZEN_FILE
    from scalesearch.retrain.fidelity import retrain_frozen

    run = make_run(tmp_path / "run")
    rows = json.loads((run / "trials.json").read_text())
    rows[0]["label"] = "Lite0"  # phi=0: 3 GFLOPs; cheaper: phi=1 (2G), phi=2 (1G)
    (run / "trials.json").write_text(json.dumps(rows))
    with pytest.raises(UserError, match=r"^--frozen-backbone: trial 1 has no pretrained backbone"):
        retrain_frozen(run, against="Lite0", top_k=2, trainer=FakeTrainer({}))
    for row in rows:
        row["weights"] = "package"
    (run / "trials.json").write_text(json.dumps(rows))
    with pytest.raises(UserError, match=r"^--trial: does not apply with --against"):
        retrain_frozen(run, numbers=[1], against="Lite0", trainer=FakeTrainer({}))
    trainer = FakeTrainer({256: 0.5, 384: 0.45, 512: 0.3})
    done = retrain_frozen(run, against="Lite0", top_k=2, factor=2.0, seeds=2, trainer=trainer)
    assert trainer.calls == [(384, 0), (512, 0), (256, 0), (384, 1), (512, 1), (256, 1)]
    assert [(r.group, r.label, r.steps, r.seeds) for r in done] == [
        ("phi=1", None, 200, (0, 1)), ("phi=2", None, 200, (0, 1)), ("phi=0", "Lite0", 200, (0, 1))]
    assert load_fidelity(run, FROZEN_FILE) == done and not (run / FILE).exists()
    second = make_run(tmp_path / "second")  # another search of the space: the baseline's frozen seeds are copied
    (second / "trials.json").write_text(json.dumps(rows))
    again = FakeTrainer({256: 0.9, 384: 0.45, 512: 0.3})
    got = retrain_frozen(second, against="Lite0", top_k=2, factor=2.0, seeds=3, trainer=again, reuse=run)
    assert sorted(again.calls) == [(256, 2), (384, 2), (512, 2)]  # every point's seeds 0-1 came from the first
    base = next(r for r in got if r.label == "Lite0")
    assert (base.seeds, base.maps) == ((0, 1, 2), (0.5, 0.5, 0.9))  # seeds 0-1 copied, seed 2 trained here
    assert [bool(h.get("reused_from", "").endswith("run/fidelity_frozen.json")) for h in base.history] == [
        True, True, False]
    with pytest.raises(UserError, match=r"^--reuse: applies to --frozen-backbone with --against only"):
        retrain_frozen(second, reuse=run, trainer=FakeTrainer({}))
    (run / "study.yaml").write_text("name: fake\nspace: {phi: [0, 1, 2, 3]}\ntrain: {steps: null, seconds: 30}\n")
    with pytest.raises(UserError, match=r"^train.seconds: --frozen-backbone compares at a step budget"):
        retrain_frozen(run, against="Lite0", trainer=FakeTrainer({}))
