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
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from scalesearch import schema
from scalesearch.errors import UserError
from scalesearch.files import write_text_atomic
from scalesearch.metrics import ESTIMATE_METRICS


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

    return tuple(f.name for f in dataclasses.fields(DetectorSpec) if f.name != "name")


@dataclass(frozen=True)
class TrialRecord:
    """One trial. ``number`` is ``point * seeds + seed_index`` on every backend (a retry keeps the number of
    the trial it replaces); ``spec`` holds the ``DetectorSpec`` fields; ``space`` the other resolved space
    values (``phi``, rule coefficients); ``metrics`` the COCO metrics; ``values`` the objective values in
    the study's order (None unless complete or infeasible); ``intermediate`` maps step -> mAP;
    ``zero_cost`` the zero-cost scores of the untrained spec (``scalesearch.measure.zero_cost``; {} when not scored);
    ``latency_*`` the measured medians (ms) of the study's ``latency`` settings, ``latency_iqr_ms`` the total's
    interquartile range, ``latency_exclusive`` whether no other measurement ran meanwhile (None: not measured,
    ``scalesearch.measure.latency``); ``latency_source`` where ``latency_*`` came from: ``measured`` (the
    protocol) or ``table`` (the per-block table's prediction, ``latency.table``; no IQR, and ``latency_exclusive``
    says whether every block was timed holding the lock), None without a latency; ``latency_table_ms`` the
    table's prediction of the total, kept when a point of the final front is measured after the search
    (``scalesearch.search.latency_front``); ``node`` where it ran (the host name; on Ray, host and node id); ``estimator`` the
    study's ``search.estimator`` (None in records written before it existed: proxy training), and
    ``estimate_seconds`` / ``estimate_cpu_seconds`` the wall and process CPU seconds of the estimate (None when
    nothing was estimated: infeasible, prefiltered, a duplicate); ``duplicate_of`` the number of an earlier trial
    of the run that measured the same point with the same seed (``measurement_key``): the sampler proposed it
    again, and this trial reuses that trial's result instead of training it again (``estimate_seconds`` None), or,
    on Ray, was trained concurrently with it (the same measurement all the same). A duplicate is never a seed
    repeat (``scalesearch.pareto`` leaves it out of every aggregate); None in records written before it existed.
    ``paired_seeds``: seed s drew the same images, augmentations and per-part initial weights as every other
    point's seed s (common random numbers; False in records written before, whose seeds fixed the data order
    but not the initialisation)."""

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
    latency_source: str | None = None
    latency_table_ms: float | None = None
    node: str | None = None
    estimator: str | None = None
    estimate_seconds: float | None = None
    estimate_cpu_seconds: float | None = None
    duplicate_of: int | None = None
    paired_seeds: bool = True

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
        out: dict[str, Any] = {schema.KEY: schema.CURRENT["trial"]}
        for f in dataclasses.fields(self):
            if f.name not in ("spec", "space", "metrics"):
                out[f.name] = getattr(self, f.name)
        out["state"] = self.state.value
        out["values"] = list(self.values) if self.values is not None else None
        out.update({key: self.metrics.get(key) for key in ESTIMATE_METRICS})
        out.update(self.space)
        out.update(self.spec)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrialRecord":
        """Inverse of ``to_json`` for a record of any schema version (``schema.upgrade``); unknown keys are
        resolved space values (``phi``, rule coefficients)."""
        data = schema.upgrade("trial", data)
        own = {f.name for f in dataclasses.fields(cls)} - {"spec", "space", "metrics"}
        spec_keys = set(_spec_fields())
        kwargs = {k: v for k, v in data.items() if k in own}
        kwargs["state"] = _state(data.get("state", "running"))
        if kwargs.get("values") is not None:
            kwargs["values"] = tuple(float(v) for v in kwargs["values"])
        kwargs["intermediate"] = {str(k): v for k, v in (data.get("intermediate") or {}).items()}
        kwargs["zero_cost"] = {str(k): float(v) for k, v in (data.get("zero_cost") or {}).items()}
        kwargs["metrics"] = {k: data[k] for k in ESTIMATE_METRICS if data.get(k) is not None}
        kwargs["spec"] = {k: v for k, v in data.items() if k in spec_keys}
        kwargs["space"] = {k: v for k, v in data.items() if k not in own | spec_keys | set(ESTIMATE_METRICS) | {schema.KEY}}
        return cls(**kwargs)


def _state(value: Any) -> State:
    try:
        return State(value)
    except ValueError:
        raise RecordError(f"unknown state {value!r} (valid: {', '.join(s.value for s in State)})") from None


