"""The page, headline and README table of a ``beat_lite0_<study>`` record (``beat_lite0.py``), registered in
``render.py`` as a family (one record per dataset). ``render``'s helpers are imported at call time. Every figure
shown is in the record."""

from __future__ import annotations

import statistics

ARCH = ("topology", "fusion", "activation", "resolution", "fpn_channels", "fpn_repeats", "head_repeats")


def _maps(row: dict) -> str:
    maps = row["maps"]
    sd = statistics.stdev(maps) if len(maps) > 1 else float("nan")
    return f"{statistics.fmean(maps):.4f} ± {sd:.4f} (n {len(maps)})"


def _ms(value) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def _arch(row: dict) -> str:
    spec = row["spec"]
    return (f"{spec.get('topology')} {spec.get('fusion')}/{spec.get('activation')}, {spec.get('fpn_channels')} x "
            f"{spec.get('fpn_repeats')}, heads {spec.get('head_repeats')}, {spec.get('resolution')} px")


def _onnx(rec: dict, which: str) -> str:
    found = (rec.get("onnx_latency") or {}).get(which)
    return "n/a" if not found else f"{found['median_ms']:.2f} ms"


def readme_table(rec: dict) -> str:
    """The README's results table for one dataset: the baseline and the winner, and the command."""
    base, win = rec.get("baseline"), rec.get("winner")
    if not (base and win):
        return "not measured yet"
    lines = ["", "", f"| {rec['dataset']} | mAP mean ± sd (n) at {rec['factor']:g}x{', backbone frozen' if _frozen(rec) else ''} | latency torch | "
                     "latency ONNX Runtime (NMS inside) | verdict |", "|---|---|---|---|---|",
             f"| {rec['label']} (trial {base['number']}) | {_maps(base)} | {_ms(base['torch_latency_ms'])} | "
             f"{_onnx(rec, 'baseline')} | baseline |",
             f"| winner: trial {win['number']}, {_arch(win)} | {_maps(win)} | {_ms(win['torch_latency_ms'])} | "
             f"{_onnx(rec, 'winner')} | {win['text']} |", "",
             f"Reproduce: `{rec.get('command', '?')}` (search, retraining, export: "
             + ", ".join(f"{k} {v['wall_seconds'] / 60:.0f} min" for k, v in _main_steps(rec).items())
             + f"; total {_total(rec) / 60:.0f} min; `reports/benchmarks/{rec['benchmark']}.md`)", ""]
    return "\n".join(lines)


def _frozen(rec: dict) -> bool:
    """Whether the record's retraining froze the pretrained backbone (``beat_lite0.py --frozen-backbone``)."""
    return rec.get("backbone") == "frozen"


def _total(rec: dict) -> float:
    """Search to verdict: the main steps' wall seconds summed."""
    return sum(v["wall_seconds"] for v in _main_steps(rec).values())


def _main_steps(rec: dict) -> dict[str, dict]:
    """search, retrain, and everything after them summed as export (exports and ONNX Runtime timings). Retrain is
    the larger of the step's own wall time and the recorded trainings' sum (a resumed step holds only this call's
    trainings; a fresh one also holds building feature caches and measuring latency)."""
    steps = rec.get("steps", {})
    out = {k: steps[k] for k in ("search", "retrain") if k in steps}
    if rec.get("retrain_wall_seconds") and "retrain" in out:  # every session's retraining, not this call's alone
        out["retrain"] = {**out["retrain"], "wall_seconds": max(rec["retrain_wall_seconds"],
                                                                out["retrain"]["wall_seconds"])}
    rest = [v for k, v in steps.items() if k not in out]
    if rest:
        out["export"] = {"wall_seconds": sum(v["wall_seconds"] for v in rest),
                         "cpu_seconds": sum(v["cpu_seconds"] for v in rest)}
    return out


def _seeds_phrase(win: dict, base: dict) -> str:
    """Whether the paired seeds (those the winner and the baseline share) could reach p < 0.05 at all: how many would
    when they could not; else that it was reachable and not reached."""
    need, have = win.get("seeds_needed"), len(set(win.get("seeds") or ()) & set(base.get("seeds") or ()))
    if not need:
        return ""
    if need > have:
        return f"; {need} paired seeds would make p < 0.05 reachable ({have} were run)"
    return f"; p < 0.05 was reachable with these {have} paired seeds but not reached"


def _missing(rec: dict) -> str:
    """What the closest point misses when nothing beats the baseline."""
    win = rec["winner"]
    if win["verdict"] in ("dominates", "non-inferior and faster"):
        return ""
    parts = []
    if win.get("faster") is False:
        parts.append("it is not faster (latency quartiles overlap or it is slower)")
    if win.get("faster") is None:
        parts.append("its latency was not measured")
    if win["verdict"] == "cannot tell with these seeds":
        parts.append(f"mean paired difference {win['diff']:+.4f} mAP; non-inferiority Holm p "
                     f"{win['noninferiority_holm_p']:.3g}, superiority Holm p {win['superiority_holm_p']:.3g}"
                     + _seeds_phrase(win, rec["baseline"]))
    elif win["verdict"] == "worse":
        parts.append(f"it is worse by {-win['diff']:.4f} mAP (superiority Holm p {win['superiority_holm_p']:.3g})")
    return "Nothing beats the baseline here; the closest point (the winner above) misses: " + "; ".join(parts) + "."


