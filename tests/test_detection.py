"""Anchors, assignment, box coding, losses and post-processing on hand-made cases (plus effdet cross-checks)."""

import math

import pytest
import torch

from servers import TEST_EXTRAS, need_module

from scalesearch.training import detection as det
from scalesearch.spec import DetectorSpec

# Levels 2-3 of a 16 px image: a 4x4 grid of stride 4 and a 2x2 grid of stride 8.
TINY = DetectorSpec(resolution=16, min_level=2, max_level=3, num_scales=1, aspect_ratios=((1.0, 1.0),),
                    anchor_scale=1.0, num_classes=2)
# Two octave scales x two aspect ratios.
TINY4 = TINY.replace(num_scales=2, aspect_ratios=((1.0, 1.0), (1.4, 0.7)))


def test_anchor_count_and_order_single_shape():
    anchors = det.anchor_boxes(TINY)
    assert anchors.shape == (16 + 4, 4)
    assert anchors[0].tolist() == [0, 0, 4, 4]
    assert anchors[1].tolist() == [4, 0, 8, 4]  # next column first (row-major)
    assert anchors[4].tolist() == [0, 4, 4, 8]
    assert anchors[15].tolist() == [12, 12, 16, 16]
    assert anchors[16].tolist() == [0, 0, 8, 8]  # level 3 starts after all of level 2
    assert anchors[19].tolist() == [8, 8, 16, 16]


def test_anchor_octaves_and_aspect_ratios():
    anchors = det.anchor_boxes(TINY4)
    assert anchors.shape == (4 * (16 + 4), 4)
    r2 = math.sqrt(2)
    expected = [  # centre (2, 2); octave major, aspect minor; base = 1 * 4 * 2^(k/2)
        [0, 0, 4, 4],
        [2 - 2.8, 2 - 1.4, 2 + 2.8, 2 + 1.4],
        [2 - 2 * r2, 2 - 2 * r2, 2 + 2 * r2, 2 + 2 * r2],
        [2 - 2.8 * r2, 2 - 1.4 * r2, 2 + 2.8 * r2, 2 + 1.4 * r2],
    ]
    torch.testing.assert_close(anchors[:4], torch.tensor(expected), rtol=0, atol=1e-5)
    assert anchors[4].tolist() == [4, 0, 8, 4]


def test_anchors_match_effdet():
    anchors_mod = need_module("effdet.anchors", TEST_EXTRAS)
    spec = DetectorSpec(resolution=256)
    ref = anchors_mod.Anchors(3, 7, 3, [(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)], 4.0, (256, 256)).boxes
    torch.testing.assert_close(det.anchor_boxes(spec), ref[:, [1, 0, 3, 2]], rtol=0, atol=1e-4)


def test_encode_hand_values_and_decode_inverts():
    anchor = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
    box = torch.tensor([[1.0, 2.0, 5.0, 10.0]])  # centre (3, 6), 4 x 8; anchor centre (2, 2), 4 x 4
    torch.testing.assert_close(det.encode_boxes(box, anchor), torch.tensor([[1.0, 0.25, math.log(2), 0.0]]))
    gen = torch.Generator().manual_seed(0)
    anchors = det.anchor_boxes(DetectorSpec(resolution=128))[:500]
    xy = torch.rand(500, 2, generator=gen) * 100
    boxes = torch.cat([xy, xy + 1 + torch.rand(500, 2, generator=gen) * 60], 1)
    torch.testing.assert_close(det.decode_boxes(det.encode_boxes(boxes, anchors), anchors), boxes)


def test_anchor_iou_equals_box_iou():
    from torchvision.ops import box_iou

    spec = DetectorSpec(resolution=128)
    gen = torch.Generator().manual_seed(1)
    xy = torch.rand(3, 5, 2, generator=gen) * 100
    boxes = torch.cat([xy, xy + 2 + torch.rand(3, 5, 2, generator=gen) * 80], -1)
    ref = box_iou(boxes.reshape(-1, 4), det.anchor_boxes(spec)).reshape(3, 5, -1)
    torch.testing.assert_close(det.anchor_iou(spec, boxes), ref)


