"""Zero-cost scores on detection: how well do NASWOT, synflow, grad-norm, FLOPs and params rank a run's
architectures, against the proxy mAP and against the long-budget mAP of ``scalesearch fidelity``?

No public benchmark of these scores on object detection exists; this one reports what it finds. For every
distinct point of a finished run (seed repeats count once) it computes the scores with
``scalesearch.measure.zero_cost.trial_scores`` on the study's own first training batch (what a search now records
per trial), then Kendall's tau (``scipy.stats.kendalltau``) of each score with the proxy mAP and, for the
points in ``RUN/fidelity.json``, with the long-budget mAP. Writes ``reports/benchmarks/zero_cost.json``;
``python benchmarks/render.py`` renders it.

    python benchmarks/bench_zero_cost.py runs/fidelity_bccd
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from render import begin_record, save_record

SCORES = ("naswot", "synflow", "grad_norm", "flops", "params")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a finished run folder (ideally with fidelity.json)")
    args = parser.parse_args()

    from scipy import stats

    from scalesearch import pareto
    from scalesearch.config import load_study
    from scalesearch.fidelity import load_fidelity
    from scalesearch.records import load_records
    from scalesearch.search.objective import dataset_pairs
    from scalesearch.spec import DetectorSpec
    from scalesearch.measure.zero_cost import trial_scores

    record = begin_record("zero_cost", run=str(args.run_dir))
    config = load_study(Path(args.run_dir) / "study.yaml")
    train_data, _ = dataset_pairs(config.dataset)
    cfg = config.trial_train_config(config.seed)
    long = {f.group: f.long_map for f in load_fidelity(args.run_dir)}
    points: dict[str, dict] = {}
    batches: dict = {}
    for r in pareto.feasible(load_records(args.run_dir)):
        point = points.setdefault(pareto.group_key(r), {"group": pareto.group_key(r), "maps": []})
        point["maps"].append(r.get("map"))
        if "naswot" not in point:
            point.update(trial_scores(DetectorSpec.from_dict(r.spec), train_data, cfg, batches))
            point.update(flops=r.flops, params=r.params)
    rows = [{**p, "proxy_map": statistics.fmean(p.pop("maps")), "long_map": long.get(p["group"])}
            for p in points.values()]
    taus = {}
    for score in SCORES:
        with_proxy = stats.kendalltau([r[score] for r in rows], [r["proxy_map"] for r in rows])
        both = [r for r in rows if r["long_map"] is not None]
        with_long = stats.kendalltau([r[score] for r in both], [r["long_map"] for r in both]) if len(both) > 1 else None
        taus[score] = {"proxy_tau": float(with_proxy.statistic), "proxy_p": float(with_proxy.pvalue),
                       "long_tau": None if with_long is None else float(with_long.statistic),
                       "long_p": None if with_long is None else float(with_long.pvalue), "n_long": len(both)}
    record.update(points=rows, taus=taus, n=len(rows))
    save_record(record)
    for score, t in taus.items():
        print(f"{score:10s} tau vs proxy mAP {t['proxy_tau']:+.3f} (p {t['proxy_p']:.3g})"
              + ("" if t["long_tau"] is None else f", vs long mAP {t['long_tau']:+.3f} (p {t['long_p']:.3g})"))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
