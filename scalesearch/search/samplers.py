"""The sampler and pruner families (``search.sampler``, ``search.pruning``): one registry each, filled here.

A member is a small entry: ``build(config)`` makes the Optuna object for a validated ``StudyConfig``, importing
Optuna inside, so config validation and ``scalesearch --help`` know every name without importing Optuna;
the entry's other fields are the facts validation checks (``single_objective``, ``exhaustive``,
``multi_objective``).
A new sampler is one decorated function here; ``search.sampler`` accepts it, and both backends (Optuna, and
Ray through its Optuna searcher) build it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from scalesearch.registry import Registry


@dataclass(frozen=True)
class Sampler:
    """``build(config)`` -> a seeded Optuna sampler; ``single_objective``: cannot search two objectives;
    ``exhaustive``: enumerates the space's grid once and repeats itself after (a study ends at grid size x
    seeds trials); ``shared_seed``: its draws are one sequence indexed by trial (a grid order, a quasi-random
    sequence), so every process of a study (workers, a resumed run) must build it with the study's seed, never a
    stream of its own: with another seed, a resumed run walks another grid order and proposes points the first run
    already measured (Optuna's ``GridSampler`` takes grid id = trial number from its shuffled grid; measured here:
    181 repeats in 2,000 trials of a 5,120-point grid, resumed once, 0 with one seed); ``population``: an
    evolutionary sampler whose generation size ``search.population`` sets (default ``POPULATION``)."""

    build: Callable[[Any], Any]
    single_objective: bool = False
    exhaustive: bool = False
    shared_seed: bool = False
    population: bool = False


@dataclass(frozen=True)
class Pruner:
    """``build(config)`` -> an Optuna pruner; ``multi_objective``: available with two objectives (there
    ``successive_halving`` means ``scalesearch.search.multi_fidelity``'s halving over non-dominated sorting)."""

    build: Callable[[Any], Any]
    multi_objective: bool = False


SAMPLERS: Registry[Sampler] = Registry("sampler")
PRUNERS: Registry[Pruner] = Registry("pruner")


def sampler(name: str, *, single_objective: bool = False, exhaustive: bool = False, shared_seed: bool = False,
            population: bool = False) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Decorator: register ``build`` as the sampler ``name``."""
    def add(build: Callable[[Any], Any]) -> Callable[[Any], Any]:
        SAMPLERS.add(name, Sampler(build, single_objective, exhaustive, shared_seed, population))
        return build
    return add


def pruner(name: str, *, multi_objective: bool = False) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Decorator: register ``build`` as the pruner ``name``."""
    def add(build: Callable[[Any], Any]) -> Callable[[Any], Any]:
        PRUNERS.add(name, Pruner(build, multi_objective))
        return build
    return add


# ---- samplers (seeded by ``config.sampler_seed``; constraints come from ``trial.set_constraint``) ----------

@sampler("tpe")
def _tpe(config: Any) -> Any:
    from optuna.samplers import TPESampler

    return TPESampler(seed=config.sampler_seed, multivariate=True, group=True, n_startup_trials=4)


POPULATION = 8  # the evolutionary samplers' generation size when ``search.population`` is not given


def population(config: Any) -> int:
    """The study's generation size for an evolutionary sampler (``search.population``, else ``POPULATION``)."""
    return config.search.population or POPULATION


@sampler("nsga2", population=True)
def _nsga2(config: Any) -> Any:
    from optuna.samplers import NSGAIISampler

    return NSGAIISampler(seed=config.sampler_seed, population_size=population(config))


@sampler("nsga3", population=True)
def _nsga3(config: Any) -> Any:
    from optuna.samplers import NSGAIIISampler

    return NSGAIIISampler(seed=config.sampler_seed, population_size=population(config))


@sampler("random")
def _random(config: Any) -> Any:
    from optuna.samplers import RandomSampler

    return RandomSampler(seed=config.sampler_seed)


@sampler("grid", exhaustive=True, shared_seed=True)
def _grid(config: Any) -> Any:
    from scalesearch.search.grid import RepeatTolerantGridSampler

    return RepeatTolerantGridSampler(config.search_space.grid(), seed=config.sampler_seed)


@sampler("gp")
def _gp(config: Any) -> Any:
    from optuna.samplers import GPSampler

    return GPSampler(seed=config.sampler_seed, n_startup_trials=4)


@sampler("qmc", shared_seed=True)  # Optuna: "all the samplers must share the same seed" when distributed
def _qmc(config: Any) -> Any:
    from optuna.samplers import QMCSampler

    return QMCSampler(seed=config.sampler_seed, warn_independent_sampling=False)


@sampler("cmaes", single_objective=True)
def _cmaes(config: Any) -> Any:
    from optuna.samplers import CmaEsSampler

    return CmaEsSampler(seed=config.sampler_seed, warn_independent_sampling=False)


@sampler("brute_force")
def _brute_force(config: Any) -> Any:
    from scalesearch.search.grid import AskTellBruteForceSampler

    return AskTellBruteForceSampler(seed=config.sampler_seed)


# ---- pruners: a trial reports its mAP every ``train.eval_every`` steps (multi-fidelity) ------------------
# Successive halving / Hyperband keep the best 1/3 at each rung (Li et al. 2018); median stops a trial below
# the median of earlier ones at the same step.

@pruner("none", multi_objective=True)
def _none(config: Any) -> Any:
    from optuna.pruners import NopPruner

    return NopPruner()


@pruner("median")
def _median(config: Any) -> Any:
    from optuna.pruners import MedianPruner

    return MedianPruner(n_startup_trials=2, n_warmup_steps=0)


@pruner("successive_halving", multi_objective=True)
def _successive_halving(config: Any) -> Any:
    from optuna.pruners import SuccessiveHalvingPruner

    return SuccessiveHalvingPruner(min_resource=config.train_config.eval_every or 1, reduction_factor=3)


@pruner("hyperband")
def _hyperband(config: Any) -> Any:
    from optuna.pruners import HyperbandPruner

    return HyperbandPruner(min_resource=config.train_config.eval_every or 1,
                           max_resource=config.train_config.steps or 100, reduction_factor=3)
