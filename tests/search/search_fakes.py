"""Fast stand-ins for cost counting and proxy training, so search tests take seconds.

``install()`` patches ``scalesearch.measure.cost.count_cost`` and ``scalesearch.training.train.train_and_evaluate``.
Run as a script (``python tests/search/search_fakes.py run STUDY ...``) it installs them at import, so the
worker processes that ``multiprocessing`` spawns (which re-import this main module) get them too.
``$FAKE_TRAIN_SECONDS`` makes each fake training sleep; ``$FAKE_TRAIN_LOG`` appends
``pid name`` lines for every training started, and with ``$FAKE_TRAIN_WAIT_PIDS=k`` the first
trainings wait until k processes have started one. ``$FAKE_TRAIN_HOLD=PATH`` holds every training until the
file PATH exists (a test creates it when the event it waits for has happened); with
``$FAKE_TRAIN_HOLD_FROM=k`` only from the k-th training in the log on.
"""

from __future__ import annotations

import os
import sys
import time

import scalesearch.measure.cost
import scalesearch.training.train
from scalesearch.measure.cost import Cost
from scalesearch.training.train import TrainResult

CALLS: list[object] = []


def fake_cost(spec, cache_dir=None) -> Cost:
    """Deterministic made-up costs that grow with width, depth and resolution."""
    flops = int(spec.fpn_channels * spec.fpn_repeats * spec.resolution**2 * 10 * spec.width_multiplier)
    params = int(spec.fpn_channels * 20_000 * spec.width_multiplier)
    return Cost(params, flops, {"backbone": (params, flops), "fpn": (0, 0), "class_net": (0, 0), "box_net": (0, 0)})


def fake_metrics(spec, seed: int) -> dict[str, float]:
    base = 0.1 + spec.fpn_channels / 1000 + 0.01 * (spec.topology == "bifpn") + 0.001 * seed
    return {"map": base, "map50": 2 * base, "map75": base / 2, "map_small": 0.0, "map_medium": base,
            "map_large": base}


def fake_train(spec, train_data, val_data, cfg, *, on_eval=None, progress=True, **_) -> TrainResult:
    CALLS.append(spec)
    log = os.environ.get("FAKE_TRAIN_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()} {spec.name}\n")
        _wait_for_workers(log, int(os.environ.get("FAKE_TRAIN_WAIT_PIDS", "0")))
    hold = os.environ.get("FAKE_TRAIN_HOLD")
    if hold and _started(log) >= int(os.environ.get("FAKE_TRAIN_HOLD_FROM", "0")):
        wait_for(lambda: os.path.exists(hold), f"{hold} to exist")
    time.sleep(float(os.environ.get("FAKE_TRAIN_SECONDS", "0")))
    metrics = fake_metrics(spec, cfg.seed)
    if on_eval is not None and cfg.eval_every:
        for step in range(cfg.eval_every, cfg.steps + 1, cfg.eval_every):
            on_eval(step, {**metrics, "map": metrics["map"] * step / cfg.steps})
    return TrainResult(metrics=metrics, steps=cfg.steps or 1, train_seconds=0.01, eval_seconds=0.01,
                       images_per_second=100.0)


def _started(log: str | None) -> int:
    """How many trainings the log has seen start."""
    if not log or not os.path.exists(log):
        return 0
    with open(log) as handle:
        return sum(1 for line in handle if line.strip())


def wait_for(event, what: str, timeout: float = 120.0, poll: float = 0.02) -> None:
    """Wait until ``event()`` is true: polls an observable state (a file, a line, a process), never a fixed
    sleep standing for an ordering. ``timeout`` only bounds a hung test; it raises naming ``what``."""
    deadline = time.monotonic() + timeout
    while not event():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(poll)


def _wait_for_workers(log: str, count: int, timeout: float = 120.0) -> None:
    """Hold the first trainings until ``count`` processes have started one (so all workers take part)."""
    def started() -> bool:
        with open(log) as handle:
            return len({line.split()[0] for line in handle if line.strip()}) >= count
    if count:
        wait_for(started, f"{count} processes to start a training", timeout)


def install() -> None:
    scalesearch.measure.cost.count_cost = fake_cost
    scalesearch.training.train.train_and_evaluate = fake_train


if __name__ in ("__main__", "__mp_main__"):
    install()  # spawned worker processes re-import the main script as __mp_main__

if __name__ == "__main__":
    from scalesearch.cli import main

    sys.exit(main(sys.argv[1:]))
