"""What a report says about the run itself: empty, crashed, stopped early, nothing feasible, one trial."""

from __future__ import annotations

from report_fakes import record, report_text, section


def test_empty_study_without_trials_file(tmp_path):
    text = report_text(tmp_path, None)
    assert "This study is empty" in text and "scalesearch run studies/fake.yaml" in text
    assert (tmp_path / "out" / "report.html").exists()


def test_crashed_study_says_so(tmp_path):
    records = [record(0), record(1, state="running"), record(2, state="running")]
    text = report_text(tmp_path, records, n_trials=5)
    assert "3 trials: 1 complete, 2 running." in text
    assert "**The study stopped early:** 1 of the 5 trials `search.n_trials` asks for finished;" in text
    assert "The study crashed or is still running:** 2 trial(s)" in text


def test_all_infeasible_study_says_so(tmp_path):
    records = [record(i, flops=5e10, state="infeasible", reason="flops 5e10 over budget 2e10") for i in range(3)]
    text = report_text(tmp_path, records)
    assert "No trial is feasible and complete, so there is no Pareto front" in text
    assert "flops 5e10 over budget 2e10 (3x)" in text
    assert "No feasible trial fits any budget." in text


def test_one_trial_study(tmp_path):
    text = report_text(tmp_path, [record(0, map_=0.25, flops=2e9)])
    assert "Only one trial completed" in text
    assert [row.split("|")[1].strip() for row in section(text, "### Pareto front")] == ["0"]
    assert "Skipped: 1 feasible complete trial(s)" in text
