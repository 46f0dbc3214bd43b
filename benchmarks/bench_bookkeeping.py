"""Bookkeeping per trial across a long study: does trial 2,000 cost the framework as much as trial 1?

A study of ``--trials`` (2,000) trials, random sampler, one worker, in this process (``run_study``), with the
proxy training and the cost count replaced by instant fakes, no zero-cost scores and no latency: what is
left of each trial is the framework's own work (sampling, the trial's storage, spec resolution, the records
written to ``trials.json``, the progress). A trial's bookkeeping seconds = the time from one fake training's
start to the next one's. The record keeps every trial's seconds and compares the mean of the last 100 with
the first 100 (target: within 1.5x).

``--label before`` / ``--label after`` keep two measurements side by side in one record
(``reports/benchmarks/bookkeeping.json``): run ``before`` with the code of an older commit (a
``git worktree``, this script copied in) and ``after`` with this one, one after the other under the CPU lock:
``flock /tmp/scalesearch-cpu.lock python benchmarks/bench_bookkeeping.py --label after``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from render import FOLDER, begin_record, save_record

SPACE = {"phi": {"low": -3.5, "high": -1.5}, "topology": ["fpn", "panet", "bifpn"], "fusion": ["sum", "fast"],
         "resolution": 128}
WINDOW = 100


def study(out: Path, trials: int):
    from scalesearch.config import validate_study

    return validate_study({
        "name": "bookkeeping", "seed": 0, "dataset": {"path": "synthetic"}, "space": SPACE,
        "objectives": ["maximize map", "minimize flops"], "train": {"steps": 1, "batch_size": 2},
        "search": {"sampler": "random", "seed": 0, "n_trials": trials, "zero_cost": False},
        "output": str(out / "bookkeeping"),
    })


def install_fakes(starts: list[float]) -> None:
    """Instant cost and training: made-up numbers that grow with the spec; each training start is timed."""
    import scalesearch.measure.cost
    import scalesearch.training.train
    from scalesearch.measure.cost import Cost
    from scalesearch.training.train import TrainResult

    def count_cost(spec, cache_dir=None):
        flops = int(spec.fpn_channels * spec.fpn_repeats * spec.resolution ** 2 * 10 * spec.width_multiplier)
        return Cost(flops // 50, flops, {"backbone": (0, flops), "fpn": (0, 0), "class_net": (0, 0),
                                         "box_net": (0, 0)})

    def train_and_evaluate(spec, train_data, val_data, cfg, *, on_eval=None, progress=True, **_):
        starts.append(time.perf_counter())
        base = 0.1 + spec.fpn_channels / 1000 + 0.001 * cfg.seed
        metrics = {"map": base, "map50": 2 * base, "map75": base / 2, "map_small": 0.0, "map_medium": base,
                   "map_large": base}
        return TrainResult(metrics=metrics, steps=1, train_seconds=0.0, eval_seconds=0.0, images_per_second=1.0)

    scalesearch.measure.cost.count_cost = count_cost
    scalesearch.training.train.train_and_evaluate = train_and_evaluate


def measure(trials: int, out: Path) -> dict:
    from scalesearch.search.runner import run_study

    starts: list[float] = []
    install_fakes(starts)
    config = study(out, trials)
    start = time.perf_counter()
    run_study(config, config.output_dir(), command="bench_bookkeeping", progress=False)
    wall = time.perf_counter() - start
    per_trial = [b - a for a, b in zip(starts, starts[1:])]
    first, last = statistics.mean(per_trial[:WINDOW]), statistics.mean(per_trial[-WINDOW:])
    rows = len(json.loads((config.output_dir() / "trials.json").read_text()))
    print(f"{rows} trials in {wall:.1f} s: bookkeeping {first * 1000:.1f} ms/trial over the first {WINDOW}, "
          f"{last * 1000:.1f} ms over the last {WINDOW} ({last / first:.2f}x)")
    return {"trials": rows, "wall_seconds": round(wall, 2), "first_ms": round(first * 1000, 2),
            "last_ms": round(last * 1000, 2), "ratio": round(last / first, 3),
            "per_trial_ms": [round(s * 1000, 2) for s in per_trial]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--label", default="after", help="which side of the record this run is (before / after)")
    parser.add_argument("--out", type=Path, help="folder for the run (default: a temporary folder)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_bookkeeping-"))
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    previous = FOLDER / "bookkeeping.json"
    sides = json.loads(previous.read_text()).get("sides", {}) if previous.is_file() else {}
    record = begin_record("bookkeeping", trials=args.trials, window=WINDOW, space=SPACE, sampler="random",
                          workers=1, target_ratio=1.5)
    sides[args.label] = {"commit": commit, **measure(args.trials, out)}
    record["sides"] = sides
    save_record(record)


if __name__ == "__main__":
    main()
