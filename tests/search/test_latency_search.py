"""Latency in a study: ``minimize latency_ms`` end to end, measured once per architecture, latency budgets,
and the ``latency`` settings' one-line errors."""

from __future__ import annotations

import pytest
import yaml

from conftest import records_json, tiny_study
from scalesearch.measure import latency
from scalesearch.cli import main
from scalesearch.config import load_study

TIMING = {"warmup": 0, "runs": 2}  # real measurements, as few as the tests need


@pytest.fixture
def measured(monkeypatch, tmp_path):
    """Count real measurements (own lock file, empty memory cache); yields the measured specs."""
    monkeypatch.setenv(latency.LOCK_ENV, str(tmp_path / "latency.lock"))
    monkeypatch.setattr(latency, "_MEMORY", {})
    calls = []
    real = latency.measure_latency

    def counting(spec, settings, **kwargs):
        calls.append((spec.name, settings))
        return real(spec, settings, **kwargs)

    monkeypatch.setattr(latency, "measure_latency", counting)
    yield calls


def _run(study) -> list[dict]:
    assert main(["run", str(study), "--quiet"]) == 0
    return records_json(load_study(study).output_dir())


def test_minimize_latency_runs_end_to_end_and_measures_each_architecture_once(tmp_path, fake, measured):
    study = tiny_study(tmp_path, seeds=2, objectives=["maximize map", "minimize latency_ms"], latency=TIMING,
                       space={"phi": -3.0, "topology": ["fpn", "bifpn"], "resolution": 128},
                       search={"n_trials": 4, "sampler": "grid"})
    records = _run(study)
    assert len(records) == 4 and all(r["state"] == "complete" for r in records)
    assert sorted(name for name, _ in measured) == ["phi=-3", "phi=-3"]  # two architectures, two seeds each
    assert {s.topology for s in fake} == {"fpn", "bifpn"} and len(fake) == 4
    assert measured[0][1] == latency.LatencySettings(warmup=0, runs=2)
    by_topology: dict[str, set[float]] = {}
    for r in records:
        assert r["latency_ms"] > 0 and r["latency_network_ms"] > 0 and r["latency_post_ms"] > 0
        assert r["latency_iqr_ms"] >= 0 and r["latency_exclusive"] is True
        assert r["values"] == [r["map"], r["latency_ms"]]
        by_topology.setdefault(r["topology"], set()).add(r["latency_ms"])
    assert all(len(v) == 1 for v in by_topology.values())  # seed repeats share the cached figure
    cache = load_study(study).output_dir() / "cost_cache"
    assert len(list(cache.glob("latency-*.json"))) == 2


def test_latency_budget_makes_trials_infeasible_untrained(tmp_path, fake, measured):
    study = tiny_study(tmp_path, objectives=["maximize map", "minimize latency_ms"], latency=TIMING,
                       budgets={"latency_ms": 0.001}, space={"phi": -3.0, "topology": "fpn", "resolution": 128},
                       search={"n_trials": 2})
    records = _run(study)
    assert len(records) == 2 and fake == [] and len(measured) == 1
    for r in records:
        assert r["state"] == "infeasible" and r["map"] is None
        assert r["reason"] == f"latency_ms {r['latency_ms']:.4g} ms over the budget 0.001 ms"
        assert r["values"] == [0.0, r["latency_ms"]]  # the measured latency is kept, mAP gets its worst
    assert "latency_ms: 0.001" in (load_study(study).output_dir() / "study.yaml").read_text()


def test_a_failed_measurement_fails_the_trial_untrained(tmp_path, fake, monkeypatch):
    def broken(spec, settings, **kwargs):
        raise RuntimeError("export failed\nsecond line")

    monkeypatch.setenv(latency.LOCK_ENV, str(tmp_path / "latency.lock"))
    monkeypatch.setattr(latency, "_MEMORY", {})
    monkeypatch.setattr(latency, "measure_latency", broken)
    study = tiny_study(tmp_path, objectives=["maximize map", "minimize latency_ms"],
                       space={"phi": -3.0, "topology": "fpn", "resolution": 128}, search={"n_trials": 1})
    [record] = _run(study)
    assert record["state"] == "failed" and fake == [] and record["values"] is None
    assert record["reason"] == "latency measurement failed: RuntimeError: export failed"


def test_studies_without_latency_measure_nothing(tmp_path, fake, measured):
    study = tiny_study(tmp_path, search={"n_trials": 1})
    records = _run(study)
    assert measured == [] and records[0]["latency_ms"] is None
    assert "latency_ms" not in yaml.safe_load((tmp_path / "run" / "study.yaml").read_text())["budgets"]


@pytest.mark.parametrize("changes, message", [
    ({"latency": {"runtime": "tensorrt"}}, "latency.runtime: unknown runtime 'tensorrt' (valid names: onnxruntime, torch)"),
    ({"latency": {"threads": 0}}, "latency.threads: input should be greater than or equal to 1, but got 0"),
    ({"latency": {"batch": 0}}, "latency.batch: input should be greater than or equal to 1, but got 0"),
    ({"latency": {"thread": 2}}, "latency.thread: unknown key 'thread' (close names: threads)"),
    ({"budgets": {"latency_ms": 0}}, "budgets.latency_ms: the latency budget must be a number of milliseconds > 0, "
                                     "but got 0"),
    ({"budgets": {"latency_ms": -5}}, "budgets.latency_ms: the latency budget must be a number of milliseconds > 0"),
    ({"objectives": ["maximize map", "maximize latency_ms"]},
     "latency_ms is better when it is minimized, but the study asks to maximize it"),
])
def test_bad_latency_settings_give_one_line_and_exit_2(tmp_path, capsys, changes, message):
    assert main(["run", str(tiny_study(tmp_path, **changes)), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("scalesearch run: error: ") and message in err, err
