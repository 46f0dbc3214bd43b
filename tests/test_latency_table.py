"""The per-block latency table (``scalesearch.measure.latency_table``): blocks sum to the prediction, entries are
shared and cached (memory and disk), the prediction ranks clearly different specs as the protocol does, and only
the torch runtime has a table."""

from __future__ import annotations

import pytest
from scipy.stats import kendalltau

from scalesearch.errors import UserError
from scalesearch.measure import latency, latency_table
from scalesearch.measure.latency import LatencySettings
from scalesearch.scaling import compound_spec

TINY = compound_spec(-3.0, resolution=128, num_classes=3)
FAST = LatencySettings(warmup=0, runs=2)


@pytest.fixture(autouse=True)
def own_lock_and_cache(tmp_path, monkeypatch):
    """A private lock file and empty memory caches for every test."""
    monkeypatch.setenv(latency.LOCK_ENV, str(tmp_path / "latency.lock"))
    monkeypatch.setattr(latency, "_MEMORY", {})
    monkeypatch.setattr(latency_table, "_MEMORY", {})


@pytest.fixture
def timed(monkeypatch) -> list[object]:
    """Blocks "timed" at 1 ms each without a clock; yields the callable of every block timed."""
    calls: list[object] = []

    def fake(call, settings):
        calls.append(call)
        return 1.0, 0.0

    monkeypatch.setattr(latency_table, "_time_block", fake)
    yield calls


def _new_blocks(before: set[str]) -> list[str]:
    return [entry["block"]["block"] for key, entry in latency_table._MEMORY.items() if key not in before]


def test_blocks_sum_to_the_prediction():
    spec = TINY.replace(fpn_repeats=3)
    table = latency_table.table_latency(spec, FAST)
    assert list(table.blocks) == ["backbone", "extra", "cell0", "cell", "class_net", "box_net", "flatten", "post"]
    assert table.counts["cell"] == 2 and all(table.counts[k] == 1 for k in table.blocks if k != "cell")
    assert all(ms > 0 for ms in table.blocks.values()) and table.exclusive
    total = sum(ms * table.counts[name] for name, ms in table.blocks.items())
    assert table.total_ms == pytest.approx(total, abs=1e-3) == latency_table.predict_latency(spec, FAST)
    assert table.total_ms == pytest.approx(table.network_ms + table.post_ms)


def test_one_cell_and_no_extra_levels():
    spec = TINY.replace(fpn_repeats=1, max_level=5)
    assert list(latency_table.table_latency(spec, FAST).blocks) == [
        "backbone", "cell0", "class_net", "box_net", "flatten", "post"]


def test_a_cached_block_is_not_timed_again(timed, tmp_path):
    two = TINY.replace(fpn_repeats=2)
    first = latency_table.table_latency(two, FAST, cache_dir=tmp_path)
    assert len(timed) == 8 and first.total_ms == 8.0  # 8 blocks at 1 ms each
    assert latency_table.table_latency(two, FAST, cache_dir=tmp_path) == first and len(timed) == 8
    # further cells are one entry, whatever their number; a new name or new weights change nothing
    assert latency_table.predict_latency(TINY.replace(fpn_repeats=5, name="x", weights="package"), FAST,
                                         tmp_path) == 11.0 and len(timed) == 8
    before = set(latency_table._MEMORY)
    latency_table.table_latency(TINY.replace(fpn_repeats=2, head_repeats=1), FAST, cache_dir=tmp_path)
    assert len(timed) == 10 and _new_blocks(before) == ["head", "head"]  # only the heads differ
    latency_table._MEMORY.clear()  # a new process: the files answer
    assert latency_table.table_latency(two, FAST, cache_dir=tmp_path) == first and len(timed) == 10
    assert len(list(tmp_path.glob("latency_table-*.json"))) == 10
    latency_table.table_latency(two, LatencySettings(warmup=0, runs=3), cache_dir=tmp_path)
    assert len(timed) == 18  # other settings: other entries


def test_equal_shapes_share_an_entry(timed):
    """A head with as many outputs as the other (4 classes: class net = box net) is timed once."""
    latency_table.table_latency(TINY.replace(num_classes=4, fpn_repeats=1), FAST)
    assert len(timed) == 6 and _new_blocks(set()).count("head") == 1


def test_the_post_block_feeds_nms_the_protocols_candidates():
    import torch

    logits, codes, anchors = latency_table.post_inputs(TINY, 1, torch.Generator().manual_seed(0))
    assert logits.shape == (1, len(anchors), 3) and codes.shape == (1, len(anchors), 4)
    assert latency._candidates(logits) == 1000  # every top-1000 pair scores above 0.001, as for an untrained detector


def test_prediction_ranks_clearly_different_specs_as_the_protocol_does():
    settings = LatencySettings(warmup=1, runs=5)
    specs = [TINY.replace(fpn_channels=32, fpn_repeats=1, head_repeats=1, resolution=128),
             TINY.replace(fpn_channels=64, fpn_repeats=2, head_repeats=2, resolution=192),
             TINY.replace(fpn_channels=96, fpn_repeats=3, head_repeats=3, resolution=256)]
    predicted = [latency_table.predict_latency(s, settings) for s in specs]
    measured = [latency.measure_latency(s, settings).total_ms for s in specs]
    assert predicted[0] < predicted[-1] and measured[0] < measured[-1]
    assert kendalltau(predicted, measured).statistic > 0


def test_only_torch_has_a_table():
    with pytest.raises(UserError) as info:
        latency_table.predict_latency(TINY, LatencySettings(runtime="onnxruntime"))
    message = str(info.value)
    assert "\n" not in message and message.startswith(
        "latency.table: the per-block table times torch eager blocks only, but latency.runtime is 'onnxruntime'")


def test_the_study_setting_is_checked():
    from scalesearch.config import validate_study

    raw = {"name": "s", "space": {"phi": [-3.0]}, "objectives": ["maximize map", "minimize latency_ms"]}
    assert validate_study({**raw, "latency": {"table": True}}).latency.table
    assert not validate_study(raw).latency.table
    with pytest.raises(UserError, match=r"^latency\.table: the per-block table times torch eager blocks only"):
        validate_study({**raw, "latency": {"runtime": "onnxruntime", "table": True}})
