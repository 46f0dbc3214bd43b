"""Anchors, target assignment, losses and post-processing beside the pure detector.

The detector (``scalesearch.model``) returns raw per-level outputs; everything that turns them into a
training signal or into boxes lives here, vectorised over the whole batch (no per-box Python loops).

Conventions (the same as google/automl ``efficientdet`` and effdet, so that the model's output layout
means the same thing): boxes are ``xyxy`` pixels of the network input; anchors and outputs are flattened
level-major (``min_level`` .. ``max_level``), then row-major over the feature map, then over the ``A``
anchors of a location (octave scale major, aspect ratio minor). Box regressions are Faster R-CNN codes in
the order ``(ty, tx, th, tw)``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import batched_nms, sigmoid_focal_loss

from scalesearch.spec import DetectorSpec, level_size

# Paper section 3.3 / automl defaults.
FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 1.5
HUBER_DELTA = 0.1
BOX_LOSS_WEIGHT = 50.0
NEGATIVE = -1  # label of a background anchor
IGNORED = -2  # label of an anchor that neither trains the classifier nor the box regressor


# ----------------------------------------------------------------------------------------- anchors
def anchor_boxes(spec: DetectorSpec, device: torch.device | str = "cpu") -> Tensor:
    """All anchors of ``spec``: ``Tensor[N, 4]`` xyxy input pixels, N = A * sum_l S_l^2 (S_l = ceil(R / 2^l))."""
    key = (spec.resolution, spec.min_level, spec.max_level, spec.num_scales, spec.aspect_ratios, spec.anchor_scale)
    return _anchor_boxes(*key).to(device)


@functools.lru_cache(maxsize=16)
def _anchor_boxes(resolution, min_level, max_level, num_scales, aspect_ratios, anchor_scale) -> Tensor:
    levels = [
        level_anchors(resolution, level, num_scales, aspect_ratios, anchor_scale)
        for level in range(min_level, max_level + 1)
    ]
    return torch.cat(levels)


def level_grid(resolution: int, level: int) -> tuple[int, float]:
    """(map side S, anchor stride R / S) of one level; the stride is 2**level when R divides evenly."""
    size = level_size(resolution, level)
    return size, resolution / size


def level_anchors(
    resolution: int, level: int, num_scales: int, aspect_ratios: tuple[tuple[float, float], ...], anchor_scale: float
) -> Tensor:
    """Anchors of one level: ``Tensor[H*W*A, 4]`` xyxy, centred at ``(i + 0.5) * stride``.

    Base size is ``anchor_scale * stride * 2^(k / num_scales)`` for octave k; an aspect ratio ``(ax, ay)``
    multiplies the width by ax and the height by ay (automl ``anchors.py``). ``stride = R / S`` for a
    map of side S, as automl and effdet do when R is not a multiple of 2**level.
    """
    size, stride = level_grid(resolution, level)
    centers = (torch.arange(size, dtype=torch.float64) + 0.5) * stride
    octaves = 2.0 ** (torch.arange(num_scales, dtype=torch.float64) / num_scales)
    ratios = torch.tensor(aspect_ratios, dtype=torch.float64)  # [J, 2] = (x, y)
    half = (anchor_scale * stride * octaves[:, None, None] * ratios[None] / 2).reshape(-1, 2)  # [A, 2]
    cy, cx = torch.meshgrid(centers, centers, indexing="ij")
    ctr = torch.stack([cx, cy], -1).reshape(-1, 1, 2)  # [H*W, 1, 2]
    return torch.cat([ctr - half, ctr + half], -1).reshape(-1, 4).float()


# ------------------------------------------------------------------------------------ box coding
def encode_boxes(boxes: Tensor, anchors: Tensor) -> Tensor:
    """Faster R-CNN codes ``(ty, tx, th, tw)`` of xyxy ``boxes`` against xyxy ``anchors`` (same shape [..., 4])."""
    wa, ha, xa, ya = _size_center(anchors)
    w, h, x, y = _size_center(boxes)
    return torch.stack([(y - ya) / ha, (x - xa) / wa, torch.log(h / ha), torch.log(w / wa)], -1)


def decode_boxes(codes: Tensor, anchors: Tensor) -> Tensor:
    """Inverse of ``encode_boxes``: ``(ty, tx, th, tw)`` codes [..., 4] -> xyxy boxes [..., 4]."""
    wa, ha, xa, ya = _size_center(anchors)
    ty, tx, th, tw = codes.unbind(-1)
    # exp overflow on a wild regression would give inf boxes; 1000x the anchor is far past any image.
    limit = math.log(1000.0)
    half_w, half_h = torch.exp(tw.clamp(max=limit)) * wa / 2, torch.exp(th.clamp(max=limit)) * ha / 2
    x, y = tx * wa + xa, ty * ha + ya
    return torch.stack([x - half_w, y - half_h, x + half_w, y + half_h], -1)


def _size_center(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    x0, y0, x1, y1 = boxes.unbind(-1)
    w, h = (x1 - x0).clamp(min=1e-6), (y1 - y0).clamp(min=1e-6)  # guards log(0) on a degenerate box
    return w, h, (x0 + x1) / 2, (y0 + y1) / 2


# ----------------------------------------------------------------------------- target assignment
@dataclass
class Targets:
    """Per-anchor training targets for a batch.

    labels: ``LongTensor[B, N]``: class 0..C-1 (positive), ``NEGATIVE`` (-1) or ``IGNORED`` (-2).
    box_codes: ``Tensor[B, N, 4]`` encoded matched boxes; meaningful only where labels >= 0.
    num_positives: ``Tensor[B]`` positives per image.
    """

    labels: Tensor
    box_codes: Tensor
    num_positives: Tensor


def pad_ground_truth(boxes: list[Tensor], labels: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Stack ragged per-image ground truth: ``[B, M, 4]`` boxes and ``[B, M]`` labels padded with -1 (M >= 1)."""
    most = max([len(b) for b in boxes] + [1])
    device = boxes[0].device if boxes else "cpu"
    out_boxes = torch.zeros(len(boxes), most, 4, device=device)
    out_labels = torch.full((len(boxes), most), -1, dtype=torch.long, device=device)
    for i, (b, lab) in enumerate(zip(boxes, labels)):  # one copy per image, not per box
        out_boxes[i, : len(b)] = b
        out_labels[i, : len(b)] = lab
    return out_boxes, out_labels


