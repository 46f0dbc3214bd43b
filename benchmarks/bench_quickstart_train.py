"""Quickstart-size detector (paper rule at phi = -2: 256 px) on the default synthetic data, 3 minutes.

Prints the val AP50 curve (evaluation time is not part of the budget) and checks AP50 >= 0.5:

    flock /tmp/scalesearch-cpu.lock .venv/bin/python benchmarks/bench_quickstart_train.py

Measured 2026-11-25 (3 min, seed 0): lr 2e-3 -> 414 steps, AP50 0.343 (fails); lr 6e-3 -> 415 steps,
AP50 0.852; lr 1.5e-2 -> 599 steps, AP50 0.929, mAP 0.749; default lr 1e-2 -> 612 steps, 27.2 img/s,
AP50 curve 0.269 / 0.661 / 0.863 / 0.897 / 0.911 / 0.913 at steps 100..600, final AP50 0.913, mAP 0.716.
"""

from __future__ import annotations

import argparse
import sys

from scalesearch.scaling import compound_spec
from scalesearch.train import TrainConfig, train_and_evaluate

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
    result, _ = run(args.minutes, args.eval_every, args.seed, lr=args.lr, batch_size=args.batch_size)
    m = result.metrics
    print(f"final: steps {result.steps}  train {result.train_seconds:.0f} s  {result.images_per_second:.1f} img/s  "
          f"AP50 {m['map50']:.3f}  mAP {m['map']:.3f}  (target AP50 >= {TARGET_MAP50})")
    return 0 if m["map50"] >= TARGET_MAP50 else 1


if __name__ == "__main__":
    sys.exit(main())
