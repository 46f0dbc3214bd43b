"""Two samplers on one supernet space: NSGA-II against the exhaustive grid, from their committed run folders.

``studies/supernet_bccd.yaml`` (NSGA-II, population 8) and ``studies/supernet_bccd_grid.yaml`` (the grid sampler:
every trial a sub-network not scored before) search the same 5,120 sub-networks of the same supernets. This reads
both runs' records (never a backend's storage) and asks: how many distinct sub-networks did each score, at what
cost, and did the 2,000-sub-network grid find a front NSGA-II's fewer points missed?

Accuracy is each trial's inherited mAP. Latency is the per-block table's prediction (``latency.table``) for every
distinct sub-network of both runs from one table: the cost cache of the newest run (``--table-run``; blocks it lacks
are timed now, under the lock), so the two runs' points are on one clock even when they ran in different sessions
(a run's own ``latency_table_ms`` is on its session's clock; machines differ by up to 2x between sessions). Per run:
distinct sub-networks, trial seconds, distinct sub-networks per hour of trial time, the Pareto front (mAP up,
table latency down), its hypervolume against one shared reference (0 mAP, the slowest point of both runs), the
front's points faster than the enqueued Lite0, and how many of its points the other run's points dominate. Where
both runs scored one sub-network, their inherited mAPs are compared (the supernets are trained with the same seeds
and settings). Last: which of the grid front's points faster than Lite0 are already retrained alone in either run's
``fidelity.json`` or ``fidelity_frozen.json`` (paired-seed verdicts apply to them) and which would need
``scalesearch fidelity``.

    flock /tmp/scalesearch-cpu.lock python benchmarks/bench_supernet_samplers.py

Written to ``reports/benchmarks/supernet_samplers.json``; page by ``render_supernet_samplers.py``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RUNS = (ROOT / "reports" / "runs" / "supernet_bccd", ROOT / "reports" / "runs" / "supernet_bccd_grid")


def distinct(run: Path) -> list[Any]:
    """The run's feasible records that measured a sub-network of their own (duplicates left out)."""
    from scalesearch.pareto import measurements
    from scalesearch.records import load_records

    return sorted(measurements(load_records(run)), key=lambda r: r.number)


