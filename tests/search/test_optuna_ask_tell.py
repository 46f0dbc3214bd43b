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
