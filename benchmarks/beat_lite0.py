"""Does a searched detector beat EfficientDet-Lite0 on this dataset, on this machine? One study, search to verdict,
every step a fresh process as a user types it, every step's wall and CPU time in one record.

Steps (each resumable on its own, so a rerun after a crash continues where the folder stands):

1. search: ``scalesearch run STUDY --out RUN`` (the study enqueues the labelled baseline, e.g.
   ``studies/supernet_bccd.yaml``);
2. retrain: ``scalesearch fidelity RUN --against LABEL --top-k K --factor F --seeds S --save``: the baseline and
   the K best front points cheaper than it, at F x the study's budget on S paired seeds (default 7), latency re-measured after
   training in interleaved rounds (``scalesearch.retrain.fidelity``), every model kept for export;
3. export: the winner (the best verdict of ``scalesearch.report.baseline`` -- dominates, non-inferior and faster,
   better but slower, worse, cannot tell -- then the largest mean paired difference) and the baseline, each its
   first seed's checkpoint, as ONNX with NMS inside (``scalesearch export CKPT --out RUN/onnx/trialN.onnx --nms``);
4. onnx latency: both graphs timed as they are in ONNX Runtime (``scalesearch latency FILE.onnx --runtime
   onnxruntime``), ``--rounds`` rounds in alternating order, the protocol's 10 warm-up + 40 timed runs each, samples
   pooled per graph; the winner's first round also goes to ``RUN/export_trialN.json`` for the run's report.

Writes ``reports/benchmarks/beat_lite0_<run folder name>.json`` (the study's name unless ``--out`` says otherwise;
rendered by ``benchmarks/render.py``; the README's results table per dataset is generated from it). Run alone, under the CPU lock (hours):

    flock /tmp/scalesearch-cpu.lock python benchmarks/beat_lite0.py studies/supernet_bccd.yaml

``--frozen-backbone``: step 2 retrains with the pretrained backbone frozen (``scalesearch fidelity RUN
--frozen-backbone --against LABEL ...``: features computed once per resolution, each training several times
cheaper) into ``RUN/fidelity_frozen.json``; verdicts, checkpoints (``RUN/fidelity_frozen_checkpoints``) and ONNX
graphs (``RUN/onnx/frozen_trialN.onnx``) come from it, and the record is ``beat_lite0_<run folder name>_frozen``: the
cheap path from search to verdict, beside the fine-tuned one when both ran on the same folder (same search, same
picks, same seeds).

``--smoke`` runs the whole pipeline in minutes on a tiny budget (``--set`` overrides, 2 seeds, a folder under
/tmp) and prints the page without writing the record.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from render import ROOT, begin_record, save_record  # noqa: E402

SMOKE_SETS = ["search.n_trials=4", "train.steps=6", "train.warmup_steps=2", "train.eval_every=null",
              "search.supernet.steps=4", "search.supernet.calib_images=8", "space.resolution=[256,320]",
              "space.fpn_channels=[32,64]", "space.fpn_repeats=[1,3]", "space.head_repeats=[1,3]",
              "space.topology=[fpn,bifpn]"]  # every free key of the enqueued baseline stays free


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("study", help="a study YAML that enqueues the labelled baseline")
    p.add_argument("--out", help="run folder (default: reports/runs/<study name>)")
    p.add_argument("--label", default="EfficientDet-Lite0", help="the enqueued baseline's label")
    p.add_argument("--top-k", type=int, default=3, help="front points cheaper than the baseline to retrain")
    p.add_argument("--factor", type=float, default=4.0, help="long budget / the study's budget")
    p.add_argument("--seeds", type=int, default=7, help="paired seeds per retrained point (7: the fewest with which "
                   "a verdict on 3 points can survive Holm, the two-sided test's smallest p being 2 / 2^seeds)")
    p.add_argument("--workers", type=int, default=1, help="retraining workers")
    p.add_argument("--rounds", type=int, default=3, help="interleaved ONNX Runtime rounds per graph")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="study overrides passed to `scalesearch run`")
    p.add_argument("--frozen-backbone", dest="frozen", action="store_true",
                   help="retrain with the pretrained backbone frozen (fidelity_frozen.json; record <name>_frozen)")
    p.add_argument("--reuse", metavar="OTHER_RUN",
                   help="step 2 copies the seeds OTHER_RUN's records file holds for picked points (`scalesearch "
                        "fidelity --reuse`: the baseline retrained for another search of the same space)")
    p.add_argument("--smoke", action="store_true", help="a tiny budget in a temporary folder; nothing saved")
    return p


def timed(step: str, argv: list[str], steps: dict) -> subprocess.CompletedProcess:
    """Run one step's command, stream its output, record its wall and children's CPU seconds; exit on failure."""
    print(f"[{step}] {shlex.join(argv)}", flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = [sys.executable, "-m", "scalesearch", *argv[1:]] if argv[0] == "scalesearch" else argv  # this venv's
    done = subprocess.run(run, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    steps[step] = {"command": shlex.join(argv), "wall_seconds": round(time.perf_counter() - start, 1),
                   "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
                   "returncode": done.returncode}
    if done.returncode != 0:
        sys.exit(f"{step}: `{shlex.join(argv)}` exited {done.returncode}")
    return done


def finished_search(run_dir: Path, n_trials: int) -> dict | None:
    """The search step of a run folder that already holds ``n_trials`` finished trials (a committed run, whose
    storage is not committed): its command and wall time from ``meta.json``; None when the search must run."""
    from scalesearch.records import State, load_records, records_path, run_wall_seconds

    meta = run_dir / "meta.json"
    if not (records_path(run_dir) and meta.is_file()):
        return None
    done = [r for r in load_records(run_dir) if r.state is not State.RUNNING]
    info = json.loads(meta.read_text())
    if len(done) < n_trials or not (info.get("start") and info.get("end")):
        return None
    wall, runs = run_wall_seconds(info), info.get("runs", 1)
    if wall is None:
        raise SystemExit(f"{meta}: the search was resumed before meta.json summed its calls' wall time "
                         "(no wall_seconds), so its wall time is not known; run the search again in a new folder")
    calls = f", {runs} calls" if runs != 1 else ""
    return {"command": info.get("command", "?"), "wall_seconds": round(wall, 1), "cpu_seconds": None,
            "returncode": 0, "from": "meta.json of the finished run (not rerun)",
            "ran": f"{info['start'][:10]} on {(info.get('machine') or {}).get('cpu', '?')}{calls}"}


def duel_fields(duel) -> dict:
    """A ``report.baseline.Duel``'s verdict as record fields (the test it rests on, Holm p, difference, ...)."""
    name, test, p = duel.outcome
    return {"verdict": name, "test": test.name, "holm_p": p, "diff": duel.diff, "paired": duel.paired,
            "faster": duel.faster, "text": duel.verdict, "seeds_needed": duel.seeds_needed,
            "noninferiority_holm_p": duel.holm_p[1], "superiority_holm_p": duel.holm_p[0]}