def assign_targets(
    spec: DetectorSpec,
    gt_boxes: Tensor,
    gt_labels: Tensor,
    *,
    match_threshold: float = 0.5,
    unmatched_threshold: float = 0.5,
    force_match: bool = True,
) -> Targets:
    """Match every anchor of ``spec`` to its best ground-truth box by IoU, for the whole batch at once.

    gt_boxes ``[B, M, 4]`` xyxy input px; gt_labels ``[B, M]`` (-1 marks padding).
    IoU >= ``match_threshold`` -> positive, < ``unmatched_threshold`` -> negative, in between -> ignored
    (automl's ArgMaxMatcher; both 0.5 there, so nothing is ignored). ``force_match`` also makes each box's
    best anchor positive so that no box goes untrained, as automl's and effdet's labelers do.
    """
    valid = gt_labels >= 0
    iou = anchor_iou(spec, gt_boxes).masked_fill(~valid[..., None], -1.0)  # [B, M, N]
    best_iou, matches = iou.max(dim=1)  # [B, N]
    if force_match:
        best_iou, matches = _force_match(iou, valid, best_iou, matches)
    labels = gt_labels.gather(1, matches)
    labels = labels.masked_fill(best_iou < match_threshold, IGNORED)
    labels = labels.masked_fill(best_iou < unmatched_threshold, NEGATIVE)
    matched_boxes = gt_boxes.gather(1, matches[..., None].expand(-1, -1, 4))
    positive = labels >= 0
    anchors = anchor_boxes(spec, gt_boxes.device)
    codes = encode_boxes(matched_boxes, anchors.expand_as(matched_boxes)) * positive[..., None]
    return Targets(labels, codes, positive.sum(1))


def anchor_iou(spec: DetectorSpec, boxes: Tensor) -> Tensor:
    """IoU of xyxy ``boxes [B, M, 4]`` with every anchor of ``spec``: ``[B, M, N]``, N in anchor order.

    Equal to ``box_iou`` against ``anchor_boxes(spec)``, but uses the grid: along x the overlap depends only
    on the anchor's column, along y only on its row, so the [B, M, N] tensor is made with one product and
    one division instead of a dozen full-size passes (target assignment was the slowest step otherwise).
    """
    ratios = torch.tensor(spec.aspect_ratios, device=boxes.device)
    octaves = 2.0 ** (torch.arange(spec.num_scales, device=boxes.device) / spec.num_scales)
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])  # [B, M]
    out = []
    for level in range(spec.min_level, spec.max_level + 1):
        size, stride = level_grid(spec.resolution, level)
        half = (spec.anchor_scale * stride * octaves[:, None, None] * ratios[None] / 2).reshape(-1, 2)  # [A, 2]
        centers = (torch.arange(size, device=boxes.device) + 0.5) * stride  # [S]
        lo, hi = centers[None, :, None] - half[:, None], centers[None, :, None] + half[:, None]  # [A, S, 2]
        overlap = (torch.minimum(hi, boxes[:, :, None, None, 2:]) - torch.maximum(lo, boxes[:, :, None, None, :2]))
        overlap = overlap.clamp(min=0).permute(0, 1, 3, 2, 4)  # [B, M, S, A, (x, y)]
        inter = overlap[:, :, :, None, :, 1] * overlap[:, :, None, :, :, 0]  # [B, M, S_y, S_x, A]
        union = (area[..., None] + 4 * half.prod(-1))[:, :, None, None] - inter
        out.append((inter / union).flatten(2))
    return torch.cat(out, 2)


