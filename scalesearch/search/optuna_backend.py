"""Optuna backend (the default): storage, samplers, pruning, worker processes and crash-safe resume.

Exactly ``n_trials`` finished trials, none lost or duplicated, with any number of workers:
- "finished" is counted in the storage (trials COMPLETE/PRUNED, or FAIL with a recorded reason);
- a worker starts a trial only while finished + running < n_trials, and a trial created in a race
  checks its rank (the finished, running and waiting trials numbered below it); a trial that would
  be trial n+1 ends at once as ``surplus`` (FAIL, never counted, left out of the records);
- interrupted trials (RUNNING in the storage but their process is gone) are marked FAIL with status
  ``interrupted`` and their parameters enqueued again, so a rerun retries them. A process is gone when
  the run folder's lock is free (nobody runs this study here), when its host matches and its pid is
  dead, or, on a shared database, when its heartbeat is stale (Optuna's heartbeat, other machines).
Trial numbers come from the storage's own transactions, so two workers never share one.
"""

from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path
from typing import Any

from scalesearch.errors import UserError
from scalesearch.search.records import COUNTED, best_record, write_json_atomic

HEARTBEAT_S = 15
GRACE_S = 60


class _EndTrial(Exception):
    """Ends a trial as FAIL on purpose (failed with a recorded reason, or surplus)."""


def quiet_optuna() -> None:
    """Our progress display replaces Optuna's per-trial log lines and experimental-feature notes."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def make_storage(url: str) -> Any:
    """An ``RDBStorage`` with heartbeats; stale trials of dead machines are retried (``retry``)."""
    import optuna

    quiet_optuna()
    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S,
                                          grace_period=GRACE_S, heartbeat_stale_trial_callback=retry)
    except Exception as exc:  # sqlalchemy raises many types for bad URLs / unreachable servers
        raise UserError(f"search.storage: must be a reachable database URL, but {url!r} gave: "
                        f"{str(exc).splitlines()[0]}") from None


def make_sampler(config: Any, space: Any) -> Any:
    """The study's sampler, seeded; constraints come from ``trial.set_constraint`` (Optuna 5)."""
    import optuna.samplers as s

    seed, name = config.sampler_seed, config.search.sampler
    if name == "grid":
        from scalesearch.search.grid import RepeatTolerantGridSampler

        return RepeatTolerantGridSampler(space.grid(), seed=seed)
    factories = {
        "tpe": lambda: s.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=4),
        "nsga2": lambda: s.NSGAIISampler(seed=seed, population_size=8),
        "nsga3": lambda: s.NSGAIIISampler(seed=seed, population_size=8),
        "random": lambda: s.RandomSampler(seed=seed),
        "gp": lambda: s.GPSampler(seed=seed, n_startup_trials=4),
        "qmc": lambda: s.QMCSampler(seed=seed, warn_independent_sampling=False),
        "cmaes": lambda: s.CmaEsSampler(seed=seed, warn_independent_sampling=False),
        "brute_force": lambda: s.BruteForceSampler(seed=seed),
    }
    return factories[name]()


def make_pruner(config: Any) -> Any:
    import optuna.pruners as p

    steps = config.train.get("steps") or 100
    return {"none": p.NopPruner, "median": lambda: p.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
            "hyperband": lambda: p.HyperbandPruner(min_resource=1, max_resource=steps)}[config.search.pruning]()


def open_study(config: Any, storage: Any, space: Any) -> Any:
    import optuna

    return optuna.create_study(study_name=config.name, storage=storage, load_if_exists=True,
                               sampler=make_sampler(config, space), pruner=make_pruner(config),
                               directions=config.directions)


def enqueue_points(study: Any, config: Any) -> None:
    """Enqueue ``search.enqueue`` (baselines) once, when the study is new."""
    if study.get_trials(deepcopy=False):
        return
    for point in config.search.enqueue:
        study.enqueue_trial(dict(point.params), user_attrs={"label": point.label})


