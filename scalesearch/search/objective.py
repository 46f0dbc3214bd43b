"""The search objective, shared by the backends: parameters -> spec -> cost -> (train + eval) -> record.

``Evaluator.evaluate`` never trains a spec over budget: FLOPs and params are counted first (cached
by spec in ``scalesearch.cost``) and such a trial is recorded ``infeasible`` with the reason. A
training failure (NaN/inf loss, ``TrainingFailed``) or NaN metrics give a ``failed`` record with the
reason; the study goes on.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

from scalesearch.errors import UserError
from scalesearch.search.records import METRIC_KEYS, add_spec, empty_record
from scalesearch.search.space import BUDGET_PARAM, SearchSpace


class Evaluator:
    """Everything a trial needs that does not change between trials (space, data, settings).

    ``passthrough``: exception types that ``train`` lets through (e.g. ``optuna.TrialPruned``); any
    other error in one trial (out of memory, a numerical failure) is recorded as ``failed`` with
    its reason and the study goes on. ``None`` lets every error through (Ray retries crashed
    trials itself, ``search.ray.max_failures``).
    """

    passthrough: tuple[type[BaseException], ...] | None = None

    def __init__(self, config: Any, progress: bool = False, cost_cache: Path | None = None) -> None:
        """``cost_cache``: folder for counted costs, shared by workers and resumed runs
        (``$SCALESEARCH_COST_CACHE`` wins when set)."""
        import os

        from scalesearch.cost import CACHE_ENV

        self.config = config
        self.cost_cache = os.environ.get(CACHE_ENV) or cost_cache
        self.space = SearchSpace(config)
        self.progress = progress
        self.train_data, self.val_data = dataset_pairs(config.dataset)
        self.num_classes = num_classes(self.train_data[1])

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

    def constraints(self, record: dict[str, Any]) -> dict[str, float]:
        """Relative budget excess (<= 0 is feasible), the form Optuna's constrained samplers use."""
        out = {}
        if record["budget_flops"]:
            out["flops"] = record["flops"] / record["budget_flops"] - 1.0
        if self.config.budgets.params:
            out["params"] = record["params"] / self.config.budgets.params - 1.0
        return out

    def start(self, number: int, params: dict[str, Any], seed: int, point: int) -> dict[str, Any]:
        """Resolve and cost the spec, pick its budget; the record says ``infeasible`` (and why) when
        the spec is over budget."""
        from scalesearch.cost import count_cost

        spec = self.space.resolve(params, self.num_classes)
        cost = count_cost(spec, cache_dir=self.cost_cache)
        budget = self.budget_for(params, point, cost.flops)
        record = empty_record(number, params, self.space.values(params), seed, budget)
        add_spec(record, spec, cost)
        record["spec"] = spec
        excess = {k: v for k, v in self.constraints(record).items() if v > 0}
        if excess:
            record["state"] = "infeasible"
            record["reason"] = "; ".join(_over_budget(record, key, self.config) for key in excess)
        return record

    def train(self, record: dict[str, Any], on_eval: Callable[[int, float], None] | None = None) -> None:
        """Proxy-train and evaluate the record's spec, filling metrics, timings and the state."""
        from scalesearch.config import make_train_config
        from scalesearch.train import TrainingFailed, train_and_evaluate

        spec = record.pop("spec")
        cfg = make_train_config(self.config.train, seed=record["seed"])

        def report(step: int, metrics: dict[str, float]) -> None:
            record["intermediate"][str(step)] = metrics.get("map")
            if on_eval is not None:
                on_eval(step, metrics.get("map", 0.0))

        try:
            result = train_and_evaluate(spec, self.train_data, self.val_data, cfg,
                                        on_eval=report, progress=self.progress)
        except TrainingFailed as exc:
            record.update(state="failed", reason=f"training failed: {exc.reason}")
            return
        except Exception as exc:
            if self.passthrough is None or isinstance(exc, (UserError, *self.passthrough)):
                raise
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            record.update(state="failed", reason=f"error: {type(exc).__name__}: {message}")
            return
        record.update(steps=result.steps, train_seconds=result.train_seconds,
                      eval_seconds=result.eval_seconds, images_per_second=result.images_per_second)
        record.update({key: _float(result.metrics.get(key)) for key in METRIC_KEYS})
        bad = [key for key in METRIC_KEYS if record[key] is None or not math.isfinite(record[key])]
        if bad:
            record.update(state="failed", reason=f"evaluation gave non-finite {', '.join(bad)}")
        else:
            record["state"] = "complete"

    def values(self, record: dict[str, Any]) -> list[float]:
        """Objective values in the study's order; infeasible trials get the worst metric (0 mAP)."""
        return [float(record[o.metric] or 0.0) for o in self.config.objectives]

    def evaluate(self, number: int, params: dict[str, Any], seed: int, point: int,
                 on_eval: Callable[[int, float], None] | None = None) -> dict[str, Any]:
        """The whole trial, for callers that need no hook between costing and training."""
        started = time.perf_counter()
        record = self.start(number, params, seed, point)
        if record["state"] == "running":
            self.train(record, on_eval)
        finish(record, self.values(record) if record["state"] in ("complete", "infeasible") else None, started)
        return record


def finish(record: dict[str, Any], values: list[float] | None, started: float) -> dict[str, Any]:
    record.pop("spec", None)
    record["values"] = values
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record


def _over_budget(record: dict[str, Any], key: str, config: Any) -> str:
    limit = record["budget_flops"] if key == "flops" else config.budgets.params
    return f"{key} {record[key] / 1e9:.3f}B over the budget {limit / 1e9:.3f}B"


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
