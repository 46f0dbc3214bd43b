"""Trial records: one frozen, typed ``TrialRecord`` per trial, one JSON encoding, and run-folder files.

Every backend returns ``TrialRecord``s from the one objective (``scalesearch.search.objective``) and stores
them through ``TrialRecord.to_json`` / ``from_json``; reports read ``trials.json`` through ``load_records``
and never a backend's storage. The JSON form is flat (spec fields, COCO metrics and space values side by
side), the schema of docs/design.md, so ``trials.json`` files written before this type still load.
Torch-free: ``scalesearch trials`` and ``scalesearch report`` import nothing heavy.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from scalesearch.errors import UserError
from scalesearch.metrics import COCO_METRICS


class State(str, Enum):
    """Where a trial ended. ``running``: started, not finished (a live or an interrupted trial)."""

    COMPLETE = "complete"
    INFEASIBLE = "infeasible"  # over a budget: costed, never trained
    FAILED = "failed"  # training or evaluation failed; ``reason`` says why
    PRUNED = "pruned"  # stopped early by the search (pruner, ASHA)
    RUNNING = "running"

    @property
    def counted(self) -> bool:
        """Finished trials count toward ``search.n_trials``."""
        return self is not State.RUNNING


def _spec_fields() -> tuple[str, ...]:
    from scalesearch.spec import DetectorSpec  # torch-free

    return tuple(f.name for f in dataclasses.fields(DetectorSpec) if f.name != "name") + ("pretrained",)


@dataclass(frozen=True)
class TrialRecord:
    """One trial. ``number`` is ``point * seeds + seed_index`` on every backend (a retry keeps the number of
    the trial it replaces); ``spec`` holds the ``DetectorSpec`` fields; ``space`` the other resolved space
    values (``phi``, rule coefficients); ``metrics`` the COCO metrics; ``values`` the objective values in
    the study's order (None unless complete or infeasible); ``intermediate`` maps step -> mAP;
    ``zero_cost`` the zero-cost scores of the untrained spec (``scalesearch.zero_cost``; {} when not scored);
    ``latency_*`` the measured medians (ms) of the study's ``latency`` settings, ``latency_iqr_ms`` the total's
    interquartile range, ``latency_exclusive`` whether no other measurement ran meanwhile (None: not measured,
    ``scalesearch.latency``); ``node`` where it ran (the host name; on Ray, host and node id)."""

    number: int
    state: State
    seed: int = 0
    group: str = "fixed"
    params_sampled: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Any] = field(default_factory=dict)
    budget_flops: float | None = None
    flops: int | None = None
    params: int | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    values: tuple[float, ...] | None = None
    intermediate: dict[str, float | None] = field(default_factory=dict)
    seconds: float | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    images_per_second: float | None = None
    steps: int | None = None
    threads: int | None = None
    reason: str | None = None
    label: str | None = None
    retry_of: int | None = None
    zero_cost: dict[str, float] = field(default_factory=dict)
    latency_ms: float | None = None
    latency_network_ms: float | None = None
    latency_post_ms: float | None = None
    latency_iqr_ms: float | None = None
    latency_exclusive: bool | None = None
    node: str | None = None

    def replace(self, **changes: Any) -> "TrialRecord":
        return dataclasses.replace(self, **changes)

    def get(self, key: str, default: Any = None) -> Any:
        """A value by its flat JSON key (``map``, ``flops``, ``topology``, ``phi``, ...)."""
        return self.flat.get(key, default)

    @functools.cached_property
    def flat(self) -> dict[str, Any]:
        """``to_json()``, computed once (the record is frozen)."""
        return self.to_json()

    def to_json(self) -> dict[str, Any]:
        """The flat, JSON-ready form (one encoder for every backend and file)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name not in ("spec", "space", "metrics"):
                out[f.name] = getattr(self, f.name)
        out["state"] = self.state.value
        out["values"] = list(self.values) if self.values is not None else None
        out.update({key: self.metrics.get(key) for key in COCO_METRICS})
        out.update(self.space)
        out.update(self.spec)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrialRecord":
        """Inverse of ``to_json``; unknown keys are resolved space values (``phi``, rule coefficients)."""
        own = {f.name for f in dataclasses.fields(cls)} - {"spec", "space", "metrics"}
        spec_keys = set(_spec_fields())
        kwargs = {k: v for k, v in data.items() if k in own}
        kwargs["state"] = State(data.get("state", "running"))
        if kwargs.get("values") is not None:
            kwargs["values"] = tuple(float(v) for v in kwargs["values"])
        kwargs["intermediate"] = {str(k): v for k, v in (data.get("intermediate") or {}).items()}
        kwargs["zero_cost"] = {str(k): float(v) for k, v in (data.get("zero_cost") or {}).items()}
        kwargs["metrics"] = {k: data[k] for k in COCO_METRICS if data.get(k) is not None}
        kwargs["spec"] = {k: v for k, v in data.items() if k in spec_keys}
        kwargs["space"] = {k: v for k, v in data.items() if k not in own | spec_keys | set(COCO_METRICS)}
        return cls(**kwargs)


def group_label(params: dict[str, Any], budget: float | None) -> str:
    """Label shared by the seed repeats of one point, e.g. ``phi=0 topology=bifpn budget=2.5e+09``."""
    parts = [f"{k}={_short(v)}" for k, v in sorted(params.items())]
    if budget is not None and "budget_flops" not in params:
        parts.append(f"budget={budget:.3g}")
    return " ".join(parts) or "fixed"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text.rsplit("/", 1)[-1].removesuffix(".yaml") if text.endswith(".yaml") else text


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temp file + ``os.replace`` so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def write_records(run_dir: Path, records: list[TrialRecord]) -> None:
    """``trials.json``: every record, by number, rewritten atomically."""
    write_json_atomic(Path(run_dir) / "trials.json", [r.to_json() for r in sorted(records, key=lambda r: r.number)])


def load_records(run_dir: str | Path) -> list[TrialRecord]:
    """The records of a run folder, from its ``trials.json`` (never from a backend's storage)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder {str(run_dir)!r}: must exist, but it was not found")
    path = run_dir / "trials.json"
    if not path.is_file():
        raise UserError(f"run folder {str(run_dir)!r}: must hold trials.json (written after every trial), "
                        "but it has none")
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: must be valid JSON, but {exc}") from None
    return [TrialRecord.from_json(row) for row in rows]


def best_record(records: list[TrialRecord], metric: str = "map") -> TrialRecord | None:
    """The complete record with the highest ``metric`` (None before any)."""
    done = [r for r in records if r.state is State.COMPLETE and r.get(metric) is not None]
    return max(done, key=lambda r: r.get(metric), default=None)
