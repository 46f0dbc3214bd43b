"""Proxy-fidelity records and their statistics: what reports, tables and checks read (torch-free).

The paper's appendix shows that short schedules can mis-rank detectors (D1 vs RetinaNet flip between
30 and 90 epochs), so a search on a short proxy is only useful if its ranking holds. The retrainer
(``scalesearch.retrain.fidelity``, ``scalesearch fidelity``) trains the best specs of a finished run again at a
longer budget and writes one ``FidelityRecord`` per spec to ``RUN/fidelity.json``; this module reads that file
and ranks proxy against long budget (``kendall``, ``spearman``, ``bootstrap_interval``, ``top1_regret``). It
imports no torch, timm, Optuna or Ray: the layer below everything that reads the records.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalesearch import schema
from scalesearch.records import RecordError, check_keys, check_spec, decode_rows, read_json

FILE = "fidelity.json"
CHECKPOINTS = "fidelity_checkpoints"  # RUN/<this>/trial<N>_seed<S>.pt: models kept by ``scalesearch fidelity --save``


@dataclass(frozen=True)
class FidelityRecord:
    """One retrained point. ``group``: the point (seed repeats count once); ``number``: the trial it was
    picked from; ``proxy_map``: mean mAP of the point's proxy trials; ``maps``: long-budget mAP per seed in
    ``seeds`` of the scored weights (``scored``: ``raw`` or ``ema``), ``raw_maps`` / ``ema_maps`` both weights'
    (None: not evaluated); ``factor``: long budget / the study's budget (``steps`` / ``seconds``: the long
    budget). ``paired``: the seeds are the study's common seeds (seed s: the same images, augmentations and
    per-part initial streams for every point), so points compare seed by seed. ``wall_seconds``: training and
    evaluation wall time per seed; ``history``: one entry per trained seed (``batch``: the start of the
    ``scalesearch fidelity`` call that trained it, ``command``, ``machine``, ``seed``, ``finished``)."""

    group: str
    number: int
    spec: dict[str, Any]
    flops: float
    proxy_map: float
    factor: float
    steps: int | None
    seconds: float | None
    seeds: tuple[int, ...]
    maps: tuple[float, ...]
    label: str | None = None
    latency: dict[str, Any] | None = None  # ``LatencyResult.to_json()``, measured after retraining (``measure``)
    rule: dict[str, Any] | None = None  # scaling-rule coefficients and phi (``scalesearch.extrapolate``)
    scored: str = "raw"
    raw_maps: tuple[float, ...] | None = None
    ema_maps: tuple[float, ...] | None = None
    paired: bool = False
    wall_seconds: tuple[float, ...] | None = None
    history: tuple[dict[str, Any], ...] = ()

    @property
    def long_map(self) -> float:
        return statistics.fmean(self.maps)

    def weights_maps(self, weights: str) -> tuple[float, ...] | None:
        """The per-seed mAPs of ``weights`` (``raw``, ``ema``, or ``scored``: ``maps``)."""
        return self.maps if weights == "scored" else {"raw": self.raw_maps, "ema": self.ema_maps}[weights]

    def to_json(self) -> dict[str, Any]:
        out = {schema.KEY: schema.CURRENT["fidelity"], **dataclasses.asdict(self)}
        for key in _TUPLES:
            out[key] = None if out[key] is None else list(out[key])
        out["history"] = [dict(h) for h in self.history]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FidelityRecord":
        """Inverse of ``to_json`` for a record of any schema version (``schema.upgrade``); ``RecordError``
        (naming the key) when ``data`` breaks the format."""
        data = schema.upgrade("fidelity", data)
        known = {f.name for f in dataclasses.fields(cls)}
        required = tuple(f.name for f in dataclasses.fields(cls)
                         if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
        check_keys(data, KINDS, required)
        check_spec(data["spec"], prefix="spec.")
        for key in ("maps", "raw_maps", "ema_maps", "wall_seconds"):
            if (key == "maps" or data.get(key) is not None) and len(data[key]) != len(data["seeds"]):
                raise RecordError(f"{key}: must hold one value per seed ({len(data['seeds'])} seeds), but got "
                                  f"{len(data[key])}")
        if not data["maps"]:
            raise RecordError("maps: must hold one mAP per seed, but got none")
        data = {k: v for k, v in data.items() if k in known}
        tuples = {k: tuple(data[k]) for k in _TUPLES if data.get(k) is not None}
        return cls(**{**data, **tuples, "history": tuple(data.get("history", ()))})


_TUPLES = ("seeds", "maps", "raw_maps", "ema_maps", "wall_seconds")
KINDS = {"group": "str", "number": "int", "spec": "object", "flops": "number", "proxy_map": "number",
         "factor": "number", "steps": "int?", "seconds": "number?", "seeds": "list[int]", "maps": "list[number]",
         "label": "str?", "latency": "object?", "rule": "object?", "scored": "str", "raw_maps": "list[number]?",
         "ema_maps": "list[number]?", "paired": "bool", "wall_seconds": "list[number]?", "history": "list[object]"}


def _name(row: dict[str, Any]) -> str:
    return f"group {row['group']!r}" if isinstance(row.get("group"), str) else ""


def load_fidelity(run_dir: str | Path, file: str = FILE, writer: str = "scalesearch fidelity") -> list[FidelityRecord]:
    """The records of ``RUN/fidelity.json`` (or ``RUN/<file>``, written by ``writer``); [] when there are none.
    ``UserError`` naming the file and the record when it is damaged (not JSON, a missing key, a wrong type)."""
    path = Path(run_dir) / file
    if not path.is_file():
        return []
    return decode_rows(path, read_json(path), FidelityRecord.from_json, f"records written by `{writer}`", _name)


def kendall(rows: Sequence[FidelityRecord]) -> tuple[float, float]:
    """Kendall's tau-b between proxy and long-budget mAP and its two-sided p-value (``scipy.stats.kendalltau``);
    NaN when either side is constant."""
    from scipy import stats

    result = stats.kendalltau([r.proxy_map for r in rows], [r.long_map for r in rows])
    return float(result.statistic), float(result.pvalue)


def spearman(rows: Sequence[FidelityRecord]) -> tuple[float, float]:
    """Spearman's rho between proxy and long-budget mAP and its p-value (``scipy.stats.spearmanr``)."""
    from scipy import stats

    result = stats.spearmanr([r.proxy_map for r in rows], [r.long_map for r in rows])
    return float(result.statistic), float(result.pvalue)


def bootstrap_interval(rows: Sequence[FidelityRecord], statistic: str = "kendall", n: int = 2000,
                       seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``kendall`` or ``spearman`` over the retrained points (pairs resampled
    with replacement, ``n`` times, ``numpy.random.default_rng(seed)``: the same seed gives the same interval).
    Resamples whose correlation is undefined (all ties) are dropped."""
    import numpy as np

    func = {"kendall": kendall, "spearman": spearman}[statistic]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        sample = [rows[i] for i in rng.integers(0, len(rows), len(rows))]
        value = func(sample)[0]
        if value == value:  # NaN when a resample has no spread
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def top1_regret(rows: Sequence[FidelityRecord]) -> float:
    """Long-budget mAP lost by trusting the proxy's winner: best long mAP minus the proxy winner's long mAP."""
    winner = max(rows, key=lambda r: r.proxy_map)
    return max(r.long_map for r in rows) - winner.long_map
