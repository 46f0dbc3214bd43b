"""Report speed at scale: how long does ``scalesearch report`` take on a study of 2,000 trials (issue 24's supernet
study), and does every section stay readable?

The study is fake (``fake_run``): ``--trials`` records in the ``beat_lite0_bccd`` space (the four built-in
topologies and the BiFPN family, fusion, activation, BiFPN width and repeats, head repeats, resolution), scored
by the ``supernet`` estimator: mAP (raw and EMA), training loss, FLOPs, params and latency from made-up but
smooth functions of the architecture with seeded noise; the labelled baseline ``EfficientDet-Lite0`` first; a
few duplicates (a point proposed again), pruned, infeasible and failed trials; learning curves on about one trial
in ten. Nothing is trained or measured. The command (``scalesearch report RUN --out DIR``, a fresh process, as a
user types it) is timed ``--repeats`` times; the record keeps each wall time, the report's size, its figures and
its longest table (target: under 60 s with every table short).

``--label before`` / ``--label after`` keep two measurements side by side in one record
(``reports/benchmarks/report_scale.json``): ``before`` with the report code of an older commit on the path
(``PYTHONPATH=<old checkout>``; the command runs in a fresh process, so it renders with that code), ``after``
with this one, each under the CPU lock.

    flock /tmp/scalesearch-cpu.lock python benchmarks/bench_report_scale.py   # 2,000 trials, the record
    python benchmarks/bench_report_scale.py --trials 200 --repeats 1 --dry-run  # quick look, nothing saved
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from render import FOLDER, ROOT, begin_record, save_record

TARGET_SECONDS = 60.0
BASELINE = "EfficientDet-Lite0"
LITE0 = {"topology": "bifpn", "fusion": "sum", "activation": "relu6", "fpn_channels": 64, "fpn_repeats": 3,
         "head_repeats": 3, "resolution": 320}
CHOICES = {"topology": ("fpn", "panet", "bifpn", "qufpn", "family"), "fusion": ("sum", "fast"),
           "activation": ("relu6", "swish"), "fpn_channels": (32, 48, 64, 80, 96), "fpn_repeats": (1, 2, 3, 4),
           "head_repeats": (1, 2, 3, 4), "resolution": (224, 256, 288, 320)}
TOPOLOGY_GAIN = {"fpn": 0.0, "panet": 0.01, "bifpn": 0.015, "qufpn": 0.012, "family": 0.013}
FIXED_SPEC = {"pretrained": True, "backbone": "tf_efficientnet_lite0", "width_multiplier": 1.0, "depth_multiplier": 1.0,
              "min_level": 3, "max_level": 7, "num_scales": 3, "aspect_ratios": [[1.0, 1.0], [1.4, 0.7], [0.7, 1.4]],
              "anchor_scale": 3.0, "num_classes": 3, "tf_compat": True, "weights": "package"}
FAMILY = ROOT / "spaces" / "topology_bifpn_family.yaml"


def _topology(name: str, rng: random.Random) -> str:
    """A built-in name, or a member of the BiFPN family drawn at random, as its inline graph (as records hold it)."""
    if name != "family":
        return name
    from scalesearch.topology import load_family

    family = load_family(FAMILY)
    return family.build({k: rng.randrange(n) for k, n in family.choices().items()}).to_string()


def _point(rng: random.Random) -> dict:
    return {key: rng.choice(values) for key, values in CHOICES.items()}


def _costs(p: dict) -> tuple[int, int, float]:
    """Made-up (FLOPs, params, latency ms) that grow with width, repeats and resolution."""
    pixels = (p["resolution"] / 320) ** 2
    flops = int(4.0e8 * pixels + 1.2e7 * p["fpn_channels"] * (p["fpn_repeats"] + p["head_repeats"]) * pixels)
    params = int(3.0e6 + 1.5e3 * p["fpn_channels"] ** 2 / 16 * (p["fpn_repeats"] + p["head_repeats"]))
    latency = 20.0 + flops / 2.0e7 + (4.0 if p["activation"] == "swish" else 0.0)
    return flops, params, latency


def _map(p: dict, kind: str, noise: float) -> float:
    """A saturating mAP in the architecture's capacity, with the topology's and the activation's gain."""
    capacity = math.log(p["fpn_channels"] * (1 + p["fpn_repeats"]) * (1 + 0.5 * p["head_repeats"]) * p["resolution"])
    gain = TOPOLOGY_GAIN[kind] + (0.006 if p["activation"] == "swish" else 0.0) + (0.004 if p["fusion"] == "fast" else 0)
    return max(0.0, 0.45 * (1 - math.exp(-(capacity - 7.5) / 2.5)) + gain + noise)


