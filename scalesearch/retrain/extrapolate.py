"""Extrapolation, the retrainer: does a searched scaling rule transfer upward? ``extrapolate`` applies two
rules — the best searched one and a labelled reference (the paper's rule, enqueued by the study) — at a FLOPs
budget above every rung the study searched, and trains both at the long budget over several seeds.

Each rule is the trial's sampled coefficients (``width_growth``, ``fpn_depth_growth``, ...) with ``phi`` raised to
the largest value on a 0.05 grid whose spec fits ``flops`` (bisection; FLOPs grow with phi for growth factors
above 1). "The best searched rule" is the non-labelled point with the highest long-budget mAP at the study's top
rung in ``fidelity.json`` (``scalesearch fidelity --per-rung``), else the proxy's best there. Records go to
``RUN/extrapolation.json`` in the fidelity record format, one per rule, written after each one (a rerun
resumes and never retrains a rule that is there); ``scalesearch report`` compares them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scalesearch import pareto
from scalesearch.errors import UserError
from scalesearch.extrapolate import FILE, SEARCHED, load_extrapolation
from scalesearch.fidelity import FidelityRecord, load_fidelity
from scalesearch.files import write_json_atomic
from scalesearch.records import TrialRecord, load_records
from scalesearch.retrain.fidelity import (Trained, Trainer, check_resumable, long_budget, merged, new_batch, one_seed,
                                          study_trainer)

GRID = 0.05  # phi resolution of the fit to the budget


def top_rung(records: list[TrialRecord]) -> float | None:
    rungs = [r.budget_flops for r in records if r.budget_flops is not None]
    return max(rungs) if rungs else None


def choose_rules(run_dir: Path, records: list[TrialRecord], against: str,
                 fidelity: list[FidelityRecord] | None = None) -> list[tuple[str, TrialRecord]]:
    """[(label, trial)] for the best searched rule at the top rung and the ``against`` rule (that rung's);
    ``fidelity``: the records of ``RUN/fidelity.json`` when already loaded."""
    finished = pareto.feasible(records)
    rung = top_rung(finished)
    at_top = [r for r in finished if r.budget_flops == rung]
    reference = [r for r in at_top if r.label == against] or [r for r in finished if r.label == against]
    if not reference:
        known = sorted({str(r.label) for r in records if r.label})
        raise UserError(f"--against: no finished trial is labelled {against!r} (labels in this run: "
                        f"{', '.join(known) or 'none'})")
    searched = [r for r in at_top if r.label != against]
    if not searched:
        raise UserError(f"{run_dir}: no finished searched trial at the top FLOPs rung to extrapolate")
    rows = load_fidelity(run_dir) if fidelity is None else fidelity
    retrained = {row.number: row.long_map for row in rows if row.label is None}
    by_long = [r for r in searched if r.number in retrained]
    best = (max(by_long, key=lambda r: retrained[r.number]) if by_long else
            max(searched, key=lambda r: r.get("map")))
    return [(SEARCHED, best), (against, max(reference, key=lambda r: r.get("map")))]


def fit_phi(resolve: Callable[[float], Any], flops: float, start: float, count: Callable[[Any], float],
            span: float = 4.0) -> tuple[float, Any, float]:
    """(phi, spec, FLOPs): the largest phi on the ``GRID`` in [start, start + span] whose spec's FLOPs fit
    ``flops``, by bisection (FLOPs nondecreasing in phi). ``UserError`` when even ``start`` does not fit."""
    low, high = 0, int(round(span / GRID))
    phi_at = lambda i: round(start + i * GRID, 6)  # noqa: E731
    first = resolve(phi_at(0))
    if count(first) > flops:
        raise UserError(f"--flops: {flops:.3g} is below the rule's FLOPs at its searched phi {start:g}; give a "
                        "budget above the study's top rung")
    if count(resolve(phi_at(high))) <= flops:
        low = high
    while high - low > 1:
        mid = (low + high) // 2
        if count(resolve(phi_at(mid))) <= flops:
            low = mid
        else:
            high = mid
    spec = resolve(phi_at(low))
    return phi_at(low), spec, count(spec)


def extrapolate(run_dir: str | Path, flops: float, seeds: int = 4, factor: float = 4.0, against: str = "paper rule",
                trainer: Trainer | None = None, count: Callable[[Any], float] | None = None,
                log: Callable[[str], None] = lambda line: None, command: str | None = None) -> list[FidelityRecord]:
    """Fit both rules to ``flops``, train each at ``factor`` times the study's budget over ``seeds`` paired seeds
    (0 .. seeds-1, the same for both rules), and record each seed in ``RUN/extrapolation.json`` as soon as it is
    trained (resumable; ``command`` goes into its history). ``trainer`` / ``count`` replace training and FLOPs
    counting (tests). Returns every record in the file."""
    from scalesearch.config import load_study
    from scalesearch.search.space import SearchSpace

    if not flops > 0 or not math.isfinite(flops):
        raise UserError(f"--flops: must be a positive FLOPs budget such as 2B, but got {flops}")
    if seeds < 1:
        raise UserError(f"--seeds: must be >= 1, but got {seeds}")
    run_dir = Path(run_dir)
    # The run's own files first: a damaged one stops here, before the study is validated or anything is counted.
    records = load_records(run_dir)
    retrained = load_fidelity(run_dir)
    done = load_extrapolation(run_dir)
    config = load_study(run_dir / "study.yaml")
    rung = top_rung(pareto.feasible(records))
    if rung is not None and flops <= rung:
        raise UserError(f"--flops: must be above the study's top rung ({rung:.3g}) to extrapolate, but got {flops:.3g}")
    if count is None:
        from scalesearch.measure.cost import count_cost  # imports torch: only once the inputs are known to be sound

        count = lambda spec: float(count_cost(spec).flops)  # noqa: E731
    space = SearchSpace(config)
    check_resumable(done, factor, seeds, run_dir / FILE)
    steps, seconds = long_budget(config.train_config, factor)
    batch = new_batch(command)
    for label, record in choose_rules(run_dir, records, against, retrained):
        params = {k: v for k, v in record.params_sampled.items() if k != "budget_flops"}
        num_classes = int(record.spec.get("num_classes", 90))
        resolve = lambda phi, p=params: space.resolve({**p, "phi": phi}, num_classes)  # noqa: E731
        phi, spec, spec_flops = fit_phi(resolve, flops, float(params.get("phi", 0.0)), count)
        group = f"{label} phi={phi:g}"
        had = next((d for d in done if d.group == group), None)
        wanted = tuple(range(seeds))
        missing = tuple(s for s in wanted if had is None or s not in had.seeds)
        if not missing:
            log(f"{group}: already in {run_dir / FILE}, skipped")
            continue
        trainer = trainer or study_trainer(config, factor)
        rule = {k: v for k, v in params.items() if k in space.rule_fields} | {"phi": phi, "budget_flops": flops}
        base = FidelityRecord(group, record.number, spec.to_dict(), spec_flops, float(record.get("map")), factor,
                              steps, seconds, (), (), label=label, rule=rule)
        for seed in missing:
            outcome = Trained.of(trainer(spec.to_dict(), seed, record.number))
            if had is not None:
                done.remove(had)
            had = merged(had, one_seed(base, config, seed, outcome, batch))
            done.append(had)
            write_json_atomic(run_dir / FILE, [d.to_json() for d in done])
        log(f"{group}: {spec_flops / 1e9:.3f} GFLOPs, long-budget mAP {had.long_map:.4f} over {len(had.seeds)} seeds")
    return done