def _assign(boxes, labels, **kwargs):
    gt_boxes, gt_labels = det.pad_ground_truth([torch.tensor(b, dtype=torch.float32).reshape(-1, 4) for b in boxes],
                                               [torch.tensor(lab, dtype=torch.long) for lab in labels])
    return det.assign_targets(TINY, gt_boxes, gt_labels, **kwargs)


def test_assignment_positive_negative():
    # A equals anchor 0 (IoU 1); B equals level-3 anchor 19 and overlaps four level-2 anchors at IoU 0.25.
    t = _assign([[[0, 0, 4, 4], [8, 8, 16, 16]]], [[1, 0]])
    labels = t.labels[0].tolist()
    assert labels[0] == 1 and labels[19] == 0
    assert [i for i, v in enumerate(labels) if v >= 0] == [0, 19]
    assert all(v == det.NEGATIVE for i, v in enumerate(labels) if i not in (0, 19))
    assert t.num_positives.tolist() == [2]
    assert t.box_codes[0, [0, 19]].abs().max() == 0  # exact matches encode to zero


def test_assignment_ignored_between_thresholds():
    t = _assign([[[0, 0, 4, 4], [8, 8, 16, 16]]], [[1, 0]], unmatched_threshold=0.2)
    labels = t.labels[0].tolist()
    # IoU 0.25: anchor 16 with A; anchors 10, 11, 14, 15 with B.
    assert [i for i, v in enumerate(labels) if v == det.IGNORED] == [10, 11, 14, 15, 16]
    assert [i for i, v in enumerate(labels) if v >= 0] == [0, 19]


def test_force_match_gives_small_box_its_best_anchor():
    small = [[[1, 9, 3, 11]]]  # inside anchor 8 = [0, 8, 4, 12] at IoU 0.25
    assert (_assign(small, [[1]], force_match=False).labels >= 0).sum() == 0
    forced = _assign(small, [[1]]).labels[0]
    assert [i for i, v in enumerate(forced.tolist()) if v >= 0] == [8] and forced[8] == 1


def test_assignment_batch_padding_and_empty_image():
    t = _assign([[[0, 0, 4, 4]], [], [[12, 12, 16, 16], [0, 0, 8, 8]]], [[0], [], [1, 0]])
    assert t.labels.shape == (3, 20)
    assert t.num_positives.tolist() == [1, 0, 2]
    assert (t.labels[1] == det.NEGATIVE).all()
    assert t.labels[2, 15] == 1 and t.labels[2, 16] == 0


def test_assignment_matches_effdet_labeler():
    anchors_mod = need_module("effdet.anchors", TEST_EXTRAS)
    spec = DetectorSpec(resolution=128, num_classes=3)
    gen = torch.Generator().manual_seed(2)
    boxes = [torch.cat([xy, xy + 4 + torch.rand(n, 2, generator=gen) * 60], 1)
             for n, xy in ((4, torch.rand(4, 2, generator=gen) * 60), (7, torch.rand(7, 2, generator=gen) * 60))]
    labels = [torch.randint(0, 3, (len(b),), generator=gen) for b in boxes]
    ours = det.assign_targets(spec, *det.pad_ground_truth(boxes, labels))
    ref_anchors = anchors_mod.Anchors(3, 7, 3, [(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)], 4.0, (128, 128))
    cls_t, box_t, num_pos = anchors_mod.AnchorLabeler(ref_anchors, 3).batch_label_anchors(
        [b[:, [1, 0, 3, 2]] for b in boxes], [lab + 1 for lab in labels])
    assert torch.equal(ours.labels, torch.cat([c.reshape(2, -1) for c in cls_t], 1))
    assert ours.num_positives.tolist() == num_pos.long().tolist()
    pos = ours.labels >= 0
    ref_codes = torch.cat([b.reshape(2, -1, 4) for b in box_t], 1)
    torch.testing.assert_close(ours.box_codes[pos], ref_codes[pos], rtol=0, atol=1e-5)


