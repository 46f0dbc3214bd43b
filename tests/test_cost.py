"""Exact params and FLOPs: pinned to effdet 0.4.1 and to plain fvcore traces."""

import json

import pytest
import torch

from scalesearch.measure.cost import Cost, _fit, count_cost, count_flops, count_params, trace_flops
from scalesearch.model import build_detector
from scalesearch.scaling import compound_spec, preset

# effdet 0.4.1 tf_efficientdet_*, 90 classes (REFERENCE.md, measured).
EFFDET_PARAMS = {"d0": 3_880_067, "d1": 6_625_898, "d2": 8_097_039, "d3": 12_032_296, "d4": 20_723_675,
                 "d5": 33_653_315, "d6": 51_871_782, "d7": 51_871_782, "d7x": 77_147_166}
# effdet 0.4.1 tf_efficientdet_<v> with config.fpn_name = ... (one-off script building effdet models).
EFFDET_FPN_PARAMS = {
    "d0": {"bifpn_fa": 3_880_067, "bifpn_sum": 3_880_010, "bifpn_attn": 3_880_067, "pan_fa": 3_881_216,
           "pan_sum": 3_881_162, "qufpn_fa": 4_131_418, "qufpn_sum": 4_131_304},
    "d1": {"bifpn_fa": 6_625_898, "bifpn_sum": 6_625_822, "bifpn_attn": 6_625_898, "pan_fa": 6_657_750,
           "pan_sum": 6_657_678, "qufpn_fa": 7_168_270, "qufpn_sum": 7_168_118},
    "d2": {"bifpn_fa": 8_097_039, "bifpn_sum": 8_096_944, "bifpn_attn": 8_097_039, "pan_fa": 8_182_378,
           "pan_sum": 8_182_288, "qufpn_fa": 9_118_400, "qufpn_sum": 9_118_210},
    "d3": {"bifpn_fa": 12_032_296, "bifpn_sum": 12_032_182, "bifpn_attn": 12_032_296, "pan_fa": 12_278_370,
           "pan_sum": 12_278_262, "qufpn_fa": 14_363_670, "qufpn_sum": 14_363_442},
}
EFFDET_FPN = {"bifpn_fa": ("bifpn", "fast"), "bifpn_sum": ("bifpn", "sum"), "bifpn_attn": ("bifpn", "softmax"),
              "pan_fa": ("panet", "fast"), "pan_sum": ("panet", "sum"), "qufpn_fa": ("qufpn", "fast"),
              "qufpn_sum": ("qufpn", "sum")}
PAPER_FLOPS = {"d0": 2.5e9, "d1": 6.1e9, "d2": 11e9, "d3": 25e9, "d4": 55e9, "d5": 135e9, "d6": 226e9,
               "d7": 325e9, "d7x": 410e9}
TINY = compound_spec(-3, num_classes=5)


@pytest.mark.parametrize("name", sorted(EFFDET_PARAMS))
def test_preset_params_equal_effdet(name):
    assert sum(count_params(preset(name)).values()) == EFFDET_PARAMS[name]


@pytest.mark.parametrize("variant", sorted(EFFDET_FPN_PARAMS))
def test_topology_fusion_params_equal_effdet(variant):
    got = {fpn: sum(count_params(preset(variant).replace(topology=t, fusion=f)).values())
           for fpn, (t, f) in EFFDET_FPN.items()}
    assert got == EFFDET_FPN_PARAMS[variant]


def test_d0_equals_plain_fvcore_trace():
    cost = count_cost(preset("d0"))
    assert cost.params == 3_880_067 and cost.flops == 2_570_808_832  # plain trace at 512 px gives the same
    assert cost.by_part == {"backbone": (3_595_388, 1_971_237_376), "fpn": (196_281, 140_743_680),
                            "class_net": (69_354, 364_548_096), "box_net": (19_044, 94_279_680)}
    assert cost.by_operator == {"batch_norm": 77_432_832, "conv": 2_492_331_520, "upsample_nearest2d": 1_044_480}
    assert abs(cost.flops / PAPER_FLOPS["d0"] - 1) < 0.03


@pytest.mark.parametrize("spec", [TINY.replace(resolution=384), TINY.replace(max_level=8, resolution=768),
                                  TINY.replace(topology="qufpn", fusion="channel_fast", tf_compat=True,
                                               backbone="tf_efficientnet_b0", resolution=384)],
                         ids=["u3", "P3-P8-u3", "qufpn-tf-u3"])
def test_extrapolation_equals_plain_trace(spec):
    model = build_detector(spec).eval()
    assert count_flops(spec, model) == trace_flops(model, spec.resolution)


def test_fit_rejects_non_quadratic_counts():
    assert _fit({"a": 10}, {"a": 31}, 3) == {"a": 7 * 9 + 3}
    with pytest.raises(RuntimeError, match="not a \\* u\\*\\*2 \\+ b"):
        _fit({"a": 10}, {"a": 30}, 3)


