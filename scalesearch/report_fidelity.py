"""Proxy fidelity: does the short proxy training rank architectures as longer training does?

The paper's appendix shows that short schedules can mis-rank detectors (D1 vs RetinaNet flip
between 30 and 90 epochs), so a search on a short proxy is only useful if its ranking holds.
``retrain`` trains the best k distinct specs of a study again for ``minutes`` each, with the study's
own dataset and training settings, and ``kendall`` gives the rank correlation of short vs long mAP.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scalesearch import pareto
from scalesearch.errors import UserError
from scalesearch.report_doc import Document
from scalesearch.report_runs import Run
from scalesearch.spec import DetectorSpec

Record = dict[str, Any]
Trainer = Callable[[DetectorSpec, int], float]  # (spec, seed) -> val mAP


@dataclass(frozen=True)
class FidelityRow:
    number: int
    group: str
    flops: float
    short_map: float
    long_map: float


def pick(records: Sequence[Record], k: int) -> list[Record]:
    """The k best distinct specs: front points by mAP first, then the other feasible trials by mAP.

    Seed repeats of one spec count once (its first record), so the k retrained points are k architectures.
    """
    front = sorted(pareto.pareto_front(records), key=lambda r: -r["map"])
    rest = sorted(pareto.feasible(records), key=lambda r: -r["map"])
    chosen: dict[str, Record] = {}
    for record in [*front, *rest]:
        chosen.setdefault(pareto.group_key(record), record)
    return list(chosen.values())[:k]


def spec_of(record: Record) -> DetectorSpec:
    """Rebuild the trial's DetectorSpec from its flattened fields."""
    return DetectorSpec.from_dict({k: record[k] for k in pareto.SPEC_FIELDS if k in record})


def study_trainer(run: Run, minutes: float) -> Trainer:
    """Train with the run's dataset and ``train`` settings, budget ``minutes`` of wall time per spec."""
    from scalesearch.config import make_train_config, validate_study
    from scalesearch.search.objective import dataset_pairs
    from scalesearch.train import train_and_evaluate

    if not run.config:
        raise UserError(f"run folder {str(run.path)!r}: --fidelity-top-k needs its study.yaml, but it has none")
    config = validate_study(run.config)
    train_data, val_data = dataset_pairs(config.dataset)

    def train(spec: DetectorSpec, seed: int) -> float:
        cfg = make_train_config({**config.train, "steps": None, "seconds": minutes * 60.0}, seed=seed)
        return float(train_and_evaluate(spec, train_data, val_data, cfg, progress=False).metrics["map"])

    return train


def retrain(run: Run, k: int, minutes: float, trainer: Trainer | None = None) -> list[FidelityRow]:
    """Retrain the run's ``pick(k)`` specs (same seed as their trial) and pair short with long mAP."""
    if k < 2:
        raise UserError(f"--fidelity-top-k: must be >= 2 for a rank correlation, but got {k}")
    if minutes <= 0:
        raise UserError(f"--fidelity-minutes: must be > 0, but got {minutes}")
    chosen = pick(run.records, k)
    if len(chosen) < 2:
        return []
    trainer = trainer or study_trainer(run, minutes)
    return [FidelityRow(r["number"], pareto.group_key(r), float(r["flops"]), float(r["map"]),
                        trainer(spec_of(r), int(r.get("seed") or 0))) for r in chosen]


def kendall(rows: Sequence[FidelityRow]) -> tuple[float, float]:
    """Kendall's tau-b between short and long mAP, and its two-sided p-value (scipy)."""
    from scipy import stats

    result = stats.kendalltau([r.short_map for r in rows], [r.long_map for r in rows])
    return float(result.statistic), float(result.pvalue)


def add_section(doc: Document, run: Run, rows: Sequence[FidelityRow], minutes: float, out_dir: Path) -> None:
    """Fidelity table and verdict; the rows are also saved as ``fidelity_<study>.json``."""
    doc.heading(2, f"Proxy fidelity: `{run.name}`")
    if len(rows) < 2:
        doc.para("Skipped: fewer than two distinct feasible specs to rank.")
        return
    tau, p = kendall(rows)
    (out_dir / f"fidelity_{run.name}.json").write_text(
        json.dumps({"minutes": minutes, "tau": tau, "p": p, "rows": [asdict(r) for r in rows]}, indent=1))
    doc.para(f"The {len(rows)} best distinct specs (front first) were retrained for {minutes:g} min each with the "
             f"study's data and settings.")
    doc.table(["trial", "point", "FLOPs", "proxy mAP", f"{minutes:g}-min mAP"],
              [[r.number, r.group, f"{r.flops / 1e9:.3f} G", f"{r.short_map:.4f}", f"{r.long_map:.4f}"] for r in rows])
    if tau != tau:  # NaN: one side has all-equal values
        doc.para("Kendall tau is undefined: all proxy or all longer-training mAPs are equal.")
        return
    if tau > 0 and p < 0.05:
        verdict = "the proxy ranks these specs as the longer training does, beyond chance."
    elif tau > 0:
        verdict = (f"the rankings lean the same way, but with n = {len(rows)} that is not established (p >= 0.05); "
                   "retrain more specs (--fidelity-top-k) to tell.")
    else:
        verdict = "the proxy does not keep the longer training's ranking: treat its order of these specs with doubt."
    doc.para(f"Kendall tau-b (scipy.stats.kendalltau) between proxy and longer-training mAP: **tau = {tau:.3f}**, "
             f"p = {p:.3g} (n = {len(rows)}): {verdict}")
