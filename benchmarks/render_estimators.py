"""The page and headline of the ``estimators`` benchmark record (``bench_estimators.py``), registered in
``render.py``'s RENDERERS / HEADLINES. ``render``'s helpers are imported at call time. Everything shown is in the
record (per-row statistics, per-point values); nothing is computed here but the order of the rows."""

from __future__ import annotations

FIRST_RULE = ("the row first per CPU-second is, among the rows a study can use (not the reference rows), the one "
              "with the highest tau per CPU-second among those whose 95% interval lies above 0 (a ranking told "
              "apart from chance)")


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "n/a" if x is None else format(x, fmt)


def _per_cpu(row: dict) -> float | None:
    """tau per CPU-minute; None without either (a free row's is not finite: shown as "free")."""
    if row["tau"] is None or row["cpu_seconds"] is None or row["cpu_seconds"] <= 0:
        return None
    return row["tau"] / row["cpu_seconds"] * 60


def ordered(rows: list[dict]) -> list[dict]:
    """Rows a study can use first, each group by tau per CPU-second (highest first; unknown last), then by tau."""
    def key(r):
        rate = _per_cpu(r)
        return (r["kind"] != "estimator", rate is None, -(rate or 0.0), -(r["tau"] if r["tau"] is not None else -9))

    return sorted(rows, key=key)


def _cost(row: dict) -> str:
    if row["cpu_seconds"] is None:
        return "n/a (not measured here)"
    wall = "" if row["wall_seconds"] is None else f" ({row['wall_seconds']:.1f})"
    return f"{row['cpu_seconds']:.1f}{wall}"


def _rate(row: dict) -> str:
    rate = _per_cpu(row)
    if rate is None:
        return "free" if row["cpu_seconds"] == 0 else "n/a"
    return f"{rate:+.3f}"


def _table(rec: dict) -> list[str]:
    first, front = rec.get("first"), set(rec.get("front", []))
    lines = ["| estimator | CPU-s / candidate (wall s) | tau [95% interval] | tau / ceiling | top-1 regret | "
             "tau per CPU-min | front | n |", "|---|---|---|---|---|---|---|---|"]
    for r in ordered(rec["rows"]):
        name = f"**{r['label']}** (first)" if r["name"] == first else r["label"]
        name += " *(reference)*" if r["kind"] != "estimator" else ""
        interval = "" if r["low"] is None else f" [{r['low']:+.3f}, {r['high']:+.3f}]"
        tau = "n/a" if r["tau"] is None else f"{r['tau']:+.3f}{interval}"
        lines.append(f"| {name} | {_cost(r)} | {tau} | {_num(r['ratio'], '.2f')} | {_num(r['regret'], '.4f')} | "
                     f"{_rate(r)} | {'yes' if r['name'] in front else ''} | {r['n']} |")
    return lines


def _points(rec: dict) -> list[str]:
    shown = [r for r in rec["rows"] if r["kind"] == "estimator" or r["name"] == "naswot"]
    ref = rec["reference"]["maps"]
    lines = ["| point | reference mAP | " + " | ".join(r["name"] for r in shown) + " |",
             "|---|---|" + "---|" * len(shown)]
    for g in rec["points"]:
        cells = [_num(r["values"].get(g), ".4f") for r in shown]
        lines.append(f"| {g} | {_num(ref.get(g), '.4f')} | " + " | ".join(cells) + " |")
    return lines


def _intro(rec: dict) -> list[str]:
    ref, cache = rec["reference"], rec.get("cache") or {}
    ceiling = ("unknown: the reference has one seed per point so far, so tau / ceiling is n/a"
               if ref["ceiling_tau"] is None else f"{ref['ceiling_tau']:.3f} (`reliability(rows).ceiling_tau`: the tau "
               f"a perfect estimator would reach against this {len(ref['seeds'])}-seed mean)")
    built = (f" The feature cache ({cache['rows']} rows, {cache['bytes'] / 2**20:.1f} MiB float16) was built once "
             f"before timing in {cache['cpu']:.1f} CPU-s ({cache['wall']:.1f} s wall), not charged to any candidate."
             if cache.get("built") else "")
    return [f"The {len(rec['points'])} points of `{rec['run']}`, each estimated by every row on this machine in one run "
            f"({rec['threads']} torch threads; proxy seeds {', '.join(map(str, rec['seeds']))}), ranked against the "
            f"long-budget reference (`fidelity.json`: {ref['factor']:g}x the budget, {ref['steps']} steps, the "
            f"{ref['scored']} weights' mAP, mean over the seeds every point shares: "
            f"{', '.join(map(str, ref['seeds']))}; {len(ref['maps'])} points so far).", "",
            "CPU-seconds per candidate: `time.process_time` around one estimate (training and both weights' "
            "evaluation, all threads; the training-loss row is charged the training alone), summed over the proxy "
            "seeds, median over points. The equal-CPU cached row trains "
            f"{rec['equal_steps']} steps: {rec['steps']} x (proxy CPU - cached evaluation CPU) / cached training CPU, "
            f"from this run's medians.{built} Zero-cost scores are the recorded ones (what the search ranked by), "
            "their CPU-seconds (all three scores together) measured here; params and FLOPs are counted for every "
            "trial anyway.", "",
            f"Kendall tau-b against the reference, 95% percentile bootstrap interval over points "
            f"({rec['bootstrap']} resamples); top-1 regret: reference mAP of the best point minus that of the "
            f"estimator's winner. Ceiling: {ceiling}. Front: not beaten on both CPU-seconds and tau by another row.",
            *_supernet(rec)]


