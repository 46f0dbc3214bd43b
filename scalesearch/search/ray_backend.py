"""Ray Tune backend: the same space and objective through ``ray.tune`` for studies that outgrow a machine.

The space goes to ``OptunaSearch`` as a define-by-run function (``SearchSpace.suggest``), with the
study's Optuna sampler; seed repeats come from Tune's ``Repeater`` (``point_repeater``: one Tune trial per seed, as one
Optuna trial per seed in the default backend); ``search.ray.asha`` adds the ASHA scheduler on the
intermediate mAP. ``search.ray.address`` joins a running cluster (``auto``: the one started on this machine);
without it the study starts a private Ray of its own that listens on loopback only (``start_local_ray``);
``max_failures`` retries crashed trials; rerunning on the same folder resumes with ``Tuner.restore``.
``search.pruning`` and ``search.prefilter`` decide as on the Optuna backend (``multi_fidelity.TrialGates``), over
the peers the trials post to one board actor of the run (``board_actor``; single-objective pruning uses the
neutral rules there, not Optuna's pruners, which need an Optuna study of reported values).
Records land in ``trials.json`` in the same schema as the Optuna backend's.

Duplicates (``records.measurement_key``): every trial that ends with a reusable result (``records.REUSABLE``)
posts its record to the board under its key, and a later trial with the same key takes that result instead of
training (``duplicate_of``; the searcher is told the same values). Ray does not wait: a trial whose key another
trial is measuring right now trains too, and at the end the later-numbered of two such complete trials is marked
``duplicate_of`` the earlier (``records.mark_concurrent_duplicates``; its own metrics kept), so it is never
counted as a seed repeat. Trials stopped by ASHA never post (Tune stops them at a report), so a duplicate of one
is trained again.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from scalesearch.errors import UserError
from scalesearch.records import (
    REUSABLE, State, TrialRecord, mark_concurrent_duplicates, measurement_key, write_records,
)
from scalesearch.search.backend import SearchBackend
from scalesearch.search.latency_front import measured_overlay

EXPERIMENT = "ray"
POINT_KEY = "__point__"  # index of the sampled point, counted by the searcher (repeats share it)


def _import_ray() -> tuple[Any, Any]:
    try:
        import ray
        from ray import tune
    except ImportError:
        raise UserError("search.backend: 'ray' needs Ray Tune, but it is not installed "
                        "(pip install 'ray[tune]')") from None
    return ray, tune


def ray_trial(params: dict[str, Any], study: Any, board: Any = None, run_dir: str | None = None) -> None:
    """One Tune trial (runs in a Ray worker): evaluate the point for one seed, report the record. ``board``: the
    run's ``BoardStore`` actor (pruning and the prefilter decide over the peers posted there), or None;
    ``run_dir``: the run folder's absolute path on the driver's machine."""
    import torch
    from ray import tune

    from scalesearch.search.multi_fidelity import TrialGates
    from scalesearch.search.objective import TrialInfo

    threads = max(1, int(study.search.ray.resources_per_trial.get("cpu", 1)))
    torch.set_num_threads(threads)
    params = dict(params)
    seed_index = int(params.pop("__trial_index__", 0))
    info = TrialInfo(params, int(params.pop(POINT_KEY)), seed_index)
    evaluator = worker_evaluator(study, run_dir)
    peers = None if board is None else remote_board(board, evaluator.number(info))
    gates = TrialGates(study, peers, info)
    started: dict[str, TrialRecord] = {}

    def on_costed(record: TrialRecord) -> None:
        started["record"] = record
        gates.costed(record)

    def on_eval(step: int, value: float) -> None:
        partial = started["record"].replace(metrics={"map": value})
        tune.report({**_metrics(study, partial), "step": step, "final": False,
                     "record": json.dumps(partial.to_json(), default=str)})
        gates.on_eval(step, value)  # after the report: ASHA sees every evaluation

    record = evaluator.evaluate(info, on_costed=on_costed, on_eval=on_eval, threads=threads, gate=gates.gate,
                                reuse=None if peers is None else lambda costed: earlier_measurement(peers, costed))
    record = record.replace(node=node_name())
    if peers is not None and record.state in REUSABLE and record.duplicate_of is None:
        peers.post(measured_key(record), record.to_json())
    # Budget excess (<= 0 feasible) for the sampler: ConstrainedOptunaSearch hands it to Optuna's trial.
    constraints = {f"{CONSTRAINT_PREFIX}{k}": v for k, v in evaluator.constraints(record).items()}
    tune.report({**_metrics(study, record), **constraints, "final": True, PRUNED_KEY: record.state is State.PRUNED,
                 "record": json.dumps(record.to_json(), default=str)})


def measured_key(record: TrialRecord) -> str:
    """The board key under which the trials that measured ``record``'s point and seed post their records."""
    return f"measured {measurement_key(record)}"


