"""Time and peak memory of ``scalesearch.measure.cost.count_cost`` vs a plain fvcore trace of effdet.

Each measurement runs in a fresh process (cold caches; peak RSS is that process's own). The plain
trace is what one would write by hand: ``FlopCountAnalysis(effdet_model, images).total()`` at the
preset's full resolution, autograd on. A last process counts the whole D0..D7x table (``scalesearch table``'s
work) in one go. Writes ``reports/benchmarks/cost.json`` (rendered by ``benchmarks/render.py``). Run under the
CPU lock:

    flock /tmp/scalesearch-cpu.lock python benchmarks/bench_cost.py --variants d0,d1,d2,d3,d4
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from render import begin_record, save_record

TABLE = ("d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d7x")


def _effdet_plain(variant: str) -> tuple[int, int]:
    import torch
    from effdet.config import get_efficientdet_config
    from effdet.efficientdet import EfficientDet
    from fvcore.nn import FlopCountAnalysis

    config = get_efficientdet_config(f"tf_efficientdet_{variant}")
    model = EfficientDet(config, pretrained_backbone=False).eval()
    size = config.image_size[0]
    analysis = FlopCountAnalysis(model, torch.zeros(1, 3, size, size)).unsupported_ops_warnings(False)
    return sum(p.numel() for p in model.parameters()), int(analysis.total())


def _ours(variant: str) -> tuple[int, int]:
    from scalesearch.measure.cost import count_cost
    from scalesearch.scaling import preset

    cost = count_cost(preset(variant))
    return cost.params, cost.flops


def _ours_table(_: str) -> tuple[int, int]:
    """Count every preset of the D0..D7x table; returns the sums."""
    from scalesearch.measure.cost import count_cost
    from scalesearch.scaling import preset

    costs = [count_cost(preset(name)) for name in TABLE]
    return sum(c.params for c in costs), sum(c.flops for c in costs)


METHODS = {"ours": _ours, "effdet_plain": _effdet_plain, "ours_table": _ours_table}


def measure_one(method: str, variant: str) -> dict:
    """Run one count in this process: params, FLOPs, seconds, peak RSS in GB."""
    start = time.perf_counter()
    params, flops = METHODS[method](variant)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return {"method": method, "variant": variant, "params": params, "flops": flops, "seconds": seconds,
            "peak_gb": peak}


def measure(method: str, variant: str) -> dict:
    cmd = [sys.executable, __file__, "--one", method, variant]
    env = {k: v for k, v in os.environ.items() if k != "SCALESEARCH_COST_CACHE"}  # cold: no disk cache
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        return {"method": method, "variant": variant, "error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="d0,d1,d2,d3", help="comma-separated presets")
    parser.add_argument("--no-table", action="store_true", help="skip counting the whole D0..D7x table")
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(*args.one)))
        return
    record = begin_record("cost", variants=args.variants.split(","), table=None if args.no_table else list(TABLE))
    rows = []
    print(f"{'variant':<8}{'method':<14}{'params':>13}{'FLOPs':>18}{'seconds':>9}{'peak GB':>9}")
    jobs = [(m, v) for v in args.variants.split(",") for m in ("ours", "effdet_plain")]
    for method, variant in jobs + ([] if args.no_table else [("ours_table", "d0-d7x")]):
        r = measure(method, variant)
        rows.append(r)
        if "error" in r:
            print(f"{variant:<8}{method:<14} failed: {r['error']}")
            continue
        print(f"{variant:<8}{method:<14}{r['params']:>13,}{r['flops']:>18,}{r['seconds']:>9.1f}"
              f"{r['peak_gb']:>9.2f}", flush=True)
    record["results"] = rows
    save_record(record)


if __name__ == "__main__":
    main()
