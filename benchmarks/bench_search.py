"""Search engine benchmark: framework overhead per trial, and hypervolume of TPE vs random search.

1. Overhead: one study with real cost counting and real (tiny) proxy training. Per trial, the time
   spent outside ``train_and_evaluate`` (its training + evaluation seconds) is the framework's:
   sampling, spec resolution, cost counting, storage writes, ``trials.json``. Printed in seconds and
   as a share of the trial's wall time, with cost counting shown apart (it is cached per spec).
2. Hypervolume (mAP vs log10 FLOPs, ``scalesearch.pareto.study_hypervolume``) after N trials for the
   default sampler (TPE) and Optuna's ``RandomSampler``, same space, same sampler seeds.

Writes ``reports/benchmarks/search.json`` (rendered by ``benchmarks/render.py``). Run under the CPU lock:
``flock /tmp/scalesearch-cpu.lock python benchmarks/bench_search.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from render import begin_record, save_record

SPACE = {
    "phi": {"low": -3.5, "high": -1.5},
    "topology": ["fpn", "panet", "bifpn"],
    "fusion": ["sum", "fast"],
    "resolution": 128,
    "anchor_scale": 2.0,  # 128 px halves the 256 px synthetic objects (see studies/quickstart.yaml)
}


def study(name: str, out: Path, sampler: str, seed: int, trials: int, steps: int):
    from scalesearch.config import validate_study

    return validate_study({
        "name": name, "seed": 0, "dataset": {"path": "synthetic"}, "space": SPACE,
        "budgets": {"flops": "0.15B"}, "objectives": ["maximize map", "minimize flops"],
        "train": {"steps": steps, "batch_size": 8, "lr": 0.004, "warmup_steps": 5},
        "search": {"sampler": sampler, "seed": seed, "n_trials": trials}, "output": str(out / name),
    })


def timed_run(config) -> tuple[list[dict], float, float]:
    """Run a study in-process (``run_study``, one worker); returns (records from its ``trials.json``, wall seconds
    of the whole run: opening the study, every trial, the records and ``meta.json``, seconds in count_cost)."""
    import scalesearch.measure.cost
    from scalesearch.search.runner import run_study

    counted = [0.0]
    original = scalesearch.measure.cost.count_cost

    def count_cost(spec, cache_dir=None):
        start = time.perf_counter()
        try:
            return original(spec, cache_dir=cache_dir)
        finally:
            counted[0] += time.perf_counter() - start

    scalesearch.measure.cost.count_cost = count_cost
    try:
        run_dir = config.output_dir()
        start = time.perf_counter()
        run_study(config, run_dir, command="bench_search", progress=False)  # one worker: in this process
        wall = time.perf_counter() - start
    finally:
        scalesearch.measure.cost.count_cost = original
    records = json.loads((run_dir / "trials.json").read_text())  # the run folder's records, as a report reads them
    return records, wall, counted[0]


def overhead(out: Path, trials: int, steps: int) -> dict:
    records, wall, cost_s = timed_run(study("overhead", out, "tpe", 0, trials, steps))
    trained = [r for r in records if r.get("train_seconds") is not None]
    inside = sum(r["train_seconds"] + r["eval_seconds"] for r in trained)
    framework = wall - inside
    print(f"overhead: {len(records)} trials ({len(trained)} trained), loop wall {wall:.1f} s, "
          f"train+eval {inside:.1f} s")
    print(f"  framework time per trial {framework / len(records):.2f} s = {100 * framework / wall:.1f}% of trial time")
    print(f"  of which cost counting {cost_s / len(records):.2f} s/trial (first count of each spec; cached after), "
          f"the rest (sampler, storage, records) {(framework - cost_s) / len(records):.3f} s/trial")
    return {"trials": len(records), "trained": len(trained), "loop_seconds": round(wall, 2),
            "train_eval_seconds": round(inside, 2), "framework_seconds_per_trial": round(framework / len(records), 3),
            "framework_share": round(framework / wall, 4), "cost_seconds_per_trial": round(cost_s / len(records), 3),
            "rest_seconds_per_trial": round((framework - cost_s) / len(records), 3)}


def hypervolumes(out: Path, trials: int, steps: int, seeds: list[int]) -> dict:
    from scalesearch.pareto import study_hypervolume

    ref = 2 * 0.15e9  # twice the budget, as scalesearch.pareto.reference_flops does
    result = {"reference_flops": ref, "samplers": {}}
    for sampler in ("tpe", "random"):
        runs = []
        for seed in seeds:
            records, wall, _ = timed_run(study(f"hv-{sampler}-{seed}", out, sampler, seed, trials, steps))
            runs.append({"seed": seed, "hypervolume": study_hypervolume(records, ref), "trials": len(records),
                         "seconds": round(wall, 1)})
            print(f"  {sampler:6s} seed {seed}: hypervolume {runs[-1]['hypervolume']:.5f} after {len(records)} trials "
                  f"({wall:.0f} s)")
        mean = statistics.mean(r["hypervolume"] for r in runs)
        result["samplers"][sampler] = {"mean": mean, "runs": runs}
        print(f"hypervolume after {trials} trials, {sampler}: mean {mean:.5f} over seeds {seeds}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12, help="trials per study (less is noted in the record)")
    parser.add_argument("--steps", type=int, default=60, help="proxy training steps per trial")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="sampler seeds for the hypervolume part")
    parser.add_argument("--out", type=Path, help="folder for the runs (default: a temporary folder)")
    parser.add_argument("--skip-hypervolume", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_search-"))
    record = begin_record("search", trials=args.trials, steps=args.steps, seeds=args.seeds, space=SPACE,
                          budget_flops=0.15e9, batch_size=8, lr=0.004, data="built-in synthetic default")
    defaults = {"trials": 12, "steps": 60, "seeds": [0, 1]}
    changed = {k: v for k, v in (("trials", args.trials), ("steps", args.steps), ("seeds", args.seeds))
               if v != defaults[k]}
    if changed or args.skip_hypervolume:
        record["budget_note"] = ("smaller than the default budget (" + ", ".join(
            f"{k} {v} instead of {defaults[k]}" for k, v in changed.items()) +
            ("; hypervolume part skipped" if args.skip_hypervolume else "") +
            "): these figures are not the default-budget ones")
    record["overhead"] = overhead(out, args.trials, args.steps)
    if not args.skip_hypervolume:
        record["hypervolume"] = hypervolumes(out, args.trials, args.steps, args.seeds)
    save_record(record)


if __name__ == "__main__":
    main()