def verdicts(run_dir: Path, label: str, file: str) -> tuple[list[dict], dict, dict]:
    """(one row per retrained point against the baseline, the winner's row, the baseline's row), from the run's
    records file ``file`` (``fidelity.json``, ``fidelity_frozen.json``)."""
    import dataclasses

    from scalesearch.fidelity import load_fidelity
    from scalesearch.report.baseline import VERDICTS, duels, quartiles
    from scalesearch.report.runs import load_run

    run = dataclasses.replace(load_run(run_dir), fidelity=load_fidelity(run_dir, file))
    found = duels(run, label)

    def row(record, duel=None) -> dict:
        q = quartiles(record)
        out = {"number": record.number, "label": record.label, "spec": record.spec, "seeds": list(record.seeds),
               "maps": list(record.maps), "scored": record.scored, "torch_latency_ms": q and round(q[1], 3),
               "torch_latency_iqr_ms": q and [round(q[0], 3), round(q[2], 3)]}
        if duel is not None:
            out.update(duel_fields(duel))
        return out

    rows = [row(d.point, d) for d in found]
    winner = min(rows, key=lambda r: (VERDICTS.index(r["verdict"]), -r["diff"])) if rows else None
    return rows, winner, row(found[0].base) if found else None


def retrain_wall(run_dir: Path, file: str) -> float | None:
    """Wall seconds of every retraining in the records file ``file`` (per seed, training and evaluation), summed
    over the sessions that trained them: the retrain step's own time covers only this call when it resumed one."""
    from scalesearch.fidelity import load_fidelity

    walls = [w for r in load_fidelity(run_dir, file) for w in (r.wall_seconds or ())]
    return round(sum(walls), 1) if walls else None


def arg(path: Path) -> str:
    """``path`` as a command argument: relative to the repository root when inside it (records stay portable)."""
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def checkpoint(run_dir: Path, row: dict, file: str) -> Path:
    """The point's model of its first seed whose checkpoint is on this machine, in the checkpoints folder of the
    records file ``file`` (checkpoints are not committed: ``scalesearch fidelity ... --save`` trains a recorded first
    seed again for its checkpoint)."""
    from scalesearch.retrain.fidelity import checkpoints_dir

    folder = checkpoints_dir(file)
    for seed in row["seeds"]:
        path = run_dir / folder / f"trial{row['number']}_seed{seed}.pt"
        if path.is_file():
            return path
    sys.exit(f"trial {row['number']}: no checkpoint of seeds {row['seeds']} under {run_dir / folder}; retrain with "
             f"`scalesearch fidelity {arg(run_dir)} ... --save` on this machine (it trains the first seed again)")


