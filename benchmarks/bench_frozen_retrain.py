"""Frozen or fine-tuned backbone at the long budget: does freezing the pretrained backbone change the mAP, the cost
of a retraining, and the verdict against the baseline?

A finished search-to-verdict run (``benchmarks/beat_lite0.py``) holds, in ``RUN/fidelity.json``, the baseline and
its front points retrained at 4x with the backbone fine-tuned, on paired seeds. This script retrains the same points
(or ``--trial`` ones) on the same seeds and budget with the backbone frozen (``scalesearch fidelity RUN
--frozen-backbone``: features computed once per resolution, then only the feature network and heads train; same
recipe, seeded batches and initial weights), so that each (point, seed) is a pair, and writes
``reports/benchmarks/frozen_retrain_<study>.json``:

- per point: both arms' per-seed mAP (EMA scored), wall seconds per training and learning curves;
- frozen minus fine-tuned per point: paired differences, the exact two-sided sign-flip test, Holm over the points;
- the verdicts against the baseline with the frozen trainings (the report's tests, ``report.baseline.duels``, on
  the same latencies, measured once for each network in fidelity.json) beside the fine-tuned ones;
- the wall time of the whole call (feature caches included) against the fine-tuned trainings' sum.

Run under the CPU lock (resumable: trainings already in ``RUN/fidelity_frozen.json`` are kept):

    flock /tmp/scalesearch-cpu.lock python benchmarks/bench_frozen_retrain.py reports/runs/supernet_treecrowns
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from render import begin_record, save_record  # noqa: E402


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="run folder holding fidelity.json (e.g. reports/runs/supernet_treecrowns)")
    p.add_argument("--trial", dest="trials", action="append", type=int, default=[], metavar="N",
                   help="only trial N of fidelity.json (repeatable; default every point)")
    p.add_argument("--seeds", type=int, default=None, help="the first S seeds of fidelity.json (default all)")
    p.add_argument("--label", default="EfficientDet-Lite0", help="the baseline's label (default EfficientDet-Lite0)")
    return p


def on_seeds(row, seeds):
    """``row`` (a ``FidelityRecord``) holding only ``seeds`` (those it has), every per-seed field cut alike."""
    index = [row.seeds.index(s) for s in seeds if s in row.seeds]

    def cut(values):
        return None if values is None else tuple(values[i] for i in index)

    return dataclasses.replace(row, seeds=cut(row.seeds), maps=cut(row.maps), raw_maps=cut(row.raw_maps),
                               ema_maps=cut(row.ema_maps), wall_seconds=cut(row.wall_seconds), curves=cut(row.curves))


def arm(row, seeds: list[int]) -> dict:
    """One arm of a point on ``seeds`` (the seeds both arms trained): per-seed mAP, wall seconds and curve."""
    row = on_seeds(row, seeds)
    return {"seeds": list(row.seeds), "maps": list(row.maps),
            "wall_seconds": None if row.wall_seconds is None else list(row.wall_seconds),
            "curves": None if row.curves is None else list(row.curves)}


def paired(fine: dict, frozen: dict) -> dict:
    """frozen minus fine-tuned on the common seeds: differences, mean, and the two-sided sign-flip test."""
    from scalesearch.report.stats import flip_min_p, sign_flip_p

    d = [b - a for a, b in zip(fine["maps"], frozen["maps"])]
    p, exact = sign_flip_p(d)
    return {"differences": d, "mean": statistics.fmean(d), "higher": sum(x > 0 for x in d), "p": p, "exact": exact,
            "min_p": flip_min_p(len(d))}


def verdict_rows(run, label: str) -> list[dict]:
    """Each retrained point against the baseline (``report.baseline.duels``, Holm over the points)."""
    from beat_lite0 import duel_fields
    from scalesearch.report.baseline import duels

    return [{"number": d.point.number, "seeds": list(d.common), **duel_fields(d)} for d in duels(run, label)]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from scalesearch.fidelity import FROZEN_FILE, load_fidelity
    from scalesearch.machine import portable_command
    from scalesearch.report.baseline import quartiles
    from scalesearch.report.runs import load_run
    from scalesearch.report.stats import holm_adjusted, holm_floors
    from scalesearch.retrain.fidelity import retrain_frozen

    run_dir = Path(args.run).resolve()
    rel = run_dir.relative_to(ROOT).as_posix() if run_dir.is_relative_to(ROOT) else args.run
    record = begin_record(f"frozen_retrain_{run_dir.name}", run=rel, label=args.label, trials=args.trials,
                          seeds_asked=args.seeds)
    same = [*(f"--trial={n}" for n in args.trials), *([f"--seeds={args.seeds}"] if args.seeds else [])]
    start, cpu = time.perf_counter(), time.process_time()
    built: dict[str, float] = {}
    frozen_rows = retrain_frozen(run_dir, args.trials, args.seeds, log=lambda line: print(line, flush=True),
                                 command=portable_command(["scalesearch", "fidelity", rel, "--frozen-backbone", *same]),
                                 progress=True, built=built)
    record["call"] = {"wall_seconds": round(time.perf_counter() - start, 1),
                      "cpu_seconds": round(time.process_time() - cpu, 1), "cache_build_seconds": built}

    run = load_run(run_dir)
    recipe = run.config.train_config
    record["recipe"] = {"backbone_lr_mult": recipe.backbone_lr_mult, "freeze_backbone_bn": recipe.freeze_backbone_bn,
                        "scale_range": list(recipe.scale_range), "flip_prob": recipe.flip_prob}
    frozen = {r.number: r for r in load_fidelity(run_dir, FROZEN_FILE)}
    fine = {r.number: r for r in run.fidelity}
    seeds = sorted(set.intersection(*(set(r.seeds) for r in frozen_rows)))
    points = []
    for number, row in frozen.items():
        if number not in fine:
            continue
        q = quartiles(fine[number])
        both = sorted(set(row.seeds) & set(fine[number].seeds))
        a, b = arm(fine[number], both), arm(row, both)
        points.append({"number": number, "label": row.label, "spec": row.spec, "factor": row.factor,
                       "steps": row.steps, "scored": row.scored, "torch_latency_ms": q and round(q[1], 3),
                       "finetuned": a, "frozen": b, "frozen_minus_finetuned": paired(a, b)})
    tests = [p["frozen_minus_finetuned"] for p in points]
    for test, holm, floor in zip(tests, holm_adjusted([t["p"] for t in tests]), holm_floors([t["min_p"] for t in tests])):
        test["holm_p"], test["holm_floor"] = holm, floor

    # Against the baseline: the report's duels on the seeds every frozen point holds, fine-tuned and frozen alike
    # (a frozen row keeps its fine-tuned twin's latency: the same network)
    shown = [r for r in run.fidelity if r.number in frozen]
    if any(r.label == args.label for r in shown) and len(shown) > 1:
        fine_run = dataclasses.replace(run, fidelity=[on_seeds(r, seeds) for r in shown])
        frozen_run = dataclasses.replace(run, fidelity=[
            on_seeds(dataclasses.replace(frozen[r.number], latency=r.latency), seeds) for r in shown])
        record["verdicts"] = {"seeds": seeds, "finetuned": verdict_rows(fine_run, args.label),
                              "frozen": verdict_rows(frozen_run, args.label)}
    record["points"] = points
    timed = [p for p in points if p["finetuned"]["wall_seconds"] and p["frozen"]["wall_seconds"]]
    record["finetuned_training_seconds"] = round(sum(sum(p["finetuned"]["wall_seconds"]) for p in timed), 1)
    record["frozen_training_seconds"] = round(sum(sum(p["frozen"]["wall_seconds"]) for p in timed), 1)
    # where each arm's trainings ran (one entry per seed's history): wall times of other sessions are not comparable
    record["finetuned_sessions"] = sorted({h.get("batch", "?") for n in frozen if n in fine for h in fine[n].history})
    save_record(record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
