"""How a trial's accuracy is estimated: one family (``Estimator``), one registry (``ESTIMATORS``), one module per
member. The study picks one with ``search.estimator`` (default ``train``).

The trial lifecycle (``scalesearch.search.objective.Evaluator``) costs a spec, then hands the feasible ones to
the study's estimator: ``estimate(spec, seed, threads=, on_eval=) -> Estimate`` (COCO metrics, how many steps,
timings). An estimator owns per-study state, built by ``prepare()`` once per worker process, lazily, before its
first estimate (the data pairs for ``train``; a feature cache or a trained supernet for the next members;
what must be built once for all workers goes in ``prepare_run()``, which the backend calls first), and
declares what it can do (``Capabilities``): whether it reports intermediate mAP (pruning acts on it) and whether
skipping it on a zero-cost score pays (the prefilter). The lifecycle records its name and what the estimate cost
(``TrialRecord.estimator``, ``estimate_seconds``, ``estimate_cpu_seconds``).

Members are declared by import path, so validating a study imports no engine; a member module imports torch
where it uses it. Torch-free.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from scalesearch.registry import Registry

ESTIMATORS: Registry[type["Estimator"]] = Registry("estimator")
ESTIMATORS.declare("train", "scalesearch.search.estimators.train:TrainEstimator")
ESTIMATORS.declare("cached", "scalesearch.search.estimators.cached:CachedEstimator")
ESTIMATORS.declare("supernet", "scalesearch.search.estimators.supernet:SupernetEstimator")

OnEval = Callable[[int, dict[str, float]], None]  # (step, metrics so far); may raise a prune signal


@dataclass(frozen=True)
class Capabilities:
    """``intermediate``: the estimate calls ``on_eval(step, metrics)`` every ``train.eval_every`` steps with the
    mAP so far, so ``search.pruning`` can stop it. ``prefilter``: an estimate costs enough (minutes of training)
    that skipping it on a one-batch zero-cost score pays (``search.prefilter``)."""

    intermediate: bool = False
    prefilter: bool = True


@dataclass(frozen=True)
class StudyData:
    """The study's data: (images_dir, ann_file) for train and val, and the class count."""

    train: tuple[Path, Path]
    val: tuple[Path, Path]
    num_classes: int


@dataclass(frozen=True)
class StudyContext:
    """What an estimator may build its per-study state from: the validated study ``config`` (data, ``train``
    budget), its ``data``, a ``cache_dir`` under the run folder shared by the study's workers (None: no run
    folder, keep state in memory) and whether to show ``progress``."""

    config: Any
    data: StudyData
    cache_dir: Path | None = None
    progress: bool = False


@dataclass(frozen=True)
class Estimate:
    """A trial's estimated accuracy: ``metrics`` (``scalesearch.metrics.COCO_METRICS`` keys, and any of
    ``ESTIMATE_METRICS``), the learning ``curve`` (mAP at steps not reported to ``on_eval``), the optimisation
    ``steps`` it took (0: none, e.g. a supernet's sub-network), seconds spent training and evaluating, and
    training throughput (images/s; None when nothing was trained)."""

    metrics: dict[str, float | None]
    steps: int = 0
    curve: dict[int, float | None] = field(default_factory=dict)  # step -> mAP of the learning curve
    train_seconds: float | None = None
    eval_seconds: float | None = None
    images_per_second: float | None = None


class EstimateFailed(RuntimeError):
    """The estimate produced no usable metrics (a diverged training); ``reason`` says why, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Estimator(ABC):
    """One way to estimate a trial's accuracy. Subclasses set ``capabilities``, may override ``prepare`` and
    implement ``estimate``; they are built once per worker from a ``StudyContext``."""

    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, study: StudyContext) -> None:
        self.study = study
        self.prepared = False

    def prepare_run(self) -> None:
        """Once per study run, in the process that starts the workers, before any trial: state every worker
        then reads from ``study.cache_dir`` (e.g. the supernet, trained with progress; a rerun resumes it).
        Default: nothing."""

    def prepare(self) -> None:
        """Build the per-study state (once per worker, before the first estimate). Default: nothing."""

    @abstractmethod
    def estimate(self, spec: Any, seed: int, *, threads: int | None = None, on_eval: OnEval | None = None) -> Estimate:
        """Metrics of ``spec`` (a resolved ``DetectorSpec``) for ``seed``; ``threads``: torch threads to use.
        Raises ``EstimateFailed`` for a failed estimate; exceptions ``on_eval`` raises propagate unchanged."""

    def ensure_prepared(self) -> None:
        """``prepare()`` unless done (the lifecycle calls it before timing the first estimate)."""
        if not self.prepared:
            self.prepare()
            self.prepared = True


def estimator_class(name: str) -> type[Estimator]:
    """The member registered as ``name`` (its module imported now); ``UserError`` listing close names."""
    return ESTIMATORS.get(name)


def make_estimator(study: StudyContext) -> Estimator:
    """The study's estimator (``search.estimator``), not yet prepared."""
    return estimator_class(study.config.search.estimator)(study)
