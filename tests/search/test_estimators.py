"""The estimator seam (``scalesearch.search.estimators``): one registry, a member runs a whole study and lands in
the records with its cost, per-worker preparation, capabilities checked against pruning, and the backend-neutral
pruning and prefilter decisions (``multi_fidelity.TrialGates``) over a ``BoardStore``."""

from __future__ import annotations

import json

import pytest

import search_fakes
from conftest import records_json, tiny_study
from scalesearch.cli import main
from scalesearch.config import load_study
from scalesearch.records import State, TrialRecord, load_records
from scalesearch.search.estimators import ESTIMATORS, Capabilities, Estimate, Estimator
from scalesearch.search.estimators.train import TrainEstimator
from scalesearch.search.multi_fidelity import BoardStore, Pruned, TrialGates
from scalesearch.search.objective import TrialInfo


class LookupEstimator(Estimator):
    """Metrics from a table (``search_fakes.fake_metrics``): no training, no intermediate mAP."""

    capabilities = Capabilities(intermediate=False, prefilter=False)
    prepared_count = run_count = 0

    def prepare_run(self) -> None:
        type(self).run_count += 1

    def prepare(self) -> None:
        type(self).prepared_count += 1

    def estimate(self, spec, seed, *, threads=None, on_eval=None) -> Estimate:
        return Estimate(metrics=search_fakes.fake_metrics(spec, seed))


@pytest.fixture
def lookup(monkeypatch):
    """``lookup`` registered for one test (the registry is the process's own)."""
    monkeypatch.setattr(LookupEstimator, "prepared_count", 0)
    monkeypatch.setattr(LookupEstimator, "run_count", 0)
    with ESTIMATORS.temporarily("lookup", LookupEstimator):
        yield LookupEstimator


def test_unknown_estimator_is_one_line_naming_the_setting(tmp_path, capsys):
    assert main(["run", str(tiny_study(tmp_path, search={"estimator": "trian"})), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.endswith("search.estimator: unknown estimator 'trian' (close names: train)")


def test_a_registered_estimator_runs_a_study_and_lands_in_the_records(tmp_path, fake, lookup):
    study = tiny_study(tmp_path, search={"estimator": "lookup", "n_trials": 4})
    assert main(["run", str(study), "--quiet"]) == 0
    records = records_json(tmp_path / "run")
    assert [r["state"] for r in records] == ["complete"] * 4 and not fake  # nothing trained
    assert {r["estimator"] for r in records} == {"lookup"} and (lookup.run_count, lookup.prepared_count) == (1, 1)
    # the sampler proposes some of the 4 points again: those reuse the first result, estimated once
    measured = [r for r in records if r["duplicate_of"] is None]
    assert all(r["estimate_seconds"] >= 0 and r["estimate_cpu_seconds"] >= 0 for r in measured)
    assert all(r["estimate_seconds"] is None for r in records if r not in measured)
    saved = json.loads((tmp_path / "run" / "trials.json").read_text())
    assert [r["estimator"] for r in saved] == ["lookup"] * 4


def test_the_train_estimator_prepares_once_per_worker(tmp_path, fake, monkeypatch):
    calls = []
    prepare = TrainEstimator.prepare
    monkeypatch.setattr(TrainEstimator, "prepare", lambda self: calls.append(prepare(self)))
    assert main(["run", str(tiny_study(tmp_path)), "--quiet"]) == 0
    records = records_json(tmp_path / "run")
    measured = [r for r in records if r["duplicate_of"] is None]  # a point proposed again is not trained again
    assert len(calls) == 1 and len(fake) == len(measured) and len(records) == 4
    assert {r["estimator"] for r in records} == {"train"} and all(r["estimate_seconds"] is not None for r in measured)


@pytest.mark.parametrize("setting", [{"pruning": "median"}, {"ray": {"asha": True}}])
def test_an_estimator_without_intermediate_map_refuses_pruning(tmp_path, lookup, capsys, setting):
    study = tiny_study(tmp_path, search={"estimator": "lookup", **setting}, train={"steps": 4, "eval_every": 2})
    assert main(["run", str(study), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    key = "search.pruning" if "pruning" in setting else "search.ray.asha"
    assert len(err.splitlines()) == 1 and "'intermediate' capability" in err and key in err


def test_hyperband_on_ray_is_refused_in_one_line(tmp_path, capsys):
    study = tiny_study(tmp_path, search={"backend": "ray", "pruning": "hyperband"}, train={"steps": 4, "eval_every": 2})
    assert main(["run", str(study), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error: search.pruning: 'hyperband' needs the optuna backend" in err


def test_records_written_before_estimators_still_load(tmp_path):
    old = {"number": 0, "state": "complete", "map": 0.2, "values": [0.2]}
    (tmp_path / "trials.json").write_text(json.dumps([old]))
    (record,) = load_records(tmp_path)
    assert (record.estimator, record.estimate_seconds, record.estimate_cpu_seconds) == (None, None, None)
    assert TrialRecord.from_json(record.to_json()) == record


# ---- pruning and prefilter through the seam, without a backend ----------------------------------------

def _gates(config, store, number, flops=1.0, zero_cost=None):
    gates = TrialGates(config, store.view(number), TrialInfo({}, point=number))
    record = TrialRecord(number=number, state=State.RUNNING, flops=flops, zero_cost=zero_cost or {})
    gates.costed(record)
    return gates, record


def _outcome(gates, steps_values):
    try:
        for step, value in steps_values:
            gates.on_eval(step, value)
    except Pruned as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("pruning", ["successive_halving", "median"])
def test_neutral_pruning_stops_the_worse_trials(tmp_path, pruning):
    config = load_study(tiny_study(tmp_path, search={"pruning": pruning}, train={"steps": 9, "eval_every": 3}))
    store = BoardStore(str(tmp_path / "peers.json"))
    outcomes = [_outcome(_gates(config, store, n)[0], [(3, value), (6, value)])
                for n, value in enumerate([0.5, 0.4, 0.6, 0.1, 0.2])]
    assert outcomes[0] is None and outcomes[2] is None  # the best so far goes on
    assert outcomes[3] and "step 3" in outcomes[3]  # the worst stops at the first rung
    assert BoardStore(str(tmp_path / "peers.json")).posts == store.posts  # a resumed run sees the same peers


def test_neutral_prefilter_keeps_the_best_fraction(tmp_path):
    config = load_study(tiny_study(tmp_path, search={"prefilter": {"score": "naswot", "keep": 0.5}}))
    store = BoardStore()
    reasons = []
    for n, score in enumerate([3.0, 1.0, 5.0, 0.5]):
        gates, record = _gates(config, store, n, zero_cost={"naswot": score})
        reasons.append(gates.gate(record))
    assert [r is None for r in reasons] == [True, False, True, False]
    assert reasons[1].startswith("prefilter: naswot 1 not in the best 0.5 of 2")
    repeat = TrialGates(config, store.view(99), TrialInfo({}, point=1, seed_index=1))
    assert repeat.gate(record) == reasons[1]  # a seed repeat follows its point's decision