def _hand_targets():
    labels = torch.tensor([[0, det.NEGATIVE, det.IGNORED]])
    codes = torch.zeros(1, 3, 4)
    return det.Targets(labels, codes, torch.tensor([1]))


def test_loss_on_known_inputs():
    logits = torch.zeros(1, 3, 2)  # p = 0.5 everywhere: ce = ln 2, (1 - p_t)^1.5 = 0.5^1.5
    box = torch.zeros(1, 3, 4)
    box[0, 0, :2] = torch.tensor([0.05, 0.2])  # Huber(0.1): 0.5 * 0.05^2 + 0.1 * (0.2 - 0.05)
    total, cls, box_loss = det.detection_loss(logits, box, _hand_targets())
    unit = math.log(2) * 0.5**1.5
    # positive anchor: 0.25 (true class) + 0.75 (other); negative anchor: 2 x 0.75; ignored anchor: 0
    expected_cls = (0.25 + 0.75 + 1.5) * unit / 2  # normaliser = positives + 1
    expected_box = (0.5 * 0.05**2 + 0.1 * 0.15) / (4 * 2)
    assert cls.item() == pytest.approx(expected_cls, rel=1e-6)
    assert box_loss.item() == pytest.approx(expected_box, rel=1e-6)
    assert total.item() == pytest.approx(expected_cls + 50 * expected_box, rel=1e-6)


def test_loss_matches_effdet():
    loss_mod = need_module("effdet.loss", TEST_EXTRAS)
    # Inexact matches: effdet skips box targets that are exactly 0, which exact matches would give.
    t = _assign([[[0.5, 0, 4, 5], [8, 8.5, 15, 15]]], [[1, 2]], unmatched_threshold=0.2)
    assert (t.labels >= 0).sum() == 2 and (t.labels == det.IGNORED).sum() > 0
    gen = torch.Generator().manual_seed(3)
    cls, box = torch.randn(1, 20, 3, generator=gen), torch.randn(1, 20, 4, generator=gen) * 0.2
    ours = det.detection_loss(cls, box, t)
    split = [(0, 16, 4), (16, 20, 2)]
    per = lambda x: [x[:, a:b].reshape(1, s, s, -1).permute(0, 3, 1, 2) for a, b, s in split]  # noqa: E731
    ref = loss_mod.loss_fn(per(cls), per(box), [t.labels[:, a:b].reshape(1, s, s, 1) for a, b, s in split],
                           [t.box_codes[:, a:b].reshape(1, s, s, 4) for a, b, s in split], t.num_positives.float(),
                           3, 0.25, 1.5, 0.1, 50.0)
    for a, b in zip(ours, ref):
        assert a.item() == pytest.approx(b.item(), rel=1e-5)


def test_flatten_outputs_layout():
    cls = [torch.arange(2 * 6 * 4 * 4).float().reshape(2, 6, 4, 4), torch.zeros(2, 6, 2, 2)]  # A=3, C=2
    box = [torch.zeros(2, 12, 4, 4), torch.ones(2, 12, 2, 2)]
    flat_cls, flat_box = det.flatten_outputs(cls, box, 2)
    assert flat_cls.shape == (2, 3 * 20, 2) and flat_box.shape == (2, 60, 4)
    # anchor 1 of location (0, 0) = channels 2..3; location (0, 1) starts at flat index 3
    assert flat_cls[0, 1].tolist() == [cls[0][0, 2, 0, 0].item(), cls[0][0, 3, 0, 0].item()]
    assert flat_cls[0, 3, 0] == cls[0][0, 0, 0, 1]
    assert flat_box[0, 48:].eq(1).all() and flat_box[0, :48].eq(0).all()


def _logits(batch, entries):
    logits = torch.full((batch, 20, 2), -10.0)
    for (b, anchor, c), value in entries.items():
        logits[b, anchor, c] = value
    return logits


