"""The feature network: extra pyramid levels and repeated fusion cells built from a ``Topology``.

Each node resamples its inputs to its level (1x1 conv + BN when channels differ, max-pool down,
nearest up), fuses them (EfficientDet, arXiv 1911.09070, Sec. 3.3), then applies swish and a
separable 3x3 conv + BN. The activation comes before the conv as in the released models (automl
``fpn_cell``; effdet ``pre_act``); parameter and FLOP counts do not depend on that order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from scalesearch.spec import DetectorSpec
from scalesearch.topology import Topology, canonical_fusion

BN_KW = {"eps": 1e-3, "momentum": 0.01}  # automl's batch norm settings for FPN and heads
FAST_EPS = 1e-4  # Sec. 3.3, fast normalized fusion


def make_activation(name: str) -> nn.Module:
    """``swish`` (EfficientDet), ``relu6`` (EfficientDet-Lite: quantisation friendly) or ``relu``."""
    return {"swish": nn.SiLU, "relu6": nn.ReLU6, "relu": nn.ReLU}[name]()


def conv2d(in_ch: int, out_ch: int, kernel: int, *, tf_compat: bool, groups: int = 1, bias: bool = False,
           stride: int = 1) -> nn.Module:
    """A conv with symmetric padding, or TensorFlow "same" padding when ``tf_compat`` (via timm)."""
    if tf_compat:
        from timm.layers import create_conv2d

        return create_conv2d(in_ch, out_ch, kernel, stride=stride, padding="same", groups=groups, bias=bias)
    return nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=bias)


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 then pointwise 1x1; ``Tensor[B, C_in, H, W] -> Tensor[B, C_out, H, W]``."""

    def __init__(self, in_ch: int, out_ch: int, *, tf_compat: bool, bias: bool) -> None:
        super().__init__()
        self.conv_dw = conv2d(in_ch, in_ch, 3, groups=in_ch, tf_compat=tf_compat)
        self.conv_pw = conv2d(in_ch, out_ch, 1, bias=bias, tf_compat=tf_compat)


