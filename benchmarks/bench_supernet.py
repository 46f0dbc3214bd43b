"""Does inherited accuracy tell the truth? The ``supernet`` estimator against the long-budget reference.

On the points of a finished run whose ``fidelity.json`` holds the paired long-budget reference (default
``reports/runs/fidelity_bccd_paired``: 12 BCCD architectures, 4 topologies x widths 32-48 x 1-2 repeats, 256 px,
Lite0's pretrained backbone), one supernet per topology is trained over an elastic space that holds those points and
more (``--widths``, ``--repeats``, ``--heads``, ``--resolutions``; the study's recipe, ``--steps`` sandwich steps, the
supernet settings of ``search.supernet``), through the estimator a study uses (``SupernetEstimator.prepare_run``:
feature cache, training, checkpoints under ``--cache-dir``, so a rerun resumes). Each reference point is then scored
by inheritance (extract, batch-norm recalibration, COCO evaluation), and ``--sample`` more sub-networks drawn from
the space are scored to time a trial.

Written to ``reports/benchmarks/supernet.json`` (page by ``render_supernet.py``): Kendall tau of inherited mAP
against the reference's mean over its shared seeds, with a 95% bootstrap interval, the reference's ceiling tau and
tau / ceiling, top-1 regret (the same statistics as ``bench_estimators.py``); CPU-hours of supernet training; CPU- and
wall-seconds per scored sub-network and trials per hour; CPU-seconds per candidate with the training amortised over
the space's sub-networks. Run under the CPU lock:

    flock /tmp/scalesearch-cpu.lock python benchmarks/bench_supernet.py --threads 2

Smoke check (synthetic data, a few steps, no record): ``python benchmarks/bench_supernet.py --smoke``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench_estimators import BOOTSTRAP, RUN, _finite, ceiling_tau, load_points, reference_means, row_stats, spec_of

ROOT = Path(__file__).resolve().parents[1]
SMOKE_SIZE = 128


def supernet_study(run: Path, args: argparse.Namespace) -> Any:
    """The run's study with the supernet estimator over the elastic space of ``args`` (the topologies and fixed
    fields of the run's space kept; ``phi`` dropped: the elastic values are given directly)."""
    raw = yaml.safe_load((run / "study.yaml").read_text())
    space = {k: v for k, v in raw["space"].items() if k != "phi"}
    space.update(fpn_channels=args.widths, fpn_repeats=args.repeats, head_repeats=args.heads,
                 resolution=args.resolutions)
    raw["space"] = space
    raw["budgets"] = {}
    raw["search"] = {**{k: v for k, v in raw.get("search", {}).items() if k in ("seed",)},
                     "estimator": "supernet", "sampler": "random", "threads_per_worker": args.threads,
                     "supernet": {"steps": args.steps, "calib_images": args.calib_images}}
    raw.pop("output", None)
    if args.smoke:
        raw["dataset"] = {"path": str(args.smoke_data)}
        raw["train"] = {**raw.get("train", {}), "warmup_steps": 0, "device": "cpu"}
    return study_copy(raw)


def study_copy(raw: dict[str, Any]) -> Any:
    """A study edited from a run's study.yaml (``raw``), validated from a temporary copy: its relative dataset path
    (relative to the repository root, as the committed studies write it) made absolute first."""
    from scalesearch.config import load_study

    data = raw.get("dataset", {}).get("path")
    if data and not Path(data).is_absolute():
        raw["dataset"]["path"] = str((ROOT / data).resolve())
    path = Path(tempfile.mkdtemp(prefix="supernet-study-")) / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_study(path)


def supernet_estimator(config: Any, cache_dir: Path, progress: bool = False) -> Any:
    """The ``supernet`` estimator of ``config`` on its data, its features and supernets under ``cache_dir``
    (prepared: nothing trained yet; each supernet is trained, or read back, on first use)."""
    from scalesearch.search.estimators import StudyContext, StudyData
    from scalesearch.search.estimators.supernet import SupernetEstimator
    from scalesearch.search.objective import dataset_pairs, num_classes

    train_pair, val_pair = dataset_pairs(config.dataset)
    data = StudyData(train_pair, val_pair, num_classes(train_pair[1]))
    estimator = SupernetEstimator(StudyContext(config, data, cache_dir, progress=progress))
    estimator.prepare()
    return estimator


def score(estimator: Any, spec: Any) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    found = estimator.estimate(spec, 0)
    return {"map": found.metrics.get("map"), "cpu": round(time.process_time() - cpu, 3),
            "wall": round(time.perf_counter() - wall, 3)}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=RUN, help="run folder: trials.json, fidelity.json, study.yaml")
    parser.add_argument("--steps", type=int, default=600, help="sandwich steps per supernet (4 x the 150-step proxy)")
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 40, 48, 56, 64])
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--heads", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[256])
    parser.add_argument("--calib-images", type=int, default=128)
    parser.add_argument("--sample", type=int, default=40, help="extra sub-networks scored to time a trial")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bootstrap", type=int, default=BOOTSTRAP)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR,
                        help="features and supernet checkpoints (shared by reruns: a rerun resumes)")
    parser.add_argument("--smoke", action="store_true", help="synthetic data, 4 steps, 3 points, no record")
    parser.add_argument("--out", help="write the record here instead of reports/benchmarks/supernet.json")
    return parser


CACHE_DIR = Path(tempfile.gettempdir()) / "scalesearch-supernet"