def earlier_measurement(board: Any, record: TrialRecord) -> TrialRecord | None:
    """The record of another trial of the run that measured ``record``'s point and seed (posted to ``board`` when
    it ended with a reusable result), the earliest; None: nobody has."""
    posted = [TrialRecord.from_json(value) for value in board.peers(measured_key(record))]
    done = [r for r in posted if r.state in REUSABLE]
    return min(done, key=lambda r: r.number) if done else None


def _prepare_run(config: Any, run_dir: Path) -> None:
    """The estimator's once-per-run state, built here on the driver before any trial (``Estimator.prepare_run``)."""
    from scalesearch.search.objective import Evaluator

    Evaluator(config, estimator_cache=run_dir.resolve() / "estimator", zero_cost=False).estimator.prepare_run()


_EVALUATORS: dict[str, Any] = {}


def worker_evaluator(study: Any, run_dir: str | None = None) -> Any:
    """The study's ``Evaluator`` in this Ray worker process, built once: its estimator prepares once per worker,
    not once per trial (Tune reuses a worker for the next trial when it can)."""
    from scalesearch.search.objective import Evaluator

    key = study.to_yaml()
    if key not in _EVALUATORS:
        # Errors propagate: Ray retries a crashed trial itself (search.ray.max_failures).
        # The estimator's folder in the run folder when this node sees it (one machine, a shared file system).
        cache = Path(run_dir) / "estimator" if run_dir and Path(run_dir).is_dir() else None
        _EVALUATORS[key] = Evaluator(study, contain_errors=False, estimator_cache=cache)
    return _EVALUATORS[key]


def board_actor(ray: Any, config: Any, run_dir: Path) -> Any:
    """The run's ``BoardStore``: an actor on this node (the driver's) that keeps ``run_dir/ray_peers.json`` current,
    so a resumed run decides over its earlier trials (pruning, the prefilter) and reuses their measurements
    (duplicates)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from scalesearch.search.multi_fidelity import BoardStore

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    actor = ray.remote(BoardStore).options(num_cpus=0, scheduling_strategy=here)
    return actor.remote(str((run_dir / "ray_peers.json").resolve()))


def remote_board(actor: Any, owner: int) -> Any:
    """Trial ``owner``'s ``PeerBoard`` over the run's board actor."""
    import ray

    from scalesearch.search.multi_fidelity import BoardView

    return BoardView(lambda key, value: ray.get(actor.post.remote(owner, key, value)),
                     lambda key: ray.get(actor.peers.remote(owner, key)))


def node_name() -> str:
    """``host/node-id`` of the Ray node running this trial (two nodes on one host stay apart)."""
    import socket

    import ray

    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"


def _metrics(study: Any, record: TrialRecord) -> dict[str, float]:
    """Objective metrics for Tune: every result must carry them, so a missing one is its worst value."""
    from scalesearch.metrics import objective_value

    if record.values is not None:
        return {o.metric: v for o, v in zip(study.objectives, record.values)}
    return {o.metric: objective_value(o.metric, record.get(o.metric)) for o in study.objectives}


class RayBackend(SearchBackend):
    """Ray Tune: a local Ray or a cluster (``search.ray.address``); resumes with ``Tuner.restore``."""

    name = "ray"

    def check(self) -> None:
        """An unreachable ``search.ray.address`` fails in seconds, before Ray's own long connection retries."""
        _import_ray()
        address = self.config.search.ray.address
        if address and address != "auto":
            probe_address(address)

    def run(self, *, exclusive: bool) -> list[TrialRecord]:
        return run_ray(self.config, self.run_dir, progress=self.progress)


