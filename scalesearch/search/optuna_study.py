"""The Optuna study behind the default backend: storage, sampler, pruner, trial counting, recovery, records.

How trials are counted and retried is described in ``scalesearch.search.optuna_backend``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Callable

from scalesearch.errors import UserError
from scalesearch.records import RecordsFile, State, TrialRecord, best_record, mark_concurrent_duplicates

COUNTED = tuple(s.value for s in State if s.counted)

HEARTBEAT_S = int(os.environ.get("SCALESEARCH_HEARTBEAT_S", "15"))  # a shorter beat for tests
GRACE_S = int(os.environ.get("SCALESEARCH_GRACE_S", str(4 * HEARTBEAT_S)))


def quiet_optuna() -> None:
    """Our progress display replaces Optuna's per-trial log lines and experimental-feature notes."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # ``Study.ask`` warns when the storage has heartbeats, as only ``optimize`` records them; our workers
    # ask and tell and record them themselves (``Heartbeat``), so the warning does not apply.
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


JOURNAL_PREFIX = "journal://"


def make_storage(url: str) -> Any:
    """The study's storage. A database URL (``sqlite:///...``, ``postgresql://user@host/db``, any SQLAlchemy
    URL) gives an ``RDBStorage`` with heartbeats, so the trials of dead machines are retried (``retry``);
    ``journal:///path/study.log`` gives Optuna's journal file storage (for shared file systems without a
    database server; dead trials are found by host and pid there, it has no heartbeat). Unreachable servers,
    missing drivers and bad URLs are ``UserError`` naming ``search.storage``."""
    quiet_optuna()
    if url.startswith(JOURNAL_PREFIX):
        return _journal_storage(url[len(JOURNAL_PREFIX):])
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    if url.startswith("postgresql"):
        kwargs = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    try:
        return _rdb_storage(url, kwargs)
    except ImportError:  # Optuna re-raises a missing driver as ImportError
        raise UserError(f"search.storage: {url!r} needs a database driver that is not installed "
                        f"(PostgreSQL: pip install 'scalesearch[scale]')") from None
    except Exception as exc:  # sqlalchemy raises many types for bad URLs / unreachable servers
        raise UserError(f"search.storage: must be a reachable database URL, but {url!r} gave: "
                        f"{str(exc).strip().splitlines()[0]}") from None


def _rdb_storage(url: str, kwargs: dict[str, Any], attempts: int = 5) -> Any:
    """``RDBStorage``; several machines that start on a fresh database race to create Optuna's tables (a
    unique-key or already-exists error for all but one; SQLite says ``OperationalError: table ... already
    exists`` or ``database is locked``): those retry after a moment. Other errors (bad URL, server down)
    are raised at once."""
    import time

    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S,
                                              grace_period=GRACE_S, heartbeat_stale_trial_callback=retry)
        except (IntegrityError, ProgrammingError, OperationalError) as exc:
            racing = not isinstance(exc, OperationalError) or _is_creation_race(exc)
            if not racing or attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def _is_creation_race(exc: Exception) -> bool:
    """An SQLite error that another process creating the same tables causes (not a bad path or URL)."""
    text = str(exc)
    return "already exists" in text or "database is locked" in text


def _journal_storage(path: str) -> Any:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    file = Path(path)
    if not path or not file.parent.is_dir():
        raise UserError(f"search.storage: a journal storage must name a file in an existing folder "
                        f"(journal:///path/study.log), but got {JOURNAL_PREFIX + path!r}")
    return JournalStorage(JournalFileBackend(str(file), lock_obj=JournalFileOpenLock(str(file))))


def make_sampler(config: Any, stream: int = 0) -> Any:
    """The study's sampler (``scalesearch.search.samplers.SAMPLERS``), seeded: with ``config.sampler_seed``, plus
    ``stream`` (``sampler_stream``) for a process that must not draw what another draws; a ``shared_seed`` sampler
    (grid, QMC) ignores ``stream``: its processes stay apart by trial number on the one sequence."""
    from scalesearch.search.samplers import SAMPLERS

    if stream and not SAMPLERS.get(config.search.sampler).shared_seed:
        search = config.search.model_copy(update={"seed": config.sampler_seed + stream})
        config = config.model_copy(update={"search": search})
    return SAMPLERS.get(config.search.sampler).build(config)


