"""Proxy training, checkpoints and the train/predict commands on a tiny synthetic dataset (seconds)."""

import json
import math

import pytest
import torch
from torch import nn

from scalesearch.training.checkpoint import load_checkpoint, save_checkpoint
from scalesearch.errors import UserError
from scalesearch.model import build_detector
from scalesearch.spec import DetectorSpec
from scalesearch.training.train import TrainConfig, TrainingFailed, lr_factor, train_and_evaluate, train_loop

TINY = DetectorSpec(resolution=128, width_multiplier=0.25, depth_multiplier=0.25, fpn_channels=16, fpn_repeats=1,
                    head_repeats=1, num_classes=4)
FAST = TrainConfig(steps=3, batch_size=4, eval_batch_size=8)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from scalesearch.data import synthetic_dataset

    return synthetic_dataset(tmp_path_factory.mktemp("syn"), num_train=12, num_val=6, image_size=128,
                             max_object=64, max_objects=4)


@pytest.fixture(scope="module")
def tiny_run(tiny_data, tmp_path_factory):
    results = tmp_path_factory.mktemp("run") / "results.json"
    result = train_and_evaluate(TINY, tiny_data, tiny_data, FAST, progress=False, results_json=results, keep_model=True)
    return result, results


def test_tiny_train_end_to_end(tiny_run):
    result, results_json = tiny_run
    assert result.steps == 3 and len(result.losses) == 3
    assert all(math.isfinite(v) and v > 0 for v in result.losses)
    assert set(result.metrics) == {"map", "map50", "map75", "map_small", "map_medium", "map_large", "map_raw",
                                   "map_ema", "train_loss"}
    assert result.metrics["train_loss"] == pytest.approx(sum(result.losses[1:]) / 2)  # the last half: steps 2, 3
    # the learning curve: the scored weights evaluated at 1/4, 1/2 and 3/4 of 3 steps (rounded: steps 1 and 2)
    assert sorted(result.intermediate) == [1, 2] and all("map" in m for m in result.intermediate.values())
    assert set(result.weights_metrics) == {"raw", "ema"}  # both weights evaluated, the EMA scored by default
    assert result.metrics["map"] == result.metrics["map_ema"] == result.weights_metrics["ema"]["map"]
    assert result.metrics["map_raw"] == result.weights_metrics["raw"]["map"]
    assert result.images_per_second == pytest.approx(3 * 4 / result.train_seconds)
    assert result.spec.num_classes == 4 and result.info.num_classes == 4
    written = json.loads(results_json.read_text())
    assert len(written) == len(result.detections) > 0
    assert {d["category_id"] for d in written} <= set(result.info.label_to_category)
    assert max(len([d for d in written if d["image_id"] == i]) for i in {d["image_id"] for d in written}) <= 100
    assert all(0 <= d["bbox"][0] and d["bbox"][0] + d["bbox"][2] <= 128.01 for d in written)


def test_same_seed_same_losses(tiny_data, tiny_run):
    again = train_and_evaluate(TINY, tiny_data, tiny_data, FAST, progress=False)
    assert again.losses == tiny_run[0].losses
    other = train_and_evaluate(TINY, tiny_data, tiny_data, TrainConfig(steps=2, batch_size=4, seed=1), progress=False)
    assert other.losses[0] != tiny_run[0].losses[0]


def _toy_loop(cfg, step_loss, **kwargs):
    model = nn.Linear(2, 1)
    loader = [(torch.ones(4, 2), [{}] * 4)]
    return train_loop(model, step_loss, loader, cfg, progress=False, **kwargs)


def test_nan_loss_raises_training_failed():
    def step_loss(model, images, targets):
        return model(images).sum() * (float("nan") if model.weight.grad is not None else 1.0)

    with pytest.raises(TrainingFailed) as info:
        _toy_loop(TrainConfig(steps=5), step_loss)
    assert info.value.reason.startswith("loss became nan at step 2")


def test_intermediate_eval_calls_hook_and_propagates():
    class Pruned(Exception):
        pass

    seen = []

    def on_eval(step, metrics):
        seen.append((step, metrics["map"]))
        if step == 4:
            raise Pruned

    with pytest.raises(Pruned):
        _toy_loop(TrainConfig(steps=10, eval_every=2), lambda m, x, t: m(x).pow(2).sum(),
                  evaluate=lambda m: {"map": 0.5}, on_eval=on_eval)
    assert seen == [(2, 0.5), (4, 0.5)]


def test_seconds_budget_stops_and_excludes_eval_time():
    import time

    loop, _ = _toy_loop(TrainConfig(steps=None, seconds=0.3, eval_every=50), lambda m, x, t: m(x).pow(2).sum(),
                        evaluate=lambda m: time.sleep(0.05) or {"map": 0.0})
    assert loop.seconds >= 0.3 and loop.steps >= 1
    assert loop.eval_seconds >= 0.05 * len(loop.intermediate)


