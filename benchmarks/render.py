"""Benchmark records: write ``reports/benchmarks/NAME.json``, render it as ``NAME.md`` and the index.

No figure is typed by hand: each Markdown file is a function of its record, and ``reports/benchmarks.md``
(the index) is a function of all records plus the shipped studies' run folders (``reports/runs/*``:
``trials.json`` and ``meta.json``). One renderer per benchmark name (the record's ``benchmark`` key) in
``RENDERERS`` and one headline function in ``HEADLINES``; a record without one is listed, not rendered.

    python benchmarks/render.py                    # every record, reports/benchmarks.md, every study report
    python benchmarks/render.py --only benchmarks  # the benchmark pages and index only (seconds)

Study reports (``reports/*/report.md`` + ``report.html`` + figures) are re-rendered by the ``scalesearch
report`` command stated under each one's title, from the committed run folders (``reports/runs/*``);
``tests/report/test_committed_reports.py`` renders each into a temporary folder and fails on any difference.

Benchmark scripts call ``begin_record(name)`` once their settings are known and ``save_record(record)``
at the end: that adds the run time and load averages, writes the JSON and re-renders everything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from scalesearch.records import machine_cores, read_json, records_path, run_wall_seconds

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "reports" / "benchmarks"
INDEX = ROOT / "reports" / "benchmarks.md"
RUNS = ROOT / "reports" / "runs"
LOCK = "/tmp/scalesearch-cpu.lock"


# ---------------------------------------------------------------- writing records

def _command() -> tuple[str, bool]:
    """The command line as typed (the parent ``flock ... python ...`` when run under the CPU lock), locked?
    Absolute paths in it are made relative to the working folder (``machine.portable_command``)."""
    from scalesearch.machine import portable_command

    own = portable_command(["python", *sys.argv])
    pid = os.getppid()
    for _ in range(8):  # the parent, or an ancestor when a script run under the lock started this one
        try:
            argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return own, False
        if argv and Path(argv[0]).name == "flock" and LOCK in argv:
            return shlex.join(argv[:argv.index(LOCK) + 1]) + " " + own, True
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid <= 1:
            break
    return own, False


def begin_record(name: str, **settings) -> dict:
    """A new record: benchmark name, command, machine, CPU lock, load average now, and ``settings``."""
    from scalesearch.machine import describe, machine_info

    command, locked = _command()
    info = machine_info()
    return {"benchmark": name, "command": command, "cpu_lock": locked, "machine": info,
            "machine_line": describe(info), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "load_average": {"start": [round(x, 2) for x in os.getloadavg()]}, **settings,
            "_t0": time.perf_counter()}


def save_record(record: dict) -> Path:
    """Add run time and end load average, write ``reports/benchmarks/NAME.json``, re-render all pages."""
    record = dict(record)
    record["seconds"] = round(time.perf_counter() - record.pop("_t0"), 1)
    record["load_average"] = {**record["load_average"], "end": [round(x, 2) for x in os.getloadavg()]}
    FOLDER.mkdir(parents=True, exist_ok=True)
    path = FOLDER / f"{record['benchmark']}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {_rel(path)}")
    render_benchmarks()
    return path


def save_or_write(record: dict, out: str | None) -> None:
    """``save_record`` (the committed record, pages re-rendered), or with ``out`` (a script's ``--out``) the record
    alone written there, no run time added, nothing rendered."""
    if out:
        record.pop("_t0", None)
        Path(out).write_text(json.dumps(record, indent=1) + "\n")
    else:
        save_record(record)


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def _setting(r: dict) -> str:
    if r["weights"] == "none":
        return f"scratch, lr {r['lr']:g}"
    bn = "frozen" if r["frozen_bn"] else "trained"
    return f"pretrained, lr {r['lr']:g}, backbone lr x{r['mult']:g}, backbone BN {bn}, warm-up {r['warmup']}"


def _best(rows: list[dict]) -> dict:
    return max(rows, key=lambda r: r["map"])


def render_pretrained(rec: dict) -> str:
    jobs = [j for j in rec["jobs"] if "map" in j]
    failed = [j for j in rec["jobs"] if "map" not in j]
    ours1 = [j for j in jobs if j["phase"] == 1 and j["model"] == "ours"]
    chosen = rec["recipe"]
    lines = [
        "# Pretrained Lite backbones: recipe, capacity ranking, effdet with the same weights",
        "",
        f"Generated by `python benchmarks/render.py` from `pretrained.json` (written by `{rec['command']}`; "
        f"{rec['seconds']} s on {rec['device']}: {rec['machine'].get('gpu') or rec['machine']['cpu']}, "
        f"torch {rec['machine']['torch']}). Every job: EfficientDet-Lite layout, batch {rec['batch_size']}, "
        f"{rec['steps']} steps, AdamW with linear warm-up + cosine decay, the project's loop and COCO evaluation; "
        "accuracy is compared at equal step budgets (a GPU run gives the same mAP a CPU run would, up to "
        "floating-point order; CPU speeds are measured separately below).",
        "",
        "## Fine-tuning recipe (lite0, seed 0)",
        "",
        "| setting | BCCD mAP | natural-photo mAP |",
        "|---|---|---|",
    ]
    by_setting: dict[str, dict[str, float]] = {}
    for j in ours1:
        by_setting.setdefault(_setting(j), {})[j["data"]] = j["map"]
    chosen_name = _setting({**chosen, "weights": "package"})
    for name, maps in by_setting.items():
        mark = " **(chosen)**" if name == chosen_name else ""
        lines.append(f"| {name}{mark} | {_fmt(maps.get('bccd', float('nan')))} | "
                     f"{_fmt(maps.get('natural', float('nan')))} |")
    lines += ["", f"Chosen by the best mean rank over both datasets (rank {chosen['mean_rank']:g}): "
                  f"{chosen_name}. These are the `TrainConfig` defaults (`backbone_lr_mult`, "
                  "`freeze_backbone_bn`, `warmup_steps`) and the command line's default lr.", ""]
    lines += ["| dataset | best from scratch | best pretrained | gain |", "|---|---|---|---|"]
    for data in ("bccd", "natural"):
        scratch = _best([j for j in ours1 if j["data"] == data and j["weights"] == "none"])
        pre = _best([j for j in ours1 if j["data"] == data and j["weights"] != "none"])
        lines.append(f"| {data} | {_fmt(scratch['map'])} ({_setting(scratch)}) | {_fmt(pre['map'])} "
                     f"({_setting(pre)}) | {pre['map'] - scratch['map']:+.3f} |")
    lines += _capacity(jobs, rec) + _peer(jobs, rec) + _cli(rec)
    if failed:
        lines += ["", f"{len(failed)} job(s) failed: " + "; ".join(j["error"] for j in failed)]
    return "\n".join(lines) + "\n"


def _capacity(jobs: list[dict], rec: dict) -> list[str]:
    lines = ["", "## Capacity ranking: pretrained lite1 vs lite0 on BCCD (chosen recipe, seeds 1-3)", "",
             "| preset | mAP per seed | mean | std | spread (max - min) |", "|---|---|---|---|---|"]
    means = {}
    for p in ("lite0", "lite1"):
        maps = [j["map"] for j in sorted(jobs, key=lambda j: j["seed"])
                if j["phase"] == 2 and j["model"] == "ours" and j["preset"] == p]
        if not maps:
            continue
        means[p] = statistics.mean(maps)
        std = statistics.stdev(maps) if len(maps) > 1 else float("nan")
        lines.append(f"| {p} | {', '.join(_fmt(m) for m in maps)} | {_fmt(means[p])} | {_fmt(std)} | "
                     f"{_fmt(max(maps) - min(maps))} |")
    if len(means) == 2:
        verdict = "above" if means["lite1"] > means["lite0"] else "not above"
        lines += ["", f"lite1 scores {verdict} lite0 in mean mAP ({means['lite1'] - means['lite0']:+.3f})."]
    return lines


def _peer(jobs: list[dict], rec: dict) -> list[str]:
    lines = ["", "## effdet 0.4.1 `tf_efficientdet_lite0` with the same weights, data, loop and budget (BCCD)", "",
             "Both sides run the same lr sweep; each is reported at its best lr. Pretrained rows use the chosen "
             "backbone settings on both sides and the very same ImageNet state dict.", "",
             "| init | lr | ours mAP | effdet mAP |", "|---|---|---|---|"]
    summary = []
    for init, phase_effdet in (("none", 1), ("package", 2)):
        knobs = rec["recipe"]
        ours = {j["lr"]: j["map"] for j in jobs if j["model"] == "ours" and j["phase"] == 1 and j["data"] == "bccd"
                and j["weights"] == init and (init == "none" or (j["mult"], j["frozen_bn"], j["warmup"]) ==
                                              (knobs["mult"], knobs["frozen_bn"], knobs["warmup"]))}
        theirs = {j["lr"]: j["map"] for j in jobs if j["model"] == "effdet" and j["weights"] == init}
        for lr in sorted(set(ours) | set(theirs)):
            lines.append(f"| {'scratch' if init == 'none' else 'pretrained'} | {lr:g} | "
                         f"{_fmt(ours.get(lr, float('nan')))} | {_fmt(theirs.get(lr, float('nan')))} |")
        if ours and theirs:
            o, t = max(ours.items(), key=lambda kv: kv[1]), max(theirs.items(), key=lambda kv: kv[1])
            summary.append(f"{'scratch' if init == 'none' else 'pretrained'}: ours {_fmt(o[1])} (lr {o[0]:g}) vs "
                           f"effdet {_fmt(t[1])} (lr {t[0]:g}), mAP ratio {o[1] / t[1]:.2f}")
    lines += ["", "Best of each side: " + "; ".join(summary) + "."]
    speed = rec.get("cpu_speed")
    if speed:
        lines += ["", f"CPU training speed, pretrained lite0 at 320 px, batch 8, {speed['threads']} threads, "
                      f"{speed['steps']} steps each, one process, one after the other: ours "
                      f"{speed['ours_images_per_second']:.2f} img/s, effdet {speed['effdet_images_per_second']:.2f} "
                      f"img/s, ratio {speed['ratio']:.2f}x."]
    return lines


def _cli(rec: dict) -> list[str]:
    check = rec.get("cli_check")
    if not check:
        return []
    lines = ["", "## The command a user types (CPU, defaults, 400 steps)", "",
             "Accuracy at an equal step budget does not depend on machine load; the runs' wall times do (they ran "
             "beside other work), so they are not compared here.", "", "| command | mAP | AP50 |", "|---|---|---|"]
    for r in check.values():
        lines.append(f"| `{r['command']}` | {_fmt(r['map'])} | {_fmt(r['map50'])} |")
    return lines


# ---------------------------------------------------------------- shared page parts

TITLES = {
    "zero_cost": "Zero-cost scores on detection: rank correlation with proxy and long-budget mAP",
    "multi_fidelity": "Multi-fidelity search at equal compute: flat vs successive halving vs zero-cost prefilter",
    "workers": "Trials per hour: one worker vs several, and two runs started by hand",
    "pretrained": "Pretrained Lite backbones: recipe, capacity, effdet with the same weights",
    "train_bccd": "Training from scratch on BCCD: scalesearch vs effdet 0.4.1",
    "quickstart_train": "Quickstart-size model on the built-in synthetic data",
    "cost": "Cost counting: scalesearch vs a plain fvcore trace of effdet",
    "search": "Search: framework overhead, hypervolume of TPE vs random",
    "cli_startup": "CLI start-up time",
}


def _machine_line(rec: dict) -> str:
    gpu = (rec.get("machine") or {}).get("gpu") if isinstance(rec.get("machine"), dict) else None
    if rec.get("machine_line"):
        return rec["machine_line"] + (f", GPU {gpu}" if gpu and "GPU" not in rec["machine_line"] else "")
    m = rec.get("machine")
    if isinstance(m, dict):
        return ", ".join(f"{k} {v}" for k, v in m.items() if v is not None)
    return str(m) if m else "not recorded"


def _load(rec: dict) -> str | None:
    load = rec.get("load_average")
    if not load:
        return None
    parts = [f"{when} {'/'.join(f'{x:.2f}' for x in vals)}" for when, vals in load.items()]
    cores = machine_cores(rec.get("machine")) or 2
    return f"load average (1/5/15 min, {cores} cores) " + ", ".join(parts)


def _busy(rec: dict) -> str | None:
    """A warning when the 1-minute load average exceeded cores + 1 at the start or end of the run."""
    load, cores = rec.get("load_average"), machine_cores(rec.get("machine"))
    if not load or not cores:
        return None
    peak = max(vals[0] for vals in load.values())
    if peak <= cores + 1:
        return None
    return (f"the machine was busy: 1-minute load average up to {peak:.1f} on {cores} cores (this run alone "
            f"accounts for about {cores}); timings are slower and time-budgeted results lower than alone")


def _provenance(rec: dict, name: str) -> list[str]:
    """Who made the record: command, machine, time, load, lock, budget note (one bullet list)."""
    lines = [f"- command: `{rec.get('command', '?')}`", f"- machine: {_machine_line(rec)}"]
    when = f" (started {rec['started']})" if rec.get("started") else ""
    if rec.get("seconds") is not None:
        lines.append(f"- run time: {rec['seconds']:g} s{when}")
    if _load(rec):
        lock = {True: "; run under the CPU lock", False: "; NOT run under the CPU lock"}.get(rec.get("cpu_lock"), "")
        lines.append(f"- {_load(rec)}{lock}")
    if _busy(rec):
        lines.append(f"- **contention:** {_busy(rec)}")
    if rec.get("budget_note"):
        lines.append(f"- **budget note:** {rec['budget_note']}")
    return lines


def benchmark_page(rec: dict, name: str, body: list[str]) -> str:
    head = [f"# {_title(name)}", "",
            f"Generated by `python benchmarks/render.py` from `{name}.json`; do not edit by hand.", ""]
    return "\n".join(head + _provenance(rec, name) + [""] + body) + "\n"


def _mb(flops: float) -> str:
    return f"{flops / 1e6:.1f} MFLOPs" if flops < 1e9 else f"{flops / 1e9:.2f} GFLOPs"


# ---------------------------------------------------------------- train_bccd

def render_train_bccd(rec: dict) -> str:
    res = rec["results"]
    body = [f"Data `{rec['data']}` ({rec['train_images']} train / {rec['val_images']} val images), "
            f"{rec['resolution']} px, batch {rec['batch_size']}, budget {rec['budget']} per model, trained from "
            f"scratch with the same loader and augmentation (scale range {rec['scale_range']}), the same loop "
            "(AdamW, warm-up + cosine, gradient clipping) and the same COCO evaluation.", "",
            "| | params | steps | train s | train img/s | val mAP | AP50 | eval s |",
            "|---|---|---|---|---|---|---|---|"]
    lrs = {"ours": rec["lr"], "effdet": rec["effdet_lr"]}
    label = {"ours": "scalesearch (channels_last)", "effdet": "effdet `efficientdet_d0` (NCHW, as it comes)"}
    for name, r in res.items():
        m = r["metrics"]
        body.append(f"| {label[name]}, lr {lrs[name]:g} | {r['params']:,} | {r['steps']} | {r['train_seconds']:.0f} | "
                    f"{r['images_per_second']:.2f} | {_fmt(m['map'])} | {_fmt(m['map50'])} | {r['eval_seconds']:.0f} |")
    loads = [f"{name} {_load(r)}" for name, r in res.items() if r.get("load_average")]
    if loads:
        body += ["", "Per side: " + "; ".join(loads) + "."]
    if "throughput_ratio" in rec:
        body += ["", f"Throughput ratio ours / effdet: **{rec['throughput_ratio']:.2f}x**."]
        if _busy(rec):
            body.append("The machine was busy during this run and the two sides ran one after the other, so they "
                        "may have seen different load: the ratio is not a reliable measure of the code.")
    if len(res) == 2 and rec["lr"] != rec["effdet_lr"]:
        body += ["", f"Caveat: the learning rates differ (each side's own recipe: ours {rec['lr']:g}, effdet "
                     f"{rec['effdet_lr']:g}); part of an mAP gap may be the learning rate."]
    return benchmark_page(rec, "train_bccd", body)


def headline_train_bccd(rec: dict) -> list[str]:
    out = []
    for name, r in rec["results"].items():
        out.append(f"{name}: {r['steps']} steps, {r['images_per_second']:.2f} img/s, mAP {_fmt(r['metrics']['map'])}, "
                   f"AP50 {_fmt(r['metrics']['map50'])}")
    if "throughput_ratio" in rec:
        caveat = " (machine busy: not reliable)" if _busy(rec) else ""
        out.append(f"throughput ratio ours / effdet {rec['throughput_ratio']:.2f}x{caveat}")
    return out


# ---------------------------------------------------------------- quickstart_train

def render_quickstart_train(rec: dict) -> str:
    m = rec["metrics"]
    body = [f"Paper rule at phi = {rec['phi']:g} ({rec['resolution']} px) on the "
            f"{rec['data']} data, {rec['minutes']:g} min of training, lr {rec['lr']:g}, batch {rec['batch_size']}, "
            f"seed {rec['seed']}; evaluation every {rec['eval_every']} steps is not part of the budget.", "",
            f"Final: {rec['steps']} steps, {rec['images_per_second']:.2f} img/s, **AP50 {_fmt(m['map50'])}**, "
            f"mAP {_fmt(m['map'])} (target AP50 >= {rec['target_map50']:g}: "
            f"{'met' if rec['passed'] else 'NOT met'}).", "", "| step | val AP50 |", "|---|---|"]
    body += [f"| {c['step']} | {_fmt(c['map50'])} |" for c in rec["curve"]]
    return benchmark_page(rec, "quickstart_train", body)


def headline_quickstart_train(rec: dict) -> list[str]:
    m = rec["metrics"]
    return [f"phi {rec['phi']:g}, {rec['resolution']} px, {rec['minutes']:g} min, lr {rec['lr']:g}: "
            f"{rec['steps']} steps, "
            f"{rec['images_per_second']:.2f} img/s, AP50 {_fmt(m['map50'])}, mAP {_fmt(m['map'])} "
            f"(target AP50 >= {rec['target_map50']:g} {'met' if rec['passed'] else 'NOT met'})"]


# ---------------------------------------------------------------- cost

def _cost_rows(rec: dict) -> dict:
    rows: dict[str, dict] = {}
    for r in rec["results"]:
        rows.setdefault(r["variant"], {})[r["method"]] = r
    return rows


def _cell(r: dict | None) -> str:
    if r is None:
        return "–"
    if "error" in r:
        return f"failed: {r['error']}"
    return f"{r['seconds']:.1f} s, {r['peak_gb']:.2f} GB"


def render_cost(rec: dict) -> str:
    body = ["Each count runs in a fresh process (cold caches, no disk cache; peak RSS is that process's own). "
            "Ours: `scalesearch.measure.cost.count_cost(preset(name))` (traces at 1x and 2x 2**max_level px, per-operator "
            "fit). Plain: `FlopCountAnalysis(effdet tf_efficientdet_<name>, zeros(1, 3, R, R)).total()` at the "
            "full resolution.", "",
            "| preset | ours: time, peak RSS | plain fvcore trace of effdet: time, peak RSS | params ours / effdet | "
            "FLOPs ours / effdet |", "|---|---|---|---|---|"]
    table = None
    for variant, by in _cost_rows(rec).items():
        if "ours_table" in by:
            table = by["ours_table"]
            continue
        o, e = by.get("ours"), by.get("effdet_plain")
        ok = o and e and "error" not in o and "error" not in e
        params = f"{o['params']:,} / {e['params']:,}" if ok else "–"
        flops = f"{o['flops']:,} / {e['flops']:,}" if ok else "–"
        body.append(f"| {variant.upper()} | {_cell(o)} | {_cell(e)} | {params} | {flops} |")
    if table:
        span = f"{rec['table'][0].upper()}..{rec['table'][-1].upper()}"
        body += ["", f"The whole {span} table in one process: {_cell(table)}."]
    return benchmark_page(rec, "cost", body)


def headline_cost(rec: dict) -> list[str]:
    out = []
    for variant, by in _cost_rows(rec).items():
        if "ours_table" in by:
            out.append(f"whole D0..D7x table: {_cell(by['ours_table'])}")
        else:
            out.append(f"{variant.upper()}: ours {_cell(by.get('ours'))} vs plain effdet trace "
                       f"{_cell(by.get('effdet_plain'))}")
    return out


# ---------------------------------------------------------------- search

def render_search(rec: dict) -> str:
    o = rec["overhead"]
    body = [f"Space {json.dumps(rec['space'])}, budget {_mb(rec['budget_flops'])}, objectives maximize mAP / "
            f"minimize FLOPs, {rec['trials']} trials of {rec['steps']} steps (batch {rec['batch_size']}, lr "
            f"{rec['lr']:g}) on the {rec['data']} data, real cost counting and real proxy training.", "",
            "## Framework overhead (everything but training and evaluation), TPE, seed 0", "",
            f"{o['trials']} trials ({o['trained']} trained) in {o['loop_seconds']:.1f} s, of which training + "
            f"evaluation {o['train_eval_seconds']:.1f} s: framework time **{o['framework_seconds_per_trial']:.2f} s "
            f"per trial = {100 * o['framework_share']:.1f} %** of trial time (cost counting "
            f"{o['cost_seconds_per_trial']:.2f} s, sampler + storage + records {o['rest_seconds_per_trial']:.3f} s "
            "per trial). Real proxy budgets are longer, so the share there is lower."]
    hv = rec.get("hypervolume")
    if hv:
        body += ["", f"## Hypervolume after {rec['trials']} trials (mAP vs log10 FLOPs, reference "
                     f"{_mb(hv['reference_flops'])})", "", "| sampler | " + " | ".join(
                         f"seed {r['seed']}" for r in next(iter(hv['samplers'].values()))['runs']) + " | mean |",
                 "|---|" + "---|" * (len(rec["seeds"]) + 1)]
        for name, v in hv["samplers"].items():
            body.append(f"| {name} | " + " | ".join(f"{r['hypervolume']:.5f}" for r in v["runs"]) +
                        f" | {v['mean']:.5f} |")
        body += ["", "Few trials and seeds at tiny budgets: a difference smaller than the seed-to-seed spread "
                     "is noise, not a ranking of the samplers."]
    return benchmark_page(rec, "search", body)


def headline_search(rec: dict) -> list[str]:
    o = rec["overhead"]
    out = [f"framework overhead {o['framework_seconds_per_trial']:.2f} s per trial = "
           f"{100 * o['framework_share']:.1f} % of trial time ({rec['trials']} trials of {rec['steps']} steps)"]
    hv = rec.get("hypervolume")
    if hv:
        per_seed = {k: " / ".join(f"{r['hypervolume']:.5f}" for r in v["runs"]) for k, v in hv["samplers"].items()}
        out.append(f"hypervolume after {rec['trials']} trials, mean (per seed): " + "; ".join(
            f"{k} {v['mean']:.5f} ({per_seed[k]})" for k, v in hv["samplers"].items()))
    return out


# ---------------------------------------------------------------- multi_fidelity (bench_multi_fidelity.py)

STRATEGY_TEXT = {"flat": "flat proxy", "halving": "successive halving (non-dominated)",
                 "prefilter": "zero-cost prefilter (NASWOT, best third)"}


def render_multi_fidelity(rec: dict) -> str:
    res = rec["results"]
    body = [f"Study `{rec['study']}` ({rec['proxy_steps']} proxy steps), searched three ways with search seed "
            f"{rec['seed']} and {rec['workers']} workers each; compute counted in training-step equivalents "
            f"(one evaluation = {rec['eval_steps']:g} steps, one step = {rec['step_seconds']:g} s, both measured "
            f"in the flat run). Budget: what the flat run spent, {rec['budget_steps']:g} step-equivalents. Each "
            f"final front (proxy mAP vs FLOPs) retrained at {rec['factor']:g}x; hypervolume of (mAP, FLOPs / reference) "
            f"with reference ({_mb(rec['reference']['flops'])}, mAP 0).", "",
            "| strategy | trials | trained | pruned | step-equivalents | front points | HV proxy mAP | "
            "HV long mAP |", "|---|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        body.append(f"| {STRATEGY_TEXT.get(name, name)} | {r['trials']} | {r['trained']} | {r['pruned']} | "
                    f"{r['steps_spent']:g} | {len(r['front'])} | {r['hypervolume_proxy_map']:.4g} | "
                    f"**{r['hypervolume_long_map']:.4g}** |")
    body += ["", "Front points (long-budget mAP decides):", "", "| strategy | point | FLOPs | proxy mAP | long mAP |",
             "|---|---|---|---|---|"]
    for name, r in res.items():
        for p in sorted(r["front"], key=lambda p: p["flops"]):
            body.append(f"| {name} | {p['group']} | {_mb(p['flops'])} | {p['proxy_map']:.3f} | {p['long_map']:.3f} |")
    fronts = {name: frozenset(p["group"] for p in r["front"]) for name, r in res.items()}
    body.append("")
    if len(set(fronts.values())) == 1:
        same = sorted(next(iter(fronts.values())))
        spread = [p["long_map"] for r in res.values() for p in r["front"]]
        body.append(f"**All three strategies ended on the same front** ({'; '.join(same)}). Its long-budget mAP "
                    f"differs between the three retrainings of the same spec ({min(spread):.3f} to {max(spread):.3f}) "
                    "only by retraining noise, so the hypervolume gaps above are noise, not a difference between the "
                    "strategies: on this space the proxy's cheapest good point is found by all three.")
    body.append("One search seed per strategy: the ordering above is this run's, not a law; a gap smaller than "
                "the spread between seeds of one strategy would be noise.")
    return benchmark_page(rec, "multi_fidelity", body)


def headline_multi_fidelity(rec: dict) -> list[str]:
    res = rec["results"]
    ranked = sorted(res, key=lambda k: -res[k]["hypervolume_long_map"])
    return [f"long-budget hypervolume at {rec['budget_steps']:g} step-equivalents each: " + "; ".join(
        f"{STRATEGY_TEXT.get(k, k)} {res[k]['hypervolume_long_map']:.4g} ({res[k]['trials']} trials, "
        f"{res[k]['trained']} trained)" for k in ranked)]


# ---------------------------------------------------------------- workers (bench_workers.py)

def render_workers(rec: dict) -> str:
    body = [f"`{rec['study']}` with {rec['trials']} trials of {rec['steps']} steps per scenario (random sampler, seed 0), "
            f"on {rec['cores']} cores; wall time of the whole command(s), start-up included. The hand-started "
            "runs are two `scalesearch run` commands with default settings, launched together, half the trials each.",
            "", "| scenario | trials | wall s | trials / hour | vs 1 worker | threads recorded | training s / trial |",
            "|---|---|---|---|---|---|---|"]
    for r in rec["results"]:
        body.append(f"| {r['scenario']} | {r['trials']} | {r['seconds']:g} | {r['trials_per_hour']:g} | "
                    f"**{r['vs_one_worker']:.2f}x** | {r['threads_recorded']} | {r['train_seconds_per_trial']:g} |")
    notes = [m for r in rec["results"] for m in r.get("sharing_messages", [])]
    if notes:
        body += ["", "What the hand-started runs printed:", ""] + [f"- `{m}`" for m in notes]
    return benchmark_page(rec, "workers", body)


def headline_workers(rec: dict) -> list[str]:
    return ["trials per hour vs one worker: " + "; ".join(
        f"{r['scenario']} {r['trials_per_hour']:g} ({r['vs_one_worker']:.2f}x)" for r in rec["results"])]


# ---------------------------------------------------------------- cli_startup (written by bench_cli.py)

def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_value(x) for x in v)
    if isinstance(v, dict):
        return "; ".join(f"{k} {_value(x)}" for k, x in v.items())
    return str(v)


def _results_table(results: dict) -> list[str]:
    if results and all(isinstance(v, dict) for v in results.values()):
        cols: list[str] = []
        for v in results.values():
            cols += [k for k in v if k not in cols]
        lines = ["| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for name, v in results.items():
            lines.append(f"| `{name}` | " + " | ".join(_value(v.get(c, "–")) for c in cols) + " |")
        return lines
    return ["| | value |", "|---|---|"] + [f"| `{k}` | {_value(v)} |" for k, v in results.items()]


def render_cli_startup(rec: dict) -> str:
    return benchmark_page(rec, "cli_startup", _results_table(rec.get("results") or {}))


def headline_cli_startup(rec: dict) -> list[str]:
    return [f"`{k}`: {_value(v)}" for k, v in (rec.get("results") or {}).items()]


# ---------------------------------------------------------------- pretrained headline

def headline_pretrained(rec: dict) -> list[str]:
    c = rec["recipe"]
    out = [f"{rec['steps']} steps per job on {rec['device']}; chosen recipe: "
           f"{_setting({**c, 'weights': 'package'})} (BCCD mAP {_fmt(c['map']['bccd'])}, natural-photo mAP "
           f"{_fmt(c['map']['natural'])})"]
    speed = rec.get("cpu_speed")
    if speed:
        out.append(f"CPU training speed ours / effdet {speed['ratio']:.2f}x")
    return out


# ---------------------------------------------------------------- zero-cost scores

def render_zero_cost(rec: dict) -> str:
    body = [f"Run `{rec['run']}`: {rec['n']} distinct points. Each score is computed at initialisation (the "
            "spec's weights: pretrained backbone where the study says so) on the study's first training batch; "
            "Kendall tau-b (`scipy.stats.kendalltau`) with the proxy mAP of the run and with the long-budget mAP of "
            "`scalesearch fidelity` (`fidelity.json`). No public benchmark of these scores on detection exists; "
            "this is what this run shows, whatever it shows.", "",
            "| score | tau with proxy mAP (p) | tau with long-budget mAP (p, n) |", "|---|---|---|"]
    for score, t in rec["taus"].items():
        long = "–" if t["long_tau"] is None else f"{t['long_tau']:+.3f} ({t['long_p']:.3g}, n={t['n_long']})"
        body.append(f"| {score} | {t['proxy_tau']:+.3f} ({t['proxy_p']:.3g}) | {long} |")
    body += ["", "| point | proxy mAP | long mAP | naswot | synflow | grad_norm | FLOPs |", "|---|---|---|---|---|---|---|"]
    for r in sorted(rec["points"], key=lambda r: -r["proxy_map"]):
        long = "–" if r["long_map"] is None else _fmt(r["long_map"])
        body.append(f"| {r['group']} | {_fmt(r['proxy_map'])} | {long} | {r.get('naswot', float('nan')):.2f} | "
                    f"{r.get('synflow', float('nan')):.3g} | {r.get('grad_norm', float('nan')):.3g} | {_mb(r['flops'])} |")
    return benchmark_page(rec, "zero_cost", body)


def headline_zero_cost(rec: dict) -> list[str]:
    return [f"{score}: tau {t['proxy_tau']:+.3f} with proxy mAP"
            + ("" if t["long_tau"] is None else f", {t['long_tau']:+.3f} with long-budget mAP")
            for score, t in rec["taus"].items()]


RENDERERS: dict[str, Callable[[dict], str]] = {
    "zero_cost": render_zero_cost, "multi_fidelity": render_multi_fidelity, "workers": render_workers,
    "pretrained": render_pretrained, "train_bccd": render_train_bccd, "quickstart_train": render_quickstart_train,
    "cost": render_cost, "search": render_search, "cli_startup": render_cli_startup,
}
HEADLINES: dict[str, Callable[[dict], list[str]]] = {
    "zero_cost": headline_zero_cost, "multi_fidelity": headline_multi_fidelity, "workers": headline_workers,
    "pretrained": headline_pretrained, "train_bccd": headline_train_bccd,
    "quickstart_train": headline_quickstart_train, "cost": headline_cost, "search": headline_search,
    "cli_startup": headline_cli_startup,
}
ORDER = ("train_bccd", "pretrained", "zero_cost", "multi_fidelity", "workers", "quickstart_train", "cost", "search", "cli_startup")


def _register(name: str, title: str | None = None) -> None:
    """A page whose renderer lives in its own module ``render_<name>`` (``render_<name>`` and ``headline_<name>``,
    importing this module's helpers when it renders): one entry each in TITLES, RENDERERS, HEADLINES and ORDER."""
    import importlib

    global ORDER
    module = importlib.import_module(f"render_{name}")
    if title is not None:
        TITLES[name] = title
    RENDERERS[name], HEADLINES[name] = getattr(module, f"render_{name}"), getattr(module, f"headline_{name}")
    ORDER = (*ORDER, name)


_register("latency", "Latency: repeatability of the protocol, FLOPs vs time, ONNX Runtime vs torch eager")
_register("bookkeeping", "Bookkeeping per trial: the first trials of a 2,000-trial study against the last")
_register("cached_step", "Seconds per training step: cached frozen backbone vs live frozen vs fine-tuned")
_register("estimators", "One table of estimators: CPU-seconds per candidate against tau with the long-budget reference")
_register("report_scale", "Report speed at scale: a 2,000-trial study rendered readably")
_register("latency_table", "Latency table: per-block predictions against the protocol, and what a prediction costs")
_register("supernet", "One-shot: inherited accuracy of a weight-sharing supernet against the long-budget reference")
_register("beat_lite0", "Beat EfficientDet-Lite0, search to verdict")
_register("cost_space", "Counting a search space: one trace per spec against repeats extrapolated")
_register("supernet_samplers", "One supernet space, two samplers: NSGA-II against the exhaustive grid")
_register("frozen_retrain", "Frozen or fine-tuned backbone at the long budget")
_register("supernet_axes", "One-shot: which elastic choice does inheritance get wrong? One axis at a time")
FAMILIES = ("beat_lite0", "frozen_retrain")  # one renderer for many records, named <family>_<study> (one per dataset)


def _kind(name: str) -> str:
    """The registered renderer of a record's name: the name itself, or the family it belongs to."""
    if name in RENDERERS:
        return name
    return next((f for f in FAMILIES if name.startswith(f + "_")), name)


def _title(name: str) -> str:
    kind = _kind(name)
    title = TITLES.get(kind, name)
    return title if kind == name else f"{title}: {name.removeprefix(kind + '_')}"


# ---------------------------------------------------------------- readme (benchmarks/bench_readme.py)

def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def _runs(rec: dict, name: str) -> list[dict]:
    return [r for r in rec["runs"] if r["name"] == name]


def _install_and_job(run: dict) -> tuple[float, float]:
    """(seconds of the venv + pip steps, seconds of the rest) of one README command run."""
    install = sum(s["seconds"] or 0 for s in run["steps"] if "venv" in s["step"] or "pip install" in s["step"])
    return install, run["seconds"] - install


def _cpu_short(rec: dict) -> str:
    m = rec.get("machine") or {}
    return f"{m.get('cpu', '?')}, {machine_cores(m) or '?'} cores"


def readme_figures(rec: dict) -> dict[str, str]:
    """The README's generated sentences (quick start and tests), each a function of ``readme.json``."""
    def day(run: dict) -> str:
        return (run.get("started") or rec.get("started", "?")).split(" ")[0]
    spans = {}
    quick = _runs(rec, "quickstart")
    if quick and quick[0]["returncode"] == 0:
        q = quick[0]
        install, job = _install_and_job(q)
        rss = f"; peak memory {q['peak_rss_mb'] / 1024:.1f} GB" if q.get("peak_rss_mb") else ""
        spans["quickstart"] = (
            f"{_duration(job)} for the study after a {_duration(install)} install on {_cpu_short(rec)}, from a fresh "
            f"clone, synthetic data generation included; best trial {q['best']['number']} AP50 "
            f"{q['best']['map50']:.3f} (mAP {q['best']['map']:.3f}){rss}; measured {day(q)}, "
            "`reports/benchmarks/readme.md`")
    tests = _runs(rec, "tests")
    if tests:
        green = sum(r["returncode"] == 0 for r in tests)
        counts = tests[-1].get("counts", {})
        times = ", ".join(_duration(r["pytest_seconds"]) for r in tests if r.get("pytest_seconds"))
        install, _ = _install_and_job(tests[0])
        spans["tests"] = (
            f"{counts.get('passed', 0)} passed, {counts.get('deselected', 0)} deselected, in {times} on "
            f"{_cpu_short(rec)} after a {_duration(install)} install; {green} of {len(tests)} runs in a row on a fresh "
            f"clone green; measured {day(tests[-1])}, `reports/benchmarks/readme.md`")
    return spans


def render_readme(rec: dict) -> str:
    body = [f"The README's two commands, read from README.md and run as typed in fresh clones of the commit each "
            f"run names (the latest: `{rec.get('commit', '?')[:10]}`)" + (" (the tree also had uncommitted changes)"
                                                  if rec.get("uncommitted_changes") else "") + ".", "",
            "| run | command | exit | wall | install | job | pytest | peak RSS |", "|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rec["runs"]):
        install, job = _install_and_job(r)
        summary = r.get("summary_line") or (f"best AP50 {r['best']['map50']:.3f}" if r.get("best") else "")
        rss = f"{r['peak_rss_mb']} MB" if r.get("peak_rss_mb") else "-"
        body.append(f"| {i + 1}: {r['name']} (`{r.get('commit', rec.get('commit', '?'))[:8]}`, "
                    f"{r.get('started', rec.get('started', '?'))}) | `{r['command'].splitlines()[0][-60:]}` | {r['returncode']} | "
                    f"{_duration(r['seconds'])} | {_duration(install)} | {_duration(job)} | {summary} | {rss} |")
    body += ["", "Steps of each run (seconds):", ""]
    for i, r in enumerate(rec["runs"]):
        body.append(f"- {i + 1}: " + "; ".join(f"`{s['step']}` {s['seconds']}" for s in r["steps"]))
    return "\n".join(benchmark_page(rec, "readme", []).splitlines() + body) + "\n"


def headline_readme(rec: dict) -> list[str]:
    return [f"{name}: {text}" for name, text in readme_figures(rec).items()]


TITLES["readme"] = "The README's two commands on a fresh clone"
RENDERERS["readme"], HEADLINES["readme"] = render_readme, headline_readme
ORDER = ("readme", *ORDER)
GENERATED = re.compile(r"<!-- generated: (\w+) -->(.*?)<!-- /generated -->", re.S)


def render_readme_file(text: str, rec: dict | None) -> str:
    """README.md with every ``<!-- generated: NAME -->...<!-- /generated -->`` span filled from ``readme.json``."""
    spans = readme_figures(rec) if rec else {}
    from render_beat_lite0 import readme_table  # one results table per dataset, from its beat_lite0_<study> record

    for path in sorted(FOLDER.glob("beat_lite0_*.json")):
        spans[path.stem] = readme_table(json.loads(path.read_text()))
    for path in sorted(FOLDER.glob("frozen_retrain_*.json")):  # frozen vs fine-tuned backbone, one line per run
        spans[path.stem] = HEADLINES["frozen_retrain"](json.loads(path.read_text()))[0]
    for name in ("supernet_samplers", "latency_table"):  # one record each: its headline's first line
        path = FOLDER / f"{name}.json"
        if path.is_file():
            spans[name] = HEADLINES[name](json.loads(path.read_text()))[0]
    return GENERATED.sub(lambda m: f"<!-- generated: {m.group(1)} -->{spans.get(m.group(1), 'not measured yet')}"
                                   "<!-- /generated -->", text)


# ---------------------------------------------------------------- study headers (studies/*.yaml)

def _in_calls(meta: dict) -> str:
    """" in N calls" for a run resumed N - 1 times, else nothing."""
    runs = meta.get("runs", 1)
    return f" in {runs} calls" if runs != 1 else ""


def _study_runs(stem: str) -> list[Path]:
    """Committed run folders made by ``scalesearch run studies/<stem>.yaml`` (the one named after it first)."""
    found = []
    for meta_path in sorted(RUNS.glob("*/meta.json")):
        args = shlex.split(json.loads(meta_path.read_text()).get("command", ""))
        if any(Path(a).name == f"{stem}.yaml" for a in args):
            found.append(meta_path.parent)
    return sorted(found, key=lambda p: p.name != stem)


def study_measured_line(stem: str) -> str | None:
    """``# Measured: ...`` for a study header, from its committed run folder's meta.json and trials.json."""
    runs = _study_runs(stem)
    if not runs:
        return None
    run = runs[0]
    meta = json.loads((run / "meta.json").read_text())
    trials = read_json(records_path(run))
    seconds = run_wall_seconds(meta)
    machine = meta.get("machine") or {}
    gpu = machine.get("gpu") or ("a lent GPU machine" if "device=cuda" in meta.get("command", "") else None)
    where = (f"{gpu} ({machine_cores(machine) or '?'} CPU cores)" if gpu else
             f"{machine.get('cpu') or 'CPU'}, {machine_cores(machine) or '?'} cores")
    took = f"{_duration(seconds)} wall{_in_calls(meta)}" if seconds is not None else "an unrecorded wall time"
    return (f"# Measured: the committed run {run.relative_to(ROOT)} took {took} for {len(trials)} trials on "
            f"{where} (meta.json; generated by benchmarks/render.py).")


def render_study_header(text: str, stem: str) -> str:
    """A study file with its ``# Measured:`` line (if it has one) regenerated from the committed records."""
    line = study_measured_line(stem)
    out = []
    for old in text.splitlines():
        out.append(line if old.startswith("# Measured:") and line else old)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


# ---------------------------------------------------------------- shipped studies (reports/runs/*)

def _reports_of(run: str) -> list[str]:
    """Report folders whose report.md was written from ``[...]/runs/<run>`` (its "Written ... by" line)."""
    found = []
    for md in sorted((ROOT / "reports").glob("*/report.md")):
        first = next((line for line in md.read_text().splitlines() if line.startswith("Written")), "")
        command = first.split("`")[1] if first.count("`") >= 2 else ""
        if any(Path(t).name == run and Path(t).parent.name == "runs" for t in command.split()):
            found.append(md.parent.name)
    return found


def _seconds(meta: dict) -> str:
    """The run's wall time, summed over the calls that made it (without the idle time between them)."""
    seconds = run_wall_seconds(meta)
    return "–" if seconds is None else f"{seconds:.0f} s{_in_calls(meta)}"


def _trial(r: dict) -> str:
    return (f"trial {r['number']} ({r['topology']}/{r['fusion']}, {r['resolution']} px, {_mb(r['flops'])}): "
            f"mAP {_fmt(r['map'])}, AP50 {_fmt(r['map50'])}")


def studies_section() -> list[str]:
    lines = ["## Shipped studies", "",
             "From each run folder's `trials.json` and `meta.json` (`reports/runs/<study>/`); the seed-noise tests "
             "and Pareto fronts are in the linked reports.", "",
             "| study | command | trials | wall time | best mAP | best AP50 | reports |",
             "|---|---|---|---|---|---|---|"]
    for run in sorted(p for p in RUNS.glob("*") if records_path(p)):
        trials = read_json(records_path(run))
        meta = json.loads((run / "meta.json").read_text()) if (run / "meta.json").exists() else {}
        states: dict[str, int] = {}
        for t in trials:
            states[t["state"]] = states.get(t["state"], 0) + 1
        done = [t for t in trials if t["state"] == "complete" and t.get("map") is not None]
        best = _trial(max(done, key=lambda t: t["map"])) if done else "–"
        best50 = _trial(max(done, key=lambda t: t["map50"])) if done else "–"
        links = ", ".join(f"[{n}]({n}/report.md)" for n in _reports_of(run.name)) or "–"
        counts = ", ".join(f"{n} {s}" for s, n in states.items())
        lines.append(f"| `{run.name}` | `{meta.get('command', '?')}` | {len(trials)} ({counts}) | {_seconds(meta)} | "
                     f"{best} | {best50} | {links} |")
    return lines


# ---------------------------------------------------------------- index + main

def render_index(records: dict[str, dict]) -> str:
    lines = ["# Benchmarks: measured figures", "",
             "Generated by `python benchmarks/render.py` from the records in `reports/benchmarks/*.json` (each "
             "written by the benchmark script named in it) and the shipped studies' run folders; no figure here is "
             "typed by hand. The machine is shared: each record states its command, machine, run time, whether it "
             "ran under the CPU lock and the load average at its start and end. Timings vary run to run; ratios "
             "come from one run of both sides. Timings are never part of the pass/fail tests.", ""]
    for name in sorted(records, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)):
        rec = records[name]
        lines += [f"## {_title(name)}", "", f"`{rec.get('command', '?')}`; {rec.get('seconds', '?')} s on "
                  f"{_machine_line(rec)}" + (f"; {_load(rec)}" if _load(rec) else "") + ".", ""]
        if _busy(rec):
            lines += [f"**Contention:** {_busy(rec)}.", ""]
        if rec.get("budget_note"):
            lines += [f"**Budget note:** {rec['budget_note']}.", ""]
        headline = HEADLINES.get(_kind(name))
        if headline:
            try:
                lines += [f"- {h}" for h in headline(rec)]
            except (KeyError, TypeError, ValueError) as exc:
                lines.append(f"- (record incomplete: {exc!r})")
        lines += ["", f"Full page: [benchmarks/{name}.md](benchmarks/{name}.md)", ""]
    return "\n".join(lines + studies_section()) + "\n"


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def render_benchmarks(folder: Path = FOLDER, index: Path = INDEX, out_folder: Path | None = None) -> int:
    """Every record in ``folder`` rendered as ``NAME.md`` (into ``out_folder``, default beside it) and the
    index ``index``; returns the number of records that could not be rendered."""
    out_folder = out_folder or folder
    records: dict[str, dict] = {}
    failed = 0
    for path in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            print(f"{path.name}: unreadable ({exc}); skipped", file=sys.stderr)
            failed += 1
            continue
        name = rec.get("benchmark", "")
        renderer = RENDERERS.get(_kind(name))
        if renderer is None:
            print(f"{path.name}: no renderer for benchmark {name!r}", file=sys.stderr)
            continue
        try:
            page = renderer(rec)
        except (KeyError, TypeError, ValueError) as exc:
            print(f"{path.name}: cannot render ({exc!r}); skipped", file=sys.stderr)
            failed += 1
            continue
        records[name] = rec
        out = out_folder / path.with_suffix(".md").name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page)
        print(f"wrote {_rel(out)}")
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(render_index(records))
    print(f"wrote {_rel(index)}")
    return failed


# ---------------------------------------------------------------- study reports

WRITTEN = re.compile(r"^Written .+ by `(scalesearch report .+)`\.$")


@dataclass(frozen=True)
class CommittedReport:
    """A committed study report and the command that made it (its third line): run folders and output folder,
    relative to the repository."""
    page: Path
    command: str
    runs: tuple[str, ...]
    out: str


def committed_reports(root: Path = ROOT) -> list[CommittedReport]:
    """Every ``reports/*/report.md`` with the ``scalesearch report`` command stated under its title."""
    found = []
    for page in sorted((root / "reports").glob("*/report.md")):
        lines = page.read_text().splitlines()
        match = WRITTEN.match(lines[2]) if len(lines) > 2 else None
        if match is None:
            raise ValueError(f"{_rel(page)}: line 3 does not state the `scalesearch report` command that wrote it")
        args = shlex.split(match.group(1))[2:]
        cut = args.index("--out")
        found.append(CommittedReport(page, match.group(1), tuple(args[:cut]), args[cut + 1]))
    return found


def render_report(report: CommittedReport, out_dir: Path | None = None) -> Path:
    """Re-render one committed report from its committed run folders into ``out_dir``, with the same command
    line under its title; returns the written ``report.md``."""
    from scalesearch.report import write_report

    with contextlib.chdir(ROOT):  # the command's run folders are relative to the repository
        return write_report(list(report.runs), out_dir, command=report.command)


def without_written_line(text: str) -> str:
    """A report's text less its ``Written <time> by ...`` line (Markdown or HTML), the one line that changes
    on every rendering."""
    return "\n".join(line for line in text.splitlines() if "Written " not in line or " by " not in line)


IMAGE_DATA = re.compile(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+")


def same_report(a: Path, b: Path, images: bool = True) -> bool:
    """Two report folders hold the same report: same Markdown and HTML (Written line aside) and the same
    figure files; ``images=False`` compares the figures' names but not their pixels (which a different
    matplotlib or FreeType may draw differently from the same records)."""
    def text(folder: Path, name: str) -> str:
        body = without_written_line((folder / name).read_text())
        return body if images else IMAGE_DATA.sub("data:image", body)

    if any(text(a, name) != text(b, name) for name in ("report.md", "report.html")):
        return False
    figures = [sorted(p.name for p in (d / "figures").glob("*")) for d in (a, b)]
    return figures[0] == figures[1] and (not images or all(
        (a / "figures" / n).read_bytes() == (b / "figures" / n).read_bytes() for n in figures[0]))


def update_report(report: CommittedReport) -> bool:
    """Re-render ``report`` in place when its records changed; an unchanged report keeps its files (and its
    Written line). Returns whether it changed."""
    import shutil
    import tempfile

    target = ROOT / report.out
    with tempfile.TemporaryDirectory() as tmp:
        fresh = render_report(report, Path(tmp) / "report").parent
        if target.is_dir() and same_report(fresh, target):
            return False
        shutil.rmtree(target / "figures", ignore_errors=True)
        shutil.copytree(fresh, target, dirs_exist_ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Re-render every committed benchmark page, reports/benchmarks.md "
                                     "and every committed study report (reports/*/report.md) from their records.")
    parser.add_argument("--only", choices=("benchmarks", "reports"), help="render one of the two kinds only")
    args = parser.parse_args(argv)
    failed = 0
    if args.only != "reports":
        failed += render_benchmarks()
    if args.only != "reports":
        readme = ROOT / "README.md"
        rec_path = FOLDER / "readme.json"
        fresh = render_readme_file(readme.read_text(), json.loads(rec_path.read_text()) if rec_path.exists() else None)
        if fresh != readme.read_text():
            readme.write_text(fresh)
            print("wrote README.md")
        for study in sorted((ROOT / "studies").glob("*.yaml")):
            fresh = render_study_header(study.read_text(), study.stem)
            if fresh != study.read_text():
                study.write_text(fresh)
                print(f"wrote {_rel(study)}")
    if args.only != "benchmarks":
        for report in committed_reports():
            changed = update_report(report)
            print(f"{'wrote' if changed else 'unchanged:'} {report.out}/report.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