def target_trials(config: Any, space: Any) -> int:
    """``n_trials``, capped by grid size x seeds for the grid sampler (which repeats itself after)."""
    if config.search.sampler != "grid":
        return config.search.n_trials
    size = math.prod(len(v) for v in space.grid().values())
    return min(config.search.n_trials, size * config.seeds)


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


def recover(study: Any, exclusive: bool) -> int:
    """Fail interrupted trials and enqueue their parameters again; returns how many were enqueued.

    ``exclusive``: this process holds the run folder's lock and the storage is the folder's own,
    so every RUNNING trial belongs to a dead process. Trials that ended without a status of ours
    (Ctrl-C, a crashed worker) are retried too, once each.
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if exclusive or _dead_here(trial.user_attrs):
            try:
                study._storage.set_trial_user_attr(trial._trial_id, "status", "interrupted")
                study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
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
    """Enqueue an interrupted trial's parameters again, keeping its point, seed and budget."""
    keep = ("origin", "point", "seed_index", "label")
    attrs = {k: v for k, v in trial.user_attrs.items() if k in keep}
    study.enqueue_trial(dict(trial.params), user_attrs={**attrs, "retry_of": trial.number})


def _dead_here(attrs: dict[str, Any]) -> bool:
    if attrs.get("host") != socket.gethostname() or "pid" not in attrs:
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


# ---- one worker ---------------------------------------------------------------------------------

