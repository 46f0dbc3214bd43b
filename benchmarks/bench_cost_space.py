"""What counting costs a search: seconds per distinct spec when a study counts the params and FLOPs of many specs of
its space, one plain trace per spec (how ``count_cost`` counted before repeats were extrapolated) against the
search's path (``count_cost``: params on the meta device, FLOPs from the spec's variants at repeats 1 and 2, kept in
memory), both in one process on the same specs, with the counts compared (they must be equal).

Two draws (seeded), each counted by both methods in one order, the new path second (after the old one has warmed
imports and allocator) and from empty memory caches: ``sparse``, ``--specs`` distinct points of the whole space (few
share a shape: the worst case for extrapolation), and ``dense``, every repeat pair of a few shapes, shuffled (about
``--specs`` specs: what an exhaustive or converging search does to a shape).

    flock /tmp/scalesearch-cpu.lock python benchmarks/bench_cost_space.py studies/supernet_bccd_grid.yaml --specs 64

Written to ``reports/benchmarks/cost_space.json``; page by ``render_cost_space.py``.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--specs", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from render import begin_record, save_record

    from scalesearch.config import load_study
    from scalesearch.machine import portable_path
    from scalesearch.measure import cost
    from scalesearch.search.space import SearchSpace

    torch.set_num_threads(args.threads)
    config = load_study(args.study)
    space = SearchSpace(config)
    grid = space.grid()
    rng = random.Random(0)
    sparse: list[dict] = []  # distinct points drawn from the whole space
    while len(sparse) < args.specs:
        params = {k: rng.choice(list(v)) for k, v in grid.items()}
        if params not in sparse:
            sparse.append(params)
    repeats = [(r, h) for r in grid["fpn_repeats"] for h in grid["head_repeats"]]
    dense = [{**shape, "fpn_repeats": r, "head_repeats": h}  # every repeat pair of a few shapes, shuffled
             for shape in sparse[:max(1, args.specs // len(repeats))] for r, h in repeats]
    rng.shuffle(dense)
    draws = {"sparse": sparse, "dense": dense}
    record = begin_record("cost_space", study=portable_path(args.study), threads=args.threads,
                          space_size=math.prod(len(v) for v in grid.values()),
                          draws={k: len(v) for k, v in draws.items()})

    def old(spec):
        model = cost._model(spec)
        params = sum(p.numel() for part in cost.PARTS for p in getattr(model, part).parameters())
        return params, sum(cost.count_flops(spec, model).values())

    def new(spec):
        found = cost._compute(spec)
        return found.params, found.flops

    results = {}
    for draw, points in draws.items():
        specs = [space.resolve(p, 3) for p in points]
        shapes = {s.replace(fpn_repeats=1, head_repeats=1, name=None) for s in specs}
        times: dict[str, float] = {}
        counts: dict[str, list[tuple[int, int]]] = {}
        for name, method in (("one trace per spec", old), ("repeats extrapolated", new)):
            cost._SHALLOW.clear()
            cost._SHAPES.clear()
            start = time.perf_counter()
            counts[name] = [method(spec) for spec in specs]
            times[name] = round(time.perf_counter() - start, 2)
            print(f"{draw}: {name}: {times[name]:.1f} s for {len(specs)} specs", flush=True)
        a, b = counts.values()
        results[draw] = {"specs": len(specs), "shapes": len(shapes), "equal": a == b,
                         "methods": {k: {"seconds": v, "per_spec": round(v / len(specs), 3)} for k, v in times.items()},
                         "speedup": round(times["one trace per spec"] / times["repeats extrapolated"], 2)}
    record["results"] = results
    save_record(record)


if __name__ == "__main__":
    main()
