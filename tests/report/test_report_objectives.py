"""A report follows the study's objectives and stays readable: its objective pair first, generated topologies by
short name with one legend and drawings, real seed repeats only, a style per topology, pruned trials where they
stopped, and tables that fit the HTML page."""

from __future__ import annotations

import re

import yaml
from report_fakes import make_run, record, report_text, section

from scalesearch.report import write_report
from scalesearch.report.doc import Document, render_html
from scalesearch.report.plots import MARKERS, PALETTE, topology_colors
from scalesearch.topology_names import short_name

GRAPH = "fam-1.0@P3-P7:P3=0,P4=1,P5=2,P6=3,P7=4+5"
OTHER = "fam-0.1@P3-P7:P3=0,P4=1+5,P5=2,P6=3,P7=4"


def _latency_rows():
    # mAP/FLOPs front: 0, 1, 2; mAP/latency front: 1, 2 (trial 0 is slower than 1 and worse).
    rows = [record(i, topology=t, phi=i, map_=m, flops=f, latency_ms=ms, latency_iqr_ms=0.5, latency_network_ms=ms,
                   latency_post_ms=0.0)
            for i, (t, f, ms, m) in enumerate([("fpn", 1e9, 30.0, 0.2), (GRAPH, 2e9, 10.0, 0.3),
                                               (OTHER, 3e9, 50.0, 0.35), ("fpn", 4e9, 60.0, 0.3)])]
    rows.append(record(4, topology=OTHER, state="pruned", flops=1.5e9, latency_ms=12.0, intermediate={"50": 0.1}))
    return rows


def _latency_report(tmp_path):
    run = make_run(tmp_path / "run", _latency_rows())
    study = yaml.safe_load((run / "study.yaml").read_text())
    study["objectives"] = ["maximize map", "minimize latency_ms"]
    (run / "study.yaml").write_text(yaml.safe_dump(study))
    return write_report([run], tmp_path / "out").read_text()


def test_the_studys_objective_pair_comes_first(tmp_path):
    text = _latency_report(tmp_path)
    order = [text.index(h) for h in ("### Accuracy vs latency (the study's objectives)",
                                     "#### Pareto front (maximise mAP, minimise latency)",
                                     "#### Search progress (hypervolume)", "### Generated topologies",
                                     "### Accuracy vs cost", "### Pareto front (maximise mAP, minimise FLOPs)")]
    assert order == sorted(order) and text.count("Accuracy vs latency") == 1
    assert [row.split("|")[1].strip() for row in section(text, "minimise latency)")] == ["1", "2"]
    assert "log10 latency x mAP plane, reference point latency = 120.00 ms" in text
    assert "With latency instead of FLOPs as the cost" in text.split("minimise FLOPs)", 1)[1]
    figures = tmp_path / "out" / "figures"
    assert (figures / "hypervolume_latency_ms.png").is_file() and (figures / "hypervolume.png").is_file()


def test_a_flops_study_keeps_its_order(tmp_path):
    text = report_text(tmp_path, [record(0), record(1, phi=1, map_=0.3, flops=5e9)])
    assert text.index("### Accuracy vs cost") < text.index("### Pareto front (maximise mAP, minimise FLOPs)")
    assert "the study's objectives" not in text and "Generated topologies" not in text


def test_generated_topologies_get_short_names_one_legend_and_drawings(tmp_path):
    text = _latency_report(tmp_path)
    legend = section(text, "### Generated topologies")
    assert legend == [f"| {short_name(t)} | `{t}` | {n} | yes |" for t, n in sorted(
        [(GRAPH, "1"), (OTHER, "2, 4")], key=lambda p: short_name(p[0]))]
    assert text.count(GRAPH) == 1 and text.count(OTHER) == 1  # the legend only
    assert f"| 1 | {short_name(GRAPH)} |" in text
    for t in (GRAPH, OTHER):
        assert (tmp_path / "out" / "figures" / f"topology_{short_name(t)}.png").is_file()


def test_a_second_run_of_the_same_seed_is_not_a_repeat(tmp_path):
    rows = [record(0, map_=0.3), record(1, map_=0.3), record(2, phi=1, map_=0.2, flops=5e9),
            record(3, phi=1, seed=1, map_=0.4, flops=5e9)]
    text = report_text(tmp_path, rows)
    assert "trials 0, 1 (seeds [0, 0])" in text
    assert section(text, "### Seed repeats") == [
        "| phi=1 topology=bifpn | 2 | [0, 1] | [2, 3] | 5.000 G | 0.3000 | 0.1414 | 0.2000 | 0.4000 |"]


def test_each_topology_keeps_a_style_of_its_own():
    names = ["fpn", "bifpn", *(f"gen-{i:06x}" for i in range(30))]
    styles = topology_colors(names)
    assert len({(s.color, s.marker) for s in styles.values()}) == len(names)
    assert len(set(PALETTE)) >= 12 and len(MARKERS) > 1
    assert topology_colors(["fpn", "gen-1"])["fpn"] == styles["fpn"]  # built-ins: the same in every report


def test_pruned_trials_are_named_in_the_caption(tmp_path):
    text = _latency_report(tmp_path)
    assert "hollow: pruned trials at their last reported mAP, labelled with that step" in text


def test_long_cells_wrap_and_tables_scroll_inside_the_page():
    doc = Document("T")
    doc.table(["name", "graph"], [["gen-1", "x" * 41], ["gen-2", "y" * 40]])
    html = render_html(doc)
    assert re.search(r'<div class="table"><table>.*</table></div>', html)
    assert f'<td class="long">{"x" * 41}</td>' in html and f"<td>{'y' * 40}</td>" in html
