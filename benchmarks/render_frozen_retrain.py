"""The page and headline of a ``frozen_retrain_<study>`` record (``bench_frozen_retrain.py``), registered in
``render.py`` as a family (one record per run). ``render``'s helpers are imported at call time. Every figure shown
is in the record."""

from __future__ import annotations

import statistics

ALPHA = 0.05


def _mean_sd(maps: list[float]) -> str:
    sd = statistics.stdev(maps) if len(maps) > 1 else float("nan")
    return f"{statistics.fmean(maps):.4f} ± {sd:.4f} (n {len(maps)})"


def _name(point: dict) -> str:
    spec = point["spec"]
    arch = (f"{spec.get('topology')} {spec.get('fusion')}/{spec.get('activation')} {spec.get('fpn_channels')} x "
            f"{spec.get('fpn_repeats')}, heads {spec.get('head_repeats')}, {spec.get('resolution')} px")
    who = f"{point['label']} (trial {point['number']})" if point.get("label") else f"trial {point['number']}"
    return f"{who}: {arch}"


def peak(arm: dict, steps: int) -> tuple[int, float] | None:
    """(step, mean mAP) of the mean learning curve's highest point, the final step included; None unless every seed
    has a curve."""
    from scalesearch.report.baseline import mean_by_step

    curves = arm.get("curves")
    if not curves or any(c is None for c in curves):
        return None
    means = mean_by_step([[*((int(k), v) for k, v in curve.items()), (steps, final)]
                          for curve, final in zip(curves, arm["maps"])])
    step = max(means, key=lambda s: (means[s], -s))
    return step, means[step]


def _seconds(arm: dict) -> float | None:
    walls = arm.get("wall_seconds")
    return statistics.fmean(walls) if walls else None


def _change(test: dict) -> str:
    """``higher``/``lower`` (Holm-adjusted p below alpha), ``untestable ...`` when even the seeds' smallest Holm p
    cannot reach alpha, else ``within seed noise``, for frozen minus fine-tuned."""
    if test["holm_p"] < ALPHA:
        return "higher" if test["mean"] > 0 else "lower"
    floor = test.get("holm_floor")
    if floor is not None and floor >= ALPHA:
        return (f"untestable with {len(test['differences'])} paired seeds (smallest Holm p {floor:.3g}), higher on "
                f"{test['higher']} of {len(test['differences'])}")
    return "within seed noise"


def pooled(points: list[dict]) -> dict | None:
    """Frozen minus fine-tuned over every point, one test: per seed that every point holds, the mean difference over
    the points; the exact two-sided sign-flip test of their mean, a seed's points flipped together (its trainings
    share its batches). None below two points or two common seeds."""
    from scalesearch.report.stats import flip_min_p, sign_flip_p

    if len(points) < 2:
        return None
    common = sorted(set.intersection(*(set(p["finetuned"]["seeds"]) for p in points)))
    if len(common) < 2:
        return None
    per_seed = [statistics.fmean(p["frozen_minus_finetuned"]["differences"][p["finetuned"]["seeds"].index(seed)]
                                 for p in points) for seed in common]
    p_value, exact = sign_flip_p(per_seed)
    return {"seeds": common, "per_seed": per_seed, "mean": statistics.fmean(per_seed),
            "higher": sum(d > 0 for d in per_seed), "p": p_value, "exact": exact, "min_p": flip_min_p(len(common))}


def _pooled_text(test: dict, points: int) -> str:
    n = len(test["seeds"])
    if test["p"] < ALPHA:
        verdict = "higher" if test["mean"] > 0 else "lower"
    else:
        verdict = f"untestable with {n} seeds" if test["min_p"] >= ALPHA else "within seed noise"
    return (f"over the {points} points {test['mean']:+.4f}, {verdict} (higher on {test['higher']} of {n} seeds; "
            f"p {test['p']:.3g}, smallest possible {test['min_p']:.3g})")


