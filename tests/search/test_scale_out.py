"""Scale-out on one machine and on shared storages: cores divided between runs, journal file storage,
PostgreSQL (a real server started here when its binaries are installed), optuna-dashboard, bad settings."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from servers import TEST_EXTRAS, need_module

from conftest import records_json, tiny_study
from search_fakes import wait_for
from scalesearch import cpu_share

FAKE_CLI = Path(__file__).with_name("search_fakes.py")
CONTINUOUS = {"phi": {"low": -3.0, "high": -2.0}, "resolution": 128}


def _cli(study: Path, env: dict[str, str] | None = None, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(FAKE_CLI), "run", str(study), "--quiet", *args],
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- cores divided between processes --------------------------------------------------------------

def test_a_claim_gets_what_live_claims_leave(tmp_path, monkeypatch):
    monkeypatch.setenv(cpu_share.DIR_ENV, str(tmp_path))
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    alone = cpu_share.claim(workers=2, cores=8)
    assert (alone.threads, alone.others, alone.message(4)) == (4, {}, None)
    other = os.getppid()  # a live process standing for another run
    (tmp_path / f"{other}.json").write_text(json.dumps({"pid": other, "threads": 6}))
    (tmp_path / "999999999.json").write_text(json.dumps({"pid": 999999999, "threads": 8}))  # dead: ignored
    shared = cpu_share.claim(workers=2, cores=8)
    assert shared.threads == 2 and shared.others == {other: 6}  # 8 cores / 2 processes / 2 workers
    assert not (tmp_path / "999999999.json").exists() and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "hold 6 of 8 cores: this run uses 2 thread(s) per worker x 2 (wanted 4)" in shared.message(4)
    assert json.loads((tmp_path / f"{os.getpid()}.json").read_text())["threads"] == 4
    starved = cpu_share.claim(workers=2, cores=2, threads_per_worker=4)
    assert starved.threads == 1  # never below one thread
    (tmp_path / f"{other}.json").unlink()  # the other run ended: the next trial takes the machine again
    assert cpu_share.rebalance(workers=1, cores=8).threads == 8
    cpu_share.release()
    assert not (tmp_path / f"{os.getpid()}.json").exists()


def test_two_runs_started_by_hand_divide_the_cores(tmp_path):
    """The first run is held inside its first training (an event: a file the test creates) until the second
    run has finished, so the second sees the first alive for its whole life, whatever the machine's speed."""
    cores = os.cpu_count() or 1
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first = tiny_study(tmp_path / "a", search={"n_trials": 4}, space=CONTINUOUS)
    second = tiny_study(tmp_path / "b", search={"n_trials": 2}, space=CONTINUOUS)
    log, release = tmp_path / "trained.log", tmp_path / "release"
    one = _cli(first, {"FAKE_TRAIN_LOG": str(log), "FAKE_TRAIN_HOLD": str(release)})
    try:
        wait_for(lambda: log.is_file() and bool(log.read_text().strip()) or one.poll() is not None,
                 "the first run to start training")
        assert one.poll() is None, one.communicate()[1]
        two = _cli(second)
        _, err = two.communicate(timeout=120)
        assert one.poll() is None  # still held: it was alive and claiming cores through the whole second run
    finally:
        release.touch()
    assert two.returncode == 0, err
    assert one.wait(timeout=120) == 0
    line = [x for x in err.splitlines() if "other scalesearch process" in x]
    assert len(line) == 1 and f"pid {one.pid}" in line[0], err
    assert {r["threads"] for r in records_json(tmp_path / "b" / "run")} == {max(1, cores // 2)}  # its equal part
    first_threads = [r["threads"] for r in sorted(records_json(tmp_path / "a" / "run"), key=lambda r: r["number"])]
    assert first_threads[0] == cores and set(first_threads) <= {cores, max(1, cores // 2)}  # re-divided between trials


# ---- shared storages: journal file and PostgreSQL ---------------------------------------------------

def _n_processes_on_one_study(tmp_path: Path, storage: str, kill_one: bool = False, n_trials: int = 6) -> None:
    """Three ``scalesearch run`` processes on one study (``storage``); optionally SIGKILL one mid-trial and
    run once more. Exactly ``n_trials`` records, numbers 0..n-1, each trained once (retries aside)."""
    study = tiny_study(tmp_path, search={"n_trials": n_trials, "storage": storage, "sampler": "random",
                                         "threads_per_worker": 1}, space=CONTINUOUS)
    log = tmp_path / "trained.log"
    # With nobody killed, a grace far past any stall a loaded CI machine causes: no live trial is failed as stale,
    # so "no retries" is a fact about the code, not about the machine's load (CI failed once on a 10 s grace).
    env = {"FAKE_TRAIN_SECONDS": "0.6", "FAKE_TRAIN_LOG": str(log), "SCALESEARCH_HEARTBEAT_S": "2",
           "SCALESEARCH_GRACE_S": "10" if kill_one else "120"}
    procs = [_cli(study, env) for _ in range(3)]
    if kill_one:
        victim = procs[0]

        def victim_trains() -> bool:  # kill the first process while it trains
            lines = log.read_text().splitlines() if log.is_file() else []
            return any(line.split()[0] == str(victim.pid) for line in lines)
        wait_for(victim_trains, "the first process to start a training", timeout=60)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        procs = procs[1:]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    if kill_one:  # the survivors may have finished before the heartbeat went stale: one more run completes it
        again = _cli(study, env)
        _, err = again.communicate(timeout=180)
        assert again.returncode == 0, err
    records = records_json(tmp_path / "run")
    assert sorted(r["number"] for r in records) == list(range(n_trials))
    assert {r["state"] for r in records} == {"complete"}
    trained = log.read_text().splitlines()
    retries = sum(r["retry_of"] is not None for r in records)
    # Every extra training is a retry: the killed trial's, and (on a loaded machine) a live trial whose
    # heartbeat went stale and was failed by another process (whose own training may not have started yet: a
    # retry need not mean an extra training). Nothing lost, nothing counted twice.
    assert n_trials <= len(trained) <= n_trials + retries
    assert retries >= 1 if kill_one else retries == 0
    _numbers_are_final_from_the_start(storage, records)


def _numbers_are_final_from_the_start(storage: str, records: list[dict]) -> None:
    """Each record's number is the one its trial had while it ran (``record`` user attribute, written by the
    worker under the number it was asked with), though three processes asked trials at the same moments."""
    import optuna

    from scalesearch.search.optuna_study import make_storage

    trials = optuna.load_study(study_name="tiny", storage=make_storage(storage)).get_trials(deepcopy=False)
    ran = {}
    for t in trials:
        if "record" in t.user_attrs and t.user_attrs.get("status") == "complete":
            ran.setdefault(t.user_attrs["record"]["number"], []).append(dict(t.params))
    assert sorted(ran) == [r["number"] for r in sorted(records, key=lambda r: r["number"])]
    for record in records:
        assert record["params_sampled"] in ran[record["number"]]


def test_journal_storage_several_processes_exact_count(tmp_path):
    _n_processes_on_one_study(tmp_path, f"journal://{tmp_path / 'study.log'}")


def test_journal_storage_sigkill_one_worker(tmp_path):
    _n_processes_on_one_study(tmp_path, f"journal://{tmp_path / 'study.log'}", kill_one=True)


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A real PostgreSQL server on loopback in a temporary folder (as user postgres when run as root). Not
    installed, its tests skip, but fail under CI (``servers.unavailable``); installed but not starting, they
    fail with one line."""
    from servers import need_module, unavailable

    need_module("psycopg", "pip install -e '.[test]' (the scale extra's PostgreSQL driver)")
    bin_dir = _postgres_bin()
    if bin_dir is None:
        unavailable("PostgreSQL is not installed: no initdb on PATH or in /usr/lib/postgresql/*/bin "
                    "(apt-get install postgresql)")
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="scalesearch-pg-"))  # not under pytest's root-only folder
    data, port = root / "data", _free_port()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres")
    log = root / "server.log"
    for step in ([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                 [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o",
                  f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200", "start"]):
        done = subprocess.run([*as_user, *step], capture_output=True, text=True)
        if done.returncode != 0:  # installed but not starting: a failure here or in CI, never a skip
            said = (done.stderr + done.stdout + (log.read_text() if log.is_file() else "")).strip()
            shutil.rmtree(root, ignore_errors=True)
            pytest.fail(f"PostgreSQL did not start: {Path(step[0]).name} exited {done.returncode}: "
                        f"{said.splitlines()[-1] if said else 'no output'}", pytrace=False)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        yield url
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _fresh_database(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + f"/{name}"


def test_postgres_several_processes_exact_count(tmp_path, postgres):
    _n_processes_on_one_study(tmp_path, _fresh_database(postgres, "many"))


def test_postgres_sigkill_one_worker_heartbeat_retries(tmp_path, postgres):
    _n_processes_on_one_study(tmp_path, _fresh_database(postgres, "killed"), kill_one=True)


def test_sqlite_sigkill_one_worker(tmp_path):
    _n_processes_on_one_study(tmp_path, f"sqlite:///{tmp_path / 'shared.db'}", kill_one=True)


# ---- the dashboard ----------------------------------------------------------------------------------

def test_finished_run_opens_in_optuna_dashboard(tmp_path):
    from servers import need_module, unavailable

    need_module("optuna_dashboard", "pip install -e '.[test]' (the scale extra)")
    study = tiny_study(tmp_path, search={"n_trials": 2}, space=CONTINUOUS)
    run = _cli(study)
    assert run.wait(timeout=120) == 0
    port = _free_port()
    command = Path(sys.executable).with_name("optuna-dashboard")  # the extra's console script, beside python
    if not command.is_file():
        unavailable(f"the optuna-dashboard command is not installed beside {sys.executable}")
    server = subprocess.Popen([str(command), f"sqlite:///{tmp_path / 'run' / 'study.db'}",
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, studies = time.time() + 60, None
        while time.time() < deadline and studies is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as response:
                    studies = json.loads(response.read())["study_summaries"]
            except OSError:
                time.sleep(0.3)
        assert studies is not None, "the dashboard did not answer"
        (found,) = [s for s in studies if s["study_name"] == "tiny"]
        assert found["directions"] == ["maximize"]
    finally:
        server.terminate()
        server.wait(timeout=30)


# ---- bad scale-out settings: one line, exit 2, fast, no run folder ------------------------------------

@pytest.mark.parametrize("change, message", [
    ({"storage": "postgresql://nobody@127.0.0.1:1/none"}, "search.storage: "),
    ({"storage": "notadb://x"}, "search.storage: "),
    ({"storage": "journal:///no/such/folder/study.log"}, "search.storage: a journal storage must name a file"),
    ({"workers": 0}, "search.workers: input should be greater than or equal to 1"),
    ({"backend": "ray", "ray": {"address": "127.0.0.1:1"}}, "search.ray.address: no Ray head answers"),
])
def test_bad_scale_out_settings_fail_fast_without_a_run_folder(tmp_path, change, message):
    if change.get("backend") == "ray":
        need_module("ray", TEST_EXTRAS)
    study = tiny_study(tmp_path, search=change)
    started = time.time()
    proc = _cli(study)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and time.time() - started < 30
    assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()
