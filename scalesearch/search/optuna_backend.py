"""Optuna backend (the default): storage, samplers, worker processes and crash-safe resume; pruning and the
prefilter are ``multi_fidelity.TrialGates`` over the trials' user attributes (``OptunaBoard``).

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

Duplicates: a trial whose resolved point and seed (``records.measurement_key``) another trial of the study
already measured is not trained again. Each trial posts its key (user attribute ``measure_key``) as soon as its
point is resolved, and a role (``measure_role``): ``deciding``, then ``training``, or none when it reuses a result.
A finished trial with the key in a reusable state (``records.REUSABLE``: complete, infeasible, pruned) gives its
result: the new trial is a duplicate (``duplicate_of``), and Optuna is told the same values (or PRUNED after the
same reports), so the sampler still learns. A trial with the key that is still running is waited for when it is
training (or still deciding with a lower storage number, so two trials never wait for each other), polling the
storage while this trial's heartbeat goes on; it is trained anyway when it cannot be watched (its process is gone,
or it runs on another machine over a storage without heartbeats: a journal file). If what it waited for ends
failed or interrupted, this trial trains the point itself.

Workers drive Optuna through ``Study.ask`` / ``tell`` (public API only): a trial ends by telling its state,
and the worker records the trial's heartbeat itself while it runs (``optuna_study.Heartbeat``).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from scalesearch.records import REUSABLE, State, TrialRecord, measurement_key
from scalesearch.search.backend import SearchBackend
from scalesearch.search.latency_front import measured_overlay
from scalesearch.search.multi_fidelity import PeerBoard, TrialGates
from scalesearch.search.optuna_study import (
    DUPLICATE_OF, Heartbeat, RecordsExport, dead_here, enqueue_points, make_storage, open_study, point_index, process_token,
    quiet_optuna, recover, status, storage_trial_id, study_records, summary, tally,
)

DUPLICATE_POLL_S = float(os.environ.get("SCALESEARCH_DUPLICATE_POLL_S", "1.0"))  # how often a waiting duplicate looks


# ---- one worker ---------------------------------------------------------------------------------

class Worker:
    """Runs trials of one study until ``n_trials`` are finished (one process, one trial at a time)."""

    def __init__(self, config: Any, run_dir: Path, storage_url: str, n_trials: int, worker_id: int = 0,
                 progress: bool = False, threads: int | None = None) -> None:
        import optuna

        from scalesearch.search.objective import Evaluator

        quiet_optuna()
        self.config, self.run_dir, self.n_trials, self.worker_id = config, run_dir, n_trials, worker_id
        self.threads = threads
        # Pruning ends a trial as PRUNED, not failed.
        self.evaluator = Evaluator(config, progress=progress, cost_cache=run_dir / "cost_cache",
                                   prune_signals=(optuna.TrialPruned,), estimator_cache=run_dir / "estimator")
        self.storage = make_storage(storage_url)  # kept: heartbeats and recovery write to it by trial id
        self.study = open_study(config, self.storage, own_stream=True)  # no two workers draw the same points
        self.stop = False
        # trials.json after every trial, with the front's measured latencies of an earlier run (latency.table)
        self.export = RecordsExport(run_dir, config.seeds, overlay=measured_overlay(config, run_dir))
        self.on_trial_end = None
        self.share = None  # set by the backend of a one-worker run: re-divide cores between trials

    def run(self) -> None:
        trials = self.study.get_trials(deepcopy=False)  # one read of the storage per trial serves the loop
        while not self.stop and self.has_room(trials):
            self._rebalance()
            self.run_trial()
            trials = self.study.get_trials(deepcopy=False)
            self.export(self.study, trials)
            if self.on_trial_end is not None:
                self.on_trial_end()

    def run_trial(self) -> None:
        """Ask for one trial, run it while beating its heartbeat, tell how it ended. An exception (Ctrl-C, a
        user error) fails the trial without a status of ours, so ``recover`` retries it, and propagates."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.storages import fail_stale_trials
        from optuna.trial import TrialState

        fail_stale_trials(self.study)  # as ``optimize`` does before each trial: dead machines' trials retry
        trial = self.study.ask()
        trial_id = storage_trial_id(self.storage, self.study, trial.number)
        try:
            with Heartbeat(self.storage, trial_id):
                state, values = self.objective(trial)
        except UpdateFinishedTrialError as exc:  # Optuna refused a write: the trial was failed meanwhile
            self._failed_elsewhere(str(exc))
            return
        except BaseException:
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        if self.storage.get_trial(trial_id).state.is_finished():
            self._failed_elsewhere(f"trial {trial.number} is already finished")
            return
        # Failed elsewhere between that check and this tell: skipped too, the trial is retried all the same.
        self.study.tell(trial, values, state=state, skip_if_finished=True)

    @staticmethod
    def _failed_elsewhere(why: str) -> None:
        """Another process failed our trial (its heartbeat looked stale): it is retried, we go on."""
        print(f"scalesearch run: a trial of this worker was marked failed by another process "
              f"(missed heartbeats) and will be retried: {why}", file=sys.stderr)

    def _rebalance(self) -> None:
        """One-worker runs re-divide the cores before each trial: a run started by hand beside this one
        gets its part, and this one gets the machine back when the other ends."""
        if self.share is None:
            return
        from scalesearch import cpu_share

        share = cpu_share.rebalance(1, self.config.search.threads_per_worker)
        if share.threads != self.threads:
            print(f"scalesearch run: {len(share.others)} other scalesearch process(es) now: {share.threads} "
                  f"thread(s) from the next trial on", file=sys.stderr)
            self.threads = share.threads

    def has_room(self, trials: list[Any] | None = None) -> bool:
        """Whether finished + running trials (``trials``: a fresh read of the storage) leave room for one more."""
        counted, running, _ = tally(self.study.get_trials(deepcopy=False) if trials is None else trials)
        return counted + running < self.n_trials

    def objective(self, trial: Any) -> tuple[Any, list[float] | None]:
        """Run an asked trial: (the ``TrialState`` to tell, its values). None as the state lets Optuna check
        the values (COMPLETE, or FAIL with a warning for a value it cannot store, as ``optimize`` does)."""
        from optuna.trial import TrialState

        from scalesearch.search.objective import TrialInfo

        self._claim(trial)
        below = [t for t in self.study.get_trials(deepcopy=False) if t.number < trial.number]  # read once
        if self._surplus(below):
            self.stop = True
            trial.set_user_attr("status", "surplus")
            return TrialState.FAIL, None
        params = self.config.search_space.suggest(trial)
        point, seed_index = self._point(trial, below)
        attrs = trial.user_attrs
        info = TrialInfo(params, point, seed_index, label=attrs.get("label"),
                         retry_of=point * self.config.seeds + seed_index if "retry_of" in attrs else None)

        gates = TrialGates(self.config, OptunaBoard(self.study, trial), info, report=_optuna_report(trial))

        def constrain(record: TrialRecord) -> None:
            gates.costed(record)
            for key, value in self.evaluator.constraints(record).items():
                trial.set_constraint(key, value)

        record = self.evaluator.evaluate(info, on_costed=constrain, on_eval=gates.on_eval if gates.prunes else None,
                                         threads=self.threads, gate=gates.gate,
                                         reuse=lambda costed: self._reuse(trial, costed, below))
        return self._end(trial, record)

    def _reuse(self, trial: Any, record: TrialRecord, below: list[Any]) -> TrialRecord | None:
        """The record of a finished trial that measured ``record``'s point and seed, after waiting for one that is
        measuring it now (module docstring); None: this trial measures it itself. ``below``: the trials numbered
        below this one, read when it was asked; alone on the storage (one worker, the folder's own database, none
        of them running) they are all there is to see, else the storage is read again once the key is posted."""
        from optuna.trial import TrialState
        from optuna.storages import fail_stale_trials

        key = measurement_key(record)
        trial.set_user_attr("measure_key", key)
        trial.set_user_attr("measure_role", "deciding")
        reusable = {s.value for s in REUSABLE}
        alone = (self.config.search.workers == 1 and not self.config.search.storage
                 and not any(t.state == TrialState.RUNNING for t in below))
        trials = below if alone else None
        while True:
            trials = self.study.get_trials(deepcopy=False) if trials is None else trials
            same = [t for t in trials if t.number != trial.number and t.user_attrs.get("measure_key") == key]
            done = [t for t in same if t.state.is_finished() and status(t) in reusable and "record" in t.user_attrs]
            if done:  # the measurement itself rather than another duplicate of it, the earliest first
                source = min(done, key=lambda t: (DUPLICATE_OF in t.user_attrs, t.number))
                trial.set_user_attr(DUPLICATE_OF, source.user_attrs.get(DUPLICATE_OF, source.number))
                trial.set_user_attr("measure_role", "reused")
                return TrialRecord.from_json(source.user_attrs["record"])
            wait = [t for t in same if t.state == TrialState.RUNNING and self._watchable(t) and (
                t.user_attrs.get("measure_role") == "training"
                or (t.user_attrs.get("measure_role") == "deciding" and t.number < trial.number))]
            if not wait:
                trial.set_user_attr("measure_role", "training")
                return None
            time.sleep(DUPLICATE_POLL_S)
            fail_stale_trials(self.study)  # a dead machine's trial (stale heartbeat) ends failed: stop waiting
            trials = None

    def _watchable(self, trial: Any) -> bool:
        """Whether a running trial's death would be noticed: its process here is alive, or the storage has
        heartbeats (``fail_stale_trials`` fails it when its machine stops beating)."""
        from optuna.storages import RDBStorage

        attrs = trial.user_attrs
        if attrs.get("host") == socket.gethostname() and "pid" in attrs:
            return not dead_here(attrs)
        return isinstance(self.storage, RDBStorage) and self.storage.get_heartbeat_interval() is not None

    def _claim(self, trial: Any) -> None:
        pid = os.getpid()  # the token before the pid: a reader that sees the pid sees its token (``dead_here``)
        for key, value in (("status", "running"), ("host", socket.gethostname()), ("pid_token", process_token(pid)),
                           ("pid", pid), ("worker", self.worker_id)):
            trial.set_user_attr(key, value)

    def _surplus(self, below: list[Any]) -> bool:
        """Whether finished, running and waiting trials numbered below this one already make n_trials."""
        counted, running, waiting = tally(below)
        return counted + running + waiting >= self.n_trials

    def _point(self, trial: Any, below: list[Any]) -> tuple[int, int]:
        """(point index, seed index); a freshly sampled point enqueues its seed repeats. ``below``: the trials
        numbered below this one; the index is final (``optuna_study.point_index``: the export numbers alike)."""
        attrs = trial.user_attrs
        if "point" in attrs and not attrs.get("repeats_pending"):
            return attrs["point"], attrs.get("seed_index", 0)
        if "point" in attrs:  # the retry of an origin interrupted before it enqueued its repeats (optuna_study.retry)
            point, origin = attrs["point"], attrs["origin_trial"]
        else:
            point, origin = point_index(trial.number, below), trial.number
            for key, value in (("origin", "sampled"), ("point", point), ("seed_index", 0), ("origin_trial", origin)):
                trial.set_user_attr(key, value)
        for index in range(1, self.config.seeds):
            self.study.enqueue_trial(dict(trial.params), user_attrs={
                "origin": "repeat", "point": point, "seed_index": index, "repeat_of": origin, "origin_trial": origin,
                **({"label": trial.user_attrs["label"]} if "label" in trial.user_attrs else {})})
        if attrs.get("repeats_pending"):
            trial.set_user_attr("repeats_pending", False)  # a retry of this trial must not enqueue them again
        return point, 0

    def _end(self, trial: Any, record: TrialRecord) -> tuple[Any, list[float] | None]:
        from optuna.trial import TrialState

        record = record.replace(node=socket.gethostname())
        if record.duplicate_of is not None and len(self.config.objectives) == 1:
            every = self.config.train_config.eval_every
            for step, value in sorted((int(k), v) for k, v in record.intermediate.items() if v is not None):
                if every and step % every == 0:  # what the trial it duplicates reported (not its learning curve)
                    trial.report(value, step)
        trial.set_user_attr("record", record.to_json())
        trial.set_user_attr("status", record.state.value)
        if record.state is State.PRUNED:
            return TrialState.PRUNED, None
        if record.values is None:
            return TrialState.FAIL, None
        return None, list(record.values)


