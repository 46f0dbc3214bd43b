"""Proxy fidelity, the retrainer: does the short proxy training rank architectures as a longer training does?

``retrain`` trains the K best distinct specs of a finished run again at F times the study's training budget,
with the study's own dataset and recipe, and writes one ``FidelityRecord`` (``scalesearch.fidelity``) per spec
to ``RUN/fidelity.json`` after each one (a rerun resumes and never retrains a spec that is there). Reports
only read that file, through ``scalesearch.fidelity``; training, checkpoints and latency are imported here,
inside the functions that use them.
"""

from __future__ import annotations

import dataclasses
import datetime
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scalesearch import machine, pareto
from scalesearch.errors import UserError
from scalesearch.fidelity import (CHECKPOINTS, FILE, FROZEN_FILE, FidelityRecord, lasting_points, load_fidelity,
                                  longer_file)
from scalesearch.files import write_json_atomic
from scalesearch.records import TrialRecord, load_records

# (spec fields, seed, trial number) -> long-budget val mAP of the scored weights, or a ``Trained``
Trainer = Callable[[dict[str, Any], int, int], "float | Trained"]


@dataclasses.dataclass(frozen=True)
class Trained:
    """One long-budget training: the scored weights' mAP (``map``), both weights' (``map_raw``, ``map_ema``; None
    when not evaluated), the wall seconds of training and evaluation, and the learning curve (``curve``: step ->
    the scored weights' mAP at the ``train.curve`` steps, the final step excluded; None when not recorded)."""

    map: float
    map_raw: float | None = None
    map_ema: float | None = None
    wall_seconds: float | None = None
    curve: dict[int, float] | None = None

    @classmethod
    def of(cls, outcome: "float | Trained") -> "Trained":
        return outcome if isinstance(outcome, Trained) else cls(float(outcome))


def pick(records: Sequence[TrialRecord], k: int, include: Sequence[str] = (), against: str | None = None,
         objectives: pareto.Objectives = pareto.MAP_FLOPS, per_rung: bool = False) -> list[TrialRecord]:
    """The k best distinct points: front points (of ``objectives``) by mAP first, then the other feasible trials
    by mAP; then every point labelled one of ``include`` (e.g. an enqueued baseline), if not picked already.
    ``against``: a label; the k are chosen among the points cheaper than that trial on every cost objective (the
    only ones that could dominate it), and it is included. ``per_rung``: the k best of each FLOPs budget rung
    (``budget_flops``), labelled trials left out of the k. Seed repeats of one point count once (its best
    record), so the picks are distinct architectures."""
    finished = sorted(pareto.feasible(records), key=lambda r: -r.get("map"))
    labels = [*include, *([against] if against else [])]
    labelled = {label: _labelled(records, finished, label) for label in labels}
    pool = list(records)
    if against:
        costs = [m for m in objectives if m != "map"]
        base = labelled[against][0]
        pool = [r for r in pool if all(_below(r.get(m), base.get(m)) for m in costs)]
    if per_rung:
        pool = [r for r in pool if r.label not in labels]
        rungs = sorted({r.budget_flops for r in pool if r.budget_flops is not None})
        picked = [p for rung in rungs for p in _best(
            [r for r in pool if r.budget_flops == rung], [r for r in finished if r.budget_flops == rung], k,
            objectives)]
    else:
        picked = _best(pool, [r for r in finished if r in pool], k, objectives)
    for record in (r for found in labelled.values() for r in found):
        if all(pareto.group_key(p) != pareto.group_key(record) for p in picked):
            picked.append(record)
    return picked


def _best(pool: Sequence[TrialRecord], finished: Sequence[TrialRecord], k: int,
          objectives: pareto.Objectives) -> list[TrialRecord]:
    front = sorted(pareto.pareto_front(pool, objectives), key=lambda r: -r.get("map"))
    chosen: dict[str, TrialRecord] = {}
    for record in [*front, *finished]:
        chosen.setdefault(pareto.group_key(record), record)
    return list(chosen.values())[:k]


def _labelled(records: Sequence[TrialRecord], finished: Sequence[TrialRecord], label: str) -> list[TrialRecord]:
    """The finished trials labelled ``label``, one per distinct point (best first)."""
    found: dict[str, TrialRecord] = {}
    for record in finished:
        if record.label == label:
            found.setdefault(pareto.group_key(record), record)
    if not found:
        known = sorted({str(r.label) for r in records if r.label})
        raise UserError(f"--include/--against: no finished trial is labelled {label!r} (labels in this run: "
                        f"{', '.join(known) or 'none'})")
    return list(found.values())


def _below(value: Any, limit: Any) -> bool:
    return isinstance(value, (int, float)) and isinstance(limit, (int, float)) and value < limit


def study_objectives(config: Any) -> pareto.Objectives:
    """The study's (mAP, cost) pair for fronts; mAP vs FLOPs when it has one objective."""
    metrics = tuple(o.metric for o in config.objectives)
    return metrics if len(metrics) == 2 and "map" in metrics else pareto.MAP_FLOPS


