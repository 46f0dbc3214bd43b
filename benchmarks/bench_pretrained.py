"""Pretrained Lite backbones: the fine-tuning recipe, capacity ranking, and effdet with the same weights.

Phase 1 (recipe sweep, one seed, equal step budget): on BCCD and on the natural-photo check set
(``benchmarks/natural_set.py``), EfficientDet-Lite0 from scratch at lr {2e-3, 5e-3, 1e-2} and from the
ImageNet weights at lr {2e-3, 5e-3, 1e-2} x backbone lr multiplier {1, 0.1} x backbone BatchNorm
{trained, frozen}, plus warm-up 100 (instead of 30) for three of them; effdet's ``tf_efficientdet_lite0``
from scratch at the same three lrs on BCCD. The recipe chosen is the pretrained setting with the best
mean rank over the two datasets (ties: higher mean mAP); the lr sweep of that setting is shared with effdet.
Phase 2: pretrained lite0 vs lite1 with the chosen recipe, 3 seeds each, on BCCD; effdet pretrained with
the chosen backbone settings at the three lrs. ``--speed`` adds CPU throughput of ours vs effdet (same
weights, same loop, sequential, 2 threads) measured in this process.

Each job is one ``train_loop`` run through ``scalesearch.training.train`` (ours) or effdet's bench (theirs) on the
same ``CocoDetection`` batches (mean = std = 0.5 inputs, the Lite weights' convention). Results stream to
``--out`` as JSON lines; the final record goes to ``reports/benchmarks/pretrained.json`` and
``python benchmarks/render.py`` writes the Markdown beside it. Long runs: under the CPU lock, or
``--device cuda --jobs 12`` on a GPU machine (accuracy at equal steps carries over; speeds do not).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

from scalesearch.machine import portable_command

ROOT = Path(__file__).resolve().parents[1]
BCCD = ROOT / ".." / "shared" / "datasets" / "bccd"
RECORD = ROOT / "reports" / "benchmarks" / "pretrained.json"
LRS = (2e-3, 5e-3, 1e-2)


def recipe_jobs(steps: int, datasets: dict[str, str]) -> list[dict]:
    """Phase 1: the recipe sweep on every dataset and effdet's scratch lr sweep on BCCD."""
    base = {"phase": 1, "preset": "lite0", "steps": steps, "seed": 0, "warmup": 30, "mult": 1.0, "frozen_bn": False}
    jobs = []
    for data in datasets:
        jobs += [{**base, "data": data, "model": "ours", "weights": "none", "lr": lr} for lr in LRS]
        for lr, mult, frozen in itertools.product(LRS, (1.0, 0.1), (False, True)):
            jobs.append({**base, "data": data, "model": "ours", "weights": "package", "lr": lr, "mult": mult,
                         "frozen_bn": frozen})
        for lr, mult in ((1e-2, 1.0), (1e-2, 0.1), (5e-3, 1.0)):
            jobs.append({**base, "data": data, "model": "ours", "weights": "package", "lr": lr, "mult": mult,
                         "warmup": 100})
    jobs += [{**base, "data": "bccd", "model": "effdet", "weights": "none", "lr": lr} for lr in LRS]
    return jobs


def recipe_key(job: dict) -> tuple:
    return job["lr"], job["mult"], job["frozen_bn"], job["warmup"]


def choose_recipe(results: list[dict], datasets: list[str]) -> dict:
    """The pretrained setting with the best mean rank over ``datasets`` (rank 1 = highest mAP)."""
    table: dict[tuple, dict[str, float]] = {}
    for r in results:
        if r["phase"] == 1 and r["model"] == "ours" and r["weights"] == "package" and "map" in r:
            table.setdefault(recipe_key(r), {})[r["data"]] = r["map"]
    complete = {k: v for k, v in table.items() if all(d in v for d in datasets)}
    ranks = {k: 0.0 for k in complete}
    for d in datasets:
        for rank, key in enumerate(sorted(complete, key=lambda k: -complete[k][d]), start=1):
            ranks[key] += rank / len(datasets)
    best = min(complete, key=lambda k: (ranks[k], -sum(complete[k].values())))
    lr, mult, frozen, warmup = best
    return {"lr": lr, "mult": mult, "frozen_bn": frozen, "warmup": warmup, "mean_rank": ranks[best],
            "map": complete[best]}


