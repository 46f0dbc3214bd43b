"""Loading run folders: only trials.json, meta.json and study.yaml, validated as `scalesearch run` does."""

from __future__ import annotations

import shutil

import pytest
import yaml
from report_fakes import make_run, record

from scalesearch.errors import UserError
from scalesearch.report.runs import load_run


def test_budgets_accept_suffixes(tmp_path):
    run = load_run(make_run(tmp_path / "run", [record(0)], budgets=("80M", 1e8)))
    assert run.budgets == [8e7, 1e8, 2e10]  # the study's ladder, then the records' budget_flops


def test_paper_rule_baselines_found_from_coefficients(tmp_path):
    records = [record(0, width_growth=1.35, fpn_depth_growth=1.0), record(1, width_growth=1.2, fpn_depth_growth=1.0),
               record(2, rule="paper"), record(3, width_growth=1.2, label="paper rule")]
    run = load_run(make_run(tmp_path / "run", records))
    assert run.baselines == frozenset({0, 2, 3})
    assert load_run(make_run(tmp_path / "r2", [record(0, width_growth=1.35)])).baselines == frozenset()


def test_records_are_typed_and_sorted_by_number(tmp_path):
    run = load_run(make_run(tmp_path / "run", [record(2), record(0, state="failed")]))
    assert [r.number for r in run.records] == [0, 2] and run.records[0].state.value == "failed"


def test_a_moved_run_folder_keeps_its_recorded_dataset(tmp_path):
    data = tmp_path / "coco"
    data.mkdir()
    run = make_run(tmp_path / "run", [record(0)])
    study = yaml.safe_load((run / "study.yaml").read_text())
    (run / "study.yaml").write_text(yaml.safe_dump({**study, "dataset": {"path": str(data)}}))
    shutil.rmtree(data)  # the report never opens the dataset
    assert load_run(run).dataset == str(data)


def test_study_yaml_goes_through_the_run_validation(tmp_path):
    run = make_run(tmp_path / "run", [record(0)])
    study = yaml.safe_load((run / "study.yaml").read_text())
    (run / "study.yaml").write_text(yaml.safe_dump({**study, "search": {"n_trials": 0}}))
    with pytest.raises(UserError, match="n_trials"):
        load_run(run)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(UserError, match="must be an existing directory"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="must hold trials.json, meta.json or study.yaml"):
        load_run(tmp_path / "empty")


def test_a_run_kept_as_gzipped_records_loads_the_same(tmp_path):
    import gzip

    from scalesearch.records import load_records, records_path

    run = make_run(tmp_path / "run", [record(0), record(1, phi=1)])
    plain = load_records(run)
    text = (run / "trials.json").read_bytes()
    (run / "trials.json.gz").write_bytes(gzip.compress(text))
    assert records_path(run) == run / "trials.json"  # what the run writes comes first
    (run / "trials.json").unlink()
    assert records_path(run) == run / "trials.json.gz" and load_records(run) == plain
    assert [r.number for r in load_run(run).records] == [0, 1]
