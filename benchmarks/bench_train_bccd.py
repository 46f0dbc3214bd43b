"""BCCD from scratch: scalesearch's D0-size detector vs effdet 0.4.1 ``efficientdet_d0``, same budget.

Both models see the same batches (one ``CocoDetection`` + seeded loader), the same loop
(``scalesearch.training.train.train_loop``: AdamW, warm-up + cosine, gradient clipping), the same resolution
and batch size, and are scored by the same COCO evaluation. Only the model, its target assignment,
loss and post-processing differ. Writes ``reports/benchmarks/train_bccd.json`` (rendered by
``benchmarks/render.py``). Run under the CPU lock:

    flock /tmp/scalesearch-cpu.lock python benchmarks/bench_train_bccd.py --minutes 10

A smaller ``--minutes`` (or ``--steps``) is recorded with a ``budget_note``: its figures are not the
10-minute ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import torch

from scalesearch.data import CocoDetection, resolve_dataset
from scalesearch.training.evaluate import coco_evaluate
from scalesearch.spec import DetectorSpec
from scalesearch.training.train import TrainConfig, predict_coco, train_and_evaluate, train_loop, train_loader

BCCD = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "bccd"
DEFAULT_MINUTES = 10.0


def effdet_step_loss(bench):
    """``step_loss`` for effdet's DetBenchTrain: targets as padded yxyx boxes and 1-based classes."""

    def step_loss(model, images, targets):
        most = max([len(t["boxes"]) for t in targets] + [1])
        boxes = torch.zeros(len(targets), most, 4)
        classes = torch.full((len(targets), most), -1.0)
        for i, t in enumerate(targets):
            boxes[i, : len(t["boxes"])] = t["boxes"][:, [1, 0, 3, 2]]
            classes[i, : len(t["boxes"])] = t["labels"].float() + 1
        return bench(images, {"bbox": boxes.to(images.device), "cls": classes.to(images.device)})["loss"]

    return step_loss


def effdet_predictor(model, resolution: int):
    """effdet's DetBenchPredict (top-5000, per-image NMS, 100 boxes) in scalesearch's predict format."""
    from effdet.bench import DetBenchPredict

    predict_bench = DetBenchPredict(model).to(next(model.parameters()).device)

    def predict(images):
        out = []
        for row in predict_bench(images):  # [100, 6]: x0 y0 x1 y1 score class(1-based)
            keep = row[:, 4] > 0
            out.append({"boxes": row[keep, :4].clamp(0, resolution), "scores": row[keep, 4],
                        "labels": row[keep, 5].long() - 1})
        return out

    return predict


def run_effdet(train_set, val_set, cfg: TrainConfig, resolution: int, lr: float, progress: bool) -> dict:
    from effdet import create_model

    torch.manual_seed(cfg.seed)
    bench = create_model("efficientdet_d0", bench_task="train", num_classes=train_set.info.num_classes,
                         pretrained_backbone=False, image_size=(resolution, resolution), bench_labeler=True)
    cfg = dataclasses.replace(cfg, channels_last=False, lr=lr)  # effdet as it comes (NCHW)
    loop, model = train_loop(bench, effdet_step_loss(bench), train_loader(train_set, cfg), cfg, progress=progress)
    start = time.perf_counter()
    detections = predict_coco(effdet_predictor(bench.model, resolution), bench, val_set, cfg)
    metrics = coco_evaluate(val_set.coco, detections)
    return {"metrics": metrics, "steps": loop.steps, "train_seconds": loop.seconds,
            "eval_seconds": time.perf_counter() - start,
            "images_per_second": loop.steps * cfg.batch_size / loop.seconds,
            "params": sum(p.numel() for p in bench.model.parameters())}


