"""EfficientNet-family backbones from timm at any width/depth multiplier.

timm registers fixed variants (``efficientnet_b3`` = width 1.2, depth 1.4); its generator functions
(``timm.models.efficientnet._gen_*``) take the multipliers as arguments and apply timm's own
``round_channels`` (multiple of 8, never below 90 %) and per-stage depth ceil. We call those
generators with ``features_only=True`` so that the compound scaling of EfficientNet (arXiv
1905.11946, Sec. 3.3) works at any real multiplier, as EfficientDet's backbone scaling needs
(arXiv 1911.09070, Sec. 4.2).
"""

from __future__ import annotations

import functools
import re
from typing import Callable

from torch import nn

from scalesearch.backbones import check_backbone
from scalesearch.errors import UserError
from scalesearch.spec import BACKBONE_MAX_LEVEL, DetectorSpec

# Registered timm names whose generator takes (variant, channel_multiplier, depth_multiplier).
_FAMILIES: tuple[tuple[str, str], ...] = (
    (r"(tf_)?efficientnet_(b\d|l2)", "_gen_efficientnet"),
    (r"(tf_)?efficientnet_lite\d", "_gen_efficientnet_lite"),
    (r"(tf_)?efficientnet_(es|em|el)", "_gen_efficientnet_edge"),
)


def _generator(name: str) -> Callable | None:
    from timm.models import efficientnet

    for pattern, func in _FAMILIES:
        if re.fullmatch(pattern, name):
            return getattr(efficientnet, func)
    return None


@functools.lru_cache(maxsize=1)
def timm_backbone_names() -> tuple[str, ...]:
    """The installed timm's registered names of the supported families (``scalesearch.backbones.BACKBONES``
    is the same list as data, so that validation needs no timm; a test keeps the two equal)."""
    import timm

    return tuple(n for n in timm.list_models() if _generator(n) is not None)


def backbone_levels(spec: DetectorSpec) -> list[int]:
    """Pyramid levels taken from the backbone (the rest are made by the feature network)."""
    if spec.min_level > BACKBONE_MAX_LEVEL:
        raise UserError(
            f"spec.min_level: must be <= {BACKBONE_MAX_LEVEL} (the backbone's last stride is 32), "
            f"but got {spec.min_level}"
        )
    return list(range(spec.min_level, min(spec.max_level, BACKBONE_MAX_LEVEL) + 1))


def input_normalization(spec: DetectorSpec) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) of ``x / 255`` the backbone expects: timm's record for the name (ImageNet mean/std for
    the B-series, mean = std = 0.5 for the TF-Lite backbones, whose weights were trained that way)."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(spec.backbone)
    if cfg is None:  # a name without a pretrained record: ImageNet's convention
        return (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    return tuple(map(float, cfg.mean)), tuple(map(float, cfg.std))


def build_backbone(spec: DetectorSpec, *, weights: bool = True) -> nn.Module:
    """timm ``EfficientNetFeatures`` returning the maps of ``backbone_levels(spec)``.

    Input ``Tensor[B, 3, R, R]``; output list of ``Tensor[B, C_l, R / 2**l, R / 2**l]``. Channels
    and strides are in ``module.feature_info`` (timm's record, never literals).
    ``tf_compat`` selects TensorFlow "same" padding and BN eps 1e-3, as timm's ``tf_efficientnet_*``.
    ``weights``: load ``spec.weights`` (False builds the random-init architecture, e.g. for counting).
    """
    check_backbone(spec.backbone)
    gen = _generator(spec.backbone)
    kwargs = {"bn_eps": 1e-3, "pad_type": "same"} if spec.tf_compat else {}
    # timm feature index i is the map of stride 2**(i+1).
    out_indices = tuple(level - 1 for level in backbone_levels(spec))
    model = gen(
        spec.backbone,
        channel_multiplier=spec.width_multiplier,
        depth_multiplier=spec.depth_multiplier,
        pretrained=False,  # never from a hub: spec.weights names a package or a file
        features_only=True,
        out_indices=out_indices,
        **kwargs,
    )
    reductions = model.feature_info.reduction()
    expected = [2**level for level in backbone_levels(spec)]
    if list(reductions) != expected:  # a timm change would silently shift levels otherwise
        raise RuntimeError(f"backbone {spec.backbone}: feature strides {reductions} != {expected}")
    if weights and spec.pretrained:
        from scalesearch.model.weights import load_backbone_weights

        load_backbone_weights(model, spec)
    return model


def check_weights(spec: DetectorSpec) -> None:
    """Fail now, in one line, if ``spec.weights`` cannot be loaded (no package, no file, not a state dict,
    another architecture): loads them into a backbone, a fraction of a second."""
    if spec.pretrained:
        build_backbone(spec, weights=True)
