"""Drawings: a topology graph, detections, and the predictions grid (top-k with scores over the ground truth), as
PNG files."""

import pytest
import torch

from scalesearch.training.draw import NO_DETECTIONS, draw_detections, draw_predictions, note_on_image, save_png, tile_grid, top_k
from scalesearch.topology import get_topology
from scalesearch.topology_drawing import draw_topology


def test_draw_topology_writes_png(tmp_path):
    path = tmp_path / "qufpn.png"
    draw_topology(get_topology("qufpn"), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_draw_detections_colours_boxes_and_tiles(tmp_path):
    image = torch.zeros(3, 64, 96, dtype=torch.uint8)
    found = {"boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0]]), "scores": torch.tensor([0.9]),
             "labels": torch.tensor([1])}
    drawn = draw_detections(image, found, ["a", "b"])
    assert drawn.shape == image.shape and drawn[:, 8, 20].tolist() == [0x3C, 0xB4, 0x4B]  # PALETTE[1] edge
    empty = {k: v[:0] for k, v in found.items()}
    assert draw_detections(image, empty, ["a", "b"]) is image
    grid = tile_grid([drawn, image], tile=32, columns=2)
    assert grid.shape == (3, 32 + 8, 2 * 32 + 12)
    save_png(grid, tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def _boxes(n, step=10.0, size=8.0):
    """``n`` xyxy boxes along the diagonal of a 96 px image."""
    return torch.tensor([[step * i % 88, step * i % 88, step * i % 88 + size, step * i % 88 + size]
                         for i in range(n)]).reshape(-1, 4)


def _panel(found_scores, truth_count, title):
    n = len(found_scores)
    return {"image": torch.full((3, 96, 96), 90, dtype=torch.uint8), "title": title,
            "found": {"boxes": _boxes(n), "scores": torch.tensor(found_scores, dtype=torch.float32),
                      "labels": torch.zeros(n, dtype=torch.long)},
            "truth": {"boxes": _boxes(truth_count, step=7.0), "labels": torch.zeros(truth_count, dtype=torch.long)}}


def test_top_k_is_the_truth_count_clamped():
    assert [top_k(n) for n in (0, 3, 5, 12, 30, 31, 200)] == [5, 5, 5, 12, 30, 30, 30]


def test_draw_predictions_draws_top_k_below_any_old_threshold_with_truth_and_notes(tmp_path):
    from matplotlib.image import imread

    young = [0.01 * i for i in range(1, 26)]  # 25 detections, every one below the old 0.3 threshold
    panels = [_panel(young, 12, "a.jpg"), _panel(young[:3], 0, "b.jpg"), _panel([], 4, "c.jpg"),
              _panel(young, 40, "d.jpg")]
    path = tmp_path / "predictions.png"
    drawn = draw_predictions(panels, ["tree"], path)
    assert [d["title"] for d in drawn] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert [d["k"] for d in drawn] == [12, 5, 5, 30]
    assert [len(d["scores"]) for d in drawn] == [12, 3, 0, 25]  # k boxes, or every candidate when fewer
    assert drawn[0]["scores"] == pytest.approx([0.01 * i for i in range(25, 13, -1)])  # the best first
    assert drawn[0]["captions"][:2] == ["0.25", "0.24"]  # one class: the score alone
    assert [d["truth"] for d in drawn] == [12, 0, 4, 40]  # every ground-truth box, however many
    assert [d["found"] for d in drawn] == [25, 3, 0, 25]
    assert [d["note"] for d in drawn] == [None, None, NO_DETECTIONS, None]
    picture = imread(path)
    assert picture.ndim == 3 and picture.shape[0] > 400 and picture.shape[1] > 1000  # a 1x4 grid of 4.2 in tiles
    assert picture.std() > 0.05  # not a blank canvas


def test_draw_predictions_names_classes_and_says_its_threshold(tmp_path):
    from matplotlib.image import imread

    panel = _panel([0.9, 0.5, 0.2], 2, "x.jpg")
    panel["found"]["labels"] = torch.tensor([1, 0, 1])
    high = _panel([0.2, 0.1], 1, "y.jpg")
    drawn = draw_predictions([panel, high], ["cat", "dog"], tmp_path / "p.png", score_threshold=0.4)
    assert drawn[0]["captions"] == ["dog 0.90", "cat 0.50"] and drawn[0]["found"] == 2
    assert drawn[1]["scores"] == [] and drawn[1]["note"] == "no detections >= 0.4"
    assert imread(tmp_path / "p.png").shape[:2][0] > 0


def test_note_on_image_writes_on_a_copy():
    image = torch.full((3, 80, 120), 200, dtype=torch.uint8)
    noted = note_on_image(image, NO_DETECTIONS)
    assert noted.shape == image.shape and noted.dtype == torch.uint8
    assert (image == 200).all()  # the original is untouched
    assert (noted[:, 40] == 0).any() and (noted[:, 30:50] > 240).any()  # black plate, white letters at the centre
