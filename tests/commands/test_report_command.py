"""``scalesearch report``: parses arguments, writes the report, one-line errors with exit 2."""

from __future__ import annotations

import json

from scalesearch.cli import main

TRIAL = {"number": 0, "state": "complete", "map": 0.2, "flops": 2.5e9, "params": 4e6, "topology": "bifpn",
         "params_sampled": {"phi": 0}, "group": "phi=0"}


def make_run(path):
    path.mkdir()
    (path / "trials.json").write_text(json.dumps([TRIAL]))
    (path / "study.yaml").write_text("name: one\nspace: {phi: [0, 1]}\n")
    return path


def test_report_states_its_command_with_relative_paths(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    run = make_run(tmp_path / "work" / "run")
    monkeypatch.chdir(tmp_path / "work")
    assert main(["report", str(run)]) == 0  # an absolute path typed is recorded relative to the working folder
    text = (run / "report" / "report.md").read_text()
    assert "by `scalesearch report run --out run/report`." in text.splitlines()[2]


def test_user_mistakes_exit_2_and_leave_nothing(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "must be an existing directory" in capsys.readouterr().err and not (tmp_path / "out").exists()
    (tmp_path / "file").write_text("")
    assert main(["report", str(run), "--out", str(tmp_path / "file")]) == 2
    assert "must be a folder" in capsys.readouterr().err
