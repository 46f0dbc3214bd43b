"""The parts of a study's schema (dataset, space parameters, budgets, search settings), validated by
pydantic; ``scalesearch.config.StudyConfig`` puts them together. Torch-free."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import (
    BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_serializer, model_validator,
)

from scalesearch.errors import close_names_hint
from scalesearch.search.backend import BACKENDS
from scalesearch.search.samplers import PRUNERS, SAMPLERS

# Backends, samplers and pruners are registries filled where each member is defined; their names and facts are
# read here without importing Optuna or Ray (imported only to build a member).
SINGLE_OBJECTIVE_SAMPLERS = tuple(name for name, entry in SAMPLERS.items() if entry.single_objective)
MULTI_OBJECTIVE_PRUNERS = tuple(name for name, entry in PRUNERS.items() if entry.multi_objective)
_SUFFIXES = {"K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}
_NUMBER_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMBGT]?)\s*$")

Scalar = Union[bool, int, float, str]


def parse_count(value: Any) -> float:
    """``2.5e9``, ``"2.5e9"``, ``"2.5B"``, ``"300M"``, ``"1.2G"`` -> float (ValueError otherwise)."""
    if isinstance(value, bool):
        raise ValueError("must be a number such as 2.5e9 or '2.5B'")
    if isinstance(value, (int, float)):
        return float(value)
    match = _NUMBER_RE.match(str(value).upper())
    if not match:
        raise ValueError("must be a number such as 2.5e9 or '2.5B'")
    return float(match.group(1)) * _SUFFIXES.get(match.group(2), 1.0)


def _without_null(data: dict[str, Any], key: str) -> dict[str, Any]:
    """A model's dump without ``key`` when it is null: a key added later stays out of the study.yaml a run folder
    writes until it is set, so folders written before it compare equal."""
    if data.get(key) is None:
        data.pop(key, None)
    return data


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitFiles(_Model):
    """An explicit split: an image folder and a COCO annotation file."""

    images: str
    annotations: str

    @model_validator(mode="after")
    def _exists(self) -> "SplitFiles":
        for key in ("images", "annotations"):
            if not Path(getattr(self, key)).exists():
                raise ValueError(f"{key}: the path must exist, but got {getattr(self, key)!r}")
        return self


class DatasetConfig(_Model):
    """``path``: ``null``/``synthetic`` (built-in data) or a COCO folder; ``train``/``val`` override files."""

    path: str | None = None
    train: SplitFiles | None = None
    val: SplitFiles | None = None
    synthetic: dict[str, float | int] = Field(default_factory=dict)  # synthetic_dataset() settings

    @field_validator("synthetic")
    @classmethod
    def _synthetic(cls, value: dict[str, Any]) -> dict[str, Any]:
        import inspect

        from scalesearch.data import synthetic_dataset

        names = [p for p in inspect.signature(synthetic_dataset).parameters if p != "root"]
        for key in value:
            if key not in names:
                raise ValueError(_choice_message("key", key, tuple(names)))
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is None or value == "synthetic":
            return None
        if not Path(value).exists():
            raise ValueError(f"the dataset folder must exist, but got {value!r}")
        return value


class RangeParam(_Model):
    """A numeric range; an int range when ``low``/``high`` (and ``step``) are ints."""

    low: float | int
    high: float | int
    step: float | int | None = None
    log: bool = False

    @model_validator(mode="after")
    def _order(self) -> "RangeParam":
        if self.low > self.high:
            raise ValueError(f"low <= high must hold, but got (low={self.low}, high={self.high})")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"step > 0 must hold, but got {self.step}")
        if self.log and (self.low <= 0 or self.step is not None):
            raise ValueError(f"a log range needs low > 0 and no step, but got (low={self.low}, step={self.step})")
        return self

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) for v in (self.low, self.high, self.step or 1))


class ChoiceParam(_Model):
    choices: list[Scalar] = Field(min_length=1)


Param = Union[RangeParam, ChoiceParam, list[Scalar], Scalar]


class BudgetsConfig(_Model):
    """FLOPs (multiply-adds) budget or ladder, optional params budget, and how rungs are assigned.

    ``assign`` (a ladder's rung for each trial):
    - ``fit`` (default): the smallest rung the spec fits under; infeasible only over the largest.
      Every spec is trained at most once and labelled with the budget class it competes in.
    - ``round_robin``: sampled point k gets rung ``k mod len(ladder)``, so every rung gets the same
      share of points; a point over its rung is infeasible (not trained).
    - ``sampled``: the rung is a categorical parameter (``budget_flops``) the sampler sees.
    """

    flops: list[float] | None = None
    params: float | None = None
    latency_ms: float | None = None  # measured total latency (``scalesearch.measure.latency``, the study's ``latency``)
    assign: Literal["fit", "round_robin", "sampled"] = "fit"

    @field_validator("latency_ms", mode="before")
    @classmethod
    def _latency(cls, value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
            raise ValueError(f"the latency budget must be a number of milliseconds > 0, but got {value!r}")
        return float(value)

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        """No ``latency_ms: null`` in a written study.yaml, so run folders made before it still resume."""
        return _without_null(handler(self), "latency_ms")

    @field_validator("flops", mode="before")
    @classmethod
    def _ladder(cls, value: Any) -> list[float] | None:
        if value is None:
            return None
        values = [parse_count(v) for v in (value if isinstance(value, list) else [value])]
        if not values:
            raise ValueError("the FLOPs ladder must not be empty")
        if any(v <= 0 for v in values):
            raise ValueError(f"every FLOPs budget must be > 0, but got {value!r}")
        return sorted(set(values))

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, value: Any) -> float | None:
        if value is None:
            return None
        number = parse_count(value)
        if number <= 0:
            raise ValueError(f"the params budget must be > 0, but got {value!r}")
        return number


class RayConfig(_Model):
    address: str | None = None
    asha: bool = False
    grace_period: int = Field(default=1, ge=1)
    resources_per_trial: dict[str, float] = Field(default_factory=lambda: {"cpu": 1.0})
    max_failures: int = Field(default=1, ge=0)
    num_cpus: int | None = Field(default=None, ge=1)


class EnqueuedPoint(_Model):
    """A point evaluated before the sampler's own (e.g. the paper's rule as a baseline)."""

    label: str
    params: dict[str, Scalar] = Field(min_length=1)


class PrefilterConfig(_Model):
    """Train only the candidates whose zero-cost ``score`` ranks in the best ``keep`` fraction of those
    scored so far (``scalesearch.search.multi_fidelity``); the rest end ``pruned`` after one batch."""

    score: Literal["naswot", "synflow", "grad_norm"] = "naswot"
    keep: float = Field(default=0.5, gt=0.0, le=1.0)
    direction: Literal["maximize", "minimize"] = "maximize"  # the published scores: higher is better


class SupernetConfig(_Model):
    """The ``supernet`` estimator's training (``scalesearch.training.supernet``): ``steps`` sandwich steps (None: 4 x
    ``train.steps``), each training the largest, the smallest and ``random_children`` random sub-networks on one
    batch at one drawn resolution; ``distill_weight`` of the in-place distillation term (Bernoulli KL from the
    largest sub-network's class probabilities, normalised as the focal loss); a checkpoint every
    ``checkpoint_every`` steps; ``calib_images`` training images re-estimate a sub-network's batch-norm statistics
    before it is scored; ``max_supernets`` caps how many supernets (one per topology) a study may train.
    ``per_resolution``: one supernet per (topology, resolution) instead, each trained at its own resolution only
    (``steps`` then per supernet; None: the default steps divided by the resolutions, the same compute per topology).
    Measured on BCCD (``reports/benchmarks/supernet_axes.md``): the run's supernets rank 320 px below 224 and 256
    px where training alone ranks it first; per-resolution supernets, at the same compute or at 4x, did not fix it."""

    steps: int | None = Field(default=None, ge=1)
    random_children: int = Field(default=2, ge=0)
    distill_weight: float = Field(default=1.0, ge=0)
    checkpoint_every: int = Field(default=50, ge=1)
    calib_images: int = Field(default=128, ge=1)
    max_supernets: int = Field(default=8, ge=1)
    per_resolution: bool | None = None  # None: off, and no key in a written study.yaml (older run folders read the same)

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        return _without_null(handler(self), "per_resolution")


class SearchConfig(_Model):
    backend: str = "optuna"
    sampler: str = "tpe"
    # an evolutionary sampler's generation size (nsga2, nsga3; None: samplers.POPULATION, and no key in a written
    # study.yaml, so that run folders made before it read the same)
    population: int | None = Field(default=None, ge=2)
    n_trials: int = Field(default=20, ge=1)
    workers: int = Field(default=1, ge=1)
    seed: int | None = None
    pruning: str = "none"
    storage: str | None = None
    threads_per_worker: int | None = Field(default=None, ge=1)
    zero_cost: bool = True  # record NASWOT, synflow and grad-norm for every trial (one batch each)
    prefilter: PrefilterConfig | None = None
    enqueue: list[EnqueuedPoint] = Field(default_factory=list)
    ray: RayConfig = Field(default_factory=RayConfig)
    estimator: str = "train"  # how a trial's accuracy is estimated (scalesearch.search.estimators)
    cache_gb: float = Field(default=4.0, gt=0)  # memory limit of the ``cached`` estimator's features (GiB)
    supernet: SupernetConfig = Field(default_factory=SupernetConfig)  # the ``supernet`` estimator's training

    @field_validator("backend")
    @classmethod
    def _backend(cls, value: str) -> str:
        return _choice("search backend", value, BACKENDS.choices())

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, value: str) -> str:
        return _choice("sampler", value, SAMPLERS.choices())

    @field_validator("population")
    @classmethod
    def _population(cls, value: int | None, info: ValidationInfo) -> int | None:
        sampler = info.data.get("sampler")
        if value is not None and sampler in SAMPLERS and not SAMPLERS.get(sampler).population:
            takes = ", ".join(name for name in SAMPLERS.choices() if SAMPLERS.get(name).population)
            raise ValueError(f"applies to the evolutionary samplers ({takes}), not to {sampler!r}")
        return value

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        """No ``population: null`` in a written study.yaml (run folders made before the key read the same)."""
        return _without_null(handler(self), "population")

    @field_validator("pruning", mode="before")
    @classmethod
    def _pruning(cls, value: Any) -> str:
        if isinstance(value, bool):
            return "median" if value else "none"
        return _choice("pruner", str(value), PRUNERS.choices())

    @field_validator("pruning")
    @classmethod
    def _pruning_backend(cls, value: str, info: ValidationInfo) -> str:
        if value == "hyperband" and info.data.get("backend") == "ray":
            raise ValueError("'hyperband' needs the optuna backend (its brackets are Optuna's); with ray use "
                             "'successive_halving', 'median' or search.ray.asha")
        return value

    @field_validator("estimator")
    @classmethod
    def _estimator(cls, value: str, info: ValidationInfo) -> str:
        """A known member, able to do what the search asks of it: pruning and ASHA stop trials at the intermediate
        mAP it reports, a prefilter skips estimates worth skipping (its module is imported only then)."""
        from scalesearch.search.estimators import ESTIMATORS, estimator_class

        _choice("estimator", value, ESTIMATORS.choices())
        data = info.data
        asks = [("intermediate", "search.pruning", data.get("pruning", "none") != "none"),
                ("intermediate", "search.ray.asha", getattr(data.get("ray"), "asha", False)),
                ("prefilter", "search.prefilter", data.get("prefilter") is not None)]
        why = {"intermediate": "it reports no intermediate mAP", "prefilter": "its estimates cost too little to skip"}
        for capability, key, asked in asks:
            if asked and not getattr(estimator_class(value).capabilities, capability):
                raise ValueError(f"{value!r} lacks the {capability!r} capability that {key} needs ({why[capability]})")
        return value


class Objective(_Model):
    metric: str
    direction: Literal["maximize", "minimize"]


class LatencyConfig(_Model):
    """How the ``latency_*`` metrics are measured (``scalesearch.measure.latency``): ``runtime`` (``torch`` or
    ``onnxruntime``), intra-op ``threads``, ``batch`` images, ``warmup`` untimed and ``runs`` timed rounds.
    ``table``: trials take the per-block table's prediction (``scalesearch.measure.latency_table``, torch only)
    and, after the search, every point of the final front is measured by the protocol
    (``scalesearch.search.latency_front``). Used only when an objective or a budget names a latency metric."""

    runtime: str = "torch"
    threads: int = Field(default=1, ge=1)
    batch: int = Field(default=1, ge=1)
    warmup: int = Field(default=10, ge=0)
    runs: int = Field(default=40, ge=1)
    table: bool = False

    @field_validator("runtime")
    @classmethod
    def _runtime(cls, value: str) -> str:
        from scalesearch.measure.latency import RUNTIMES

        return _choice("runtime", value, RUNTIMES.choices())

    @field_validator("table")
    @classmethod
    def _table(cls, value: bool, info: ValidationInfo) -> bool:
        runtime = info.data.get("runtime", "torch")
        if value and runtime != "torch":
            raise ValueError(f"the per-block table times torch eager blocks only, but latency.runtime is {runtime!r} "
                             "(set latency.table: false to measure every trial by the protocol)")
        return value


class CompareConfig(_Model):
    """How reports decide comparisons (``scalesearch.report.stats``): ``alpha`` the family-wise error rate
    (Holm across each family of comparisons), ``margin`` the non-inferiority margin in mAP (a point is
    "non-inferior" to a baseline when its mAP loss is shown to be below this)."""

    alpha: float = Field(default=0.05, gt=0, lt=1)
    margin: float = Field(default=0.01, ge=0, lt=1)


def _choice(kind: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(_choice_message(kind, value, choices))
    return value


def _choice_message(kind: str, value: str, choices: tuple[str, ...]) -> str:
    return f"unknown {kind} {value!r} ({close_names_hint(value, choices, n=3, listed=len(choices))})"
