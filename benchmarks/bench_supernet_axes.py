"""Where does inheritance misrank? One elastic axis at a time around a supernet run's retrained points.

In every supernet run on BCCD and tree crowns, EfficientDet-Lite0 (bifpn 64 x 3, heads 3, 320 px) has the lowest
inherited mAP of the points retrained alone and the highest trained alone. This benchmark asks which of the elastic
choices the supernet gets wrong. Each probe is an anchor (a point of ``RUN/fidelity_frozen.json``, trained alone with
the backbone frozen at 4x on paired seeds) with one value changed (``--probe ANCHOR:KEY=VALUE``, ANCHOR a trial
number; default: Lite0 at 256 and 224 px, with heads 1, as an fpn; trial 1089, the grid run's best inherited point,
with heads 3 and at 320 px). For each probe:

- inherited: the probe and its anchor scored by the run's own supernets (``supernet_final.pt`` under
  ``RUN/estimator``, the weights the search scored with; nothing is trained: a run folder without them is refused),
  through the ``supernet`` estimator, so extraction, batch-norm recalibration and COCO evaluation are the search's;
- trained alone: the probe trained with the backbone frozen at the anchor's budget on the anchor's seeds
  (``fidelity.frozen_trainer``, the path of ``scalesearch fidelity --frozen-backbone``: seed s of the probe pairs
  with seed s of the anchor, same batches and initial weights where the shapes agree);
- the anchor's first seed is trained again first: the recorded mAP must come back (the pairing check);
- the two differences (probe minus anchor): inherited, and trained alone (mean over paired seeds, two-sided sign-flip
  p over the seeds); do they agree in sign?

Also Kendall tau between inherited and trained-alone mAP over every point (every point of fidelity_frozen.json and
the probes), with its bootstrap
interval and the trained-alone ceiling. Then the remedy the probes point to: the run's study with
``search.supernet.per_resolution`` (one supernet per topology and resolution, each trained at its own resolution, the
same compute per topology; ``--variant-steps`` gives other step counts, several to compare, 0 to skip) scores
every point again: its inherited differences beside the run's, and the two taus with the paired bootstrap interval
of their difference. The record of 2026-12-07 is ``--variant-steps -1 600``: the same compute, and 4x. Each training is kept in ``--work`` as soon as it ends, so a rerun after a
crash trains only what is missing. Written to ``reports/benchmarks/supernet_axes.json`` (page by
``render_supernet_axes.py``). Run under the CPU lock (about an hour on 2 cores with the defaults: 43 trainings of
60-90 s, then the per-resolution supernets the points need, 2-3 minutes each):

    flock /tmp/scalesearch-cpu.lock python benchmarks/bench_supernet_axes.py --variant-steps -1 600
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "reports" / "runs" / "supernet_bccd_grid"
PROBES = ("0:resolution=256", "0:resolution=224", "0:head_repeats=1", "0:topology=fpn", "1089:head_repeats=3",
          "1089:resolution=320")
AXES = ("topology", "fpn_channels", "fpn_repeats", "head_repeats", "resolution", "fusion", "activation")


def parse_probe(text: str) -> tuple[int, str, Any]:
    """``"ANCHOR:KEY=VALUE"`` as (anchor trial number, key, value); a value of digits is an int."""
    try:
        anchor, change = text.split(":", 1)
        key, value = change.split("=", 1)
        number = int(anchor)
    except ValueError:
        raise SystemExit(f"bench_supernet_axes: --probe {text!r}: expected ANCHOR:KEY=VALUE, e.g. 0:resolution=256")
    if key not in AXES:
        raise SystemExit(f"bench_supernet_axes: --probe {text!r}: {key!r} is not an elastic axis ({', '.join(AXES)})")
    return number, key, int(value) if value.isdigit() else value


def probe_name(spec: dict[str, Any], anchor: dict[str, Any]) -> str:
    """The spec as its anchor's label with the changed values, e.g. ``trial 0 @ resolution=256``."""
    changed = [f"{k}={spec[k]}" for k in AXES if spec[k] != anchor["spec"][k]]
    return f"{anchor['name']} @ {', '.join(changed)}" if changed else anchor["name"]


