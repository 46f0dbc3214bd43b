"""One table of estimators: CPU-seconds per candidate against Kendall tau with the long-budget reference.

On the points of a finished run (default ``reports/runs/fidelity_bccd_paired``: the 12 BCCD architectures of
``studies/fidelity_bccd.yaml``) whose ``fidelity.json`` holds the long-budget reference (``scalesearch fidelity``,
paired seeds), every estimator ranks the points and is scored against the reference's mean mAP over the seeds every
point shares (its scored ``maps``): Kendall tau-b with a 95% percentile bootstrap interval over points, tau over the
reference's own ceiling (``scalesearch.fidelity.reliability``; unknown with one seed), and the top-1 regret
(reference mAP lost by trusting the estimator's winner). Rows, all measured here in one run:

- ``train``: today's proxy (``--steps`` of the study's recipe, ``train`` estimator), raw and EMA weights, and its
  training-loss score (mean loss over the last half, lower better; costs the training without evaluation);
- ``cached``: the frozen-backbone estimator on cached features at ``--steps``, and at the CPU-seconds of ``train``:
  ``steps x (CPU(train) - evaluation CPU(cached)) / training CPU(cached)``, from this run's medians (so the
  ``cached`` runs of every point come first, then these);
- zero-cost scores (NASWOT, synflow, grad_norm) as recorded in ``trials.json``, their CPU-seconds measured here
  (``scalesearch.measure.zero_cost.trial_scores``, all three together, on the study's fixed batch); params and
  FLOPs (counted for every trial anyway: 0 s); and the recorded proxy mAP of ``trials.json`` (another machine: no
  CPU-seconds).

CPU-seconds: ``time.process_time`` around one estimate (all threads: training, both weights' evaluation; no
learning-curve evaluations, ``train.curve`` is emptied), per candidate (summed over ``--seeds``), median over points;
wall seconds beside it. The feature cache is built once before timing (its cost is stated apart). Each estimate is
saved to ``RUN/estimators_partial.json`` as soon as it ends; a rerun skips what is there. The supernet issue's target
(``target_check``: the supernet row's tau at least the best other row's, paired bootstrap of the difference, at a
tenth of its CPU-seconds) is checked on the table. Writes ``reports/benchmarks/estimators.json`` (rendered by
``render_estimators.py``); ``--restat`` recomputes its statistics from the committed per-point values alone. Run under the CPU lock:

    flock /tmp/scalesearch-cpu.lock python benchmarks/bench_estimators.py --threads 2

Smoke check (no record, under a minute on the synthetic set):

    python benchmarks/bench_estimators.py --smoke
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "reports" / "runs" / "fidelity_bccd_paired"
PARTIAL = "estimators_partial.json"
BOOTSTRAP = 2000
ZERO_COST = ("naswot", "synflow", "grad_norm")


# ------------------------------------------------------------------------------------------- the rows
def row_specs(steps: int, equal_steps: int | None) -> list[dict[str, Any]]:
    """Every row: ``name``, ``label``, the ``job`` whose results it reads, the ``metric`` it ranks by (times
    ``sign``: higher ranks first), the job's ``cost`` field, and its ``kind`` (``estimator``: a study can use it;
    ``reference``: shown for comparison, never chosen)."""
    def row(name, label, job, metric, sign=1, cost="cpu", kind="estimator"):
        return {"name": name, "label": label, "job": job, "metric": metric, "sign": sign, "cost": cost, "kind": kind}

    equal = f"{equal_steps} steps" if equal_steps else "equal CPU"
    rows = [row("proxy_raw", f"proxy, {steps} steps, raw weights", "train", "map_raw"),
            row("proxy_ema", f"proxy, {steps} steps, EMA weights", "train", "map_ema"),
            row("proxy_loss", f"proxy, {steps} steps, training loss (last half, lower better)", "train", "train_loss",
                sign=-1, cost="train_cpu"),
            row("cached_ema", f"cached frozen backbone, {steps} steps, EMA weights", "cached", "map_ema"),
            row("cached_raw", f"cached frozen backbone, {steps} steps, raw weights", "cached", "map_raw"),
            row("cached_equal_ema", f"cached frozen backbone, proxy's CPU ({equal}), EMA weights", "cached_equal",
                "map_ema"),
            row("cached_equal_raw", f"cached frozen backbone, proxy's CPU ({equal}), raw weights", "cached_equal",
                "map_raw")]
    rows += [row(s, f"zero-cost: {s}", "zero_cost", s, kind="reference") for s in ZERO_COST]
    rows += [row(s, f"{s} (counted)", "recorded", s, cost=None, kind="reference") for s in ("params", "flops")]
    rows.append(row("supernet", "supernet: inherited mAP (bench_supernet.py's supernets, training amortised over "
                    "their sub-networks)", "supernet", "map"))
    rows.append(row("recorded_proxy", "recorded proxy mAP (trials.json: raw, its seeds, its machine)", "recorded",
                    "map", cost=None, kind="reference"))
    return rows


# ---------------------------------------------------------------------------------- pure statistics
def reference_means(records: list[Any], groups: list[str]) -> tuple[list[int], dict[str, float]]:
    """The seeds every reference record of ``groups`` shares and each point's mean scored mAP over them."""
    rows = [r for r in records if r.group in groups]
    if not rows:
        raise SystemExit("bench_estimators: the reference (fidelity.json) holds none of the estimated points")
    shared = sorted(set.intersection(*(set(r.seeds) for r in rows)))
    if not shared:
        raise SystemExit("bench_estimators: the reference's points share no seed; wait for the first seed of all")
    return shared, {r.group: statistics.fmean(dict(zip(r.seeds, r.maps))[s] for s in shared) for r in rows}


