"""Measured latency of a detector on this machine, by one stated protocol.

Protocol (every figure of ``LatencyResult`` comes from it; ``scalesearch latency`` prints it):

* **Input**: ``batch`` (default 1) copies of one fixed image, ``torch.rand`` with generator seed 0, RGB in
  [0, 1], ``spec.resolution`` px square. Normalisation by the backbone's mean/std is part of the network,
  as it is inside the exported ONNX graph (``scalesearch.measure.export``).
* **Weights**: the checkpoint's, or the architecture's random initialisation under seed 0 (the global RNG
  is left untouched). Weights do not change the network's time; they do change how many boxes reach NMS.
* **Parts**: ``network`` = normalisation + backbone + feature network + heads + flattening to
  ``[B, N, C]`` logits / ``[B, N, 4]`` codes; ``post`` = decode + batched NMS
  (``scalesearch.training.detection.postprocess``: top 1000 (anchor, class) pairs, score >= 0.001, IoU 0.5, at most
  ``max_detections`` boxes), always in torch, timed on the network's own outputs for the fixed image
  (``candidates`` records how many boxes entered NMS: the 1000 cap for an untrained detector, and for
  most trained ones at this threshold), so it is repeatable; ``total`` = network then post, timed as one call.
* **Counts**: ``warmup`` rounds (default 10) then ``runs`` timed rounds (default 40); each round calls
  network, post and total once, so the parts see the same machine state. Every call is timed alone with
  ``time.perf_counter_ns`` (fixed counts, no auto-ranging); each part reports its median and interquartile
  range (75th - 25th percentile, linear interpolation) in milliseconds.
* **Runtimes**: ``torch`` (eager, ``inference_mode``, eval mode) and ``onnxruntime`` (the raw graph of
  ``scalesearch.measure.export.export_onnx(nms=False)``, one session with ``threads`` intra-op threads).
* **Threads**: torch's intra-op thread count is set to ``threads`` (default 1) for the measurement and
  restored afterwards; ONNX Runtime sessions get the same count.
* **Exclusivity**: a measurement holds an exclusive ``fcntl.flock`` on ``/tmp/scalesearch-latency.lock``
  (``$SCALESEARCH_LATENCY_LOCK``), so two measurements on one machine never overlap. Other work is not
  stopped: in a study with several workers, their training keeps running during a measurement and can slow
  it; ``exclusive`` and ``load_average`` (1-minute, at the start) say what the measurement saw.

``cached_latency`` caches results like ``scalesearch.measure.cost``: by spec, settings and machine (CPU model,
cores, library versions), in memory and as one JSON file per key in a cost-cache folder. Torch is imported
inside the functions that need it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from scalesearch.errors import UserError, close_names_hint
from scalesearch.files import JsonCache, digest
from scalesearch.machine import identity
from scalesearch.registry import Registry

# name -> network factory ``(model, spec, images, threads, stack) -> network()``, where ``network()`` returns
# (``[B, N, C]`` logits, ``[B, N, 4]`` box codes) as torch tensors. Declared by path (the factories are below and
# need torch or onnxruntime), so settings made at import time, and config validation, know every name.
RUNTIMES: Registry[Callable[..., Callable[[], Any]]] = Registry("runtime")
RUNTIMES.declare("torch", "scalesearch.measure.latency:_torch_network")
RUNTIMES.declare("onnxruntime", "scalesearch.measure.latency:_onnxruntime_network")
PARTS = ("network", "post", "total")
DEFAULT_WARMUP, DEFAULT_RUNS = 10, 40
LOCK_ENV = "SCALESEARCH_LATENCY_LOCK"
DEFAULT_LOCK = "/tmp/scalesearch-latency.lock"
_METHOD_VERSION = 1  # bump when the protocol changes, to invalidate disk caches
_MEMORY: dict[str, "LatencyResult"] = {}


@dataclass(frozen=True)
class LatencySettings:
    """How to measure: ``runtime`` (``torch`` / ``onnxruntime``), intra-op ``threads``, ``batch`` images,
    ``warmup`` untimed and ``runs`` timed rounds."""

    runtime: str = "torch"
    threads: int = 1
    batch: int = 1
    warmup: int = DEFAULT_WARMUP
    runs: int = DEFAULT_RUNS

    def __post_init__(self) -> None:
        check_settings(self.runtime, self.threads, self.batch, self.warmup, self.runs)


def check_settings(runtime: str, threads: int, batch: int, warmup: int, runs: int, prefix: str = "") -> None:
    """``UserError`` naming ``prefix + key`` (``--threads``, ``latency.threads``) for a bad setting."""
    if runtime not in RUNTIMES:
        raise UserError(f"{prefix}runtime: unknown runtime {runtime!r} ({close_names_hint(runtime, RUNTIMES)})")
    for key, value, low in (("threads", threads, 1), ("batch", batch, 1), ("warmup", warmup, 0), ("runs", runs, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise UserError(f"{prefix}{key}: must be an integer >= {low}, but got {value!r}")


@dataclass(frozen=True)
class LatencyResult:
    """One measurement. ``median_ms`` / ``iqr_ms``: per part (``network``, ``post``, ``total``), milliseconds
    per call of ``batch`` images; ``samples_ms``: every timed call, in order; ``candidates``: boxes that
    entered NMS, ``detections``: boxes kept (whole batch); machine: ``cpu`` model, ``cores``, versions."""

    median_ms: dict[str, float]
    iqr_ms: dict[str, float]
    runtime: str
    threads: int
    batch: int
    warmup: int
    runs: int
    resolution: int
    cpu: str
    cores: int | None
    python: str
    torch: str
    onnxruntime: str | None = None
    exclusive: bool = False
    load_average: float | None = None
    candidates: int | None = None
    detections: int | None = None
    samples_ms: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return self.median_ms["total"]

    def machine_line(self) -> str:
        """E.g. ``Intel Xeon ..., 2 cores; torch 2.14.1, Python 3.11.7; torch, 1 thread(s), batch 1``."""
        ort = f", onnxruntime {self.onnxruntime}" if self.onnxruntime else ""
        lock = "exclusive" if self.exclusive else "not exclusive"
        load = f", load {self.load_average:.2f}" if self.load_average is not None else ""
        return (f"{self.cpu}, {self.cores} cores; torch {self.torch}{ort}, Python {self.python}; {self.runtime}, "
                f"{self.threads} thread(s), batch {self.batch}, {self.warmup} warm-up + {self.runs} timed runs "
                f"({lock}{load})")

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["samples_ms"] = {k: list(v) for k, v in self.samples_ms.items()}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "LatencyResult":
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["samples_ms"] = {k: tuple(v) for k, v in (data.get("samples_ms") or {}).items()}
        return cls(**kwargs)


# ---- the protocol ----------------------------------------------------------------------------------

def time_parts(parts: dict[str, Callable[[], Any]], warmup: int, runs: int) -> dict[str, list[float]]:
    """Call every part ``warmup`` times untimed, then ``runs`` times timed, one round at a time (each round
    calls each part once, in order); returns the milliseconds of every timed call, per part."""
    for _ in range(warmup):
        for fn in parts.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(runs):
        for name, fn in parts.items():
            start = time.perf_counter_ns()
            fn()
            samples[name].append((time.perf_counter_ns() - start) / 1e6)
    return samples


def summarise(samples: list[float]) -> tuple[float, float]:
    """(median, interquartile range) of ``samples``; percentiles by linear interpolation (numpy's default)."""
    import numpy as np

    q1, median, q3 = np.percentile(np.asarray(samples, dtype=float), [25, 50, 75])
    return float(median), float(q3 - q1)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` inside the block, restored after it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def exclusive_lock(path: str | Path | None = None) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` (``$SCALESEARCH_LATENCY_LOCK`` or /tmp/scalesearch-latency.lock),
    waiting for it; yields True when held, False when the lock file cannot be opened (then nothing is held)."""
    import fcntl

    path = Path(path or os.environ.get(LOCK_ENV) or DEFAULT_LOCK)
    try:
        handle = open(path, "a+")
    except OSError:
        yield False
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def measure_latency(spec: Any, settings: LatencySettings = LatencySettings(), *, model: Any = None,
                    max_detections: int = 100, lock: str | Path | None = None,
                    exclusive: bool | None = None) -> LatencyResult:
    """Measure ``spec`` (a ``DetectorSpec``; ``model``: its module with trained weights, else built at seed 0)
    by the module's protocol, holding the lock file ``lock`` (default: ``exclusive_lock``'s). ``exclusive``:
    the caller already decided (True: it holds the lock), so no lock is taken here."""
    import torch

    from scalesearch.model import build_detector

    if model is None:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = build_detector(spec, weights=False)
    images = torch.rand(settings.batch, 3, spec.resolution, spec.resolution,
                        generator=torch.Generator().manual_seed(0))
    with contextlib.ExitStack() as stack:
        if exclusive is None:
            exclusive = stack.enter_context(exclusive_lock(lock))
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        stack.enter_context(torch_threads(settings.threads))
        stack.enter_context(torch.inference_mode())
        parts, counts = _runtime_parts(settings, model.eval(), spec, images, max_detections, stack)
        samples = time_parts(parts, settings.warmup, settings.runs)
    return _result(settings, spec.resolution, samples, exclusive, load, **counts)


def _result(settings: LatencySettings, resolution: int, samples: dict[str, list[float]], exclusive: bool,
            load: float | None, **counts: Any) -> LatencyResult:
    """A measurement's result: median and IQR of each part's samples, the settings and this machine."""
    stats = {name: summarise(values) for name, values in samples.items()}
    return LatencyResult(
        median_ms={k: round(v[0], 4) for k, v in stats.items()}, iqr_ms={k: round(v[1], 4) for k, v in stats.items()},
        runtime=settings.runtime, threads=settings.threads, batch=settings.batch, warmup=settings.warmup,
        runs=settings.runs, resolution=resolution, **identity(), exclusive=bool(exclusive),
        load_average=None if load is None else round(load, 2), **counts,
        samples_ms={k: tuple(round(x, 4) for x in v) for k, v in samples.items()})


def measure_onnx_graph(path: str | Path, settings: LatencySettings, *, lock: str | Path | None = None) -> LatencyResult:
    """Time an exported ONNX file as it is (``scalesearch export``, with or without ``--nms``) in ONNX Runtime by
    the protocol: ``settings.batch`` seeded random images at the graph's own resolution, one ``session.run`` per
    call, under the latency lock. Only ``total`` is timed (an NMS graph has no separable post-processing); with an
    NMS graph, ``detections`` counts the boxes it kept."""
    import numpy as np
    import torch

    from scalesearch.measure.export import onnx_session

    if settings.runtime != "onnxruntime":
        raise UserError(f"runtime: an ONNX file runs in onnxruntime, but got {settings.runtime!r}")
    session = onnx_session(path, threads=settings.threads)
    shape = session.get_inputs()[0].shape
    resolution = shape[-1]
    if not isinstance(resolution, int):
        raise UserError(f"ONNX model {path}: its input must have a fixed resolution, but it has {shape}")
    images = torch.rand(settings.batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    feed = {session.get_inputs()[0].name: images.numpy()}
    names = [o.name for o in session.get_outputs()]
    with contextlib.ExitStack() as stack:
        exclusive = stack.enter_context(exclusive_lock(lock))
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        found = dict(zip(names, session.run(None, feed)))
        samples = time_parts({"total": lambda: session.run(None, feed)}, settings.warmup, settings.runs)
    kept = int(np.asarray(found["num_detections"]).sum()) if "num_detections" in found else None
    return _result(settings, resolution, samples, exclusive, load, detections=kept)


def _runtime_parts(settings: LatencySettings, model: Any, spec: Any, images: Any, max_detections: int,
                   stack: contextlib.ExitStack) -> tuple[dict[str, Callable[[], Any]], dict[str, int]]:
    """The three timed callables for the runtime, and the NMS input/output sizes on the fixed image."""
    from scalesearch.training import detection as det
    network = RUNTIMES.get(settings.runtime)(model, spec, images, settings.threads, stack)
    anchors = det.anchor_boxes(spec)

    def post_of(outputs: tuple[Any, Any]) -> list[dict[str, Any]]:
        return det.postprocess(*outputs, anchors, image_size=spec.resolution, max_detections=max_detections)

    outputs = network()  # the post-processing input: this network's outputs for the fixed image
    found = post_of(outputs)
    counts = {"candidates": _candidates(outputs[0]), "detections": sum(len(d["scores"]) for d in found)}
    parts = {"network": network, "post": lambda: post_of(outputs), "total": lambda: post_of(network())}
    return parts, counts


def _candidates(logits: Any, top_k: int = 1000, threshold: float = 0.001) -> int:
    """Boxes entering NMS in ``detection.postprocess`` (its defaults): top-k pairs scoring >= threshold."""
    flat = logits.reshape(logits.shape[0], -1)
    top = flat.topk(min(top_k, flat.shape[1]), dim=1).values
    return int((top.float().sigmoid() >= threshold).sum())


def _torch_network(model: Any, spec: Any, images: Any, threads: int, stack: contextlib.ExitStack) -> Callable[[], Any]:
    import torch

    from scalesearch.training.detection import flatten_outputs
    from scalesearch.model import input_normalization

    mean, std = (torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1) for v in input_normalization(spec))
    return lambda: flatten_outputs(*model((images - mean) / std), spec.num_classes)


def _onnxruntime_network(model: Any, spec: Any, images: Any, threads: int,
                         stack: contextlib.ExitStack) -> Callable[[], Any]:
    """ONNX Runtime on the raw exported graph (normalisation inside); outputs back as torch tensors
    (``from_numpy``: no copy). The temporary .onnx file lives as long as the measurement."""
    import torch

    from scalesearch.measure.export import export_onnx, onnx_session  # UserError naming the package when missing

    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scalesearch-latency-")))
    with torch.inference_mode(False):
        path = export_onnx(model, spec, folder / "model.onnx", nms=False)
    session = onnx_session(path, threads=threads)
    feed = {session.get_inputs()[0].name: images.numpy()}
    names = [o.name for o in session.get_outputs()]

    def network() -> tuple[Any, Any]:
        out = dict(zip(names, session.run(None, feed)))
        return _flat_outputs(out, spec)

    return network


def _flat_outputs(out: dict[str, Any], spec: Any) -> tuple[Any, Any]:
    """``class_logits`` / ``box_regression`` as ``[B, N, C]`` / ``[B, N, 4]`` torch tensors (per-level
    outputs, if a graph gives them, are flattened here, as ``detection.flatten_outputs`` does)."""
    import torch

    from scalesearch.training.detection import flatten_outputs

    if "class_logits" in out and "box_regression" in out and out["class_logits"].ndim == 3:
        return torch.from_numpy(out["class_logits"]), torch.from_numpy(out["box_regression"])
    tensors = [torch.from_numpy(v) for v in out.values()]
    levels = len(tensors) // 2
    return flatten_outputs(tensors[:levels], tensors[levels:], spec.num_classes)


# ---- cache ------------------------------------------------------------------------------------------

def cache_key(spec: Any, settings: LatencySettings, info: dict[str, Any] | None = None) -> str:
    """Digest of the architecture (name and weights excluded), the settings and this machine."""
    arch = spec.replace(weights="none", name=None).to_dict()
    info = info or identity()
    if settings.runtime != "onnxruntime":
        info = {**info, "onnxruntime": None}
    data = {"spec": arch, "settings": dataclasses.asdict(settings), "machine": info, "version": _METHOD_VERSION}
    return digest(data)


def cached_latency(spec: Any, settings: LatencySettings = LatencySettings(), cache_dir: str | Path | None = None,
                   **kwargs: Any) -> LatencyResult:
    """``measure_latency`` once per architecture, settings and machine: in memory, and as
    ``cache_dir/latency-<key>.json`` when ``cache_dir`` is given (shared by workers and resumed runs). The
    file is checked again once the lock is held, so workers waiting on one architecture measure it once."""
    key = cache_key(spec, settings)
    if key in _MEMORY:
        return _MEMORY[key]
    cache = JsonCache(cache_dir, "latency")
    stored = cache.get(key)
    if stored is None:
        with exclusive_lock(kwargs.pop("lock", None)) as held:
            stored = cache.get(key)  # another worker may have measured it while we waited
            if stored is None:
                result = measure_latency(spec, settings, exclusive=held, **kwargs)
                cache.put(key, result.to_json())
    if stored is not None:
        result = LatencyResult.from_json(stored)
    _MEMORY[key] = result
    return result


def render(result: LatencyResult, title: str = "") -> str:
    """A small table: one line per part (median and IQR, ms), then the machine line."""
    lines = [title] if title else []
    lines.append(f"{'part':<8} {'median ms':>10} {'IQR ms':>9}")
    for part in (p for p in PARTS if p in result.median_ms):  # an ONNX file with NMS inside: total only
        lines.append(f"{part:<8} {result.median_ms[part]:>10.2f} {result.iqr_ms[part]:>9.2f}")
    if result.candidates is not None:
        lines.append(f"NMS input {result.candidates} candidate boxes, {result.detections} kept")
    elif result.detections is not None:
        lines.append(f"{result.detections} boxes kept by the graph's NMS")
    lines.append(f"machine: {result.machine_line()}")
    return "\n".join(lines)
