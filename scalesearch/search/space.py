"""Search spaces: a study's ``space:`` mapping -> sampled parameters -> ``DetectorSpec``.

Parameter names are flat: ``phi``, the ``ScalingRule`` coefficients (``width_growth``, ...) and the
``DetectorSpec`` fields the study frees (``topology``, ``fusion``, ``resolution``, ``fpn_channels``,
...). Each value is fixed (a scalar), categorical (a list or ``{choices: [...]}``) or a range
(``{low, high, step?, log?}``). A topology choice may be a graph family YAML
(``spaces/topology_bifpn_family.yaml``): its decisions (``bifpn_family.node5_P6``) are conditional
parameters, sampled only when that family is the chosen topology.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from scalesearch.backbones import check_backbone, check_package_weights
from scalesearch.errors import UserError, close_names_hint
from scalesearch.spec import DetectorSpec

BUDGET_PARAM = "budget_flops"
PRETRAINED = "pretrained"  # shorthand for ``weights: package`` (true) / ``weights: none`` (false)
# Spec fields a space may not set: the dataset decides classes; names are labels.
_NOT_SEARCHABLE = ("name", "num_classes")
_CATEGORICAL_ONLY = ("topology", "fusion", "backbone", "aspect_ratios", "tf_compat", "activation", "weights",
                     PRETRAINED)


class SearchSpace:
    """The study's space, validated; ``suggest(trial)`` samples it, ``resolve(params)`` builds the spec.

    ``trial`` is anything with Optuna's ``suggest_*`` methods (an Optuna trial, or the trial Ray's
    ``OptunaSearch`` passes to a define-by-run space).
    """

    def __init__(self, config: Any) -> None:
        from scalesearch.scaling import ScalingRule

        self.rule_fields = [f.name for f in dataclasses.fields(ScalingRule)]
        spec_fields = [f.name for f in dataclasses.fields(DetectorSpec) if f.name not in _NOT_SEARCHABLE]
        self.spec_fields = spec_fields
        self.params: dict[str, Any] = dict(config.space)
        ladder = config.budgets.flops or []
        self.budget_choices = ladder if config.budgets.assign == "sampled" and len(ladder) > 1 else None
        for name, value in self.params.items():
            self._check(name, value, ["phi", PRETRAINED, *self.rule_fields, *spec_fields])
        self._check_weights()
        self.families = self._load_families()
        for i, point in enumerate(config.search.enqueue):
            self._check_point(f"search.enqueue[{i}].params", point.params)

    # ---- validation -----------------------------------------------------------------------------

    def _check(self, name: str, value: Any, known: list[str]) -> None:
        if name not in known:
            hint = close_names_hint(name, known, n=3, listed=len(known))
            raise UserError(f"space.{name}: unknown parameter {name!r} ({hint})")
        if name in _CATEGORICAL_ONLY and _is_range(value):
            raise UserError(f"space.{name}: must be a value or a list of choices, not a range, but got {_plain(value)}")
        for choice in _values(value):
            self._check_value(name, choice)

    def _check_value(self, name: str, value: Any) -> None:
        from scalesearch.topology import canonical_fusion

        if name == "fusion":
            _as_user_error("space.fusion", lambda: canonical_fusion(str(value)))
        elif name == "topology":
            _as_user_error("space.topology", lambda: _load_topology_choice(str(value), *self._levels()))
        elif name == "backbone":
            _as_user_error("space.backbone", lambda: check_backbone(str(value)))
        elif name == "activation":
            from scalesearch.spec import ACTIVATIONS

            if value not in ACTIVATIONS:
                raise UserError(f"space.activation: must be one of {', '.join(ACTIVATIONS)}, but got {value!r}")
        elif name == PRETRAINED and not isinstance(value, bool):
            raise UserError(f"space.pretrained: must be true or false, but got {value!r}")
        elif name in ("phi", *self.rule_fields) and (isinstance(value, (bool, str))):
            raise UserError(f"space.{name}: must be a number, but got {value!r}")

    def _check_weights(self) -> None:
        """Package weights must exist for every backbone choice that a pretrained trial can draw."""
        if PRETRAINED in self.params and "weights" in self.params:
            raise UserError("space.pretrained: give either pretrained or weights, not both")
        packaged = True in _values(self.params.get(PRETRAINED, False)) or "package" in _values(
            self.params.get("weights", "none"))
        if packaged:
            check_package_weights(_values(self.params.get("backbone", DetectorSpec.backbone)))

    def _check_point(self, where: str, params: dict[str, Any]) -> None:
        """An enqueued point names free parameters only, with values inside their ranges/choices."""
        for name, value in params.items():
            if name not in self.params or not _is_free(self.params[name]):
                free = [k for k, v in self.params.items() if _is_free(v)]
                raise UserError(f"{where}.{name}: must be a free parameter of the space ({', '.join(free)}), "
                                f"but got {name!r}")
            spec = self.params[name]
            inside = spec.low <= value <= spec.high if _is_range(spec) else value in _values(spec)
            if not inside:
                raise UserError(f"{where}.{name}: must lie in the space ({_plain(spec)}), but got {value!r}")

    def _levels(self) -> tuple[int, int]:
        lo = self.params.get("min_level", DetectorSpec.min_level)
        hi = self.params.get("max_level", DetectorSpec.max_level)
        if not isinstance(lo, int) or not isinstance(hi, int):
            raise UserError(f"space.min_level/max_level: must be fixed integers, but got ({_plain(lo)}, {_plain(hi)})")
        return lo, hi

    def _load_families(self) -> dict[str, Any]:
        """Topology choice string -> TopologyFamily, for choices that are families with decisions."""
        out = {}
        for choice in _values(self.params.get("topology", [])):
            family = _load_topology_choice(str(choice), *self._levels())
            if family is not None:
                out[str(choice)] = family
        return out

    # ---- sampling -------------------------------------------------------------------------------

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Sample every free parameter (family decisions only for the chosen family); raw values."""
        params = {}
        for name, value in self.params.items():
            if _is_free(value):
                params[name] = _suggest(trial, name, value)
        topology = params.get("topology", self.params.get("topology"))
        family = self.families.get(str(topology))
        if family is not None:
            for decision, count in family.choices().items():
                params[f"{family.name}.{decision}"] = trial.suggest_categorical(
                    f"{family.name}.{decision}", list(range(count)))
        if self.budget_choices:
            params[BUDGET_PARAM] = trial.suggest_categorical(BUDGET_PARAM, self.budget_choices)
        return params

    def values(self, params: dict[str, Any]) -> dict[str, Any]:
        """Fixed values merged with sampled ones (family decisions and the budget left out)."""
        fixed = {k: _values(v)[0] for k, v in self.params.items() if not _is_free(v)}
        fixed.update({k: v for k, v in params.items() if k in self.params})
        return fixed

    def resolve(self, params: dict[str, Any], num_classes: int) -> DetectorSpec:
        """Sampled parameters -> ``DetectorSpec`` through the scaling rule (paper Sec. 4.2)."""
        from scalesearch.scaling import PAPER_RULE
        from scalesearch.topology import canonical_fusion

        values = self.values(params)
        rule = dataclasses.replace(PAPER_RULE, **{k: v for k, v in values.items() if k in self.rule_fields})
        overrides = {k: v for k, v in values.items() if k in self.spec_fields}
        family = self.families.get(str(values.get("topology")))
        if family is not None:
            picks = {key.split(".", 1)[1]: v for key, v in params.items() if key.startswith(f"{family.name}.")}
            overrides["topology"] = family.build(picks).to_string()
        if "fusion" in overrides:
            overrides["fusion"] = canonical_fusion(overrides["fusion"])
        if PRETRAINED in values:
            overrides["weights"] = "package" if values[PRETRAINED] else "none"
        if overrides.get("weights", "none") != "none":
            overrides.update(_native_backbone(overrides.get("backbone", DetectorSpec.backbone)))
        return rule.spec(float(values.get("phi", 0.0)), num_classes=num_classes, **overrides)

    def grid(self) -> dict[str, list[Any]]:
        """The space as Optuna ``GridSampler`` axes; ``UserError`` for continuous or conditional parts."""
        if self.families:
            raise UserError("search.sampler: 'grid' cannot search topology families (conditional "
                            f"parameters), but space.topology has {sorted(self.families)}")
        axes = {}
        for name, value in self.params.items():
            if _is_free(value):
                axes[name] = _grid_axis(name, value)
        if self.budget_choices:
            axes[BUDGET_PARAM] = list(self.budget_choices)
        return axes


