"""The page and headline of the ``supernet`` benchmark record (``bench_supernet.py``), registered in ``render.py``.
``render``'s helpers are imported at call time. Every figure shown is in the record."""

from __future__ import annotations


def _num(x, fmt: str = ".3f") -> str:
    return "n/a" if x is None else format(x, fmt)


def render_supernet(rec: dict) -> str:
    from render import benchmark_page

    space = ", ".join(f"{k} {v}" for k, v in rec["space"].items())
    ref = rec["reference"]
    body = [f"One supernet per topology ({', '.join(rec['topologies'])}) over {space}: {rec['sub_networks']:,} "
            f"sub-networks in all, trained by the sandwich rule with in-place distillation for {rec['steps']} steps each "
            f"on the cached features of `{rec['run']}`'s data (settings {rec['settings']}). Each of the "
            f"{len(rec['points'])} reference points that lie in the space was scored by inheritance (extract, "
            f"batch-norm recalibration on {rec['calib_images']} train images, COCO evaluation) and ranked against the "
            f"long-budget reference: the mean over seeds {ref['seeds']} of `{rec['run']}/fidelity.json`.", "",
            "| measure | value |", "|---|---|",
            f"| Kendall tau, inherited mAP vs reference | {_num(rec['tau'])} (95 % interval {_num(rec['low'])} to "
            f"{_num(rec['high'])}, n {rec['n']}) |",
            f"| reference ceiling tau | {_num(ref['ceiling_tau'])} |",
            f"| tau / ceiling | {_num(rec['ratio'])} |",
            f"| top-1 regret (reference mAP) | {_num(rec['regret'], '.4f')} |",
            f"| supernet training | {rec['training_cpu_hours']:.3f} CPU-hours for {len(rec['training'])} supernet(s) |",
            f"| one trial (extract + recalibrate + evaluate), median of {len(rec['points']) + rec['sampled']} | "
            f"{rec['trial_cpu_seconds']:.2f} CPU-s, {rec['trial_wall_seconds']:.2f} s wall: {rec['trials_per_hour']:,} "
            "trials per hour on one worker |",
            f"| CPU-seconds per candidate, training amortised over the {rec['sub_networks']:,} sub-networks | "
            f"{rec['cpu_per_candidate']:.2f} |", "",
            "| point | inherited mAP | reference mAP |", "|---|---|---|"]
    for g in rec["points"]:
        body.append(f"| {g} | {rec['inherited'][g]:.4f} | {ref['maps'][g]:.4f} |")
    if rec["outside"]:
        body += ["", f"Outside the elastic space (not scored): {', '.join(rec['outside'])}."]
    body += ["", "Per supernet: " + "; ".join(
        f"{t}: {v['steps']} steps, {v['cpu_seconds'] / 60:.1f} CPU-min, final loss {_num(v['final_loss'])}"
        + (f" (resumed at {v['resumed_from']})" if v["resumed_from"] else "") for t, v in rec["training"].items())]
    return benchmark_page(rec, "supernet", body)


def headline_supernet(rec: dict) -> list[str]:
    return [f"supernet: inherited mAP vs the long-budget reference tau {_num(rec['tau'])} [{_num(rec['low'])}, "
            f"{_num(rec['high'])}] (ceiling {_num(rec['reference']['ceiling_tau'])}); {rec['training_cpu_hours']:.2f} "
            f"CPU-h of training, {rec['trials_per_hour']:,} trials/h, {rec['cpu_per_candidate']:.2f} CPU-s per "
            "candidate amortised"]
