"""build_detector: output shapes at every level, submodule names, fusion semantics, errors."""

import pytest
import torch

from scalesearch.errors import UserError
from scalesearch.model import build_detector
from scalesearch.model.fpn import Fusion
from scalesearch.scaling import compound_spec
from scalesearch.spec import DetectorSpec

# phi = -3: B0 at 0.75/0.58, W 24, one BiFPN cell, 128 px: a few hundred ms per forward on CPU.
TINY = compound_spec(-3, num_classes=5)


def _shapes(spec, batch=2):
    model = build_detector(spec).eval()
    with torch.no_grad():
        cls_out, box_out = model(torch.randn(batch, 3, spec.resolution, spec.resolution))
    return [tuple(t.shape) for t in cls_out], [tuple(t.shape) for t in box_out]


def _expected(spec, batch=2):
    sizes = [spec.resolution // 2**level for level in range(spec.min_level, spec.max_level + 1)]
    cls = [(batch, spec.num_anchors * spec.num_classes, s, s) for s in sizes]
    return cls, [(batch, spec.num_anchors * 4, s, s) for s in sizes]


@pytest.mark.parametrize("spec", [
    TINY,
    TINY.replace(max_level=8, resolution=256),
    TINY.replace(min_level=4, max_level=6, resolution=128),
    TINY.replace(topology="qufpn", fusion="sum", num_scales=2, aspect_ratios=((1.0, 1.0),)),
    TINY.replace(topology="panet", fusion="channel_softmax", fpn_repeats=2),
    TINY.replace(topology="fpn", fusion="channel_fast", tf_compat=True, backbone="tf_efficientnet_b0"),
    TINY.replace(fusion="softmax", backbone="efficientnet_lite0", resolution=256),
], ids=["phi-3", "P3-P8", "P4-P6", "qufpn-sum", "panet-chsoftmax", "fpn-chfast-tf", "lite0-softmax"])
def test_output_shapes_every_level(spec):
    assert _shapes(spec) == _expected(spec)


def test_submodules_and_feature_channels():
    model = build_detector(TINY)
    assert [name for name, _ in model.named_children()] == ["backbone", "fpn", "class_net", "box_net"]
    assert model.backbone.feature_info.reduction() == [8, 16, 32]
    assert model.backbone.feature_info.channels() == [32, 88, 240]  # timm round_channels: 40, 112, 320 x 0.7513


def test_channels_last_matches_contiguous():
    model = build_detector(TINY).eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        ref = model(x)[0]
        out = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))[0]
    for a, b in zip(ref, out):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_tf_compat_padding_bias_and_bn_eps():
    tf = build_detector(TINY.replace(tf_compat=True, backbone="tf_efficientnet_b0"))
    plain = build_detector(TINY)
    assert type(tf.backbone.conv_stem).__name__ == "Conv2dSame" and tf.backbone.bn1.eps == 1e-3
    assert type(plain.backbone.conv_stem) is torch.nn.Conv2d and plain.backbone.bn1.eps == 1e-5
    assert tf.class_net.convs[0].conv_pw.bias is not None and plain.class_net.convs[0].conv_pw.bias is None


def test_class_bias_starts_at_prior():
    model = build_detector(TINY)
    bias = model.class_net.predict.conv_pw.bias
    torch.testing.assert_close(torch.sigmoid(bias), torch.full_like(bias, 0.01))
    assert torch.all(model.box_net.predict.conv_pw.bias == 0)


def test_fusion_methods():
    a, b = torch.full((1, 2, 2, 2), 2.0), torch.full((1, 2, 2, 2), 4.0)
    assert torch.all(Fusion(2, 2, "sum")([a, b]) == 6.0)
    assert torch.allclose(Fusion(2, 2, "softmax")([a, b]), torch.full_like(a, 3.0))
    assert torch.allclose(Fusion(2, 2, "fast")([a, b]), torch.full_like(a, 6.0 / 2.0001))
    fast = Fusion(2, 2, "channel_fast")
    with torch.no_grad():
        fast.weight[1, 0] = -1.0  # relu drops input b on channel 0 only
    out = fast([a, b])
    assert torch.allclose(out[:, 0], torch.full_like(out[:, 0], 2.0 / 1.0001))
    assert torch.allclose(out[:, 1], torch.full_like(out[:, 1], 6.0 / 2.0001))
    assert Fusion(3, 8, "channel_softmax").weight.shape == (3, 8, 1, 1) and Fusion(3, 8, "fastattn").method == "fast"


def test_unknown_backbone_lists_close_names():
    with pytest.raises(UserError, match=r"unknown backbone 'efficientnet_b9' \(close names: efficientnet_b8"):
        build_detector(DetectorSpec(backbone="efficientnet_b9"))


def test_unknown_fusion_and_min_level():
    with pytest.raises(UserError, match="unknown fusion 'fastt'"):
        build_detector(TINY.replace(fusion="fastt"))
    with pytest.raises(UserError, match="spec.min_level: must be <= 5"):
        build_detector(TINY.replace(min_level=6, max_level=7))


def test_training_step_runs():
    model = build_detector(TINY).train()
    cls_out, box_out = model(torch.randn(2, 3, 128, 128))
    sum(t.mean() for t in cls_out + box_out).backward()
    assert model.fpn.cells[0].nodes[0].fusion.weight.grad is not None


def test_channels_last_model_converts_contiguous_input():
    model = build_detector(TINY).eval().to(memory_format=torch.channels_last)
    assert model._channels_last() and not build_detector(TINY)._channels_last()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 128, 128))[0][0]
    assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("activation, cls", [("relu6", torch.nn.ReLU6), ("relu", torch.nn.ReLU),
                                             ("swish", torch.nn.SiLU)])
def test_activation_reaches_feature_network_and_heads(activation, cls):
    model = build_detector(compound_spec(-3, activation=activation, num_classes=2))
    for part in (model.fpn, model.class_net, model.box_net):
        acts = {type(m) for m in part.modules() if isinstance(m, (torch.nn.SiLU, torch.nn.ReLU, torch.nn.ReLU6))}
        assert acts == {cls}
    with pytest.raises(UserError, match="spec.activation: must be one of swish, relu6, relu, but got 'gelu'"):
        compound_spec(-3, activation="gelu")


def test_uneven_upper_levels_give_ceil_sized_maps():
    model = build_detector(compound_spec(-3, resolution=320, num_classes=2)).eval()
    with torch.no_grad():
        cls, _ = model(torch.zeros(1, 3, 320, 320))
    assert [c.shape[-1] for c in cls] == [40, 20, 10, 5, 3]
