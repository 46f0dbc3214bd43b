"""Latency repeatability: is ``scalesearch.measure.latency``'s protocol stable enough to rank architectures, how well
do FLOPs rank them by time, and how much faster is ONNX Runtime than torch eager?

20 specs are drawn (seeded) from the search spaces' axes: every built-in topology and members of the BiFPN
graph family (``spaces/topology_bifpn_family.yaml``) in turn, a fusion method, phi in [-3, 0] and a
resolution in {128, 256, 384, 512}, 3 classes (BCCD's). Each is measured twice, in two full passes over the
20 (the passes minutes apart, each spec's model built anew), by ``measure_latency`` with the protocol's
defaults (batch 1, 1 thread, 10 warm-up + 40 timed runs, torch eager). Reported:

- Kendall tau-b of the total median between the passes (target >= 0.9);
- the coefficient of variation (std / mean) of the 40 timed totals, per spec and pass, median over all
  (target <= 5 %), and the relative difference of each spec's medians between passes;
- Kendall tau-b between FLOPs (``count_cost``) and latency (mean of the passes) over the 20 specs;
- ONNX Runtime vs torch eager latency for the presets d0 and lite0 (90 classes), same protocol.

Writes ``reports/benchmarks/latency.json`` (rendered by ``benchmarks/render.py``). Run alone, under the CPU lock:

    flock /tmp/scalesearch-cpu.lock python benchmarks/bench_latency.py

``--check`` runs 3 specs with 1 warm-up + 3 runs and prints the page without writing anything.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

from render import ROOT, begin_record, render_latency, save_record

RESOLUTIONS = (128, 256, 384, 512)
PHIS = (-3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0)
FAMILY = ROOT / "spaces" / "topology_bifpn_family.yaml"


def draw_specs(n: int, seed: int) -> list[tuple[str, object]]:
    """``n`` (label, spec) pairs: topologies in turn (built-ins, then a random BiFPN-family member), the
    rest drawn with ``random.Random(seed)``."""
    from scalesearch.scaling import compound_spec
    from scalesearch.topology import FUSIONS, list_topologies, load_family

    rng = random.Random(seed)
    family = load_family(FAMILY)
    topologies = [*list_topologies(), "bifpn_family"]
    out = []
    for i in range(n):
        name = topologies[i % len(topologies)]
        topology = name
        if name == "bifpn_family":
            picks = {d: rng.randrange(count) for d, count in family.choices().items()}
            topology = family.build(picks).to_string()
            name = "bifpn_family[" + "".join(str(picks[d]) for d in family.choices()) + "]"
        fusion, phi, resolution = rng.choice(FUSIONS), rng.choice(PHIS), rng.choice(RESOLUTIONS)
        spec = compound_spec(phi, topology=topology, fusion=fusion, resolution=resolution, num_classes=3)
        out.append((f"{name} {fusion} phi={phi:g} R={resolution}", spec))
    return out


def _cv(samples: list[float]) -> float:
    return statistics.stdev(samples) / statistics.fmean(samples)


def _row(result) -> dict:
    return {"total_ms": result.median_ms["total"], "network_ms": result.median_ms["network"],
            "post_ms": result.median_ms["post"], "iqr_ms": result.iqr_ms["total"],
            "cv": _cv(list(result.samples_ms["total"])), "candidates": result.candidates,
            "exclusive": result.exclusive, "load_average": result.load_average}


def _kendall(xs: list[float], ys: list[float]) -> dict:
    from scipy.stats import kendalltau

    res = kendalltau(xs, ys)
    return {"tau": float(res.statistic), "p": float(res.pvalue), "n": len(xs)}


def measure_specs(specs, settings, passes: int = 2) -> list[dict]:
    from scalesearch.measure.cost import count_cost
    from scalesearch.measure.latency import measure_latency

    rows = [{"label": label, "spec": spec.to_dict(), "flops": count_cost(spec).flops, "passes": []}
            for label, spec in specs]
    for p in range(passes):
        for row, (label, spec) in zip(rows, specs):
            row["passes"].append(_row(measure_latency(spec, settings)))
            print(f"pass {p + 1} {label}: {row['passes'][-1]['total_ms']:.2f} ms", flush=True)
    return rows


def summarise(rows: list[dict]) -> dict:
    first = [r["passes"][0]["total_ms"] for r in rows]
    second = [r["passes"][1]["total_ms"] for r in rows]
    mean = [(a + b) / 2 for a, b in zip(first, second)]
    return {
        "passes_kendall": _kendall(first, second),
        "median_cv": statistics.median(p["cv"] for r in rows for p in r["passes"]),
        "max_cv": max(p["cv"] for r in rows for p in r["passes"]),
        "median_pass_difference": statistics.median(abs(a - b) / ((a + b) / 2) for a, b in zip(first, second)),
        "flops_kendall": _kendall([r["flops"] for r in rows], mean),
        "flops_network_kendall": _kendall([r["flops"] for r in rows],
                                          [statistics.fmean(p["network_ms"] for p in r["passes"]) for r in rows]),
    }


def runtime_ratios(presets: list[str], settings) -> dict:
    """Per preset: torch eager and ONNX Runtime figures (same protocol), ratio ORT / torch."""
    import dataclasses

    from scalesearch.measure.latency import measure_latency
    from scalesearch.scaling import preset

    out = {}
    for name in presets:
        spec = preset(name)
        figures = {rt: _row(measure_latency(spec, dataclasses.replace(settings, runtime=rt)))
                   for rt in ("torch", "onnxruntime")}
        out[name] = {**figures, "ratio_total": figures["onnxruntime"]["total_ms"] / figures["torch"]["total_ms"],
                     "ratio_network": figures["onnxruntime"]["network_ms"] / figures["torch"]["network_ms"]}
        print(f"{name}: torch {figures['torch']['total_ms']:.1f} ms, onnxruntime "
              f"{figures['onnxruntime']['total_ms']:.1f} ms", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--presets", default="d0,lite0")
    parser.add_argument("--check", action="store_true", help="3 specs, 1 warm-up + 3 runs; print, write nothing")
    args = parser.parse_args()
    if args.check:
        args.specs, args.warmup, args.runs = 3, 1, 3

    from scalesearch.measure.latency import LatencySettings
    from scalesearch.machine import identity

    settings = LatencySettings(threads=args.threads, warmup=args.warmup, runs=args.runs)
    record = begin_record("latency", n_specs=args.specs, seed=args.seed, threads=args.threads, batch=1,
                          warmup=args.warmup, runs=args.runs, runtime="torch", latency_machine=identity())
    rows = measure_specs(draw_specs(args.specs, args.seed), settings)
    record.update(specs=rows, **summarise(rows),
                  runtimes=runtime_ratios([p for p in args.presets.split(",") if p], settings))
    if args.check:
        record.update(seconds=0.0, command="(check run: nothing written)")
        print(render_latency(record))
        return
    save_record(record)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
