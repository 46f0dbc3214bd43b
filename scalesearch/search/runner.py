"""Run a study into a run folder: ``study.yaml``, ``meta.json``, ``trials.json``, ``study.db``.

Rerunning on the same folder resumes (see ``optuna_backend`` for how trials are counted and
retried). The folder's ``.run.lock`` is held while a run is alive, so a rerun knows whether
RUNNING trials in the folder's own storage belong to a dead process.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import yaml

from scalesearch.errors import UserError
from scalesearch.machine import machine_info
from scalesearch.search.records import write_json_atomic

_SAME_STUDY_KEYS = ("name", "space", "objectives", "budgets", "seeds")


def run_study(config: Any, run_dir: Path, command: str = "", progress: bool = True) -> list[dict[str, Any]]:
    """Run (or resume) ``config`` in ``run_dir``; returns the trial records."""
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_same_study(config, run_dir)
    (run_dir / "study.yaml").write_text(config.to_yaml())
    with _run_lock(run_dir) as exclusive:
        meta = _start_meta(config, run_dir, command)
        try:
            if config.search.backend == "ray":
                from scalesearch.search.ray_backend import run_ray

                records = run_ray(config, run_dir, progress=progress)
            else:
                records = _run_optuna(config, run_dir, storage_url(config, run_dir), exclusive, progress)
        finally:
            meta["end"] = _now()
            write_json_atomic(run_dir / "meta.json", meta)
    return records


def storage_url(config: Any, run_dir: Path) -> str:
    return config.search.storage or f"sqlite:///{(run_dir / 'study.db').resolve()}"


def _run_optuna(config: Any, run_dir: Path, url: str, exclusive: bool, progress: bool) -> list[dict]:
    from scalesearch.search import optuna_backend as ob

    # A URL storage may be shared with runs elsewhere: only the folder's own database is ours alone.
    worker = ob.Worker(config, run_dir, url, 0, progress=progress and config.search.workers == 1)
    worker.n_trials = ob.target_trials(config, worker.evaluator.space)
    ob.enqueue_points(worker.study, config)
    retried = ob.recover(worker.study, exclusive=exclusive and not config.search.storage)
    if retried:
        print(f"resuming: {retried} interrupted trial(s) will be retried", file=sys.stderr)
    with _Progress(worker, enabled=progress) as bar:
        if config.search.workers == 1:
            worker.on_trial_end = bar.update
            worker.run()
        else:
            _run_processes(config, run_dir, url, worker.n_trials, bar)
    return ob.export_records(worker.study, run_dir)


def _run_processes(config: Any, run_dir: Path, url: str, n_trials: int, bar: "_Progress") -> None:
    """``search.workers`` spawned processes share the storage; the parent only shows progress."""
    import multiprocessing

    from scalesearch.search.optuna_backend import run_worker

    workers = config.search.workers
    threads = config.search.threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=run_worker, args=(config, str(run_dir), url, n_trials, i, threads))
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

    def __init__(self, worker: Any, enabled: bool) -> None:
        self.worker, self.enabled, self.bar = worker, enabled, None

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=self.worker.n_trials, desc="trials", unit="trial", position=0, leave=True)
            self.update()
        return self

    def update(self) -> None:
        from scalesearch.search.optuna_backend import study_records, summary, tally

        if self.bar is None:
            return
        counted, running, _ = tally(self.worker.study.get_trials(deepcopy=False))
        self.bar.n = counted
        self.bar.set_postfix_str(f"{running} running, {summary(study_records(self.worker.study))}")

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.update()
            self.bar.close()


@contextmanager
def _run_lock(run_dir: Path) -> Iterator[bool]:
    """Hold ``run_dir/.run.lock``; yields True when no other run holds it (we are alone here)."""
    with open(run_dir / ".run.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            exclusive = True
        except BlockingIOError:
            exclusive = False  # another run is alive: join it as extra workers
        try:
            yield exclusive
        finally:
            if exclusive:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _check_same_study(config: Any, run_dir: Path) -> None:
    """A run folder holds one study: refuse to resume it with a different space or objectives."""
    path = run_dir / "study.yaml"
    if not path.is_file():
        return
    old = yaml.safe_load(path.read_text()) or {}
    new = config.model_dump(mode="json")
    for key in _SAME_STUDY_KEYS:
        if key in old and old[key] != new[key]:
            raise UserError(f"--out {str(run_dir)!r}: a run folder resumes the same study, but its "
                            f"study.yaml has a different {key!r}; use another output folder")


def _start_meta(config: Any, run_dir: Path, command: str) -> dict[str, Any]:
    from importlib.metadata import version

    old = json.loads((run_dir / "meta.json").read_text()) if (run_dir / "meta.json").is_file() else {}
    meta = {
        "command": command or " ".join(sys.argv), "study_name": config.name,
        "backend": config.search.backend,
        # None: the folder's own study.db, found by load_records wherever the folder is moved.
        "storage": config.search.storage,
        "machine": machine_info(),
        "scalesearch_version": version("scalesearch"), "start": _now(), "end": None,
        "first_start": old.get("first_start") or old.get("start") or _now(),
        "runs": old.get("runs", 0) + 1,
    }
    write_json_atomic(run_dir / "meta.json", meta)
    return meta


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
