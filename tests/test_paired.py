"""Paired seeds (common random numbers) and weight averaging: seed s means the same draws for every architecture."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from scalesearch.model import build_detector
from scalesearch.model.detector import part_seed
from scalesearch.spec import DetectorSpec
from scalesearch.training import train
from scalesearch.training.train import TrainConfig, train_loop

TINY = DetectorSpec(resolution=128, width_multiplier=0.25, depth_multiplier=0.25, fpn_channels=16, fpn_repeats=1,
                    head_repeats=1, num_classes=4, weights="none")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from scalesearch.data import synthetic_dataset

    return synthetic_dataset(tmp_path_factory.mktemp("syn"), num_train=12, num_val=4, image_size=128,
                             max_object=64, max_objects=4)


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_parts_whose_shapes_agree_start_equal_across_topologies():
    bifpn = build_detector(TINY.replace(topology="bifpn"), init_seed=3)
    panet = build_detector(TINY.replace(topology="panet"), init_seed=3)
    for part in ("class_net", "box_net", "backbone"):
        a, b = _state(getattr(bifpn, part)), _state(getattr(panet, part))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    other_seed = build_detector(TINY.replace(topology="bifpn"), init_seed=4)
    first, other = _state(bifpn.class_net), _state(other_seed.class_net)
    assert not all(torch.equal(first[k], other[k]) for k in first)  # another seed, another stream
    assert part_seed(3, "class_net") != part_seed(4, "class_net") != part_seed(3, "box_net")


def _draws(data, spec: DetectorSpec, seed: int) -> list[tuple[list[int], torch.Tensor]]:
    """The (image ids, pixels) of every batch a training of ``spec`` on ``seed`` sees."""
    cfg = TrainConfig(steps=4, batch_size=4, seed=seed, scale_range=(0.6, 1.4), flip_prob=0.5)
    train_set = train.make_dataset(data, "train", spec, cfg, train=True)
    model = build_detector(spec.replace(num_classes=train_set.info.num_classes), init_seed=seed)
    seen: list[tuple[list[int], torch.Tensor]] = []
    base = train.detector_loss(model.spec)

    def step_loss(m, images, targets):
        seen.append(([t["image_id"] for t in targets], images.clone()))
        return base(m, images, targets)

    train_loop(model, step_loss, train.train_loader(train_set, cfg), cfg, progress=False)
    return seen


def test_two_architectures_on_one_seed_draw_identical_images_and_augmentations(tiny_data):
    a = _draws(tiny_data, TINY.replace(topology="bifpn"), seed=5)
    b = _draws(tiny_data, TINY.replace(topology="fpn", fpn_channels=24, head_repeats=2), seed=5)
    assert len(a) == len(b) == 4
    for (ids_a, px_a), (ids_b, px_b) in zip(a, b):
        assert ids_a == ids_b and torch.equal(px_a, px_b)  # same order, same scale/crop/flip draws
    c = _draws(tiny_data, TINY.replace(topology="bifpn"), seed=6)
    assert [ids for ids, _ in c] != [ids for ids, _ in a]


def test_ema_equals_a_hand_computed_average_and_differs_from_the_raw_weights():
    """Three SGD steps on a 2-parameter model: the EMA follows timm's warm-up decay d_t = 1 - (1 + t')^(-2/3)
    with t' = t - 1 (d = 0 at the first update: the average starts at the first trained weights)."""
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    cfg = TrainConfig(steps=3, batch_size=1, lr=0.1, warmup_steps=0,
                      weight_decay=0.0, clip_grad=None, channels_last=False, ema_decay=0.999)
    batches = [(torch.tensor([[float(i + 1)]]), [{"y": torch.tensor([[2.0 * (i + 1)]])}]) for i in range(3)]
    trajectory: list[torch.Tensor] = []

    def step_loss(m, x, targets):
        return ((m(x) - targets[0]["y"]) ** 2).mean()

    loader = batches
    original_step = train._step

    def recording_step(*args, **kwargs):
        loss = original_step(*args, **kwargs)
        trajectory.append(torch.cat([p.detach().flatten().clone() for p in model.parameters()]))
        return loss

    train._step, saved = recording_step, train._step
    try:
        loop, scored = train_loop(model, step_loss, loader, cfg, progress=False)
    finally:
        train._step = saved
    expected = trajectory[0]
    for t in (1, 2):  # updates 2 and 3
        decay = min(cfg.ema_decay, 1 - (1 + t) ** (-2 / 3))
        expected = decay * expected + (1 - decay) * trajectory[t]
    got = torch.cat([p.detach().flatten() for p in loop.models["ema"].parameters()])
    assert torch.allclose(got, expected, atol=1e-6)
    assert scored is loop.models["ema"] and not torch.allclose(got, trajectory[-1], atol=1e-4)
    raw = dataclasses.replace(cfg, scored="raw")
    assert raw.scored == "raw"