def _group(p: dict, topology: str) -> str:
    """The point without its seed, as the search labels it (sorted ``key=value`` pairs)."""
    point = {**p, "topology": topology}
    return " ".join(f"{k}={point[k]}" for k in sorted(point))


def fake_record(number: int, p: dict, topology: str, kind: str, rng: random.Random, seed: int = 0,
                label: str | None = None) -> dict:
    """One finished supernet trial in trials.json's flat form; mostly complete, a few pruned, infeasible or failed."""
    flops, params, latency = _costs(p)
    draw = rng.random() if label is None else 1.0
    state = "failed" if draw < 0.005 else "infeasible" if draw < 0.015 else "pruned" if draw < 0.05 else "complete"
    raw = _map(p, kind, rng.gauss(0, 0.01))
    ema = raw + rng.gauss(0.004, 0.003)
    done = state == "complete"
    curve = {str(s): round(ema * f, 6) for s, f in ((500, 0.55), (1000, 0.85))} if done and rng.random() < 0.1 else {}
    metrics = {"map": ema, "map50": 1.8 * ema, "map75": 0.9 * ema, "map_small": 0.2 * ema, "map_medium": 0.9 * ema,
               "map_large": 1.1 * ema, "map_raw": raw, "map_ema": ema, "train_loss": 1.2 - ema + rng.gauss(0, 0.02)}
    return {"number": number, "state": state, "seed": seed, "group": _group(p, topology),
            "params_sampled": {**p, "topology": topology}, "budget_flops": None, "flops": flops, "params": params,
            "values": [ema, latency] if state in ("complete", "infeasible") else None, "intermediate": curve,
            "seconds": 1.7, "train_seconds": None, "eval_seconds": 1.5, "images_per_second": None,
            "steps": 1500 if curve else None, "threads": 2,
            "reason": {"failed": "evaluation produced NaN", "infeasible": "latency 180 ms > budget",
                       "pruned": "prefilter: per-block latency table above the budget"}.get(state),
            "label": label, "retry_of": None, "zero_cost": {}, "latency_ms": round(latency, 4),
            "latency_network_ms": round(latency - 3.0, 4), "latency_post_ms": 3.0, "latency_iqr_ms": 0.8,
            "latency_exclusive": True, "node": "vm", "estimator": "supernet", "estimate_seconds": 1.6,
            "estimate_cpu_seconds": 3.1, "duplicate_of": None, "paired_seeds": True,
            **{k: (round(v, 6) if done else None) for k, v in metrics.items()},
            **FIXED_SPEC, **p, "topology": topology}


def fake_records(trials: int, seed: int = 0, seeds: int = 1) -> list[dict]:
    """``trials`` records, ``seeds`` per point (``number = point * seeds + seed index``), the baseline first. A
    point the sampler draws again reuses its first result, marked ``duplicate_of`` (as the search records it)."""
    rng = random.Random(seed)
    out: list[dict] = []
    first: dict[tuple[str, int], dict] = {}
    while len(out) < trials:
        p, label = (dict(LITE0), BASELINE) if not out else (_point(rng), None)
        kind = p.pop("topology")
        topology = _topology(kind, rng)
        for s in range(min(seeds, trials - len(out))):
            again = first.get((_group(p, topology), s))
            if again is not None:
                out.append({**again, "number": len(out), "duplicate_of": again["number"], "seconds": 0.01,
                            "estimate_seconds": None, "estimate_cpu_seconds": None})
                continue
            out.append(fake_record(len(out), p, topology, kind, rng, s, label))
            first[_group(p, topology), s] = out[-1]
    return out


