"""The per-block latency table against the protocol: does the table's sum rank architectures as the measured
latency does, how far off is it, and how much faster is a prediction than a measurement?

``--specs`` specs (default 40) are drawn with ``--seed`` (Optuna's random sampler over the study's space) from
``studies/beat_lite0_bccd.yaml``: the fixed pretrained EfficientNet-Lite0 backbone, topologies fpn / panet / bifpn /
qufpn and the 1944-graph BiFPN family (``--no-family`` leaves the family out), fusion, activation, width,
repeats, head repeats and resolution, BCCD's 3 classes. For each spec, in turn: the table's prediction
(``scalesearch.measure.latency_table.table_latency``, from a fresh cache, so the blocks that spec needs and no
earlier spec timed are timed then), then the protocol's measurement (``scalesearch.measure.latency.measure_latency``),
both with the same settings (default: the study's, torch eager, batch 1, 1 thread, 10 warm-up + 40 timed runs).
A family graph shares no cell with another graph, so with the family a study's table grows with the graphs it
draws; the record says how many specs drew one and how many entries the table holds. Reported:

- Kendall tau-b between predicted and measured total latency, with its 95 % bootstrap interval over specs
  (``scalesearch.fidelity.kendall`` / ``bootstrap_interval``, 2000 resamples, seed 0), and FLOPs' tau beside it;
- mean absolute percentage error of the total (and of the network and post-processing parts);
- seconds to build the table (all block timings), seconds per prediction once built, seconds per protocol
  measurement (model build included).

Writes ``reports/benchmarks/latency_table.json`` (rendered by ``benchmarks/render.py``). Run alone, under the CPU
lock (timings):

    flock /tmp/scalesearch-cpu.lock python benchmarks/bench_latency_table.py

``--quick`` runs 3 specs with 1 warm-up + 3 runs and prints the page without writing anything.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from render import ROOT, begin_record, save_record
from render_latency_table import render_latency_table

STUDY = "studies/beat_lite0_bccd.yaml"
FAMILY = "spaces/topology_bifpn_family.yaml"
BOOTSTRAP = 2000


def load_space(family: bool):
    """The study (its space without the BiFPN family unless ``family``) and its class count."""
    from scalesearch.config import load_study
    from scalesearch.search.objective import dataset_pairs, num_classes

    overrides = [] if family else ["space.topology=[fpn, panet, bifpn, qufpn]"]
    config = load_study(ROOT / STUDY, overrides)
    return config, num_classes(dataset_pairs(config.dataset)[0][1])


def draw_specs(n: int, seed: int, family: bool = True) -> list[tuple[str, dict, object]]:
    """``n`` distinct (label, sampled parameters, spec) drawn by Optuna's random sampler seeded ``seed``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    config, classes = load_space(family)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out, seen = [], set()
    for _ in range(50 * n):
        if len(out) == n:
            break
        trial = study.ask()
        params = config.search_space.suggest(trial)
        study.tell(trial, 0.0)
        spec = config.search_space.resolve(params, classes)
        if spec not in seen:
            seen.add(spec)
            out.append((label(params), params, spec))
    return out


def label(params: dict) -> str:
    """E.g. ``bifpn_family[01210120] fast relu6 w64 x3 h3 320px``."""
    topology = str(params["topology"])
    if topology == FAMILY:
        picks = "".join(str(v) for k, v in sorted(params.items()) if k.startswith("bifpn_family."))
        topology = f"bifpn_family[{picks}]"
    return (f"{topology} {params['fusion']} {params['activation']} w{params['fpn_channels']} x{params['fpn_repeats']} "
            f"h{params['head_repeats']} {params['resolution']}px")


def measure(specs: list, settings, cache_dir: Path) -> list[dict]:
    """Per spec: the table's prediction (timing the blocks it lacks), then the protocol's measurement."""
    from scalesearch.measure.cost import count_cost
    from scalesearch.measure.latency import measure_latency
    from scalesearch.measure.latency_table import table_latency

    rows = []
    for name, params, spec in specs:
        start = time.perf_counter()
        table = table_latency(spec, settings, cache_dir)
        built = time.perf_counter()
        result = measure_latency(spec, settings)
        done = time.perf_counter()
        rows.append({"label": name, "params": params, "spec": spec.to_dict(), "flops": count_cost(spec).flops,
                     "predicted": {"total_ms": table.total_ms, "network_ms": table.network_ms,
                                   "post_ms": table.post_ms, "blocks": table.blocks, "counts": table.counts},
                     "measured": {"total_ms": result.median_ms["total"], "network_ms": result.median_ms["network"],
                                  "post_ms": result.median_ms["post"], "iqr_ms": result.iqr_ms["total"],
                                  "exclusive": result.exclusive, "load_average": result.load_average},
                     "table_seconds": round(built - start, 3), "protocol_seconds": round(done - built, 3)})
        rows[-1]["error_pct"] = round(100 * (table.total_ms / result.median_ms["total"] - 1), 2)
        print(f"{name}: table {table.total_ms:.2f} ms ({built - start:.1f} s), protocol "
              f"{result.median_ms['total']:.2f} ms ({done - built:.1f} s)", flush=True)
    return rows