def ceiling_tau(records: list[Any], groups: list[str], seeds: list[int]) -> float | None:
    """``reliability(rows).ceiling_tau`` of the reference restricted to ``groups`` and ``seeds``; None when unknown
    (one seed, fewer than three points, a non-positive reliability)."""
    import dataclasses

    from scalesearch.fidelity import reliability

    rows = []
    for r in (r for r in records if r.group in groups):
        maps = dict(zip(r.seeds, r.maps))
        rows.append(dataclasses.replace(r, seeds=tuple(seeds), maps=tuple(maps[s] for s in seeds),
                                        raw_maps=None, ema_maps=None, paired=True))
    found = reliability(rows)
    return None if found is None or not found.ceiling_tau == found.ceiling_tau else found.ceiling_tau


def _pairs(values: dict[str, float], reference: dict[str, float]) -> list[Any]:
    """(estimator value, reference mAP) per point as ``FidelityRecord``s: the library's statistics read those."""
    from scalesearch.fidelity import FidelityRecord

    return [FidelityRecord(group=g, number=i, spec={}, flops=0.0, proxy_map=float(values[g]), factor=1.0, steps=None,
                           seconds=None, seeds=(0,), maps=(float(reference[g]),))
            for i, g in enumerate(reference) if values.get(g) is not None]


def _finite(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), 4)


def row_stats(values: dict[str, float], reference: dict[str, float], ceiling: float | None,
              n: int = BOOTSTRAP) -> dict[str, Any]:
    """Kendall tau-b of ``values`` (higher ranks first) against ``reference`` over the points both have, its 95%
    bootstrap interval over points (``n`` resamples, seed 0), tau / ``ceiling`` and the top-1 regret."""
    from scalesearch.fidelity import bootstrap_interval, kendall, top1_regret

    pairs = _pairs(values, reference)
    if len(pairs) < 2:
        return {"n": len(pairs), "tau": None, "low": None, "high": None, "ratio": None, "regret": None}
    tau = _finite(kendall(pairs)[0])
    low, high = bootstrap_interval(pairs, "kendall", n=n, seed=0)
    return {"n": len(pairs), "tau": tau, "low": _finite(low), "high": _finite(high),
            "ratio": ceiling_ratio(tau, ceiling), "regret": _finite(top1_regret(pairs))}


def ceiling_ratio(tau: float | None, ceiling: float | None) -> float | None:
    """tau / ceiling; None when either is unknown or the ceiling is not positive."""
    return None if tau is None or ceiling is None or not ceiling > 0 else round(tau / ceiling, 4)


