"""A per-block latency table: a detector's latency predicted as the sum of its blocks, each timed once on this
machine, so a study can rank thousands of architectures in the time the protocol measures a few.

Blocks of a spec (the parts ``scalesearch.measure.latency``'s ``network`` and ``post`` call, in order):

* ``backbone``: input normalisation + the backbone at the spec's resolution (as the protocol's ``network``);
* ``extra``: the feature network's extra levels above the backbone's last map (absent when there are none);
* ``cell0``: the first fusion cell, fed the backbone's channels; ``cell``: each further cell, fed the network's
  width: identical in cost for equal (topology, fusion, activation, width, resolution), so it is timed once
  and counted ``fpn_repeats - 1`` times;
* ``class_net`` / ``box_net``: the two heads (width, head repeats, resolution, anchors x classes or x 4);
* ``flatten``: the per-level outputs to ``[B, N, C]`` / ``[B, N, 4]``;
* ``post``: decode + batched NMS (``detection.postprocess``, the protocol's ``post``) on ``[B, N, C]`` logits
  at the untrained detector's prior (``head.PRIOR_PROBABILITY``, every top-1000 pair above the score
  threshold, as the protocol's candidates) and small box codes, so NMS sees the protocol's input size.

Each block is timed like the protocol times a part (``LatencySettings``: torch eager, ``threads``, ``batch``,
``warmup`` untimed then ``runs`` timed calls, the median; the same exclusive lock) on seeded random inputs of its
shapes, with the weights of ``build_detector(spec)`` under seed 0. An entry is keyed by what its time depends
on (the block's description, the settings and the machine: CPU model, cores, versions), so specs that share a
block share its entry: in memory and as ``latency_table-<key>.json`` in the cost-cache folder, beside the
protocol's ``latency-<key>.json``. The sum misses what the blocks do not see apart (caches warmed by the block
before, Python overhead between parts): ``benchmarks/bench_latency_table.py`` reports its Kendall tau and
error against the protocol. Only the torch runtime has a table (``latency.table``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from scalesearch.errors import UserError
from scalesearch.files import JsonCache, digest
from scalesearch.measure.latency import LatencySettings, exclusive_lock, summarise, time_parts, torch_threads
from scalesearch.spec import BACKBONE_MAX_LEVEL, level_size

PREFIX = "latency_table"  # cache files: latency_table-<key>.json
POST = "post"
_VERSION = 1  # bump when a block's timing changes, to invalidate disk caches
_MEMORY: dict[str, dict[str, Any]] = {}


@dataclass(frozen=True)
class TableLatency:
    """A spec's predicted latency: ``blocks`` the median ms of one call of each block, ``counts`` how many times
    the spec calls it; ``exclusive``: every block was timed holding the lock."""

    blocks: dict[str, float]
    counts: dict[str, int]
    exclusive: bool

    @property
    def network_ms(self) -> float:
        return round(sum(ms * self.counts[name] for name, ms in self.blocks.items() if name != POST), 4)

    @property
    def post_ms(self) -> float:
        return self.blocks[POST]

    @property
    def total_ms(self) -> float:
        """The prediction of the protocol's ``total`` (network then post), in ms."""
        return round(self.network_ms + self.post_ms, 4)


def check_table_settings(settings: LatencySettings) -> None:
    """``UserError`` naming ``latency.table`` unless ``settings`` time torch eager (the only runtime with blocks)."""
    if settings.runtime != "torch":
        raise UserError(f"latency.table: the per-block table times torch eager blocks only, but latency.runtime is "
                        f"{settings.runtime!r} (set latency.table: false to measure every trial by the protocol)")


def predict_latency(spec: Any, settings: LatencySettings = LatencySettings(), cache_dir: str | Path | None = None
                    ) -> float:
    """The table's prediction of ``spec``'s protocol ``total`` in ms: the sum of its blocks (``table_latency``)."""
    return table_latency(spec, settings, cache_dir).total_ms


def table_latency(spec: Any, settings: LatencySettings = LatencySettings(), cache_dir: str | Path | None = None
                  ) -> TableLatency:
    """``spec``'s blocks from the table, timing (under the lock) the ones no entry holds yet."""
    check_table_settings(settings)
    cache = JsonCache(cache_dir, PREFIX)
    entries = _lookup_all(spec, settings, cache)
    if entries is None:
        with exclusive_lock() as held:
            entries = _lookup_all(spec, settings, cache)  # another worker may have timed them while we waited
            if entries is None:
                _measure_missing(spec, settings, cache, held)
                entries = _lookup_all(spec, settings, cache)
    assert entries is not None
    return TableLatency(blocks={name: entry["ms"] for name, (entry, _) in entries.items()},
                        counts={name: count for name, (_, count) in entries.items()},
                        exclusive=all(entry["exclusive"] for entry, _ in entries.values()))


