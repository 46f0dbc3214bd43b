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
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalesearch import schema
from scalesearch.errors import UserError
from scalesearch.records import RecordError, check_keys, check_spec, decode_rows, read_json

FILE = "fidelity.json"
CHECKPOINTS = "fidelity_checkpoints"  # RUN/<this>/trial<N>_seed<S>.pt: models kept by ``scalesearch fidelity --save``
# ``scalesearch fidelity --frozen-backbone``: fidelity.json's points on its seeds and budget, the pretrained backbone
# frozen (its features cached) instead of fine-tuned
FROZEN_FILE = "fidelity_frozen.json"


@dataclass(frozen=True)
class FidelityRecord:
    """One retrained point. ``group``: the point (seed repeats count once); ``number``: the trial it was
    picked from; ``proxy_map``: mean mAP of the point's proxy trials; ``maps``: long-budget mAP per seed in
    ``seeds`` of the scored weights (``scored``: ``raw`` or ``ema``), ``raw_maps`` / ``ema_maps`` both weights'
    (None: not evaluated); ``factor``: long budget / the study's budget (``steps`` / ``seconds``: the long
    budget). ``paired``: the seeds are the study's common seeds (seed s: the same images, augmentations and
    per-part initial streams for every point), so points compare seed by seed. ``wall_seconds``: training and
    evaluation wall time per seed; ``history``: one entry per trained seed (``batch``: the start of the
    ``scalesearch fidelity`` call that trained it, ``command``, ``machine``, ``seed``, ``finished``); ``curves``: per
    seed, the learning curve of the scored weights (step as a string -> val mAP at the study's ``train.curve``
    fractions of the long budget, the final step being ``maps``), None for a seed trained before curves were
    kept."""

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
    curves: tuple[dict[str, float] | None, ...] | None = None

    @property
    def long_map(self) -> float:
        return statistics.fmean(self.maps)

    def seed_curves(self) -> list[list[tuple[int, float]]]:
        """Per seed with a learning curve: its (step, mAP) at the curve steps, then (``steps``, the final mAP)."""
        found = []
        for curve, final in zip(self.curves or (), self.maps):
            if curve is not None and self.steps is not None:
                found.append([*sorted((int(k), float(v)) for k, v in curve.items()), (self.steps, float(final))])
        return found

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
        for key in ("maps", "raw_maps", "ema_maps", "wall_seconds", "curves"):
            if (key == "maps" or data.get(key) is not None) and len(data[key]) != len(data["seeds"]):
                raise RecordError(f"{key}: must hold one value per seed ({len(data['seeds'])} seeds), but got "
                                  f"{len(data[key])}")
        if not data["maps"]:
            raise RecordError("maps: must hold one mAP per seed, but got none")
        data = {k: v for k, v in data.items() if k in known}
        tuples = {k: tuple(data[k]) for k in _TUPLES if data.get(k) is not None}
        return cls(**{**data, **tuples, "history": tuple(data.get("history", ()))})


_TUPLES = ("seeds", "maps", "raw_maps", "ema_maps", "wall_seconds", "curves")
KINDS = {"group": "str", "number": "int", "spec": "object", "flops": "number", "proxy_map": "number",
         "factor": "number", "steps": "int?", "seconds": "number?", "seeds": "list[int]", "maps": "list[number]",
         "label": "str?", "latency": "object?", "rule": "object?", "scored": "str", "raw_maps": "list[number]?",
         "ema_maps": "list[number]?", "paired": "bool", "wall_seconds": "list[number]?", "history": "list[object]",
         "curves": "list[object[number]?]?"}


def _name(row: dict[str, Any]) -> str:
    return f"group {row['group']!r}" if isinstance(row.get("group"), str) else ""


def load_fidelity(run_dir: str | Path, file: str = FILE, writer: str = "scalesearch fidelity") -> list[FidelityRecord]:
    """The records of ``RUN/fidelity.json`` (or ``RUN/<file>``, written by ``writer``); [] when there are none.
    ``UserError`` naming the file and the record when it is damaged (not JSON, a missing key, a wrong type)."""
    path = Path(run_dir) / file
    if not path.is_file():
        return []
    return decode_rows(path, read_json(path), FidelityRecord.from_json, f"records written by `{writer}`", _name)


def longer_file(factor: float) -> str:
    """``fidelity_x16.json``: the records of ``scalesearch fidelity --longer`` at ``factor`` x the study's budget."""
    return f"fidelity_x{factor:g}.json"


def is_longer_file(name: str) -> bool:
    """Whether ``name`` is one ``longer_file`` writes (not a copy such as ``fidelity_x16_old.json``)."""
    return re.fullmatch(r"fidelity_x[0-9.]+\.json", name) is not None


