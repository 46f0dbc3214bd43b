"""Drawing on images: detections (torchvision), notes, and the predictions grid of ``scalesearch train``
(matplotlib: top-k detections with scores over the ground truth), as PNG files. Topology graphs are drawn by
the torch-free ``scalesearch.topology_drawing``.

Compute first, then render: these functions only draw what they are given. Heavy imports (matplotlib,
torch, torchvision, PIL) happen inside the functions that use them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from scalesearch.topology_drawing import PALETTE  # one palette for graphs and boxes

if TYPE_CHECKING:
    from torch import Tensor

DETECTION_COLOR = "#ffd400"  # yellow, solid: a detection, captioned with its score
TRUTH_COLOR = "#ff2bd6"  # magenta, dashed: a ground-truth box (the pair stays apart for red-green colour blindness)
TOP_K_MIN, TOP_K_MAX = 5, 30  # boxes drawn per image: its ground-truth count, clamped to this range
NO_DETECTIONS = "no detections"


def draw_detections(image: Tensor, found: dict[str, Tensor], names: list[str]) -> Tensor:
    """Draw boxes with "name score" captions on a uint8 ``[3, H, W]`` image (one colour per class);
    ``found``: ``boxes`` xyxy in the image's pixels, ``scores``, contiguous ``labels``."""
    from torchvision.utils import draw_bounding_boxes

    if len(found["boxes"]) == 0:
        return image
    labels = found["labels"].tolist()
    captions = [f"{names[c]} {s:.2f}" for c, s in zip(labels, found["scores"].tolist())]
    colors = [PALETTE[c % len(PALETTE)] for c in labels]
    width = max(1, round(max(image.shape[1:]) / 256))
    return draw_bounding_boxes(image, found["boxes"], captions, colors=colors, width=width)


def note_on_image(image: Tensor, text: str) -> Tensor:
    """A copy of a uint8 ``[3, H, W]`` image with ``text`` written white on black at its centre (e.g. "no
    detections", so that an image with nothing drawn on it is never mistaken for an unprocessed one)."""
    import numpy as np
    import torch
    from PIL import Image, ImageDraw, ImageFont

    pil = Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())
    draw = ImageDraw.Draw(pil)
    size = max(10, round(min(pil.size) / 16))
    try:
        font = ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1: one fixed-size bitmap font
        font = ImageFont.load_default()
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    pad = max(2, size // 4)
    left, top = (pil.width - (x1 - x0)) / 2, (pil.height - (y1 - y0)) / 2
    draw.rectangle((left - pad, top - pad, left + x1 - x0 + pad, top + y1 - y0 + pad), fill=(0, 0, 0))
    draw.text((left - x0, top - y0), text, fill=(255, 255, 255), font=font)
    return torch.from_numpy(np.array(pil)).permute(2, 0, 1)


def tile_grid(images: list[Tensor], tile: int = 320, columns: int = 4) -> Tensor:
    """uint8 ``[3, H, W]`` images, each resized to fit a ``tile`` px square (aspect kept), in a grid."""
    import torch
    from torchvision.utils import make_grid

    from scalesearch.data import transforms as T

    tiles = []
    for image in images:
        w, h, _ = T.base_size(image.shape[2], image.shape[1], tile)
        square = torch.zeros(3, tile, tile, dtype=torch.uint8)
        square[:, :h, :w] = T.resize(image, w, h)
        tiles.append(square)
    return make_grid(tiles, nrow=columns, padding=4)


def save_png(image: Tensor, path: Path) -> None:
    """Write a uint8 ``[3, H, W]`` tensor as PNG."""
    from PIL import Image

    Image.fromarray(image.permute(1, 2, 0).contiguous().numpy()).save(path)


def top_k(truth_boxes: int, low: int = TOP_K_MIN, high: int = TOP_K_MAX) -> int:
    """Detections drawn on an image with ``truth_boxes`` ground-truth boxes: that count, clamped to [low, high]."""
    return min(max(truth_boxes, low), high)


def draw_predictions(panels: list[dict], names: list[str], path: str | Path, columns: int = 4,
                     score_threshold: float | None = None, tile_inches: float = 4.2) -> list[dict]:
    """Draw a grid of images, each with its ``top_k`` best-scoring detections (solid yellow, captioned with the
    score, and the class name when there are several classes) over its ground-truth boxes (dashed magenta), as a
    PNG at ``path``. No score threshold unless ``score_threshold`` is given (then the title says which); an image
    left with no detection says so on its tile.

    ``panels``: dicts with ``image`` (uint8 ``[3, H, W]``), ``title``, ``found`` (``boxes`` xyxy in the image's
    pixels, ``scores``, contiguous ``labels``) and ``truth`` (``boxes`` xyxy, ``labels``). Returns, per panel,
    what was drawn: ``title``, ``k``, ``found`` (candidates), ``scores`` and ``captions`` of the drawn
    detections (best first), ``truth`` (ground-truth boxes drawn) and ``note`` (None, or the text on the tile).
    """
    import math

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    columns = max(1, min(columns, len(panels)))
    rows = max(1, math.ceil(len(panels) / columns))
    header = 1.0  # inches above the tiles: the rule, then the legend
    fig = Figure(figsize=(tile_inches * columns, tile_inches * rows + header))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - header / (tile_inches * rows + header),
                        wspace=0.03, hspace=0.16)
    drawn = []
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(rows, columns, i + 1)
        drawn.append(_draw_panel(ax, panel, names, score_threshold))
    for ax in fig.axes[len(panels):]:
        ax.set_axis_off()
    rule = (f"per image: its k best-scoring detections, k = its ground-truth count clamped to "
            f"{TOP_K_MIN}-{TOP_K_MAX}; " + (f"score >= {score_threshold:g}" if score_threshold is not None
                                             else "no score threshold"))
    fig.suptitle(rule, fontsize=10, y=1 - 0.12 / (tile_inches * rows + header))
    legend = [Line2D([], [], color=DETECTION_COLOR, lw=2, label="detection (score)"),
              Line2D([], [], color=TRUTH_COLOR, lw=1.5, ls="--", label="ground truth")]
    fig.legend(handles=legend, loc="upper center", ncol=2, fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.32 / (tile_inches * rows + header)))
    fig.savefig(path, dpi=100)
    return drawn