def equal_cpu_steps(steps: int, target_cpu: float, train_cpu: float, eval_cpu: float = 0.0) -> int:
    """Steps at which an estimator whose ``steps``-step run costs ``train_cpu`` to train plus ``eval_cpu`` to
    evaluate (fixed) costs ``target_cpu`` in all (CPU-seconds per candidate): training scales with steps."""
    if not train_cpu > 0:
        raise ValueError(f"train_cpu must be > 0, but got {train_cpu}")
    return max(1, round(steps * (target_cpu - eval_cpu) / train_cpu))


def pareto_front(rows: list[dict[str, Any]]) -> list[str]:
    """Rows no other row beats on both CPU-seconds (lower) and tau (higher); rows lacking either are left out."""
    have = [r for r in rows if r.get("tau") is not None and r.get("cpu_seconds") is not None]

    def beats(o, r):
        return (o["cpu_seconds"] <= r["cpu_seconds"] and o["tau"] >= r["tau"]
                and (o["cpu_seconds"] < r["cpu_seconds"] or o["tau"] > r["tau"]))

    return [r["name"] for r in have if not any(beats(o, r) for o in have)]


def first_per_cpu(rows: list[dict[str, Any]]) -> str | None:
    """The row the table puts first per CPU-second: among ``estimator`` rows whose 95% interval lies above 0 (a
    ranking distinguishable from chance), the highest tau per CPU-second (ties: the first); None when none is."""
    ok = [r for r in rows if r["kind"] == "estimator" and r.get("tau") is not None and r.get("low") is not None
          and r["low"] > 0 and r.get("cpu_seconds")]
    return max(ok, key=lambda r: r["tau"] / r["cpu_seconds"])["name"] if ok else None


def target_check(rows: list[dict[str, Any]], reference: dict[str, float], row: str = "supernet",
                 cost_share: float = 0.1, n: int = BOOTSTRAP) -> dict[str, Any] | None:
    """The supernet issue's target, checked on the table: ``row``'s tau at least the best other estimator row's
    (highest tau; ties: the cheaper) at ``cost_share`` of its CPU-seconds per candidate or less. The tau side is a
    paired comparison on the points both rows have (``scalesearch.fidelity.bootstrap_difference``: each resample
    scores both rows on the same points, ``n`` resamples, seed 0): ``tau_met`` when the difference is >= 0,
    ``tau_shown`` says which way the 95% interval decides (``not worse`` when it lies at or above 0, ``worse``
    when it lies below 0, ``cannot tell`` when it holds 0 and values below). None when either row is missing or has
    no tau, when they share fewer than 2 points or the difference is undefined. The bar is the best of several rows
    on the same points, so it is biased upwards (a selection effect the interval does not hold): a miss is weaker
    evidence than it reads."""
    from scalesearch.fidelity import bootstrap_difference

    rows_by = {r["name"]: r for r in rows}
    mine = rows_by.get(row)
    others = [r for r in rows if r["kind"] == "estimator" and r["name"] != row and r.get("tau") is not None
              and r.get("cpu_seconds")]
    if mine is None or mine.get("tau") is None or not mine.get("cpu_seconds") or not others:
        return None
    best = max(others, key=lambda r: (r["tau"], -r["cpu_seconds"]))
    shared = {g: v for g, v in reference.items() if mine["values"].get(g) is not None
              and best["values"].get(g) is not None}
    if len(shared) < 2:
        return None
    difference, low, high = bootstrap_difference(_pairs(mine["values"], shared), _pairs(best["values"], shared),
                                                 n=n, seed=0)
    if not all(math.isfinite(x) for x in (difference, low, high)):
        return None
    share = mine["cpu_seconds"] / best["cpu_seconds"]
    shown = "not worse" if low >= 0 else ("worse" if high < 0 else "cannot tell")
    return {"row": row, "against": best["name"], "cost_share": round(share, 4), "cost_target": cost_share,
            "cost_met": share <= cost_share, "n": len(shared), "tau_difference": _finite(difference),
            "low": _finite(low), "high": _finite(high), "tau_met": difference >= 0, "tau_shown": shown,
            "resamples": n}


