"""Box geometry of the transforms on hand-made cases."""

from __future__ import annotations

import pytest
import torch

from scalesearch.data import transforms as T


def test_base_size_resizes_the_long_side():
    assert T.base_size(640, 480, 384) == (384, 288, 0.6)
    assert T.base_size(100, 300, 64) == (21, 64, 64 / 300)


def test_jitter_crop_scales_then_shifts_boxes():
    image = torch.zeros(3, 40, 60, dtype=torch.uint8)
    boxes = torch.tensor([[10.0, 5.0, 30.0, 25.0]])
    out, moved, ratio = T.jitter_crop(image, boxes, 64, 2.0, (0.5, 0.0))
    assert out.shape == (3, 64, 64) and ratio == 2.0
    # 120 x 80 after scaling; crop origin x = int(0.5 * (120 - 64 + 1)) = 28, y = 0
    assert moved.tolist() == [[-8.0, 10.0, 32.0, 50.0]]


def test_clip_hflip_and_keep():
    boxes = T.clip_boxes(torch.tensor([[-8.0, 10.0, 32.0, 70.0], [60.0, 1.0, 70.0, 2.0]]), 64, 64)
    assert boxes.tolist() == [[0.0, 10.0, 32.0, 64.0], [60.0, 1.0, 64.0, 2.0]]
    assert T.keep_boxes(boxes, 2.0).tolist() == [True, False]
    image = torch.arange(2 * 4).view(1, 2, 4).expand(3, 2, 4)
    flipped, fboxes = T.hflip(image, torch.tensor([[0.0, 0.0, 1.0, 2.0]]))
    assert flipped[0, 0].tolist() == [3, 2, 1, 0] and fboxes.tolist() == [[3.0, 0.0, 4.0, 2.0]]


def test_normalize_pad_maps_the_mean_colour_to_zero():
    mean = (torch.tensor(T.IMAGENET_MEAN) * 255).round().to(torch.uint8).view(3, 1, 1).expand(3, 2, 3)
    out = T.normalize_pad(mean, 4)
    assert out.shape == (3, 4, 4) and out.abs().max() < 0.01
    white = T.normalize_pad(torch.full((3, 1, 1), 255, dtype=torch.uint8), 2)
    assert white[:, 0, 0].tolist() == pytest.approx([2.2489, 2.4286, 2.64], abs=1e-4)


def test_normalize_pad_with_the_lite_convention_maps_to_minus_one_one():
    lite = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    image = torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 2).expand(3, 1, 2)
    out = T.normalize_pad(image, 2, lite)
    assert out[:, 0].tolist() == [[-1.0, 1.0]] * 3 and out[:, 1].abs().max() == 0