def render_beat_lite0(rec: dict) -> str:
    from render import benchmark_page

    frozen = (" with the pretrained backbone frozen (`scalesearch fidelity --frozen-backbone`: its features computed "
              "once per resolution, the feature network and heads trained on them; records "
              "`fidelity_frozen.json`)") if _frozen(rec) else ""
    body = [f"Study `{rec['study']}` on `{rec['dataset']}`, run folder `{rec['run']}`: search, then {rec['label']} and "
            f"the {rec['top_k']} best front points cheaper than it retrained at {rec['factor']:g}x the study's budget on "
            f"{rec['seeds']} paired seeds{frozen}, verdicts by `scalesearch.report.baseline` (Holm over the retrained points), "
            f"the winner and {rec['label']} exported to ONNX with NMS inside and timed in ONNX Runtime, "
            f"{rec['rounds']} rounds in alternating order.", "", "## Steps", "",
            "| step | wall | CPU-s | command |", "|---|---|---|---|"]
    for name, step in rec.get("steps", {}).items():
        cpu = "-" if step.get("cpu_seconds") is None else f"{step['cpu_seconds']:.0f}"
        note = f" ({step['from']}{', ' + step['ran'] if step.get('ran') else ''})" if step.get("from") else ""
        body.append(f"| {name} | {step['wall_seconds'] / 60:.1f} min | {cpu} | `{step['command']}`{note} |")
    if rec.get("retrain_wall_seconds"):
        file = "fidelity_frozen.json" if _frozen(rec) else "fidelity.json"
        body += ["", f"Retraining, every seed of every point as `{file}` records it (all sessions): "
                     f"{rec['retrain_wall_seconds'] / 60:.0f} min wall"
                     + (f" (the seeds copied by `--reuse` from `{rec['reuse']}` count with the time they took "
                        "there)." if rec.get("reuse") else ".")]
    body += ["", f"Search to verdict: {_total(rec) / 60:.0f} min wall ("
             + ", ".join(f"{k} {v['wall_seconds'] / 60:.1f}" for k, v in _main_steps(rec).items()) + ")."]
    for which, found in (rec.get("checkpoints") or {}).items():
        same = "" if found.get("recorded_map") is None or found.get("map") is None else (
            ", the same as recorded" if found["map"] == found["recorded_map"]
            else f", recorded {found['recorded_map']:.4f} ({found['map'] - found['recorded_map']:+.2g})")
        body.append(f"- exported {which}: `{found['checkpoint']}`, seed {found['seed']}, mAP "
                    f"{'-' if found.get('map') is None else format(found['map'], '.4f')}{same}")
    body += ["", "## Against the baseline", "",
             "| trial | architecture | mAP mean ± sd (n) | torch latency (median) | verdict |", "|---|---|---|---|---|"]
    if rec.get("baseline"):
        base = rec["baseline"]
        body.append(f"| {base['number']} ({rec['label']}) | {_arch(base)} | {_maps(base)} | "
                    f"{_ms(base['torch_latency_ms'])} | baseline |")
    for row in rec.get("points", []):
        body.append(f"| {row['number']} | {_arch(row)} | {_maps(row)} | {_ms(row['torch_latency_ms'])} | "
                    f"{row['text']} |")
    if rec.get("winner"):
        body += ["", f"Winner: trial {rec['winner']['number']}. " + _missing(rec), "", "## ONNX Runtime", "",
                 "| graph | median | interquartile range | timed runs | boxes kept |", "|---|---|---|---|---|"]
        for which, found in (rec.get("onnx_latency") or {}).items():
            body.append(f"| {which} (`{found['onnx']}`) | {found['median_ms']:.2f} ms | {found['iqr_ms'][0]:.2f} to "
                        f"{found['iqr_ms'][1]:.2f} ms | {found['runs']} | {found['detections']} |")
    else:
        body += ["", "No retrained point to compare."]
    return "\n".join(benchmark_page(rec, rec["benchmark"], body).splitlines()) + "\n"


def headline_beat_lite0(rec: dict) -> list[str]:
    win, base = rec.get("winner"), rec.get("baseline")
    if not (win and base):
        return ["no verdict yet"]
    steps = ", ".join(f"{k} {v['wall_seconds'] / 60:.0f} min" for k, v in _main_steps(rec).items())
    return [f"{rec['label']} {_maps(base)} vs trial {win['number']} {_maps(win)}: {win['text']}",
            f"ONNX Runtime: {rec['label']} {_onnx(rec, 'baseline')}, winner {_onnx(rec, 'winner')}; wall time: {steps}"]