def restat(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with every statistic computed again from what it holds (each row's per-point ``values``, the
    reference means and ceiling): the rows' tau, interval, ratio and regret, the front, the first row and the
    target check. Nothing is estimated; an estimate-free update of the page's statistics."""
    reference, ceiling, n = record["reference"]["maps"], record["reference"]["ceiling_tau"], record["bootstrap"]
    rows = [{**r, **row_stats(r["values"], reference, ceiling, n)} for r in record["rows"]]
    return {**record, "rows": rows, "front": pareto_front(rows), "first": first_per_cpu(rows),
            "target": target_check(rows, reference, n=n)}


def per_candidate(jobs: dict[str, dict], job: str, groups: list[str], seeds: list[int], steps: int | None,
                  field: str) -> dict[str, float]:
    """Per point: the sum over ``seeds`` of ``field`` of the ``job`` results (costs), when all seeds are in."""
    out = {}
    for g in groups:
        found = [jobs.get(job_key(job, g, s, steps), {}).get(field) for s in seeds]
        if found and all(v is not None for v in found):
            out[g] = sum(found)
    return out


def per_point(jobs: dict[str, dict], job: str, groups: list[str], seeds: list[int], steps: int | None,
              metric: str, sign: int) -> dict[str, float]:
    """Per point: ``sign`` times the mean over ``seeds`` of ``metric`` (what the row ranks by)."""
    return {g: sign * v / len(seeds) for g, v in per_candidate(jobs, job, groups, seeds, steps, metric).items()}


def job_key(job: str, group: str, seed: int | None, steps: int | None) -> str:
    return f"{job}|{steps}|{group}|{seed}"


def table(jobs: dict[str, dict], groups: list[str], seeds: list[int], steps: int, equal_steps: int | None,
          reference: dict[str, float], ceiling: float | None, n: int = BOOTSTRAP) -> list[dict[str, Any]]:
    """Every row of ``row_specs`` with its per-point ``values`` and ``cpu``, the median CPU and wall seconds per
    candidate, and ``row_stats``."""
    out = []
    for spec in row_specs(steps, equal_steps):
        job = "cached" if spec["job"] == "cached_equal" else spec["job"]
        run_steps = {"cached_equal": equal_steps, "zero_cost": None, "recorded": None, "supernet": None}.get(
            spec["job"], steps)
        run_seeds = [None] if spec["job"] in ("zero_cost", "recorded", "supernet") else seeds
        values = per_point(jobs, job, groups, run_seeds, run_steps, spec["metric"], spec["sign"])
        cost = per_candidate(jobs, job, groups, run_seeds, run_steps, spec["cost"]) if spec["cost"] else {}
        wall = per_candidate(jobs, job, groups, run_seeds, run_steps, "wall") if spec["cost"] else {}
        if spec["job"] == "recorded" and spec["metric"] in ("params", "flops"):
            cost = {g: 0.0 for g in values}
        out.append({**spec, "steps": run_steps, "values": values, "cpu": cost,
                    "cpu_seconds": _finite(statistics.median(cost.values())) if cost else None,
                    "wall_seconds": _finite(statistics.median(wall.values())) if wall else None,
                    **row_stats(values, reference, ceiling, n)})
    return out


# ------------------------------------------------------------------------------------- measurement
class Partial:
    """``jobs`` (key -> result) saved to ``path`` after each one; ``settings`` must match a rerun's."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path, self.settings = path, settings
        data = json.loads(path.read_text()) if path.is_file() else {"settings": settings, "jobs": {}}
        if data["settings"] != settings:
            raise SystemExit(f"bench_estimators: {path} holds results of other settings ({data['settings']}), "
                             f"not {settings}; move it away or use --partial")
        self.jobs: dict[str, dict] = data["jobs"]
        self.extra: dict[str, Any] = data.get("extra", {})

    def save(self) -> None:
        from scalesearch.files import write_json_atomic

        write_json_atomic(self.path, {"settings": self.settings, "extra": self.extra, "jobs": self.jobs})

    def run(self, key: str, measure: Callable[[], dict], say: str) -> dict:
        if key not in self.jobs:
            self.jobs[key] = measure()
            self.save()
            print(f"{say} {key}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, (int, float)) else f"{k} {v}"
                                               for k, v in self.jobs[key].items() if v is not None
                                               and not isinstance(v, dict)), flush=True)
        return self.jobs[key]


@contextlib.contextmanager
def _evaluation_stamp(stamps: dict[str, tuple[float, float]]):
    """Stamp (wall, CPU) when the final evaluation starts (``train.score_weights``, which both ``train`` and
    ``cached`` call after their loop), so the training-loss row is charged the training alone."""
    from scalesearch.training import train

    original = train.score_weights

    def stamped(*args, **kwargs):
        stamps.setdefault("eval", (time.perf_counter(), time.process_time()))
        return original(*args, **kwargs)

    train.score_weights = stamped
    try:
        yield
    finally:
        train.score_weights = original


def measure_estimate(estimator: Any, spec: Any, seed: int) -> dict[str, Any]:
    """One estimate: its mAPs, training loss, steps and (wall, CPU) seconds, in all and up to the evaluation."""
    from scalesearch.search.estimators import EstimateFailed

    stamps: dict[str, tuple[float, float]] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    failed, m, steps = None, {}, None
    with _evaluation_stamp(stamps):
        try:
            found = estimator.estimate(spec, seed)
            m, steps = found.metrics, found.steps
        except EstimateFailed as exc:  # recorded: the point has no value in this row, the run goes on
            failed = exc.reason
    end = (time.perf_counter(), time.process_time())
    evaluation = stamps.get("eval", end)
    return {"map": m.get("map"), "map_raw": m.get("map_raw"), "map_ema": m.get("map_ema"),
            "train_loss": m.get("train_loss"), "steps": steps, "cpu": round(end[1] - cpu, 3),
            "wall": round(end[0] - wall, 3), "train_cpu": round(evaluation[1] - cpu, 3),
            "train_wall": round(evaluation[0] - wall, 3), "failed": failed}


def measure_zero_cost(spec: Any, train_pair: Any, cfg: Any, batches: dict) -> dict[str, Any]:
    from scalesearch.measure.zero_cost import trial_scores

    wall, cpu = time.perf_counter(), time.process_time()
    scores = trial_scores(spec, train_pair, cfg, batches)
    return {"cpu": round(time.process_time() - cpu, 3), "wall": round(time.perf_counter() - wall, 3),
            "fresh": {k: v for k, v in scores.items() if k in ZERO_COST}}


def load_points(run: Path, limit: int | None) -> list[dict[str, Any]]:
    """The run's distinct points, those in its reference (``fidelity.json``) first, each in trial order: group,
    spec fields, params, FLOPs, recorded zero-cost scores, and the recorded proxy mAPs (one per measured trial)."""
    from scalesearch import pareto
    from scalesearch.fidelity import load_fidelity
    from scalesearch.records import load_records

    groups: dict[str, dict[str, Any]] = {}
    for r in sorted(pareto.measurements(load_records(run)), key=lambda r: r.number):
        point = groups.setdefault(pareto.group_key(r), {"group": pareto.group_key(r), "spec": dict(r.spec),
                                                        "params": r.get("params"), "flops": r.get("flops"),
                                                        "zero_cost": dict(r.zero_cost), "maps": []})
        point["maps"].append(r.get("map"))
    in_reference = {r.group for r in load_fidelity(run)}
    return sorted(groups.values(), key=lambda p: p["group"] not in in_reference)[:limit]


def recorded_jobs(points: list[dict[str, Any]]) -> dict[str, dict]:
    """The rows read from ``trials.json`` as job results (job ``recorded``): params, FLOPs, mean recorded mAP."""
    out = {}
    for p in points:
        out[job_key("recorded", p["group"], None, None)] = {"params": p["params"], "flops": p["flops"],
                                                            "map": statistics.fmean(p["maps"])}
    return out


def study(run: Path, overrides: list[str]) -> Any:
    """The run's study, its dataset path made absolute against the repository (it is relative to where the run
    was started), learning-curve evaluations off, with ``overrides``."""
    from scalesearch.config import load_study

    config = load_study(run / "study.yaml")
    data = [f"dataset.path={(ROOT / config.dataset.path).resolve()}"] if config.dataset.path and \
        not Path(config.dataset.path).is_absolute() else []
    return load_study(run / "study.yaml", [*data, "train.curve=[]", *overrides])


def estimators(config: Any, equal_config: Any, cache_dir: Path) -> tuple[Any, Any, Any, Any]:
    from scalesearch.search.estimators import StudyContext, StudyData
    from scalesearch.search.estimators.cached import CachedEstimator
    from scalesearch.search.estimators.train import TrainEstimator
    from scalesearch.search.objective import dataset_pairs, num_classes

    train_pair, val_pair = dataset_pairs(config.dataset)
    data = StudyData(train_pair, val_pair, num_classes(train_pair[1]))
    made = [cls(StudyContext(c, data, cache_dir)) for cls, c in
            ((TrainEstimator, config), (CachedEstimator, config), (CachedEstimator, equal_config))]
    for e in made:
        e.ensure_prepared()
    return (*made, data)


def build_cache(cached: Any, spec: Any, data: Any, cfg: Any, partial: Partial) -> None:
    """Build (or read back) the feature cache before any timed estimate; its first build's cost is kept."""
    wall, cpu = time.perf_counter(), time.process_time()
    entry = cached.cache.get(spec, data.train, data.val, cfg)
    if "cache" not in partial.extra or entry.built:
        partial.extra["cache"] = {"bytes": entry.bytes, "built": entry.built, "rows": entry.images * len(entry.flips)
                                  + len(entry.val.targets), "cpu": round(time.process_time() - cpu, 2),
                                  "wall": round(time.perf_counter() - wall, 2)}
        partial.save()


