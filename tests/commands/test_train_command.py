"""``scalesearch train``: metrics, grid and checkpoint on a tiny synthetic dataset (seconds); user errors in one
line, and no folder left behind by a run that fails."""

import json

import pytest

from scalesearch.training.checkpoint import load_checkpoint
from scalesearch.cli import main


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from scalesearch.data import synthetic_dataset

    return synthetic_dataset(tmp_path_factory.mktemp("syn"), num_train=12, num_val=6, image_size=128,
                             max_object=64, max_objects=4)


def test_train_command_writes_metrics_grid_and_checkpoint(tiny_data, tmp_path, capsys, monkeypatch):
    import scalesearch.training.draw

    grids = []
    draw = scalesearch.training.draw.draw_predictions
    monkeypatch.setattr(scalesearch.training.draw, "draw_predictions", lambda *a, **k: grids.append(draw(*a, **k)) or grids[-1])
    out, ckpt = tmp_path / "out", tmp_path / "m.pt"
    code = main(["train", str(tiny_data), "--phi", "-3", "--steps", "2", "--batch-size", "4", "--out", str(out),
                 "--save", str(ckpt), "--json", str(tmp_path / "m.json"), "--quiet"])
    assert code == 0
    summary = json.loads((tmp_path / "m.json").read_text())
    assert summary["steps"] == 2 and summary["spec"]["resolution"] == 128 and summary["spec"]["num_classes"] == 4
    assert (out / "predictions.png").is_file() and (out / "results.json").is_file()
    _check_predictions_grid(grids, out, tiny_data)
    categories = json.loads((tiny_data / "annotations" / "instances_train.json").read_text())["categories"]
    assert load_checkpoint(ckpt)[2]["category_names"] == [c["name"] for c in sorted(categories, key=lambda c: c["id"])]
    assert "mAP" in capsys.readouterr().out


def _check_predictions_grid(grids, out, data):
    """predictions.png: the first val images, each with its top-k results.json detections whatever their score,
    and all of its ground-truth boxes."""
    from collections import Counter

    from matplotlib.image import imread

    from scalesearch.training.draw import top_k

    val = json.loads((data / "annotations" / "instances_val.json").read_text())
    truth = Counter(a["image_id"] for a in val["annotations"])
    found = Counter(d["image_id"] for d in json.loads((out / "results.json").read_text()))
    images = val["images"][:8]
    assert len(grids) == 1 and [d["title"] for d in grids[0]] == [img["file_name"] for img in images]
    for drawn, img in zip(grids[0], images):
        assert drawn["truth"] == truth[img["id"]] and drawn["found"] == found[img["id"]]
        assert len(drawn["scores"]) == min(top_k(truth[img["id"]]), found[img["id"]])
        assert drawn["scores"] == sorted(drawn["scores"], reverse=True)
        assert drawn["note"] == (None if found[img["id"]] else "no detections")
    picture = imread(out / "predictions.png")
    assert picture.shape[0] > 0 and picture.shape[1] > 0 and picture.std() > 0


def test_train_command_user_errors(tmp_path, capsys):
    assert main(["train", str(tmp_path / "none"), "--steps", "1"]) == 2
    assert "must be a dataset folder" in capsys.readouterr().err
    assert main(["train", "synthetic", "--resolution", "100", "--steps", "1"]) == 2
    assert "spec.resolution" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "--steps: must be a positive integer"),
    (["--minutes", "0"], "--minutes: must be > 0, but got 0.0"),
    (["--batch-size", "0"], "--batch-size: must be a positive integer, but got 0"),
    (["--lr", "nan"], "--lr: must be a finite number > 0, but got nan"),
    (["--workers", "-1"], "--workers: must be >= 0"),
    (["--device", "tpu"], "--device: must be cpu, cuda[:N] or auto, but got 'tpu'"),
    (["--fusion", "fasst"], "unknown fusion 'fasst' (close names: fast"),
    (["--topology", "bifnp"], "unknown topology 'bifnp'"),
    (["--save", "."], "--save .: must be a file path, but it is a folder"),
])
def test_train_command_one_line_errors_leave_no_folder(tmp_path, monkeypatch, user_error, argv, message):
    monkeypatch.chdir(tmp_path)
    assert message in user_error("train", "synthetic", *argv)
    assert list(tmp_path.iterdir()) == []


def test_failed_training_removes_the_folders_it_made(tmp_path, monkeypatch):
    import scalesearch.training.train

    def fail(*args, **kwargs):
        raise scalesearch.training.train.TrainingFailed("loss became nan at step 1")

    monkeypatch.setattr(scalesearch.training.train, "train_and_evaluate", fail)
    (tmp_path / "kept").mkdir()
    with pytest.raises(scalesearch.training.train.TrainingFailed):
        main(["train", "synthetic", "--steps", "1", "--out", str(tmp_path / "runs" / "train-x")])
    with pytest.raises(scalesearch.training.train.TrainingFailed):
        main(["train", "synthetic", "--steps", "1", "--out", str(tmp_path / "kept")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]  # a folder the user had is kept
