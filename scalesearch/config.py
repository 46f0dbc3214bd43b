"""Study files: YAML -> one validated, frozen ``StudyConfig``.

Validation happens once, here (STYLE habit 5); every mistake is a ``UserError`` that names the key
path, the rule, then the value. ``load_study(path, overrides)`` is the entry point; overrides are
``key.path=value`` strings whose values are parsed as YAML (``--set search.n_trials=8``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from scalesearch import schema
from scalesearch.errors import UserError, close_names_hint
from scalesearch.metrics import METRICS

from scalesearch.config_parts import (
    MULTI_OBJECTIVE_PRUNERS, SAMPLERS, SINGLE_OBJECTIVE_SAMPLERS, BudgetsConfig, DatasetConfig, Objective, Param, SearchConfig, _Model,
    parse_count,
)
from scalesearch.config_parts import CompareConfig, LatencyConfig

__all__ = ["SAMPLERS", "DatasetConfig", "StudyConfig", "load_study", "parse_count", "read_yaml", "validate_study"]


class StudyConfig(_Model):
    """The resolved study; ``space`` holds parameter name -> fixed value / choices / range."""

    schema_version: int = schema.CURRENT["study"]  # older study files: schema.upgrade
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    seed: int = 0
    seeds: int = Field(default=1, ge=1)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    space: dict[str, Param] = Field(min_length=1)
    budgets: BudgetsConfig = Field(default_factory=BudgetsConfig)
    objectives: list[Objective] = Field(default_factory=lambda: [Objective(metric="map", direction="maximize")])
    train: dict[str, Any] = Field(default_factory=dict)
    search: SearchConfig = Field(default_factory=SearchConfig)
    latency: LatencyConfig = Field(default_factory=LatencyConfig)
    compare: CompareConfig = Field(default_factory=CompareConfig)
    output: str | None = None

    @field_validator("objectives", mode="before")
    @classmethod
    def _objectives(cls, value: Any) -> list[dict[str, str]]:
        return parse_objectives(value)

    @model_validator(mode="after")
    def _consistent(self) -> "StudyConfig":
        multi = len(self.objectives) > 1
        if multi and self.search.sampler in SINGLE_OBJECTIVE_SAMPLERS:
            raise ValueError(f"search.sampler: {self.search.sampler!r} handles one objective only, "
                             f"but the study has {len(self.objectives)}")
        if multi and self.search.pruning not in MULTI_OBJECTIVE_PRUNERS:
            usable = " or ".join(repr(p) for p in MULTI_OBJECTIVE_PRUNERS if p != "none")
            raise ValueError(f"search.pruning: with {len(self.objectives)} objectives only {usable} "
                             f"(over non-dominated sorting) is available, but got {self.search.pruning!r}")
        if self.search.pruning != "none":
            self._check_multi_fidelity(multi)
        if self.search.prefilter is not None and not self.search.zero_cost:
            raise ValueError("search.prefilter: the prefilter ranks zero-cost scores, but search.zero_cost is false")
        if multi and self.search.ray.asha:
            raise ValueError("search.ray.asha: ASHA needs a single objective, but the study has two")
        return self

    def _check_multi_fidelity(self, multi: bool) -> None:
        """Pruning acts at intermediate evaluations: it needs ``train.eval_every`` below ``train.steps``; with
        two objectives the trained one must be ``map`` (what intermediate evaluations report)."""
        every, steps = self.train.get("eval_every"), self.train.get("steps")
        if not every or (steps and every >= steps):
            raise ValueError(f"search.pruning: {self.search.pruning!r} stops trials at intermediate evaluations, "
                             f"so train.eval_every must be set below train.steps, but got eval_every={every!r}")
        trained = [o.metric for o in self.objectives if METRICS[o.metric].source == "training"]
        if multi and trained != ["map"]:
            raise ValueError(f"search.pruning: multi-objective halving compares the intermediate map with cost "
                             f"objectives, so exactly one objective may need training and it must be map, "
                             f"but got {', '.join(o.metric for o in self.objectives)}")

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def measures_latency(self) -> bool:
        """Whether trials need a latency measurement: an objective or a budget names a latency metric."""
        from scalesearch.metrics import LATENCY_METRICS

        used = {o.metric for o in self.objectives} | {k for k in LATENCY_METRICS if getattr(self.budgets, k, None)}
        return bool(used & set(LATENCY_METRICS))

    @property
    def sampler_seed(self) -> int:
        return self.seed if self.search.seed is None else self.search.seed

    def output_dir(self) -> Path:
        return Path(self.output or f"runs/{self.name}")

    @functools.cached_property
    def search_space(self) -> Any:
        """The validated ``SearchSpace`` (built once; ``validate_study`` builds it at the edge). Building it checks
        names and values against data (``scalesearch.backbones``, the topology registry) and imports no torch or
        timm; resolving a spec (``SearchSpace.resolve``, when a search or a retrainer runs) does."""
        from scalesearch.search.space import SearchSpace

        return SearchSpace(self)

    @functools.cached_property
    def train_config(self) -> Any:
        """``train`` as a validated ``TrainConfig`` (seed 0); ``trial_train_config(seed)`` per trial."""
        return make_train_config(self.train, seed=0)

    def trial_train_config(self, seed: int) -> Any:
        return dataclasses.replace(self.train_config, seed=seed)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def parse_objectives(value: Any) -> list[dict[str, str]]:
    """``"maximize map"``, ``["maximize map", "minimize flops"]`` or ``{map: maximize}`` -> list."""
    items = value if isinstance(value, list) else [value]
    if isinstance(value, dict):
        items = [f"{v} {k}" for k, v in value.items()]
    out = []
    for item in items:
        if isinstance(item, dict) and set(item) == {"metric", "direction"}:
            item = f"{item['direction']} {item['metric']}"
        words = str(item).split() if isinstance(item, str) else []
        if len(words) != 2 or words[0] not in ("maximize", "minimize") or words[1] not in METRICS:
            raise ValueError(f"each objective must read 'maximize|minimize METRIC' with METRIC one of "
                             f"{', '.join(METRICS)}, but got {item!r}")
        if words[0] != METRICS[words[1]].direction:  # e.g. "maximize flops": a typo that would search nonsense
            raise ValueError(f"objective {item!r}: {words[1]} is better when it is "
                             f"{METRICS[words[1]].direction}d, but the study asks to {words[0]} it")
        out.append({"metric": words[1], "direction": words[0]})
    if not 1 <= len(out) <= 2 or len({o["metric"] for o in out}) != len(out):
        raise ValueError(f"give one or two different objectives, but got {value!r}")
    return out


# ---- loading ------------------------------------------------------------------------------------

def load_study(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> StudyConfig:
    """Read a study file, apply ``key.path=value`` overrides, validate; ``UserError`` on any mistake."""
    path = Path(path)
    raw = read_yaml(path, what="study file")
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a study file must be a mapping of keys, but got {type(raw).__name__}")
    for item in overrides:
        apply_override(raw, item)
    return validate_study(raw, base=path.parent)


def read_yaml(path: Path, what: str) -> Any:
    """Parse a YAML file; missing files and syntax errors (with their line) are ``UserError``s."""
    if not path.is_file():
        raise UserError(f"{what} {str(path)!r}: the file must exist, but it was not found")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{what} {str(path)!r}: YAML syntax error{where}: {problem}") from None


def validate_study(raw: dict[str, Any], base: Path = Path(".")) -> StudyConfig:
    """Validate a raw mapping (a ``space:`` file name is read first, from the CWD or ``base``)."""
    try:
        raw = schema.upgrade("study", dict(raw))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if isinstance(raw.get("space"), str):
        raw["space"] = _read_space_file(raw["space"], base)
    try:
        config = StudyConfig.model_validate(raw)
    except ValidationError as exc:
        raise _user_error(exc) from None
    config.search_space  # builds and checks the space (names, values, families) once
    config.train_config  # the typed recipe (TrainConfig's own rules: lr > 0 and finite, ...)
    return config


def _read_space_file(name: str, base: Path) -> dict[str, Any]:
    candidates = [Path(name), base / name, base.parent / name]
    path = next((p for p in candidates if p.is_file()), Path(name))
    data = read_yaml(path, what="space file")
    if isinstance(data, dict) and set(data) == {"space"}:
        data = data["space"]
    if not isinstance(data, dict):
        raise UserError(f"space file {name!r}: must be a mapping of parameter names, but got {data!r}")
    return data


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``key.path=value`` (value parsed as YAML) to the raw study mapping, in place."""
    key, sep, text = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(re.match(r"^[A-Za-z0-9_\-]+$", p) for p in parts):
        raise UserError(f"--set: each override must read KEY.PATH=VALUE, but got {item!r}")
    _check_override_path(parts)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    node = raw
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def _check_override_path(parts: list[str]) -> None:
    """Unknown keys are reported against the schema (free-form mappings accept any key)."""
    model: Any = StudyConfig
    for i, part in enumerate(parts):
        if model is None:  # inside a free-form mapping (space, train, resources)
            return
        fields = model.model_fields
        if part not in fields:
            path = ".".join(parts[: i + 1])
            hint = close_names_hint(part, list(fields), n=3, listed=len(fields), what="keys")
            raise UserError(f"--set {path}: unknown key {part!r} ({hint})")
        model = _model_of(fields[part].annotation)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside ``X``, ``X | None`` and the like (None for other types)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _user_error(exc: ValidationError) -> UserError:
    """The first pydantic error as one line: key path, rule, value (close names for unknown keys)."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if not _is_union_tag(p)]
    path = ".".join(loc) or "study"
    if err["type"] == "extra_forbidden":
        return _unknown_key(loc)
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] in ("value_error", "assertion_error"):
        return UserError(f"{path}: {message}")
    return UserError(f"{path}: {_lower_first(message)}, but got {err.get('input')!r}")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _is_union_tag(part: Any) -> bool:
    """pydantic inserts the tried union member (``RangeParam``, ``list[...]``) into error paths."""
    return isinstance(part, str) and (part[:1].isupper() or "[" in part or part in ("bool", "int", "float", "str"))


def _unknown_key(loc: list[str]) -> UserError:
    model: Any = StudyConfig
    for part in loc[:-1]:
        model = _model_of(model.model_fields[part].annotation) if model and part in model.model_fields else None
    names = list(model.model_fields) if model else []
    hint = close_names_hint(loc[-1], names, n=3, listed=len(names), what="keys")
    return UserError(f"{'.'.join(loc)}: unknown key {loc[-1]!r} ({hint})")


def make_train_config(train: dict[str, Any], seed: int) -> Any:
    """``train`` settings + a seed -> ``TrainConfig`` (``UserError`` naming ``train.KEY``)."""
    from pydantic import TypeAdapter

    from scalesearch.training.train_config import TrainConfig

    names = [f.name for f in dataclasses.fields(TrainConfig)]
    for key in train:
        if key not in names or key == "seed":
            hint = close_names_hint(key, names, n=3, listed=len(names), what="keys")
            rule = "is set per trial from the study's seed" if key == "seed" else f"unknown key {key!r} ({hint})"
            raise UserError(f"train.{key}: {rule}")
    try:
        return TypeAdapter(TrainConfig).validate_python({**train, "seed": seed})
    except ValidationError as exc:
        err = exc.errors()[0]
        if isinstance(err.get("ctx", {}).get("error"), UserError):  # TrainConfig's own checks
            raise err["ctx"]["error"] from None
        key = ".".join(str(p) for p in err["loc"])
        raise UserError(f"train.{key}: {_lower_first(err['msg'])}, but got {err.get('input')!r}") from None
