"""Run a study into a run folder: ``study.yaml``, ``meta.json``, ``trials.json`` and the backend's storage.

The runner knows no backend: it picks one from the registry (``scalesearch.search.backend``), holds the
folder's ``.run.lock`` while a run is alive (so a rerun knows whether trials the storage shows as running
belong to a dead process) and writes the run's metadata. Rerunning on the same folder resumes. With
``latency.table``, once the backend returns, every point of the final front is measured by the latency protocol
(``scalesearch.search.latency_front``), whichever backend ran the trials.
"""

from __future__ import annotations

import fcntl
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import yaml

from scalesearch.errors import UserError
from scalesearch.files import write_json_atomic
from scalesearch.machine import machine_info, portable_command, portable_path
from scalesearch.records import TrialRecord, read_json, run_wall_seconds, seconds_between
from scalesearch.search.backend import get_backend
from scalesearch.search.latency_front import measure_front

_SAME_STUDY_KEYS = ("name", "space", "objectives", "budgets", "seeds")


def run_study(config: Any, run_dir: Path, command: str = "", progress: bool = True) -> list[TrialRecord]:
    """Run (or resume) ``config`` in ``run_dir`` with its backend; returns the trial records."""
    backend = get_backend(config.search.backend)(config, run_dir, progress=progress)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {str(run_dir)!r}: must be a folder for the run, but it is a file")
    _check_same_study(config, run_dir)
    backend.check()  # a bad storage URL or cluster address fails here, leaving no half-made folder
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "study.yaml").write_text(_portable_yaml(config))
    with _run_lock(run_dir) as exclusive:
        meta = _start_meta(config, run_dir, command)
        try:
            records = backend.run(exclusive=exclusive)
            if config.latency.table and config.measures_latency:  # every final-front point measured, any backend
                records = measure_front(config, run_dir, records, progress=progress)
        finally:
            meta["end"] = _now()
            if meta["wall_seconds"] is not None:  # this call's wall time added to the earlier calls'
                meta["wall_seconds"] = round(meta["wall_seconds"] + seconds_between(meta["start"], meta["end"]), 1)
            write_json_atomic(run_dir / "meta.json", meta)
    return records


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


def _portable_yaml(config: Any) -> str:
    """The resolved study as the run folder keeps it: its output and dataset paths relative to the working
    folder (``machine.portable_path``), as a user who types relative paths gets them anyway."""
    data = config.model_dump(mode="json")
    if data.get("output"):
        data["output"] = portable_path(data["output"])
    dataset = data.get("dataset")
    if isinstance(dataset, dict) and isinstance(dataset.get("path"), str):
        dataset["path"] = portable_path(dataset["path"])
    return yaml.safe_dump(data, sort_keys=False)


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

    old = read_json(run_dir / "meta.json") if (run_dir / "meta.json").is_file() else {}
    if not isinstance(old, dict):
        raise UserError(f"{run_dir / 'meta.json'}: must hold an object of keys (written by `scalesearch run`)")
    meta = {
        "command": command or portable_command(sys.argv), "study_name": config.name,
        "backend": config.search.backend,
        # None: the folder's own study.db, found by load_records wherever the folder is moved.
        "storage": config.search.storage,
        "machine": machine_info(),
        "scalesearch_version": version("scalesearch"), "start": _now(), "end": None,
        "first_start": old.get("first_start") or old.get("start") or _now(),
        "runs": old.get("runs", 0) + 1,
        # wall time summed over the calls before this one (None when one of them predates the key, or crashed
        # before writing its end): with "runs", what a resumed run cost, without the idle time between calls
        "wall_seconds": run_wall_seconds(old) if old else 0.0,
    }
    write_json_atomic(run_dir / "meta.json", meta)
    return meta


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