class OptunaBoard(PeerBoard):
    """The peers of a trial for ``TrialGates``: user attributes of the study's trials in its storage (every
    worker, on any machine, sees them; a resumed run sees those of its earlier runs)."""

    def __init__(self, study: Any, trial: Any) -> None:
        self.study, self.trial = study, trial

    def post(self, key: str, value: Any) -> None:
        self.trial.set_user_attr(key, value)

    def peers(self, key: str) -> list[Any]:
        return [t.user_attrs[key] for t in self.study.get_trials(deepcopy=False)
                if t.number != self.trial.number and key in t.user_attrs]


def _optuna_report(trial: Any) -> Any:
    """Optuna's own pruner (``search.pruning`` with one objective): report the mAP, ask whether to stop."""
    def report(step: int, value: float) -> str | None:
        trial.report(value, step)
        return f"pruned at step {step} with map {value:.4f}" if trial.should_prune() else None

    return report


def run_worker(config: Any, run_dir: str, storage_url: str, n_trials: int, worker_id: int,
               threads: int) -> None:
    """Entry point of a worker process (spawned): its own torch threads, its own storage connection."""
    import torch

    torch.set_num_threads(threads)
    Worker(config, Path(run_dir), storage_url, n_trials, worker_id, threads=threads).run()


# ---- the backend ----------------------------------------------------------------------------------