def run_ours(spec: DetectorSpec, train_set, val_set, cfg: TrainConfig, progress: bool) -> dict:
    result = train_and_evaluate(spec, train_set, val_set, cfg, progress=progress, keep_model=True)
    return {"metrics": result.metrics, "steps": result.steps, "train_seconds": result.train_seconds,
            "eval_seconds": result.eval_seconds, "images_per_second": result.images_per_second,
            "params": sum(p.numel() for p in result.model.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES, help="training budget per model")
    parser.add_argument("--steps", type=int, help="a step budget instead (for profiling)")
    parser.add_argument("--data", default=str(BCCD))
    parser.add_argument("--resolution", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-2, help="our peak lr (tuned on the synthetic quickstart run)")
    parser.add_argument("--effdet-lr", type=float, default=2e-3, help="effdet's peak lr (the reference recipe)")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--scale-min", type=float, default=1.0, help="scale jitter range low (1.0 = flip only)")
    parser.add_argument("--scale-max", type=float, default=1.0)
    parser.add_argument("--ema", action="store_true")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--only", choices=("ours", "effdet"))
    parser.add_argument("--json", help="write both results here")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--no-record", action="store_true", help="do not write reports/benchmarks/train_bccd.json")
    args = parser.parse_args()
    from render import begin_record, save_record

    cfg = TrainConfig(steps=args.steps, seconds=None if args.steps else args.minutes * 60, batch_size=args.batch_size,
                      lr=args.lr, warmup_steps=args.warmup, ema=args.ema, num_workers=args.workers,
                      scale_range=(args.scale_min, args.scale_max))
    # Same class count, backbone, widths and depths as effdet's efficientdet_d0 (PyTorch padding).
    spec = DetectorSpec(resolution=args.resolution, num_classes=3, name="d0-pytorch")
    train_set = CocoDetection(*resolve_dataset(args.data, "train"), args.resolution, train=True,
                              scale_range=cfg.scale_range, flip_prob=cfg.flip_prob, seed=cfg.seed)
    val_set = CocoDetection(*resolve_dataset(args.data, "val"), args.resolution, train=False)
    print(f"torch threads {torch.get_num_threads()}; {len(train_set)} train / {len(val_set)} val images; "
          f"{args.resolution} px, batch {args.batch_size}, budget "
          f"{f'{args.steps} steps' if args.steps else f'{args.minutes:g} min'}", flush=True)
    budget = f"{args.steps} steps" if args.steps else f"{args.minutes:g} min"
    record = begin_record("train_bccd", data=str(args.data), train_images=len(train_set), val_images=len(val_set),
                          resolution=args.resolution, batch_size=args.batch_size, budget=budget, lr=args.lr,
                          effdet_lr=args.effdet_lr, warmup=args.warmup, ema=args.ema,
                          scale_range=[args.scale_min, args.scale_max], only=args.only)
    if args.steps or args.minutes != DEFAULT_MINUTES:
        record["budget_note"] = (f"{budget} per model instead of the default {DEFAULT_MINUTES:g} min (to fit the "
                                 "time box): these figures are not the 10-minute ones")
    results = {}
    for name in ("ours", "effdet"):
        if args.only and name != args.only:
            continue
        load_start = [round(x, 2) for x in os.getloadavg()]
        if name == "ours":
            results[name] = run_ours(spec, train_set, val_set, cfg, not args.quiet)
        else:
            results[name] = run_effdet(train_set, val_set, cfg, args.resolution, args.effdet_lr, not args.quiet)
        r = results[name]
        r["load_average"] = {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]}  # per side
        print(f"{name:7s} params {r['params']:,}  steps {r['steps']}  train {r['train_seconds']:.0f} s  "
              f"{r['images_per_second']:.2f} img/s  mAP {r['metrics']['map']:.3f}  AP50 {r['metrics']['map50']:.3f}  "
              f"(eval {r['eval_seconds']:.0f} s)", flush=True)
    if len(results) == 2:
        ratio = results["ours"]["images_per_second"] / results["effdet"]["images_per_second"]
        print(f"throughput ratio ours/effdet at equal architecture: {ratio:.2f}x; "
              f"mAP {results['ours']['metrics']['map']:.3f} vs {results['effdet']['metrics']['map']:.3f}")
    if args.json:
        payload = {"config": dataclasses.asdict(cfg), "effdet_lr": args.effdet_lr, "results": results}
        Path(args.json).write_text(json.dumps(payload, indent=1))
    if not args.no_record:
        record["config"] = {k: v for k, v in dataclasses.asdict(cfg).items() if _plain(v)}
        record["results"] = results
        if len(results) == 2:
            record["throughput_ratio"] = round(ratio, 3)
        save_record(record)


def _plain(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, list, tuple))


if __name__ == "__main__":
    main()
