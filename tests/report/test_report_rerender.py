"""A committed report re-renders from its committed records alone (no study.db, no dataset, no training)."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

from scalesearch.cli import main

REPO = Path(__file__).resolve().parents[2]
RUN_FILES = ("trials.json", "meta.json", "study.yaml")


def test_committed_quickstart_report_rerenders_identically(tmp_path, monkeypatch):
    committed = (REPO / "reports" / "quickstart" / "report.md").read_text().splitlines()
    args = shlex.split(re.search(r"by `scalesearch report (.+)`\.$", committed[2]).group(1))
    runs = args[: args.index("--out")]
    for run in runs:  # the command's own run-folder paths, holding copies of the committed files only
        (tmp_path / run).mkdir(parents=True)
        for name in RUN_FILES:
            shutil.copy(REPO / "reports" / "runs" / Path(run).name / name, tmp_path / run / name)
    monkeypatch.chdir(tmp_path)
    assert main(["report", *args]) == 0
    rendered = (tmp_path / args[args.index("--out") + 1] / "report.md").read_text().splitlines()
    assert not any((tmp_path / run / "study.db").exists() for run in runs)
    assert rendered[:2] + rendered[3:] == committed[:2] + committed[3:]  # all but the "Written <time>" line