class OptunaBackend(SearchBackend):
    """The default backend: an Optuna study in ``study.db`` (or ``search.storage``), one or more worker
    processes on it, crash-safe resume (see the module docstring)."""

    name = "optuna"

    def storage_url(self) -> str:
        return self.config.search.storage or f"sqlite:///{(self.run_dir / 'study.db').resolve()}"

    def check(self) -> None:
        if self.config.search.storage:
            make_storage(self.config.search.storage)

    def run(self, *, exclusive: bool) -> list[TrialRecord]:
        from scalesearch import cpu_share

        config, url = self.config, self.storage_url()
        workers = config.search.workers
        # The cores are divided between this run's workers and any other scalesearch process on the machine.
        share = cpu_share.claim(workers, config.search.threads_per_worker)
        note = share.message(config.search.threads_per_worker or max(1, share.cores // workers))
        if note:
            print(f"scalesearch run: {note}", file=sys.stderr)
        self.threads = share.threads
        worker = Worker(config, self.run_dir, url, self.target_trials(), progress=self.progress and workers == 1,
                        threads=share.threads)
        worker.evaluator.estimator.prepare_run()  # before any worker process starts
        enqueue_points(worker.study, config)
        # A URL storage may be shared with runs elsewhere: only the folder's own database is ours alone.
        retried = recover(worker.study, worker.storage, exclusive=exclusive and not config.search.storage)
        if retried:
            print(f"resuming: {retried} interrupted trial(s) will be retried", file=sys.stderr)
        try:
            with _Progress(worker, enabled=self.progress) as bar:
                if workers == 1:
                    worker.on_trial_end = bar.update
                    worker.share = share
                    worker.run()
                else:
                    self._run_processes(url, worker.n_trials, bar)
        finally:
            cpu_share.release()
        return worker.export(worker.study)

    def _run_processes(self, url: str, n_trials: int, bar: "_Progress") -> None:
        """``search.workers`` spawned processes share the storage; the parent only shows progress."""
        import multiprocessing

        workers = self.config.search.workers
        threads = self.threads
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=run_worker, args=(self.config, str(self.run_dir), url, n_trials, i, threads))
                 for i in range(workers)]
        for proc in procs:
            proc.start()
        while any(p.is_alive() for p in procs):
            time.sleep(1.0)
            bar.update()
        failed = [p.exitcode for p in procs if p.exitcode]
        if failed:
            raise RuntimeError(f"{len(failed)} search worker(s) exited with codes {failed}")


class _Progress:
    """Study progress bar: finished / total trials and the best result so far."""

    def __init__(self, worker: Worker, enabled: bool) -> None:
        self.worker, self.enabled, self.bar = worker, enabled, None

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=self.worker.n_trials, desc="trials", unit="trial", position=0, leave=True)
            self.update()
        return self

    def update(self) -> None:
        if self.bar is None:
            return
        counted, running, _ = tally(self.worker.study.get_trials(deepcopy=False))
        self.bar.n = counted
        records = study_records(self.worker.study, self.worker.config.seeds, self.worker.export.cache)
        self.bar.set_postfix_str(f"{running} running, {summary(records)}")

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.update()
            self.bar.close()
