"""Latency protocol (``scalesearch.measure.latency``): counts, statistics, parts, threads, lock, cache, JSON."""

from __future__ import annotations

import fcntl
import json

import pytest
import torch

from servers import TEST_EXTRAS, need_module

from scalesearch.measure import latency
from scalesearch.machine import identity
from scalesearch.errors import UserError
from scalesearch.scaling import compound_spec

TINY = compound_spec(-3.0, resolution=128, num_classes=3)


class FakeClock:
    """``time`` for the latency module: ``sleep`` advances a counter that ``perf_counter_ns`` reads, so timing
    assertions are exact and no load on the machine can move them."""

    def __init__(self):
        self.ns = 0

    def perf_counter_ns(self) -> int:
        return self.ns

    def sleep(self, seconds: float) -> None:
        self.ns += round(seconds * 1e9)


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(latency, "time", fake)
    return fake


@pytest.fixture(autouse=True)
def own_lock_and_cache(tmp_path, monkeypatch):
    """A private lock file and an empty memory cache for every test."""
    monkeypatch.setenv(latency.LOCK_ENV, str(tmp_path / "latency.lock"))
    monkeypatch.setattr(latency, "_MEMORY", {})


def test_time_parts_calls_warmup_plus_runs_and_times_only_runs():
    calls = {"a": 0, "b": 0}
    parts = {name: (lambda name=name: calls.__setitem__(name, calls[name] + 1)) for name in calls}
    samples = latency.time_parts(parts, warmup=3, runs=7)
    assert calls == {"a": 10, "b": 10}
    assert {k: len(v) for k, v in samples.items()} == {"a": 7, "b": 7}


def test_time_parts_measures_milliseconds(clock):
    durations = iter([0.02, 0.0305, 0.001])
    samples = latency.time_parts({"sleep": lambda: clock.sleep(next(durations))}, warmup=0, runs=3)
    assert samples["sleep"] == pytest.approx([20.0, 30.5, 1.0])


def test_summarise_median_and_interquartile_range():
    assert latency.summarise([8, 1, 7, 2, 6, 3, 5, 4]) == (4.5, 3.5)  # q1 2.75, q3 6.25 (linear)
    assert latency.summarise([10.0] * 5) == (10.0, 0.0)
    assert latency.summarise([1, 2, 3, 100]) == (2.5, pytest.approx(25.5))  # q3 27.25 - q1 1.75: one outlier