def make_pruner(config: Any) -> Any:
    """The study's pruner (``scalesearch.search.samplers.PRUNERS``)."""
    from scalesearch.search.samplers import PRUNERS

    return PRUNERS.get(config.search.pruning).build(config)


def sampler_stream() -> int:
    """A seed offset of its own for a process that joins a study (``open_study``): seeded alike, two workers (or a
    rerun) would draw the same points in the same order, and each such point would be a duplicate
    (``records.measurement_key``), waited for instead of explored."""
    import secrets

    return 1 + secrets.randbelow(2**31 - 2)


def open_study(config: Any, storage: Any, own_stream: bool = False) -> Any:
    """The study in ``storage``, created when new. ``own_stream``: when this process does not create it (a worker
    of several, a resumed run, a second run joining), its sampler draws from a stream of its own
    (``sampler_stream``); the process that creates the study draws from the study's seed, so a new one-worker run
    is reproducible."""
    import optuna

    try:
        return optuna.create_study(study_name=config.name, storage=storage, sampler=make_sampler(config),
                                   pruner=make_pruner(config), directions=config.directions)
    except optuna.exceptions.DuplicatedStudyError:
        pass
    stream = sampler_stream() if own_stream else 0
    return optuna.load_study(study_name=config.name, storage=storage, sampler=make_sampler(config, stream),
                             pruner=make_pruner(config))


def enqueue_points(study: Any, config: Any) -> None:
    """Enqueue ``search.enqueue`` (baselines) once, when the study is new."""
    if study.get_trials(deepcopy=False):
        return
    for point in config.search.enqueue:
        study.enqueue_trial(dict(point.params), user_attrs={"label": point.label})


# ---- counting and recovery ------------------------------------------------------------------------

def status(trial: Any) -> str:
    """Our status of a trial: complete / infeasible / failed / pruned / running / interrupted / surplus."""
    from optuna.trial import TrialState

    if trial.state in (TrialState.RUNNING, TrialState.WAITING):
        return "running"
    mark = trial.user_attrs.get("status", "running")
    # A finished trial without a final status of ours lost its process mid-trial.
    return mark if mark in COUNTED or mark == "surplus" else "interrupted"


def tally(trials: list[Any]) -> tuple[int, int, int]:
    """(finished-and-counted, running, waiting) trials."""
    from optuna.trial import TrialState

    counted = sum(1 for t in trials if t.state.is_finished() and status(t) in COUNTED)
    running = sum(1 for t in trials if t.state == TrialState.RUNNING)
    waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
    return counted, running, waiting


def recover(study: Any, storage: Any, exclusive: bool) -> int:
    """Fail interrupted trials and enqueue their parameters again; returns how many were enqueued.

    ``storage``: the study's storage (``make_storage``). ``exclusive``: this process holds the run folder's
    lock and the storage is the folder's own, so every RUNNING trial belongs to a dead process. Trials that
    ended without a status of ours (Ctrl-C, a crashed worker) are retried too, once each.
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if exclusive or dead_here(trial.user_attrs):
            trial_id = storage_trial_id(storage, study, trial.number)
            try:
                storage.set_trial_user_attr(trial_id, "status", "interrupted")
                storage.set_trial_state_values(trial_id, TrialState.FAIL)
            except UpdateFinishedTrialError:
                pass  # another process recovered it first
    fail_stale_trials(study)  # other machines' trials, by heartbeat; its callback retries them
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    lost = [t for t in trials if t.state == TrialState.FAIL and status(t) == "interrupted"
            and t.number not in retried]
    for trial in lost:
        retry(study, trial)
    return len(lost)


def retry(study: Any, trial: Any) -> None:
    """Enqueue an interrupted trial's parameters again, keeping its point, seed and budget. A trial interrupted
    before it took its point index (between its ask and ``Worker._point``, e.g. failed by a stale heartbeat on a
    loaded machine) is still an origin: its retry takes the index it would have had (``point_index``) and
    enqueues the point's seed repeats when it starts (``repeats_pending``), so numbers stay dense and final."""
    keep = ("origin", "point", "seed_index", "label", "origin_trial", "repeats_pending")
    attrs = {k: v for k, v in trial.user_attrs.items() if k in keep}
    if "point" not in attrs:
        attrs |= {"origin": "sampled", "point": point_index(trial.number, study.get_trials(deepcopy=False)),
                  "seed_index": 0, "origin_trial": trial.number, "repeats_pending": True}
    study.enqueue_trial(dict(trial.params), user_attrs={**attrs, "retry_of": trial.number})


