"""Class and box prediction heads, shared across levels (EfficientDet, arXiv 1911.09070, Sec. 3.3).

Convolution weights are shared by all levels; each level has its own batch norms, as in automl and
effdet (statistics differ per level).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from scalesearch.model.fpn import BN_KW, SeparableConv, make_activation

PRIOR_PROBABILITY = 0.01  # RetinaNet (arXiv 1708.02002, Sec. 4.1): start class logits at p = 0.01


class Head(nn.Module):
    """``repeats`` x (separable conv, per-level BN, activation), then a separable conv to ``A * outputs``.

    Input: list over levels of ``Tensor[B, W, H_l, W_l]``; output: list of
    ``Tensor[B, num_anchors * num_outputs, H_l, W_l]`` (raw logits or box regressions).
    """

    def __init__(self, width: int, repeats: int, num_levels: int, num_anchors: int, num_outputs: int,
                 *, tf_compat: bool, prior_bias: bool = False, activation: str = "swish") -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            SeparableConv(width, width, tf_compat=tf_compat, bias=tf_compat) for _ in range(repeats)
        )
        self.bns = nn.ModuleList(
            nn.ModuleList(nn.BatchNorm2d(width, **BN_KW) for _ in range(repeats)) for _ in range(num_levels)
        )
        self.act = make_activation(activation)
        self.predict = SeparableConv(width, num_anchors * num_outputs, tf_compat=tf_compat, bias=True)
        if prior_bias:
            nn.init.constant_(self.predict.conv_pw.bias, -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY))
        else:
            nn.init.zeros_(self.predict.conv_pw.bias)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        outputs = []
        for x, bns in zip(feats, self.bns):
            for conv, bn in zip(self.convs, bns):
                x = self.act(bn(conv(x)))
            outputs.append(self.predict(x))
        return outputs
