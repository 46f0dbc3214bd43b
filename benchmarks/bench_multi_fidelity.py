"""Multi-fidelity search at an equal compute budget: flat proxy vs successive halving vs zero-cost prefilter,
each final front judged by its long-budget mAP (hypervolume of long mAP vs FLOPs).

One study file (default ``studies/multi_fidelity_bccd.yaml``) is searched three ways, with the same sampler
and search seed:
- ``flat``: every trial trained at the study's proxy budget, ``--trials`` of them;
- ``halving``: ``search.pruning: successive_halving`` (over non-dominated sorting for mAP vs FLOPs), with
  intermediate evaluations every ``steps / 3`` steps;
- ``prefilter``: ``search.prefilter`` (NASWOT, keep the best third of the candidates scored).
Compute is counted in training-step equivalents, so that runs sharing a machine (or on another machine)
compare fairly (the brief: compare at equal step budgets, not wall-clock): every step trained counts 1,
every evaluation counts ``E`` steps, where ``E`` is the measured ratio of one evaluation's time to one
step's time in this run's flat trials, and one zero-cost scoring counts its measured seconds in the same
unit (the record's zero-cost seconds when present, else 3 steps: one forward for NASWOT, a forward and a
backward each for synflow and grad-norm). ``halving`` and ``prefilter`` add trials in rounds of
``--workers`` until they have spent what ``flat`` spent. Then the final front of each run (proxy mAP vs
FLOPs) is retrained at ``--factor`` times the proxy budget (``scalesearch.retrain.fidelity.retrain``, the three side
by side) and the hypervolume of (long mAP, FLOPs / reference) is computed with one reference point for all
three (1.1x the largest FLOPs on any front, mAP 0). Writes
``reports/benchmarks/multi_fidelity.json``; ``python benchmarks/render.py`` renders it.

    python benchmarks/bench_multi_fidelity.py --trials 12 --workers 4 --set train.device=cuda
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import threading
from pathlib import Path

from render import ROOT, begin_record, save_record

STRATEGIES = {
    "flat": ["search.zero_cost=false"],
    "halving": ["search.zero_cost=false", "search.pruning=successive_halving"],
    "prefilter": ["search.prefilter={score: naswot, keep: 0.34}"],
}
SCORING_STEPS = 3.0  # one zero-cost scoring, in training steps, when its time was not recorded


def run_study(study: Path, run_dir: Path, n_trials: int, overrides: list[str], log: Path) -> None:
    command = [sys.executable, "-m", "scalesearch.cli", "run", str(study), "--quiet", "--n-trials", str(n_trials),
               "--set", f"output={run_dir}", *[x for o in overrides for x in ("--set", o)]]
    with log.open("a") as handle:
        handle.write(" ".join(command) + "\n")
        handle.flush()
        subprocess.run(command, check=True, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)


def records(run_dir: Path) -> list:
    from scalesearch.records import load_records

    return load_records(run_dir) if (run_dir / "trials.json").is_file() else []


def steps_trained(record) -> int:
    if record.state.value == "complete":
        return int(record.steps or 0)
    return max((int(k) for k in (record.intermediate or {})), default=0)


def evaluations(record) -> int:
    return len(record.intermediate or {}) + (record.state.value == "complete")


def step_seconds(flat: list) -> float:
    """Median seconds of one training step in the flat run's complete trials."""
    return statistics.median([r.train_seconds / r.steps for r in flat
                              if r.state.value == "complete" and r.steps and r.train_seconds])


def eval_steps(flat: list) -> float:
    """Seconds of one evaluation / seconds of one step, median over the flat run's complete trials."""
    ratios = [r.eval_seconds / (r.train_seconds / r.steps) for r in flat
              if r.state.value == "complete" and r.steps and r.train_seconds and r.eval_seconds]
    return statistics.median(ratios) if ratios else 0.0


def spent(run: list, unit: dict) -> float:
    """Training-step equivalents a run used: steps + evaluations + zero-cost scorings (module docstring)."""
    total = 0.0
    for r in run:
        scoring = 0.0
        if r.zero_cost:
            seconds = r.zero_cost.get("seconds")
            scoring = seconds / unit["step_seconds"] if seconds else SCORING_STEPS
        total += steps_trained(r) + evaluations(r) * unit["eval_steps"] + scoring
    return total