def axis_row(anchor: dict[str, Any], probe: dict[str, Any]) -> dict[str, Any]:
    """One probe against its anchor: both inherited mAPs and their difference; the trained-alone difference per
    paired seed (the seeds both have), its mean and two-sided sign-flip p; whether the two differences agree in
    sign (None while either is 0 or unknown)."""
    from scalesearch.report.stats import sign_flip_p

    mine = dict(zip(probe["seeds"], probe["maps"]))
    theirs = dict(zip(anchor["seeds"], anchor["maps"]))
    seeds = [s for s in anchor["seeds"] if s in mine]
    diffs = [mine[s] - theirs[s] for s in seeds]
    d_inh = probe["inherited"] - anchor["inherited"]
    d_alone = statistics.fmean(diffs) if diffs else None
    p = sign_flip_p(diffs)[0] if diffs else None
    agree = sign_agrees(d_inh, d_alone)
    return {"probe": probe["name"], "anchor": anchor["name"], "axis": probe["axis"],
            "from": anchor["spec"][probe["axis"]], "to": probe["spec"][probe["axis"]],
            "inherited_anchor": anchor["inherited"], "inherited_probe": probe["inherited"],
            "inherited_diff": round(d_inh, 4), "seeds": seeds, "alone_diffs": [round(d, 4) for d in diffs],
            "alone_diff": None if d_alone is None else round(d_alone, 4), "p": p, "agree": agree}


def trained_alone(points: list[dict[str, Any]]) -> tuple[list[int], dict[str, float]]:
    """The seeds every point has and each point's trained-alone mean over them."""
    shared = sorted(set.intersection(*(set(p["seeds"]) for p in points)))
    return shared, {p["name"]: statistics.fmean(dict(zip(p["seeds"], p["maps"]))[s] for s in shared) for p in points}


def ranking(points: list[dict[str, Any]], bootstrap: int) -> dict[str, Any]:
    """Kendall tau (``bench_estimators.row_stats``) of inherited mAP against the trained-alone mean over the seeds
    every point has, with the ceiling of that mean (``bench_estimators.ceiling_tau``)."""
    from bench_estimators import ceiling_tau, row_stats

    from scalesearch.fidelity import FidelityRecord

    shared, means = trained_alone(points)
    rows = [FidelityRecord(group=p["name"], number=i, spec={}, flops=0.0, proxy_map=p["inherited"], factor=4.0,
                           steps=None, seconds=None, seeds=tuple(p["seeds"]), maps=tuple(p["maps"]), paired=True)
            for i, p in enumerate(points)]
    ceiling = ceiling_tau(rows, list(means), shared)
    stats = row_stats({p["name"]: p["inherited"] for p in points}, means, ceiling, bootstrap)
    return {**stats, "seeds": shared, "ceiling_tau": None if ceiling is None else round(ceiling, 4)}


def sign_agrees(inherited: float, alone: float | None) -> bool | None:
    """Whether an inherited difference and a trained-alone one have one sign (None while either is 0 or unknown)."""
    return None if alone is None or inherited == 0 or alone == 0 else (inherited > 0) == (alone > 0)


def variant_row(row: dict[str, Any], anchor: float, probe: float) -> dict[str, Any]:
    """A probe under another estimator (``anchor`` and ``probe`` its inherited mAPs): its difference and whether it
    agrees in sign with ``row``'s (``axis_row``) trained-alone difference."""
    diff = probe - anchor
    return {"probe": row["probe"], "diff": round(diff, 4), "agree": sign_agrees(diff, row["alone_diff"])}


def ranking_difference(points: list[dict[str, Any]], other: dict[str, float], bootstrap: int) -> dict[str, Any]:
    """Kendall tau of the inherited mAPs ``other`` (point name -> mAP) minus that of the points' own (the run's
    supernets), against the trained-alone mean, with its paired bootstrap interval
    (``fidelity.bootstrap_difference``: each resample scores both on the same points)."""
    from bench_estimators import _pairs

    from scalesearch.fidelity import bootstrap_difference

    means = trained_alone(points)[1]
    own = {p["name"]: p["inherited"] for p in points}
    diff, low, high = bootstrap_difference(_pairs(other, means), _pairs(own, means), n=bootstrap, seed=0)
    return {"difference": round(diff, 4), "low": round(low, 4), "high": round(high, 4), "n": len(points)}