def long_budget(train_config: Any, factor: float) -> tuple[int | None, float | None]:
    """The study's budget (``steps`` and/or ``seconds`` of its ``TrainConfig``) times ``factor``."""
    steps = None if train_config.steps is None else max(1, round(train_config.steps * factor))
    seconds = None if train_config.seconds is None else train_config.seconds * factor
    return steps, seconds


def study_trainer(config: Any, factor: float, save_dir: Path | None = None, device: str | None = None,
                  progress: bool = False) -> Trainer:
    """Train with the study's dataset and recipe at ``factor`` times its budget; with ``save_dir``, each
    trained model is saved there as ``trial<number>_seed<seed>.pt`` (``number``: the picked trial's). ``device``:
    train there instead of the study's ``train.device`` (``machine.resolve_device``: cpu, cuda[:N], auto);
    ``progress``: a bar over each training's steps."""
    from scalesearch.training.checkpoint import save_checkpoint
    from scalesearch.search.objective import dataset_pairs
    from scalesearch.spec import DetectorSpec
    from scalesearch.training.train import train_and_evaluate

    train_data, val_data = dataset_pairs(config.dataset)
    steps, seconds = long_budget(config.train_config, factor)

    def train(spec: dict[str, Any], seed: int, number: int) -> Trained:
        cfg = dataclasses.replace(config.trial_train_config(seed), steps=steps, seconds=seconds)
        if device is not None:
            cfg = dataclasses.replace(cfg, device=device)
        start = time.perf_counter()
        result = train_and_evaluate(DetectorSpec.from_dict(spec), train_data, val_data, cfg, progress=progress,
                                    keep_model=save_dir is not None)
        if save_dir is not None and result.model is not None:
            save_checkpoint(save_dir / f"trial{number}_seed{seed}.pt", result.model, result.spec,
                            _checkpoint_info(result, seed, config))
        return _outcome(result, time.perf_counter() - start)

    return train


def _checkpoint_info(result: Any, seed: int, config: Any, **extra: Any) -> dict[str, Any]:
    """What a retrained model's checkpoint carries beside its weights: metrics, steps, seed, data, classes."""
    info: dict[str, Any] = {"metrics": result.metrics, "steps": result.steps, "seed": seed,
                            "data": str(config.dataset.path), **extra}
    if result.info is not None:
        info |= {"category_names": result.info.category_names, "label_to_category": result.info.label_to_category}
    return info


def _outcome(result: Any, seconds: float) -> Trained:
    """A ``train.TrainResult`` as a ``Trained``: the scored, raw and EMA mAP, the wall seconds, the learning curve."""
    metrics = result.metrics
    curve = {int(step): float(m["map"]) for step, m in sorted(result.intermediate.items()) if "map" in m}
    return Trained(float(metrics["map"]), metrics.get("map_raw"), metrics.get("map_ema"), round(seconds, 2), curve)


def frozen_trainer(config: Any, factor: float, cache_dir: Path | None, device: str | None = None,
                   progress: bool = False, log: Callable[[str], None] = lambda line: None,
                   built: dict[str, float] | None = None, save_dir: Path | None = None) -> Trainer:
    """As ``study_trainer``, with the study's pretrained backbone frozen instead of fine-tuned: its features are
    computed once per resolution (``feature_cache.FeatureCache`` under ``cache_dir``, the ``cached`` estimator's
    files, so a rerun reads them back) and the feature network and heads train on them with the same recipe, seeded
    batches and initial weights (``cached.train_on_features``): a point's seed s here pairs with its seed s there.
    What differs from fine-tuning besides the backbone's gradient: its features are stored as float16, its
    BatchNorm uses its loaded statistics, and gradient clipping sees the trained parts only. A training's wall
    seconds exclude building a cache entry (once per resolution: logged, and added to ``built`` as
    ``"<backbone> <R> px": seconds``). ``train.threads`` applies as in ``study_trainer``. ``save_dir``: each
    trained model is saved there as a whole detector (the spec's pretrained backbone, as loaded, with the trained
    feature network and heads of the scored weights) in ``trial<number>_seed<seed>.pt``, for ``scalesearch export``."""
    import torch

    from scalesearch.search.estimators.cached import train_on_features
    from scalesearch.search.objective import dataset_pairs
    from scalesearch.spec import DetectorSpec
    from scalesearch.training.feature_cache import FeatureCache, check_augmentation

    check_augmentation(config.train_config.scale_range)
    train_data, val_data = dataset_pairs(config.dataset)
    steps, seconds = long_budget(config.train_config, factor)
    cache = FeatureCache(cache_dir, limit=int(config.search.cache_gb * 2**30), progress=progress)

    def train(spec: dict[str, Any], seed: int, number: int) -> Trained:
        cfg = dataclasses.replace(config.trial_train_config(seed), steps=steps, seconds=seconds)
        if device is not None:
            cfg = dataclasses.replace(cfg, device=device)
        detector = DetectorSpec.from_dict(spec)
        before = torch.get_num_threads()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        try:
            data = cache.get(detector, train_data, val_data, cfg)
            if data.built:
                log(f"feature cache {detector.backbone} {detector.resolution} px built in {data.seconds:.1f} s")
                if built is not None:
                    built[f"{detector.backbone} {detector.resolution} px"] = round(data.seconds, 1)
            start = time.perf_counter()
            result = train_on_features(detector, data, cfg, progress=progress)
        finally:
            torch.set_num_threads(before)
        wall = time.perf_counter() - start
        if save_dir is not None:
            _save_whole(save_dir / f"trial{number}_seed{seed}.pt", result, seed, config)
        return _outcome(result, wall)

    return train