def test_memory_and_disk_cache(tmp_path):
    spec = TINY.replace(num_classes=7)
    cost = count_cost(spec, cache_dir=tmp_path)
    assert count_cost(spec.replace(name="renamed", weights="package")) is cost
    (path,) = tmp_path.glob("cost-*.json")
    assert Cost.from_dict(json.loads(path.read_text())) == cost
    assert cost.params == sum(p for p, _ in cost.by_part.values())
    assert cost.flops == sum(f for _, f in cost.by_part.values()) == sum(cost.by_operator.values())


# Ours, exact; D0-D2 and D6 equal plain fvcore traces of effdet (D6: 226.728B in REFERENCE.md, a 21 GB trace).
PRESET_FLOPS = {"d0": 2_570_808_832, "d1": 6_176_267_280, "d2": 11_105_033_344, "d3": 25_087_429_248,
                "d4": 55_501_261_152, "d5": 136_076_066_752, "d6": 226_728_197_984, "d7": 326_485_313_376,
                "d7x": 412_333_058_048}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PAPER_FLOPS))
def test_preset_flops_within_3_percent_of_paper(name):
    flops = count_cost(preset(name)).flops
    assert flops == PRESET_FLOPS[name]
    assert abs(flops / PAPER_FLOPS[name] - 1) < 0.03


def test_pytorch_native_d0_params_equal_effdet_efficientdet_d0():
    # effdet's efficientdet_d0: symmetric padding, no redundant biases (our tf_compat=False).
    spec = preset("d0").replace(tf_compat=False, backbone="efficientnet_b0")
    assert sum(count_params(spec).values()) == 3_877_763


@pytest.mark.slow
@pytest.mark.parametrize("variant, fpn_name", [("d0", "bifpn_sum"), ("d0", "pan_fa"), ("d0", "qufpn_fa"),
                                               ("d1", "bifpn_fa"), ("d1", "pan_sum")])
def test_flops_equal_plain_fvcore_count_of_effdet(variant, fpn_name):
    from effdet.config import get_efficientdet_config
    from effdet.efficientdet import EfficientDet
    from fvcore.nn import FlopCountAnalysis

    config = get_efficientdet_config(f"tf_efficientdet_{variant}")
    config.fpn_name = fpn_name
    model = EfficientDet(config, pretrained_backbone=False).eval()
    with torch.no_grad():
        size = config.image_size[0]
        theirs = FlopCountAnalysis(model, torch.zeros(1, 3, size, size)).unsupported_ops_warnings(False).total()
    topology, fusion = EFFDET_FPN[fpn_name]
    ours = count_cost(preset(variant).replace(topology=topology, fusion=fusion))
    assert ours.params == sum(p.numel() for p in model.parameters())
    assert abs(ours.flops / theirs - 1) < 0.005


def test_lite0_flops_equal_a_plain_fvcore_count_of_effdet():
    # 320 px: P6/P7 are uneven (5x5, 3x3), so the count is a direct trace; it must equal effdet's.
    from effdet.config import get_efficientdet_config
    from effdet.efficientdet import EfficientDet
    from fvcore.nn import FlopCountAnalysis

    model = EfficientDet(get_efficientdet_config("tf_efficientdet_lite0"), pretrained_backbone=False).eval()
    with torch.no_grad():
        theirs = FlopCountAnalysis(model, torch.zeros(1, 3, 320, 320)).unsupported_ops_warnings(False).total()
    ours = count_cost(preset("lite0"))
    assert ours.flops == 1_004_248_064 and abs(ours.flops / theirs - 1) < 0.005


@pytest.mark.parametrize("spec", [
    TINY.replace(fpn_repeats=3, head_repeats=4, resolution=256),
    TINY.replace(topology="qufpn", fusion="fast", fpn_repeats=4, head_repeats=1, resolution=224),
    TINY.replace(topology="panet", fusion="sum", activation="relu6", fpn_repeats=1, head_repeats=3, resolution=288),
    TINY.replace(topology="fpn", fpn_repeats=2, head_repeats=2, resolution=320),
    TINY.replace(backbone="tf_efficientnet_lite0", tf_compat=True, fpn_channels=48, fpn_repeats=3, head_repeats=3,
                 resolution=384)],
    ids=["bifpn-r3-h4", "qufpn-r4-h1", "panet-r1-h3", "fpn-r2-h2", "lite0-u3-r3-h3"])
def test_repeat_extrapolation_equals_plain_trace(spec):
    """Counted from the variants at repeats 1 and 2 (the search's path) == one plain fvcore trace of the spec."""
    from scalesearch.measure import cost

    model = build_detector(spec).eval()
    cost._SHAPES.add(spec.replace(name=None, weights="none", fpn_repeats=1, head_repeats=1))  # not the shape's first
    assert count_flops(spec) == trace_flops(model, spec.resolution)


def test_fit_repeats_rejects_a_part_that_is_not_linear():
    from scalesearch.measure.cost import _fit_repeats

    assert _fit_repeats({("fpn", "conv"): 10}, {("fpn", "conv"): 16}, {"fpn": 4}) == {("fpn", "conv"): 28}
    with pytest.raises(RuntimeError, match="not linear"):
        _fit_repeats({("backbone", "conv"): 10}, {("backbone", "conv"): 11}, {"fpn": 4})
    with pytest.raises(RuntimeError, match="not linear"):
        _fit_repeats({("fpn", "conv"): 10}, {("fpn", "conv"): 9}, {"fpn": 4})
