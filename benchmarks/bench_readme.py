"""The README's two commands, as a newcomer types them, on a fresh clone: timed, and written as a record.

The commands are read from README.md itself (the two ```bash blocks under "Quick start"), so the record always
measures what the README says. Each runs in a fresh ``git clone`` of this repository's HEAD (its own virtual
environment, installed from scratch), in one ``bash`` process with every ``&&`` step timed on its own, so the
record separates the install from the job. The test command can be run several times in a row
in its clone (``--test-runs 3``: the suite must be green every time; the first run installs from scratch). Writes ``reports/benchmarks/readme.json``; the
README's figures are generated from it by ``python benchmarks/render.py``. Run alone, under the CPU lock:

    flock /tmp/scalesearch-cpu.lock python benchmarks/bench_readme.py --test-runs 3
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from render import ROOT, begin_record, save_record

STEP = "@@step"


def readme_commands(readme: Path = ROOT / "README.md") -> dict[str, str]:
    """The quick start's two commands: ``{"quickstart": ..., "tests": ...}`` (the first two ```bash blocks of the
    "Quick start" section; the one that runs pytest is the test command)."""
    text = readme.read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]
    if len(blocks) < 2:
        raise SystemExit("README.md: the Quick start section must hold two ```bash blocks")
    tests = next(b for b in blocks if "pytest" in b)
    quick = next(b for b in blocks if b is not tests)
    return {"quickstart": quick, "tests": tests}


def timed_script(command: str) -> str:
    """``command`` as a bash script that stops at the first failing ``&&`` step and prints each step's start
    and end times (one shell, so ``. .venv/bin/activate`` carries over)."""
    lines = ["set -o pipefail"]
    for i, step in enumerate(s.strip() for s in command.split("&&")):
        lines += [f'echo "{STEP} {i} start $(date +%s.%N)"', f"{step} || exit $?",
                  f'echo "{STEP} {i} end $(date +%s.%N)"']
    return "\n".join(lines) + "\n"


def run_command(command: str, clone: Path, log: Path) -> dict:
    """Run one README command in ``clone``; wall time of the whole and of each step, exit code, output tail."""
    steps = [s.strip() for s in command.split("&&")]
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(["bash", "-c", timed_script(command)], cwd=clone, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    text = log.read_text(errors="replace")
    marks: dict[tuple[int, str], float] = {}
    for m in re.finditer(rf"^{STEP} (\d+) (start|end) ([\d.]+)$", text, flags=re.M):
        marks[int(m.group(1)), m.group(2)] = float(m.group(3))
    timed = [{"step": step, "seconds": round(marks[i, "end"] - marks[i, "start"], 1) if (i, "end") in marks else None}
             for i, step in enumerate(steps) if (i, "start") in marks]
    # The clone's folder is this machine's: lines keep paths relative to the clone (``./scalesearch/...``).
    tail = [line.replace(f"{clone}/", "./") for line in text.splitlines() if not line.startswith(STEP)][-15:]
    return {"command": command, "returncode": proc.returncode, "seconds": round(seconds, 1), "steps": timed,
            "output_tail": tail}


def pytest_summary(tail: list[str]) -> dict:
    """Counts and time from pytest's closing line (``N passed, M deselected in S s (h:mm:ss)``)."""
    line = next((x for x in reversed(tail) if re.search(r"\d+ (passed|failed|error)", x) and " in " in x), "")
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?|xfailed)", line)}
    secs = re.search(r" in ([\d.]+)s", line)
    return {"summary_line": line.strip("= "), "counts": counts, "pytest_seconds": float(secs.group(1)) if secs else None}


def quickstart_result(clone: Path) -> dict:
    """The quickstart run's best trial, read from the run folder it wrote (``runs/quickstart``)."""
    run = clone / "runs" / "quickstart"
    trials = json.loads((run / "trials.json").read_text())
    meta = json.loads((run / "meta.json").read_text())
    done = [t for t in trials if t["state"] == "complete"]
    best = max(done, key=lambda t: t["map50"])
    states: dict[str, int] = {}
    for t in trials:
        states[t["state"]] = states.get(t["state"], 0) + 1
    return {"trials": len(trials), "states": states, "best": {k: best[k] for k in ("number", "map", "map50", "flops")},
            "run_start": meta.get("start"), "run_end": meta.get("end")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test-runs", type=int, default=1, help="run the test command this many times in a row "
                        "(0: not at all)")
    parser.add_argument("--skip-quickstart", action="store_true", help="time the test command only")
    parser.add_argument("--keep", action="store_true", help="keep the existing record's runs of the command(s) "
                        "not run now (each run keeps its own commit and start time)")
    args = parser.parse_args()
    commands = readme_commands()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    record = begin_record("readme", commit=commit, commands=commands, test_runs=args.test_runs)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    record["uncommitted_changes"] = bool(dirty)  # the clone has HEAD only: say when the tree had more
    with tempfile.TemporaryDirectory(prefix="scalesearch-readme-") as tmp:
        runs = []
        jobs = ([] if args.skip_quickstart else ["quickstart"]) + ["tests"] * args.test_runs
        for i, name in enumerate(jobs):
            # the quickstart in a fresh clone; the test command in another, run --test-runs times in a row in it
            # (the first run installs from scratch, the next ones find the environment it made)
            clone = Path(tmp) / name
            if not clone.exists():
                subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            # the sibling shared/ folder (datasets, REFERENCE.md) sits beside the clone as it does beside ROOT
            shared = ROOT.parent / "shared"
            if shared.is_dir() and not (clone.parent / "shared").exists():
                (clone.parent / "shared").symlink_to(shared)
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            print(f"[{i + 1}/{len(jobs)}] {name}: {commands[name]}", flush=True)
            result = {"name": name, "commit": commit, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                      **run_command(commands[name], clone, Path(tmp) / f"log{i}.txt")}
            after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            result["peak_rss_mb"] = round(after / 1024) if after > before else None  # None: not above an earlier run
            if name == "tests":
                result.update(pytest_summary(result["output_tail"]))
            elif result["returncode"] == 0:
                result.update(quickstart_result(clone))
            print(f"    exit {result['returncode']}, {result['seconds']} s: {result.get('summary_line', '')}",
                  flush=True)
            runs.append(result)
    ran = {r["name"] for r in runs}
    old = ROOT / "reports" / "benchmarks" / "readme.json"
    if args.keep and old.exists():
        runs = [r for r in json.loads(old.read_text())["runs"] if r["name"] not in ran] + runs
    record["runs"] = runs
    save_record(record)
    return 0 if all(r["returncode"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
