"""The search-backend family: one small base, one module per engine, one registry.

A backend schedules ``Evaluator.evaluate`` (``scalesearch.search.objective``) until the study has
``n_trials`` finished trials, resumes an interrupted run in the same folder, shows progress, and keeps
``trials.json`` current through ``scalesearch.records.write_records``. It owns its storage (an Optuna
database, a Ray Tune experiment folder); nothing else reads that storage. A new engine is one module and one
``BACKENDS.declare`` line: declared by import path, so ``search.backend`` and ``scalesearch run --backend``
accept its name without importing it (the command line never imports an engine it does not use).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from scalesearch.records import TrialRecord
from scalesearch.registry import Registry

BACKENDS: Registry[type[SearchBackend]] = Registry("search backend")
BACKENDS.declare("optuna", "scalesearch.search.optuna_backend:OptunaBackend")
BACKENDS.declare("ray", "scalesearch.search.ray_backend:RayBackend")


class SearchBackend(ABC):
    """Runs one study in one run folder. ``exclusive``: this process holds the folder's lock, so trials
    its storage shows as running belong to dead processes and are retried."""

    name: str = ""

    def __init__(self, config: Any, run_dir: Path, *, progress: bool = True) -> None:
        self.config, self.run_dir, self.progress = config, Path(run_dir), progress

    def check(self) -> None:
        """Fail fast, before the run folder is touched: settings that can only be checked by trying them
        (a storage server, a cluster address) raise ``UserError`` here. Default: nothing to try."""

    @abstractmethod
    def run(self, *, exclusive: bool) -> list[TrialRecord]:
        """Run or resume until ``target_trials()`` trials are finished; returns every record."""

    def target_trials(self) -> int:
        """``n_trials``, capped by grid size x seeds for an exhaustive sampler (grid: it repeats itself after)."""
        import math

        from scalesearch.search.samplers import SAMPLERS

        config = self.config
        if not SAMPLERS.get(config.search.sampler).exhaustive:
            return config.search.n_trials
        size = math.prod(len(v) for v in config.search_space.grid().values())
        return min(config.search.n_trials, size * config.seeds)


def get_backend(name: str) -> type[SearchBackend]:
    """The backend class registered as ``name`` (imported on first use)."""
    return BACKENDS.get(name)
