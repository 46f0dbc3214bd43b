"""Scaling rule, per-axis rounding and the released D0..D7x presets."""

import math

import pytest

from scalesearch.errors import UserError
from scalesearch.scaling import (
    PAPER_RULE, PRESET_PHI, PRESETS, ScalingRule, backbone_multipliers, compound_spec, fpn_depth, fpn_width,
    head_depth, input_resolution, preset, round_depth, round_resolution, round_width,
)

# REFERENCE.md "Released configurations": backbone, R, W, D_bifpn, D_head, anchor scale, fusion, max level.
RELEASED = {
    "d0": ("tf_efficientnet_b0", 512, 64, 3, 3, 4.0, "fast", 7),
    "d1": ("tf_efficientnet_b1", 640, 88, 4, 3, 4.0, "fast", 7),
    "d2": ("tf_efficientnet_b2", 768, 112, 5, 3, 4.0, "fast", 7),
    "d3": ("tf_efficientnet_b3", 896, 160, 6, 4, 4.0, "fast", 7),
    "d4": ("tf_efficientnet_b4", 1024, 224, 7, 4, 4.0, "fast", 7),
    "d5": ("tf_efficientnet_b5", 1280, 288, 7, 4, 4.0, "fast", 7),
    "d6": ("tf_efficientnet_b6", 1280, 384, 8, 5, 4.0, "sum", 7),
    "d7": ("tf_efficientnet_b6", 1536, 384, 8, 5, 5.0, "sum", 7),
    "d7x": ("tf_efficientnet_b7", 1536, 384, 8, 5, 4.0, "sum", 8),
}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_presets_match_released_configs(name):
    s = preset(name)
    got = (s.backbone, s.resolution, s.fpn_channels, s.fpn_repeats, s.head_repeats, s.anchor_scale, s.fusion,
           s.max_level)
    assert got == RELEASED[name]
    assert s.tf_compat and s.topology == "bifpn" and s.min_level == 3 and s.num_classes == 90


def test_preset_names_and_phi():
    assert preset("D3") is PRESETS["d3"] and preset("efficientdet-d7x") is PRESETS["d7x"]
    assert preset("tf_efficientdet_d1") is PRESETS["d1"]
    assert PRESET_PHI == {"d0": 0, "d1": 1, "d2": 2, "d3": 3, "d4": 4, "d5": 5, "d6": 6, "d7": 7, "d7x": None}
    assert (PRESETS["d3"].width_multiplier, PRESETS["d3"].depth_multiplier) == (1.2, 1.4)


def test_unknown_preset_lists_close_names():
    with pytest.raises(UserError, match=r"unknown preset 'd8' \(close names: d7"):
        preset("d8")


def test_round_width_to_multiple_of_8():
    assert [round_width(w) for w in (86.4, 116.64, 157.46, 212.58, 287.0, 387.5)] == [88, 120, 160, 216, 288, 384]
    assert round_width(3.0) == 8  # never below one divisor
    assert round_width(20.0) == 24  # 16 would lose more than 10 %


def test_paper_rule_axes_at_integer_phi():
    assert [fpn_width(p) for p in range(8)] == [64, 88, 120, 160, 216, 288, 384, 520]
    assert [fpn_depth(p) for p in range(8)] == [3, 4, 5, 6, 7, 8, 9, 10]
    assert [head_depth(p) for p in range(8)] == [3, 3, 3, 4, 4, 4, 5, 5]
    assert [input_resolution(p) for p in range(8)] == [512, 640, 768, 896, 1024, 1152, 1280, 1408]


def test_rule_at_real_and_negative_phi():
    assert [fpn_depth(p) for p in (-4, -2.5, -1, 0.5, 1.0000000001)] == [1, 1, 2, 4, 4]
    assert [head_depth(p) for p in (-7, -3, -0.1, 2.9)] == [1, 2, 2, 3]
    assert [input_resolution(p) for p in (-3, -1.5, 0.3, 0.5)] == [128, 384, 512, 640]
    assert input_resolution(0.3, max_level=8) == 512
    assert fpn_width(-2) == 32 and fpn_width(0.5) == 72
    assert backbone_multipliers(2) == (1.21, 1.44)


def test_rounding_helpers():
    assert round_depth(2.0000000001) == 2 and round_depth(2.01) == 3 and round_depth(-3) == 1
    assert round_resolution(700, 7) == 640 and round_resolution(191, 7) == 128 and round_resolution(300, 8) == 256


def test_spec_from_rule_and_overrides():
    s = compound_spec(-2, num_classes=3, fusion="sum")
    assert (s.resolution, s.fpn_channels, s.fpn_repeats, s.head_repeats) == (256, 32, 1, 2)
    assert (s.width_multiplier, s.depth_multiplier) == (0.8264, 0.6944)
    assert (s.num_classes, s.fusion, s.backbone, s.name) == (3, "sum", "efficientnet_b0", "phi=-2")
    assert compound_spec(0, max_level=8).resolution == 512 and compound_spec(1, max_level=8).resolution == 768
    assert compound_spec(1, resolution=256).resolution == 256


def test_custom_rule_coefficients():
    rule = ScalingRule(width_base=32, width_growth=2.0, fpn_depth_growth=0.5, resolution_base=256, resolution_step=64)
    s = rule.spec(2)
    assert (s.fpn_channels, s.fpn_repeats, s.resolution) == (128, 4, 384)
    assert rule.to_dict()["width_growth"] == 2.0 and PAPER_RULE.to_dict()["width_base"] == 64.0


@pytest.mark.parametrize("phi", [math.nan, math.inf, "1", True, None])
def test_invalid_phi(phi):
    with pytest.raises(UserError, match="phi: must be a finite number"):
        compound_spec(phi)


def test_phi_too_small_for_resolution():
    with pytest.raises(UserError, match=r"resolution: must round to at least 2\*\*max_level = 128 px, but got 0 px"):
        compound_spec(-4)


def test_invalid_resolution_override():
    with pytest.raises(UserError, match="multiple of the backbone's last stride 32, but got 500"):
        compound_spec(0, resolution=500)
    with pytest.raises(UserError, match="multiple of the backbone's last stride 16, but got 200"):
        compound_spec(0, resolution=200, min_level=2, max_level=4)


@pytest.mark.parametrize("field, value", [("width_growth", 0), ("resolution_base", -1), ("head_depth_step", 0),
                                          ("width_base", math.nan), ("fpn_depth_base", "3")])
def test_invalid_rule_coefficients(field, value):
    with pytest.raises(UserError, match=f"rule.{field}"):
        ScalingRule(**{field: value})


# effdet 0.4.1 tf_efficientdet_lite*, 90 classes (REFERENCE.md, measured).
EFFDET_LITE_PARAMS = {"lite0": 3_243_470, "lite1": 4_248_318, "lite2": 5_252_334, "lite3": 8_350_862,
                      "lite3x": 9_280_862, "lite4": 15_130_894}


@pytest.mark.parametrize("name", sorted(EFFDET_LITE_PARAMS))
def test_lite_preset_params_equal_effdet(name):
    from scalesearch.measure.cost import count_params

    spec = preset(name)
    assert (spec.activation, spec.fusion, spec.tf_compat) == ("relu6", "sum", True)
    assert sum(count_params(spec).values()) == EFFDET_LITE_PARAMS[name]


def test_native_multipliers_of_pretrained_backbones():
    from scalesearch.scaling import native_multipliers

    assert native_multipliers("tf_efficientnet_lite1") == (1.0, 1.1)
    assert native_multipliers("efficientnet_b3") == (1.2, 1.4)
    assert native_multipliers("efficientnet_es") is None
