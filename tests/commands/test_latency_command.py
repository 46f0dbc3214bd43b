"""``scalesearch latency``: a preset's or checkpoint's measured latency, and its one-line user errors."""

import json

import pytest

from scalesearch import cli
from scalesearch.measure import latency


@pytest.fixture(autouse=True)
def own_lock(tmp_path, monkeypatch):
    monkeypatch.setenv(latency.LOCK_ENV, str(tmp_path / "latency.lock"))


def test_latency_of_a_preset(capsys, tmp_path):
    out = tmp_path / "d0.json"
    assert cli.main(["latency", "--preset", "d0", "--warmup", "0", "--runs", "2", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "d0: tf_efficientnet_b0 R=512 bifpn/fast, 90 classes"
    assert [line.split()[0] for line in lines[2:5]] == ["network", "post", "total"]
    assert lines[-1].startswith("machine: ") and "torch, 1 thread(s), batch 1, 0 warm-up + 2 timed runs" in lines[-1]
    data = json.loads(out.read_text())
    assert data["spec"]["resolution"] == 512 and data["runs"] == 2 and data["warmup"] == 0
    assert len(data["samples_ms"]["total"]) == 2 and data["median_ms"]["total"] > data["median_ms"]["post"] > 0


def test_latency_of_a_checkpoint(capsys, tmp_path):
    from scalesearch.training.checkpoint import save_checkpoint
    from scalesearch.model import build_detector
    from scalesearch.scaling import compound_spec

    spec = compound_spec(-3.0, resolution=128, num_classes=2)
    ckpt = save_checkpoint(tmp_path / "tiny.pt", build_detector(spec, weights=False), spec)
    assert cli.main(["latency", str(ckpt), "--runs", "2", "--warmup", "0", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{ckpt}: efficientnet_b0 R=128 bifpn/fast, 2 classes")
    assert "batch 2, 0 warm-up + 2 timed runs" in out


def test_latency_of_an_onnx_file_with_nms_inside(capsys, tmp_path):
    pytest.importorskip("onnxruntime")
    from scalesearch.measure.export import export_onnx
    from scalesearch.model import build_detector
    from scalesearch.scaling import compound_spec

    spec = compound_spec(-3.0, resolution=128, num_classes=2)
    path = export_onnx(build_detector(spec, weights=False), spec, tmp_path / "tiny.onnx", nms=True, max_detections=7)
    out = tmp_path / "tiny.json"
    assert cli.main(["latency", str(path), "--runtime", "onnxruntime", "--runs", "3", "--warmup", "1",
                     "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{path}: ONNX graph, R=128"
    assert [line.split()[0] for line in lines[2:-2]] == ["total"]  # NMS inside: no separable post-processing
    assert lines[-2].endswith("boxes kept by the graph's NMS") and "onnxruntime, 1 thread(s)" in lines[-1]
    data = json.loads(out.read_text())
    assert data["onnx"] == str(path) and data["resolution"] == 128 and len(data["samples_ms"]["total"]) == 3
    assert 0 <= data["detections"] <= 7 and data["median_ms"]["total"] > 0


def test_an_onnx_file_needs_the_onnx_runtime(user_error, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"")
    assert ("--runtime: an ONNX file (" in user_error("latency", str(path))
            and "add --runtime onnxruntime" in user_error("latency", str(path)))


@pytest.mark.parametrize("argv, message", [
    (["--runtime", "tensorrt"], "--runtime: unknown runtime 'tensorrt' (valid names: onnxruntime, torch)"),
    (["--threads", "0"], "--threads: must be an integer >= 1, but got 0"),
    (["--batch", "0"], "--batch: must be an integer >= 1, but got 0"),
    (["--runs", "0"], "--runs: must be an integer >= 1, but got 0"),
    (["--warmup", "-1"], "--warmup: must be an integer >= 0, but got -1"),
    (["--preset", "d9"], "unknown preset 'd9' (close names: d7"),
    (["missing.pt"], "checkpoint missing.pt: must be a file written by `scalesearch train --save`, but it was not found"),
    (["x.pt", "--phi", "-3"], "--phi: a checkpoint fixes its spec, so give CKPT or spec options, not both"),
    (["--json", "."], "--json .: must be a file path, but it is a folder"),
])
def test_latency_command_errors(user_error, argv, message):
    assert message in user_error("latency", *argv)
