"""The backend contract: the same cases, run for real against every registered backend (Optuna and Ray Tune).

Both backends schedule the one objective (``Evaluator.evaluate``) and store the one ``TrialRecord`` encoding,
so a study gives the same record schema and the same trial numbers (``point * seeds + seed_index``) on both.
Training is real but tiny (16 images of 128 px, a few steps): Ray runs trials in worker processes, where a
monkeypatched trainer would not reach.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from servers import TEST_EXTRAS, need_module

from conftest import records_json, tiny_study
from scalesearch.cli import main
from scalesearch.search.backend import BACKENDS, SearchBackend, get_backend
from scalesearch.search.samplers import SAMPLERS

SPACE = {"phi": [-3.0, -2.0], "topology": ["fpn", "bifpn"], "resolution": 128}
TRAIN = {"steps": 2, "batch_size": 4, "warmup_steps": 1, "eval_batch_size": 8}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    if request.param == "ray":
        need_module("ray", TEST_EXTRAS)
    yield request.param
    if request.param == "ray":
        import ray

        ray.shutdown()


def _study(tmp_path: Path, backend: str, **changes) -> Path:
    search = {"backend": backend, "n_trials": 4, "sampler": "grid", **changes.pop("search", {})}
    if backend == "ray":
        search["ray"] = {"num_cpus": 2, **search.get("ray", {})}
    return tiny_study(tmp_path, space=changes.pop("space", SPACE), train={**TRAIN, **changes.pop("train", {})},
                      search=search, **changes)


def test_registry_lists_both_backends_and_names_a_bad_one():
    assert all(issubclass(get_backend(name), SearchBackend) for name in BACKENDS) and set(BACKENDS) == {"optuna", "ray"}
    with pytest.raises(Exception, match="unknown search backend 'optunaa' \\(close names: optuna"):
        get_backend("optunaa")


@pytest.fixture(scope="module")
def numbered_runs(tmp_path_factory):
    """One 8-trial study (2 points x 2 topologies x 2 seeds, grid) per backend, run once for the module: the
    records of each, by backend (None: the backend could not run here)."""
    runs = {}
    for name in sorted(BACKENDS):
        if name == "ray":
            need_module("ray", TEST_EXTRAS)
        folder = tmp_path_factory.mktemp(f"numbered-{name}")
        assert main(["run", str(_study(folder, name, seeds=2, search={"n_trials": 8})), "--quiet"]) == 0
        runs[name] = records_json(folder / "run")
        if name == "ray":
            import ray

            ray.shutdown()
    return runs


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_n_trials_with_one_schema_and_one_numbering(numbered_runs, name):
    records = numbered_runs[name]
    assert sorted(r["number"] for r in records) == list(range(8)) and {r["state"] for r in records} == {"complete"}
    assert {(r["topology"], r["phi"], r["seed"]) for r in records} == {
        (t, p, s) for t in ("fpn", "bifpn") for p in (-3.0, -2.0) for s in (0, 1)}
    for r in records:  # number = point * seeds + seed index: the repeats of a point are neighbours
        partner = next(o for o in records if o["number"] == r["number"] ^ 1)
        assert partner["params_sampled"] == r["params_sampled"] and {r["seed"], partner["seed"]} == {0, 1}


def test_the_schema_is_the_same_on_both_backends(numbered_runs):
    keys = {name: [sorted(r) for r in sorted(records, key=lambda r: r["number"])]
            for name, records in numbered_runs.items()}
    assert keys["optuna"] == keys["ray"] and len(keys["optuna"]) == 8


def test_infeasible_points_are_never_trained(tmp_path, backend):
    # phi=-3 at 128 px counts 75,372,888 FLOPs, phi=-2 93,802,816: a 0.08B budget rules phi=-2 out.
    study = _study(tmp_path, backend, budgets={"flops": "0.08B"}, space={"phi": [-3.0, -2.0], "resolution": 128})
    assert main(["run", str(study), "--quiet", "--n-trials", "2"]) == 0
    records = {r["phi"]: r for r in records_json(tmp_path / "run")}
    over = records[-2.0]
    assert over["state"] == "infeasible" and over["steps"] is None and over["train_seconds"] is None
    assert over["reason"] == "flops 0.094B over the budget 0.080B" and over["values"] == [0.0]
    assert records[-3.0]["state"] == "complete" and records[-3.0]["steps"] == 2


def test_a_failed_trial_is_contained_and_the_study_goes_on(tmp_path, backend):
    # lr 1e6 diverges on the first steps: TrainingFailed -> a failed record with its reason, never a crash.
    study = _study(tmp_path, backend, train={"lr": 1e6, "steps": 4})
    assert main(["run", str(study), "--quiet", "--n-trials", "2"]) == 0
    records = records_json(tmp_path / "run")
    assert len(records) == 2 and {r["state"] for r in records} == {"failed"}
    assert all(r["reason"].startswith("training failed: ") and r["values"] is None for r in records)


def _trial_started(run: Path, backend: str) -> bool:
    if backend == "optuna":
        return (run / "trials.json").is_file() and len(json.loads((run / "trials.json").read_text())) >= 1
    return sum(1 for p in (run / "ray").rglob("result.json") if p.stat().st_size > 0) >= 1


@pytest.mark.slow
def test_sigkill_then_rerun_ends_with_exactly_n_trials(tmp_path, backend):
    study = _study(tmp_path, backend, space={"phi": {"low": -3.0, "high": -2.5}, "resolution": 128},
                   train={"steps": 30}, search={"n_trials": 4, "sampler": "random"})
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "scalesearch.cli", "run", str(study), "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not _trial_started(run, backend):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started (Ray's local cluster too)
    proc.wait()
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    records = records_json(run)
    assert sorted(r["number"] for r in records) == [0, 1, 2, 3] and {r["state"] for r in records} == {"complete"}
    assert len({json.dumps(r["params_sampled"], sort_keys=True) for r in records}) == 4  # no duplicate point


@pytest.mark.parametrize("sampler", SAMPLERS.choices())
def test_every_sampler_runs_three_trials(tmp_path, fake, sampler):
    two = not SAMPLERS[sampler].single_objective
    objectives = ["maximize map", "minimize flops"] if two else ["maximize map"]
    study = tiny_study(tmp_path, objectives=objectives, search={"n_trials": 3, "sampler": sampler})
    assert main(["run", str(study), "--quiet"]) == 0
    records = records_json(tmp_path / "run")
    assert sorted(r["number"] for r in records) == [0, 1, 2] and {r["state"] for r in records} == {"complete"}
    assert len(fake) == 3
