"""``latency.table`` in a study: trials take the per-block table's prediction, and after the search every point of
the final front is measured by the protocol (rounds until the front holds measured points only), kept by a resumed
run and by the exporter; the onnxruntime refusal."""

from __future__ import annotations

import json

import pytest

from conftest import records_json, tiny_study
from scalesearch import pareto
from scalesearch.cli import main
from scalesearch.config import load_study
from scalesearch.measure import latency, latency_table

TIMING = {"warmup": 0, "runs": 2, "table": True}
OBJECTIVES = ["maximize map", "minimize latency_ms"]
# Fake figures, ms by (fpn_channels, resolution). The table: width/16 x (R/128)^2. The protocol: 10 % above the
# table, but the 32- and 48-wide points at 128 px are much slower than predicted, so after the first round of
# measurements two 192 px points the table had behind them join the front and are measured in a second round.
SURPRISES = {(32, 128): 10.0, (48, 128): 8.0}


def _table_ms(spec) -> float:
    return spec.fpn_channels / 16 * (spec.resolution / 128) ** 2


@pytest.fixture
def timings(monkeypatch, tmp_path):
    """Deterministic table and protocol (own lock, empty memory caches); yields the (channels, resolution) of every
    protocol measurement."""
    monkeypatch.setenv(latency.LOCK_ENV, str(tmp_path / "latency.lock"))
    monkeypatch.setattr(latency, "_MEMORY", {})
    measured = []

    def table(spec, settings, cache_dir=None):
        return latency_table.TableLatency({"backbone": _table_ms(spec), "post": 0.0}, {"backbone": 1, "post": 1},
                                          exclusive=True)

    def protocol(spec, settings, **kwargs):
        measured.append((spec.fpn_channels, spec.resolution))
        ms = SURPRISES.get((spec.fpn_channels, spec.resolution), round(1.1 * _table_ms(spec), 4))
        return latency.LatencyResult({"network": ms, "post": 0.0, "total": ms}, {p: 0.5 for p in latency.PARTS},
                                     "torch", 1, 1, 0, 2, spec.resolution, "cpu", 2, "3", "2", exclusive=True)

    monkeypatch.setattr(latency_table, "table_latency", table)
    monkeypatch.setattr(latency, "measure_latency", protocol)
    yield measured


def _study(tmp_path, **changes):
    return tiny_study(tmp_path, seeds=2, objectives=OBJECTIVES, latency=TIMING,
                      space={"phi": -3.0, "topology": "fpn", "fpn_channels": [16, 32, 48], "resolution": [128, 192]},
                      search={"n_trials": 12, "sampler": "grid"}, **changes)


def _by_point(records) -> dict[tuple[int, int], list[dict]]:
    out: dict[tuple[int, int], list[dict]] = {}
    for r in records:
        out.setdefault((r["fpn_channels"], r["resolution"]), []).append(r)
    return out


def test_front_points_end_measured_in_rounds_and_the_rest_keep_the_table(tmp_path, fake, timings):
    study = _study(tmp_path)
    assert main(["run", str(study), "--quiet"]) == 0
    run = load_study(study).output_dir()
    records = records_json(run)
    assert len(records) == 12 and all(r["state"] == "complete" for r in records)
    # round 1: the three 128 px points; round 2: the 32- and 48-wide 192 px points, once each (not per seed)
    assert timings == [(16, 128), (32, 128), (48, 128), (32, 192), (48, 192)]
    front = pareto.pareto_front(records, ("map", "latency_ms"))
    assert {(r["fpn_channels"], r["resolution"]) for r in front} == {(16, 128), (32, 192), (48, 192)}
    assert all(r["latency_source"] == "measured" for r in front)
    for point, group in _by_point(records).items():
        table = point[0] / 16 * (point[1] / 128) ** 2
        for r in group:  # both seeds of a point alike
            assert r["latency_table_ms"] == table and r["values"] == [r["map"], r["latency_ms"]]
            if point == (16, 192):  # never on the front: the table's figure stands
                assert r["latency_source"] == "table" and r["latency_ms"] == table and r["latency_iqr_ms"] is None
            else:
                assert r["latency_source"] == "measured" and r["latency_iqr_ms"] == 0.5
                assert r["latency_ms"] == SURPRISES.get(point, round(1.1 * table, 4))
    kept = json.loads((run / "latency_measured.json").read_text())["architectures"]
    assert len(kept) == 5


