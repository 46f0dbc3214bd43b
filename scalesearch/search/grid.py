"""A ``GridSampler`` for studies with enqueued trials (seed repeats, retries, baselines).

Module-level (not built inside a function) so that it pickles: Ray Tune's ``OptunaSearch`` saves
its sampler with the searcher's state.
"""

from __future__ import annotations

from typing import Any

from optuna.samplers import GridSampler


class RepeatTolerantGridSampler(GridSampler):
    """Optuna's ``GridSampler``, minus its ``KeyError: 'grid_id'`` on enqueued trials.

    ``GridSampler.after_trial`` reads the trial's ``grid_id`` once a single grid point is left, but
    enqueued trials never get one. Their point was counted when it was first sampled, so there is
    nothing for the grid to record.
    """

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        if "grid_id" in trial.system_attrs:
            super().after_trial(study, trial, state, values)
