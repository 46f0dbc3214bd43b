"""The trial lifecycle, written once: parameters -> spec -> cost -> budget -> estimate -> ``TrialRecord``.

Backends only schedule ``Evaluator.evaluate``: they pass a ``TrialInfo`` (which point, which seed) and two
optional hooks (``on_costed`` before training, e.g. to give a sampler the constraints; ``on_eval`` at each
intermediate evaluation, which may raise one of ``prune_signals`` to stop the trial). A spec over budget is
never trained (``infeasible``, with the reason); a training failure or NaN metrics give ``failed`` with the
reason, and the study goes on. How the accuracy is estimated is the study's ``Estimator``
(``scalesearch.search.estimators``, ``search.estimator``), built once per ``Evaluator``.

Duplicates: a backend may also pass ``reuse``, asked once the trial's point is resolved and costed (before any
latency, zero-cost score or estimate) with the new record: it returns an earlier finished record of the run with
the same ``records.measurement_key`` (same spec, space values, budget and seed) whose result stands for this one
(``records.REUSABLE``: complete, infeasible, pruned), or None. The trial then ends a duplicate
(``records.as_duplicate``): the earlier outcome, ``duplicate_of`` its number, nothing estimated.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from scalesearch.errors import UserError
from scalesearch.metrics import COCO_METRICS, ESTIMATE_METRICS, METRICS, get_metric, objective_value
from scalesearch.records import State, TrialRecord, as_duplicate, group_label
from scalesearch.search.estimators import EstimateFailed, StudyContext, StudyData, make_estimator
from scalesearch.search.multi_fidelity import Pruned
from scalesearch.search.space import BUDGET_PARAM


@dataclass(frozen=True)
class TrialInfo:
    """Who a trial is: its sampled ``params``, the ``point`` they were first drawn at and the seed index.
    ``number`` is ``point * seeds + seed_index`` on every backend (a retry keeps the number it replaces)."""

    params: dict[str, Any]
    point: int
    seed_index: int = 0
    label: str | None = None
    retry_of: int | None = None


class Evaluator:
    """Everything a trial needs that does not change between trials (space, data, settings).

    ``prune_signals``: exception types ``on_eval`` raises to stop a trial (it ends ``pruned``), besides
    ``multi_fidelity.Pruned``.
    ``contain_errors``: any other error in one trial (out of memory, a numerical failure) is recorded
    as ``failed`` with its reason; off, it propagates (Ray retries crashed trials itself).
    """

    def __init__(self, config: Any, progress: bool = False, cost_cache: Path | None = None, *,
                 prune_signals: tuple[type[BaseException], ...] = (), contain_errors: bool = True,
                 zero_cost: bool = True, estimator_cache: Path | None = None) -> None:
        """``cost_cache``: folder for counted costs, shared by workers and resumed runs
        (``$SCALESEARCH_COST_CACHE`` wins when set). ``estimator_cache``: the estimator's folder under the run
        folder (``StudyContext.cache_dir``). ``zero_cost``: record every trial's zero-cost scores
        (``scalesearch.measure.zero_cost``, about one training step's CPU); ``search.zero_cost: false`` in the study or
        ``$SCALESEARCH_ZERO_COST=0`` turns it off."""
        import os

        from scalesearch.measure.cost import CACHE_ENV

        self.config, self.space, self.progress = config, config.search_space, progress
        self.cost_cache = os.environ.get(CACHE_ENV) or cost_cache
        self.prune_signals, self.contain_errors = (*prune_signals, Pruned), contain_errors
        self.train_data, self.val_data = dataset_pairs(config.dataset)
        self.num_classes = num_classes(self.train_data[1])
        data = StudyData(self.train_data, self.val_data, self.num_classes)
        self.estimator = make_estimator(StudyContext(config, data, estimator_cache, progress))
        self.zero_cost = (zero_cost and config.search.zero_cost
                          and os.environ.get("SCALESEARCH_ZERO_COST", "1") != "0") or config.search.prefilter is not None
        self.zero_cost_batches: dict = {}  # the study's fixed scoring batch per (resolution, normalisation)

    def number(self, info: TrialInfo) -> int:
        return info.point * self.config.seeds + info.seed_index

    def evaluate(self, info: TrialInfo, *, on_costed: Callable[[TrialRecord], None] | None = None,
                 on_eval: Callable[[int, float], None] | None = None, threads: int | None = None,
                 gate: Callable[[TrialRecord], str | None] | None = None,
                 reuse: Callable[[TrialRecord], TrialRecord | None] | None = None) -> TrialRecord:
        """The whole trial; never raises for a trial's own failure unless ``contain_errors`` is off.
        ``gate``: asked once a feasible trial is costed and scored; a reason it returns ends the trial
        ``pruned`` untrained (the zero-cost prefilter). ``reuse``: the earlier trial this one duplicates, or None
        (module docstring); a duplicate is handed to ``on_costed`` too (its budget constraints), never estimated."""
        started = time.perf_counter()
        record, spec = self.identify(info)
        earlier = reuse(record) if reuse is not None else None
        if earlier is not None:
            record = as_duplicate(record, earlier)
            if on_costed is not None:
                on_costed(record)
            return record.replace(values=self.values(record), seconds=round(time.perf_counter() - started, 3))
        record, spec = self.cost(info, (record, spec))
        if on_costed is not None:
            on_costed(record)
        reason = gate(record) if gate is not None and record.state is State.RUNNING else None
        if reason:
            record = record.replace(state=State.PRUNED, reason=reason, steps=0)
        if record.state is State.RUNNING:
            record = self.estimate(record, spec, on_eval, threads)
        return record.replace(values=self.values(record), seconds=round(time.perf_counter() - started, 3))

    # ---- the steps --------------------------------------------------------------------------------

    def identify(self, info: TrialInfo) -> tuple[TrialRecord, Any]:
        """Resolve and count the spec and pick its budget: the running record (everything
        ``records.measurement_key`` reads) and the spec; nothing measured yet."""
        from scalesearch.measure.cost import count_cost

        spec = self.space.resolve(info.params, self.num_classes)
        cost = count_cost(spec, cache_dir=self.cost_cache)
        budget = self.budget_for(info.params, info.point, cost.flops)
        spec_fields = spec.to_dict()
        spec_fields.pop("name", None)
        space = {k: v for k, v in self.space.values(info.params).items() if k not in spec_fields}
        record = TrialRecord(
            number=self.number(info), state=State.RUNNING, seed=self.config.seed + info.seed_index,
            group=group_label(info.params, budget), params_sampled=dict(info.params), spec=spec_fields,
            space=space, budget_flops=budget, flops=int(cost.flops), params=int(cost.params),
            label=info.label, retry_of=info.retry_of, estimator=self.config.search.estimator)
        return record, spec

    def cost(self, info: TrialInfo, identified: tuple[TrialRecord, Any] | None = None) -> tuple[TrialRecord, Any]:
        """Resolve and cost the spec, pick its budget (``identify``, unless ``identified`` is its result already),
        measure its latency when the study uses it (``latency``); ``infeasible`` (and why) when over budget.
        Feasible or not, the spec's zero-cost scores on the study's first training batch (unless turned off)."""
        record, spec = identified if identified is not None else self.identify(info)
        excess = {k: v for k, v in self.constraints(record).items() if v > 0}
        if self.config.measures_latency and all(v <= 1.0 for v in excess.values()):
            record = self.latency(record, spec)  # not when a count is far over budget: minutes to learn nothing
            excess = {k: v for k, v in self.constraints(record).items() if v > 0}
            if record.state is State.FAILED:
                return record, spec
        # Infeasible specs are scored too (a cheap ranking signal), unless far over budget (memory).
        if self.zero_cost and all(v <= 1.0 for v in excess.values()):
            from scalesearch.measure import zero_cost
            cfg = self.config.trial_train_config(self.config.seed)  # one batch for the whole study
            record = record.replace(zero_cost=zero_cost.trial_scores(spec, self.train_data, cfg,
                                                                     self.zero_cost_batches))
        if excess:
            reason = "; ".join(_over_budget(record, key, self.limit(record, key)) for key in excess)
            record = record.replace(state=State.INFEASIBLE, reason=reason)
        return record, spec

    def latency(self, record: TrialRecord, spec: Any) -> TrialRecord:
        """The spec's measured latency (the study's ``latency`` settings, ``scalesearch.measure.latency``), once per
        architecture: cached in memory and in the cost-cache folder, keyed by spec, settings and machine. With
        ``latency.table``, the per-block table's prediction instead (``scalesearch.measure.latency_table``;
        ``latency_source: table``): the points of the final front are measured after the search
        (``scalesearch.search.latency_front``).

        Measurements hold a machine-wide lock, so two workers never time at once; the other workers'
        training is not paused, though, and can slow a measurement (``search.workers: 1`` times on an
        otherwise idle study). ``latency_exclusive`` records whether the lock was held. A failure to measure
        (an export error) ends the trial ``failed``."""
        from scalesearch.measure import latency
        s = self.config.latency
        settings = latency.LatencySettings(s.runtime, s.threads, s.batch, s.warmup, s.runs)
        try:
            if s.table:
                return _table_latency(record, spec, settings, self.cost_cache)
            result = latency.cached_latency(spec, settings, cache_dir=self.cost_cache)
        except UserError:
            raise
        except Exception as exc:
            if not self.contain_errors:
                raise
            return record.replace(state=State.FAILED, reason=f"latency measurement failed: {_error_line(exc)}")
        return record.replace(**measured_fields(result), latency_source="measured")

    def estimate(self, record: TrialRecord, spec: Any, on_eval: Callable[[int, float], None] | None = None,
                 threads: int | None = None) -> TrialRecord:
        """Estimate ``spec``'s accuracy with the study's estimator: the record with metrics, timings, the
        estimate's wall and CPU seconds (its preparation, once per worker, not included) and its final state."""
        intermediate: dict[str, float | None] = {}

        def report(step: int, metrics: dict[str, float]) -> None:
            intermediate[str(step)] = metrics.get("map")
            if on_eval is not None:
                on_eval(step, metrics.get("map", 0.0))

        record = record.replace(intermediate=intermediate, threads=threads or self.config.train_config.threads)
        self.estimator.ensure_prepared()
        clock = _Clock()
        try:
            result = self.estimator.estimate(spec, record.seed, threads=threads, on_eval=report)
        except EstimateFailed as exc:
            return record.replace(state=State.FAILED, reason=exc.reason, **clock.read())
        except self.prune_signals as exc:
            return record.replace(state=State.PRUNED, reason=str(exc) or "pruned", **clock.read())
        except UserError:
            raise
        except Exception as exc:
            if not self.contain_errors:
                raise
            return record.replace(state=State.FAILED, reason=f"error: {_error_line(exc)}", **clock.read())
        metrics = {key: _float(result.metrics.get(key)) for key in COCO_METRICS}
        metrics |= {key: _float(result.metrics[key]) for key in ESTIMATE_METRICS
                    if key not in metrics and result.metrics.get(key) is not None}
        for step, value in sorted(result.curve.items()):  # the learning curve beside what on_eval reported
            intermediate.setdefault(str(step), _float(value))
        record = record.replace(metrics=metrics, steps=result.steps, train_seconds=result.train_seconds,
                                eval_seconds=result.eval_seconds, images_per_second=result.images_per_second,
                                **clock.read())
        bad = [key for key in COCO_METRICS if metrics[key] is None or not math.isfinite(metrics[key])]
        if bad:
            return record.replace(state=State.FAILED, reason=f"evaluation gave non-finite {', '.join(bad)}")
        return record.replace(state=State.COMPLETE)

    # ---- budgets and values -----------------------------------------------------------------------

    def budget_for(self, params: dict[str, Any], point: int, flops: int) -> float | None:
        """The FLOPs budget of a trial (``budgets.assign``): the sampled rung, the round-robin rung
        of its point, or the smallest rung ``flops`` fits under (else the largest)."""
        ladder, assign = self.config.budgets.flops, self.config.budgets.assign
        if not ladder:
            return None
        if BUDGET_PARAM in params:
            return float(params[BUDGET_PARAM])
        if assign == "round_robin":
            return ladder[point % len(ladder)]
        return next((rung for rung in ladder if flops <= rung), ladder[-1])

    def constraints(self, record: TrialRecord) -> dict[str, float]:
        """Relative budget excess per budgeted metric (<= 0 is feasible), the form Optuna's constrained
        samplers use. The FLOPs limit is the trial's rung of the ladder; others come from ``budgets``."""
        out = {}
        for name, metric in METRICS.items():
            limit = self.limit(record, name) if metric.budget else None
            if limit and record.get(name) is not None:
                out[name] = record.get(name) / limit - 1.0
        return out

    def limit(self, record: TrialRecord, name: str) -> float | None:
        return record.budget_flops if name == "flops" else getattr(self.config.budgets, name, None)

    def values(self, record: TrialRecord) -> tuple[float, ...] | None:
        """``objective_values`` in this study."""
        return objective_values(self.config, record)