def _native_backbone(backbone: str) -> dict[str, float]:
    """Pretrained weights fix the backbone's multipliers; the rule still scales the rest (paper Sec. 4.2)."""
    from scalesearch.scaling import native_multipliers

    native = native_multipliers(backbone)
    return {} if native is None else {"width_multiplier": native[0], "depth_multiplier": native[1]}


def _load_topology_choice(choice: str, min_level: int, max_level: int) -> Any:
    """Validate a topology choice; a family with decisions is returned, anything else gives None."""
    from scalesearch.topology import get_topology, list_topologies, load_family

    if choice in list_topologies() or "@" in choice:
        get_topology(choice, min_level, max_level)
        return None
    family = load_family(choice) if choice.endswith((".yaml", ".yml")) else None
    if family is None or not family.choices():
        get_topology(choice, min_level, max_level)
        return None
    if (family.min_level, family.max_level) != (min_level, max_level):
        raise UserError(f"topology family {family.name!r}: covers P{family.min_level}..P{family.max_level}, "
                        f"but the space asks for P{min_level}..P{max_level}")
    return family


def _as_user_error(where: str, check: Any) -> None:
    try:
        check()
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None


def _is_range(value: Any) -> bool:
    return hasattr(value, "low")


def _is_free(value: Any) -> bool:
    """Sampled (a range or several choices) rather than fixed."""
    return _is_range(value) or len(_values(value)) > 1


def _values(value: Any) -> list[Any]:
    """Fixed value or choices as a list (a range gives its ends)."""
    if _is_range(value):
        return [value.low, value.high]
    if hasattr(value, "choices"):
        return list(value.choices)
    return list(value) if isinstance(value, list) else [value]


def _plain(value: Any) -> str:
    return repr(value.model_dump() if hasattr(value, "model_dump") else value)


def _suggest(trial: Any, name: str, value: Any) -> Any:
    if not _is_range(value):
        return trial.suggest_categorical(name, _values(value))
    if value.is_int:
        return trial.suggest_int(name, int(value.low), int(value.high), step=int(value.step or 1), log=value.log)
    return trial.suggest_float(name, float(value.low), float(value.high), step=value.step, log=value.log)


def _grid_axis(name: str, value: Any) -> list[Any]:
    if not _is_range(value):
        return _values(value)
    if value.step is None and not value.is_int:
        raise UserError(f"search.sampler: 'grid' needs choices or a stepped range, but space.{name} is "
                        f"the continuous range {_plain(value)}")
    step = value.step or 1
    count = int(round((value.high - value.low) / step)) + 1
    return [value.low + i * step for i in range(count)]
