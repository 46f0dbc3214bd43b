"""Parameter importances (PED-ANOVA, Optuna) of the sampled parameters, from the trial records alone.

The study is rebuilt in memory from the records (``optuna.trial.create_trial``), never read from a
backend's storage, so it works whichever backend ran it and with ``study.db`` gone.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

from scalesearch import pareto
from scalesearch.metrics import get_metric
from scalesearch.records import TrialRecord

MIN_IMPORTANCE_TRIALS = 5


def _distributions(trials: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Optuna distributions inferred from the sampled values; constant parameters are dropped."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    names = sorted({k for t in trials for k in t})
    out = {}
    for name in names:
        values = [t.get(name) for t in trials]
        if len({repr(v) for v in values}) < 2 or any(v is None for v in values):
            continue
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            out[name] = IntDistribution(min(values), max(values))
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            out[name] = FloatDistribution(float(min(values)), float(max(values)))
        elif all(isinstance(v, (str, int, float, bool)) for v in values):
            out[name] = CategoricalDistribution(sorted(set(values), key=repr))
    return out


def importances(records: Sequence[TrialRecord]) -> tuple[dict[str, dict[str, float]], str]:
    """PED-ANOVA importances of the sampled parameters (Optuna; needs no scikit-learn).

    Two targets: reaching the mAP/FLOPs Pareto front (the multi-objective top quantile, as TPE
    splits it) and reaching a high mAP alone. The study is rebuilt in memory from the records
    (``optuna.trial.create_trial``), so it works whichever backend ran it. Returns
    ({target: {param: importance}}, note); empty with a note saying why when there are too few
    feasible trials or no varying parameter.
    """
    good = [r for r in pareto.feasible(records) if isinstance(r.get("params_sampled"), dict)]
    if len(good) < MIN_IMPORTANCE_TRIALS:
        return {}, (f"Skipped: {len(good)} feasible complete trial(s) with sampled parameters; "
                    f"need {MIN_IMPORTANCE_TRIALS}.")
    try:
        import optuna
    except ImportError:  # a report needs no search engine; only this section does
        return {}, "Skipped: PED-ANOVA importances need Optuna (pip install optuna)."
    dists = _distributions([r.get("params_sampled") for r in good])
    if not dists:
        return {}, "Skipped: no sampled parameter varies across the feasible trials."
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=[get_metric(m).direction for m in pareto.MAP_FLOPS])
    for r in good:
        params = {k: r.get("params_sampled")[k] for k in dists}
        values = [r.get("map"), math.log10(r.get("flops"))]
        study.add_trial(optuna.trial.create_trial(values=values, params=params, distributions=dists))
    # PED-ANOVA wants ~5 trials above its quantile (Optuna docs); small studies get a wider one.
    quantile = min(0.5, max(0.1, 5 / len(good)))
    targets = {"Pareto front": None, "mAP": lambda t: -t.values[0]}  # PED-ANOVA minimises its target
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, target in targets.items():
            evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=quantile)
            out[label] = optuna.importance.get_param_importances(study, evaluator=evaluator, target=target)
    return out, (f"PED-ANOVA (Optuna) over {len(good)} feasible trials and {len(dists)} varying parameters: how much "
                 f"each parameter's distribution in the top {quantile:.0%} of trials differs from all trials.")