def _force_match(iou: Tensor, valid: Tensor, best_iou: Tensor, matches: Tensor) -> tuple[Tensor, Tensor]:
    """Give each valid box (with any overlap) its best anchor; scatter into a spare column for the rest."""
    batch, most, num = iou.shape
    col_iou, col = iou.max(dim=2)  # [B, M]
    col = torch.where(valid & (col_iou > 0), col, torch.full_like(col, num))
    rows = torch.arange(most, device=iou.device).expand(batch, most)
    matches = torch.cat([matches, matches.new_zeros(batch, 1)], 1).scatter(1, col, rows)[:, :num]
    forced = torch.zeros(batch, num + 1, dtype=torch.bool, device=iou.device).scatter(1, col, True)[:, :num]
    return best_iou.masked_fill(forced, 1.0), matches


# ------------------------------------------------------------------------------------------ loss
def flatten_outputs(cls_outputs: list[Tensor], box_outputs: list[Tensor], num_classes: int) -> tuple[Tensor, Tensor]:
    """Per-level ``[B, A*C, H, W]`` / ``[B, A*4, H, W]`` -> ``[B, N, C]`` logits and ``[B, N, 4]`` codes."""
    batch = cls_outputs[0].shape[0]
    cls = torch.cat([c.permute(0, 2, 3, 1).reshape(batch, -1, num_classes) for c in cls_outputs], 1)
    box = torch.cat([b.permute(0, 2, 3, 1).reshape(batch, -1, 4) for b in box_outputs], 1)
    return cls, box


def detection_loss(
    cls_logits: Tensor,
    box_codes: Tensor,
    targets: Targets,
    *,
    alpha: float = FOCAL_ALPHA,
    gamma: float = FOCAL_GAMMA,
    delta: float = HUBER_DELTA,
    box_weight: float = BOX_LOSS_WEIGHT,
) -> tuple[Tensor, Tensor, Tensor]:
    """Focal classification loss + weighted Huber box loss (paper section 3.3), ``(total, cls, box)`` scalars.

    cls_logits ``[B, N, C]``, box_codes ``[B, N, 4]``. Both terms are normalised by (positives + 1), the
    box term also by its 4 coordinates, as in automl's ``detection_loss``.
    """
    normalizer = targets.num_positives.sum().float() + 1.0
    labels = targets.labels
    positive = labels >= 0
    onehot = F.one_hot(labels.clamp(min=0), cls_logits.shape[-1]).to(cls_logits.dtype) * positive[..., None]
    focal = sigmoid_focal_loss(cls_logits.float(), onehot, alpha=alpha, gamma=gamma, reduction="none")
    cls_loss = (focal * (labels != IGNORED)[..., None]).sum() / normalizer
    huber = F.huber_loss(box_codes[positive].float(), targets.box_codes[positive], delta=delta, reduction="sum")
    box_loss = huber / (4.0 * normalizer)
    return cls_loss + box_weight * box_loss, cls_loss, box_loss


# ------------------------------------------------------------------------------- post-processing
def postprocess(
    cls_logits: Tensor,
    box_codes: Tensor,
    anchors: Tensor,
    *,
    image_size: float,
    max_detections: int = 100,
    pre_nms_top_k: int = 1000,
    score_threshold: float = 0.001,
    iou_threshold: float = 0.5,
) -> list[dict[str, Tensor]]:
    """Detections per image: top-k (anchor, class) pairs, decode, per-class NMS, keep the best ``max_detections``.

    cls_logits ``[B, N, C]``; box_codes ``[B, N, 4]``; anchors ``[N, 4]``; boxes are clipped to
    ``[0, image_size]``. Returns one dict per image: ``boxes [K, 4]`` xyxy input px, ``scores [K]``,
    ``labels [K]`` (0..C-1), sorted by decreasing score. NMS runs once for the whole batch (image id is
    part of the NMS group), so there is no per-image loop.
    """
    batch, num, classes = cls_logits.shape
    top_logits, flat = cls_logits.reshape(batch, -1).topk(min(pre_nms_top_k, num * classes), dim=1)
    anchor_idx, labels = flat // classes, flat % classes
    codes = box_codes.gather(1, anchor_idx[..., None].expand(-1, -1, 4))
    boxes = decode_boxes(codes.float(), anchors[anchor_idx]).clamp(0, image_size)
    scores = top_logits.float().sigmoid()
    image = torch.arange(batch, device=scores.device)[:, None].expand_as(scores)
    keep = scores.flatten() >= score_threshold
    boxes, scores = boxes.reshape(-1, 4)[keep], scores.flatten()[keep]
    labels, image = labels.flatten()[keep], image.flatten()[keep]
    kept = batched_nms(boxes, scores, image * classes + labels, iou_threshold)  # sorted by decreasing score
    kept = kept[torch.sort(image[kept], stable=True).indices]  # group by image, scores still decreasing
    counts = torch.bincount(image[kept], minlength=batch)
    rank = torch.arange(len(kept), device=kept.device) - (counts.cumsum(0) - counts)[image[kept]]
    kept = kept[rank < max_detections]
    sizes = counts.clamp(max=max_detections).tolist()
    return [
        {"boxes": b, "scores": s, "labels": lab}
        for b, s, lab in zip(boxes[kept].split(sizes), scores[kept].split(sizes), labels[kept].split(sizes))
    ]