def _save_whole(path: Path, result: Any, seed: int, config: Any) -> None:
    """A frozen-backbone training (``result.model``: feature network and heads) saved as a whole detector: the
    pretrained backbone loaded as the training saw it, the trained parts copied in."""
    from scalesearch.model import build_detector
    from scalesearch.training.checkpoint import save_checkpoint

    whole = build_detector(result.spec, weights=True)
    for name in ("fpn", "class_net", "box_net"):
        getattr(whole, name).load_state_dict(getattr(result.model, name).state_dict())
    save_checkpoint(path, whole, result.spec, _checkpoint_info(result, seed, config, backbone="frozen"))


def _check(top_k: int, factor: float, seeds: int, paired: bool = False) -> None:
    """``paired``: the picks are compared with labelled trials (or per rung), so one point is enough."""
    if top_k < (1 if paired else 2):
        raise UserError(f"--top-k: must be >= {1 if paired else 2} "
                        f"{'' if paired else 'for a rank correlation (or 1 with --against, --include or --per-rung)'}"
                        f", but got {top_k}")
    if not factor > 0:
        raise UserError(f"--factor: must be > 0, but got {factor}")
    if seeds < 1:
        raise UserError(f"--seeds: must be >= 1, but got {seeds}")


def check_resumable(done: list[FidelityRecord], factor: float, seeds: int, path: Path) -> None:
    """A rerun must ask for the budget ``fidelity.json`` holds, or it would mix budgets in one ranking; it may
    ask for more seeds (only the missing ones are trained), never fewer. Records of unpaired seeds (written
    before paired seeds) cannot be extended with paired ones."""
    for record in done:
        if not record.paired:
            raise UserError(f"{path}: holds records of unpaired seeds (written by an older scalesearch); "
                            f"retrain into a copy of the run folder without it, or move the file away")
        if record.factor != factor or len(record.seeds) > seeds:
            raise UserError(f"{path}: holds records at --factor {record.factor:g} --seeds {len(record.seeds)}, "
                            f"but got --factor {factor:g} --seeds {seeds}; use those (or more seeds) or move the "
                            f"file away")


def _train_point(job: tuple) -> Trained:
    """One (point, seed) in a worker process: (config, factor, spec, seed, threads, save_dir, number, device) ->
    Trained."""
    import torch

    config, factor, spec, seed, threads, save_dir, number, device = job
    torch.set_num_threads(threads)
    return Trained.of(study_trainer(config, factor, save_dir, device)(spec, seed, number))


def _jobs(todo: list) -> list[tuple[str, Any, int]]:
    """(group, record, seed) in seed-major order: every point's first seed, then every point's second, ... so
    that a run stopped early holds complete paired seeds over all points."""
    return sorted(((group, record, seed) for group, record, seeds in todo for seed in seeds), key=lambda job: job[2])


