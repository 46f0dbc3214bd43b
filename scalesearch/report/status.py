"""What a study's report says about the run itself: trial states, crashes and early stops, the command,
the machine and the wall time, from the records and ``meta.json``."""

from __future__ import annotations

import datetime as dt
import shlex
from collections import Counter
from typing import Any

from scalesearch.records import CORE_KEYS, State, TrialRecord, machine_cores, run_wall_seconds
from scalesearch.report.runs import Run


def state_counts(run: Run) -> dict[str, int]:
    """How many trials ended in each state, in ``State``'s order; only the states that occur."""
    counts = Counter(r.state for r in run.records)
    return {s.value: counts[s] for s in State if counts[s]}


def status_lines(run: Run) -> list[str]:
    """Plain sentences on what the study holds: empty, crashed, all infeasible, one trial."""
    counts = state_counts(run)
    n, good = len(run.records), len(run.feasible)
    if n == 0:
        return ["**This study is empty: it recorded no trials** (it stopped or crashed before the first one)."]
    lines = [f"{n} trial{'s' if n != 1 else ''}: " + ", ".join(f"{c} {s}" for s, c in counts.items()) + "."]
    if counts.get("running"):
        lines.append(
            f"**The study crashed or is still running:** {counts['running']} trial(s) are recorded as `running`; "
            "rerunning `scalesearch run` on this folder resumes it."
        )
    lines += _stopped_early(run)
    if good == 0:
        lines.append("**No trial is feasible and complete, so there is no Pareto front** "
                     + _why_none(run.records))
    elif good == 1:
        lines.append("**Only one trial completed:** its front is that single point.")
    return lines


def _stopped_early(run: Run) -> list[str]:
    """A line when fewer trials finished than ``search.n_trials`` asks for (a crash or an interrupt)."""
    if run.config is None:
        return []
    search = run.config.search
    wanted, finished = search.n_trials, sum(r.state.counted for r in run.records)
    if finished >= wanted:
        return []
    # An exhaustive sampler (grid, brute force) stops at grid size x seeds, which may be below n_trials.
    from scalesearch.search.samplers import SAMPLERS

    exhaustive = search.sampler in SAMPLERS.choices() and SAMPLERS.get(search.sampler).exhaustive
    cap = f" (the {search.sampler} sampler may stop earlier, at grid size x seeds)" if exhaustive else ""
    return [f"**The study stopped early:** {finished} of the {wanted} trials `search.n_trials` asks for finished{cap}; "
            "rerunning `scalesearch run` on this folder resumes it."]


def _why_none(records: list[TrialRecord]) -> str:
    reasons = Counter(str(r.reason) for r in records if r.reason)
    if not reasons:
        return "(no failure reason was recorded)."
    top = "; ".join(f"{reason} ({count}x)" for reason, count in reasons.most_common(3))
    return f"(reasons recorded: {top})."


def command_line(run: Run) -> str:
    command = run.meta.get("command")
    if isinstance(command, list):
        return shlex.join(str(c) for c in command)
    return str(command) if command else "(not recorded in meta.json)"


def machine_line(run: Run) -> str:
    """``machine`` from meta.json: a string, or a dict (cpu / platform, cores, host, python)."""
    machine = run.meta.get("machine")
    if not isinstance(machine, dict):
        return str(machine) if machine else "(not recorded in meta.json)"
    cpu = machine.get("cpu") or machine.get("processor") or machine.get("platform") or "unknown CPU"
    cores = machine_cores(machine)
    shown = {"cpu", "processor", "platform", *CORE_KEYS}
    extra = "; ".join(f"{k} {v}" for k, v in machine.items() if k not in shown and v is not None)
    return f"{cpu}" + (f", {cores} cores" if cores else "") + (f" ({extra})" if extra else "")


def _time(value: Any) -> dt.datetime | None:
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
    return None


def _meta_time(meta: dict[str, Any], stem: str) -> dt.datetime | None:
    for key in (stem, f"{stem}_time", f"{stem}ed", f"{stem}ed_at", f"{stem}_at"):
        if key in meta:
            return _time(meta[key])
    return None


def run_time_line(run: Run) -> str:
    """Wall time from meta.json: of the run, or of all its calls (``records.run_wall_seconds``) and then the last one
    when it was resumed; trial seconds beside it."""
    start, end = _meta_time(run.meta, "start"), _meta_time(run.meta, "end") or _meta_time(run.meta, "finish")
    trial_s = sum(float(r.seconds or 0.0) for r in run.records)
    trials = f"{trial_s / 60:.1f} min summed over trials"
    runs = run.meta.get("runs")
    first = _time(run.meta.get("first_start"))
    resumed = f"; {runs} runs since {first:%Y-%m-%d %H:%M} UTC" if isinstance(runs, int) and runs > 1 and first else ""
    total = run_wall_seconds(run.meta) if resumed else None
    if start and end:
        wall, span = (end - start).total_seconds() / 60, f"{start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC"
        if total is not None:  # the whole first, then the last call
            return (f"{total / 60:.1f} min wall in {runs} calls since {first:%Y-%m-%d %H:%M} UTC (the last "
                    f"{wall:.1f} min, {span}); {trials}")
        return f"{wall:.1f} min wall ({span}){resumed}; {trials}"
    if total is not None:
        resumed += f", {total / 60:.1f} min wall in all"
    if start:
        return f"started {start:%Y-%m-%d %H:%M} UTC, no end time recorded (crashed or still running){resumed}; {trials}"
    return f"no start/end time in meta.json; {trials}"