def front(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points no other point dominates on (map up, latency down), fastest first."""
    import numpy as np

    from scalesearch.pareto import non_dominated_mask

    mask = non_dominated_mask(np.array([[p["latency_ms"], -p["map"]] for p in points]))
    return sorted((p for p, keep in zip(points, mask) if keep), key=lambda p: p["latency_ms"])


def dominated_by(point: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The other point (fastest of those) that is at least as good on both and better on one, or None."""
    beat = [o for o in others if o["map"] >= point["map"] and o["latency_ms"] <= point["latency_ms"]
            and (o["map"] > point["map"] or o["latency_ms"] < point["latency_ms"])]
    return min(beat, key=lambda o: o["latency_ms"]) if beat else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, nargs=2, default=list(RUNS), help="two run folders on one space")
    parser.add_argument("--table-run", type=Path, default=None,
                        help="whose cost cache holds the per-block table (default: the second run)")
    args = parser.parse_args()

    import numpy as np

    from render import begin_record, save_record

    from scalesearch.config import load_study
    from scalesearch.fidelity import FILE, FROZEN_FILE, load_fidelity
    from scalesearch.machine import portable_path
    from scalesearch.measure.latency import LatencySettings
    from scalesearch.measure.latency_table import table_latency
    from scalesearch.pareto import group_key, hypervolume_2d
    from scalesearch.records import read_json
    from scalesearch.spec import DetectorSpec

    runs = [r.resolve() for r in args.runs]
    table_run = (args.table_run or runs[-1]).resolve()
    record = begin_record("supernet_samplers", runs=[portable_path(r) for r in runs],
                          table_run=portable_path(table_run))
    config = load_study(table_run / "study.yaml")
    s = config.latency
    settings = LatencySettings(s.runtime, s.threads, s.batch, s.warmup, s.runs)
    cache_dir = table_run / "cost_cache"
    predicted: dict[str, float] = {}
    per_run: list[dict[str, Any]] = []
    start = time.perf_counter()
    for run in runs:
        study = load_study(run / "study.yaml")
        meta = read_json(run / "meta.json")
        points = []
        for r in distinct(run):
            g = group_key(r)
            if g not in predicted:
                predicted[g] = table_latency(DetectorSpec.from_dict(r.spec), settings, cache_dir=cache_dir).total_ms
            points.append({"number": r.number, "group": g, "map": r.get("map"), "latency_ms": predicted[g],
                           "label": r.label, "seconds": r.seconds})
        summaries = [read_json(p) for p in sorted((run / "estimator" / "supernet").glob("*/summary.json"))]
        training = {m["topology"]: round(m["seconds"], 1) for m in summaries}
        losses = {m["topology"]: round(m["final_loss"], 4) for m in summaries}
        per_run.append({"run": portable_path(run), "study": study.name, "sampler": study.search.sampler,
                        "trials": len(load_records_all(run)), "distinct": len(points), "points": points,
                        "trial_seconds": round(sum(p["seconds"] for p in points), 1),
                        "supernet_seconds": training, "supernet_final_loss": losses, "start": meta.get("start"), "end": meta.get("end")})
        print(f"{run.name}: {len(points)} distinct sub-networks ({time.perf_counter() - start:.0f} s)", flush=True)

    slowest = max(p["latency_ms"] for run in per_run for p in run["points"])
    ref = (slowest, 0.0)
    for i, run in enumerate(per_run):
        other = per_run[1 - i]["points"]
        lite0 = next((p for p in run["points"] if p["label"] == "EfficientDet-Lite0"), None)
        pts = front(run["points"])
        for p in pts:
            beat = dominated_by(p, other)
            p["dominated_by"] = None if beat is None else {"number": beat["number"], "group": beat["group"],
                                                           "map": beat["map"], "latency_ms": beat["latency_ms"]}
            p["faster_than_lite0"] = lite0 is not None and p["latency_ms"] < lite0["latency_ms"]
        run.update(front=pts, lite0=lite0, per_hour=round(3600 * run["distinct"] / run["trial_seconds"]),
                   hypervolume=round(hypervolume_2d(np.array([[p["latency_ms"], -p["map"]] for p in pts]), ref), 4))
    maps = [{p["group"]: p["map"] for p in run["points"]} for run in per_run]
    common = sorted(set(maps[0]) & set(maps[1]))
    diffs = [abs(maps[0][g] - maps[1][g]) for g in common]
    agreement = rank_agreement([maps[0][g] for g in common], [maps[1][g] for g in common])
    both = sorted(set(per_run[0]["supernet_seconds"]) & set(per_run[1]["supernet_seconds"]))
    # the same recipe's supernet training time, second run over first: how much slower the second run's machine was
    speed = (sum(per_run[1]["supernet_seconds"][t] for t in both) / sum(per_run[0]["supernet_seconds"][t] for t in both)
             if both else None)
    files = [run / file for run in runs for file in (FILE, FROZEN_FILE) if (run / file).is_file()]
    retrained = {row.group for path in files for row in load_fidelity(path.parent, path.name)}
    grid = per_run[1]
    record.update(
        reference_point={"latency_ms": ref[0], "map": ref[1]},
        common={"n": len(common), "max_abs_map_diff": max(diffs) if diffs else None,
                "identical": sum(d == 0 for d in diffs), **agreement},
        same_supernets=all(per_run[0]["supernet_final_loss"].get(t) == per_run[1]["supernet_final_loss"].get(t)
                           for t in both) and bool(both),
        supernet_time_ratio=None if speed is None else round(speed, 2),
        retrained_in=" or ".join(f"`{portable_path(path)}`" for path in files),
        to_retrain=[p["group"] for p in grid["front"] if p["faster_than_lite0"] and p["group"] not in retrained],
        already_retrained=[p["group"] for p in grid["front"] if p["faster_than_lite0"] and p["group"] in retrained],
        runs=[{k: v for k, v in run.items() if k != "points"} | {"points": [[round(p["map"], 5), p["latency_ms"]]
                                                                            for p in run["points"]]}
              for run in per_run],
    )
    save_record(record)


def rank_agreement(a: list[float], b: list[float]) -> dict[str, Any]:
    """How two runs' inherited mAPs of the same sub-networks agree, by the library's fidelity statistics (``a`` in
    the place of the proxy, ``b`` of the reference): Kendall tau with its 95% bootstrap interval over sub-networks,
    Spearman rho, and the mean difference (second minus first). Empty below 3 sub-networks."""
    if len(a) < 3:
        return {}
    from bench_estimators import _pairs

    from scalesearch.fidelity import bootstrap_interval, kendall, spearman

    pairs = _pairs(dict(enumerate(a)), dict(enumerate(b)))
    return {"kendall_tau": round(kendall(pairs)[0], 3),
            "kendall_tau_ci": [round(q, 3) for q in bootstrap_interval(pairs, "kendall", seed=0)],
            "spearman": round(spearman(pairs)[0], 3),
            "mean_map_diff": round(sum(y - x for x, y in zip(a, b)) / len(a), 4)}


def load_records_all(run: Path) -> list[Any]:
    from scalesearch.records import load_records

    return load_records(run)


if __name__ == "__main__":
    main()
