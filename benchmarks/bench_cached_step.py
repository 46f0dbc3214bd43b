"""Seconds per training step at one architecture: cached frozen backbone vs live frozen vs fine-tuned backbone.

One EfficientDet-Lite0-sized detector (preset ``lite0`` with its ImageNet weights, ``--resolution`` 256 px,
``--batch-size`` 8) on BCCD, trained by ``train.train_loop`` with the study recipe (AdamW, warm-up + cosine, EMA,
channels-last). The arms differ only in what the backbone costs:

- ``cached``: its float16 maps are read from ``scalesearch.training.feature_cache`` (the ``cached`` estimator);
  the feature network and heads train;
- ``frozen``: it runs forward at every step (BatchNorm as loaded, no gradient); the same parts train;
- ``finetuned``: the whole detector trains (the ``train`` estimator on a pretrained study).

A step is timed from one loss call to the next (loading, forward, backward, optimiser, EMA), after ``--warmup``
untimed steps; the arms alternate over ``--rounds`` rounds and each reports its median step. Building the cache is
timed apart (once per study and resolution). Writes ``reports/benchmarks/cached_step.json``. Run under the CPU lock:

    flock /tmp/scalesearch-cpu.lock python benchmarks/bench_cached_step.py --threads 2

Smoke check (no record, seconds on the synthetic set):

    python benchmarks/bench_cached_step.py --smoke --out /tmp/cached_step.json
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BCCD = ROOT / ".." / "shared" / "datasets" / "bccd"
ARMS = ("cached", "frozen", "finetuned")


def _timed(step_loss, stamps: list[tuple[float, float]]):
    """``step_loss`` that records (wall, CPU) seconds at each call: consecutive calls bound one whole step."""

    def timed(model, images, targets):
        stamps.append((time.perf_counter(), time.process_time()))
        return step_loss(model, images, targets)

    return timed


def _live_parts(spec, train_set, cfg, frozen: bool):
    from scalesearch.model import build_detector
    from scalesearch.model.detector import part_seed
    from scalesearch.training import train

    model = build_detector(spec, init_seed=cfg.seed)
    if frozen:  # with cfg.freeze_backbone_bn, train_loop keeps its BatchNorm in eval mode
        model.backbone.requires_grad_(False)
    torch.manual_seed(part_seed(cfg.seed, "train"))
    model = model.to(memory_format=torch.channels_last)
    return model, train.detector_loss(spec), train.train_loader(train_set, cfg)


def run_arm(arm: str, spec, data, train_set, cfg, steps: int, warmup: int) -> dict:
    """One arm for ``warmup + steps`` steps: (wall, CPU) seconds of each timed step."""
    from scalesearch.training import feature_cache as fc
    from scalesearch.training import train

    cfg = dataclasses.replace(cfg, steps=warmup + steps + 1, freeze_backbone_bn=arm == "frozen")
    if arm == "cached":
        _, model, step_loss, loader = fc.training_parts(spec, data, cfg)
    else:
        model, step_loss, loader = _live_parts(spec, train_set, cfg, frozen=arm == "frozen")
    stamps: list[tuple[float, float]] = []
    train.train_loop(model, _timed(step_loss, stamps), loader, cfg, progress=False)
    walls = [b[0] - a[0] for a, b in itertools.pairwise(stamps)][warmup:]
    cpus = [b[1] - a[1] for a, b in itertools.pairwise(stamps)][warmup:]
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"wall": walls, "cpu": cpus, "trained_params": trained}


def summarise(runs: list[dict], batch_size: int) -> dict:
    walls = [s for r in runs for s in r["wall"]]
    median = statistics.median(walls)
    return {"step_seconds": round(median, 4), "round_medians": [round(statistics.median(r["wall"]), 4) for r in runs],
            "cpu_seconds_per_step": round(statistics.median([s for r in runs for s in r["cpu"]]), 4),
            "images_per_second": round(batch_size / median, 2), "timed_steps": len(walls),
            "trained_params": runs[0]["trained_params"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(BCCD))
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the target is stated for 2 cores)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per arm and round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before them")
    parser.add_argument("--rounds", type=int, default=2, help="the arms alternate this many times")
    parser.add_argument("--smoke", action="store_true", help="seconds: synthetic data, 2 steps, 1 round, no record")
    parser.add_argument("--out", help="write the record here instead of reports/benchmarks/cached_step.json")
    args = parser.parse_args()
    if args.smoke:
        from scalesearch.data import synthetic_dataset

        args.data = str(synthetic_dataset(num_train=16, num_val=8, image_size=128))
        args.resolution, args.steps, args.warmup, args.rounds = 128, 2, 1, 1
        args.out = args.out or os.devnull

    from render import begin_record, save_or_write

    from scalesearch.data import resolve_dataset
    from scalesearch.scaling import preset
    from scalesearch.training import feature_cache as fc
    from scalesearch.training import train

    torch.set_num_threads(args.threads)
    cfg = train.TrainConfig(batch_size=args.batch_size, seed=0)
    pairs = resolve_dataset(args.data, "train"), resolve_dataset(args.data, "val")
    spec = preset("lite0").replace(resolution=args.resolution, weights="package")
    train_set = train.make_dataset(pairs[0], "train", spec, cfg, train=True)
    spec = spec.replace(num_classes=train_set.info.num_classes)
    from scalesearch.machine import portable_path

    record = begin_record("cached_step", data=portable_path(args.data), spec=spec.to_dict(), resolution=args.resolution,
                          batch_size=args.batch_size, threads=args.threads, steps=args.steps, warmup=args.warmup,
                          rounds=args.rounds, train_images=len(train_set))
    data = fc.FeatureCache(None).get(spec, *pairs, cfg)
    record["cache"] = {"bytes": data.bytes, "build_seconds": round(data.seconds, 1), "dtype": "float16",
                       "rows": data.images * len(data.flips) + len(data.val.targets)}
    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    for round_ in range(args.rounds):
        for arm in ARMS:
            runs[arm].append(run_arm(arm, spec, data, train_set, cfg, args.steps, args.warmup))
            print(f"round {round_ + 1} {arm:9s} {statistics.median(runs[arm][-1]['wall']):.3f} s/step", flush=True)
    arms = {arm: summarise(found, args.batch_size) for arm, found in runs.items()}
    record["arms"] = arms
    record["speedup"] = {f"{arm}_over_cached": round(arms[arm]["step_seconds"] / arms["cached"]["step_seconds"], 2)
                         for arm in ("frozen", "finetuned")}
    print(f"cache {fc.gib(data.bytes)} built in {data.seconds:.0f} s; per step: "
          + ", ".join(f"{arm} {a['step_seconds']:.3f} s" for arm, a in arms.items())
          + f"; fine-tuned / cached = {record['speedup']['finetuned_over_cached']:.2f}x")
    save_or_write(record, args.out)


if __name__ == "__main__":
    main()
