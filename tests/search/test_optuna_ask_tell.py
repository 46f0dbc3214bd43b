"""The Optuna backend asks and tells: its workers beat their trials' heartbeats themselves, through public API."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

import scalesearch.training.train
import search_fakes
from conftest import records_json, tiny_study
from search_fakes import wait_for
from scalesearch.cli import main
from scalesearch.search import optuna_study

SOURCES = [Path(optuna_study.__file__), Path(optuna_study.__file__).with_name("optuna_backend.py")]


def _beats(db: Path) -> set[str]:
    """Heartbeat times of the RUNNING trials, read straight from the SQLite storage."""
    with sqlite3.connect(db, timeout=5) as con:
        rows = con.execute("SELECT h.heartbeat FROM trial_heartbeats h JOIN trials t ON t.trial_id = h.trial_id "
                           "WHERE t.state = 'RUNNING'").fetchall()
    return {row[0] for row in rows}


def test_heartbeat_is_recorded_while_a_trial_runs(tmp_path, fake, monkeypatch, recwarn):
    monkeypatch.setattr(optuna_study, "HEARTBEAT_S", 1)  # a beat a second; nothing goes stale in the grace period
    db = tmp_path / "run" / "study.db"
    seen: set[str] = set()

    def beaten_twice() -> bool:
        seen.update(_beats(db))
        return len(seen) >= 2  # SQLite's CURRENT_TIMESTAMP has whole seconds: a second time is a second beat

    def train_until_beaten_twice(*args, **kwargs):
        wait_for(beaten_twice, "two heartbeats of the running trial", timeout=30)
        return search_fakes.fake_train(*args, **kwargs)

    monkeypatch.setattr(scalesearch.training.train, "train_and_evaluate", train_until_beaten_twice)
    assert main(["run", str(tiny_study(tmp_path, search={"n_trials": 1})), "--quiet"]) == 0
    assert len(seen) >= 2
    assert not [w for w in recwarn if "Heartbeat" in str(w.message)]  # ask's note is for optimize users
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT state FROM trials").fetchall() == [("COMPLETE",)]


def test_no_private_attribute_of_optuna_objects_is_used():
    private = re.compile(r"\._(storage|trial_id|study_id|thread_local|cached_frozen_trial)\b")
    for source in SOURCES:
        hits = [line for line in source.read_text().splitlines() if private.search(line)]
        assert hits == [], f"{source.name} reaches into Optuna's private attributes: {hits}"


def test_no_optuna_optimize_loop_nor_message_matching():
    for source in SOURCES:
        text = source.read_text()
        assert ".optimize(" not in text and "Cannot tell" not in text, source.name


@pytest.mark.parametrize("sampler", ["grid", "brute_force"])
def test_exhaustive_samplers_finish_their_space_under_ask_and_tell(tmp_path, fake, sampler):
    # their ``after_trial`` called ``study.stop()`` on the last point, which raises outside ``optimize``
    study = tiny_study(tmp_path, search={"n_trials": 4, "sampler": sampler})  # 2 topologies x 2 phi
    assert main(["run", str(study), "--quiet"]) == 0
    assert len({(r["topology"], r["phi"]) for r in records_json(tmp_path / "run")}) == 4


def test_a_trial_number_is_final_when_it_is_asked():
    """Point indices from the attributes trials are created with: a sampled trial whose worker has not yet
    written anything (trial 2 below, asked a moment before trial 3) counts as a point at once, repeats and
    retries never do, and the export numbers every trial as it was numbered when asked."""
    import optuna
    from optuna.trial import TrialState

    from scalesearch.search.optuna_study import point_index, study_records

    study = optuna.create_study()
    first = study.ask()                                                    # storage 0: a sampled point
    for key, value in (("origin", "sampled"), ("point", 0), ("seed_index", 0), ("origin_trial", 0)):
        first.set_user_attr(key, value)
    study.enqueue_trial({}, user_attrs={"origin": "repeat", "point": 0, "seed_index": 1, "repeat_of": 0,
                                        "origin_trial": 0})              # storage 1: its seed repeat
    repeat = study.ask()
    assert repeat.user_attrs["repeat_of"] == 0
    bare = study.ask()     # storage 2: a sampled trial whose worker has not written its attributes yet ...
    later = study.ask()    # storage 3: ... when the next one is asked
    trials = study.get_trials(deepcopy=False)
    assert [point_index(n, trials) for n in (0, 2, 3)] == [0, 1, 2]
    for trial, point in ((bare, 1), (later, 2)):
        for key, value in (("origin", "sampled"), ("point", point), ("seed_index", 0), ("origin_trial", trial.number)):
            trial.set_user_attr(key, value)
    for trial in (first, repeat, bare, later):
        trial.set_user_attr("status", "complete")
        trial.set_user_attr("record", {"number": trial.user_attrs["point"] * 2 + trial.user_attrs["seed_index"],
                                       "state": "complete", "seed": trial.user_attrs["seed_index"]})
        study.tell(trial, 0.5, state=TrialState.COMPLETE)
    records = study_records(study, seeds=2)
    assert [r.number for r in records] == [0, 1, 2, 4]  # point 1 and 2's repeats not asked yet
    assert all(r.number == t.user_attrs["record"]["number"] for r, t in zip(records, (first, repeat, bare, later)))


def test_an_origin_failed_before_taking_its_point_is_retried_under_that_point():
    """A sampled trial failed before its worker wrote anything (a stale heartbeat on a loaded machine): its retry
    takes the index the trial would have had, so the numbers stay dense (0 and 1 here, not 1 and 2)."""
    import optuna
    from optuna.trial import TrialState

    from scalesearch.search.optuna_study import retry, study_records

    study = optuna.create_study()
    lost = study.ask()                                                     # storage 0: never wrote its attributes
    study.tell(lost, state=TrialState.FAIL)
    later = study.ask()                                                    # storage 1: point 1
    for key, value in (("origin", "sampled"), ("point", 1), ("seed_index", 0), ("origin_trial", 1)):
        later.set_user_attr(key, value)
    retry(study, study.get_trials(deepcopy=False)[0])
    again = study.ask()                                                    # storage 2: the retry
    assert (again.user_attrs["point"], again.user_attrs["retry_of"], again.user_attrs["repeats_pending"]) == (0, 0, True)
    for trial in (later, again):
        trial.set_user_attr("status", "complete")
        trial.set_user_attr("record", {"number": trial.user_attrs["point"], "state": "complete", "seed": 0})
        study.tell(trial, 0.5)
    assert [r.number for r in study_records(study, seeds=1)] == [0, 1]