class Worker:
    """Runs trials of one study until ``n_trials`` are finished (one process, one trial at a time)."""

    def __init__(self, config: Any, run_dir: Path, storage_url: str, n_trials: int, worker_id: int = 0,
                 progress: bool = False) -> None:
        import optuna

        from scalesearch.search.objective import Evaluator

        quiet_optuna()
        self.config, self.run_dir, self.n_trials, self.worker_id = config, run_dir, n_trials, worker_id
        self.evaluator = Evaluator(config, progress=progress, cost_cache=run_dir / "cost_cache")
        self.evaluator.passthrough = (optuna.TrialPruned,)  # pruning ends a trial as PRUNED, not failed
        self.study = open_study(config, make_storage(storage_url), self.evaluator.space)
        self.stop = False
        self.on_trial_end = None

    def run(self) -> None:
        while not self.stop and self.has_room():
            self.study.optimize(self.objective, n_trials=1, catch=(_EndTrial,), gc_after_trial=False)
            export_records(self.study, self.run_dir)
            if self.on_trial_end is not None:
                self.on_trial_end()

    def has_room(self) -> bool:
        counted, running, _ = tally(self.study.get_trials(deepcopy=False))
        return counted + running < self.n_trials

    def objective(self, trial: Any) -> Any:
        started = time.perf_counter()
        self._claim(trial)
        if self._surplus(trial):
            self.stop = True
            trial.set_user_attr("status", "surplus")
            raise _EndTrial("surplus")
        params = self.evaluator.space.suggest(trial)
        point, seed_index = self._point(trial)
        record = self.evaluator.start(trial.number, params, self.config.seed + seed_index, point)
        record["retry_of"] = trial.user_attrs.get("retry_of")
        record["label"] = trial.user_attrs.get("label")
        for key, value in self.evaluator.constraints(record).items():
            trial.set_constraint(key, value)
        if record["state"] == "running":
            self._train(trial, record)
        return self._end(trial, record, started)

    def _claim(self, trial: Any) -> None:
        pid = os.getpid()
        for key, value in (("status", "running"), ("host", socket.gethostname()), ("pid", pid),
                           ("pid_token", process_token(pid)), ("worker", self.worker_id)):
            trial.set_user_attr(key, value)

    def _surplus(self, trial: Any) -> bool:
        """Whether finished, running and waiting trials numbered below this one already make n_trials."""
        below = [t for t in self.study.get_trials(deepcopy=False) if t.number < trial.number]
        counted, running, waiting = tally(below)
        return counted + running + waiting >= self.n_trials

    def _point(self, trial: Any) -> tuple[int, int]:
        """(point index, seed index); a freshly sampled point enqueues its seed repeats."""
        attrs = trial.user_attrs
        if "point" in attrs:
            return attrs["point"], attrs.get("seed_index", 0)
        point = sum(1 for t in self.study.get_trials(deepcopy=False) if t.number < trial.number
                    and t.user_attrs.get("origin") == "sampled" and "retry_of" not in t.user_attrs)
        for key, value in (("origin", "sampled"), ("point", point), ("seed_index", 0)):
            trial.set_user_attr(key, value)
        for index in range(1, self.config.seeds):
            self.study.enqueue_trial(dict(trial.params), user_attrs={
                "origin": "repeat", "point": point, "seed_index": index, "repeat_of": trial.number,
                **({"label": trial.user_attrs["label"]} if "label" in trial.user_attrs else {})})
        return point, 0

    def _train(self, trial: Any, record: dict[str, Any]) -> None:
        import optuna

        def on_eval(step: int, value: float) -> None:
            if len(self.config.objectives) == 1 and self.config.search.pruning != "none":
                trial.report(value, step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at step {step} with map {value:.4f}")

        try:
            self.evaluator.train(record, on_eval)
        except optuna.TrialPruned as exc:
            record.pop("spec", None)
            record.update(state="pruned", reason=str(exc))

    def _end(self, trial: Any, record: dict[str, Any], started: float) -> Any:
        import optuna

        from scalesearch.search.objective import finish

        ok = record["state"] in ("complete", "infeasible")
        finish(record, self.evaluator.values(record) if ok else None, started)
        trial.set_user_attr("record", record)
        trial.set_user_attr("status", record["state"])
        if record["state"] == "pruned":
            raise optuna.TrialPruned(record["reason"])
        if not ok:
            raise _EndTrial(record["reason"])
        values = record["values"]
        return values[0] if len(values) == 1 else values


def run_worker(config: Any, run_dir: str, storage_url: str, n_trials: int, worker_id: int,
               threads: int) -> None:
    """Entry point of a worker process (spawned): its own torch threads, its own storage connection."""
    import torch

    torch.set_num_threads(threads)
    Worker(config, Path(run_dir), storage_url, n_trials, worker_id).run()


# ---- records --------------------------------------------------------------------------------------

def trial_record(trial: Any) -> dict[str, Any] | None:
    """The record of one Optuna trial (None for interrupted and surplus trials, retried elsewhere)."""
    state = status(trial)
    if state in ("interrupted", "surplus") or trial.number is None:
        return None
    record = dict(trial.user_attrs.get("record") or {"number": trial.number, "params_sampled": dict(trial.params)})
    record["state"] = state
    reported = {str(k): v for k, v in sorted(trial.intermediate_values.items())}
    record["intermediate"] = reported or record.get("intermediate", {})
    return record


def study_records(study: Any) -> list[dict[str, Any]]:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    records = [trial_record(t) for t in trials if t.state != TrialState.WAITING]
    return [r for r in records if r is not None]


def records_from_storage(url: str, study_name: str) -> list[dict[str, Any]]:
    import optuna

    quiet_optuna()
    try:
        study = optuna.load_study(study_name=study_name, storage=url)
    except KeyError:
        raise UserError(f"storage {url!r}: must hold the study {study_name!r}, but it does not") from None
    return study_records(study)


def export_records(study: Any, run_dir: Path) -> list[dict[str, Any]]:
    """Rewrite ``trials.json`` (atomically) from the storage; returns the records."""
    records = study_records(study)
    write_json_atomic(run_dir / "trials.json", records)
    return records


def summary(records: list[dict[str, Any]]) -> str:
    best = best_record(records)
    return "no complete trial yet" if best is None else f"best map {best['map']:.4f} (trial {best['number']})"