def test_a_resumed_run_and_the_exporter_keep_the_measured_values(tmp_path, fake, timings, monkeypatch):
    import optuna

    from scalesearch.search.latency_front import measured_overlay
    from scalesearch.search.optuna_study import RecordsExport

    study = _study(tmp_path)
    assert main(["run", str(study), "--quiet"]) == 0
    run = load_study(study).output_dir()
    before = records_json(run)
    monkeypatch.setattr(latency, "_MEMORY", {})  # a new process: only the run folder remembers
    assert main(["run", str(study), "--quiet"]) == 0
    assert records_json(run) == before and len(timings) == 5  # nothing measured twice
    # what a worker writes after each trial of a resumed run: the storage's records through the overlay
    config = load_study(study)
    storage = optuna.storages.RDBStorage(f"sqlite:///{run / 'study.db'}")
    exported = RecordsExport(run, config.seeds, overlay=measured_overlay(config, run))(
        optuna.load_study(study_name=config.name, storage=storage))
    assert [r.to_json() for r in exported] == before


def test_a_measured_latency_over_the_budget_makes_the_trial_infeasible(tmp_path, fake, timings):
    study = _study(tmp_path, budgets={"latency_ms": 9.0})
    assert main(["run", str(study), "--quiet"]) == 0
    records = records_json(load_study(study).output_dir())
    over = [r for r in records if (r["fpn_channels"], r["resolution"]) == (32, 128)]
    assert len(over) == 2 and all(r["state"] == "infeasible" and r["map"] is not None for r in over)
    assert over[0]["reason"] == ("latency_ms 10 ms over the budget 9 ms (measured after the search; the latency "
                                 "table predicted 2 ms)")
    assert all(r["values"] == [0.0, 10.0] for r in over)
    front = pareto.pareto_front(records, ("map", "latency_ms"))
    assert front and all(r["latency_source"] == "measured" for r in front)


def test_real_table_and_protocol_end_to_end(tmp_path, fake, monkeypatch):
    """No fakes but training: the table's blocks are timed, the front measured (tiny specs, 2 timed runs)."""
    monkeypatch.setenv(latency.LOCK_ENV, str(tmp_path / "latency.lock"))
    monkeypatch.setattr(latency, "_MEMORY", {})
    monkeypatch.setattr(latency_table, "_MEMORY", {})
    study = tiny_study(tmp_path, objectives=OBJECTIVES, latency=TIMING,
                       space={"phi": -3.0, "topology": "fpn", "fpn_channels": [16, 32], "resolution": 128},
                       search={"n_trials": 2, "sampler": "grid"})
    assert main(["run", str(study), "--quiet"]) == 0
    run = load_study(study).output_dir()
    records = records_json(run)
    front = {r["number"] for r in pareto.pareto_front(records, ("map", "latency_ms"))}
    assert front and all(r["latency_table_ms"] > 0 and r["latency_ms"] > 0 for r in records)
    for r in records:
        assert r["latency_source"] in (("measured",) if r["number"] in front else ("table", "measured"))
    assert list((run / "cost_cache").glob("latency_table-*.json")) and list((run / "cost_cache").glob("latency-*.json"))


def test_the_table_with_onnxruntime_is_one_line_and_exit_2(tmp_path, capsys):
    study = tiny_study(tmp_path, objectives=OBJECTIVES, latency={"runtime": "onnxruntime", "table": True})
    assert main(["run", str(study), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("scalesearch run: error: latency.table: the per-block table "
                                                   "times torch eager blocks only, but latency.runtime is "
                                                   "'onnxruntime'"), err


def test_an_unknown_latency_source_in_trials_json_is_one_line(tmp_path):
    from scalesearch.errors import UserError
    from scalesearch.records import State, TrialRecord, load_records

    row = TrialRecord(number=0, state=State.COMPLETE, latency_ms=1.0, latency_source="guessed").to_json()
    (tmp_path / "trials.json").write_text(json.dumps([row]))
    with pytest.raises(UserError, match=r"trials\.json: record 0 \(trial number 0\): unknown latency_source 'guessed' "
                                        r"\(valid: measured, table\)$"):
        load_records(tmp_path)


def test_a_labelled_baseline_off_the_front_is_measured_too(tmp_path, fake, timings):
    """``fidelity --against`` compares the front's measured latencies with the baseline's: a table prediction there
    (the baseline off the front) once let a slower point pass as cheaper. (16, 192) is never on the front."""
    search = {"n_trials": 12, "sampler": "grid",
              "enqueue": [{"label": "base", "params": {"fpn_channels": 16, "resolution": 192}}]}
    study = tiny_study(tmp_path, seeds=2, objectives=OBJECTIVES, latency=TIMING, search=search,
                       space={"phi": -3.0, "topology": "fpn", "fpn_channels": [16, 32, 48], "resolution": [128, 192]})
    assert main(["run", str(study), "--quiet"]) == 0
    records = records_json(load_study(study).output_dir())
    base = [r for r in records if r.get("label") == "base"]
    assert base and all(r["latency_source"] == "measured" for r in base)
    assert base[0]["latency_ms"] == round(1.1 * 16 / 16 * (192 / 128) ** 2, 4)
    assert (16, 192) in timings and timings.count((16, 192)) == 1
    front = pareto.pareto_front(records, ("map", "latency_ms"))
    assert all(r["latency_source"] == "measured" for r in front)