def storage_trial_id(storage: Any, study: Any, number: int) -> int:
    """The storage's id of the study's trial ``number`` (what the storage's trial methods take)."""
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), number)


class Heartbeat:
    """Records a running trial's heartbeat every ``heartbeat_interval`` seconds, on a daemon thread, while
    the ``with`` block runs (nothing for a storage without heartbeats: journal files).

    Optuna beats only inside ``Study.optimize``; our workers ask and tell, so they beat themselves, else
    ``fail_stale_trials`` elsewhere would fail (and retry) every trial that runs longer than the grace period.
    """

    def __init__(self, storage: Any, trial_id: int) -> None:
        import threading

        from optuna.storages import RDBStorage

        # Of Optuna's storages only the RDB one beats (its heartbeat base class is not public API).
        beats = isinstance(storage, RDBStorage) and storage.get_heartbeat_interval() is not None
        self.storage, self.trial_id = (storage if beats else None), trial_id
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{trial_id}")

    def _beat(self) -> None:
        interval = self.storage.get_heartbeat_interval()
        while not self.stopped.wait(interval):
            self.storage.record_heartbeat(self.trial_id)

    def __enter__(self) -> None:
        if self.storage is not None:
            self.storage.record_heartbeat(self.trial_id)  # at once: a trial is never seen without a beat
            self.thread.start()

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()


def dead_here(attrs: dict[str, Any]) -> bool:
    """Whether the process that claimed a trial (its ``host``, ``pid`` and ``pid_token`` attributes) ran on this
    machine and is gone. A claim still being written (``pid`` without its ``pid_token``: the attributes are separate
    writes) is not a dead process: reading it so failed live trials on a loaded machine."""
    if attrs.get("host") != socket.gethostname() or "pid" not in attrs or "pid_token" not in attrs:
        return False
    return process_token(attrs["pid"]) != attrs.get("pid_token")


def process_token(pid: int) -> str | None:
    """A token that changes when a pid is reused (its start time), None when it is not running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except OSError:
        return "alive"


# ---- records --------------------------------------------------------------------------------------

def is_origin(trial: Any) -> bool:
    """Whether a trial takes a point of its own: not a seed repeat (``repeat_of``) or a retry (``retry_of``). Both
    attributes are set when such a trial is created (``enqueue_trial``), never later, so every worker classifies
    every trial alike from the moment it exists, whatever state it is in and whether or not its own worker has
    written its attributes yet."""
    return not ({"repeat_of", "retry_of"} & trial.user_attrs.keys())


def point_index(number: int, trials: list[Any]) -> int:
    """The point index of the origin trial with storage number ``number``: the origin trials numbered below it
    (``trials``: any read of the study holding them). The same at ask time, in every worker, and at export: a
    trial's record number (``point * seeds + seed_index``) is final from its start."""
    return sum(1 for t in trials if t.number < number and is_origin(t))


def _origin(trial: Any) -> int:
    """The storage number of the trial that first sampled this trial's point (itself when it did)."""
    attrs = trial.user_attrs
    return int(attrs.get("origin_trial", attrs.get("repeat_of", trial.number)))


DUPLICATE_OF = "duplicate_of_trial"  # user attribute: the storage number of the trial whose result a duplicate reused


