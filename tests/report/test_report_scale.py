"""Reports of thousands of trials (issue 24's supernet study) stay readable and fast: long tables show the rows that
matter with a note and a CSV of every row, the trials that matter get one table, every trial is in trials.csv, and
a study of 2,000 trials renders in well under a minute. The fake study is the report-scale benchmark's."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import pytest
from report_fakes import make_run, repeated_records, section

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # the benchmark's fake study
import bench_report_scale as bench  # noqa: E402

from scalesearch import pareto  # noqa: E402
from scalesearch.report import write_report  # noqa: E402
from scalesearch.report.doc import Document, Para, Table  # noqa: E402
from scalesearch.report.runs import load_run  # noqa: E402
from scalesearch.report.study import TOP  # noqa: E402
from scalesearch.report.tables import LIMIT, long_table, numbers_cell  # noqa: E402

TRIALS_HEADING = "### Trials: the front"
FRONT_HEADING = "#### Pareto front (maximise mAP, minimise latency)"


def _report(tmp_path: Path, trials: int, **kw) -> tuple[str, Path, float]:
    run = bench.fake_run(tmp_path / "run", trials, **kw)
    start = time.perf_counter()
    md = write_report([run], tmp_path / "out")
    return md.read_text(), run, time.perf_counter() - start


def _rows_under(text: str, header: str) -> list[str]:
    """The body rows of the table whose header line starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header)) + 2
    end = next((i for i, line in enumerate(lines[start:], start) if not line.startswith("|")), len(lines))
    return lines[start:end]


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _check_readable(text: str, run: Path, out: Path) -> None:
    """The facts a reader of a large study relies on, whatever its size."""
    records = load_run(run).records
    front = pareto.pareto_front(records, ("map", "latency_ms"))
    labelled = [r for r in records if r.label and not pareto.is_duplicate(r)]
    trial_rows = section(text, TRIALS_HEADING)
    listed = {int(row.split("|")[1]) for row in trial_rows}
    assert len(trial_rows) <= len(front) + TOP + len(labelled)
    assert {r.number for r in front} <= listed  # every front point listed, in the trial table ...
    assert {int(row.split("|")[1]) for row in section(text, FRONT_HEADING)} == {r.number for r in front}  # ... and its own
    assert any(f"| {bench.BASELINE} |" in row for row in trial_rows)  # the baseline row, wherever it ranks
    assert f"the other {len(records) - len(trial_rows)} are left out here" in text
    rows = _csv(out / "trials.csv")
    assert [int(r["number"]) for r in rows] == sorted(r.number for r in records)
    assert {"map", "map_raw", "map_ema", "train_loss", "latency_ms", "flops", "params", "topology", "topology_name",
            "fusion", "activation", "resolution", "fpn_channels", "fpn_repeats", "head_repeats", "estimator",
            "duplicate_of", "label"} <= set(rows[0])
    assert rows[0]["label"] == bench.BASELINE and {r["estimator"] for r in rows} == {"supernet"}
    # No table lists more than LIMIT rows, except the trial table (front + TOP + labelled).
    for heading in ("#### Front per topology (mAP vs latency)", "### Generated topologies", "#### Front per topology\n"):
        assert len(section(text, heading)) <= LIMIT
    for note in ("fronts_by_topology_latency_ms.csv", "generated_topologies.csv", "fronts_by_topology.csv"):
        assert f"left out here. Every row: `{note}` beside this report." in text and (out / note).is_file()
    assert len(_csv(out / "generated_topologies.csv")) == len({r.get("topology") for r in records if "@" in
                                                               str(r.get("topology"))})


def test_report_of_200_trials_lists_the_trials_that_matter(tmp_path):
    text, run, _ = _report(tmp_path, 200)
    _check_readable(text, run, tmp_path / "out")


@pytest.mark.slow
def test_report_of_2000_trials_is_readable_in_under_a_minute(tmp_path):
    text, run, seconds = _report(tmp_path, 2000)
    assert seconds < 60, f"{seconds:.1f} s"  # about 15 s on a loaded 2-core machine; a quadratic step costs minutes
    _check_readable(text, run, tmp_path / "out")
    assert len(text.encode()) < 100_000 and bench.longest_table(text) <= LIMIT + TOP + 2
    assert len(list((tmp_path / "out" / "figures").glob("*.png"))) <= 8 + LIMIT


@pytest.mark.slow
def test_seed_repeats_and_topology_pairs_of_2000_trials_are_cut(tmp_path):
    text, _, seconds = _report(tmp_path, 2000, seeds=2)
    assert seconds < 60, f"{seconds:.1f} s"
    out = tmp_path / "out"
    for csv_name, header in (("seed_repeats.csv", "| point | n |"), ("topology_rungs.csv", "| pair | rung |"),
                             ("topology_pairs.csv", "| pair | rungs |")):
        assert f"Every row: `{csv_name}`" in text and len(_csv(out / csv_name)) > LIMIT
        assert len(_rows_under(text, header)) == LIMIT
    assert text.count("The paper's Table 5 has no entry") <= LIMIT


def test_a_small_study_keeps_every_row_and_writes_no_csv(tmp_path):
    run = make_run(tmp_path / "run", repeated_records(seeds=3))
    text = write_report([run], tmp_path / "out").read_text()
    assert "### Trials:" not in text and "left out here" not in text
    assert not list((tmp_path / "out").glob("*.csv"))


def test_long_table_keeps_the_ranked_rows_in_table_order(tmp_path):
    doc = Document("t")
    rows = [[f"r{i}", i] for i in range(LIMIT + 5)]
    rank = list(range(LIMIT + 4, -1, -1))  # the last rows rank best
    long_table(doc, ["name", "value"], rows, tmp_path / "all.csv", rank, "the last ones", "rows")
    table, note = doc.blocks
    assert isinstance(table, Table) and [r[0] for r in table.rows] == [f"r{i}" for i in range(5, LIMIT + 5)]
    assert isinstance(note, Para) and note.text.startswith("Shown: the last ones; 5 more rows left out here.")
    assert len(_csv(tmp_path / "all.csv")) == LIMIT + 5
    small = Document("s")
    long_table(small, ["name", "value"], rows[:LIMIT], tmp_path / "none.csv", rank, "-", "rows")
    assert len(small.blocks) == 1 and not (tmp_path / "none.csv").exists()


def test_numbers_cell_names_a_dozen_then_counts():
    assert numbers_cell([3, 8, 12]) == "3, 8, 12"
    assert numbers_cell(list(range(40))) == ", ".join(map(str, range(12))) + ", ... (40 trials)"


@pytest.mark.slow
def test_benchmark_quick_mode_measures_and_renders_its_page(tmp_path):
    import render_report_scale

    side = bench.measure(200, tmp_path, repeats=1)
    assert side["trials"] == 200 and side["csv_rows"] == 200 and side["left_out_notes"] >= 1
    assert side["longest_table_rows"] <= LIMIT + TOP + 2
    rec = {"benchmark": "report_scale", "command": "python benchmarks/bench_report_scale.py --trials 200",
           "trials": 200, "repeats": 1, "target_seconds": 60.0, "sides": {"after": {"commit": "abc", **side}}}
    page = render_report_scale.render_report_scale(rec)
    assert "| after | abc | 200 |" in page and render_report_scale.headline_report_scale(rec)[0].startswith("after:")