def lasting_points(rows: Sequence[FidelityRecord]) -> tuple[FidelityRecord, FidelityRecord]:
    """(the baseline, the most accurate other point) of a retraining against a baseline: the pair whose verdict
    ``retrain.fidelity.retrain_longer`` checks at a longer budget. The baseline is the first labelled point with a measured latency,
    the one the report's "Against the baseline" section judges against. ``UserError`` when there is no such pair."""
    base = next((r for r in rows if r.label and r.latency is not None), None)
    others = [r for r in rows if not r.label]
    if base is None or not others:
        raise UserError(f"--longer: {FILE} must hold a labelled baseline with a measured latency and another "
                        f"retrained point (retrain them first: scalesearch fidelity RUN --against LABEL), but it holds "
                        f"{sum(1 for r in rows if r.label and r.latency is not None)} such baseline(s) and "
                        f"{len(others)} other point(s)")
    return base, max(others, key=lambda r: r.long_map)


def kendall(rows: Sequence[FidelityRecord]) -> tuple[float, float]:
    """Kendall's tau-b between proxy and long-budget mAP and its two-sided p-value (``scipy.stats.kendalltau``);
    NaN when either side is constant."""
    from scipy import stats

    result = stats.kendalltau([r.proxy_map for r in rows], [r.long_map for r in rows])
    return float(result.statistic), float(result.pvalue)


def spearman(rows: Sequence[FidelityRecord]) -> tuple[float, float]:
    """Spearman's rho between proxy and long-budget mAP and its p-value (``scipy.stats.spearmanr``); NaN, without
    scipy's warning, when either side is constant (as a bootstrap resample of few points often is)."""
    from scipy import stats

    proxy, long = [r.proxy_map for r in rows], [r.long_map for r in rows]
    if len(set(proxy)) < 2 or len(set(long)) < 2:
        return float("nan"), float("nan")
    result = stats.spearmanr(proxy, long)
    return float(result.statistic), float(result.pvalue)


def _bootstrap(count: int, statistic: Callable[[Any], float], n: int, seed: int,
               level: float) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(indices)`` over ``count`` points drawn with replacement ``n``
    times (``numpy.random.default_rng(seed)``); resamples where it is undefined (NaN) are dropped."""
    import numpy as np

    rng = np.random.default_rng(seed)
    values = [v for v in (statistic(rng.integers(0, count, count)) for _ in range(n)) if v == v]
    if not values:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_interval(rows: Sequence[FidelityRecord], statistic: str = "kendall", n: int = 2000,
                       seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``kendall`` or ``spearman`` over the retrained points (pairs resampled
    with replacement, ``n`` times, ``numpy.random.default_rng(seed)``: the same seed gives the same interval).
    Resamples whose correlation is undefined (all ties) are dropped."""
    func = {"kendall": kendall, "spearman": spearman}[statistic]
    return _bootstrap(len(rows), lambda chosen: func([rows[i] for i in chosen])[0], n, seed, level)


def bootstrap_difference(first: Sequence[FidelityRecord], second: Sequence[FidelityRecord],
                         statistic: str = "kendall", n: int = 2000, seed: int = 0,
                         level: float = 0.95) -> tuple[float, float, float]:
    """Is one estimator's ranking better than another's on the same points? (difference, low, high): ``kendall`` (or
    ``spearman``) of ``first`` minus that of ``second``, and its paired percentile bootstrap interval: each resample
    draws the points with replacement once and scores both estimators on it, so what the points share (their
    reference noise, their spread) cancels out of the difference. ``first`` and ``second``: one record per point,
    the same points (``group``) in the same order, each ``proxy_map`` an estimator's value and ``long_map`` the
    common reference. Resamples where either correlation is undefined are dropped."""
    if [(r.group, r.long_map) for r in first] != [(r.group, r.long_map) for r in second]:
        raise ValueError("bootstrap_difference: both sides must hold the same points, in the same order, with the "
                         "same reference")
    func = {"kendall": kendall, "spearman": spearman}[statistic]

    def difference(rows_a: Sequence[FidelityRecord], rows_b: Sequence[FidelityRecord]) -> float:
        return func(rows_a)[0] - func(rows_b)[0]

    low, high = _bootstrap(len(first), lambda chosen: difference([first[i] for i in chosen],
                                                                 [second[i] for i in chosen]), n, seed, level)
    return float(difference(first, second)), low, high


def top1_regret(rows: Sequence[FidelityRecord]) -> float:
    """Long-budget mAP lost by trusting the proxy's winner: best long mAP minus the proxy winner's long mAP."""
    winner = max(rows, key=lambda r: r.proxy_map)
    return max(r.long_map for r in rows) - winner.long_map


# ------------------------------------------------------------------------- the reference's own noise
@dataclass(frozen=True)
class Reliability:
    """How well ``k`` seeds of the long budget measure the points. ``seed_r``: the mean Pearson correlation over
    points between two seeds (every pair of seeds; the reliability of one seed); ``mean_r``: the reliability of
    the ``seeds``-seed mean by Spearman-Brown, ``k r / (1 + (k - 1) r)`` (for two seeds, the split-half
    reliability); ``seed_tau``: Kendall's tau between two seeds (mean over pairs); ``ceiling_tau``: the tau that a
    perfect proxy (the points' true long-budget mAP) would reach against the ``seeds``-seed mean,
    ``(2 / pi) asin(sqrt(mean_r))`` (the correlation between truth and a measurement is the root of its
    reliability; Greiner's relation turns it into tau for normal errors); ``seed_sd``: the median over points of
    the standard deviation over seeds."""

    points: int
    seeds: int
    seed_r: float
    mean_r: float
    seed_tau: float
    ceiling_tau: float
    seed_sd: float

    def seeds_for(self, target: float) -> int | None:
        """Seeds whose mean would reach reliability ``target`` (Spearman-Brown solved for k); None when one seed's
        reliability is not positive."""
        return seeds_for_reliability(self.seed_r, target)