def retrain(run_dir: str | Path, top_k: int = 3, factor: float = 4.0, seeds: int = 1,
            trainer: Trainer | None = None, log: Callable[[str], None] = lambda line: None,
            workers: int = 1, include: Sequence[str] = (), against: str | None = None, save: bool = False,
            latency: bool | None = None, per_rung: bool = False,
            remeasure: bool = False, command: str | None = None, file: str = FILE,
            numbers: Sequence[int] = (), first_seed: int | None = None,
            device: str | None = None, reuse: str | Path | None = None, progress: bool = False) -> list[FidelityRecord]:
    """Retrain the ``pick(top_k, include, against, per_rung)`` points (fronts of the study's objectives) of a finished
    run at ``factor`` times its budget over ``seeds`` paired seeds (the study's seed and the next ones, the same for
    every point: seed s draws the same images, augmentations and per-part initial weights everywhere, so points
    compare seed by seed); ``fidelity.json`` is rewritten after each (point, seed), seeds already in it are skipped,
    and each trained seed adds a ``history`` entry (``command``: what to show for this call, the time it started, the
    machine). Seeds are trained seed-major (every point's first, then every point's second, ...). ``trainer`` replaces real
    training (tests). ``workers`` > 1 trains points in that many processes (cores divided between them). ``save``:
    keep every trained model as ``RUN/fidelity_checkpoints/trial<N>_seed<S>.pt`` (for ``scalesearch export``); a
    point with nothing left to train and no checkpoint of any recorded seed there (checkpoints are not committed:
    a resumed or reused run) has its first seed trained again for one after the rest, its mAP logged beside the
    recorded one (the record is not changed): one more training per such point.
    ``latency`` (default: when the study measures latency): after all training, measure each retrained point's
    latency again by the study's settings, interleaved over rounds under the latency lock (``measure_latencies``;
    ``remeasure``: even when every point has one). ``file``: the records file in the run folder (``retrain_longer``
    keeps another budget in ``fidelity_x<F>.json``); ``numbers``: retrain these trials (and the ``include`` labels)
    instead of the picks; ``first_seed``: the paired seeds are ``first_seed`` and the next ones (default: the
    study's seed); ``device``: train there (``study_trainer``; a GPU's mAP at the same step budget stands beside
    the CPU's, its wall time does not); ``reuse``: another run folder of the same data and recipe whose records file
    already holds some picked points at this budget: their seeds are copied, not trained (``reuse_trained``);
    ``progress``: a bar over the (point, seed) trainings, the log lines printed above it; with one worker it also
    names the running training and shows a bar over its steps. Returns every record in the file."""
    from scalesearch.config import load_study

    _check(top_k, factor, seeds, paired=bool(include or against or per_rung or numbers))
    run_dir = Path(run_dir)
    path = run_dir / file
    records = load_records(run_dir)  # the run's own files first: a damaged one stops here, before anything else
    done = load_fidelity(run_dir, file)
    check_resumable(done, factor, seeds, path)
    config = load_study(run_dir / "study.yaml")
    steps, seconds = long_budget(config.train_config, factor)
    save_dir = run_dir / checkpoints_dir(file) if save else None
    todo = []
    picked = _numbered(records, numbers, include) if numbers else \
        pick(records, top_k, include, against, study_objectives(config), per_rung)
    wanted = tuple((config.seed if first_seed is None else first_seed) + i for i in range(seeds))
    if reuse is not None:
        done = reuse_trained(run_dir, config, Path(reuse), picked, records, done, factor, wanted, file, log)
    refits = []
    for record in picked:
        group = pareto.group_key(record)
        had = next((d for d in done if d.group == group), None)
        missing = tuple(seed for seed in wanted if had is None or seed not in had.seeds)
        if missing:
            todo.append((group, record, missing))
        else:
            log(f"{group}: already in {path}, skipped")
        if save_dir is not None and had is not None and not missing and wanted[0] in had.seeds and \
                not any((save_dir / f"trial{had.number}_seed{seed}.pt").is_file() for seed in had.seeds):
            refits.append((group, had, wanted[0], had.maps[had.seeds.index(wanted[0])]))

    batch = new_batch(command)
    if progress:
        log = _above_bars(log)

    def finish(group: str, seed: int, outcome: Trained) -> None:
        """Record a (point, seed) as soon as it is trained (a crash loses at most the running ones)."""
        record = next(r for g, r, _ in todo if g == group)
        had = next((d for d in done if d.group == group), None)
        if had is not None:
            done.remove(had)
        proxy = [r.get("map") for r in pareto.measurements(records) if pareto.group_key(r) == group]
        done.append(merged(had, one_seed(
            FidelityRecord(group, record.number, dict(record.spec), float(record.flops), statistics.fmean(proxy),
                           factor, steps, seconds, (), (), label=record.label), config, seed, outcome, batch)))
        write_json_atomic(path, [d.to_json() for d in done])
        both = "" if outcome.map_raw is None or outcome.map_ema is None else \
            f" (raw {outcome.map_raw:.4f}, EMA {outcome.map_ema:.4f})"
        log(f"{group} seed {seed}: long-budget mAP {outcome.map:.4f}{both}; proxy mAP {done[-1].proxy_map:.4f}")

    jobs = _jobs(todo)
    bar = _bar(jobs, progress)
    try:
        if workers > 1 and trainer is None and len(jobs) > 1:
            _in_processes(config, factor, jobs, workers, finish, save_dir, device, bar)
        else:
            for group, record, seed in jobs:
                bar.set_postfix_str(f"trial {record.number} seed {seed}")
                trainer = trainer or study_trainer(config, factor, save_dir, device, progress)
                finish(group, seed, Trained.of(trainer(record.spec, seed, record.number)))
                bar.update(1)
    finally:
        bar.close()
    for group, row, seed, recorded in refits:  # --save on seeds recorded without a checkpoint (committed runs)
        trainer = trainer or study_trainer(config, factor, save_dir, device, progress)
        again = Trained.of(trainer(row.spec, seed, row.number)).map
        same = "the same" if again == recorded else f"{again - recorded:+.2g} from it"
        log(f"{group} seed {seed}: trained again for its checkpoint ({save_dir.name}/trial{row.number}_seed{seed}.pt"
            f", not recorded anew): mAP {again:.4f}, recorded {recorded:.4f} ({same})")
    if config.measures_latency if latency is None else latency:
        measure_latencies(run_dir, config, log, again=remeasure, file=file)
        done = load_fidelity(run_dir, file)
    return done