def _supernet(rec: dict) -> list[str]:
    """How the supernet row was charged, when the record has one."""
    sn = rec.get("supernet")
    if not sn:
        return []
    space = ", ".join(f"{k} {v}" for k, v in sn["space"].items())
    return ["", f"Supernet row: one supernet per topology over {space} ({sn['sub_networks']:,} sub-networks in all), "
            f"{sn['steps']} sandwich steps each, trained by `benchmarks/bench_supernet.py` ({sn['training_cpu'] / 3600:.2f} "
            "CPU-hours in all, its recorded training CPU-seconds) and read back here; each point inside the space is "
            "charged the CPU-seconds of its trial measured here (extract, batch-norm recalibration, COCO evaluation) "
            f"plus {sn['training_cpu']:.0f} / {sn['sub_networks']:,} CPU-s of training. Points outside the space have "
            "no value in this row (see its n)."]


def _target(rec: dict) -> list[str]:
    """The supernet target's check (``bench_estimators.target_check``), when the record has one."""
    t = rec.get("target")
    if not t:
        return []
    labels = {r["name"]: r["label"] for r in rec["rows"]}
    cost = (f"{t['cost_share']:.3f} of its CPU-seconds per candidate (target {t['cost_target']:g} or less: "
            f"{'met' if t['cost_met'] else 'missed'})")
    tau = (f"tau {t['tau_difference']:+.3f} against it (target >= 0: {'met' if t['tau_met'] else 'missed'} on the "
           f"point estimate), paired 95% bootstrap interval of the difference [{t['low']:+.3f}, {t['high']:+.3f}] "
           f"over the {t['n']} points both rows rank ({t['resamples']} resamples, each scoring both rows on the same "
           "points)")
    shown = {"cannot tell": "these points cannot tell the two rankings apart: the interval spans 0",
             "worse": f"the {t['row']} row ranks worse: the whole interval lies below 0",
             "not worse": f"the {t['row']} row ranks no worse: the interval lies at or above 0"}[t["tau_shown"]]
    return ["", f"Target (the supernet issue: the {t['row']} row's tau at least the best other row's at "
            f"{t['cost_target']:g} of its CPU-seconds or less): against **{labels.get(t['against'], t['against'])}**, "
            f"the best other row, the {t['row']} row costs {cost}; {tau}: {shown}. The bar is the best of several rows "
            "on the same points, so it is biased upwards: a miss here is weaker evidence than it reads."]


def render_estimators(rec: dict) -> str:
    from render import benchmark_page

    first = next((r for r in rec["rows"] if r["name"] == rec.get("first")), None)
    verdict = (f"First per CPU-second: **{first['label']}** (tau {first['tau']:+.3f} at {first['cpu_seconds']:.1f} "
               f"CPU-s per candidate)." if first else
               "First per CPU-second: **none**: no usable row's 95% interval lies above 0 on these points.")
    body = _intro(rec) + ["", *_table(rec), "", f"{verdict} Rule: {FIRST_RULE}.", *_target(rec), "",
                          "## Per point (what each row ranks by; higher first)", "", *_points(rec)]
    return benchmark_page(rec, "estimators", body)


def headline_estimators(rec: dict) -> list[str]:
    rows = {r["name"]: r for r in rec["rows"]}
    first = rows.get(rec.get("first"))
    out = [f"first per CPU-second: {first['label']} (tau {first['tau']:+.3f}, {first['cpu_seconds']:.0f} CPU-s)"
           if first else "first per CPU-second: none (no interval above 0)"]
    for r in rec["rows"]:  # every estimator a study can use, in the table's order
        if r["kind"] != "estimator" or r["name"] == rec.get("first"):
            continue
        if r and r["tau"] is not None:
            cost = "n/a" if r["cpu_seconds"] is None else f"{r['cpu_seconds']:.0f}"
            out.append(f"{r['label']}: tau {r['tau']:+.3f}, {cost} CPU-s per candidate")
    return out