def probe_address(address: str, timeout: float = 5.0) -> None:
    """Open a TCP connection to a Ray head (``host:port`` or ``ray://host:port``); ``UserError`` if none."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"search.ray.address: must be 'auto', HOST:PORT or ray://HOST:PORT, but got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UserError(f"search.ray.address: no Ray head answers at {address!r} ({exc.strerror or exc})") from None


LOOPBACK = "127.0.0.1"
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's single-machine mode, node address 127.0.0.1


def start_local_ray(num_cpus: int | None = None, log_to_driver: bool = False) -> None:
    """Start a private Ray on this machine (never one already running) whose processes listen on loopback only.

    Ray runs whatever job reaches its ports, without authentication by default (CVE-2023-48022). Its GCS, raylet,
    workers and agents listen on 127.0.0.1 only when the node address is exactly ``127.0.0.1``; otherwise on every
    interface. But ``ray.init`` replaces a given 127.0.0.1 by the machine's network address unless Ray's
    single-machine mode is on (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, the default on Windows and macOS), which
    Ray reads once, at import: so it is switched on here for the ``ray.init`` call (Ray's constant, and the
    environment that the Ray processes started by it inherit), then restored for any later cluster connection.
    A Ray that still reports another node address is shut down: ``UserError``."""
    ray, _ = _import_ray()
    from ray._private import ray_constants

    previous = ray_constants.ENABLE_RAY_CLUSTER, os.environ.get(SINGLE_MACHINE_ENV)
    ray_constants.ENABLE_RAY_CLUSTER = False
    os.environ[SINGLE_MACHINE_ENV] = "0"
    try:
        ray.init(address="local", _node_ip_address=LOOPBACK, num_cpus=num_cpus, include_dashboard=False,
                 log_to_driver=log_to_driver, configure_logging=False)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = previous[0]
        if previous[1] is None:
            os.environ.pop(SINGLE_MACHINE_ENV, None)
        else:
            os.environ[SINGLE_MACHINE_ENV] = previous[1]
    addresses = {node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]}
    if addresses != {LOOPBACK}:
        ray.shutdown()
        raise UserError(f"search.backend: 'ray' started a local Ray on {sorted(addresses)}, not on {LOOPBACK} "
                        "only; refusing to run it (set search.ray.address to use a cluster)")


def run_ray(config: Any, run_dir: Path, progress: bool = True) -> list[TrialRecord]:
    """Run or resume the study with Ray Tune in ``run_dir/ray``; returns the records."""
    ray, tune = _import_ray()
    ray_opts = config.search.ray
    if not ray.is_initialized():
        if ray_opts.address:
            ray.init(address=ray_opts.address, include_dashboard=False, log_to_driver=progress,
                     configure_logging=False)
        else:
            start_local_ray(num_cpus=ray_opts.num_cpus, log_to_driver=progress)
    _prepare_run(config, run_dir)
    board = board_actor(ray, config, run_dir)
    trainable = tune.with_resources(tune.with_parameters(ray_trial, study=config, board=board,
                                                         run_dir=str(run_dir.resolve())),
                                    dict(ray_opts.resources_per_trial))
    path = str((run_dir / EXPERIMENT).resolve())
    if tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_errored=True)
    else:
        failures = tune.FailureConfig(max_failures=ray_opts.max_failures)
        run_config = tune.RunConfig(name=EXPERIMENT, storage_path=str(run_dir.resolve()),
                                    failure_config=failures, verbose=1 if progress else 0)
        tuner = tune.Tuner(trainable, tune_config=_tune_config(config, tune), run_config=run_config)
    results = tuner.fit()
    records = mark_concurrent_duplicates([result_record(r, config.seeds) for r in results])
    overlay = measured_overlay(config, run_dir)  # the front's measured latencies of an earlier run (latency.table)
    records = overlay(records) if overlay is not None else records
    write_records(run_dir, records)
    return records


class _DefineByRun:
    """OptunaSearch's define-by-run space (a picklable callable: Tune saves the searcher)."""

    def __init__(self, space: Any) -> None:
        self.space, self.points = space, 0

    def __call__(self, trial: Any) -> dict[str, int]:
        self.space.suggest(trial)  # OptunaSearch records every suggested value as the Tune config
        self.points += 1  # saved with the searcher, so a restored run keeps counting
        return {POINT_KEY: self.points - 1}


CONSTRAINT_PREFIX = "constraint_"
PRUNED_KEY = "pruned"  # in a final result: the trial was pruned (the searcher tells Optuna so, not a value)


def constrained_search(**kwargs: Any) -> Any:
    """Ray's ``OptunaSearch`` that also passes each trial's budget constraints (``constraint_<metric>`` in its
    final result) to the Optuna trial before telling it, so a constrained sampler learns which points are
    infeasible, as on the Optuna backend; a pruned trial (``pruned`` in its final result) is told PRUNED, not
    its worst values."""
    from ray.tune.search.optuna import OptunaSearch

    class ConstrainedOptunaSearch(OptunaSearch):
        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            ot_trial = self._ot_trials.get(trial_id)
            if result and ot_trial is not None and trial_id not in self._completed_trials:
                for key, value in result.items():
                    if key.startswith(CONSTRAINT_PREFIX) and value is not None:
                        ot_trial.set_constraint(key[len(CONSTRAINT_PREFIX):], float(value))
                if result.get(PRUNED_KEY):  # no objective values: OptunaSearch tells a PRUNED trial
                    objectives = set(self.metric if isinstance(self.metric, list) else [self.metric])
                    result = {k: v for k, v in result.items() if k not in objectives}
            super().on_trial_complete(trial_id, result, error)

    return ConstrainedOptunaSearch(**kwargs)