def prediction_seconds(specs: list, settings, cache_dir: Path, repeats: int = 20) -> float:
    """Seconds per ``predict_latency`` once every entry is in memory (the study's case after its first trials)."""
    from scalesearch.measure.latency_table import predict_latency

    start = time.perf_counter()
    for _ in range(repeats):
        for _, _, spec in specs:
            predict_latency(spec, settings, cache_dir)
    return (time.perf_counter() - start) / (repeats * len(specs))


def kendall(xs: list[float], ys: list[float], n: int = BOOTSTRAP) -> dict:
    """Kendall tau-b of ``xs`` against ``ys``, its p-value and 95 % bootstrap interval, through the library's
    statistics (``scalesearch.fidelity``: they read (proxy, reference) pairs as ``FidelityRecord``s)."""
    from scalesearch.fidelity import FidelityRecord, bootstrap_interval
    from scalesearch.fidelity import kendall as tau_of

    pairs = [FidelityRecord(group=str(i), number=i, spec={}, flops=0.0, proxy_map=float(x), factor=1.0, steps=None,
                            seconds=None, seeds=(0,), maps=(float(y),)) for i, (x, y) in enumerate(zip(xs, ys))]
    tau, p = tau_of(pairs)
    low, high = bootstrap_interval(pairs, "kendall", n=n, seed=0)
    return {"tau": round(tau, 4), "p": p, "n": len(pairs), "low": round(low, 4), "high": round(high, 4)}


def summarise(rows: list[dict], bootstrap: int = BOOTSTRAP) -> dict:
    def mape(part: str) -> float:
        return round(100 * statistics.fmean(abs(r["predicted"][part] / r["measured"][part] - 1) for r in rows), 2)

    measured = [r["measured"]["total_ms"] for r in rows]
    return {"kendall": kendall([r["predicted"]["total_ms"] for r in rows], measured, bootstrap),
            "flops_kendall": kendall([r["flops"] for r in rows], measured, bootstrap),
            "mape_pct": mape("total_ms"), "mape_network_pct": mape("network_ms"), "mape_post_pct": mape("post_ms"),
            "median_error_pct": round(statistics.median(r["error_pct"] for r in rows), 2),
            "build_seconds": round(sum(r["table_seconds"] for r in rows), 1),
            "protocol_seconds": round(statistics.fmean(r["protocol_seconds"] for r in rows), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-family", dest="family", action="store_false",
                        help="leave the 1944-graph BiFPN family out of the space")
    parser.add_argument("--quick", action="store_true", help="3 specs, 1 warm-up + 3 runs; print, write nothing")
    args = parser.parse_args()
    if args.quick:
        args.specs, args.warmup, args.runs = 3, 1, 3

    from scalesearch.machine import identity
    from scalesearch.measure import latency_table
    from scalesearch.measure.latency import LatencySettings

    settings = LatencySettings(threads=args.threads, warmup=args.warmup, runs=args.runs)
    record = begin_record("latency_table", study=STUDY, n_specs=args.specs, seed=args.seed, family=args.family,
                          runtime="torch", threads=args.threads, batch=1, warmup=args.warmup, runs=args.runs,
                          latency_machine=identity())
    specs = draw_specs(args.specs, args.seed, args.family)
    with tempfile.TemporaryDirectory(prefix="scalesearch-latency-table-") as cache:
        rows = measure(specs, settings, Path(cache))
        record.update(specs=rows, **summarise(rows, 200 if args.quick else BOOTSTRAP),
                      entries=len(list(Path(cache).glob(f"{latency_table.PREFIX}-*.json"))),
                      family_specs=sum(r["label"].startswith("bifpn_family") for r in rows),
                      prediction_seconds=prediction_seconds(specs, settings, Path(cache)))
    if args.quick:
        record.update(seconds=0.0, command="(quick run: nothing written)")
        print(render_latency_table(record))
        return
    save_record(record)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