def smoke_settings(args: argparse.Namespace, data: Path) -> None:
    """``--smoke``: the synthetic set at ``data``, a few steps, one thread, a fresh cache folder."""
    args.smoke, args.smoke_data = True, data
    args.steps, args.sample, args.bootstrap, args.threads, args.calib_images = 4, 3, 50, 1, 8
    args.resolutions = [SMOKE_SIZE]
    args.cache_dir = Path(tempfile.mkdtemp(prefix="supernet-smoke-"))


def prepared(args: argparse.Namespace) -> tuple[Any, Any, Any, dict[str, dict], Any, int]:
    """The study, its data, the ``SupernetEstimator`` with every supernet trained (or read back from
    ``args.cache_dir``: a rerun with the same settings trains nothing), each supernet's training summary, the
    elastic space and its number of sub-networks over all topologies."""
    from scalesearch.model.supernet import ElasticSpace

    config = supernet_study(args.run, args)
    estimator = supernet_estimator(config, args.cache_dir, progress=True)
    data = estimator.study.data
    estimator.prepare_run()
    training = {t: {"steps": r.steps, "seconds": round(r.seconds, 1), "cpu_seconds": round(r.cpu_seconds, 1),
                    "resumed_from": r.resumed_from, "final_loss": r.losses[-1] if r.losses else None}
                for t, r in estimator.trained.items()}
    space = ElasticSpace(**estimator.plan.values)
    return config, data, estimator, training, space, space.size * len(estimator.plan.bases)


def inside_points(points: list[dict[str, Any]], estimator: Any, space: Any, classes: int,
                  smoke: bool) -> tuple[dict[str, Any], list[str]]:
    """The points whose spec lies in a supernet's space (group -> spec) and the groups of those that do not."""
    from scalesearch.spec import DetectorSpec

    inside, outside = {}, []
    for p in points:
        spec = spec_of(DetectorSpec.from_dict(p["spec"]), classes, smoke)
        choice = {k: getattr(spec, k) for k in space.__dataclass_fields__}
        if spec.topology in estimator.plan.bases and space.contains(choice):
            inside[p["group"]] = spec
        else:
            outside.append(p["group"])
    return inside, outside


def main() -> None:
    args = parser().parse_args()
    if args.smoke:
        from scalesearch.data import synthetic_dataset

        smoke_settings(args, synthetic_dataset(num_train=16, num_val=8, image_size=SMOKE_SIZE))
        args.out = args.out or os.devnull
    args.run = args.run.resolve()

    import numpy as np
    import torch

    from render import begin_record, save_or_write

    from scalesearch.fidelity import load_fidelity
    from scalesearch.machine import portable_path

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    record = begin_record("supernet", run=portable_path(args.run), data=None, threads=args.threads,
                          bootstrap=args.bootstrap, steps=args.steps, calib_images=args.calib_images)
    config, data, estimator, training, space, sub_networks = prepared(args)
    record["data"] = portable_path(config.dataset.path or "synthetic")
    print(f"supernets ready in {time.perf_counter() - start:.0f} s: {training}", flush=True)

    points = load_points(args.run, 3 if args.smoke else None)
    inside, outside = inside_points(points, estimator, space, data.num_classes, args.smoke)
    scored = {g: score(estimator, spec) for g, spec in inside.items()}
    for g, s in scored.items():
        print(f"{g}: inherited mAP {s['map']:.4f} ({s['cpu']:.1f} CPU-s)", flush=True)
    rng = np.random.default_rng(0)
    base = next(iter(inside.values()))
    extra = []
    for _ in range(args.sample):
        topology = sorted(estimator.plan.bases)[int(rng.integers(len(estimator.plan.bases)))]
        extra.append(score(estimator, base.replace(topology=topology, **space.sample(rng))))

    reference_rows = load_fidelity(args.run)
    groups = list(inside)
    ref_seeds, reference = reference_means(reference_rows, groups)
    ceiling = ceiling_tau(reference_rows, list(reference), ref_seeds)
    stats = row_stats({g: s["map"] for g, s in scored.items()}, reference, ceiling, args.bootstrap)
    per_trial = [s["cpu"] for s in [*scored.values(), *extra]]
    wall_trial = [s["wall"] for s in [*scored.values(), *extra]]
    train_cpu = sum(t["cpu_seconds"] for t in training.values())
    record.update(
        space={k: list(v) for k, v in estimator.plan.values.items()}, topologies=sorted(estimator.plan.bases),
        sub_networks=sub_networks, training=training, training_cpu_hours=round(train_cpu / 3600, 3),
        points=groups, outside=outside, inherited={g: s["map"] for g, s in scored.items()},
        reference={"seeds": ref_seeds, "maps": reference, "ceiling_tau": _finite(ceiling)}, **stats,
        trial_cpu_seconds=round(statistics.median(per_trial), 3), trial_wall_seconds=round(statistics.median(wall_trial), 3),
        trials_per_hour=round(3600 / statistics.median(wall_trial)),
        cpu_per_candidate=round(statistics.median(per_trial) + train_cpu / sub_networks, 3), sampled=len(extra),
        settings={k: v for k, v in config.search.supernet.model_dump().items()},
    )
    print(json.dumps({k: record[k] for k in ("tau", "low", "high", "ratio", "regret", "training_cpu_hours",
                                             "trial_cpu_seconds", "trials_per_hour", "cpu_per_candidate")}))
    save_or_write(record, args.out)


if __name__ == "__main__":
    main()
