"""Trial records: one flat JSON-friendly dict per trial (schema in docs/design.md), and run folders.

A record holds ``number``, ``state`` (complete / infeasible / failed / pruned / running), the costs,
every COCO metric, timings, ``seed``, ``reason``, ``budget_flops``, ``values``, ``intermediate``,
``params_sampled``, ``group``, ``phi`` / rule coefficients and every ``DetectorSpec`` field. The
Optuna backend keeps each finished record in its trial's user attributes (the storage is the source
of truth); ``trials.json`` is a copy rewritten atomically after every trial.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from scalesearch.errors import UserError

STATES = ("complete", "infeasible", "failed", "pruned", "running")
METRIC_KEYS = ("map", "map50", "map75", "map_small", "map_medium", "map_large")
# Statuses that count as finished trials toward ``search.n_trials`` (interrupted / surplus do not).
COUNTED = ("complete", "infeasible", "failed", "pruned")


def empty_record(number: int, params: dict[str, Any], values: dict[str, Any], seed: int,
                 budget: float | None) -> dict[str, Any]:
    """A record before evaluation: identity, sampled parameters and the resolved space values."""
    record: dict[str, Any] = {
        "number": number, "state": "running", "reason": None, "seed": seed, "budget_flops": budget,
        "flops": None, "params": None, "values": None, "intermediate": {},
        "seconds": None, "train_seconds": None, "eval_seconds": None, "images_per_second": None,
        "steps": None, "params_sampled": dict(params), "group": group_label(params, budget),
        "label": None, "retry_of": None,  # an enqueued point's label; the interrupted trial this retries
    }
    record.update({key: None for key in METRIC_KEYS})
    record.update(values)
    return record


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


def add_spec(record: dict[str, Any], spec: Any, cost: Any) -> None:
    """Flatten the spec's fields and its cost into the record (spec fields win over raw values)."""
    data = spec.to_dict()
    data.pop("name", None)
    record.update(data)
    record["flops"], record["params"] = int(cost.flops), int(cost.params)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temp file + ``os.replace`` so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def load_records(run_dir: str | Path) -> list[dict[str, Any]]:
    """Records of a run folder, by trial number: from its Optuna storage when it has one, else
    ``trials.json`` (the Ray backend's runs)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder {str(run_dir)!r}: must exist, but it was not found")
    storage = storage_url_of(run_dir)
    if storage is not None:
        from scalesearch.search.optuna_backend import records_from_storage

        return records_from_storage(storage, study_name_of(run_dir))
    path = run_dir / "trials.json"
    if not path.is_file():
        raise UserError(f"run folder {str(run_dir)!r}: must hold study.db or trials.json, but has neither")
    return json.loads(path.read_text())


def storage_url_of(run_dir: Path) -> str | None:
    """The Optuna storage of a run: the study's ``search.storage`` URL or ``study.db`` in the folder."""
    meta = _read_json(run_dir / "meta.json")
    if meta.get("backend", "optuna") != "optuna":
        return None
    if meta.get("storage"):
        return meta["storage"]
    db = run_dir / "study.db"
    return f"sqlite:///{db.resolve()}" if db.is_file() else None


def study_name_of(run_dir: Path) -> str:
    meta = _read_json(run_dir / "meta.json")
    if "study_name" not in meta:
        raise UserError(f"run folder {str(run_dir)!r}: meta.json must name the study, but it does not")
    return meta["study_name"]


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: must be valid JSON, but {exc}") from None


def best_record(records: list[dict[str, Any]], metric: str = "map") -> dict[str, Any] | None:
    """The complete record with the highest ``metric`` (None before any)."""
    done = [r for r in records if r["state"] == "complete" and r.get(metric) is not None]
    return max(done, key=lambda r: r[metric], default=None)