def side_by_side(jobs: list, errors: list) -> None:
    """Run ``jobs`` in threads (each starts its own processes) and wait; re-raise the first error a job kept."""
    threads = [threading.Thread(target=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="studies/multi_fidelity_bccd.yaml")
    parser.add_argument("--trials", type=int, default=12, help="trials of the flat run (sets the budget)")
    parser.add_argument("--workers", type=int, default=2, help="search workers per strategy (all 3 run at once)")
    parser.add_argument("--factor", type=float, default=4.0, help="long budget / proxy budget")
    parser.add_argument("--retrain-workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="search seed (the same for all three)")
    parser.add_argument("--out", default="runs/bench_multi_fidelity")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="extra study overrides for all three (e.g. train.device=cuda)")
    parser.add_argument("--max-factor", type=float, default=4.0, help="at most this many times --trials per run")
    args = parser.parse_args()

    from scalesearch import pareto
    from scalesearch.config import load_study
    from scalesearch.retrain.fidelity import retrain

    study = (ROOT / args.study).resolve()
    config = load_study(study, args.overrides)
    steps = config.train_config.steps
    out = (ROOT / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "runs.log"
    common = [*args.overrides, f"search.seed={args.seed}", f"search.workers={args.workers}"]
    STRATEGIES["halving"] = [*STRATEGIES["halving"], f"train.eval_every={steps // 3}"]
    record = begin_record("multi_fidelity", study=args.study, trials=args.trials, workers=args.workers,
                          factor=args.factor, seed=args.seed, overrides=args.overrides, proxy_steps=steps)
    dirs = {name: out / name for name in STRATEGIES}

    flat_done = threading.Event()
    budget: dict[str, float] = {}
    errors: list[BaseException] = []

    def flat() -> None:
        try:
            run_study(study, dirs["flat"], args.trials, [*common, *STRATEGIES["flat"]], log)
            flat_records = records(dirs["flat"])
            budget["eval_steps"] = eval_steps(flat_records)
            budget["step_seconds"] = step_seconds(flat_records)
            budget["steps"] = spent(flat_records, budget)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            flat_done.set()

    def grow(name: str) -> None:
        try:
            n = args.trials
            while True:
                run_study(study, dirs[name], n, [*common, *STRATEGIES[name]], log)
                flat_done.wait()
                if "steps" not in budget:
                    return
                used = spent(records(dirs[name]), budget)
                if used >= 0.97 * budget["steps"] or n >= args.trials * args.max_factor:
                    return
                per_trial = used / max(1, n)
                n += max(1, round((budget["steps"] - used) / per_trial))
                n = min(n, int(args.trials * args.max_factor))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    side_by_side([flat, *(functools.partial(grow, n) for n in ("halving", "prefilter"))], errors)

    fronts = {name: {pareto.group_key(r) for r in pareto.pareto_front(records(d))} for name, d in dirs.items()}
    retrained: dict[str, list] = {}

    def long(name: str) -> None:  # the three fronts are retrained side by side
        try:
            retrained[name] = retrain(dirs[name], top_k=max(2, len(fronts[name])), factor=args.factor,
                                      workers=args.retrain_workers, log=print)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    side_by_side([functools.partial(long, n) for n in dirs], errors)
    results = {}
    for name, run_dir in dirs.items():
        run = records(run_dir)
        long_rows = [row for row in retrained[name] if row.group in fronts[name]]
        results[name] = {
            "trials": len(run),
            "trained": sum(steps_trained(r) > 0 for r in run),
            "complete": sum(r.state.value == "complete" for r in run),
            "pruned": sum(r.state.value == "pruned" for r in run),
            "infeasible": sum(r.state.value == "infeasible" for r in run),
            "steps_spent": round(spent(run, budget), 1),
            "seconds_in_trials": round(sum(r.seconds or 0 for r in run), 1),
            "front": [{"group": row.group, "flops": row.flops, "proxy_map": row.proxy_map,
                       "long_map": row.long_map} for row in long_rows],
        }
    import numpy as np

    # One reference for all three: 1.1x the largest FLOPs on any front, mAP 0; FLOPs scaled by it, so a
    # hypervolume is the share of the (FLOPs / reference, mAP) unit box a front dominates.
    ref_flops = max(p["flops"] for res in results.values() for p in res["front"]) * 1.1
    for res in results.values():
        for axis in ("proxy_map", "long_map"):
            pts = np.array([[p["flops"] / ref_flops, -p[axis]] for p in res["front"]]).reshape(-1, 2)
            res[f"hypervolume_{axis}"] = pareto.hypervolume_2d(pts, (1.0, 0.0))
    record.update(eval_steps=round(budget["eval_steps"], 2), step_seconds=round(budget["step_seconds"], 4),
                  budget_steps=round(budget["steps"], 1),
                  reference={"flops": ref_flops, "map": 0.0}, results=results,
                  space=json.loads(json.dumps(config.model_dump(mode="json")["space"])))
    save_record(record)


if __name__ == "__main__":
    main()
