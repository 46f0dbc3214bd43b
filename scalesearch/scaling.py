"""Compound scaling: a coefficient phi -> ``DetectorSpec`` (EfficientDet, arXiv 1911.09070, Sec. 4.2).

The paper's rule (Eq. 1-3): W = 64 * 1.35**phi, D_bifpn = 3 + phi, D_head = 3 + floor(phi / 3),
R = 512 + 128 * phi, backbone B_phi. One pure function per axis makes the rounding explicit; a
``ScalingRule`` holds the coefficients as plain numbers so a search can vary them. The released
D0..D7x configs deviate from the rule; ``PRESETS`` are those configs (effdet 0.4.1's
``tf_efficientdet_*``), and ``scalesearch table`` shows where they differ from ``PAPER_RULE``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from scalesearch.errors import UserError, unknown_name
from scalesearch.spec import DetectorSpec

CHANNEL_DIVISOR = 8


def _check_phi(phi: float) -> float:
    if isinstance(phi, bool) or not isinstance(phi, (int, float)) or not math.isfinite(phi):
        raise UserError(f"phi: must be a finite number, but got {phi!r}")
    return float(phi)


def round_width(width: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """Channels rounded to the nearest multiple of ``divisor``, never below 90 % (timm's ``make_divisible``)."""
    from timm.layers import make_divisible

    return int(make_divisible(width, divisor))


def round_depth(depth: float) -> int:
    """Repeats: the ceiling (EfficientNet's depth rounding), at least 1; exact at integer phi."""
    return max(1, math.ceil(round(depth, 9)))


def round_resolution(resolution: float, max_level: int = 7) -> int:
    """Pixels rounded to the nearest multiple of 2**max_level (every level must divide evenly)."""
    stride = 2**max_level
    rounded = int(math.floor(resolution / stride + 0.5)) * stride
    if rounded < stride:
        raise UserError(
            f"resolution: must round to at least 2**max_level = {stride} px, but got {resolution:g} px "
            f"(phi too small for this rule)"
        )
    return rounded


def fpn_width(phi: float, base: float = 64.0, growth: float = 1.35) -> int:
    """W_bifpn = base * growth**phi, channels a multiple of 8 (Eq. 1)."""
    return round_width(base * growth ** _check_phi(phi))


def fpn_depth(phi: float, base: float = 3.0, growth: float = 1.0) -> int:
    """D_bifpn = base + growth * phi repeats (Eq. 1)."""
    return round_depth(base + growth * _check_phi(phi))


def head_depth(phi: float, base: float = 3.0, step: float = 3.0) -> int:
    """D_head = base + floor(phi / step) repeats (Eq. 2), at least 1."""
    return max(1, int(base + math.floor(round(_check_phi(phi) / step, 9))))


def input_resolution(phi: float, base: float = 512.0, step: float = 128.0, max_level: int = 7) -> int:
    """R_input = base + step * phi, rounded to a multiple of 2**max_level (Eq. 3)."""
    return round_resolution(base + step * _check_phi(phi), max_level)


def backbone_multipliers(phi: float, width_growth: float = 1.1, depth_growth: float = 1.2) -> tuple[float, float]:
    """EfficientNet compound scaling (arXiv 1905.11946, Eq. 3): width beta**phi, depth alpha**phi."""
    phi = _check_phi(phi)
    return round(width_growth**phi, 4), round(depth_growth**phi, 4)


@dataclass(frozen=True)
class ScalingRule:
    """Coefficients of a compound scaling rule, all plain numbers (defaults: the paper's).

    ``spec(phi)`` applies every axis at the same phi; any real phi works (negative phi gives
    CPU-sized models) as long as the resolution stays >= 2**max_level.
    """

    width_base: float = 64.0
    width_growth: float = 1.35
    fpn_depth_base: float = 3.0
    fpn_depth_growth: float = 1.0
    head_depth_base: float = 3.0
    head_depth_step: float = 3.0
    resolution_base: float = 512.0
    resolution_step: float = 128.0
    backbone_width_growth: float = 1.1
    backbone_depth_growth: float = 1.2

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UserError(f"rule.{f.name}: must be a finite number, but got {value!r}")
        for key in ("width_base", "width_growth", "head_depth_step", "resolution_base",
                    "backbone_width_growth", "backbone_depth_growth"):
            if getattr(self, key) <= 0:
                raise UserError(f"rule.{key}: must be > 0, but got {getattr(self, key)!r}")

    def values(self, phi: float, max_level: int = 7) -> dict[str, Any]:
        """The rule's axis values at ``phi`` (the DetectorSpec fields it sets)."""
        width, depth = backbone_multipliers(phi, self.backbone_width_growth, self.backbone_depth_growth)
        return {
            "width_multiplier": width,
            "depth_multiplier": depth,
            "resolution": input_resolution(phi, self.resolution_base, self.resolution_step, max_level),
            "fpn_channels": fpn_width(phi, self.width_base, self.width_growth),
            "fpn_repeats": fpn_depth(phi, self.fpn_depth_base, self.fpn_depth_growth),
            "head_repeats": head_depth(phi, self.head_depth_base, self.head_depth_step),
        }

    def spec(self, phi: float, **overrides: Any) -> DetectorSpec:
        """``DetectorSpec`` at ``phi``; ``overrides`` replace any field (e.g. ``num_classes``, ``fusion``)."""
        values = self.values(phi, overrides.get("max_level", DetectorSpec.max_level))
        values["name"] = f"phi={_check_phi(phi):g}"
        values.update(overrides)
        return DetectorSpec(**values)

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


PAPER_RULE = ScalingRule()


def compound_spec(phi: float, rule: ScalingRule = PAPER_RULE, **overrides: Any) -> DetectorSpec:
    """``rule.spec(phi, **overrides)``."""
    return rule.spec(phi, **overrides)


def spec_for(preset_name: str | None = None, phi: float | None = None, **overrides: Any) -> DetectorSpec:
    """What ``--preset NAME`` / ``--phi P`` name on a command line: the paper's rule at ``phi`` when given,
    else the preset (default D0), with the non-None ``overrides`` (resolution, topology, fusion, ...)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if phi is not None:
        return compound_spec(phi, **overrides)
    return preset(preset_name or "d0").replace(**overrides)


# EfficientNet B0..B7 (width, depth) multipliers, timm / arXiv 1905.11946.
EFFICIENTNET_MULTIPLIERS = {
    "b0": (1.0, 1.0), "b1": (1.0, 1.1), "b2": (1.1, 1.2), "b3": (1.2, 1.4),
    "b4": (1.4, 1.8), "b5": (1.6, 2.2), "b6": (1.8, 2.6), "b7": (2.0, 3.1),
}


def native_multipliers(backbone: str) -> tuple[float, float] | None:
    """(width, depth) multipliers of a registered EfficientNet B0..B7 or Lite0..Lite4 name, else None.

    Pretrained weights fix these: a spec that loads them keeps the backbone at its native size while
    the compound rule scales the feature network, heads and resolution.
    """
    import re

    match = re.fullmatch(r"(?:tf_)?efficientnet_(b[0-7]|lite[0-4])", backbone)
    if match is None:
        return None
    return EFFICIENTNET_MULTIPLIERS["b" + match.group(1).removeprefix("b").removeprefix("lite")]


def _released(name: str, b: str, resolution: int, width: int, fpn_repeats: int, head_repeats: int,
              **extra: Any) -> DetectorSpec:
    w, d = EFFICIENTNET_MULTIPLIERS[b]
    return DetectorSpec(
        backbone=f"tf_efficientnet_{b}", width_multiplier=w, depth_multiplier=d, resolution=resolution,
        fpn_channels=width, fpn_repeats=fpn_repeats, head_repeats=head_repeats, tf_compat=True,
        name=name, **extra,
    )


# The released configs (automl hparams_config.py, effdet model_config.py); deviations from the
# rule: D2/D4 widths, D5 R=1280 and 7 repeats, D6/D7 sum fusion, D7 B6 + anchor scale 5, D7x P3-P8.
PRESETS: dict[str, DetectorSpec] = {
    "d0": _released("d0", "b0", 512, 64, 3, 3),
    "d1": _released("d1", "b1", 640, 88, 4, 3),
    "d2": _released("d2", "b2", 768, 112, 5, 3),
    "d3": _released("d3", "b3", 896, 160, 6, 4),
    "d4": _released("d4", "b4", 1024, 224, 7, 4),
    "d5": _released("d5", "b5", 1280, 288, 7, 4),
    "d6": _released("d6", "b6", 1280, 384, 8, 5, fusion="sum"),
    "d7": _released("d7", "b6", 1536, 384, 8, 5, fusion="sum", anchor_scale=5.0),
    "d7x": _released("d7x", "b7", 1536, 384, 8, 5, fusion="sum", max_level=8),
}


def _lite(name: str, index: int, resolution: int, width: int, fpn_repeats: int, head_repeats: int,
          anchor_scale: float) -> DetectorSpec:
    """EfficientDet-Lite (automl, effdet ``tf_efficientdet_lite*``): ReLU6, sum fusion, Lite backbones."""
    w, d = EFFICIENTNET_MULTIPLIERS[f"b{index}"]  # Lite<i> uses B<i>'s multipliers on its own blocks
    return DetectorSpec(
        backbone=f"tf_efficientnet_lite{index}", width_multiplier=w, depth_multiplier=d, resolution=resolution,
        fpn_channels=width, fpn_repeats=fpn_repeats, head_repeats=head_repeats, anchor_scale=anchor_scale,
        fusion="sum", activation="relu6", tf_compat=True, name=name,
    )


LITE_PRESETS: dict[str, DetectorSpec] = {
    "lite0": _lite("lite0", 0, 320, 64, 3, 3, 3.0),
    "lite1": _lite("lite1", 1, 384, 88, 4, 3, 3.0),
    "lite2": _lite("lite2", 2, 448, 112, 5, 3, 3.0),
    "lite3": _lite("lite3", 3, 512, 160, 6, 4, 4.0),
    "lite3x": _lite("lite3x", 3, 640, 200, 6, 4, 3.0),
    "lite4": _lite("lite4", 4, 640, 224, 7, 4, 4.0),
}
FAMILIES: dict[str, dict[str, DetectorSpec]] = {"d": PRESETS, "lite": LITE_PRESETS}
# The compound coefficient of each preset; D7x has none in the paper (it is not on the rule).
PRESET_PHI: dict[str, int | None] = {f"d{i}": i for i in range(8)} | {"d7x": None}


def preset(name: str) -> DetectorSpec:
    """A released config by name (``d0`` .. ``d7``, ``d7x``, ``lite0`` .. ``lite4``, ``lite3x``; case and an
    ``efficientdet-`` prefix ignored)."""
    key = name.lower().removeprefix("tf_").removeprefix("efficientdet-").removeprefix("efficientdet_")
    known = PRESETS | LITE_PRESETS
    if key not in known:
        raise unknown_name("preset", name, known)
    return known[key]
