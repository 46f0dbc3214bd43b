"""Exhaustive Optuna samplers (grid, brute force) for studies driven by ``Study.ask`` / ``tell``, with enqueued
trials (seed repeats, retries, baselines).

Module-level (not built inside a function) so that they pickle: Ray Tune's ``OptunaSearch`` saves its sampler
with the searcher's state.
"""

from __future__ import annotations

from typing import Any

from optuna.samplers import BruteForceSampler, GridSampler


class RepeatTolerantGridSampler(GridSampler):
    """Optuna's ``GridSampler`` for ask/tell workers with enqueued trials.

    ``GridSampler.after_trial`` only calls ``study.stop()`` once the grid is exhausted, which ends an
    ``optimize`` loop and raises ``RuntimeError`` outside one; it also reads the trial's ``grid_id``, which
    enqueued trials never get (``KeyError``). Our workers count their trials themselves (``search.n_trials``),
    so there is nothing to stop.
    """

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        pass


class AskTellBruteForceSampler(BruteForceSampler):
    """Optuna's ``BruteForceSampler`` for ask/tell workers: its ``after_trial`` only calls ``study.stop()`` once
    the space is exhausted (an ``optimize``-loop signal, ``RuntimeError`` outside one); our workers count their
    trials themselves."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        pass
