"""Trials per hour on one machine: 1 worker x all threads vs N workers x 1 thread, and two `scalesearch run`
commands started by hand side by side (each would take every core without the core registry).

Each scenario runs ``studies/quickstart.yaml`` (the built-in synthetic data, pretrained Lite0 at 128 px) with
``--trials`` trials of ``--steps`` steps into a fresh folder and times the whole command(s), start-up included;
trials per hour = finished trials / wall time. The sampler is random with a fixed seed, so every scenario
trains the same kinds of points. Writes ``reports/benchmarks/workers.json``; ``python benchmarks/render.py``
renders it. Run alone, under the CPU lock:

    flock /tmp/scalesearch-cpu.lock python benchmarks/bench_workers.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from render import ROOT, begin_record, save_record


def run(out: Path, trials: int, steps: int, workers: int, threads: int | None) -> subprocess.Popen:
    sets = [f"search.n_trials={trials}", f"train.steps={steps}", "search.sampler=random", "search.seed=0",
            f"search.workers={workers}"]
    if threads:
        sets.append(f"search.threads_per_worker={threads}")
    command = [sys.executable, "-m", "scalesearch.cli", "run", "studies/quickstart.yaml", "--quiet",
               "--out", str(out), *[x for s in sets for x in ("--set", s)]]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(folder: Path) -> list:
    from scalesearch.records import load_records

    return [r for r in load_records(folder) if r.state.value == "complete"]


def scenario(name: str, runs: list[tuple[int, int | None]], trials: int, steps: int, scratch: Path) -> dict:
    folders = [scratch / f"{name}-{i}" for i in range(len(runs))]
    started = time.perf_counter()
    procs = [run(folder, trials, steps, workers, threads) for folder, (workers, threads) in zip(folders, runs)]
    errors = [p.communicate()[1] for p in procs]
    seconds = time.perf_counter() - started
    if any(p.returncode for p in procs):
        raise SystemExit(f"{name}: a run failed:\n" + "\n".join(errors))
    records = [r for folder in folders for r in finished(folder)]
    shares = [line for err in errors for line in err.splitlines() if "other scalesearch process" in line]
    return {"scenario": name, "runs": [{"workers": w, "threads_per_worker": t} for w, t in runs],
            "trials": len(records), "seconds": round(seconds, 1),
            "trials_per_hour": round(3600 * len(records) / seconds, 1),
            "train_seconds_per_trial": round(sum(r.train_seconds or 0 for r in records) / len(records), 2),
            "threads_recorded": sorted({r.threads for r in records if r.threads is not None}),
            "sharing_messages": shares}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6, help="trials per scenario (split between hand-started runs)")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    record = begin_record("workers", trials=args.trials, steps=args.steps, cores=cores, study="studies/quickstart.yaml")
    scratch = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    try:
        half = max(1, args.trials // 2)
        results = [
            scenario(f"1x{cores}", [(1, cores)], args.trials, args.steps, scratch),
            scenario(f"{cores}x1", [(cores, 1)], args.trials, args.steps, scratch),
            scenario("2 runs by hand", [(1, None), (1, None)], half, args.steps, scratch),
        ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base = results[0]["trials_per_hour"]
    for r in results:
        r["vs_one_worker"] = round(r["trials_per_hour"] / base, 3)
        print(f"{r['scenario']}: {r['trials']} trials in {r['seconds']} s = {r['trials_per_hour']} trials/h "
              f"({r['vs_one_worker']}x), threads {r['threads_recorded']}")
    record["results"] = results
    save_record(record)


if __name__ == "__main__":
    main()