def objective_values(config: Any, record: TrialRecord) -> tuple[float, ...] | None:
    """Objective values of ``record`` in the study's order. Complete: as measured. Infeasible: a cost metric keeps
    its counted value and a latency its measured one, anything training would produce gets the metric's worst
    (never a flattering 0 for a minimised time). Failed, pruned: None (not a point of the study)."""
    if record.state not in (State.COMPLETE, State.INFEASIBLE):
        return None
    out = []
    for objective in config.objectives:
        metric = get_metric(objective.metric)
        known = record.state is State.COMPLETE or metric.source in ("cost", "measurement")
        out.append(objective_value(metric.name, record.get(metric.name) if known else None))
    return tuple(out)


def measured_fields(result: Any) -> dict[str, Any]:
    """The record fields of a protocol measurement (a ``latency.LatencyResult``); with ``latency_source:
    measured`` they replace a table prediction, which stays in ``latency_table_ms``."""
    return {"latency_ms": result.median_ms["total"], "latency_network_ms": result.median_ms["network"],
            "latency_post_ms": result.median_ms["post"], "latency_iqr_ms": result.iqr_ms["total"],
            "latency_exclusive": result.exclusive}


def _table_latency(record: TrialRecord, spec: Any, settings: Any, cache_dir: Any) -> TrialRecord:
    """``record`` with the per-block table's prediction (``latency_source: table``; no IQR: no one measurement)."""
    from scalesearch.measure.latency_table import table_latency

    table = table_latency(spec, settings, cache_dir=cache_dir)
    return record.replace(latency_ms=table.total_ms, latency_network_ms=table.network_ms,
                          latency_post_ms=table.post_ms, latency_iqr_ms=None, latency_exclusive=table.exclusive,
                          latency_source="table", latency_table_ms=table.total_ms)


