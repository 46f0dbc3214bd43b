"""Quickstart-size detector (paper rule at phi = -2: 256 px) on the default synthetic data, 3 minutes.

Prints the val AP50 curve (evaluation time is not part of the budget), checks AP50 >= 0.5 and writes
``reports/benchmarks/quickstart_train.json`` (rendered by ``benchmarks/render.py``):

    flock /tmp/scalesearch-cpu.lock python benchmarks/bench_quickstart_train.py
"""

from __future__ import annotations

import argparse
import sys

from render import begin_record, save_record

from scalesearch.scaling import compound_spec
from scalesearch.training.train import TrainConfig, train_and_evaluate

PHI = -2.0
TARGET_MAP50 = 0.5


def run(minutes: float = 3.0, eval_every: int = 40, seed: int = 0, progress: bool = False, **recipe):
    """Train the quickstart model on the synthetic default data; returns (TrainResult, curve [(step, map50)])."""
    curve: list[tuple[int, float]] = []

    def on_eval(step: int, metrics: dict) -> None:
        curve.append((step, metrics["map50"]))
        print(f"  step {step:4d}  AP50 {metrics['map50']:.3f}  mAP {metrics['map']:.3f}", flush=True)

    cfg = TrainConfig(steps=None, seconds=minutes * 60, eval_every=eval_every, seed=seed, **recipe)
    result = train_and_evaluate(compound_spec(PHI), None, None, cfg, on_eval=on_eval, progress=progress)
    curve.append((result.steps, result.metrics["map50"]))
    return result, curve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--eval-every", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    args = parser.parse_args()
    spec = compound_spec(PHI)
    record = begin_record("quickstart_train", phi=PHI, resolution=spec.resolution, data="built-in synthetic default",
                          minutes=args.minutes, eval_every=args.eval_every, seed=args.seed, lr=args.lr,
                          batch_size=args.batch_size, target_map50=TARGET_MAP50)
    result, curve = run(args.minutes, args.eval_every, args.seed, lr=args.lr, batch_size=args.batch_size)
    m = result.metrics
    print(f"final: steps {result.steps}  train {result.train_seconds:.0f} s  {result.images_per_second:.1f} img/s  "
          f"AP50 {m['map50']:.3f}  mAP {m['map']:.3f}  (target AP50 >= {TARGET_MAP50})")
    record.update(steps=result.steps, train_seconds=round(result.train_seconds, 1),
                  eval_seconds=round(result.eval_seconds, 1), images_per_second=round(result.images_per_second, 2),
                  metrics=m, curve=[{"step": s, "map50": v} for s, v in curve],
                  passed=m["map50"] >= TARGET_MAP50)
    save_record(record)
    return 0 if m["map50"] >= TARGET_MAP50 else 1


if __name__ == "__main__":
    sys.exit(main())