def _draw_panel(ax, panel: dict, names: list[str], score_threshold: float | None) -> dict:
    from matplotlib.patches import Rectangle

    image, found, truth = panel["image"], panel["found"], panel["truth"]
    ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="antialiased")
    ax.set_xticks([])
    ax.set_yticks([])
    scores = found["scores"].tolist()
    order = sorted(range(len(scores)), key=lambda j: -scores[j])
    if score_threshold is not None:
        order = [j for j in order if scores[j] >= score_threshold]
    k = top_k(len(truth["boxes"]))
    chosen = order[:k]
    width = max(image.shape[1:])
    for x0, y0, x1, y1 in truth["boxes"].tolist():
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=TRUTH_COLOR, lw=1.1, ls=(0, (3, 2)),
                               zorder=2))
    boxes, labels = found["boxes"].tolist(), found["labels"].tolist()
    captions = [(f"{names[labels[j]]} " if len(names) > 1 else "") + f"{scores[j]:.2f}" for j in chosen]
    for j, caption in reversed(list(zip(chosen, captions))):  # the best on top
        x0, y0, x1, y1 = boxes[j]
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=DETECTION_COLOR, lw=1.3, zorder=3))
        ax.text(x0 + width * 0.004, y0 + width * 0.004, caption, fontsize=6.5, color="black", va="top", ha="left",
                zorder=4, clip_on=True,
                bbox=dict(boxstyle="square,pad=0.08", fc=DETECTION_COLOR, ec="none", alpha=0.8))
    note = None
    if not chosen:
        note = NO_DETECTIONS + (f" >= {score_threshold:g}" if score_threshold is not None and scores else "")
        ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", fontsize=13, color="white",
                zorder=5, bbox=dict(boxstyle="round,pad=0.4", fc="black", ec="none", alpha=0.7))
    best = f", best {scores[order[0]]:.2f}" if order else ""
    ax.set_title(f"{panel['title']}\ntop {len(chosen)} of {len(order)} detections{best} · "
                 f"{len(truth['boxes'])} ground truth", fontsize=8)
    return {"title": panel["title"], "k": k, "found": len(order), "scores": [scores[j] for j in chosen],
            "captions": captions, "truth": len(truth["boxes"]), "note": note}