def fake_run(path: Path, trials: int = 2000, seed: int = 0, seeds: int = 1) -> Path:
    """A run folder (trials.json, meta.json, study.yaml) of a ``trials``-trial supernet study; returns ``path``."""
    import yaml

    path.mkdir(parents=True, exist_ok=True)
    (path / "trials.json").write_text(json.dumps(fake_records(trials, seed, seeds)))
    space = {"backbone": "tf_efficientnet_lite0", "pretrained": True, "tf_compat": True, "anchor_scale": 3.0,
             "topology": ["fpn", "panet", "bifpn", "qufpn", str(FAMILY)], "fusion": ["sum", "fast"],
             "activation": ["relu6", "swish"], "fpn_channels": {"low": 32, "high": 96, "step": 16},
             "fpn_repeats": {"low": 1, "high": 4}, "head_repeats": {"low": 1, "high": 4},
             "resolution": [224, 256, 288, 320]}
    study = {"name": "supernet_scale", "seed": 0, "seeds": seeds, "space": space, "objectives": ["maximize map", "minimize latency_ms"],
             "budgets": {"latency_ms": 150.0}, "train": {"steps": 1500, "batch_size": 8},
             "search": {"n_trials": trials, "zero_cost": False,
                        "enqueue": [{"label": BASELINE, "params": LITE0}]}}
    (path / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    (path / "meta.json").write_text(json.dumps({
        "command": "scalesearch run studies/supernet_scale.yaml", "study_name": "supernet_scale", "backend": "optuna",
        "machine": {"cpu": "AMD EPYC", "cpus": 2, "python": "3.11.7"}, "start": "2026-12-01T08:00:00+00:00",
        "end": "2026-12-01T09:10:00+00:00", "runs": 1}))
    return path


def longest_table(markdown: str) -> int:
    """Body rows of the longest table in a Markdown text."""
    longest = run = 0
    for line in markdown.splitlines():
        run = run + 1 if line.startswith("|") else 0
        longest = max(longest, run - 2)
    return longest


def time_report(run: Path, out: Path) -> float:
    """Wall seconds of ``scalesearch report RUN --out OUT`` in a fresh process (imports included)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scalesearch", "report", str(run), "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(trials: int, folder: Path, repeats: int = 1) -> dict:
    """Time the report of a fake ``trials``-trial study ``repeats`` times; what it wrote, for the record."""
    run = fake_run(folder / "run", trials)
    seconds = [time_report(run, folder / f"report{i}") for i in range(repeats)]
    out = folder / "report0"
    text = (out / "report.md").read_text()
    result = {"trials": trials, "seconds": [round(s, 2) for s in seconds], "best_seconds": round(min(seconds), 2),
              "report_md_kb": round(len(text.encode()) / 1024, 1),
              "report_html_kb": round((out / "report.html").stat().st_size / 1024, 1),
              "figures": len(list((out / "figures").glob("*.png"))), "longest_table_rows": longest_table(text),
              "left_out_notes": len(re.findall(r"left out", text)),
              "csv_rows": sum(1 for _ in (out / "trials.csv").open()) - 1 if (out / "trials.csv").is_file() else None}
    print(f"{trials} trials: report in {', '.join(f'{s:.1f}' for s in seconds)} s (target < {TARGET_SECONDS:g} s); "
          f"report.md {result['report_md_kb']} kB, {result['figures']} figures, longest table "
          f"{result['longest_table_rows']} rows, trials.csv {result['csv_rows']} rows")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3, help="timed renderings of the same run folder")
    parser.add_argument("--label", default="after", help="which side of the record this run is (before / after)")
    parser.add_argument("--dry-run", action="store_true", help="print the figures; write no record")
    args = parser.parse_args()
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=ROOT,
                            check=False).stdout.strip()
    previous = FOLDER / "report_scale.json"
    sides = json.loads(previous.read_text()).get("sides", {}) if previous.is_file() else {}
    record = begin_record("report_scale", trials=args.trials, repeats=args.repeats, target_seconds=TARGET_SECONDS)
    with tempfile.TemporaryDirectory(prefix="bench_report_scale-") as tmp:
        sides[args.label] = {"commit": commit, **measure(args.trials, Path(tmp), args.repeats)}
    record["sides"] = sides
    if args.dry_run:
        print(json.dumps({k: v for k, v in record.items() if k != "_t0"}, indent=1))
    else:
        save_record(record)


if __name__ == "__main__":
    main()
