"""Shared fixtures: a tiny study file and fast stand-ins for cost counting and training."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import scalesearch.measure.cost
import scalesearch.training.train
import search_fakes

# 16 train / 8 val images of 128 px: generated once per machine, then cached.
TINY_DATA = {"synthetic": {"num_train": 16, "num_val": 8, "image_size": 128}}


def tiny_study(tmp_path: Path, **changes) -> Path:
    """Write a small study (fixed 128 px, a few discrete points); ``changes`` are merged into its
    sections, except ``space``, which is replaced."""
    study = {
        "name": "tiny",
        "dataset": TINY_DATA,
        "space": {"phi": [-3.0, -2.0], "topology": ["fpn", "bifpn"], "resolution": 128},
        "train": {"steps": 2, "batch_size": 4, "warmup_steps": 1, "eval_batch_size": 8},
        "search": {"n_trials": 4, "sampler": "random"},
        "output": str(tmp_path / "run"),
    }
    for key, value in changes.items():
        merge = key != "space" and isinstance(study.get(key), dict) and isinstance(value, dict)
        study[key] = {**study[key], **value} if merge else value
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


@pytest.fixture(autouse=True, scope="session")
def _own_cpu_registry(tmp_path_factory):
    """Runs started by the tests share cores through a registry of their own, not the machine's."""
    import os

    os.environ["SCALESEARCH_CPU_DIR"] = str(tmp_path_factory.mktemp("cpu"))


@pytest.fixture
def fake(monkeypatch):
    """Patch cost counting and training with ``search_fakes``; yields the list of trained specs."""
    search_fakes.CALLS.clear()
    monkeypatch.setenv("SCALESEARCH_ZERO_COST", "0")  # real scores cost a forward/backward per trial
    monkeypatch.setattr(scalesearch.measure.cost, "count_cost", search_fakes.fake_cost)
    monkeypatch.setattr(scalesearch.training.train, "train_and_evaluate", search_fakes.fake_train)
    yield search_fakes.CALLS


def records_json(run_dir: Path) -> list[dict]:
    """A run's records in their on-disk JSON form (the schema ``trials.json`` and reports use)."""
    from scalesearch.records import load_records

    return [r.to_json() for r in load_records(run_dir)]