def zero_cost_result(point: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    """The recorded scores of ``point`` (the ones the search ranked by; fresh ones where none is recorded) with the
    CPU and wall seconds measured here."""
    recorded = {k: v for k, v in point["zero_cost"].items() if k in ZERO_COST}
    return {**measured["fresh"], **recorded, "cpu": measured["cpu"], "wall": measured["wall"]}


def measure_all(args: argparse.Namespace, points: list[dict[str, Any]], seeds: list[int],
                partial: Partial) -> int:
    """Phase 1: per point, ``train`` and ``cached`` at ``--steps`` for every seed, then its zero-cost scores;
    phase 2: ``cached`` at the equal-CPU steps. Returns those steps."""
    from scalesearch.spec import DetectorSpec

    overrides = list(args.set)
    config = study(args.run, [f"train.steps={args.steps}", *overrides])
    equal = partial.extra.get("equal_steps")
    train_est, cached, _, data = estimators(config, config, args.cache_dir)
    specs = {p["group"]: spec_of(DetectorSpec.from_dict(p["spec"]), data.num_classes, args.smoke) for p in points}
    first = specs[points[0]["group"]]
    build_cache(cached, first, data, config.trial_train_config(seeds[0]), partial)
    batches: dict = {}
    measure_zero_cost(first, data.train, config.trial_train_config(seeds[0]), batches)  # warm: the fixed batch
    n = len(points) * len(seeds)
    for i, p in enumerate(points):
        spec, g = specs[p["group"]], p["group"]
        for j, seed in enumerate(seeds):
            at = f"[{i * len(seeds) + j + 1}/{n}]"
            partial.run(job_key("train", g, seed, args.steps), lambda: measure_estimate(train_est, spec, seed), at)
            partial.run(job_key("cached", g, seed, args.steps), lambda: measure_estimate(cached, spec, seed), at)
        partial.run(job_key("zero_cost", g, None, None), lambda: zero_cost_result(p, measure_zero_cost(
            spec, data.train, config.trial_train_config(seeds[0]), batches)), f"[{i + 1}/{len(points)}]")
    if equal is None or not any(k.startswith(f"cached|{equal}|") for k in partial.jobs):  # fixed once phase 2 began
        equal = equal_cpu_steps(args.steps, *equal_inputs(partial.jobs, [p["group"] for p in points], seeds,
                                                          args.steps))
        if args.smoke:
            equal = min(equal, 5 * args.steps)
        partial.extra["equal_steps"] = equal
        partial.save()
        print(f"equal CPU: cached at {equal} steps", flush=True)
    equal_config = study(args.run, [f"train.steps={equal}", *overrides])
    _, _, cached_equal, _ = estimators(config, equal_config, args.cache_dir)
    cached_equal.cache.get(first, data.train, data.val, equal_config.trial_train_config(seeds[0]))  # read it back now
    for i, p in enumerate(points):
        spec, g = specs[p["group"]], p["group"]
        for j, seed in enumerate(seeds):
            partial.run(job_key("cached", g, seed, equal), lambda: measure_estimate(cached_equal, spec, seed),
                        f"[{i * len(seeds) + j + 1}/{n}]")
    return equal


def measure_supernets(args: argparse.Namespace, points: list[dict[str, Any]], partial: Partial) -> None:
    """Phase 3 (``--supernet``): the supernets of ``bench_supernet.py`` (its default elastic space and settings,
    its ``--cache-dir``: trained there once, read back here), each point inside their space scored by inheritance
    (one seed: a trial is deterministic but for the recalibration images), charged its trial CPU-seconds measured here
    plus the supernets' recorded training CPU-seconds over their number of sub-networks."""
    import bench_supernet

    sargs = bench_supernet.parser().parse_args(["--threads", str(args.threads), "--run", str(args.run)])
    if args.smoke:
        bench_supernet.smoke_settings(sargs, Path(args.set[0].split("=", 1)[1]))
    _, data, estimator, training, space, sub_networks = bench_supernet.prepared(sargs)
    train_cpu = sum(t["cpu_seconds"] for t in training.values())
    partial.extra["supernet"] = {"training": training, "training_cpu": round(train_cpu, 1), "sub_networks": sub_networks,
                                 "space": {k: list(v) for k, v in estimator.plan.values.items()},
                                 "steps": sargs.steps, "cache_dir": "bench_supernet.py --cache-dir (default)"}
    partial.save()
    inside, _ = bench_supernet.inside_points(points, estimator, space, data.num_classes, args.smoke)
    for i, (g, spec) in enumerate(inside.items()):
        def measure(spec=spec):
            found = bench_supernet.score(estimator, spec)
            return {"map": found["map"], "trial_cpu": found["cpu"], "wall": found["wall"],
                    "cpu": round(found["cpu"] + train_cpu / sub_networks, 3)}
        partial.run(job_key("supernet", g, None, None), measure, f"[{i + 1}/{len(inside)}]")


def equal_inputs(jobs: dict[str, dict], groups: list[str], seeds: list[int], steps: int) -> tuple[float, float, float]:
    """Medians over points of CPU-seconds per candidate: the ``train`` estimate in all, and the ``cached`` one's
    training and its evaluation (what ``equal_cpu_steps`` reads)."""
    target = per_candidate(jobs, "train", groups, seeds, steps, "cpu")
    total = per_candidate(jobs, "cached", groups, seeds, steps, "cpu")
    train = per_candidate(jobs, "cached", groups, seeds, steps, "train_cpu")
    return (statistics.median(target.values()), statistics.median(train.values()),
            statistics.median(total[g] - train[g] for g in train))


def spec_of(spec: Any, classes: int, smoke: bool) -> Any:
    """The spec estimated: the point's own with the dataset's class count (as the search resolves it), for
    ``--smoke`` at 128 px (the synthetic images' size)."""
    spec = spec.replace(num_classes=classes)
    return spec.replace(resolution=SMOKE_SIZE) if smoke else spec


SMOKE_SIZE = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=RUN, help="run folder: trials.json, fidelity.json, study.yaml")
    parser.add_argument("--seeds", type=int, default=1, help="proxy seeds per point (the study's seed and the next)")
    parser.add_argument("--points", type=int, help="only the first N points (trial order)")
    parser.add_argument("--steps", type=int, default=150, help="steps of today's proxy (and the cached row beside it)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--bootstrap", type=int, default=BOOTSTRAP, help="bootstrap resamples of the tau interval")
    parser.add_argument("--partial", type=Path, help=f"results so far (default RUN/{PARTIAL}; /tmp for --smoke)")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "scalesearch-estimators",
                        help="feature cache folder (shared by reruns)")
    parser.add_argument("--set", action="append", default=[], help="study override KEY.PATH=VALUE (repeatable)")
    parser.add_argument("--no-supernet", dest="supernet", action="store_false",
                        help="leave out the supernet row (bench_supernet.py's supernets, trained if not yet)")
    parser.add_argument("--smoke", action="store_true", help="synthetic data, 2 steps, 3 points, no record")
    parser.add_argument("--out", help="write the record here instead of reports/benchmarks/estimators.json")
    parser.add_argument("--restat", action="store_true",
                        help="estimate nothing: recompute every statistic (tau, intervals, front, first row, target "
                             "check) from the committed record's per-point values and write it back")
    args = parser.parse_args()
    if args.restat:
        path = Path(args.out) if args.out else ROOT / "reports" / "benchmarks" / "estimators.json"
        record = restat(json.loads(path.read_text()))
        path.write_text(json.dumps(record, indent=1) + "\n")
        print(summary(record["rows"], record["first"]))
        print(f"target: {record['target']}")
        return
    if args.smoke:
        from scalesearch.data import synthetic_dataset

        data = synthetic_dataset(num_train=16, num_val=8, image_size=SMOKE_SIZE)
        args.set = [f"dataset.path={data}", "train.warmup_steps=0", *args.set]
        # one thread: two threads of a niced process on a busy machine spin-wait on each other (CPU, no progress)
        args.steps, args.points, args.bootstrap, args.threads = 2, args.points or 3, 50, 1
        args.cache_dir = Path(tempfile.mkdtemp(prefix="estimators-smoke-"))
        args.partial = args.partial or args.cache_dir / PARTIAL
        args.out = args.out or os.devnull
    args.run = args.run.resolve()
    args.partial = args.partial or args.run / PARTIAL

    import torch

    from render import begin_record, save_or_write

    from scalesearch.fidelity import load_fidelity
    from scalesearch.machine import portable_path

    torch.set_num_threads(args.threads)
    config = study(args.run, args.set)
    seeds = [config.seed + i for i in range(args.seeds)]
    points = load_points(args.run, args.points)
    partial = Partial(args.partial, {"threads": args.threads, "steps": args.steps, "set": args.set})
    record = begin_record("estimators", run=portable_path(args.run), data=portable_path(config.dataset.path or "synthetic"),
                          steps=args.steps, seeds=seeds, threads=args.threads, bootstrap=args.bootstrap,
                          partial=portable_path(args.partial))
    equal = measure_all(args, points, seeds, partial)
    if args.supernet:
        measure_supernets(args, points, partial)
    groups = [p["group"] for p in points]
    reference_rows = load_fidelity(args.run)
    ref_seeds, reference = reference_means(reference_rows, groups)
    ceiling = ceiling_tau(reference_rows, list(reference), ref_seeds)
    jobs = {**partial.jobs, **recorded_jobs(points)}
    rows = table(jobs, groups, seeds, args.steps, equal, reference, ceiling, args.bootstrap)
    base = next(r for r in reference_rows if r.group in reference)
    record.update(points=groups, equal_steps=equal, cache=partial.extra.get("cache"), rows=rows,
                  supernet=partial.extra.get("supernet"),
                  reference={"seeds": ref_seeds, "factor": base.factor, "steps": base.steps, "scored": base.scored, "maps": reference, "ceiling_tau": _finite(ceiling)},
                  front=pareto_front(rows), first=first_per_cpu(rows),
                  target=target_check(rows, reference, n=args.bootstrap))
    print(summary(rows, record["first"]))
    if args.smoke:
        from render_estimators import render_estimators

        print(render_estimators({**record, "seconds": 0.0}))
    save_or_write(record, args.out)


def summary(rows: list[dict[str, Any]], first: str | None) -> str:
    lines = [f"{r['name']:18s} cpu {r['cpu_seconds'] if r['cpu_seconds'] is not None else 'n/a'!s:>8} s  "
             f"tau {r['tau'] if r['tau'] is not None else 'n/a'!s:>7} [{r['low']}, {r['high']}]  "
             f"regret {r['regret']}" for r in rows]
    return "\n".join(lines + [f"first per CPU-second: {first or 'none (no interval above 0)'}"])


if __name__ == "__main__":
    main()
