"""``scalesearch predict``: drawn images and detections.json from a checkpoint; one-line errors for files that
are not checkpoints or images."""

import json

import pytest
import torch

from scalesearch.training.checkpoint import save_checkpoint
from scalesearch.cli import main
from scalesearch.model import build_detector
from scalesearch.spec import DetectorSpec

TINY = DetectorSpec(resolution=128, width_multiplier=0.25, depth_multiplier=0.25, fpn_channels=16, fpn_repeats=1,
                    head_repeats=1, num_classes=4)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "m.pt"
    return save_checkpoint(path, build_detector(TINY, weights=False), TINY, {"category_names": list("abcd")})


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "photo.jpg"
    Image.new("RGB", (150, 100), (120, 80, 40)).save(path)
    return path


def test_predict_writes_images(checkpoint, image, tmp_path, capsys):
    from PIL import Image

    assert main(["predict", str(checkpoint), str(image), "--out", str(tmp_path / "out"), "--score-threshold", "0"]) == 0
    drawn = Image.open(tmp_path / "out" / f"{image.stem}.png")
    assert drawn.size == Image.open(image).size
    report = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert len(report[str(image)]) == 100  # threshold 0 keeps the 100 best boxes
    assert {d["label"] for d in report[str(image)]} <= set("abcd")
    assert main(["predict", str(checkpoint), str(tmp_path / "nope.jpg"), "--out", str(tmp_path / "out")]) == 2
    assert "nope.jpg: must be an existing image file" in capsys.readouterr().err


def test_predict_draws_the_top_k_whatever_their_score(checkpoint, image, tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "out"
    assert main(["predict", str(checkpoint), str(image), "--out", str(out), "--top-k", "7"]) == 0
    assert f"{image}: 7 of 100 boxes drawn (best score" in capsys.readouterr().out  # an untrained model: no threshold
    assert len(json.loads((out / "detections.json").read_text())[str(image)]) == 100
    plain = Image.open(image).convert("RGB")
    assert main(["predict", str(checkpoint), str(image), "--out", str(out), "--score-threshold", "1.1"]) == 0
    assert f"{image}: 0 of 0 boxes drawn -> " in capsys.readouterr().out
    assert json.loads((out / "detections.json").read_text())[str(image)] == []
    noted = Image.open(out / f"{image.stem}.png").convert("RGB")
    assert noted.size == plain.size
    row = [noted.getpixel((x, 50)) for x in range(150)]  # the centre row crosses the "no detections" plate
    assert (0, 0, 0) in row and max(max(p) for p in row) > 240


def _not_checkpoints(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "notes.md").write_text("# a Markdown file\n")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")  # pickled code: never loaded
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    return {"junk.pt": "it is not a file torch.save wrote", "notes.md": "it is not a file torch.save wrote",
            "module.pt": "it holds pickled Python objects", "other.pt": "its format is not 'scalesearch-checkpoint'",
            "missing.pt": "it was not found", ".": "it is a folder"}


def test_predict_on_files_that_are_not_checkpoints_prints_one_line(image, tmp_path, user_error):
    for name, reason in _not_checkpoints(tmp_path).items():
        err = user_error("predict", str(tmp_path / name), str(image), "--out", str(tmp_path / "out"))
        assert err.startswith(f"scalesearch predict: error: checkpoint {tmp_path / name}: must be a") and reason in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, message", [
    (["--max-detections", "0"], "--max-detections: must be a positive integer, but got 0"),
    (["--top-k", "0"], "--top-k: must be a positive integer, but got 0"),
    (["--device", "gpu"], "--device: must be cpu, cuda[:N] or auto, but got 'gpu'"),
])
def test_predict_option_errors(checkpoint, image, tmp_path, user_error, argv, message):
    assert message in user_error("predict", str(checkpoint), str(image), "--out", str(tmp_path / "out"), *argv)
    assert not (tmp_path / "out").exists()


def test_predict_out_naming_a_file(checkpoint, image, capsys):
    assert main(["predict", str(checkpoint), str(image), "--out", str(image)]) == 2
    assert "must be a folder (made if missing), but it is a file" in capsys.readouterr().err
