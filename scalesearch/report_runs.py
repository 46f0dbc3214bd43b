"""Run folders as the report sees them: records, meta.json, study.yaml, and a one-line status.

A run folder (docs/design.md) holds ``study.yaml``, ``meta.json`` and ``trials.json``; the report
uses nothing else, so it works whichever backend ran the study and on folders copied elsewhere.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalesearch import pareto
from scalesearch.errors import UserError

STATES = ("complete", "infeasible", "failed", "pruned", "running")


@dataclass
class Run:
    """One study's run folder, loaded."""

    path: Path
    name: str
    records: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def feasible(self) -> list[dict[str, Any]]:
        return pareto.feasible(self.records)

    @property
    def params_budget(self) -> float | None:
        value = (self.config.get("budgets") or {}).get("params")
        return None if value is None else _count(value, "budgets.params")

    @property
    def baselines(self) -> frozenset[int]:
        """Trial numbers of the paper's own scaling rule, run by the study as reference points.

        A record is one when it says so (``baseline: true``, ``rule: paper``, or an enqueued point's
        ``label`` that names the paper, e.g. ``paper rule``), or when the study
        searched the rule's coefficients (``ScalingRule`` fields in the records, not all equal to the
        paper's) and this record's coefficients are exactly the paper's (Sec. 3.3 / 4.2).
        """
        from scalesearch.scaling import PAPER_RULE

        paper = dataclasses.asdict(PAPER_RULE)
        keys = [k for k in paper if any(k in r for r in self.records)]
        searched = any(r.get(k) != paper[k] for r in self.records for k in keys if k in r)
        return frozenset(
            r["number"] for r in self.records
            if r.get("baseline") is True or r.get("rule") == "paper" or "paper" in str(r.get("label") or "").lower()
            or (searched and keys and all(r.get(k) == paper[k] for k in keys))
        )

    @property
    def budgets(self) -> list[float]:
        """The FLOPs budgets of the study (``budgets.flops``, a number or a list), then any in the records."""
        raw = (self.config.get("budgets") or {}).get("flops")
        values = raw if isinstance(raw, list) else [] if raw is None else [raw]
        values += [r["budget_flops"] for r in self.records if r.get("budget_flops") is not None]
        return sorted({_count(v, "budgets.flops") for v in values})


def _count(value: Any, key: str) -> float:
    """A budget from study.yaml: 2.5e9 or '2.5B' (``scalesearch.config.parse_count``)."""
    from scalesearch.config import parse_count

    try:
        return parse_count(value)
    except ValueError as exc:
        raise UserError(f"study.yaml {key}: {exc}, but got {value!r}") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def _load_records(run_dir: Path) -> list[dict[str, Any]]:
    """Records through ``scalesearch.search.records.load_records`` (Optuna storage, else trials.json);
    a folder with neither holds no trial yet (a study that stopped before its first one)."""
    from scalesearch.search.records import load_records, storage_url_of

    if storage_url_of(run_dir) is None and not (run_dir / "trials.json").is_file():
        return []
    records = load_records(run_dir)
    if not isinstance(records, list):
        kind = type(records).__name__
        raise UserError(f"{run_dir / 'trials.json'}: must hold a list of trial records, but got {kind}")
    return sorted(records, key=lambda r: r.get("number", 0))


def load_run(path: str | Path) -> Run:
    """Load a run folder; UserError when the path is not one."""
    import yaml

    run_dir = Path(path)
    if not run_dir.is_dir():
        raise UserError(f"run folder {str(path)!r}: must be an existing directory")
    markers = [run_dir / n for n in ("trials.json", "meta.json", "study.yaml")]
    if not any(p.exists() for p in markers):
        raise UserError(f"run folder {str(path)!r}: holds none of trials.json, meta.json, study.yaml")
    meta = _read_json(run_dir / "meta.json") if (run_dir / "meta.json").exists() else {}
    config = yaml.safe_load((run_dir / "study.yaml").read_text()) if (run_dir / "study.yaml").exists() else {}
    config = config if isinstance(config, dict) else {}
    name = str(config.get("name") or meta.get("study") or run_dir.resolve().name)
    return Run(run_dir, name, _load_records(run_dir), meta, config)


def state_counts(run: Run) -> dict[str, int]:
    counts = Counter(str(r.get("state")) for r in run.records)
    return {s: counts[s] for s in (*STATES, *sorted(set(counts) - set(STATES))) if counts[s]}


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
    search = run.config.get("search") or {}
    wanted = search.get("n_trials")
    finished = sum(r.get("state") in ("complete", "infeasible", "failed", "pruned") for r in run.records)
    if not isinstance(wanted, int) or finished >= wanted:
        return []
    # The grid sampler stops at grid size x seeds, which may be below n_trials.
    cap = " (the grid sampler may stop earlier, at grid size x seeds)" if search.get("sampler") == "grid" else ""
    return [f"**The study stopped early:** {finished} of the {wanted} trials `search.n_trials` asks for finished{cap}; "
            "rerunning `scalesearch run` on this folder resumes it."]


def _why_none(records: list[dict[str, Any]]) -> str:
    reasons = Counter(str(r.get("reason")) for r in records if r.get("reason"))
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
    """``machine`` from meta.json: a string, or a dict (cpu / platform, cpus, host, python)."""
    machine = run.meta.get("machine")
    if not isinstance(machine, dict):
        return str(machine) if machine else "(not recorded in meta.json)"
    cpu = machine.get("cpu") or machine.get("processor") or machine.get("platform") or "unknown CPU"
    cores = next((machine[k] for k in ("cores", "cpus", "cpu_count") if machine.get(k)), None)
    shown = {"cpu", "processor", "platform", "cores", "cpus", "cpu_count"}
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
    """Wall time of the last run from meta.json (and how many runs resumed it); trial seconds beside it."""
    start, end = _meta_time(run.meta, "start"), _meta_time(run.meta, "end") or _meta_time(run.meta, "finish")
    trial_s = sum(float(r.get("seconds") or 0.0) for r in run.records)
    trials = f"{trial_s / 60:.1f} min summed over trials"
    runs = run.meta.get("runs")
    first = _time(run.meta.get("first_start"))
    resumed = f"; {runs} runs since {first:%Y-%m-%d %H:%M} UTC" if isinstance(runs, int) and runs > 1 and first else ""
    if start and end:
        wall = (end - start).total_seconds() / 60
        return f"{wall:.1f} min wall ({start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC){resumed}; {trials}"
    if start:
        return f"started {start:%Y-%m-%d %H:%M} UTC, no end time recorded (crashed or still running){resumed}; {trials}"
    return f"no start/end time in meta.json; {trials}"