def test_lr_schedule():
    assert lr_factor(0, 0.0, 10) == pytest.approx(0.1)
    assert lr_factor(9, 0.0, 10) == pytest.approx(1.0)
    assert lr_factor(50, 0.5, 10) == pytest.approx(0.5)
    assert lr_factor(99, 1.0, 10) == pytest.approx(0.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": None, "seconds": None}, "a budget is needed"),
    ({"steps": 0}, "train.steps: must be a positive integer"),
    ({"optimizer": "adam"}, "train.optimizer: must be one of adamw, sgd, but got 'adam'"),
    ({"lr": 0.0}, "train.lr: must be a finite number > 0, but got 0.0"),
    ({"lr": float("inf")}, "train.lr: must be a finite number > 0, but got inf"),
    ({"backbone_lr_mult": -1.0}, "train.backbone_lr_mult: must be a finite number > 0, but got -1.0"),
    ({"scale_range": (1.5, 1.0)}, "train.scale_range"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        TrainConfig(**kwargs)


def test_sgd_raw_scored_train(tiny_data):
    cfg = TrainConfig(steps=2, batch_size=4, optimizer="sgd", lr=0.01, scored="raw")
    result = train_and_evaluate(TINY, tiny_data, tiny_data, cfg, progress=False)
    assert result.steps == 2 and all(math.isfinite(v) for v in result.losses)
    assert result.metrics["map"] == result.metrics["map_raw"] and "map_ema" in result.metrics


def test_without_ema_only_raw_weights_are_evaluated(tiny_data):
    result = train_and_evaluate(TINY, tiny_data, tiny_data, TrainConfig(steps=1, batch_size=4, ema=False),
                                progress=False)
    assert set(result.weights_metrics) == {"raw"} and "map_ema" not in result.metrics
    assert result.metrics["map"] == result.metrics["map_raw"]


def test_checkpoint_round_trip_weights_only(tmp_path):
    torch.manual_seed(0)
    model = build_detector(TINY).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, TINY, {"category_names": ["a", "b", "c", "d"]})
    raw = torch.load(path, weights_only=True)
    assert raw["spec"] == TINY.to_dict() and raw["info"]["category_names"] == ["a", "b", "c", "d"]
    loaded, spec, info = load_checkpoint(path)
    assert spec == TINY and not loaded.training
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        for a, b in zip(model(x)[0], loaded(x)[0]):
            assert torch.equal(a, b)


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(UserError, match="was not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="but it is not a file torch.save wrote"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="format is not"):
        load_checkpoint(tmp_path / "other.pt")


@pytest.mark.slow
def test_quickstart_model_reaches_ap50_in_three_minutes():
    """The issue's bar: phi = -2 (256 px) on the default synthetic data, AP50 >= 0.5 within 3 minutes.

    A step budget, not a clock: 300 steps take about 90 s alone on 2 cores (612 steps fitted in 3 minutes
    in ``benchmarks/bench_quickstart_train.py``, which measures the time), so the test does not depend on
    machine load.
    """
    from scalesearch.scaling import compound_spec

    result = train_and_evaluate(compound_spec(-2), None, None, TrainConfig(steps=300), progress=False)
    assert result.steps == 300
    assert result.metrics["map50"] >= 0.5


def test_backbone_lr_multiplier_and_frozen_batch_norm():
    from scalesearch.training.train import freeze_batch_norm, make_optimizer

    model = build_detector(TINY)
    opt = make_optimizer(model, TrainConfig(backbone_lr_mult=0.1))
    backbone = {id(p) for p in model.backbone.parameters()}
    for group in opt.param_groups:
        inside = {id(p) in backbone for p in group["params"]}
        assert len(inside) == 1 and group.get("lr_mult", 1.0) == (0.1 if inside == {True} else 1.0)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    freeze_batch_norm(model.backbone)
    bn = model.backbone.bn1
    before = bn.running_mean.clone()
    model.backbone(torch.randn(2, 3, 128, 128))
    assert torch.equal(bn.running_mean, before) and not bn.weight.requires_grad


def test_frozen_backbone_bn_survives_training_steps_and_applies_only_when_pretrained(tiny_data):
    spec = TINY.replace(backbone="tf_efficientnet_lite0", width_multiplier=1.0, depth_multiplier=1.0, weights="package")
    cfg = TrainConfig(steps=2, batch_size=4, eval_batch_size=8, freeze_backbone_bn=True)
    loaded = build_detector(spec).backbone.bn1.running_var.clone()
    result = train_and_evaluate(spec, tiny_data, tiny_data, cfg, progress=False, keep_model=True)
    assert torch.equal(result.model.backbone.bn1.running_var, loaded)
    scratch = train_and_evaluate(spec.replace(weights="none"), tiny_data, tiny_data, cfg, progress=False,
                                 keep_model=True)
    assert not torch.equal(scratch.model.backbone.bn1.running_var, torch.ones_like(loaded))  # BN trained from scratch
