"""The page and headline of the ``supernet_samplers`` record (``bench_supernet_samplers.py``), registered in
``render.py``. ``render``'s helpers are imported at call time. Every figure shown is in the record."""

from __future__ import annotations


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def _beaten(p: dict) -> str:
    b = p.get("dominated_by")
    return "no" if b is None else f"yes, by trial {b['number']} ({b['map']:.4f}, {b['latency_ms']:.2f} ms)"


def render_supernet_samplers(rec: dict) -> str:
    from render import benchmark_page

    runs = rec["runs"]
    same = rec.get("same_supernets", True)
    first, second = (run.get("supernet_final_loss", {}) for run in runs)
    trained = ("Both runs search one space through the same supernets" if same else
               "Both runs search one space, each through supernets of its own, trained by one recipe and seed in "
               "different sessions (final losses " + "; ".join(
                   f"{t} {first[t]:.4f} vs {second[t]:.4f}" for t in sorted(set(first) & set(second))) + ")")
    ratio = rec.get("supernet_time_ratio")
    clock = ("" if not ratio or abs(ratio - 1) < 0.25 else
             f" Trial and supernet times are each run's own machine's: the same supernet recipe took {ratio:.2f}x as "
             "long in the second run, so compare distinct sub-networks per hour only after that factor.")
    body = [f"{trained}; each point's latency is the per-block table's "
            f"prediction from one table (the cost cache of `{rec['table_run']}`), so the runs share one clock.{clock} "
            f"Hypervolume: the area the front dominates in (table latency, mAP) up to {rec['reference_point']['latency_ms']:.2f} "
            f"ms and mAP {rec['reference_point']['map']:g} (larger is better).", "",
            "| run | sampler | trials | distinct sub-networks | trial time | distinct per hour of trial time | "
            "supernet training | front points | faster than Lite0 | hypervolume | front points the other run dominates |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        faster = sum(p["faster_than_lite0"] for p in run["front"])
        beaten = sum(p["dominated_by"] is not None for p in run["front"])
        body.append(f"| `{run['run']}` | {run['sampler']} | {run['trials']:,} | {run['distinct']:,} | "
                    f"{_hours(run['trial_seconds'])} | {run['per_hour']:,} | "
                    f"{_hours(sum(run['supernet_seconds'].values()))} | {len(run['front'])} | {faster} | "
                    f"{run['hypervolume']:.4f} | {beaten} of {len(run['front'])} |")
    common = rec["common"]
    if common["n"]:
        body += ["", f"Sub-networks both runs scored: {common['n']}; their inherited mAPs differ by at most "
                     f"{common['max_abs_map_diff']:.2g} ({common['identical']} identical)"
                 + (f"; their ranks agree at Kendall tau {common['kendall_tau']:.3f} (95% bootstrap "
                    f"[{common['kendall_tau_ci'][0]:.3f}, {common['kendall_tau_ci'][1]:.3f}]), Spearman "
                    f"{common['spearman']:.3f}; mean difference (second minus first) {common['mean_map_diff']:+.4f}"
                    + (": two trainings of one supernet recipe rank sub-networks this differently" if not same else "")
                    if "kendall_tau" in common else "") + "."]
    for run in runs:
        lite0 = run["lite0"]
        body += ["", f"### Front of `{run['run']}` ({run['sampler']})", ""]
        if lite0:
            body += [f"Lite0 (trial {lite0['number']}): inherited mAP {lite0['map']:.4f}, table latency "
                     f"{lite0['latency_ms']:.2f} ms.", ""]
        body += ["| trial | sub-network | inherited mAP | table latency | faster than Lite0 | dominated by the other run |",
                 "|---|---|---|---|---|---|"]
        for p in run["front"]:
            body.append(f"| {p['number']} | {p['group']} | {p['map']:.4f} | {p['latency_ms']:.2f} ms | "
                        f"{'yes' if p['faster_than_lite0'] else 'no'} | {_beaten(p)} |")
    body += ["", f"The grid front's points faster than Lite0 already retrained alone in {rec['retrained_in']}: "
             f"{len(rec['already_retrained'])}" + (f" ({'; '.join(rec['already_retrained'])})" if rec['already_retrained'] else "")
             + f"; not retrained yet: {len(rec['to_retrain'])}"
             + (f" ({'; '.join(rec['to_retrain'])})" if rec["to_retrain"] else "") + "."]
    return benchmark_page(rec, "supernet_samplers", body)


def headline_supernet_samplers(rec: dict) -> list[str]:
    a, b = rec["runs"]
    return [f"supernet samplers: {a['sampler']} {a['distinct']:,} distinct of {a['trials']:,} trials (hypervolume "
            f"{a['hypervolume']:.4f}) vs {b['sampler']} {b['distinct']:,} of {b['trials']:,} ({b['hypervolume']:.4f}); "
            f"{len(rec['to_retrain'])} of the grid front's {len(rec['to_retrain']) + len(rec['already_retrained'])} "
            f"point(s) faster than Lite0 by table latency not retrained yet"
            + (f"; the two runs' inherited mAPs of {rec['common']['n']} shared sub-networks agree at Kendall tau "
               f"{rec['common']['kendall_tau']:.3f}" if "kendall_tau" in rec["common"] else "")]