def capacity_jobs(steps: int, recipe: dict, seeds=(1, 2, 3)) -> list[dict]:
    """Phase 2: lite0 vs lite1 (chosen recipe, 3 seeds) and effdet pretrained at the shared lrs."""
    knobs = {k: recipe[k] for k in ("lr", "mult", "frozen_bn", "warmup")}
    jobs = [{"phase": 2, "data": "bccd", "model": "ours", "preset": p, "weights": "package", "steps": steps,
             "seed": s, **knobs} for p in ("lite0", "lite1") for s in seeds]
    jobs += [{"phase": 2, "data": "bccd", "model": "effdet", "preset": "lite0", "weights": "package",
              "steps": steps, "seed": 0, **knobs, "lr": lr} for lr in LRS]
    return jobs


# ------------------------------------------------------------------------------------------ one job
def run_job(job: dict, paths: dict[str, str], device: str, threads: int, progress: bool = False) -> dict:
    """Train and evaluate one job; returns the job with ``map``, ``map50``, ``steps``, ``images_per_second``."""
    import torch

    from scalesearch.scaling import preset
    from scalesearch.training.train import TrainConfig, make_dataset

    torch.set_num_threads(threads)
    spec = preset(job["preset"]).replace(weights=job["weights"])
    cfg = TrainConfig(steps=job["steps"], batch_size=8, lr=job["lr"], warmup_steps=job["warmup"], seed=job["seed"],
                      device=device, backbone_lr_mult=job["mult"], freeze_backbone_bn=job["frozen_bn"])
    data = paths[job["data"]]
    train_set = make_dataset(data, "train", spec, cfg, train=True)
    val_set = make_dataset(data, "val", spec, cfg, train=False)
    spec = spec.replace(num_classes=train_set.info.num_classes)
    start = time.perf_counter()
    try:
        run = run_ours if job["model"] == "ours" else run_effdet
        out = run(spec, train_set, val_set, cfg, progress)
    except Exception as exc:  # one failed job must not sink the sweep; the record says why
        return {**job, "error": f"{type(exc).__name__}: {exc}"}
    return {**job, **out, "wall_seconds": round(time.perf_counter() - start, 1), "device": device}


def run_ours(spec, train_set, val_set, cfg, progress: bool) -> dict:
    from scalesearch.training.train import train_and_evaluate

    r = train_and_evaluate(spec, train_set, val_set, cfg, progress=progress)
    return {"map": r.metrics["map"], "map50": r.metrics["map50"], "steps": r.steps,
            "images_per_second": round(r.images_per_second, 3), "final_loss": r.losses[-1]}


def run_effdet(spec, train_set, val_set, cfg, progress: bool) -> dict:
    """effdet's ``tf_efficientdet_lite0`` (its anchors, labeler, loss and NMS) through our loop and data."""
    import torch
    from effdet import create_model

    from bench_train_bccd import effdet_predictor, effdet_step_loss
    from scalesearch.training.evaluate import coco_evaluate
    from scalesearch.model.weights import load_backbone_weights
    from scalesearch.training.train import predict_coco, train_loader, train_loop

    torch.manual_seed(cfg.seed)
    size = (spec.resolution, spec.resolution)
    bench = create_model("tf_efficientdet_lite0", bench_task="train", num_classes=spec.num_classes,
                         pretrained_backbone=False, image_size=size, bench_labeler=True)
    load_backbone_weights(bench.model.backbone, spec)  # the very weights ours loads (no-op from scratch)
    bench = bench.to(cfg.device).to(memory_format=torch.channels_last)
    if not spec.pretrained:
        cfg = dataclasses.replace(cfg, backbone_lr_mult=1.0, freeze_backbone_bn=False)
    loop, _ = train_loop(bench, effdet_step_loss(bench), train_loader(train_set, cfg), cfg, progress=progress)
    detections = predict_coco(effdet_predictor(bench.model, spec.resolution), bench, val_set, cfg)
    m = coco_evaluate(val_set.coco, detections)
    return {"map": m["map"], "map50": m["map50"], "steps": loop.steps,
            "images_per_second": round(loop.steps * cfg.batch_size / loop.seconds, 3), "final_loss": loop.losses[-1]}


# --------------------------------------------------------------------------------------- the sweep
def _worker(args):
    job, paths, device, threads = args
    return run_job(job, paths, device, threads)


def run_all(jobs: list[dict], paths, device: str, workers: int, threads: int, sink: Path) -> list[dict]:
    """Run ``jobs`` in ``workers`` processes; each finished job is appended to ``sink`` at once."""
    import multiprocessing as mp

    out = []
    ctx = mp.get_context("spawn")  # CUDA cannot be forked
    with ctx.Pool(workers) as pool, sink.open("a") as f:
        for i, r in enumerate(pool.imap_unordered(_worker, [(j, paths, device, threads) for j in jobs]), 1):
            out.append(r)
            f.write(json.dumps(r) + "\n")
            f.flush()
            print(f"[{i}/{len(jobs)}] {_line(r)}", flush=True)
    return out


