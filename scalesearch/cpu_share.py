"""Sharing one machine's cores between scalesearch processes started independently.

Every process that trains (a ``scalesearch run`` and its workers, ``scalesearch fidelity``) claims the torch
threads it will use in a machine-wide registry (``$SCALESEARCH_CPU_DIR``, default
``/tmp/scalesearch-cpu``: one file per process, written under an exclusive lock, gone when the process is).
Each live process gets an equal part of the cores (at least one thread; earlier runs come down to theirs
between trials), so two runs started by hand divide the machine instead of both taking every core: measured here, two processes that each kept torch's
default thread count slowed a training step about 20x (OpenMP threads spin-waiting on cores the other
process holds). When cores are shared, OpenMP is also told to wait passively (``OMP_WAIT_POLICY=PASSIVE``,
set before torch is imported), which removes most of that spin.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

DIR_ENV = "SCALESEARCH_CPU_DIR"
DEFAULT_DIR = "/tmp/scalesearch-cpu"


@dataclass(frozen=True)
class Share:
    """``threads`` granted (per worker), ``workers``, the cores, and what other processes held (``others``:
    pid -> threads) when it was granted."""

    threads: int
    workers: int
    cores: int
    others: dict[int, int]

    def message(self, wanted: int) -> str | None:
        """One line when the machine is shared, else None."""
        if not self.others:
            return None
        held = sum(self.others.values())
        pids = ", ".join(str(p) for p in sorted(self.others))
        return (f"{len(self.others)} other scalesearch process(es) (pid {pids}) hold {held} of {self.cores} "
                f"cores: this run uses {self.threads} thread(s) per worker x {self.workers} (wanted {wanted})")


def _folder() -> Path:
    path = Path(os.environ.get(DIR_ENV, DEFAULT_DIR))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with open(folder / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def live_claims(folder: Path | None = None, exclude: int | None = None) -> dict[int, int]:
    """pid -> threads of the live claims (stale files of dead processes are removed)."""
    folder = folder or _folder()
    out = {}
    for path in folder.glob("*.json"):
        try:
            claim = json.loads(path.read_text())
            pid = int(claim["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _alive(pid):
            path.unlink(missing_ok=True)
        elif pid != exclude:
            out[pid] = int(claim.get("threads", 1))
    return out


def claim(workers: int = 1, threads_per_worker: int | None = None, cores: int | None = None) -> Share:
    """Claim threads for ``workers`` workers of this process (released at exit and by ``release``).
    ``threads_per_worker``: what the study asked for (None: all cores divided between the workers). With
    other live claims, each process gets an equal part of the cores (``cores // processes``), divided between
    its workers, at least one thread each; earlier runs come down to their part at their next trial
    (``rebalance``)."""
    share = _grant(workers, threads_per_worker, cores)
    atexit.register(release)
    if share.others:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # effective when torch is not imported yet
    return share


def rebalance(workers: int = 1, threads_per_worker: int | None = None, cores: int | None = None) -> Share:
    """The claim again, for the processes alive now (called between trials)."""
    return _grant(workers, threads_per_worker, cores)


def _grant(workers: int, threads_per_worker: int | None, cores: int | None) -> Share:
    cores = cores or os.cpu_count() or 1
    folder = _folder()
    pid = os.getpid()
    with _locked(folder):
        others = live_claims(folder, exclude=pid)
        wanted = threads_per_worker or max(1, cores // workers)
        threads = max(1, min(wanted, cores // (1 + len(others)) // workers))
        (folder / f"{pid}.json").write_text(json.dumps({"pid": pid, "threads": threads * workers}))
    return Share(threads, workers, cores, others)


def release() -> None:
    """Drop this process's claim."""
    try:
        (_folder() / f"{os.getpid()}.json").unlink(missing_ok=True)
    except OSError:
        pass