class _Clock:
    """Wall and CPU seconds since it was made (CPU: this process, every thread: what the estimate took)."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> dict[str, float]:
        return {"estimate_seconds": round(time.perf_counter() - self.wall, 3),
                "estimate_cpu_seconds": round(time.process_time() - self.cpu, 3)}


def _over_budget(record: TrialRecord, key: str, limit: float) -> str:
    unit = get_metric(key).unit
    if unit in ("multiply-adds", "parameters"):  # counts, in billions
        return f"{key} {record.get(key) / 1e9:.3f}B over the budget {limit / 1e9:.3f}B"
    return f"{key} {record.get(key):.4g} {unit} over the budget {limit:.4g} {unit}"


def _error_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (a trial's recorded reason stays one line)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def dataset_pairs(dataset: Any) -> tuple[tuple[Path, Path], tuple[Path, Path]]:
    """(images_dir, ann_file) for train and val: explicit files, a COCO folder or the synthetic set."""
    from scalesearch.data import resolve_dataset, synthetic_dataset

    root = synthetic_dataset(**dataset.synthetic) if dataset.path is None else dataset.path
    pairs = []
    for split in ("train", "val"):
        files = getattr(dataset, split)
        pairs.append((Path(files.images), Path(files.annotations)) if files else resolve_dataset(root, split))
    return pairs[0], pairs[1]


def num_classes(ann_file: Path) -> int:
    """Number of categories in a COCO annotation file (the detector's class count)."""
    return len(json.loads(Path(ann_file).read_text()).get("categories", [])) or 1
