"""Fake run folders (trials.json + meta.json + study.yaml) for report tests; nothing is trained."""

from __future__ import annotations

import json
import random

import yaml

from scalesearch.records import TrialRecord

SHIFT = {"fpn": 0.0, "panet": 0.02, "bifpn": 0.03}
FLOPS_SCALE = {"fpn": 1.0, "panet": 1.02, "bifpn": 0.98}


def record(number, topology="bifpn", phi=0, seed=0, map_=0.2, flops=2.5e9, state="complete", **extra):
    """One trial in trials.json's flat form."""
    return {"number": number, "state": state, "map": map_ if state == "complete" else None,
            "map50": None if map_ is None else map_ * 1.5, "flops": flops, "params": flops / 600, "seed": seed,
            "topology": topology, "fusion": "fast", "phi": phi, "resolution": 256 + 128 * phi, "fpn_repeats": 3 + phi,
            "group": f"phi={phi} topology={topology}", "seconds": 10.0, "budget_flops": 2e10,
            "params_sampled": {"phi": phi, "topology": topology}, "reason": None, **extra}


def typed(rows):
    return [TrialRecord.from_json(row) for row in rows]


def make_run(path, records, name="fake", budgets=(6e9, 2e10), meta=True, n_trials=None):
    path.mkdir(parents=True, exist_ok=True)
    if records is not None:
        (path / "trials.json").write_text(json.dumps(records))
    study = {"name": name, "space": {"phi": [0, 1], "topology": ["fpn", "panet", "bifpn"]},
             "budgets": {"flops": list(budgets)}, "search": {"n_trials": n_trials or max(1, len(records or []))}}
    (path / "study.yaml").write_text(yaml.safe_dump(study))
    if meta:
        (path / "meta.json").write_text(json.dumps({
            "command": "scalesearch run studies/fake.yaml", "study_name": name, "backend": "optuna", "storage": None,
            "machine": {"host": "box", "platform": "Linux-x86_64", "python": "3.11.7", "cpus": 2},
            "start": "2026-11-25T12:00:00+00:00", "end": "2026-11-25T12:42:00+00:00",
            "first_start": "2026-11-25T11:00:00+00:00", "runs": 2, "wall_seconds": 3000.0}))
    return path


def repeated_records(seeds=3, rng_seed=0):
    """Two phi rungs x three topologies x ``seeds`` seeds, bifpn > panet > fpn by a few seed-noise widths."""
    rng = random.Random(rng_seed)
    out = []
    for phi in range(2):
        for topo in SHIFT:
            for seed in range(seeds):
                flops = 2.5e9 * 2.2**phi * FLOPS_SCALE[topo]
                map_ = 0.2 + 0.05 * phi + SHIFT[topo] + rng.gauss(0, 0.003)
                out.append(record(len(out), topo, phi, seed, map_, flops))
    return out


def section(text, heading):
    """The body rows of the first table after ``heading``."""
    lines = text.split(heading, 1)[1].splitlines()[1:]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i, line in enumerate(lines[start:], start) if not line.startswith("|")), len(lines))
    return lines[start + 2:end]


def report_text(tmp_path, records, **kw):
    from scalesearch.report import write_report

    run = make_run(tmp_path / "run", records, **kw)
    return write_report([run], tmp_path / "out").read_text()
