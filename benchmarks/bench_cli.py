"""CPU time of the command line's start: ``scalesearch --help`` and ``scalesearch trials RUN``.

Each command runs ``--repeats`` times in a fresh child process; the figure is the child's user + system CPU
time (``resource.getrusage(RUSAGE_CHILDREN)`` around the run), median over the repeats, beside the wall time.
``python -c "import torch"`` is measured the same way as a reference: what any command that imports torch
pays before doing anything. Writes ``reports/benchmarks/cli_startup.json`` (rendered by
``benchmarks/render.py``). Run under the CPU lock:

    flock /tmp/scalesearch-cpu.lock python benchmarks/bench_cli.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from render import FOLDER, begin_record

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 0.5  # issue 10: both commands under 0.5 s CPU on the 2-core development machine


def cpu_seconds(argv: list[str]) -> tuple[float, float]:
    """(user + system CPU seconds, wall seconds) of one run of ``argv`` in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def measure(argv: list[str], repeats: int) -> dict[str, float | list[float] | bool]:
    cpu_seconds(argv)  # warm the file cache: the first run of a session reads every .pyc from disk
    runs = [cpu_seconds(argv) for _ in range(repeats)]
    cpu = [round(c, 3) for c, _ in runs]
    return {"cpu_s_median": round(statistics.median(cpu), 3), "cpu_s_runs": cpu,
            "wall_s_median": round(statistics.median(w for _, w in runs), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per command (median reported)")
    parser.add_argument("--run", default="reports/runs/quickstart", help="run folder for `scalesearch trials`")
    parser.add_argument("--record", type=Path, default=FOLDER / "cli_startup.json")
    args = parser.parse_args()
    exe = shutil.which("scalesearch") or f"{sys.executable} -m scalesearch"
    commands = {"scalesearch --help": [exe, "--help"], f"scalesearch trials {args.run}": [exe, "trials", args.run]}
    record = begin_record("cli_startup", repeats=args.repeats, limit_cpu_s=LIMIT_S)
    results = {}
    for name, argv in commands.items():
        results[name] = measure(argv, args.repeats)
        results[name]["under_limit"] = results[name]["cpu_s_median"] < LIMIT_S
        print(f"{name}: {results[name]['cpu_s_median']:.3f} s CPU (median of {args.repeats})")
    results['python -c "import torch" (reference)'] = measure([sys.executable, "-c", "import torch"], args.repeats)
    record["results"] = results
    record["seconds"] = round(time.perf_counter() - record.pop("_t0"), 1)
    record["load_average"]["end"] = [round(x, 2) for x in os.getloadavg()]
    args.record.parent.mkdir(parents=True, exist_ok=True)
    args.record.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.record}")


if __name__ == "__main__":
    main()
