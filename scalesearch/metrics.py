"""Metrics as data: one registry of what a trial can be scored on.

Each ``Metric`` says its direction, unit, what produces it (``cost``: counted before training, so an
infeasible trial has it too; ``training``: proxy training + COCO evaluation; ``measurement``: timed on this
machine before training, so an infeasible trial has it too) and
what a trial that lacks it is worth (``worst``: the worst value for its direction). Config validation,
objectives, budgets, Pareto fronts and report axes all read ``METRICS`` (a ``scalesearch.registry.Registry``);
a new metric is one entry in the ``_add(...)`` call below.
Torch-free, so the command line and reports can use it without importing the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scalesearch.registry import Registry

DIRECTIONS = ("maximize", "minimize")
SOURCES = ("cost", "training", "measurement")


@dataclass(frozen=True)
class Metric:
    """name: record key; direction: the better way (``maximize``/``minimize``); unit: for axes;
    label: for reports; source: ``cost`` / ``training`` / ``measurement``; budget: may bound a study
    (``budgets.<name>``); worst: the value a trial without it gets as an objective."""

    name: str
    direction: str
    unit: str
    label: str
    source: str
    budget: bool = False
    worst: float | None = None

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS or self.source not in SOURCES:
            raise ValueError(f"metric {self.name}: bad direction {self.direction!r} or source {self.source!r}")
        if self.worst is None:
            object.__setattr__(self, "worst", -math.inf if self.direction == "maximize" else math.inf)

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a > b if self.maximize else a < b


def _coco(name: str, label: str) -> Metric:
    # mAP is bounded below by 0: an untrained detector's score, and the worst an objective can report.
    return Metric(name, "maximize", "", label, "training", worst=0.0)


METRICS: Registry[Metric] = Registry("metric")


def _add(*metrics: Metric) -> None:
    for metric in metrics:
        METRICS.add(metric.name, metric)


_add(
    _coco("map", "mAP"), _coco("map50", "AP50"), _coco("map75", "AP75"),
    _coco("map_small", "AP small"), _coco("map_medium", "AP medium"), _coco("map_large", "AP large"),
    # The same mAP of the two weights every training evaluates (``train.scored`` picks which one is ``map``).
    _coco("map_raw", "mAP (raw weights)"), _coco("map_ema", "mAP (EMA weights)"),
    # Mean training loss over the last half of the run (sum-of-training-losses, Ru et al. 2021): free, lower better.
    Metric("train_loss", "minimize", "loss", "training loss (last half)", "training"),
    Metric("flops", "minimize", "multiply-adds", "FLOPs", "cost", budget=True),
    Metric("params", "minimize", "parameters", "params", "cost", budget=True),
    Metric("train_seconds", "minimize", "s", "training time", "training"),
    Metric("images_per_second", "maximize", "img/s", "training throughput", "training", worst=0.0),
    # Measured before training by scalesearch.measure.latency (one protocol: batch 1, 10 warm-up + 40 timed runs by
    # default), so an infeasible trial has them too, as it has its counted costs.
    Metric("latency_ms", "minimize", "ms", "latency", "measurement", budget=True),
    Metric("latency_network_ms", "minimize", "ms", "network latency", "measurement"),
    Metric("latency_post_ms", "minimize", "ms", "post-processing latency", "measurement"),
)
# What every estimate must report (COCO evaluation of the scored weights) ...
COCO_METRICS = ("map", "map50", "map75", "map_small", "map_medium", "map_large")
# ... and what a trial record keeps of an estimate: those, plus the optional ones an estimator may add.
ESTIMATE_METRICS = (*COCO_METRICS, "map_raw", "map_ema", "train_loss")
LATENCY_METRICS = tuple(name for name, m in METRICS.items() if m.source == "measurement")


def get_metric(name: str) -> Metric:
    """The registered metric ``name``; ``UserError`` listing close names otherwise."""
    return METRICS.get(name)


def objective_value(metric: str, value: float | None) -> float:
    """``value`` as an objective: the metric's worst when missing or not finite (never a flattering 0)."""
    if value is None or not math.isfinite(value):
        return get_metric(metric).worst
    return float(value)
