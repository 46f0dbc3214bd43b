"""Latency stays measured: after a search whose trials took their latency from the per-block table
(``latency.table``, ``scalesearch.measure.latency_table``), every point of the final Pareto front is measured by
the latency protocol (``scalesearch.measure.latency``), its records updated, and the front recomputed, until every
point on it was measured.

The front is the one the reports draw: ``pareto.pareto_front`` over the study's objectives, one point per record
(a single objective: its best records). Measuring a point updates every record of its architecture (seed repeats,
duplicates, any state): ``latency_*`` the protocol's figures, ``latency_source: measured``, ``latency_table_ms``
the prediction kept, the objective values recomputed; a measured latency over ``budgets.latency_ms`` ends a
complete trial ``infeasible`` (the reason says what the table predicted), so it leaves the front.

Where the measurements live: ``RUN/latency_measured.json``, one entry per architecture and latency settings,
written by the runner (``scalesearch.search.runner``) once the backend returns, so it works alike for every
backend. The backend's storage keeps the table's figures (a finished Optuna trial cannot change; the sampler
learnt from them); every export of ``trials.json`` (Optuna's ``RecordsExport``, Ray's ``run_ray``) passes its
records through ``MeasuredLatency``, so a resumed study and ``scalesearch report`` see the measured values.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

from scalesearch.errors import UserError
from scalesearch.files import digest, write_json_atomic
from scalesearch.records import State, TrialRecord, read_json, write_records

FILE = "latency_measured.json"


class MeasuredLatency:
    """The protocol measurements of a run's front points (``RUN/latency_measured.json``), and ``__call__``: records
    with them applied. A record passed again (the same object, from an exporter's cache) while the file is unchanged
    gives the same result object, so an export after every trial costs what it did without this."""

    def __init__(self, run_dir: str | Path, config: Any) -> None:
        self.path, self.config = Path(run_dir) / FILE, config
        s = config.latency
        self.settings = {"runtime": s.runtime, "threads": s.threads, "batch": s.batch, "warmup": s.warmup,
                         "runs": s.runs}
        self._stamp: Any = None
        self._measured: dict[str, dict[str, Any]] = {}
        self._kept: dict[int, tuple[TrialRecord, TrialRecord]] = {}

    def key(self, record: TrialRecord) -> str:
        """The architecture (spec fields but the backbone's weights, which do not change the time) and settings."""
        spec = {k: v for k, v in record.spec.items() if k != "weights"}
        return digest({"spec": spec, "settings": self.settings})

    def load(self) -> dict[str, dict[str, Any]]:
        """Architecture key -> the record fields of its protocol measurement (``objective.measured_fields``)."""
        stamp = self._file_stamp()
        if stamp != self._stamp:
            data = read_json(self.path) if stamp is not None else {}
            if not isinstance(data, dict) or not isinstance(data.get("architectures", {}), dict):
                raise UserError(f"{self.path}: must hold an object with an 'architectures' object (written by "
                                "`scalesearch run` with latency.table), but it does not")
            self._measured, self._stamp, self._kept = dict(data.get("architectures", {})), stamp, {}
        return self._measured

    def add(self, key: str, fields: dict[str, Any], spec: dict[str, Any]) -> None:
        """Keep one measurement (the file is read again first: another run on the folder may have added some)."""
        measured = {**self.load(), key: {**fields, "spec": spec}}
        write_json_atomic(self.path, {"settings": self.settings, "architectures": measured})
        self._measured, self._stamp, self._kept = measured, self._file_stamp(), {}

    def _file_stamp(self) -> tuple[int, int] | None:
        """(inode, mtime) of the file, None without one: every atomic write makes a new inode."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns

    def __call__(self, records: list[TrialRecord]) -> list[TrialRecord]:
        measured = self.load()
        if not measured:
            return records
        out = []
        for record in records:
            kept = self._kept.get(record.number)
            if kept is None or kept[0] is not record:
                kept = (record, self._apply(record, measured))
                self._kept[record.number] = kept
            out.append(kept[1])
        return out

    def _apply(self, record: TrialRecord, measured: dict[str, dict[str, Any]]) -> TrialRecord:
        entry = measured.get(self.key(record)) if record.latency_source == "table" else None
        if entry is None:
            return record
        from scalesearch.search.objective import objective_values

        fields = {k: v for k, v in entry.items() if k != "spec"}
        record = record.replace(**fields, latency_source="measured")
        limit = self.config.budgets.latency_ms
        if limit and record.state is State.COMPLETE and record.latency_ms > limit:
            record = record.replace(state=State.INFEASIBLE, reason=(
                f"latency_ms {record.latency_ms:.4g} ms over the budget {limit:.4g} ms (measured after the search; "
                f"the latency table predicted {record.latency_table_ms:.4g} ms)"))
        return record.replace(values=objective_values(self.config, record))


def measured_overlay(config: Any, run_dir: str | Path) -> MeasuredLatency | None:
    """What an exporter passes its records through: ``MeasuredLatency`` when the study uses the table, else None."""
    return MeasuredLatency(run_dir, config) if config.latency.table and config.measures_latency else None


def final_front(records: list[TrialRecord], objectives: list[str]) -> list[TrialRecord]:
    """The reports' Pareto front over ``objectives``; with one objective (nothing minimised), its best records."""
    from scalesearch import pareto
    from scalesearch.metrics import get_metric

    if any(not get_metric(name).maximize for name in objectives):
        return pareto.pareto_front(records, objectives)
    [name] = objectives
    values = [r.get(name) for r in pareto.feasible(records)]
    best = max((v for v in values if v is not None and math.isfinite(v)), default=None)
    return [] if best is None else [r for r in pareto.feasible(records) if r.get(name) == best]


def measure_front(config: Any, run_dir: str | Path, records: list[TrialRecord], progress: bool = False
                  ) -> list[TrialRecord]:
    """Measure by the protocol every final-front point whose latency came from the table, and every labelled point
    (the enqueued baselines: ``fidelity --against`` picks front points cheaper than one, and a table prediction,
    ~27% high on the BCCD machine, beside measured points picked a slower one), recompute the front, and again
    until the front holds measured points only; ``trials.json`` rewritten; returns the records. Each
    architecture is measured once (``latency.cached_latency``, the run's cost cache: a resumed run measures
    nothing twice)."""
    from scalesearch.measure.cost import CACHE_ENV
    from scalesearch.measure.latency import LatencySettings, cached_latency
    from scalesearch.search.objective import measured_fields
    from scalesearch.spec import DetectorSpec

    overlay = MeasuredLatency(run_dir, config)
    settings = LatencySettings(**overlay.settings)
    cache_dir = os.environ.get(CACHE_ENV) or Path(run_dir) / "cost_cache"
    objectives = [o.metric for o in config.objectives]
    records = overlay(records)
    while True:
        labelled = [r for r in records if r.label and r.state == "complete"]  # the baselines a retraining
        # compares the front with (``fidelity --against``): measured too, never a table figure beside measured ones
        pending = {overlay.key(r): r for r in [*final_front(records, objectives), *labelled]
                   if r.latency_source == "table"}
        if not pending:
            break
        if progress:
            print(f"scalesearch run: measuring {len(pending)} point(s) of the front whose latency the table "
                  "predicted", file=sys.stderr)
        for key, record in pending.items():
            result = cached_latency(DetectorSpec.from_dict(record.spec), settings, cache_dir=cache_dir)
            overlay.add(key, measured_fields(result), record.spec)
        records = overlay(records)
    write_records(Path(run_dir), records)
    return records