def _first_difference(a: Any, b: Any, prefix: str) -> str | None:
    """The first key (dotted, under ``prefix``) where two nested dicts differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key), b.get(key), f"{prefix}.{key}")
            if found:
                return found
        return None
    return None if a == b else prefix


def reuse_trained(run_dir: Path, config: Any, other: Path, picked: Sequence[TrialRecord],
                  records: Sequence[TrialRecord], done: list[FidelityRecord], factor: float, wanted: tuple[int, ...],
                  file: str = FILE, log: Callable[[str], None] = lambda line: None) -> list[FidelityRecord]:
    """``done`` with the picked points that ``other``'s records file holds at ``factor`` (and this run's file does
    not) copied in: the seeds in ``wanted``, renumbered to this run's trial, its proxy mAP this run's, each history
    entry marked ``reused_from`` and the latency dropped (measured again beside this run's points). Refused (one
    line naming the key) unless both studies train the same way on the same data: a training is a function of the
    spec, the seed, the data and the recipe only, so the copied seeds are what training them here would give (on
    another machine's floating point). The file is written before anything is trained."""
    from scalesearch.config import load_study
    from scalesearch.machine import portable_path

    source = other / file
    if not source.is_file():
        raise UserError(f"--reuse: {portable_path(source)} not found: nothing trained to reuse")
    theirs = load_study(other / "study.yaml")
    mine_keys = {"seed": config.seed, "dataset": config.dataset.model_dump(), "train": dataclasses.asdict(config.train_config)}
    their_keys = {"seed": theirs.seed, "dataset": theirs.dataset.model_dump(), "train": dataclasses.asdict(theirs.train_config)}
    for side in (mine_keys, their_keys):
        path = side["dataset"].get("path")
        side["dataset"]["path"] = None if path is None else str(Path(path).resolve())
    differs = _first_difference(mine_keys, their_keys, "study")
    if differs:
        raise UserError(f"--reuse: {portable_path(other / 'study.yaml')} trains differently from "
                        f"{portable_path(run_dir / 'study.yaml')} ({differs.removeprefix('study.')} differs): its "
                        "trainings are not this run's")
    rows = {r.group: r for r in load_fidelity(other, file) if r.factor == factor and r.paired}
    have = {d.group for d in done}
    copied = 0
    for record in picked:
        group = pareto.group_key(record)
        row = rows.get(group)
        if group in have or row is None or row.spec != dict(record.spec):
            continue
        keep = [i for i, seed in enumerate(row.seeds) if seed in wanted]
        if not keep:
            continue

        def pick_(values: Any) -> Any:
            return None if values is None else tuple(values[i] for i in keep)

        proxy = [r.get("map") for r in pareto.measurements(records) if pareto.group_key(r) == group]
        history = tuple({**h, "reused_from": portable_path(source)} for h in row.history
                        if h.get("seed") in {row.seeds[i] for i in keep})
        done.append(dataclasses.replace(
            row, number=record.number, proxy_map=statistics.fmean(proxy), label=record.label, latency=None,
            seeds=pick_(row.seeds), maps=pick_(row.maps), raw_maps=pick_(row.raw_maps), ema_maps=pick_(row.ema_maps),
            wall_seconds=pick_(row.wall_seconds), curves=pick_(row.curves), history=history))
        copied += len(keep)
        log(f"{group}: {len(keep)} seed(s) reused from {portable_path(source)}")
    if copied:
        write_json_atomic(run_dir / file, [d.to_json() for d in done])
    return done


def checkpoints_dir(file: str) -> str:
    """Where ``--save`` keeps the models of the records file ``file``: ``fidelity_checkpoints`` for
    ``fidelity.json``, ``fidelity_x16_checkpoints`` for ``fidelity_x16.json`` (trial and seed alone would clash)."""
    return CHECKPOINTS if file == FILE else f"{Path(file).stem}_checkpoints"


def _numbered(records: Sequence[TrialRecord], numbers: Sequence[int], include: Sequence[str]) -> list[TrialRecord]:
    """The finished trials numbered ``numbers`` and the points labelled ``include``, one per distinct point."""
    finished = pareto.feasible(records)
    by_number = {r.number: r for r in finished}
    missing = [n for n in numbers if n not in by_number]
    if missing:
        raise UserError(f"no finished trial numbered {missing[0]} in this run")
    picked = [by_number[n] for n in numbers]
    for label in include:
        picked += _labelled(records, finished, label)
    return list({pareto.group_key(r): r for r in picked}.values())


def retrain_longer(run_dir: str | Path, factor: float, seeds: int = 3, trainer: Trainer | None = None,
                   log: Callable[[str], None] = lambda line: None, workers: int = 1, save: bool = False,
                   command: str | None = None, device: str | None = None,
                   progress: bool = False) -> list[FidelityRecord]:
    """Does the verdict last? The baseline and the most accurate other point of ``fidelity.json``
    (``lasting_points``) retrained at ``factor`` times the study's budget (more than ``fidelity.json``'s) on
    ``seeds`` paired seeds into ``RUN/fidelity_x<factor>.json`` (resumable as ``retrain``). The seeds are fresh ones,
    after every seed of ``fidelity.json``: the point was picked as the best on those, and reusing them would favour
    it. Latency is not measured again (the report takes each point's from ``fidelity.json``: the same network,
    measured side by side with the others there). Returns the file's records."""
    run_dir = Path(run_dir)
    main = load_fidelity(run_dir)
    base, best = lasting_points(main)
    if not factor > main[0].factor:
        raise UserError(f"--longer: must exceed the budget of {FILE} ({main[0].factor:g}x), but got {factor:g}")
    file = longer_file(factor)
    first_seed = 1 + max(seed for r in main for seed in r.seeds)
    log(f"does it last: {base.label} (trial {base.number}) and trial {best.number} (the most accurate other point at "
        f"{main[0].factor:g}x) at {factor:g}x on seeds {first_seed}-{first_seed + seeds - 1} into {run_dir / file}")
    return retrain(run_dir, 1, factor, seeds, trainer, log, workers, numbers=[base.number, best.number], save=save,
                   latency=False, command=command, file=file, first_seed=first_seed, device=device,
                   progress=progress)


def retrain_frozen(run_dir: str | Path, numbers: Sequence[int] = (), seeds: int | None = None,
                   trainer: Trainer | None = None, log: Callable[[str], None] = lambda line: None,
                   command: str | None = None, device: str | None = None, progress: bool = False,
                   built: dict[str, float] | None = None, save: bool = False, against: str | None = None,
                   top_k: int = 3, factor: float = 4.0, latency: bool | None = None,
                   remeasure: bool = False, reuse: str | Path | None = None) -> list[FidelityRecord]:
    """Retrain with the pretrained backbone frozen (``frozen_trainer``) into ``RUN/fidelity_frozen.json`` (resumable
    as ``retrain``, seed-major), in one of two modes.

    Paired with fine-tuning (``against`` None): would a frozen backbone do better than fine-tuning it? The points of
    ``fidelity.json`` (or the trials ``numbers`` among them) at its budget on its first ``seeds`` seeds (default: all
    of them), the same seeds, so that each (point, seed) pairs with its fine-tuned training. Latency is not measured
    again: the network is the same. Refused before any training (one line) unless fidelity.json's seeds are paired.

    As the retraining itself (``against`` a label): ``retrain``'s picks (the labelled trial and the ``top_k`` best
    front points cheaper than it) at ``factor`` times the study's budget on ``seeds`` paired seeds (default 1), their
    latency measured afterwards in interleaved rounds as ``retrain`` does (``latency``, ``remeasure``), so that
    ``report.baseline`` can judge them from this file alone: the cheap path from search to verdict. ``reuse``: another
    run folder of the same data and recipe whose ``fidelity_frozen.json`` holds some picked points at this budget (the
    baseline retrained frozen for another search of the space): their seeds are copied (``reuse_trained``).

    Both refuse (one line) a seconds budget (the cheaper frozen steps would get more of them) and a point without
    a pretrained backbone. ``built``: see ``frozen_trainer``; ``save``: keep every trained model, whole, as
    ``RUN/fidelity_frozen_checkpoints/trial<N>_seed<S>.pt`` (and train a recorded first seed again for its
    checkpoint when it has none, as ``retrain``). Returns the file's records."""
    from scalesearch.config import load_study

    run_dir = Path(run_dir)
    if against is not None:
        seeds = 1 if seeds is None else seeds
        _check_against(run_dir, numbers, against, top_k, factor, seeds)
        how: dict[str, Any] = {"against": against, "latency": latency, "remeasure": remeasure, "reuse": reuse}
        said = f"{against} and the {top_k} best front points cheaper than it at {factor:g}x on {seeds} paired seed(s)"
    else:
        if reuse is not None:
            raise UserError("--reuse: applies to --frozen-backbone with --against only (alone it pairs each seed "
                            "with this run's own fine-tuned training)")
        rows, factor, seeds, first = _paired_points(run_dir, numbers, seeds)
        top_k, how = 1, {"numbers": [r.number for r in rows], "latency": False, "first_seed": first}
        said = f"{len(rows)} point(s) of {FILE} at {factor:g}x on seeds {first}-{first + seeds - 1}"
    if trainer is None:
        save_dir = run_dir / checkpoints_dir(FROZEN_FILE) if save else None
        trainer = frozen_trainer(load_study(run_dir / "study.yaml"), factor, run_dir / "estimator" / "features",
                                 device, progress, log, built, save_dir)
    log(f"frozen backbone: {said} into {run_dir / FROZEN_FILE}")
    return retrain(run_dir, top_k, factor, seeds, trainer, log, save=save, command=command, file=FROZEN_FILE,
                   device=device, progress=progress, **how)


def _check_against(run_dir: Path, numbers: Sequence[int], against: str, top_k: int, factor: float,
                   seeds: int) -> None:
    """``retrain_frozen`` against a label: refused in one line before any training unless the study trains to a step
    budget and every point it would pick has a pretrained backbone."""
    from scalesearch.config import load_study

    if numbers:
        raise UserError("--trial: does not apply with --against (the points are picked against the label)")
    config = load_study(run_dir / "study.yaml")
    if config.train_config.seconds is not None:
        raise UserError(f"train.seconds: --frozen-backbone compares at a step budget, but the study trains for "
                        f"{config.train_config.seconds:g} s; give it train.steps only")
    _check(top_k, factor, seeds, paired=True)
    for record in pick(load_records(run_dir), top_k, (), against, study_objectives(config)):
        _pretrained(record.spec, record.number)


def _paired_points(run_dir: Path, numbers: Sequence[int],
                   seeds: int | None) -> tuple[list[FidelityRecord], float, int, int]:
    """``retrain_frozen`` paired with fine-tuning: (fidelity.json's points to retrain, its factor, the number of
    seeds, the first seed), refused in one line unless they can pair with their fine-tuned trainings."""
    main = load_fidelity(run_dir)
    if not main:
        raise UserError(f"{run_dir / FILE}: not found or empty; retrain the run first (`scalesearch fidelity`) or "
                        f"give --against LABEL")
    known = {r.number: r for r in main}
    missing = [n for n in numbers if n not in known]
    if missing:
        raise UserError(f"--trial: trial {missing[0]} is not in {run_dir / FILE} (it holds "
                        f"{', '.join(str(n) for n in known)})")
    rows = [known[n] for n in numbers] if numbers else main
    for row in rows:
        if not row.paired:
            raise UserError(f"{run_dir / FILE}: trial {row.number} holds unpaired seeds (an older scalesearch); "
                            f"--frozen-backbone pairs each seed with its fine-tuned training")
        if row.seconds is not None:
            raise UserError(f"train.seconds: --frozen-backbone compares at the same step budget, but {FILE} was "
                            f"trained to a seconds budget ({row.seconds:g} s); retrain with train.steps only")
        _pretrained(row.spec, row.number)
    shared = sorted(set.intersection(*(set(r.seeds) for r in rows)))
    if not shared:
        raise UserError(f"{run_dir / FILE}: its points share no seed, so no frozen training could pair with them")
    seeds = len(shared) if seeds is None else seeds
    if not 1 <= seeds <= len(shared) or shared[:seeds] != list(range(shared[0], shared[0] + seeds)):
        raise UserError(f"--seeds: must be 1..{len(shared)} (the consecutive seeds from {shared[0]} that every "
                        f"point of {FILE} holds), but got {seeds}")
    return rows, main[0].factor, seeds, shared[0]


def _pretrained(spec: Any, number: int) -> None:
    if dict(spec).get("weights", "none") == "none":
        raise UserError(f"--frozen-backbone: trial {number} has no pretrained backbone (spec.weights 'none'), so "
                        f"there is no backbone to freeze")


LATENCY_ROUNDS = 3


def measure_latencies(run_dir: str | Path, config: Any, log: Callable[[str], None] = lambda line: None,
                      measure: Callable[[Any, Any], Any] | None = None, rounds: int = LATENCY_ROUNDS,
                      again: bool = False, file: str = FILE) -> None:
    """Measure the latency of the retrained points by the study's ``latency`` settings and store it in their
    records: when any point has none (or ``again``), all of them, interleaved: ``rounds`` rounds, each measuring
    every point once (``scalesearch.measure.latency.measure_latency``, the lock held), and each point's samples pooled
    over the rounds. A shared machine's speed drifts by more than a point's own spread over minutes (measured
    here: the same spec 43 ms, then 56 ms a minute later), so points are compared only on measurements taken
    side by side. Done after all training, never while this run trains. ``measure`` replaces the measurement
    (tests)."""
    from scalesearch.measure import latency
    from scalesearch.spec import DetectorSpec

    run_dir = Path(run_dir)
    s = config.latency
    settings = latency.LatencySettings(s.runtime, s.threads, s.batch, s.warmup, s.runs)
    measure = measure or (lambda spec, settings_: latency.measure_latency(spec, settings_))
    rows = load_fidelity(run_dir, file)
    if not rows or (not again and all(row.latency is not None for row in rows)):
        return
    results: list[list[Any]] = [[] for _ in rows]
    for _ in range(rounds):
        for i, row in enumerate(rows):
            results[i].append(measure(DetectorSpec.from_dict(row.spec), settings))
    for i, row in enumerate(rows):
        pooled = _pooled(results[i], rounds)
        rows[i] = dataclasses.replace(row, latency=pooled)
        total = pooled["samples_ms"]["total"]
        median, iqr = latency.summarise(total)
        log(f"{row.group}: latency {median:.2f} ms (IQR {iqr:.2f}, {len(total)} calls over {rounds} rounds)")
    write_json_atomic(run_dir / file, [r.to_json() for r in rows])


def _pooled(results: list[Any], rounds: int) -> dict[str, Any]:
    """One point's measurements over the rounds as one ``LatencyResult`` JSON: samples concatenated, median and
    IQR of the pool, ``runs`` summed, ``rounds`` added."""
    from scalesearch.measure import latency
    out = results[-1].to_json()
    samples = {k: [x for r in results for x in r.to_json()["samples_ms"].get(k, [])] for k in out["samples_ms"]}
    stats = {k: latency.summarise(v) for k, v in samples.items() if v}
    out.update(samples_ms=samples, median_ms={k: round(v[0], 4) for k, v in stats.items()},
               iqr_ms={k: round(v[1], 4) for k, v in stats.items()}, runs=sum(r.to_json()["runs"] for r in results),
               rounds=rounds)
    return out


def _bar(jobs: list, progress: bool) -> Any:
    """The bar over a call's (point, seed) trainings (disabled without ``progress``)."""
    from tqdm import tqdm

    return tqdm(total=len(jobs), disable=not progress or not jobs, desc="retrain", unit="training", position=0,
                dynamic_ncols=True)


def _above_bars(log: Callable[[str], None]) -> Callable[[str], None]:
    """``log`` writing its lines above the progress bars (they are cleared and redrawn around it)."""
    from tqdm import tqdm

    def write(line: str) -> None:
        with tqdm.external_write_mode():
            log(line)

    return write


def _in_processes(config: Any, factor: float, jobs: list, workers: int, finish: Callable,
                  save_dir: Path | None = None, device: str | None = None, bar: Any = None) -> None:
    """Train in ``workers`` spawned processes, one job per (point, seed) so that the workers stay busy to the
    end; each seed is recorded as soon as it is in."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_train_point, (config, factor, dict(record.spec), seed, threads, save_dir,
                                              record.number, device)): (group, seed) for group, record, seed in jobs}
        for future in as_completed(futures):
            finish(*futures[future], future.result())
            if bar is not None:
                bar.update(1)


def new_batch(command: str | None) -> dict[str, str]:
    """The history fields of one retraining call: when it started, its command line, the machine."""
    return {"batch": _now(), "command": command or "retrain()", "machine": machine.describe()}


def one_seed(base: FidelityRecord, config: Any, seed: int, outcome: Trained, batch: dict[str, str]) -> FidelityRecord:
    """``base`` (a point's fields, no seeds) holding one trained paired seed, with its history entry."""
    train_config = config.train_config
    return dataclasses.replace(
        base, seeds=(seed,), maps=(outcome.map,), scored=train_config.scored if train_config.ema else "raw",
        raw_maps=_one(outcome.map_raw), ema_maps=_one(outcome.map_ema), paired=True,
        wall_seconds=_one(outcome.wall_seconds), history=({**batch, "seed": seed, "finished": _now()},),
        curves=None if outcome.curve is None else ({str(k): v for k, v in sorted(outcome.curve.items())},))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _one(value: float | None) -> tuple[float, ...] | None:
    return None if value is None else (float(value),)


def merged(had: FidelityRecord | None, new: FidelityRecord) -> FidelityRecord:
    """``new`` (one seed) added to the point's earlier record: per-seed fields in seed order, histories joined;
    a per-seed field that either side lacks becomes None, except learning curves: a seed without one has None."""
    if had is None:
        return new
    order = sorted(range(len(had.seeds) + 1), key=lambda i: (*had.seeds, *new.seeds)[i])

    def joined(key: str) -> tuple | None:
        old, add = getattr(had, key), getattr(new, key)
        if old is None or add is None:
            return None
        both = (*old, *add)
        return tuple(both[i] for i in order)

    per_seed = {key: joined(key) for key in ("seeds", "maps", "raw_maps", "ema_maps", "wall_seconds")}
    curves = (*(had.curves or (None,) * len(had.seeds)), *(new.curves or (None,) * len(new.seeds)))
    per_seed["curves"] = tuple(curves[i] for i in order) if any(c is not None for c in curves) else None
    return dataclasses.replace(new, **per_seed, history=(*had.history, *new.history), latency=had.latency,
                               rule=had.rule)