def variant_study(run: Path, steps: int | None) -> Any:
    """The run's study with ``search.supernet.per_resolution`` (one supernet per topology and resolution; ``steps``
    each, None: the option's default, the same compute per topology)."""
    import yaml

    from bench_supernet import study_copy

    raw = yaml.safe_load((run / "study.yaml").read_text())
    supernet = {**(raw["search"].get("supernet") or {}), "per_resolution": True}
    space = raw["space"]
    count = len(space.get("topology") or [1]) * len(space.get("resolution") or [1])
    supernet["max_supernets"] = max(supernet.get("max_supernets", 8), count)  # only those the points need are trained
    if steps is not None:
        supernet["steps"] = steps
    raw["search"]["supernet"] = supernet
    return study_copy(raw)


def variant_estimator(run: Path, folder: Path, steps: int | None) -> Any:
    """The ``supernet`` estimator of ``variant_study``, its supernets under ``folder`` (each trained on first use,
    resumable; a rerun reads them back), reading the run's feature cache (a ``features`` link to
    ``RUN/estimator/features``)."""
    from bench_supernet import supernet_estimator

    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "features").exists():
        (folder / "features").symlink_to((run / "estimator" / "features").resolve(), target_is_directory=True)
    return supernet_estimator(variant_study(run, steps), folder)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=RUN, help="supernet run folder: study.yaml, trials.json, "
                        "fidelity_frozen.json, estimator/ with its finished supernets")
    parser.add_argument("--probe", action="append", help=f"ANCHOR:KEY=VALUE (repeatable; default {' '.join(PROBES)})")
    parser.add_argument("--seeds", type=int, default=7, help="paired seeds per probe: the anchor's first S")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "scalesearch-supernet-axes.json",
                        help="each finished training is kept here; a rerun trains only what is missing")
    parser.add_argument("--variant-steps", type=int, nargs="+", default=[-1],
                        help="the run's study with search.supernet.per_resolution, once per value: one supernet per "
                        "(topology, resolution) of the points, each trained for this many sandwich steps (-1: the "
                        "option's default, the run's steps / its resolutions: the same compute per topology; 0: "
                        "none)")
    parser.add_argument("--variant-dir", type=Path, default=Path(tempfile.gettempdir()) / "scalesearch-axes-variant",
                        help="the per-resolution supernets' folder (a rerun reads them back)")
    parser.add_argument("--out", help="write the record here instead of reports/benchmarks/supernet_axes.json")
    return parser


def anchors_of(run: Path, numbers: set[int]) -> dict[int, dict[str, Any]]:
    """Every point of ``fidelity_frozen.json`` (spec, trained-alone seeds and maps, recorded inherited mAP): the
    probes' anchors (``numbers``, each must be there) and the others, which join the ranking."""
    from scalesearch.retrain.fidelity import FROZEN_FILE

    rows = {r["number"]: r for r in json.loads((run / FROZEN_FILE).read_text())}
    missing = sorted(numbers - set(rows))
    if missing:
        raise SystemExit(f"bench_supernet_axes: trial(s) {missing} are not in {run / FROZEN_FILE} (retrained "
                         f"alone: {sorted(rows)})")
    return {n: {"name": rows[n].get("label") or f"trial {n}", "number": n, "spec": dict(rows[n]["spec"]),
                "seeds": list(rows[n]["seeds"]), "maps": list(rows[n]["maps"]), "recorded": rows[n]["proxy_map"]}
            for n in sorted(rows)}


