"""The modules ``scalesearch.measure.export`` traces into ONNX: input normalisation + detector + flattening, and
optionally decode + class-aware NMS with a fixed number of detections per image.

Post-processing here is ``scalesearch.training.detection.postprocess`` rewritten with static shapes (the same
pre-NMS top-k, score threshold, decode, clipping, IoU threshold and score ordering), because ONNX needs a
fixed output size where ``postprocess`` returns ragged per-image lists.

NMS is ONNX's own ``NonMaxSuppression``, which takes a batch axis and a class axis natively: the top-k
candidates of each image (each one an (anchor, class) pair) get a ``[B, C, K]`` score tensor holding
their score in their own class's row and -1 elsewhere, so that the operator's per-(image, class) NMS is
exactly ``batched_nms`` grouped by image and label -- no per-image loop in the graph, no coordinate
offsets, and a dynamic batch axis.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import nms

from scalesearch.training import detection as det
from scalesearch.spec import DetectorSpec

_MASKED = -1.0  # score of a (candidate, class) slot that is not a candidate: below every sigmoid


class RawGraph(nn.Module):
    """``images [B, 3, R, R]`` RGB in [0, 1] -> ``(class_logits [B, N, C], box_regression [B, N, 4])``.

    N = anchors in ``detection`` order; the backbone's input normalisation is part of the module.
    """

    def __init__(self, model: nn.Module, spec: DetectorSpec, normalization) -> None:
        super().__init__()
        self.model, self.num_classes = model, spec.num_classes
        mean, std = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1) for v in normalization)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        return det.flatten_outputs(*self.model((images - self.mean) / self.std), self.num_classes)


class NmsGraph(nn.Module):
    """``images`` -> ``(boxes [B, D, 4], scores [B, D], labels [B, D], num_detections [B])``, D = ``max_detections``.

    Boxes are xyxy input pixels clipped to [0, R]; rows are sorted by decreasing score; rows past
    ``num_detections`` are padding (box 0, score 0, label -1).
    """

    def __init__(self, raw: RawGraph, spec: DetectorSpec, *, max_detections: int, pre_nms_top_k: int,
                 score_threshold: float, iou_threshold: float) -> None:
        super().__init__()
        self.raw, self.image_size = raw, float(spec.resolution)
        self.register_buffer("anchors", det.anchor_boxes(spec), persistent=False)
        self.top_k = min(pre_nms_top_k, len(self.anchors) * spec.num_classes)
        self.max_detections, self.score_threshold, self.iou_threshold = max_detections, score_threshold, iou_threshold

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        cls, box = self.raw(images)
        boxes, scores, labels = self._candidates(cls, box)
        classes = torch.arange(cls.shape[-1], device=cls.device)
        eligible = (labels[:, None, :] == classes[None, :, None]) & (scores >= self.score_threshold)[:, None, :]
        per_class = torch.where(eligible, scores[:, None, :], torch.full_like(scores[:, None, :], _MASKED))
        picked = NonMaxSuppression.apply(boxes, per_class, self.max_detections, self.iou_threshold, _MASKED / 2)
        image, slot = picked[:, 0], picked[:, 2]
        kept = torch.full_like(scores, _MASKED)
        kept[image, slot] = scores[image, slot]  # each slot has one class, so no two picks collide
        return self._best(kept, boxes, labels)

    def _candidates(self, cls: Tensor, box: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The top-k (anchor, class) pairs per image, as ``postprocess``: boxes [B, K, 4], scores, labels [B, K]."""
        num_classes = cls.shape[-1]
        top_logits, flat = cls.flatten(1).topk(self.top_k, dim=1)
        anchor, labels = flat // num_classes, flat % num_classes
        codes = box.gather(1, anchor[..., None].expand(-1, -1, 4))
        boxes = det.decode_boxes(codes.float(), self.anchors[anchor]).clamp(0, self.image_size)
        return boxes, top_logits.float().sigmoid(), labels

    def _best(self, kept: Tensor, boxes: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The ``max_detections`` best kept slots per image, sorted by score, padded."""
        scores, slot = kept.topk(min(self.max_detections, kept.shape[1]), dim=1)
        pad = self.max_detections - scores.shape[1]
        if pad:  # fewer candidates than detections (a tiny spec): pad to the fixed size
            scores, slot = F.pad(scores, (0, pad), value=_MASKED), F.pad(slot, (0, pad))
        valid = scores > _MASKED / 2
        boxes = boxes.gather(1, slot[..., None].expand(-1, -1, 4)) * valid[..., None]
        labels = torch.where(valid, labels.gather(1, slot), torch.full_like(slot, -1))
        return boxes, scores.clamp(min=0), labels, valid.sum(1)


class NonMaxSuppression(torch.autograd.Function):
    """ONNX ``NonMaxSuppression`` (opset >= 11): ``boxes [B, K, 4]`` xyxy, ``scores [B, C, K]`` ->
    ``[M, 3]`` int64 rows ``(image, class, box)``, per image and class at most ``max_per_class`` boxes with
    score > ``score_threshold``, suppressing IoU > ``iou_threshold``. ``forward`` is the same in torch
    (torchvision's ``nms``), so that tracing sees real shapes."""

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, max_per_class: int, iou_threshold: float,
                score_threshold: float) -> Tensor:
        rows = [torch.zeros(0, 3, dtype=torch.long, device=boxes.device)]
        for image in range(scores.shape[0]):
            for cls in range(scores.shape[1]):
                idx = (scores[image, cls] > score_threshold).nonzero().flatten()
                keep = idx[nms(boxes[image, idx], scores[image, cls, idx], iou_threshold)[:max_per_class]]
                rows.append(torch.stack([torch.full_like(keep, image), torch.full_like(keep, cls), keep], 1))
        return torch.cat(rows)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class: int, iou_threshold: float, score_threshold: float):
        def const(value, dtype):
            return g.op("Constant", value_t=torch.tensor([value], dtype=dtype))

        return g.op("NonMaxSuppression", boxes, scores, const(max_per_class, torch.long),
                    const(iou_threshold, torch.float32), const(score_threshold, torch.float32), center_point_box_i=0)