def max_pool(stride: int, tf_compat: bool) -> nn.Module:
    """Max-pool by ``stride`` with kernel ``stride + 1`` (3x3 stride 2 for one level, as automl)."""
    if tf_compat:
        from timm.layers import create_pool2d

        return create_pool2d("max", kernel_size=stride + 1, stride=stride, padding="same")
    return nn.MaxPool2d(stride + 1, stride=stride, padding=stride // 2)


class Resample(nn.Module):
    """Bring a map from ``in_level`` with ``in_ch`` channels to ``out_level`` with ``out_ch`` channels.

    ``Tensor[B, in_ch, H, W] -> Tensor[B, out_ch, H', W']``: 1x1 conv + BN when channels differ, then
    max-pool down (ceil sizes) or nearest upsampling to ``size`` (the target level's map; when absent,
    by 2**(in_level - out_level)). With ``tf_compat`` the 1x1 conv keeps its bias before BN, as the
    released checkpoints do.
    """

    def __init__(self, in_ch: int, out_ch: int, in_level: int, out_level: int, *, tf_compat: bool) -> None:
        super().__init__()
        self.conv = self.bn = self.downsample = None
        if in_ch != out_ch:
            self.conv = conv2d(in_ch, out_ch, 1, bias=tf_compat, tf_compat=tf_compat)
            self.bn = nn.BatchNorm2d(out_ch, **BN_KW)
        if out_level > in_level:
            self.downsample = max_pool(2 ** (out_level - in_level), tf_compat)
        self.up = 2 ** (in_level - out_level) if out_level < in_level else 0

    def forward(self, x: torch.Tensor, size: Sequence[int] | None = None) -> torch.Tensor:
        if self.conv is not None:
            x = self.bn(self.conv(x))
        if self.downsample is not None:
            x = self.downsample(x)
        elif self.up:
            x = F.interpolate(x, size=tuple(size) if size is not None else None,
                              scale_factor=None if size is not None else float(self.up), mode="nearest")
        return x


class Fusion(nn.Module):
    """Weighted sum of ``n`` same-shaped maps (Sec. 3.3): ``list[Tensor[B, C, H, W]] -> Tensor[B, C, H, W]``.

    ``sum``: plain sum; ``softmax``: softmax-normalized scalar weights; ``fast``: relu(w) / (sum + 1e-4);
    ``channel_*``: the same with one weight per input and channel. Weights start at 1.
    """

    def __init__(self, n: int, channels: int, method: str) -> None:
        super().__init__()
        self.method = canonical_fusion(method)
        self.weight = None
        if self.method != "sum":
            shape = (n, channels, 1, 1) if self.method.startswith("channel_") else (n, 1, 1, 1)
            self.weight = nn.Parameter(torch.ones(shape))

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        if self.weight is None:
            return functools.reduce(torch.add, inputs)
        w = self.weight.to(inputs[0].dtype)
        if self.method.endswith("softmax"):
            w = torch.softmax(w, dim=0)
        else:
            w = torch.relu(w)
            w = w / (w.sum(0, keepdim=True) + FAST_EPS)
        # A running sum rather than a stacked tensor: less memory, faster on CPU.
        out = inputs[0] * w[0]
        for x, wi in zip(inputs[1:], w[1:]):
            out = out + x * wi
        return out


class FpnNode(nn.Module):
    """One node: resample each input, fuse, activation (swish by default), separable conv + BN."""

    def __init__(self, in_channels: Sequence[int], in_levels: Sequence[int], level: int, channels: int,
                 fusion: str, *, tf_compat: bool, activation: str = "swish") -> None:
        super().__init__()
        self.resample = nn.ModuleList(
            Resample(c, channels, lvl, level, tf_compat=tf_compat) for c, lvl in zip(in_channels, in_levels)
        )
        self.fusion = Fusion(len(in_channels), channels, fusion)
        self.act = make_activation(activation)
        self.conv = SeparableConv(channels, channels, tf_compat=tf_compat, bias=tf_compat)
        self.bn = nn.BatchNorm2d(channels, **BN_KW)

    def forward(self, inputs: Sequence[torch.Tensor], size: Sequence[int]) -> torch.Tensor:
        """``size``: (H, W) of this node's level (maps above P5 need not halve evenly)."""
        x = self.fusion([r(x, size) for r, x in zip(self.resample, inputs)])
        return self.bn(self.conv(self.act(x)))


class FpnCell(nn.Module):
    """One repeat of the topology: ``list[Tensor]`` per level min..max -> same shapes, ``channels`` each."""

    def __init__(self, topology: Topology, in_channels: Sequence[int], channels: int, fusion: str,
                 *, tf_compat: bool, activation: str = "swish") -> None:
        super().__init__()
        chans = list(in_channels) + [channels] * len(topology.nodes)
        self.inputs = [node.inputs for node in topology.nodes]
        self.levels = [node.level - topology.min_level for node in topology.nodes]
        self.outputs = topology.outputs()
        self.nodes = nn.ModuleList(
            FpnNode([chans[i] for i in node.inputs], [topology.level_of(i) for i in node.inputs], node.level,
                    channels, node.fusion or fusion, tf_compat=tf_compat, activation=activation)
            for node in topology.nodes
        )

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        maps = list(feats)
        sizes = [f.shape[-2:] for f in feats]
        for node, ids, level in zip(self.nodes, self.inputs, self.levels):
            maps.append(node([maps[i] for i in ids], sizes[level]))
        return [maps[i] for i in self.outputs]


class FeatureNetwork(nn.Module):
    """Extra levels above the backbone's last map, then ``spec.fpn_repeats`` cells.

    Input: backbone maps of levels ``min_level .. L_b`` (channels ``backbone_channels``); output: a list
    of ``spec.num_levels`` maps ``Tensor[B, fpn_channels, R / 2**l, R / 2**l]`` for l = min..max.
    """

    def __init__(self, spec: DetectorSpec, topology: Topology, backbone_channels: Sequence[int],
                 seeded: Callable[[str], None] = lambda part: None) -> None:
        """``seeded(part)`` is called before the extra levels (``fpn.extra``) and each cell (``fpn.cell<i>``) are
        built (``build_detector``'s common random numbers)."""
        super().__init__()
        tf, width = spec.tf_compat, spec.fpn_channels
        chans, last = list(backbone_channels), spec.min_level + len(backbone_channels) - 1
        # P6..max: 1x1 conv + BN (when channels differ) + max-pool from the last map, then max-pools (Sec. 3.2).
        self.extra = nn.ModuleList()
        seeded("fpn.extra")
        for level in range(last + 1, spec.max_level + 1):
            self.extra.append(Resample(chans[-1], width, level - 1, level, tf_compat=tf))
            chans.append(width)
        self.cells = nn.ModuleList()
        for i in range(spec.fpn_repeats):
            seeded(f"fpn.cell{i}")
            self.cells.append(FpnCell(topology, chans, width, spec.fusion, tf_compat=tf, activation=spec.activation))
            chans = [width] * spec.num_levels

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        feats = list(feats)
        for resample in self.extra:
            feats.append(resample(feats[-1]))
        for cell in self.cells:
            feats = cell(feats)
        return feats
