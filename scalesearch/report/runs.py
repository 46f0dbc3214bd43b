"""Run folders as the report sees them: ``trials.json``, ``meta.json`` and ``study.yaml``, nothing else.

A run folder (docs/design.md) also holds the backend's storage (``study.db``); the report never opens
it, so a report is rebuilt identically from these files alone, whichever backend ran the study and
wherever the folder was copied; ``fidelity.json`` (``scalesearch fidelity``) and ``fidelity_frozen.json``
(``--frozen-backbone``) are read when present.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from scalesearch import pareto
from scalesearch.config import DatasetConfig, StudyConfig, read_yaml, validate_study
from scalesearch.errors import UserError
from scalesearch.extrapolate import load_extrapolation
from scalesearch.fidelity import FROZEN_FILE, FidelityRecord, is_longer_file, load_fidelity
from scalesearch.records import RecordError, TrialRecord, check_keys, load_records, read_json, records_path, show

MARKERS = ("trials.json", "trials.json.gz", "meta.json", "study.yaml")


@dataclass
class Run:
    """One study's run folder, loaded: records by number, meta.json, the validated study config and the
    long-budget retraining records (``scalesearch fidelity``, ``scalesearch extrapolate``) when there are any."""

    path: Path
    name: str
    records: list[TrialRecord]
    meta: dict[str, Any] = field(default_factory=dict)
    config: StudyConfig | None = None
    fidelity: list[FidelityRecord] = field(default_factory=list)
    extrapolation: list[FidelityRecord] = field(default_factory=list)  # ``scalesearch extrapolate``
    longer: dict[float, list[FidelityRecord]] = field(default_factory=dict)  # ``scalesearch fidelity --longer``: F -> rows
    frozen: list[FidelityRecord] = field(default_factory=list)  # ``scalesearch fidelity --frozen-backbone``

    @property
    def feasible(self) -> list[TrialRecord]:
        return pareto.feasible(self.records)

    @property
    def dataset(self) -> str | None:
        """The dataset folder as recorded; None for the built-in synthetic data."""
        return self.config.dataset.path if self.config else None

    @property
    def params_budget(self) -> float | None:
        return self.config.budgets.params if self.config else None

    @property
    def budgets(self) -> list[float]:
        """The FLOPs budgets of the study (``budgets.flops``), then any in the records."""
        values = list(self.config.budgets.flops or []) if self.config else []
        values += [float(r.budget_flops) for r in self.records if r.budget_flops is not None]
        return sorted(set(values))

    @cached_property
    def baselines(self) -> frozenset[int]:
        """Trial numbers of the paper's own scaling rule, run by the study as reference points (computed once: the
        sections ask for every record).

        A record is one when it says so (``baseline: true``, ``rule: paper``, or an enqueued point's
        ``label`` that names the paper, e.g. ``paper rule``), or when the study
        searched the rule's coefficients (``ScalingRule`` fields in the records, not all equal to the
        paper's) and this record's coefficients are exactly the paper's (Sec. 3.3 / 4.2).
        """
        from scalesearch.scaling import PAPER_RULE

        paper = dataclasses.asdict(PAPER_RULE)
        keys = [k for k in paper if any(r.get(k) is not None for r in self.records)]
        searched = any(r.get(k) not in (None, paper[k]) for r in self.records for k in keys)
        return frozenset(
            r.number for r in self.records
            if r.get("baseline") is True or r.get("rule") == "paper" or "paper" in str(r.label or "").lower()
            or (searched and keys and all(r.get(k) == paper[k] for k in keys))
        )


# meta.json as ``scalesearch run`` writes it (``scalesearch.search.runner``); every key is optional.
META_KINDS = {"study_name": "str?", "backend": "str?", "storage": "str?", "runs": "int?", "scalesearch_version": "str?",
              "wall_seconds": "number?"}
TIME_KEYS = ("start", "end", "finish", "first_start")


def load_meta(path: Path) -> dict[str, Any]:
    """``meta.json``: an object whose known keys have the kinds the runner writes; ``UserError`` naming the file
    and the key when it is damaged."""
    meta = read_json(path)
    if not isinstance(meta, dict):
        raise UserError(f"{path}: must hold an object of keys (written by `scalesearch run`), but got {show(meta)}")
    try:
        check_keys(meta, META_KINDS)
        for key in TIME_KEYS:
            value = meta.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
                raise RecordError(f"{key}: must be an ISO date-time string (or seconds since 1970) or null, but got "
                                  f"{show(value)}")
        command = meta.get("command")
        if command is not None and not (isinstance(command, str) or
                                        isinstance(command, list) and all(isinstance(c, str) for c in command)):
            raise RecordError(f"command: must be a string or a list of strings, but got {show(command)}")
        if meta.get("machine") is not None and not isinstance(meta["machine"], (str, dict)):
            raise RecordError(f"machine: must be a string or an object, but got {show(meta['machine'])}")
    except RecordError as exc:
        raise UserError(f"{path}: {exc}") from None
    return meta


def load_config(path: Path) -> StudyConfig:
    """``study.yaml`` through the validation ``scalesearch run`` uses, with one rule relaxed: the dataset
    need not exist where it was recorded, since the report never opens it (a run folder copied to another
    machine still reports). Its recorded location is kept as written."""
    raw = read_yaml(path, what="study file")
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a study file must be a mapping of keys, but got {type(raw).__name__}")
    dataset = raw.get("dataset") if isinstance(raw.get("dataset"), dict) else {}
    synthetic = {"synthetic": dataset["synthetic"]} if dataset.get("synthetic") else {}
    config = validate_study({**raw, "dataset": synthetic}, base=path.parent)
    recorded = DatasetConfig.model_construct(**{**config.dataset.model_dump(), **dataset})
    return config.model_copy(update={"dataset": recorded})


def load_run(path: str | Path) -> Run:
    """Load a run folder; ``UserError`` when the path is not one. A folder without ``trials.json``
    holds no trial yet (a study that stopped before its first one)."""
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise UserError(f"run folder {str(path)!r}: must be an existing directory")
    if not any((run_dir / name).exists() for name in MARKERS):
        raise UserError(f"run folder {str(path)!r}: must hold trials.json, meta.json or study.yaml, but has none")
    # Every file is decoded here, so a damaged one stops the report before anything is written; the JSON files
    # first (cheap), then the study (its validation imports the model code).
    meta = load_meta(run_dir / "meta.json") if (run_dir / "meta.json").is_file() else {}
    records = load_records(run_dir) if records_path(run_dir) else []
    fidelity, extrapolation = load_fidelity(run_dir), load_extrapolation(run_dir)
    longer = {rows[0].factor: rows for rows in (load_fidelity(run_dir, p.name, "scalesearch fidelity --longer")
                                                for p in sorted(run_dir.glob("fidelity_x*.json"))
                                                if is_longer_file(p.name)) if rows}
    frozen = load_fidelity(run_dir, FROZEN_FILE, "scalesearch fidelity --frozen-backbone")
    config = load_config(run_dir / "study.yaml") if (run_dir / "study.yaml").is_file() else None
    name = config.name if config else str(meta.get("study_name") or run_dir.resolve().name)
    return Run(run_dir, name, sorted(records, key=lambda r: r.number), meta, config, fidelity, extrapolation, longer,
               frozen)
