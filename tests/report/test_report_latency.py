"""The "Accuracy vs latency" section: mAP vs measured latency, the mAP/latency front beside the FLOPs front,
and which trials leave or join it; read from the records, never timed here."""

from __future__ import annotations

import yaml
from report_fakes import make_run, record, report_text, section

from scalesearch.report import write_report
from scalesearch.report.plots import _axis


def _rows():
    # FLOPs front: 0, 1, 2 (3 is dominated by 2). Latency front: 1, 3, 2 (0 is slower than 1 and worse).
    rows = []
    for i, (flops, ms, m) in enumerate([(1e9, 30.0, 0.20), (2e9, 10.0, 0.30), (3e9, 50.0, 0.35), (4e9, 20.0, 0.34)]):
        rows.append(record(i, phi=i, map_=m, flops=flops, latency_ms=ms, latency_network_ms=ms * 0.8,
                           latency_post_ms=ms * 0.2, latency_iqr_ms=0.5, latency_exclusive=True))
    rows.append(record(4, phi=9, state="infeasible", flops=9e10, latency_ms=400.0))
    return rows


def test_latency_axis_is_labelled_in_milliseconds():
    assert _axis("latency_ms") == "latency (ms)"
    assert _axis("latency_ms", log=True) == "latency (ms, log scale)"


def test_section_shows_the_latency_front_and_what_changed_against_flops(tmp_path):
    text = report_text(tmp_path, _rows())
    body = text.split("## Accuracy vs latency", 1)[1]
    assert "map_latency.png" in body and (tmp_path / "out" / "figures" / "map_latency.png").is_file()
    rows = section(body, "Pareto front (maximise mAP, minimise latency)")
    assert [row.split("|")[1].strip() for row in rows] == ["1", "3", "2"]  # sorted by latency
    assert "| 10.00 | 0.50 | 8.00 | 2.00 | 2.000 G | 0.3000 |" in rows[0]
    assert "With latency instead of FLOPs as the cost" in body
    assert "leave the front: trial 0 (" in body and "Join it: trial 3 (" in body


def test_section_states_settings_and_the_latency_budget(tmp_path):
    run = make_run(tmp_path / "run", _rows())
    study = yaml.safe_load((run / "study.yaml").read_text())
    study.update(latency={"runtime": "onnxruntime", "threads": 2, "runs": 50},
                 objectives=["maximize map", "minimize latency_ms"])
    study["budgets"]["latency_ms"] = 25
    (run / "study.yaml").write_text(yaml.safe_dump(study))
    body = write_report([run], tmp_path / "out").read_text().split("## Accuracy vs latency", 1)[1]
    assert "onnxruntime, 2 thread(s), batch 1, 10 warm-up + 50 timed runs" in body
    assert "Best under the latency budget 25 ms: trial 3, mAP 0.3400, 20.00 ms" in body


def test_no_section_without_measured_latency(tmp_path):
    assert "Accuracy vs latency" not in report_text(tmp_path, [record(0), record(1, phi=1)])


def test_front_table_shows_the_latency_source_and_how_the_table_compares(tmp_path):
    # latency.table: every trial first predicted; the front's points measured after the search, prediction kept.
    rows = []
    for i, (flops, table, measured, m) in enumerate([(1e9, 12.0, 10.0, 0.30), (2e9, 18.0, 20.0, 0.34),
                                                     (3e9, 33.0, 30.0, 0.36), (4e9, 60.0, None, 0.20)]):
        extra = (dict(latency_ms=measured, latency_source="measured", latency_table_ms=table, latency_iqr_ms=0.5)
                 if measured else dict(latency_ms=table, latency_source="table"))
        rows.append(record(i, phi=i, map_=m, flops=flops, **extra))
    text = report_text(tmp_path, rows)
    body = text.split("## Accuracy vs latency", 1)[1]
    front = section(body, "Pareto front (maximise mAP, minimise latency)")
    assert [row.split("|")[1].strip() for row in front] == ["0", "1", "2"]
    assert "| 10.00 | measured | 12.00 | 0.50 |" in front[0]
    # MAPE: (2/10 + 2/20 + 3/30) / 3 = 13.3 %; the three orders agree: tau 1
    assert ("the 3 distinct point(s) above were then measured by the protocol (`latency` column; the table's prediction "
            "beside it): mean absolute error 13.3 %, Kendall tau-b 1.000") in body


def test_duplicates_of_a_front_point_are_counted_in_its_row(tmp_path):
    rows = [record(0, phi=0, map_=0.30, flops=1e9, latency_ms=10.0),
            record(1, phi=1, map_=0.34, flops=2e9, latency_ms=20.0),
            record(2, phi=0, map_=0.30, flops=1e9, latency_ms=10.0, duplicate_of=0),
            record(3, phi=0, map_=0.30, flops=1e9, latency_ms=10.0, duplicate_of=0)]
    body = report_text(tmp_path, rows).split("## Accuracy vs latency", 1)[1]
    assert ("4 trial(s) on this front (2 distinct point(s); the other 2 trial(s) are duplicates: the sampler proposed "
            "a measured point again, and each row counts them).") in body
    front = section(body, "Pareto front (maximise mAP, minimise latency)")
    assert [row.split("|")[1].strip() for row in front] == ["0", "1"]
    assert front[0].rstrip(" |").endswith("| 2") and front[1].rstrip(" |").endswith("| 0")


def test_distinct_front_stands_in_for_an_original_outside_it():
    from scalesearch.report.format import distinct_front
    from scalesearch.records import TrialRecord

    rows = [TrialRecord.from_json(r) for r in (record(5, duplicate_of=1), record(6, duplicate_of=1), record(7))]
    kept, again = distinct_front(rows)
    assert [r.number for r in kept] == [5, 7] and again == {5: 1}


def test_what_every_front_row_shares_is_said_once(tmp_path):
    rows = [record(0, phi=0, map_=0.30, flops=1e9, latency_ms=10.0), record(1, phi=1, map_=0.34, flops=2e9, latency_ms=20.0)]
    body = report_text(tmp_path, rows).split("## Accuracy vs latency", 1)[1]
    assert "Same in every row: topology bifpn, fusion fast, seed 0." in body
    table = body.split("Same in every row", 1)[1]
    assert "| trial | phi | resolution | fpn_repeats | latency (ms) |" in table


def test_latency_figure_joins_each_measured_point_to_its_table_prediction():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scalesearch import schema
    from scalesearch.records import TrialRecord
    from scalesearch.report.plots import _table_shift

    # current-schema records (an unversioned one is upgraded as written before the table, all "measured")
    rows = [TrialRecord.from_json({schema.KEY: schema.CURRENT["trial"], **r}) for r in (
        record(0, map_=0.30, latency_ms=10.0, latency_source="measured", latency_table_ms=13.0),
        record(1, map_=0.34, latency_ms=20.0, latency_source="measured", latency_table_ms=18.0),
        record(2, map_=0.20, latency_ms=60.0, latency_source="table", latency_table_ms=60.0),  # predicted only
        record(3, map_=0.30, latency_ms=10.0, latency_source="measured", latency_table_ms=13.0, duplicate_of=0))]
    fig, ax = plt.subplots()
    _table_shift(ax, rows)
    assert [(list(line.get_xdata()), list(line.get_ydata())) for line in ax.lines] == [
        ([13.0, 10.0], [0.30, 0.30]), ([18.0, 20.0], [0.34, 0.34])]
    (hollow,) = ax.collections
    assert hollow.get_label() == "measured point at its table prediction"
    assert hollow.get_offsets().tolist() == [[13.0, 0.30], [18.0, 0.34]]
    plt.close(fig)