def main() -> None:
    args = parser().parse_args()
    args.run = args.run.resolve()
    probes = [parse_probe(p) for p in (args.probe or PROBES)]

    import torch

    from bench_supernet import supernet_estimator
    from render import begin_record, save_or_write

    from scalesearch.config import load_study
    from scalesearch.machine import portable_path
    from scalesearch.retrain.fidelity import frozen_trainer
    from scalesearch.spec import DetectorSpec

    torch.set_num_threads(args.threads)
    record = begin_record("supernet_axes", run=portable_path(args.run), seeds=args.seeds, threads=args.threads,
                          bootstrap=args.bootstrap, probes=[f"{a}:{k}={v}" for a, k, v in probes])
    config = load_study(args.run / "study.yaml")
    anchors = anchors_of(args.run, {a for a, _, _ in probes})
    estimator = supernet_estimator(config, args.run / "estimator")
    for topology in sorted({a["spec"]["topology"] for a in anchors.values()} | {v for _, k, v in probes
                                                                                if k == "topology"}):
        trained = estimator.supernet(topology)
        if not trained.loaded_final:
            raise SystemExit(f"bench_supernet_axes: {args.run}: the {topology} supernet was trained now, not read "
                             "back; point --run at a finished supernet run")
    for a in anchors.values():
        a["inherited"] = estimator.estimate(DetectorSpec.from_dict(a["spec"]), 0).metrics["map"]
        print(f"{a['name']}: inherited {a['inherited']:.4f} (recorded {a['recorded']:.4f}); trained alone "
              f"{statistics.fmean(a['maps']):.4f} over seeds {a['seeds']}", flush=True)

    work = json.loads(args.work.read_text()) if args.work.is_file() else {}
    key = portable_path(args.run)
    done = work.setdefault(key, {})
    train = frozen_trainer(config, 4.0, args.run / "estimator" / "features", progress=False)
    first = anchors[probes[0][0]]
    again = done.setdefault("again " + first["name"], {})
    if str(first["seeds"][0]) not in again:  # the pairing check: the anchor's first seed trained again here
        again[str(first["seeds"][0])] = train(first["spec"], first["seeds"][0], -1).map
        args.work.write_text(json.dumps(work, indent=1) + "\n")
    reproduced = {"point": first["name"], "seed": first["seeds"][0], "recorded": first["maps"][0],
                  "again": again[str(first["seeds"][0])]}
    print(f"pairing check: {reproduced}", flush=True)
    rows, points = [], list(anchors.values())
    trained_here, trained_before = 0, 0
    for a, k, v in probes:
        anchor = anchors[a]
        spec = {**anchor["spec"], k: v}
        name = probe_name(spec, anchor)
        inherited = estimator.estimate(DetectorSpec.from_dict(spec), 0).metrics["map"]
        seeds = anchor["seeds"][:args.seeds]
        have = done.setdefault(name, {})
        for seed in seeds:
            if str(seed) in have:
                trained_before += 1
                continue
            trained_here += 1
            start = time.perf_counter()
            have[str(seed)] = train(spec, seed, -1).map
            args.work.write_text(json.dumps(work, indent=1) + "\n")
            print(f"{name} seed {seed}: {have[str(seed)]:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
        probe = {"name": name, "axis": k, "spec": spec, "inherited": inherited, "seeds": seeds,
                 "maps": [have[str(s)] for s in seeds]}
        points.append(probe)
        rows.append(axis_row(anchor, probe))
        print(json.dumps(rows[-1]), flush=True)

    run_steps = estimator.settings().steps
    resolutions = list(estimator.plan.values["resolution"])
    variants = []
    for steps in args.variant_steps:
        if steps == 0:
            continue
        split = variant_estimator(args.run, args.variant_dir, None if steps < 0 else steps)
        inherited, trained = {}, {}
        for p in points:
            spec = DetectorSpec.from_dict(p["spec"])
            inherited[p["name"]] = split.estimate(spec, 0).metrics["map"]
            made = split.supernet(spec.topology, spec.resolution)
            trained[f"{spec.topology} {spec.resolution} px"] = {
                "steps": made.steps, "seconds": round(made.seconds, 1), "cpu_seconds": round(made.cpu_seconds, 1),
                "loaded": made.loaded_final}
            print(f"{p['name']}: per-resolution supernets ({made.steps} steps) {inherited[p['name']]:.4f}, run's "
                  f"supernet {p['inherited']:.4f}", flush=True)
        variants.append({
            "steps": split.settings().steps, "supernets": trained, "inherited": inherited,
            "rows": [variant_row(r, inherited[r["anchor"]], inherited[r["probe"]]) for r in rows],
            "ranking": ranking([{**p, "inherited": inherited[p["name"]]} for p in points], args.bootstrap),
            "against_run": ranking_difference(points, inherited, args.bootstrap)})
    keep = ("name", "spec", "inherited", "seeds", "maps")
    record.update(points=[{k: p[k] for k in keep if k in p} for p in points], rows=rows,
                  ranking=ranking(points, args.bootstrap), reproduced=reproduced, steps=config.train_config.steps * 4,
                  estimator_dir=portable_path(args.run / "estimator"), run_supernet_steps=run_steps,
                  run_resolutions=resolutions, variants=variants, trained_here=trained_here,
                  trained_before=trained_before)
    save_or_write(record, args.out)


if __name__ == "__main__":
    main()