def combine_repeats(results: list[dict], metrics: list[str]) -> dict:
    """One point's final results over its seed repeats, as its searcher is told them: each objective's mean over
    the repeats that reported values (a pruned repeat has none), each budget constraint's worst (largest), and
    ``pruned`` when no repeat has values."""
    import numpy as np

    scored = [r for r in results if not r.get(PRUNED_KEY) and all(isinstance(r.get(m), (int, float)) for m in metrics)]
    out = {}
    for key in sorted({k for r in results for k in r if k.startswith(CONSTRAINT_PREFIX)}):
        values = [float(r[key]) for r in results if r.get(key) is not None]
        if values:
            out[key] = max(values)
    if not scored:
        return {**out, PRUNED_KEY: True}
    return {**out, **{m: float(np.mean([r[m] for r in scored])) for m in metrics}, PRUNED_KEY: False}


def point_repeater(searcher: Any, repeat: int) -> Any:
    """Ray's ``Repeater`` (each suggested point run ``repeat`` times, ``__trial_index__`` set), telling the searcher
    ``combine_repeats`` of the repeats' whole final results. Ray's own tells one metric's mean and nothing else:
    a multi-objective searcher would get no values, and budget constraints and pruning would be lost."""
    from ray.tune.search import Repeater

    class PointRepeater(Repeater):
        def on_trial_complete(self, trial_id: str, result: dict | None = None, **kwargs: Any) -> None:
            group = self._trial_id_to_group.get(trial_id)
            if group is None:  # not one of ours (Ray's Repeater logs and fails the same way)
                raise KeyError(f"trial {trial_id} is in no repeat group")
            group.report(trial_id, dict(result or {}))
            if group.finished_reporting():
                metrics = self.searcher.metric if isinstance(self.searcher.metric, list) else [self.searcher.metric]
                self.searcher.on_trial_complete(group.primary_trial_id,
                                                result=combine_repeats(group.scores(), metrics), **kwargs)

    return PointRepeater(searcher, repeat=repeat, set_index=True)


def _tune_config(config: Any, tune: Any) -> Any:
    from scalesearch.search.optuna_study import make_sampler

    space = config.search_space
    metrics = [o.metric for o in config.objectives]
    modes = ["max" if o.direction == "maximize" else "min" for o in config.objectives]
    one = len(metrics) == 1
    searcher = constrained_search(space=_DefineByRun(space), metric=metrics[0] if one else metrics,
                            mode=modes[0] if one else modes, sampler=make_sampler(config),
                            points_to_evaluate=[dict(p.params) for p in config.search.enqueue] or None)
    if config.seeds > 1:
        searcher = point_repeater(searcher, config.seeds)
    scheduler = None
    if config.search.ray.asha:
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(metric=metrics[0], mode=modes[0], time_attr="training_iteration",
                                                  grace_period=config.search.ray.grace_period)
    # Tune counts Tune trials; with repeats every point needs `seeds` of them (Repeater's rule).
    samples = math.ceil(config.search.n_trials / config.seeds) * config.seeds
    return tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=samples,
                           max_concurrent_trials=config.search.workers)


def result_record(result: Any, seeds: int) -> TrialRecord:
    """A Tune ``Result`` -> trial record: crashed trials are ``failed``, stopped ones ``pruned``."""
    metrics = result.metrics or {}
    config = dict(result.config or {})
    number = int(config.get(POINT_KEY, 0)) * seeds + int(config.get("__trial_index__", 0))
    if "record" in metrics:
        record = TrialRecord.from_json(json.loads(metrics["record"]))
    else:
        params = {k: v for k, v in config.items() if k not in ("__trial_index__", POINT_KEY)}
        record = TrialRecord(number=number, state=State.RUNNING, params_sampled=params)
    if "step" in metrics and not metrics.get("final"):
        record = record.replace(intermediate={**record.intermediate, str(metrics["step"]): metrics.get("map")},
                                metrics={})
    if result.error is not None:
        record = record.replace(state=State.FAILED, values=None,
                                reason=f"ray trial error: {str(result.error).strip().splitlines()[-1]}")
    elif not metrics.get("final", False) and record.state is State.RUNNING:
        record = record.replace(state=State.PRUNED, reason=f"stopped by ASHA at step {metrics.get('step')}")
    if record.seconds is None:  # stopped or crashed: Tune's clock for the trial
        record = record.replace(seconds=round(float(metrics.get("time_total_s") or 0.0), 3))
    return record
