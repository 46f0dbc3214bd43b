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


def _points_line(p: dict, variants: list[dict]) -> str:
    maps = p["maps"]
    sd = statistics.stdev(maps) if len(maps) > 1 else 0.0
    other = "".join(f" {v['inherited'][p['name']]:.4f} |" for v in variants)
    return f"| {p['name']} | {p['inherited']:.4f} |{other} {statistics.fmean(maps):.4f} ± {sd:.4f} | {len(maps)} |"


def _calls(rec: dict) -> str:
    """Which trainings this call ran and which it read back from the work file (an earlier call of the command,
    whose time the run time above does not hold)."""
    before, here = rec.get("trained_before", 0), rec.get("trained_here", 0)
    if not before:
        return ""
    return (f" This call trained {here} of the probes' {before + here} trainings and read {before} back from the "
            "work file (an earlier call of the same command: the run time above does not include them).")


def _tau(rank: dict) -> str:
    tau = "n/a" if rank["tau"] is None else f"{rank['tau']:+.3f}"
    return tau + ("" if rank["low"] is None else f" [{rank['low']:+.3f}, {rank['high']:+.3f}]")


def _compute(rec: dict, v: dict) -> str:
    per_resolution = rec["run_supernet_steps"] / len(rec["run_resolutions"])
    ratio = v["steps"] / per_resolution
    return "the same compute per topology" if ratio == 1 else f"{ratio:g}x the compute per topology"


def _variant_section(rec: dict) -> list[str]:
    """Per-resolution supernets (``variants``): one supernet per (topology, resolution), at each step count; the
    probes' inherited differences and the ranking under each beside the run's."""
    variants = rec.get("variants") or []
    if not variants:
        return []
    lines = ["", "## Per-resolution supernets", "",
             f"The run trains one supernet per topology over resolutions {rec['run_resolutions']} for "
             f"{rec['run_supernet_steps']} sandwich steps, each step at one resolution. Here, with "
             "`search.supernet.per_resolution`, one supernet per (topology, resolution) of the points, each at its "
             "own resolution, otherwise the run's recipe and seed:", ""]
    for v in variants:
        made = "; ".join(f"{name} {t['cpu_seconds'] / 60:.1f}" for name, t in v["supernets"].items())
        lines.append(f"- {v['steps']} steps each ({_compute(rec, v)}); CPU-min per supernet: {made}"
                     + ("" if any(not t["loaded"] for t in v["supernets"].values()) else " (read back from an earlier call)"))
    lines += ["", "| probe | trained alone difference | run's supernet | "
              + " | ".join(f"per-resolution, {v['steps']} steps" for v in variants) + " |",
              "|---|---|---|" + "---|" * len(variants)]
    for k, r in enumerate(rec["rows"]):
        alone = "n/a" if r["alone_diff"] is None else f"{r['alone_diff']:+.4f} (p {_p(r['p'])})"
        cells = " | ".join(f"{v['rows'][k]['diff']:+.4f} ({_agree(v['rows'][k]['agree'])})" for v in variants)
        lines.append(f"| {r['probe']} | {alone} | {r['inherited_diff']:+.4f} ({_agree(r['agree'])}) | {cells} |")
    lines += ["", f"Kendall tau against the trained-alone mean over {rec['ranking']['n']} points: run's supernets "
              f"{_tau(rec['ranking'])}" + "".join(
                  f"; per-resolution, {v['steps']} steps, {_tau(v['ranking'])} (difference to the run's "
                  f"{v['against_run']['difference']:+.3f}, paired 95 % bootstrap [{v['against_run']['low']:+.3f}, "
                  f"{v['against_run']['high']:+.3f}]"
                  + (": not told apart" if v["against_run"]["low"] <= 0 <= v["against_run"]["high"] else "") + ")"
                  for v in variants) + "."]
    return lines


def _agree(agree: bool | None) -> str:
    return {True: "same sign", False: "other sign", None: "n/a"}[agree]


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
            f"the recorded {check['recorded']:.4f}, {same}." + _calls(rec), "",
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
    body += ["", f"Over all {rank['n']} points (the retrained points and the probes): Kendall tau between inherited mAP and the "
             f"trained-alone mean over seeds {rank['seeds']}: {tau}{interval}; the trained-alone mean's ceiling "
             f"{ceiling}; top-1 regret {rank['regret'] if rank['regret'] is not None else 'n/a'}."]
    body += _variant_section(rec)
    variants = rec.get("variants") or []
    body += ["", "| point | inherited mAP | " + "".join(f"per-resolution, {v['steps']} steps | " for v in variants)
             + "trained alone (mean ± sd over seeds) | seeds |", "|---|---|---|" + "---|" * len(variants) + "---|"]
    body += [_points_line(p, variants) for p in rec["points"]]
    return benchmark_page(rec, "supernet_axes", body)


def headline_supernet_axes(rec: dict) -> list[str]:
    rows, wrong, rank = rec["rows"], wrong_axes(rec), rec["ranking"]
    agree = sum(r["agree"] is True for r in rows)
    tau = "n/a" if rank["tau"] is None else f"{rank['tau']:+.3f}"
    return [f"supernet axes: inherited and trained-alone differences agree in sign on {agree} of {len(rows)} probes; "
            f"wrong beyond seed noise on {len(wrong)}"
            + (f" ({', '.join(r['probe'] for r in wrong)})" if wrong else "")
            + f"; tau over {rank['n']} points {tau}"
            + "".join(f"; per-resolution supernets, {v['steps']} steps: tau {v['ranking']['tau']:+.3f}, resolution "
                      f"probes of the other sign {_wrong_resolution(rec, v)}" for v in rec.get("variants") or [])]


def _wrong_resolution(rec: dict, v: dict) -> str:
    """'k of n': the resolution probes whose difference under variant ``v`` has the other sign than trained alone."""
    picks = [k for k, r in enumerate(rec["rows"]) if r["axis"] == "resolution"]
    return f"{sum(v['rows'][k]['agree'] is False for k in picks)} of {len(picks)}"