# Decoding run-folder files. A hand-edited or damaged file stops a command with one ``UserError`` line that names
# the file, the record and the key, before anything is written or trained. Kinds: ``int``, ``number``, ``str``,
# ``bool``, ``object``, ``list``, ``list[K]`` / ``object[K]`` (every item / value of kind K); ``?`` allows null.
LATENCY_SOURCES = ("measured", "table")  # ``TrialRecord.latency_source``: the protocol, or the per-block table


class RecordError(ValueError):
    """One record breaks the file format; the message names the key, the rule, then the value."""


_KIND_NAMES = {"int": ("an integer", "integers"), "number": ("a number", "numbers"), "str": ("a string", "strings"),
               "bool": ("true or false", "booleans"), "object": ("an object", "objects"), "list": ("a list", "lists")}

TRIAL_KINDS: dict[str, str] = {
    "number": "int", "seed": "int", "group": "str", "params_sampled": "object", "budget_flops": "number?",
    "flops": "number?", "params": "number?", "values": "list[number]?", "intermediate": "object[number?]?",
    "seconds": "number?", "train_seconds": "number?", "eval_seconds": "number?", "images_per_second": "number?",
    "steps": "int?", "threads": "int?", "reason": "str?", "label": "str?", "retry_of": "int?",
    "zero_cost": "object[number]?", "latency_ms": "number?", "latency_network_ms": "number?",
    "latency_post_ms": "number?", "latency_iqr_ms": "number?", "latency_exclusive": "bool?", "latency_source": "str?",
    "latency_table_ms": "number?", "node": "str?",
    "estimator": "str?", "estimate_seconds": "number?", "estimate_cpu_seconds": "number?",
    "duplicate_of": "int?", "paired_seeds": "bool", **{key: "number?" for key in ESTIMATE_METRICS},
}


@functools.cache
def spec_kinds() -> dict[str, str]:
    """Kinds of the ``DetectorSpec`` fields as records store them (older forms: ``schema.upgrade``)."""
    from scalesearch.spec import DetectorSpec

    table = {"str": "str", "float": "number", "int": "int", "bool": "bool", "str | None": "str?"}
    kinds = {f.name: "list" if str(f.type).startswith("tuple") else table.get(str(f.type), "")
             for f in dataclasses.fields(DetectorSpec)}
    return {k: v for k, v in kinds.items() if v}


