"""Crash safety: SIGKILL mid-study then rerun; several workers on one study; resume in place."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import tiny_study
from search_fakes import wait_for
from scalesearch.cli import main
from conftest import records_json as load_records

FAKE_CLI = Path(__file__).with_name("search_fakes.py")
CONTINUOUS = {"phi": {"low": -3.0, "high": -2.0}, "resolution": 128}


def _cli(study: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(FAKE_CLI), "run", str(study), "--quiet", *args],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _params(db: Path, number: int) -> dict:
    """The sampled parameters of one storage trial."""
    import optuna

    (trial,) = [t for t in optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials if t.number == number]
    return trial.params


def _states(db: Path) -> list[tuple[int, str]]:
    """(number, state) of every trial, read straight from the SQLite storage."""
    if not db.is_file():
        return []
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("SELECT number, state FROM trials ORDER BY number").fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []


def test_sigkill_then_rerun_ends_with_exactly_n_trials(tmp_path):
    study = tiny_study(tmp_path, search={"n_trials": 6, "sampler": "tpe"}, space=CONTINUOUS)
    db = tmp_path / "run" / "study.db"
    log = tmp_path / "trained.log"
    # the third training is held (a file that never appears), so the kill always lands inside it
    proc = _cli(study, {"FAKE_TRAIN_LOG": str(log), "FAKE_TRAIN_HOLD": str(tmp_path / "never"),
                        "FAKE_TRAIN_HOLD_FROM": "3"})
    wait_for(lambda: log.is_file() and len(log.read_text().splitlines()) >= 3 or proc.poll() is not None,
             "the third training to start")
    assert proc.poll() is None, proc.communicate()[1]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = [n for n, s in _states(db) if s == "RUNNING"]
    assert len(killed) == 1, _states(db)
    before = {r["number"]: r for r in load_records(tmp_path / "run")}

    rerun = _cli(study, {})
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert "resuming: 1 interrupted trial(s) will be retried" in err
    records = load_records(tmp_path / "run")
    assert len(records) == 6 and {r["state"] for r in records} == {"complete"}
    # The retry replaces the killed trial under its number (point x seeds + seed index, as on Ray).
    assert sorted(r["number"] for r in records) == list(range(6))
    (retry,) = [r for r in records if r["retry_of"] is not None]
    assert retry["number"] == retry["retry_of"] and retry["number"] not in before
    assert retry["params_sampled"] == _params(db, killed[0])  # the interrupted point, evaluated again
    assert [s for _, s in _states(db)].count("FAIL") == 1  # the interrupted trial, kept in the storage
    for number, record in before.items():  # finished trials were kept as they were
        if record["state"] == "complete":
            assert next(r for r in records if r["number"] == number) == record


def test_two_workers_never_run_the_same_trial_number(tmp_path):
    study = tiny_study(tmp_path, search={"n_trials": 8, "workers": 2, "threads_per_worker": 1}, space=CONTINUOUS)
    log = tmp_path / "trained.log"
    proc = _cli(study, {"FAKE_TRAIN_SECONDS": "0.5", "FAKE_TRAIN_LOG": str(log), "FAKE_TRAIN_WAIT_PIDS": "2"})
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    records = load_records(tmp_path / "run")
    numbers = [r["number"] for r in records]
    assert sorted(numbers) == list(range(8)) and {r["state"] for r in records} == {"complete"}
    trainings = log.read_text().splitlines()
    assert len(trainings) == 8  # every finished trial trained exactly once, none twice
    assert len({line.split()[0] for line in trainings}) == 2  # by two worker processes
    with sqlite3.connect(tmp_path / "run" / "study.db") as con:
        owners = con.execute("SELECT t.number, a.value_json FROM trials t JOIN trial_user_attributes a "
                             "ON a.trial_id = t.trial_id WHERE a.key = 'worker' AND t.state = 'COMPLETE'").fetchall()
    assert len(owners) == 8 and {w for _, w in owners} == {"0", "1"}  # storage numbers may skip surplus trials


def test_rerun_resumes_to_a_larger_total_and_never_past_it(tmp_path, fake):
    study = tiny_study(tmp_path, search={"n_trials": 3}, space=CONTINUOUS)
    assert main(["run", str(study), "--quiet"]) == 0
    first = load_records(tmp_path / "run")
    assert main(["run", str(study), "--quiet", "--n-trials", "5"]) == 0
    assert main(["run", str(study), "--quiet", "--n-trials", "5"]) == 0
    records = load_records(tmp_path / "run")
    assert [r["number"] for r in records] == [0, 1, 2, 3, 4] and records[:3] == first
    assert len(fake) == 5


def test_ctrl_c_then_rerun_retries_the_interrupted_trial(tmp_path, fake, monkeypatch):
    import scalesearch.training.train
    import search_fakes

    def interrupt_third(spec, *args, **kwargs):
        if len(fake) == 2:
            fake.append(spec)
            raise KeyboardInterrupt
        return search_fakes.fake_train(spec, *args, **kwargs)

    monkeypatch.setattr(scalesearch.training.train, "train_and_evaluate", interrupt_third)
    study = tiny_study(tmp_path, search={"n_trials": 4}, space=CONTINUOUS)
    assert main(["run", str(study), "--quiet"]) == 130
    assert main(["run", str(study), "--quiet"]) == 0
    records = load_records(tmp_path / "run")
    assert [r["number"] for r in records] == [0, 1, 2, 3] and [r["retry_of"] for r in records] == [None, None, 2, None]
    assert len(fake) == 3 + 2  # two trainings and the interrupted one; then its retry and one new trial


def test_grid_sampler_with_seed_repeats_runs_every_point_and_seed(tmp_path, fake):
    # Optuna's GridSampler crashed (KeyError 'grid_id') on enqueued repeats once one point was left.
    study = tiny_study(tmp_path, seeds=2, search={"n_trials": 8, "sampler": "grid"})
    assert main(["run", str(study), "--quiet"]) == 0
    records = load_records(tmp_path / "run")
    assert len(records) == 8 and {r["state"] for r in records} == {"complete"}
    points = {(r["topology"], r["phi"], r["seed"]) for r in records}
    assert len(points) == 8  # 2 topologies x 2 phi x 2 seeds, none repeated


def test_a_claim_half_written_is_not_a_dead_process(tmp_path):
    # A trial's claim is several attribute writes. Read between the pid and its token, a live process looked dead
    # (no token: "the pid was reused"): a loaded CI machine failed live trials and trained duplicates twice.
    import socket

    from scalesearch.config import load_study
    from scalesearch.search.optuna_backend import Worker
    from scalesearch.search.optuna_study import dead_here, process_token

    here, pid = socket.gethostname(), os.getpid()
    assert not dead_here({"host": here, "pid": pid})  # the token not written yet
    assert not dead_here({"host": here, "pid": pid, "pid_token": process_token(pid)})
    assert dead_here({"host": here, "pid": pid, "pid_token": "another start time"})  # the pid was reused

    class Trial:  # records the order of the claim's writes
        def __init__(self):
            self.keys = []

        def set_user_attr(self, key, value):
            self.keys.append(key)
    config = load_study(tiny_study(tmp_path))
    worker = Worker(config, tmp_path / "run", f"sqlite:///{tmp_path / 'study.db'}", n_trials=1)
    trial = Trial()
    worker._claim(trial)
    assert trial.keys.index("pid_token") < trial.keys.index("pid") and trial.keys.index("host") < trial.keys.index("pid")