def test_postprocess_nms_classes_and_images():
    anchors = det.anchor_boxes(TINY)
    # image 0: anchors 0 and 16 overlap at IoU 0.25 (both kept); 16 vs 17 do not overlap.
    # anchor 19 class 0 and 15 class 0: IoU 0.25 kept; anchor 19 class 1 is another class.
    # image 1: anchor 16 and anchor 0 class 1 on top of anchor 16 class 1 -> kept (IoU 0.25 < 0.5)
    entries = {(0, 0, 0): 3.0, (0, 16, 0): 2.0, (0, 19, 1): 1.0, (1, 5, 1): 4.0}
    out = det.postprocess(_logits(2, entries), torch.zeros(2, 20, 4), anchors, image_size=16, score_threshold=0.5)
    assert [len(o["scores"]) for o in out] == [3, 1]
    assert out[0]["boxes"].tolist() == [[0, 0, 4, 4], [0, 0, 8, 8], [8, 8, 16, 16]]
    assert out[0]["labels"].tolist() == [0, 0, 1]
    torch.testing.assert_close(out[0]["scores"], torch.sigmoid(torch.tensor([3.0, 2.0, 1.0])))
    assert out[1]["boxes"].tolist() == [[4, 4, 8, 8]] and out[1]["labels"].tolist() == [1]


def test_postprocess_suppresses_duplicates_and_caps_detections():
    anchors = det.anchor_boxes(TINY)
    codes = torch.zeros(1, 20, 4)
    codes[0, 0, 0] = 0.1  # ty: anchor 0 moves down 0.4 px -> [0, 0.4, 4, 4.4]
    codes[0, 4, 0] = -0.9  # anchor 4 = [0, 4, 4, 8] moves up 3.6 px onto the same box, with a higher score
    entries = {(0, 0, 0): 2.0, (0, 4, 0): 3.0, (0, 1, 0): 1.0}
    out = det.postprocess(_logits(1, entries), codes, anchors, image_size=16, score_threshold=0.5)[0]
    torch.testing.assert_close(out["scores"], torch.sigmoid(torch.tensor([3.0, 1.0])))  # anchor 0 suppressed
    torch.testing.assert_close(out["boxes"], torch.tensor([[0.0, 0.4, 4.0, 4.4], [4.0, 0.0, 8.0, 4.0]]))
    capped = det.postprocess(_logits(1, entries), codes, anchors, image_size=16, score_threshold=0.5, max_detections=1)
    assert len(capped[0]["scores"]) == 1


def test_postprocess_clips_to_image():
    anchors = det.anchor_boxes(TINY)
    out = det.postprocess(_logits(1, {(0, 15, 1): 5.0}), torch.full((1, 20, 4), 0.5), anchors, image_size=16,
                          score_threshold=0.5)[0]
    assert out["boxes"].max() <= 16 and out["boxes"].min() >= 0


def test_uneven_upper_levels_match_effdet_anchors_at_320_px():
    # EfficientDet-Lite0's 320 px: P6 and P7 are ceil-sized 5x5 and 3x3 maps with strides 64 and 106.67.
    anchors_mod = need_module("effdet.anchors", TEST_EXTRAS)
    spec = DetectorSpec(resolution=320, anchor_scale=3.0)
    ref = anchors_mod.Anchors(3, 7, 3, [(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)], 3.0, (320, 320)).boxes
    ours = det.anchor_boxes(spec)
    assert len(ours) == 9 * (40**2 + 20**2 + 10**2 + 5**2 + 3**2)
    torch.testing.assert_close(ours, ref[:, [1, 0, 3, 2]], rtol=0, atol=1e-3)
    gen = torch.Generator().manual_seed(2)
    xy = torch.rand(2, 4, 2, generator=gen) * 200
    boxes = torch.cat([xy, xy + 8 + torch.rand(2, 4, 2, generator=gen) * 100], -1)
    from torchvision.ops import box_iou

    torch.testing.assert_close(det.anchor_iou(spec, boxes), box_iou(boxes.reshape(-1, 4), ours).reshape(2, 4, -1))