# ---- the blocks of a spec ----------------------------------------------------------------------------

def backbone_block(spec: Any) -> dict[str, Any]:
    """The backbone's description (its normalisation is a function of its name)."""
    return {"block": "backbone", "backbone": spec.backbone, "width_multiplier": spec.width_multiplier,
            "depth_multiplier": spec.depth_multiplier, "tf_compat": spec.tf_compat, "min_level": spec.min_level,
            "max_level": min(spec.max_level, BACKBONE_MAX_LEVEL), "resolution": spec.resolution}


def spec_blocks(spec: Any, backbone_channels: list[int]) -> dict[str, tuple[dict[str, Any], int]]:
    """Block name -> (description, calls per inference) for ``spec`` over a backbone of ``backbone_channels``
    (its maps' channels, levels ``min_level`` up). A description holds everything its time depends on."""
    from scalesearch.topology import get_topology

    width, levels = spec.fpn_channels, {"min_level": spec.min_level, "max_level": spec.max_level}
    shape = {**levels, "resolution": spec.resolution, "tf_compat": spec.tf_compat}
    extras = spec.max_level - min(spec.max_level, BACKBONE_MAX_LEVEL)
    graph = get_topology(spec.topology, spec.min_level, spec.max_level).to_string().split("@", 1)[1]
    cell = {"block": "cell", **shape, "graph": graph, "fusion": spec.fusion, "activation": spec.activation,
            "width": width}
    head = {"block": "head", **shape, "width": width, "repeats": spec.head_repeats, "activation": spec.activation}
    out = {"backbone": (backbone_block(spec), 1)}
    if extras:
        out["extra"] = ({"block": "extra", **shape, "in_channels": backbone_channels[-1], "width": width}, 1)
    out["cell0"] = ({**cell, "in_channels": [*backbone_channels, *[width] * extras]}, 1)
    if spec.fpn_repeats > 1:
        out["cell"] = ({**cell, "in_channels": [width] * spec.num_levels}, spec.fpn_repeats - 1)
    out["class_net"] = ({**head, "outputs": spec.num_anchors * spec.num_classes}, 1)
    out["box_net"] = ({**head, "outputs": spec.num_anchors * 4}, 1)
    out["flatten"] = ({"block": "flatten", **levels, "resolution": spec.resolution, "anchors": spec.num_anchors,
                       "num_classes": spec.num_classes}, 1)
    out[POST] = ({"block": POST, **levels, "resolution": spec.resolution, "num_scales": spec.num_scales,
                  "aspect_ratios": [list(a) for a in spec.aspect_ratios], "anchor_scale": spec.anchor_scale,
                  "num_classes": spec.num_classes, "max_detections": 100}, 1)
    return out


# ---- cache ------------------------------------------------------------------------------------------

@functools.cache
def _machine() -> dict[str, Any]:
    from scalesearch.machine import identity

    return {**identity(), "onnxruntime": None}  # torch blocks: the onnxruntime version does not matter


def block_key(block: dict[str, Any], settings: LatencySettings) -> str:
    """Digest of a block's description, the settings and this machine."""
    return digest({"block": block, "settings": dataclasses.asdict(settings), "machine": _machine(),
                   "version": _VERSION})


def _lookup(block: dict[str, Any], settings: LatencySettings, cache: JsonCache) -> dict[str, Any] | None:
    key = block_key(block, settings)
    if key not in _MEMORY:
        stored = cache.get(key)
        if stored is None:
            return None
        _MEMORY[key] = stored
    return _MEMORY[key]


def _lookup_all(spec: Any, settings: LatencySettings, cache: JsonCache
                ) -> dict[str, tuple[dict[str, Any], int]] | None:
    """Block name -> (entry, count) when the table holds every block of ``spec``, else None."""
    backbone = _lookup(backbone_block(spec), settings, cache)
    if backbone is None:
        return None
    out = {}
    for name, (block, count) in spec_blocks(spec, backbone["channels"]).items():
        entry = backbone if name == "backbone" else _lookup(block, settings, cache)
        if entry is None:
            return None
        out[name] = (entry, count)
    return out


# ---- timing -----------------------------------------------------------------------------------------

