"""``scalesearch trials``: a run's table and JSON records from ``trials.json`` alone."""

import json
import shutil
from pathlib import Path

import pytest

from scalesearch import schema
from scalesearch.cli import main

QUICKSTART = Path(__file__).resolve().parents[2] / "reports" / "runs" / "quickstart"


def test_table_and_json_from_trials_json_only(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(QUICKSTART / "trials.json", run / "trials.json")  # no study.db, no meta.json
    assert main(["trials", str(run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["#", "state", "seed", "GFLOPs", "Mparams", "mAP", "AP50", "s", "point", "reused",
                                 "reason"]
    assert len(lines) == 1 + len(json.loads((run / "trials.json").read_text()))
    assert main(["trials", str(run), "--json", str(tmp_path / "out" / "t.json")]) == 0
    written = json.loads((tmp_path / "out" / "t.json").read_text())
    original = [schema.upgrade("trial", r) for r in json.loads((run / "trials.json").read_text())]  # today's form
    assert [{k: r[k] for k in original[0]} for r in written] == original and written[0][schema.KEY] == 4


def test_format_table_cells():
    from scalesearch.commands.trials import format_table
    from scalesearch.records import TrialRecord

    record = TrialRecord.from_json({"number": 3, "state": "infeasible", "flops": 2.5e9, "params": 3.9e6,
                                    "reason": "over budget"})
    header, row = format_table([record]).splitlines()
    assert row.split() == ["3", "infeasible", "0", "2.500", "3.900", "-", "-", "-", "fixed", "-", "over",
                           "budget"]


@pytest.mark.parametrize("argv, message", [
    (["/nonexistent-run"], "run folder '/nonexistent-run': must exist"),
    ([".", "--json", "."], "--json .: must be a file path, but it is a folder"),
])
def test_trials_errors(user_error, argv, message):
    assert message in user_error("trials", *argv)