def checkpoint_map(path: Path, row: dict) -> dict:
    """The exported checkpoint's mAP (its training's, kept in the file) beside the one recorded for its seed: a
    checkpoint trained again for export (``--save`` on a committed run) shows here whether it reproduced."""
    from scalesearch.training.checkpoint import load_checkpoint

    _, _, info = load_checkpoint(path)
    seed = info.get("seed")
    recorded = row["maps"][row["seeds"].index(seed)] if seed in row["seeds"] else None
    return {"checkpoint": arg(path), "seed": seed, "map": (info.get("metrics") or {}).get("map"),
            "recorded_map": recorded}


def onnx_latency(run_dir: Path, graphs: dict[str, Path], rounds: int, steps: dict,
                 prefix: str = "") -> dict[str, dict]:
    """Each graph timed ``rounds`` times in alternating order; samples pooled per graph."""
    pooled: dict[str, list[float]] = {name: [] for name in graphs}
    first: dict[str, dict] = {}
    names = list(graphs)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            out = run_dir / "onnx" / f"{prefix}{name}_round{r}.json"
            timed(f"onnx latency {name} round {r}",
                  ["scalesearch", "latency", arg(graphs[name]), "--runtime", "onnxruntime", "--json", arg(out)], steps)
            data = json.loads(out.read_text())
            pooled[name] += data["samples_ms"]["total"]
            first.setdefault(name, data)
    import numpy as np

    result = {}
    for name, samples in pooled.items():
        q1, median, q3 = np.percentile(np.asarray(samples), [25, 50, 75])
        result[name] = {"median_ms": round(float(median), 3), "iqr_ms": [round(float(q1), 3), round(float(q3), 3)],
                        "runs": len(samples), "rounds": rounds, "onnx": arg(graphs[name]),
                        "detections": first[name].get("detections")}
    return result


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from scalesearch.config import load_study

    if args.frozen and args.workers != 1:
        sys.exit("--workers: does not apply with --frozen-backbone (its trainings run one at a time)")
    config = load_study(args.study)
    sets = list(args.sets)
    if args.smoke:
        sets += SMOKE_SETS
        args.seeds, args.top_k, args.factor, args.rounds = 2, 1, 1.0, 2
        out = Path(tempfile.mkdtemp(prefix="beat-lite0-smoke-")) / config.name
    else:
        out = Path(args.out) if args.out else ROOT / "reports" / "runs" / config.name
    out = out.resolve()
    rel = arg(out)
    from scalesearch.fidelity import FILE, FROZEN_FILE

    file = FROZEN_FILE if args.frozen else FILE
    name = f"beat_lite0_{out.name}" + ("_frozen" if args.frozen else "")  # the folder's name: the study's by default
    record = begin_record(name, study=Path(args.study).as_posix(), run=rel, label=args.label,
                          dataset=config.dataset.path, top_k=args.top_k, factor=args.factor, seeds=args.seeds,
                          rounds=args.rounds, sets=sets, backbone="frozen" if args.frozen else "fine-tuned",
                          reuse=None if args.reuse is None else arg(Path(args.reuse).resolve()))
    steps = record["steps"] = {}
    done = None if args.smoke else finished_search(out, config.search.n_trials)
    if done:
        steps["search"] = done
        print(f"[search] {rel} already holds its {config.search.n_trials} trials: {done['command']}", flush=True)
    else:
        timed("search", ["scalesearch", "run", args.study, "--out", rel, *[f"--set={s}" for s in sets]], steps)
    timed("retrain", ["scalesearch", "fidelity", rel, *(["--frozen-backbone"] if args.frozen else []), "--against",
                      args.label, "--top-k", str(args.top_k), "--factor", str(args.factor), "--seeds", str(args.seeds),
                      *([] if args.frozen else ["--workers", str(args.workers)]), "--save",
                      *([] if args.reuse is None else ["--reuse", record["reuse"]])], steps)
    rows, winner, base = verdicts(out, args.label, file)
    record.update(points=rows, winner=winner, baseline=base, retrain_wall_seconds=retrain_wall(out, file))
    if winner is not None:
        (out / "onnx").mkdir(exist_ok=True)
        graphs, prefix = {}, "frozen_" if args.frozen else ""
        record["checkpoints"] = {}
        for which, row in (("winner", winner), ("baseline", base)):
            graphs[which] = out / "onnx" / f"{prefix}trial{row['number']}.onnx"
            path = checkpoint(out, row, file)
            record["checkpoints"][which] = checkpoint_map(path, row)
            timed(f"export {which}", ["scalesearch", "export", arg(path), "--out", arg(graphs[which]), "--nms"], steps)
        record["onnx_latency"] = onnx_latency(out, graphs, args.rounds, steps, prefix)
        if not args.frozen:  # the run's report shows the fine-tuned winner's export
            export = out / f"export_trial{winner['number']}.json"
            export.write_text((out / "onnx" / "winner_round0.json").read_text())
    for key in ("search", "retrain"):
        print(f"{key}: {steps[key]['wall_seconds']:.0f} s wall")
    if args.smoke:
        from render_beat_lite0 import render_beat_lite0

        record.pop("_t0", None)
        print(render_beat_lite0(record))
        return 0
    save_record(record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