def show(value: Any) -> str:
    """A value as an error message quotes it: scalars as written (strings cut at 60), containers by kind."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return json.dumps(value)


def _fits(value: Any, kind: str) -> bool:
    if kind.endswith("?"):
        return value is None or _fits(value, kind[:-1])
    base, _, item = kind.partition("[")
    item = item.removesuffix("]")
    if base == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if base == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base == "str":
        return isinstance(value, str)
    if base == "bool":
        return isinstance(value, bool)
    if base == "list":
        return isinstance(value, list) and all(_fits(v, item) for v in value) if item else isinstance(value, list)
    if base == "object":
        return isinstance(value, dict) and all(_fits(v, item) for v in value.values()) if item else \
            isinstance(value, dict)
    raise AssertionError(f"unknown kind {kind!r}")


def _describe(kind: str) -> str:
    nullable = kind.endswith("?")
    base, _, item = kind.removesuffix("?").partition("[")
    item = item.removesuffix("]")
    text = _KIND_NAMES[base][0]
    if item:
        text += f" of {_KIND_NAMES[item.removesuffix('?').partition('[')[0]][1]}" + (
            " or nulls" if item.endswith("?") else "")
    return text + (" or null" if nullable else "")


def check_keys(data: dict[str, Any], kinds: dict[str, str], required: tuple[str, ...] = (), prefix: str = "") -> None:
    """``RecordError`` for the first missing ``required`` key or the first key whose value is not of its kind."""
    for key in required:
        if key not in data:
            raise RecordError(f"missing required key {prefix + key!r}")
    for key, kind in kinds.items():
        if key in data and not _fits(data[key], kind):
            raise RecordError(f"{prefix}{key}: must be {_describe(kind)}, but got {show(data[key])}")


def check_spec(spec: dict[str, Any], prefix: str = "") -> None:
    """The ``DetectorSpec`` fields of a record (flat, or a ``spec`` object): kinds, and a known activation."""
    from scalesearch.spec import ACTIVATIONS

    check_keys(spec, spec_kinds(), prefix=prefix)
    if spec.get("activation", ACTIVATIONS[0]) not in ACTIVATIONS:
        raise RecordError(f"unknown {prefix}activation {spec['activation']!r} (valid: {', '.join(ACTIVATIONS)})")


def check_trial(data: dict[str, Any]) -> None:
    """A ``trials.json`` record before ``TrialRecord.from_json``: ``number`` required, every known key of its kind."""
    check_keys(data, TRIAL_KINDS, required=("number",))
    _state(data.get("state", "running"))
    if data.get("latency_source") not in (None, *LATENCY_SOURCES):
        raise RecordError(f"unknown latency_source {data['latency_source']!r} (valid: {', '.join(LATENCY_SOURCES)})")
    check_spec(data)


def read_json(path: Path) -> Any:
    """The decoded contents of a run-folder file; ``UserError`` naming it when it is not UTF-8 JSON."""
    try:
        if path.suffix == ".gz":  # a committed run folder too large to keep as text (``records_path``)
            import gzip

            return json.loads(gzip.decompress(path.read_bytes()).decode("utf-8"))
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        msg = exc.msg.removesuffix(" at")  # "Unterminated string starting at"
        raise UserError(f"{path}: must be valid JSON (is it truncated or damaged?), but {msg[:1].lower()}{msg[1:]} "
                        f"at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: must be UTF-8 JSON text, but byte {exc.object[exc.start]:#04x} at offset "
                        f"{exc.start} is not") from None


def decode_rows(path: Path, rows: Any, decode: Any, what: str, name: Any) -> list[Any]:
    """``[decode(row) for row in rows]``, the decoding errors of a row turned into one ``UserError`` line:
    ``PATH: record I (name(row)): what is wrong``. ``rows`` must be a list of objects."""
    if not isinstance(rows, list):
        raise UserError(f"{path}: must hold a list of {what}, but got {show(rows)}")
    out = []
    for i, row in enumerate(rows):
        where = f"record {i}" + (f" ({name(row)})" if isinstance(row, dict) and name(row) else "")
        try:
            if not isinstance(row, dict):
                raise RecordError(f"must be an object of keys, but got {show(row)}")
            out.append(decode(row))
        except KeyError as exc:
            raise UserError(f"{path}: {where}: missing required key {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:  # RecordError, and what the constructors reject
            message = " ".join(str(exc).split())
            raise UserError(f"{path}: {where}: {message}") from None
    return out


def _trial_name(row: dict[str, Any]) -> str:
    number = row.get("number")
    return f"trial number {number}" if isinstance(number, int) and not isinstance(number, bool) else ""


def _decode_trial(row: dict[str, Any]) -> TrialRecord:
    row = schema.upgrade("trial", row)
    check_trial(row)
    return TrialRecord.from_json(row)


# What a duplicate takes from the trial it duplicates: the outcome of the measurement (the trial's own identity,
# number, sampled parameters, spec, budget and seed, stays its own; nothing is estimated, so no estimate seconds).
REUSED_FIELDS = ("state", "metrics", "intermediate", "reason", "steps", "threads", "train_seconds", "eval_seconds",
                 "images_per_second", "zero_cost", "latency_ms", "latency_network_ms", "latency_post_ms",
                 "latency_iqr_ms", "latency_exclusive", "latency_source", "latency_table_ms")
# States whose result a duplicate reuses: complete (the same training gives the same metrics), infeasible (the same
# spec and budget give the same verdict, untrained) and pruned (the same training reports the same intermediate mAP;
# the decision to stop it stands). A failed trial is not reused: a failure may be the machine's (memory, a crash),
# so the point is trained again.
REUSABLE = (State.COMPLETE, State.INFEASIBLE, State.PRUNED)


def measurement_key(record: Any) -> str:
    """What a trial measures, as one string: its resolved spec fields and other space values (``phi``, rule
    coefficients), its FLOPs budget and its seed. Two trials of one run with the same key train the same thing
    (the study fixes everything else), so the later one is a duplicate, not a seed repeat. ``record``: a
    ``TrialRecord`` (the flat form of a record of any age keys alike: its spec fields are what ``group_key`` uses)."""
    if isinstance(record, TrialRecord):
        spec, space, budget, seed = record.spec, record.space, record.budget_flops, record.seed
    else:
        return measurement_key(TrialRecord.from_json(dict(record)))
    return json.dumps({"spec": spec, "space": space, "budget_flops": budget, "seed": seed}, sort_keys=True,
                      default=str)


def as_duplicate(record: TrialRecord, earlier: TrialRecord) -> TrialRecord:
    """``record`` (a costed trial: its own number, parameters, spec, budget, seed) ending as a duplicate of
    ``earlier``: that trial's outcome (``REUSED_FIELDS``), ``duplicate_of`` its number (or the number it itself
    duplicates), nothing estimated."""
    reused = {name: getattr(earlier, name) for name in REUSED_FIELDS}
    return record.replace(**reused, duplicate_of=earlier.duplicate_of if earlier.duplicate_of is not None
                          else earlier.number, estimate_seconds=None, estimate_cpu_seconds=None)


def mark_concurrent_duplicates(records: list[TrialRecord]) -> list[TrialRecord]:
    """``records`` with every complete trial that was trained although an earlier-numbered complete trial measured
    the same point with the same seed (two workers ran it at once) marked ``duplicate_of`` that trial; its own
    metrics stay. A record that reused the result of a trial marked so points on to the trial that trial duplicates."""
    first: dict[str, int] = {}
    moved: dict[int, int] = {}
    out = []
    for record in sorted(records, key=lambda r: r.number):
        if record.state is State.COMPLETE and record.duplicate_of is None:
            key = measurement_key(record)
            if key in first:
                moved[record.number] = first[key]
                record = record.replace(duplicate_of=first[key])
            else:
                first[key] = record.number
        out.append(record)
    return [r.replace(duplicate_of=moved[r.duplicate_of]) if r.duplicate_of in moved else r for r in out]


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


def write_records(run_dir: Path, records: list[TrialRecord]) -> None:
    """``trials.json``: every record, by number, rewritten atomically (one record per line)."""
    RecordsFile(run_dir).write(records)


class RecordsFile:
    """``trials.json`` of a running study, kept current after every trial at a cost that does not grow with the
    study: each record is encoded once (again only when a new record object replaces it) and kept as its line
    of JSON; a write joins the kept lines and moves the file into place atomically. With a backend that also
    reuses unchanged records (``optuna_study.study_records``'s cache), trial 2,000 costs the writer about what
    trial 1 does (``benchmarks/bench_bookkeeping.py``)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / "trials.json"
        self._lines: dict[int, tuple[TrialRecord, str]] = {}

    def write(self, records: list[TrialRecord]) -> None:
        lines = []
        for record in sorted(records, key=lambda r: r.number):
            kept = self._lines.get(record.number)
            if kept is None or kept[0] is not record:
                kept = (record, json.dumps(record.to_json(), default=str))
                self._lines[record.number] = kept
            lines.append(kept[1])
        write_text_atomic(self.path, "[\n" + ",\n".join(lines) + ("\n]\n" if lines else "]\n"))


def records_path(run_dir: str | Path) -> Path | None:
    """A run folder's records: ``trials.json`` as the run writes it, else ``trials.json.gz`` (how a committed run of
    thousands of trials is kept: ``gzip -k trials.json``, the text file git-ignored); None when it has neither."""
    for name in ("trials.json", "trials.json.gz"):
        if (Path(run_dir) / name).is_file():
            return Path(run_dir) / name
    return None


def load_records(run_dir: str | Path) -> list[TrialRecord]:
    """The records of a run folder, from its ``trials.json`` (or ``.gz``; never from a backend's storage)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder {str(run_dir)!r}: must exist, but it was not found")
    path = records_path(run_dir)
    if path is None:
        raise UserError(f"run folder {str(run_dir)!r}: must hold trials.json (written after every trial), "
                        "but it has none")
    return decode_rows(path, read_json(path), _decode_trial, "trial records", _trial_name)


def best_record(records: list[TrialRecord], metric: str = "map") -> TrialRecord | None:
    """The complete record with the highest ``metric`` (None before any)."""
    done = [r for r in records if r.state is State.COMPLETE and r.get(metric) is not None]
    return max(done, key=lambda r: r.get(metric), default=None)


CORE_KEYS = ("cores", "cpus", "cpu_count")  # "cores" now (machine.identity); older records wrote "cpus" or "cpu_count"


def machine_cores(info: Any) -> int | None:
    """The core count of a recorded machine description (meta.json, benchmark and latency records), whichever
    key its writer used."""
    return next((info[k] for k in CORE_KEYS if info.get(k)), None) if isinstance(info, dict) else None


def run_wall_seconds(meta: dict[str, Any]) -> float | None:
    """The wall seconds of the calls a run folder's ``meta.json`` records, summed without the idle time between
    them: its ``wall_seconds``, or a single call's start to end when written before that key. None when unknown:
    no end (a call still running or killed), or resumed before the key."""
    if not meta.get("end"):
        return None
    if meta.get("wall_seconds") is not None:
        return float(meta["wall_seconds"])
    if meta.get("runs", 1) == 1 and meta.get("start"):
        return seconds_between(meta["start"], meta["end"])
    return None


def seconds_between(start: str, end: str) -> float:
    """Seconds from one ISO date-time string to another."""
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
