"""Parameters and fvcore FLOPs of a spec, per part, exact and cheap.

FLOPs are fvcore's: one multiply-add counts as one FLOP (the paper's convention, Table 2), batch 1,
eval mode. A plain fvcore trace of D6 at 1280 px takes ~21 GB; instead we trace at the two smallest
valid resolutions and extrapolate exactly. With ``u = R / 2**max_level`` (an integer, since every
level must divide evenly), every op fvcore counts is either proportional to a feature map's area,
hence to ``u**2`` (convolutions, batch norm, nearest upsampling), or independent of ``R`` (the 1x1
convolutions of squeeze-excitation blocks, which act on pooled 1x1 maps). So per part and operator
``flops(u) = a * u**2 + b`` with integers a, b, solved from ``u = 1`` and ``u = 2``; ``tests/test_cost.py``
pins the result equal to plain traces.

Repeats are extrapolated the same way, in a second dimension: every BiFPN cell after the first reads and writes
maps of the network's width at the same sizes, and every head layer is the same, so per part and operator
``flops(k) = f(1) + (k - 1) * (f(2) - f(1))`` with ``k`` the part's repeats (``fpn_repeats`` for the feature network,
``head_repeats`` for the heads, 1 for the backbone, whose count must not move). The first spec of a shape (the spec
without its repeats) is traced as it is; from the second on, the shape's variants at repeats 1 and 2 are traced once
(kept in memory) and every later spec of that shape is counted from them without a trace. A search that varies
repeats (16 pairs in a 4 x 4 space) then traces a shape at most 3 times however often it counts it
(``benchmarks/bench_cost_space.py`` measures both a sparse and a dense draw).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from scalesearch.spec import DetectorSpec

PARTS = ("backbone", "fpn", "class_net", "box_net")
CACHE_ENV = "SCALESEARCH_COST_CACHE"  # a directory for the on-disk cache (unset: memory only)
_METHOD_VERSION = 1  # bump when the counting changes, to invalidate disk caches
_MEMORY: dict[DetectorSpec, "Cost"] = {}


@dataclass(frozen=True)
class Cost:
    """Params and FLOPs (multiply-adds per image) of one spec.

    ``by_part``: ``{part: (params, flops)}`` for ``backbone``, ``fpn``, ``class_net``, ``box_net``;
    ``by_operator``: FLOPs per fvcore operator (``conv``, ``batch_norm``, ``upsample_nearest2d``).
    """

    params: int
    flops: int
    by_part: dict[str, tuple[int, int]]
    by_operator: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["by_part"] = {k: list(v) for k, v in self.by_part.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Cost":
        by_part = {k: (int(v[0]), int(v[1])) for k, v in data["by_part"].items()}
        return cls(int(data["params"]), int(data["flops"]), by_part, dict(data.get("by_operator", {})))


def _model(spec: DetectorSpec) -> torch.nn.Module:
    from scalesearch.model import build_detector

    return build_detector(spec, weights=False).eval()


def count_params(spec: DetectorSpec) -> dict[str, int]:
    """Parameters per part; the model is built on the meta device (no memory, no trace)."""
    with torch.device("meta"):
        model = _model(spec)
    return {part: sum(p.numel() for p in getattr(model, part).parameters()) for part in PARTS}


def trace_flops(model: torch.nn.Module, resolution: int) -> dict[tuple[str, str], int]:
    """A plain fvcore count at ``resolution`` px: ``{(part, operator): flops}`` (batch 1, no grad)."""
    with warnings.catch_warnings():  # fvcore's import scripts a loss with the deprecated torch.jit.script
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)  # unsupported elementwise ops are not FLOPs here
    images = torch.zeros(1, 3, resolution, resolution)
    with torch.no_grad():
        analysis = FlopCountAnalysis(model, images)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        table = analysis.by_module_and_operator()
    return {(part, op): int(n) for part in PARTS for op, n in table[part].items()}


def _fit(f1: dict, f2: dict, u: int) -> dict:
    """Per key, ``a * u**2 + b`` from the counts at u = 1 (``f1``) and u = 2 (``f2``), in integers."""
    out = {}
    for key in set(f1) | set(f2):
        a, rem = divmod(f2.get(key, 0) - f1.get(key, 0), 3)
        if rem:  # would mean an op whose count is not quadratic in the resolution
            raise RuntimeError(f"cost: {key} FLOPs are not a * u**2 + b (counts {f1.get(key)}, {f2.get(key)})")
        out[key] = a * u * u + (f1.get(key, 0) - a)
    return out


REPEATED = {"fpn": "fpn_repeats", "class_net": "head_repeats", "box_net": "head_repeats"}  # part -> its repeats
_SHALLOW: dict[DetectorSpec, dict[tuple[str, str], int]] = {}  # counts of specs at repeats 1 and 2
_SHAPES: set[DetectorSpec] = set()  # shapes (specs at repeats 1) counted once already, by a trace of their own


def count_flops(spec: DetectorSpec, model: torch.nn.Module | None = None) -> dict[tuple[str, str], int]:
    """fvcore FLOPs at ``spec.resolution`` per (part, operator). With ``model`` (``spec``'s), or for the first spec
    of its shape: traced (at the resolution, below). Otherwise from the shape's variants at fpn and head repeats 1
    and 2 (each traced once per process), extended linearly in each part's repeats (module docstring)."""
    shape = spec.replace(weights="none", name=None, fpn_repeats=1, head_repeats=1)
    if model is not None or shape not in _SHAPES:
        _SHAPES.add(shape)
        return _at_resolution(spec, model)
    one, two = (_shallow(spec.replace(fpn_repeats=k, head_repeats=k)) for k in (1, 2))
    return _fit_repeats(one, two, {part: getattr(spec, key) for part, key in REPEATED.items()})


def _shallow(spec: DetectorSpec) -> dict[tuple[str, str], int]:
    key = spec.replace(weights="none", name=None)
    if key not in _SHALLOW:
        _SHALLOW[key] = _at_resolution(key)
    return _SHALLOW[key]


def _fit_repeats(one: dict, two: dict, repeats: dict[str, int]) -> dict:
    """Per (part, operator), ``f1 + (k - 1) * (f2 - f1)`` with ``k`` the part's repeats (1 for a part not in
    ``repeats``, whose counts must then be equal); a part whose count would fall with depth is an error."""
    out = {}
    for key in set(one) | set(two):
        f1, f2 = one.get(key, 0), two.get(key, 0)
        k = repeats.get(key[0], 1)
        if f2 < f1 or (key[0] not in repeats and f2 != f1):
            raise RuntimeError(f"cost: {key} FLOPs are not linear in the part's repeats (counts {f1}, {f2})")
        out[key] = f1 + (k - 1) * (f2 - f1)
    return out


def _at_resolution(spec: DetectorSpec, model: torch.nn.Module | None = None) -> dict[tuple[str, str], int]:
    """fvcore FLOPs at ``spec.resolution`` per (part, operator), from traces at 1x and 2x 2**max_level px."""
    model = model if model is not None else _model(spec)
    stride = 2**spec.max_level
    u = spec.resolution // stride
    if u <= 2 or spec.resolution % stride:  # uneven upper levels (Lite0's 320 px) are not a * u**2 + b
        return trace_flops(model, spec.resolution)
    return _fit(trace_flops(model, stride), trace_flops(model, 2 * stride), u)


def _cache_key(spec: DetectorSpec) -> dict:
    import fvcore
    import timm

    key = spec.replace(weights="none").to_dict()
    key.pop("name")
    key["_versions"] = [_METHOD_VERSION, torch.__version__, timm.__version__, getattr(fvcore, "__version__", "")]
    return key


def _compute(spec: DetectorSpec) -> Cost:
    params = count_params(spec)
    flops = count_flops(spec)
    by_part = {part: (params[part], sum(n for (p, _), n in flops.items() if p == part)) for part in PARTS}
    by_op: dict[str, int] = {}
    for (_, op), n in sorted(flops.items()):
        by_op[op] = by_op.get(op, 0) + n
    return Cost(sum(params.values()), sum(f for _, f in by_part.values()), by_part, by_op)


def count_cost(spec: DetectorSpec, cache_dir: str | Path | None = None) -> Cost:
    """Params and FLOPs of ``spec`` (exact; peak memory of a trace at 2 * 2**max_level px).

    Cached in memory by spec (the ``name`` and ``weights`` fields do not matter) and, when
    ``cache_dir`` or ``$SCALESEARCH_COST_CACHE`` is set, as one JSON file per spec in that directory.
    """
    key = spec.replace(weights="none", name=None)
    if key in _MEMORY:
        return _MEMORY[key]
    from scalesearch.files import JsonCache, digest

    cache = JsonCache(cache_dir or os.environ.get(CACHE_ENV), "cost")  # parallel trials may count one spec
    stored = cache.get(digest(_cache_key(key)))
    if stored is not None:
        cost = Cost.from_dict(stored)
    else:
        cost = _compute(key)
        cache.put(digest(_cache_key(key)), cost.to_dict())
    _MEMORY[key] = cost
    return cost