def render_frozen_retrain(rec: dict) -> str:
    from render import benchmark_page

    points = rec.get("points") or []
    if not points:
        return benchmark_page(rec, rec["benchmark"], ["No point was retrained with the backbone frozen yet."])
    first = points[0]
    body = [f"The points of `{rec['run']}/fidelity.json` retrained at the same budget ({first['factor']:g}x, "
            f"{first['steps']} steps) on the same seeds with the pretrained backbone **frozen** "
            f"(`{rec['run']}/fidelity_frozen.json`: its features computed once per resolution, only the feature "
            "network and heads train) instead of fine-tuned; recipe, seeded batches and the initial weights of "
            f"the trained parts are the same, so each (point, seed) is a pair.{_recipe(rec)} "
            f"{first['scored'].upper() if first['scored'] == 'ema' else 'Raw'} weights scored. Frozen minus "
            "fine-tuned is tested per point by the exact two-sided sign-flip test on the paired seeds, Holm over the "
            "points. The peak is the mean learning curve's highest step (descriptive: the highest of several noisy "
            "means, not tested). Seconds per training: the fine-tuned ones as recorded when they were trained (in "
            "earlier sessions; machines differ by up to 2x between sessions, so compare the two columns as an "
            "indication only; `cached_step.md` measures the per-step ratio in one run).", "",
            "| point | fine-tuned mAP | frozen mAP | frozen − fine-tuned | p (Holm) | s / training: fine-tuned "
            "(earlier) → frozen (this run) | peak step fine-tuned / frozen |", "|---|---|---|---|---|---|---|"]
    for point in points:
        a, b, test = point["finetuned"], point["frozen"], point["frozen_minus_finetuned"]
        sa, sb = _seconds(a), _seconds(b)
        time_cell = f"{sa:.0f} → {sb:.0f}" if sa and sb else "n/a"
        pa, pb = peak(a, point["steps"]), peak(b, point["steps"])
        peak_cell = " / ".join("n/a" if p is None else f"{p[0]} ({p[1]:.4f})" for p in (pa, pb))
        body.append(f"| {_name(point)} | {_mean_sd(a['maps'])} | {_mean_sd(b['maps'])} | {test['mean']:+.4f}, "
                    f"higher on {test['higher']} of {len(test['differences'])} | {test['p']:.3g} "
                    f"({test['holm_p']:.3g}) | {time_cell} | {peak_cell} |")
    body += ["", _summary(rec, points), ""]
    both = pooled(points)
    if both:
        body += [f"One test over all the points (the question \"does freezing the backbone change mAP on this data?\", "
                 "a family of one): per seed, the mean of frozen minus fine-tuned over the points; the exact "
                 "two-sided sign-flip test of their mean, each seed's points flipped together. Frozen minus "
                 f"fine-tuned {_pooled_text(both, len(points))}.", ""]
    verdicts = rec.get("verdicts")
    if verdicts:
        fine = {v["number"]: v for v in verdicts["finetuned"]}
        frozen = {v["number"]: v for v in verdicts["frozen"]}
        seeds = verdicts["seeds"]
        body += [f"Against {rec['label']}, each arm on its own (seeds {seeds[0]}-{seeds[-1]}; the report's tests: "
                 "paired sign-flip, margin 0.01 for non-inferiority, Holm over the points of this table, whereas "
                 "the study report's family holds every retrained point, so its fine-tuned verdicts can differ; "
                 "the latencies measured once per network in fidelity.json):", "",
                 f"| point | fine-tuned: mAP − {rec['label']} | fine-tuned verdict | frozen: mAP − {rec['label']} | "
                 "frozen verdict |", "|---|---|---|---|---|"]
        for point in points:
            n = point["number"]
            if n not in fine or n not in frozen:
                continue
            body.append(f"| {_name(point)} | {fine[n]['diff']:+.4f} | {fine[n]['text']} | {frozen[n]['diff']:+.4f} | "
                        f"{frozen[n]['text']} |")
        body.append("")
    return benchmark_page(rec, rec["benchmark"], body)


def _summary(rec: dict, points: list[dict]) -> str:
    changes = [f"{p['label'] or 'trial ' + str(p['number'])} {_change(p['frozen_minus_finetuned'])} "
               f"({p['frozen_minus_finetuned']['mean']:+.4f}, Holm p {p['frozen_minus_finetuned']['holm_p']:.3g})"
               for p in points]
    text = "Frozen against fine-tuned: " + "; ".join(changes) + "."
    fine_s, frozen_s = rec.get("finetuned_training_seconds"), rec.get("frozen_training_seconds")
    if fine_s and frozen_s:
        call = rec.get("call") or {}
        sessions = len(rec.get("finetuned_sessions") or []) or "earlier"
        text += (f" Cost: the paired trainings took {frozen_s / 60:.1f} min frozen in this run and "
                 f"{fine_s / 60:.1f} min fine-tuned as recorded in {sessions} earlier session(s) (indicative only)")
        built = call.get("cache_build_seconds") or {}
        if built:
            text += "; building the feature caches in this call: " + ", ".join(f"{k} {v:g} s" for k, v in built.items())
        if call.get("wall_seconds"):
            text += (f"; this call ran {call['wall_seconds'] / 60:.1f} min in all (trainings already in the file "
                     "are not rerun)")
        text += "."
    return text


def _recipe(rec: dict) -> str:
    recipe = rec.get("recipe")
    if not recipe:
        return ""
    bn = "kept as loaded" if recipe["freeze_backbone_bn"] else "trained"
    return (f" Fine-tuned recipe: backbone lr x{recipe['backbone_lr_mult']:g}, backbone BatchNorm {bn}. Frozen: "
            "the backbone's features stored as float16, its BatchNorm at its loaded statistics, gradient clipping "
            "over the trained parts only.")


def _short(test: dict) -> str:
    """The headline's status of one point: the change and its Holm p, or the seeds' split when untestable."""
    n, floor = len(test["differences"]), test.get("holm_floor")
    if test["holm_p"] >= ALPHA and floor is not None and floor >= ALPHA:
        return f"higher on {test['higher']} of {n} seeds; untestable, smallest Holm p {floor:.3g}"
    return f"{_change(test)}, Holm p {test['holm_p']:.3g}"


def headline_frozen_retrain(rec: dict) -> list[str]:
    points = rec.get("points") or []
    if not points:
        return ["no point retrained yet"]
    both = pooled(points)
    line = "frozen − fine-tuned backbone, mAP at the same steps and seeds: " + (
        f"{_pooled_text(both, len(points))}; per point " if both else "") + ", ".join(
        f"{p['label'] or 'trial ' + str(p['number'])} {p['frozen_minus_finetuned']['mean']:+.4f} "
        f"({_short(p['frozen_minus_finetuned'])})" for p in points)
    return [line]
