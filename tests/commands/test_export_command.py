"""``scalesearch export``: an ONNX file from a checkpoint `scalesearch train --save` wrote, raw or with NMS; one-line
errors for a missing or foreign checkpoint and bad options."""

import numpy as np
import pytest
import torch

from servers import TEST_EXTRAS, need_module

from scalesearch.cli import main

onnx = need_module("onnx", TEST_EXTRAS)
need_module("onnxruntime", TEST_EXTRAS)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint from a one-step `scalesearch train` run on a tiny synthetic set (64 px, 4 classes)."""
    from scalesearch.data import synthetic_dataset

    root = tmp_path_factory.mktemp("train")
    data = synthetic_dataset(root / "syn", num_train=4, num_val=2, image_size=64, max_object=32, max_objects=2)
    ckpt = root / "m.pt"
    assert main(["train", str(data), "--phi", "-3", "--resolution", "64", "--steps", "1", "--batch-size", "2",
                 "--out", str(root / "out"), "--save", str(ckpt), "--quiet"]) == 0
    return ckpt


def test_export_raw_graph_equals_the_checkpoint(checkpoint, tmp_path, capsys):
    from scalesearch.training.checkpoint import load_checkpoint
    from scalesearch.training.detection import flatten_outputs
    from scalesearch.measure.export import onnx_session
    from scalesearch.model import input_normalization

    capsys.readouterr()
    out = tmp_path / "sub" / "model.onnx"
    assert main(["export", str(checkpoint), "--out", str(out), "--opset", "13"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and printed.startswith(f"{out}: ") and "opset 13" in printed
    assert "inputs images [batch, 3, 64, 64], outputs class_logits [batch, " in printed
    model, spec, _ = load_checkpoint(checkpoint)
    images = torch.rand(2, 3, 64, 64)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in input_normalization(spec))
    with torch.no_grad():
        want = flatten_outputs(*model((images - mean) / std), spec.num_classes)
    got = onnx_session(out).run(None, {"images": images.numpy()})
    assert max(np.abs(g - w.numpy()).max() for g, w in zip(got, want)) <= 1e-4


def test_export_with_nms(checkpoint, tmp_path, capsys):
    from scalesearch.measure.export import onnx_session

    out = tmp_path / "nms.onnx"
    assert main(["export", str(checkpoint), "--out", str(out), "--nms", "--max-detections", "7"]) == 0
    assert "outputs boxes [batch, 7, 4], scores [batch, 7], labels [batch, 7], num_detections [batch]" in (
        capsys.readouterr().out)
    onnx.checker.check_model(str(out))
    boxes, scores, labels, count = onnx_session(out).run(None, {"images": np.full((3, 3, 64, 64), 0.5, np.float32)})
    assert boxes.shape == (3, 7, 4) and labels.dtype == np.int64 and count.tolist() == [7, 7, 7]


def test_export_of_files_that_are_not_checkpoints(tmp_path, user_error):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    for name, reason in {"missing.pt": "it was not found", "junk.pt": "it is not a file torch.save wrote"}.items():
        err = user_error("export", str(tmp_path / name), "--out", str(tmp_path / "m.onnx"))
        assert err.startswith(f"scalesearch export: error: checkpoint {tmp_path / name}: must be a") and reason in err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("argv, message", [
    (["--opset", "10"], "--opset: must be an integer in 11..20, but got 10"),
    (["--opset", "21"], "--opset: must be an integer in 11..20, but got 21"),
    (["--max-detections", "0"], "--max-detections: must be a positive integer, but got 0"),
])
def test_export_option_errors(checkpoint, tmp_path, user_error, argv, message):
    assert message in user_error("export", str(checkpoint), "--out", str(tmp_path / "m.onnx"), *argv)
    assert not (tmp_path / "m.onnx").exists()


def test_export_out_naming_a_folder(checkpoint, tmp_path, user_error):
    assert "--out" in user_error("export", str(checkpoint), "--out", str(tmp_path))
