"""Peer implementations measured beside ours: effdet 0.4.1 built independently as a check of our counts."""

from __future__ import annotations

from typing import Iterable

# effdet 0.4.1's fpn_name for our (topology, fusion), where it has one (effdet config/fpn_config.py).
EFFDET_FPN = {("bifpn", "sum"): "bifpn_sum", ("bifpn", "softmax"): "bifpn_attn", ("bifpn", "fast"): "bifpn_fa",
              ("panet", "sum"): "pan_sum", ("panet", "fast"): "pan_fa",
              ("qufpn", "sum"): "qufpn_sum", ("qufpn", "fast"): "qufpn_fa"}


def effdet_params(points: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], int]:
    """Parameter counts of effdet's ``tf_efficientdet_<variant>`` with the ``fpn_name`` matching each
    ``(variant, topology, fusion)`` (90 classes), as an independent check of ours; points effdet has no
    ``fpn_name`` for are left out; empty when effdet is not installed."""
    try:
        from effdet.config import get_efficientdet_config
        from effdet.efficientdet import EfficientDet
    except ImportError:
        return {}
    out = {}
    for variant, topology, fusion in points:
        if (topology, fusion) in EFFDET_FPN:
            config = get_efficientdet_config(f"tf_efficientdet_{variant}")
            config.fpn_name = EFFDET_FPN[topology, fusion]
            model = EfficientDet(config, pretrained_backbone=False)
            out[variant, topology, fusion] = sum(p.numel() for p in model.parameters())
    return out