def trial_record(trial: Any, number: int, duplicate_of: int | None = None) -> TrialRecord | None:
    """The record of one Optuna trial under its record ``number`` (None for interrupted and surplus trials,
    retried elsewhere); ``duplicate_of``: the record number of the trial whose result it reused, if any."""
    state = status(trial)
    if state in ("interrupted", "surplus") or trial.number is None:
        return None
    attrs = trial.user_attrs
    data = dict(attrs.get("record") or {"params_sampled": dict(trial.params)})
    data["number"] = number
    if "retry_of" in attrs:
        data["retry_of"] = number  # a retry replaces the interrupted trial under the same number
    if duplicate_of is not None:
        data["duplicate_of"] = duplicate_of  # the record number (the one in ``record`` was provisional)
    data["state"] = "running" if state == "running" else state
    reported = {str(k): v for k, v in sorted(trial.intermediate_values.items())}
    data["intermediate"] = {**data.get("intermediate", {}), **reported}  # learning-curve steps are not reported
    return TrialRecord.from_json(data)


def study_records(study: Any, seeds: int, cache: dict | None = None,
                  trials: list[Any] | None = None) -> list[TrialRecord]:
    """Every recorded trial, numbered ``point * seeds + seed_index`` as on Ray, ``point`` the rank of the storage
    number of the trial that first sampled it among all origin trials (``is_origin``, whatever their state): the
    number ``point_index`` gave the trial when it was asked, so a record never changes number (a trial interrupted
    before taking its point leaves its index unused).
    ``cache``: records of finished trials kept between calls by (storage number, record number), so a finished
    trial (which never changes in the storage) is decoded once per study, not once per export. ``trials``: a read
    of the storage the caller already made (default: read it here)."""
    from optuna.trial import TrialState

    every = study.get_trials(deepcopy=False) if trials is None else trials
    rank = {n: i for i, n in enumerate(sorted(t.number for t in every if is_origin(t)))}
    trials = [t for t in every if t.state != TrialState.WAITING and status(t) not in ("interrupted", "surplus")]
    numbers = {t.number: rank[_origin(t)] * seeds + int(t.user_attrs.get("seed_index", 0)) for t in trials}
    records = []
    for t in trials:
        number = numbers[t.number]
        duplicate_of = numbers.get(t.user_attrs[DUPLICATE_OF]) if DUPLICATE_OF in t.user_attrs else None
        key = (t.number, number, duplicate_of)
        record = cache.get(key) if cache is not None else None
        if record is None:
            record = trial_record(t, number, duplicate_of)
            if cache is not None and record is not None and t.state.is_finished():
                cache[key] = record
        if record is not None:
            records.append(record)
    # Two twins trained at once (the running one could not be watched: another machine on a journal storage)
    return mark_concurrent_duplicates(sorted(records, key=lambda r: r.number))


class RecordsExport:
    """``trials.json`` from the storage after every trial, at a cost that does not grow with the study:
    finished trials are decoded once (``study_records``'s cache) and encoded once (``RecordsFile``). ``overlay``:
    what the records pass through on their way out (``latency_front.MeasuredLatency``: the front's protocol
    measurements, which the storage's finished trials cannot hold), or None."""

    def __init__(self, run_dir: Path, seeds: int, overlay: Callable[[list[TrialRecord]], list[TrialRecord]] | None
                 = None) -> None:
        self.file, self.seeds, self.cache, self.overlay = RecordsFile(run_dir), seeds, {}, overlay

    def __call__(self, study: Any, trials: list[Any] | None = None) -> list[TrialRecord]:
        records = study_records(study, self.seeds, self.cache, trials)
        if self.overlay is not None:
            records = self.overlay(records)
        self.file.write(records)
        return records


def export_records(study: Any, run_dir: Path, seeds: int) -> list[TrialRecord]:
    """Rewrite ``trials.json`` (atomically) from the storage; returns the records."""
    return RecordsExport(run_dir, seeds)(study)


def summary(records: list[TrialRecord]) -> str:
    best = best_record(records)
    return "no complete trial yet" if best is None else f"best map {best.get('map'):.4f} (trial {best.number})"


