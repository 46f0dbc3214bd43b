"""Schema versions: every record and study carries one, older files are read through ``schema.upgrade``, and a
file from a newer scalesearch is refused in one line naming the file and the record."""

from __future__ import annotations

import dataclasses

import json

import pytest

from scalesearch import schema
from scalesearch.config import validate_study
from scalesearch.errors import UserError
from scalesearch.fidelity import FidelityRecord, load_fidelity
from scalesearch.records import State, TrialRecord, load_records
from scalesearch.spec import DetectorSpec

SPEC = DetectorSpec(num_classes=3).to_dict()
SPEC.pop("name")


def _trial(**extra):
    return TrialRecord(number=0, state=State.COMPLETE, spec=dict(SPEC), metrics={"map": 0.25}, values=(0.25,),
                       estimator="train", **extra)


def test_records_carry_the_current_version_and_round_trip():
    record = _trial(space={"phi": -1.0})
    row = record.to_json()
    assert row[schema.KEY] == schema.CURRENT["trial"] == 4 and row["paired_seeds"] is True
    assert TrialRecord.from_json(row) == record and schema.KEY not in TrialRecord.from_json(row).space


def test_a_version_1_trial_row_is_upgraded(tmp_path):
    row = _trial().to_json()
    del row[schema.KEY], row["weights"], row["estimator"], row["paired_seeds"]
    row["pretrained"] = False  # records written before ``weights``
    (tmp_path / "trials.json").write_text(json.dumps([row, {**row, schema.KEY: 2}]))
    version_1, version_2 = load_records(tmp_path)
    assert version_1.spec["weights"] == "none" and "pretrained" not in version_1.spec and version_1.estimator is None
    assert version_1.to_json()[schema.KEY] == 4
    assert not version_1.paired_seeds and not version_2.paired_seeds  # seeds that fixed the data order only


def test_a_version_3_latency_was_measured_by_the_protocol(tmp_path):
    timed, untimed = _trial(latency_ms=12.5).to_json(), _trial().to_json()
    for row in (timed, untimed):
        del row["latency_source"], row["latency_table_ms"]
        row[schema.KEY] = 3
    (tmp_path / "trials.json").write_text(json.dumps([timed, untimed]))
    timed, untimed = load_records(tmp_path)
    assert timed.latency_source == "measured" and timed.latency_table_ms is None and untimed.latency_source is None


def test_a_newer_trial_file_is_refused_in_one_line(tmp_path):
    row = {**_trial().to_json(), schema.KEY: 5}
    (tmp_path / "trials.json").write_text(json.dumps([row]))
    with pytest.raises(UserError) as info:
        load_records(tmp_path)
    message = str(info.value)
    assert "\n" not in message and "trials.json: record 0 (trial number 0): schema_version: 5 was written by a " \
        "newer scalesearch (this one reads up to 4)" in message


@pytest.mark.parametrize("version", [0, "2", True])
def test_a_bad_version_names_the_key(tmp_path, version):
    (tmp_path / "trials.json").write_text(json.dumps([{**_trial().to_json(), schema.KEY: version}]))
    with pytest.raises(UserError, match="schema_version: must be a positive integer"):
        load_records(tmp_path)


def test_fidelity_rows_of_versions_1_to_3(tmp_path):
    record = FidelityRecord(group="g", number=0, spec=dict(SPEC), flops=1e9, proxy_map=0.2, factor=4.0, steps=600,
                            seconds=None, seeds=(0, 1), maps=(0.3, 0.31), raw_maps=(0.3, 0.31), paired=True,
                            history=({"batch": "2026-12-03 16:00:00 UTC", "seed": 0},))
    new = record.to_json()
    v2 = {k: v for k, v in new.items() if k not in {"scored", "raw_maps", "ema_maps", "paired", "wall_seconds",
                                                    "history"}}
    v2[schema.KEY] = 2
    v1 = {k: v for k, v in v2.items() if k != schema.KEY}
    v1["spec"] = {**{k: v for k, v in SPEC.items() if k != "weights"}, "pretrained": False}
    (tmp_path / "fidelity.json").write_text(json.dumps([v1, v2, new]))
    first, second, third = load_fidelity(tmp_path)
    assert third == record and new[schema.KEY] == 3
    # versions 1 and 2 scored the raw weights of unpaired seeds and kept no history
    assert first == second == dataclasses.replace(record, paired=False, history=())


def test_study_versions():
    raw = {"name": "s", "space": {"phi": [-3.0]}}
    assert validate_study(raw).schema_version == 2  # absent: version 1, upgraded
    assert validate_study({**raw, schema.KEY: 2}).model_dump()[schema.KEY] == 2  # written into run folders
    with pytest.raises(UserError, match="schema_version: 7 was written by a newer scalesearch"):
        validate_study({**raw, schema.KEY: 7})