@pytest.mark.parametrize("changes, message", [
    ({"runtime": "tensorrt"}, "runtime: unknown runtime 'tensorrt' (valid names: onnxruntime, torch)"),
    ({"threads": 0}, "threads: must be an integer >= 1, but got 0"),
    ({"batch": 1.5}, "batch: must be an integer >= 1, but got 1.5"),
    ({"warmup": -1}, "warmup: must be an integer >= 0, but got -1"),
    ({"runs": 0}, "runs: must be an integer >= 1, but got 0"),
])
def test_settings_are_checked(changes, message):
    with pytest.raises(UserError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        latency.LatencySettings(**changes)


def _sleepy_runtime(monkeypatch, clock: FakeClock, network_s: float, post_s: float, seen: dict):
    """Replace the torch runtime by a network that takes ``network_s`` on the fake clock and post-processing
    that takes ``post_s``; ``seen`` counts calls and records torch's thread count during them."""
    outputs = (torch.zeros(1, 10, 3), torch.zeros(1, 10, 4))

    def network_factory(model, spec, images, threads, stack):
        seen["images"] = tuple(images.shape)

        def network():
            seen["network"] = seen.get("network", 0) + 1
            seen["threads"] = torch.get_num_threads()
            clock.sleep(network_s)
            return outputs
        return network

    def post(cls, box, anchors, **kwargs):
        seen["post"] = seen.get("post", 0) + 1
        clock.sleep(post_s)
        return [{"scores": torch.zeros(2)}]

    from scalesearch.registry import Registry

    runtimes = Registry("runtime")
    runtimes.add("torch", network_factory)
    monkeypatch.setattr(latency, "RUNTIMES", runtimes)
    monkeypatch.setattr("scalesearch.training.detection.postprocess", post)


def test_parts_counts_threads_and_total_is_network_then_post(monkeypatch, clock):
    seen: dict = {}
    _sleepy_runtime(monkeypatch, clock, 0.02, 0.01, seen)
    torch.set_num_threads(2)
    try:
        result = latency.measure_latency(TINY, latency.LatencySettings(threads=1, batch=2, warmup=2, runs=5),
                                         model=torch.nn.Identity())
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(1)
    # network: once for the post-processing input, then (network + total) per warm-up and timed round
    assert seen["network"] == 1 + 2 * (2 + 5) and seen["post"] == 1 + 2 * (2 + 5)
    assert seen["threads"] == 1 and seen["images"] == (2, 3, 128, 128)
    m = result.median_ms
    assert (m["network"], m["post"], m["total"]) == pytest.approx((20.0, 10.0, 30.0))
    assert {k: len(v) for k, v in result.samples_ms.items()} == {"network": 5, "post": 5, "total": 5}
    assert (result.runs, result.warmup, result.threads, result.batch, result.resolution) == (5, 2, 1, 2, 128)
    # the fake network's 10 anchors x 3 classes all score sigmoid(0) >= 0.001; the fake NMS keeps 2
    assert result.exclusive is True and result.candidates == 30 and result.detections == 2


def test_real_torch_measurement_of_a_tiny_spec():
    result = latency.measure_latency(TINY, latency.LatencySettings(warmup=1, runs=3))
    assert result.runtime == "torch" and result.cpu and result.cores >= 1 and result.torch == torch.__version__
    assert all(result.median_ms[p] > 0 and result.iqr_ms[p] >= 0 for p in latency.PARTS)
    assert result.median_ms["total"] > result.median_ms["post"]  # network vs total: within load noise at 3 runs
    assert result.candidates == 1000 and 0 < result.detections <= 100  # untrained: every top-1000 pair passes 0.001
    text = latency.render(result, "tiny")
    assert text.splitlines()[1].split() == ["part", "median", "ms", "IQR", "ms"]
    assert "machine: " in text and "1 thread(s), batch 1, 1 warm-up + 3 timed runs (exclusive" in text


def test_onnxruntime_measurement_of_a_tiny_spec():
    need_module("onnxruntime", TEST_EXTRAS)
    need_module("scalesearch.measure.export", TEST_EXTRAS)
    result = latency.measure_latency(TINY, latency.LatencySettings(runtime="onnxruntime", warmup=1, runs=2))
    assert result.runtime == "onnxruntime" and result.onnxruntime
    assert all(result.median_ms[p] > 0 for p in latency.PARTS) and result.candidates == 1000


def test_json_roundtrip():
    result = latency.LatencyResult(
        median_ms={"network": 10.0, "post": 2.0, "total": 12.5}, iqr_ms={"network": 0.5, "post": 0.1, "total": 0.7},
        runtime="torch", threads=1, batch=1, warmup=10, runs=40, resolution=128, cpu="CPU X", cores=2,
        python="3.11.7", torch="2.14.1", exclusive=True, load_average=0.5, candidates=1000, detections=100,
        samples_ms={"total": (12.0, 12.5, 13.0)})
    assert latency.LatencyResult.from_json(json.loads(json.dumps(result.to_json()))) == result
    assert result.total_ms == 12.5


def test_lock_is_exclusive_while_held(tmp_path):
    path = tmp_path / "other.lock"
    with latency.exclusive_lock(path) as held:
        assert held
        with open(path, "a+") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(path, "a+") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released after the block


def test_cache_measures_once_per_architecture_settings_and_machine(monkeypatch, tmp_path):
    measured = []

    def fake_measure(spec, settings, **kwargs):
        measured.append((spec.topology, settings.threads, kwargs.get("exclusive")))
        return latency.LatencyResult({"network": 1.0, "post": 1.0, "total": 2.0}, {p: 0.0 for p in latency.PARTS},
                                     settings.runtime, settings.threads, 1, 0, 1, spec.resolution, "cpu", 2, "3", "2")

    monkeypatch.setattr(latency, "measure_latency", fake_measure)
    one = latency.LatencySettings(runs=1)
    first = latency.cached_latency(TINY, one, cache_dir=tmp_path)
    assert latency.cached_latency(TINY.replace(name="renamed", weights="package"), one, cache_dir=tmp_path) == first
    latency.cached_latency(TINY, latency.LatencySettings(runs=1, threads=2), cache_dir=tmp_path)
    latency.cached_latency(TINY.replace(topology="fpn"), one, cache_dir=tmp_path)
    assert measured == [("bifpn", 1, True), ("bifpn", 2, True), ("fpn", 1, True)]
    monkeypatch.setattr(latency, "_MEMORY", {})  # a new process: the files answer
    assert latency.cached_latency(TINY, one, cache_dir=tmp_path) == first and len(measured) == 3
    assert len(list(tmp_path.glob("latency-*.json"))) == 3


def test_cache_key_names_the_machine():
    settings = latency.LatencySettings()
    here = identity()
    assert latency.cache_key(TINY, settings, here) != latency.cache_key(TINY, settings, {**here, "cpu": "other"})
    assert latency.cache_key(TINY, settings, here) != latency.cache_key(TINY, latency.LatencySettings(batch=2), here)
