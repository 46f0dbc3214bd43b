"""The page and headline of the ``supernet_axes`` record (``bench_supernet_axes.py``), registered in ``render.py``.
``render``'s helpers are imported at call time. Every figure shown is in the record."""

from __future__ import annotations

import statistics

ALPHA = 0.05


def _p(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.4f}"


def _verdict(row: dict) -> str:
    """How the two differences relate: agree or not in sign, and whether training alone told the seeds apart."""
    if row["agree"] is None:
        return "n/a"
    told = row["p"] is not None and row["p"] < ALPHA
    if row["agree"]:
        return "agree" + ("" if told else " (trained alone within seed noise)")
    return "**disagree**" if told else "disagree (trained alone within seed noise)"


def _points_line(p: dict) -> str:
    maps = p["maps"]
    sd = statistics.stdev(maps) if len(maps) > 1 else 0.0
    return f"| {p['name']} | {p['inherited']:.4f} | {statistics.fmean(maps):.4f} ± {sd:.4f} | {len(maps)} |"


def wrong_axes(rec: dict) -> list[dict]:
    """The probes whose inherited difference has the other sign than the trained-alone one, told apart from seed
    noise (two-sided sign-flip p below ALPHA)."""
    return [r for r in rec["rows"] if r["agree"] is False and r["p"] is not None and r["p"] < ALPHA]


def render_supernet_axes(rec: dict) -> str:
    from render import benchmark_page

    check = rec["reproduced"]
    same = "reproduced exactly" if check["again"] == check["recorded"] else \
        f"NOT reproduced (difference {check['again'] - check['recorded']:+.4f}): the pairs below are not exact"
    rank = rec["ranking"]
    body = [f"Probes around the points of `{rec['run']}/fidelity_frozen.json` trained alone (backbone frozen, "
            f"{rec['steps']} steps, the run's recipe), one elastic value changed each. Inherited: scored by the "
            f"run's own supernets (`{rec['estimator_dir']}`, the weights its search scored with) through the "
            "`supernet` estimator; trained alone: the probe on its anchor's seeds (paired: seed s with seed s), "
            "difference probe minus anchor, two-sided sign-flip p over the seeds.", "",
            f"Pairing check: {check['point']} seed {check['seed']} trained again here: {check['again']:.4f} against "
            f"the recorded {check['recorded']:.4f}, {same}.", "",
            "| probe | axis | change | inherited: anchor -> probe | inherited difference | trained alone difference "
            "(mean over seeds) | seeds | sign-flip p | inherited vs trained alone |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in rec["rows"]:
        spread = f" [{min(r['alone_diffs']):+.4f}, {max(r['alone_diffs']):+.4f}]" if r["alone_diffs"] else ""
        alone = "n/a" if r["alone_diff"] is None else f"{r['alone_diff']:+.4f}{spread}"
        body.append(f"| {r['probe']} | {r['axis']} | {r['from']} -> {r['to']} | {r['inherited_anchor']:.4f} -> "
                    f"{r['inherited_probe']:.4f} | {r['inherited_diff']:+.4f} | {alone} | {len(r['seeds'])} | "
                    f"{_p(r['p'])} | {_verdict(r)} |")
    wrong = wrong_axes(rec)
    body += ["", f"Inheritance points the wrong way, beyond seed noise, on {len(wrong)} of {len(rec['rows'])} probes"
             + (": " + "; ".join(f"{r['probe']} (inherited {r['inherited_diff']:+.4f}, trained alone "
                                 f"{r['alone_diff']:+.4f}, p {_p(r['p'])})" for r in wrong) if wrong else "") + "."]
    tau = "n/a" if rank["tau"] is None else f"{rank['tau']:+.3f}"
    interval = "" if rank["low"] is None else f" (95 % bootstrap interval {rank['low']:+.3f} to {rank['high']:+.3f})"
    ceiling = "unknown" if rank["ceiling_tau"] is None else f"{rank['ceiling_tau']:.3f}"
    body += ["", f"Over all {rank['n']} points (anchors and probes): Kendall tau between inherited mAP and the "
             f"trained-alone mean over seeds {rank['seeds']}: {tau}{interval}; the trained-alone mean's ceiling "
             f"{ceiling}; top-1 regret {rank['regret'] if rank['regret'] is not None else 'n/a'}.", "",
             "| point | inherited mAP | trained alone (mean ± sd over seeds) | seeds |", "|---|---|---|---|"]
    body += [_points_line(p) for p in rec["points"]]
    return benchmark_page(rec, "supernet_axes", body)


def headline_supernet_axes(rec: dict) -> list[str]:
    rows, wrong, rank = rec["rows"], wrong_axes(rec), rec["ranking"]
    agree = sum(r["agree"] is True for r in rows)
    tau = "n/a" if rank["tau"] is None else f"{rank['tau']:+.3f}"
    return [f"supernet axes: inherited and trained-alone differences agree in sign on {agree} of {len(rows)} probes; "
            f"wrong beyond seed noise on {len(wrong)}"
            + (f" ({', '.join(r['probe'] for r in wrong)})" if wrong else "")
            + f"; tau over {rank['n']} points {tau}"]
