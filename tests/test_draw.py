"""Drawings: a topology graph and detections, as PNG files."""

import torch

from scalesearch.draw import draw_detections, draw_topology, save_png, tile_grid
from scalesearch.topology import get_topology


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