def _line(r: dict) -> str:
    what = (f"{r['model']} {r['preset']} {r['data']} w={r['weights']} lr={r['lr']:g} mult={r['mult']:g} "
            f"bn={'frozen' if r['frozen_bn'] else 'train'} wu={r['warmup']} seed={r['seed']}")
    return f"{what}: " + (f"mAP {r['map']:.4f}" if "map" in r else r.get("error", "?"))


def speed(steps: int, data: str, threads: int) -> dict:
    """CPU img/s of ours and effdet (pretrained lite0, same loop and batches), one after the other."""
    job = {"phase": 0, "data": "bccd", "preset": "lite0", "weights": "package", "steps": steps, "seed": 0,
           "warmup": 5, "lr": 5e-3, "mult": 1.0, "frozen_bn": False}
    ours = run_job({**job, "model": "ours"}, {"bccd": data}, "cpu", threads)
    theirs = run_job({**job, "model": "effdet"}, {"bccd": data}, "cpu", threads)
    return {"steps": steps, "threads": threads, "ours_images_per_second": ours["images_per_second"],
            "effdet_images_per_second": theirs["images_per_second"],
            "ratio": round(ours["images_per_second"] / theirs["images_per_second"], 3)}


def cli_check(data: str, out: Path, steps: int = 400) -> dict:
    """``scalesearch train DATA --preset lite0 [--pretrained] --steps 400`` as a user types it (defaults)."""
    import subprocess

    found = {}
    for name, extra in (("scratch", []), ("pretrained", ["--pretrained"])):
        folder = out / f"cli_{name}"
        argv = ["scalesearch", "train", data, "--preset", "lite0", *extra, "--steps", str(steps), "--quiet",
                "--out", str(folder)]
        subprocess.run(argv, check=True)
        summary = json.loads((folder / "metrics.json").read_text())
        found[name] = {"command": portable_command(argv[:-2]), "map": summary["metrics"]["map"],
                       "map50": summary["metrics"]["map50"], "train_seconds": summary["train_seconds"]}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps per job (equal for all)")
    parser.add_argument("--bccd", default=str(BCCD))
    parser.add_argument("--natural", help="natural-photo set folder (default: build it with natural_set.py)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, default=1, help="parallel training processes")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per process")
    parser.add_argument("--out", default="runs/bench_pretrained", help="folder for the streamed job results")
    parser.add_argument("--record", default=str(RECORD), help="the JSON record to write")
    parser.add_argument("--cpu-checks", type=int, metavar="STEPS",
                        help="instead of the sweep: add to the record the CPU speed of ours vs effdet (STEPS steps "
                             "each) and the README's 400-step `scalesearch train --preset lite0` with and without "
                             "--pretrained (run under the CPU lock)")
    args = parser.parse_args()
    if args.cpu_checks:
        record = json.loads(Path(args.record).read_text())
        record["cpu_speed"] = speed(args.cpu_checks, args.bccd, args.threads)
        record["cli_check"] = cli_check(args.bccd, Path(args.out))
        Path(args.record).write_text(json.dumps(record, indent=1))
        print(f"wrote {args.record}: {record['cpu_speed']} {record['cli_check']}")
        return

    sys.path.insert(0, str(Path(__file__).parent))
    if args.natural is None:
        from natural_set import natural_dataset

        args.natural = str(natural_dataset())
    paths = {"bccd": args.bccd, "natural": args.natural}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sink = out / "jobs.jsonl"
    start = time.time()
    phase1 = recipe_jobs(args.steps, paths)
    results = run_all(phase1, paths, args.device, args.jobs, args.threads, sink)
    recipe = choose_recipe(results, list(paths))
    print(f"chosen recipe: {recipe}", flush=True)
    phase2 = capacity_jobs(args.steps, recipe)
    results += run_all(phase2, paths, args.device, args.jobs, args.threads, sink)
    record = {"benchmark": "pretrained", "command": portable_command(sys.argv), "steps": args.steps, "batch_size": 8,
              "device": args.device, "machine": _machine(args.device), "seconds": round(time.time() - start),
              "recipe": recipe, "jobs": sorted(results, key=lambda r: json.dumps(r, sort_keys=True))}
    Path(args.record).parent.mkdir(parents=True, exist_ok=True)
    Path(args.record).write_text(json.dumps(record, indent=1))
    print(f"wrote {args.record}")


def _machine(device: str) -> dict:
    import torch

    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else None
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "gpu": gpu,
            "torch": torch.__version__, "python": platform.python_version()}


if __name__ == "__main__":
    main()