def spearman_brown(r: float, k: float) -> float:
    """Reliability of the mean of ``k`` parallel measurements whose single reliability is ``r``."""
    return k * r / (1 + (k - 1) * r)


def seeds_for_reliability(r: float, target: float) -> int | None:
    """The smallest number of seeds whose mean reaches ``target`` by Spearman-Brown; None when ``r <= 0``."""
    import math

    if not r > 0:
        return None
    if r >= target:
        return 1
    return math.ceil(target * (1 - r) / (r * (1 - target)) - 1e-9)


def seed_matrix(rows: Sequence[FidelityRecord], weights: str = "scored") -> tuple[list[int], list[list[float]]] | None:
    """The seeds every row has for ``weights`` (``scored``, ``raw`` or ``ema``) and each row's mAP on them
    (rows x seeds); None when fewer than two seeds are shared or a row lacks those weights. Unpaired records
    (each point's own seeds) are matched by position (first seed, second, ...; the seed list is then the
    positions), which is as good as any matching for independent draws."""
    found = [r.weights_maps(weights) for r in rows]
    if not rows or any(m is None for m in found):
        return None
    if not all(r.paired for r in rows):
        width = min(len(maps) for maps in found)
        return (list(range(width)), [list(maps[:width]) for maps in found]) if width >= 2 else None
    shared = sorted(set.intersection(*(set(r.seeds) for r in rows)))
    if len(shared) < 2:
        return None
    return shared, [[dict(zip(r.seeds, maps))[s] for s in shared] for r, maps in zip(rows, found)]


def reliability(rows: Sequence[FidelityRecord], weights: str = "scored") -> Reliability | None:
    """The ``Reliability`` of the long budget over the seeds every row shares (None: fewer than two, or fewer
    than three points)."""
    import itertools
    import math

    import numpy as np
    from scipy import stats

    found = seed_matrix(rows, weights)
    if found is None or len(rows) < 3:
        return None
    seeds, values = found
    matrix = np.asarray(values)
    pairs = list(itertools.combinations(range(len(seeds)), 2))
    seed_r = float(np.mean([np.corrcoef(matrix[:, a], matrix[:, b])[0, 1] for a, b in pairs]))
    seed_tau = float(np.mean([stats.kendalltau(matrix[:, a], matrix[:, b]).statistic for a, b in pairs]))
    mean_r = spearman_brown(seed_r, len(seeds))
    ceiling = 2 / math.pi * math.asin(math.sqrt(mean_r)) if mean_r > 0 else float("nan")
    sd = float(np.median(matrix.std(axis=1, ddof=1)))
    return Reliability(len(rows), len(seeds), seed_r, mean_r, seed_tau, ceiling, sd)


def kendall_against(rows: Sequence[FidelityRecord], weights: str = "scored") -> tuple[float, float]:
    """Kendall's tau (and p) of the proxy mAP against the mean over seeds of ``weights``' long-budget mAP: over the
    seeds every row shares (``seed_matrix``, the reference ``reliability`` measures), else each row's own."""
    from scipy import stats

    shared = seed_matrix(rows, weights)
    means = ([statistics.fmean(values) for values in shared[1]] if shared is not None else
             [statistics.fmean(r.weights_maps(weights) or r.maps) for r in rows])
    result = stats.kendalltau([r.proxy_map for r in rows], means)
    return float(result.statistic), float(result.pvalue)


def batches(rows: Sequence[FidelityRecord]) -> list[dict[str, Any]]:
    """The retraining history as batches (one per ``scalesearch fidelity`` call): its start, last finished seed,
    command, machine, the points it trained and the seeds, in start order; ``reused_from``: the records file the
    seeds were copied from (``--reuse``; None: trained for this run)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        for entry in row.history:
            key = (str(entry.get("batch")), str(entry.get("command")), entry.get("reused_from"))
            batch = found.setdefault(key, {"batch": key[0], "command": key[1], "machine": entry.get("machine"),
                                           "reused_from": key[2], "finished": "", "points": set(), "seeds": set(),
                                           "trainings": 0})
            batch["finished"] = max(batch["finished"], str(entry.get("finished", "")))
            batch["points"].add(row.group)
            batch["seeds"].add(entry.get("seed"))
            batch["trainings"] += 1
    return [{**b, "points": sorted(b["points"]), "seeds": sorted(s for s in b["seeds"] if s is not None)}
            for b in sorted(found.values(), key=lambda b: b["batch"])]