def _measure_missing(spec: Any, settings: LatencySettings, cache: JsonCache, exclusive: bool) -> None:
    """Time every block of ``spec`` the table lacks (the caller holds the lock) and store the entries."""
    import os

    import torch

    from scalesearch.model import build_detector

    with torch.random.fork_rng():
        torch.manual_seed(0)  # the protocol's weights; two cells are enough to time a further one
        model = build_detector(spec.replace(fpn_repeats=min(spec.fpn_repeats, 2)), weights=False).eval()
    channels = list(model.backbone.feature_info.channels())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch_threads(settings.threads))
        stack.enter_context(torch.inference_mode())
        for name, (block, _) in spec_blocks(spec, channels).items():
            if _lookup(block, settings, cache) is not None:
                continue
            median, iqr = _time_block(_block_call(name, model, spec, settings.batch), settings)
            entry = {"ms": round(median, 4), "iqr_ms": round(iqr, 4), "block": block, "exclusive": bool(exclusive),
                     "load_average": None if load is None else round(load, 2), **_machine(),
                     **({"channels": channels} if name == "backbone" else {})}
            cache.put(block_key(block, settings), entry)
            _MEMORY[block_key(block, settings)] = entry


def _time_block(call: Callable[[], Any], settings: LatencySettings) -> tuple[float, float]:
    """(median, IQR) ms of ``call`` under the protocol's counts: ``warmup`` untimed, then ``runs`` timed calls."""
    return summarise(time_parts({"block": call}, settings.warmup, settings.runs)["block"])


def _block_call(name: str, model: Any, spec: Any, batch: int) -> Callable[[], Any]:
    """The callable that runs block ``name`` of ``model`` (built from ``spec``) on seeded inputs of its shapes."""
    import torch

    from scalesearch.model import input_normalization
    from scalesearch.training import detection

    gen = torch.Generator().manual_seed(0)
    sizes = [level_size(spec.resolution, level) for level in range(spec.min_level, spec.max_level + 1)]

    def maps(channels: list[int]) -> list[Any]:
        return [torch.randn(batch, c, s, s, generator=gen) for c, s in zip(channels, sizes)]

    width, backbone = [spec.fpn_channels] * spec.num_levels, list(model.backbone.feature_info.channels())
    if name == "backbone":
        images = torch.rand(batch, 3, spec.resolution, spec.resolution, generator=gen)
        mean, std = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1) for v in input_normalization(spec))
        return lambda: model.backbone((images - mean) / std)
    if name == "extra":
        last = maps(backbone)[-1]
        return lambda: functools.reduce(lambda x, resample: resample(x), model.fpn.extra, last)
    if name in ("cell0", "cell"):
        feats = maps(backbone + width[len(backbone):]) if name == "cell0" else maps(width)
        cell = model.fpn.cells[0 if name == "cell0" else 1]
        return lambda: cell(feats)
    if name in ("class_net", "box_net"):
        feats, head = maps(width), getattr(model, name)
        return lambda: head(feats)
    if name == "flatten":
        cls_outputs = maps([spec.num_anchors * spec.num_classes] * spec.num_levels)
        box_outputs = maps([spec.num_anchors * 4] * spec.num_levels)
        return lambda: detection.flatten_outputs(cls_outputs, box_outputs, spec.num_classes)
    return _post_call(spec, batch, gen)


def _post_call(spec: Any, batch: int, gen: Any) -> Callable[[], Any]:
    from scalesearch.training import detection

    logits, codes, anchors = post_inputs(spec, batch, gen)
    return lambda: detection.postprocess(logits, codes, anchors, image_size=spec.resolution, max_detections=100)


def post_inputs(spec: Any, batch: int, gen: Any) -> tuple[Any, Any, Any]:
    """What the ``post`` block decodes: ``[B, N, C]`` class logits at the prior and ``[B, N, 4]`` box codes near 0
    (both with the spread of an untrained detector's outputs, about 0.02), so the top 1000 pairs all enter NMS as
    in the protocol, and the ``[N, 4]`` anchors."""
    import math

    import torch

    from scalesearch.model.head import PRIOR_PROBABILITY
    from scalesearch.training import detection

    anchors = detection.anchor_boxes(spec)
    prior = -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY)
    logits = prior + 0.02 * torch.randn(batch, len(anchors), spec.num_classes, generator=gen)
    codes = 0.02 * torch.randn(batch, len(anchors), 4, generator=gen)
    return logits, codes, anchors
