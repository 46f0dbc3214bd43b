"""Reports written from fake run folders (trials.json + meta.json + study.yaml); no training."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
import yaml

from scalesearch import report_fidelity, report_stats
from scalesearch.cli import main
from scalesearch.report import write_report
from scalesearch.report_runs import load_run

SHIFT = {"fpn": 0.0, "panet": 0.02, "bifpn": 0.03}
FLOPS_SCALE = {"fpn": 1.0, "panet": 1.02, "bifpn": 0.98}


def record(number, topology="bifpn", phi=0, seed=0, map_=0.2, flops=2.5e9, state="complete", **extra):
    return {"number": number, "state": state, "map": map_ if state == "complete" else None,
            "map50": None if map_ is None else map_ * 1.5, "flops": flops, "params": flops / 600, "seed": seed,
            "topology": topology, "fusion": "fast", "phi": phi, "resolution": 256 + 128 * phi, "fpn_repeats": 3 + phi,
            "group": f"phi={phi} topology={topology}", "seconds": 10.0, "budget_flops": 2e10,
            "params_sampled": {"phi": phi, "topology": topology}, "reason": None, **extra}


def make_run(path, records, name="fake", budgets=(6e9, 2e10), meta=True, n_trials=None):
    path.mkdir(parents=True, exist_ok=True)
    if records is not None:
        (path / "trials.json").write_text(json.dumps(records))
    study = {"name": name, "budgets": {"flops": list(budgets)}, "search": {"n_trials": n_trials or len(records or [])}}
    (path / "study.yaml").write_text(yaml.safe_dump(study))
    if meta:
        (path / "meta.json").write_text(json.dumps({
            "command": "scalesearch run studies/fake.yaml", "study_name": name, "backend": "optuna", "storage": None,
            "machine": {"host": "box", "platform": "Linux-x86_64", "python": "3.11.7", "cpus": 2},
            "start": "2026-11-25T12:00:00+00:00", "end": "2026-11-25T12:42:00+00:00",
            "first_start": "2026-11-25T11:00:00+00:00", "runs": 2}))
    return path


def repeated_records(seeds=3, rng_seed=0):
    rng = random.Random(rng_seed)
    out = []
    for phi in range(2):
        for topo in SHIFT:
            for seed in range(seeds):
                flops = 2.5e9 * 2.2**phi * FLOPS_SCALE[topo]
                map_ = 0.2 + 0.05 * phi + SHIFT[topo] + rng.gauss(0, 0.003)
                out.append(record(len(out), topo, phi, seed, map_, flops))
    return out


def section(text, heading):
    """The lines of the first table after ``heading``."""
    lines = text.split(heading, 1)[1].splitlines()[1:]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i, line in enumerate(lines[start:], start) if not line.startswith("|")), len(lines))
    return lines[start + 2:end]


def report_text(tmp_path, records, **kw):
    run = make_run(tmp_path / "run", records, **kw)
    return write_report([run], tmp_path / "out").read_text()


def test_front_lists_exactly_the_non_dominated_feasible_trials(tmp_path):
    rng = np.random.default_rng(17)  # a draw whose front holds 6 trials on 3 distinct points
    records = [record(i, ["fpn", "bifpn"][i % 2], map_=float(rng.integers(0, 6)) / 10,
                      flops=float(10 ** (9 + rng.integers(0, 5) / 4)),
                      state=["complete", "complete", "infeasible", "failed"][rng.integers(0, 4)]) for i in range(30)]
    expected = sorted(
        a["number"] for a in records if a["state"] == "complete"
        and not any(b["state"] == "complete" and b["map"] >= a["map"] and b["flops"] <= a["flops"]
                    and (b["map"], b["flops"]) != (a["map"], a["flops"]) for b in records)
    )
    text = report_text(tmp_path, records)
    listed = sorted(int(row.split("|")[1]) for row in section(text, "### Pareto front"))
    assert listed == expected
    assert len(expected) == 6 and len({(records[n]['map'], records[n]['flops']) for n in expected}) == 3


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


def test_run_facts_and_best_under_budget(tmp_path):
    records = [record(0, map_=0.2, flops=2e9), record(1, map_=0.3, flops=5e9), record(2, map_=0.4, flops=9e9),
               record(3, map_=0.35, flops=5.5e9)]
    text = report_text(tmp_path, records)
    assert "| machine | Linux-x86_64, 2 cores (host box; python 3.11.7) |" in text
    assert "42.0 min wall (2026-11-25 12:00 to 12:42 UTC); 2 runs since 2026-11-25 11:00 UTC" in text
    rows = section(text, "### Best architecture under each budget")
    assert rows[0] == "| trial | 3 | 2 |"
    assert "| resolution | 256 | 256 |" in rows


def test_html_is_self_contained(tmp_path):
    report_text(tmp_path, repeated_records())
    html = (tmp_path / "out" / "report.html").read_text()
    pngs = list((tmp_path / "out" / "figures").glob("*.png"))
    assert len(pngs) == 6
    assert html.count('src="data:image/png;base64,') == len(pngs)
    assert not re.search(r'(src|href)="(?!data:)', html)


def test_significance_only_with_repeats(tmp_path):
    text = report_text(tmp_path / "a", repeated_records(seeds=3))
    assert "### Seed repeats" in text and "### Topology comparison beyond seed noise" in text
    assert "| mAP over seeds (mean ± std, n) | 0.2804 ± 0.0061, n=3 | 0.2804 ± 0.0061, n=3 |" in text
    assert "| bifpn vs fpn | 2 | +0.0295 | 0.005 | bifpn above fpn |" in text
    assert "**Agrees:** bifpn's front lies above fpn's" in text and "44.39" in text
    single = report_text(tmp_path / "b", repeated_records(seeds=1))
    assert "Seed repeats" not in single and "beyond seed noise" not in single


def test_disagreement_is_stated(tmp_path):
    records = repeated_records(seeds=3)
    for r in records:
        if r["topology"] == "fpn":
            r["map"] += 0.1
    text = report_text(tmp_path, records)
    assert "**Disagrees:** bifpn's front lies below fpn's beyond seed noise" in text


def test_multi_run_comparison(tmp_path):
    a = make_run(tmp_path / "a", repeated_records(), name="synthetic")
    b = make_run(tmp_path / "b", [record(0, map_=0.5, flops=3e9)], name="bccd")
    text = write_report([a, b], tmp_path / "out").read_text()
    assert "## Comparison of studies" in text
    assert "## Study `synthetic`" in text and "## Study `bccd`" in text
    rows = section(text, "## Comparison of studies")
    assert [row.split("|")[1].strip() for row in rows] == ["0: synthetic", "1: bccd"]
    assert rows[1].endswith("| 0.5000 (#0) | 0.5000 (#0) |")
    assert "| 0: synthetic | bifpn vs fpn | +0.0295 | 0.005 | bifpn above fpn | agrees |" in text
    assert (tmp_path / "out" / "figures" / "compare_fronts.png").exists()
    assert (tmp_path / "out" / "figures" / "run1_map_flops.png").exists()


def test_budgets_accept_suffixes(tmp_path):
    run = load_run(make_run(tmp_path / "run", [record(0)], budgets=("80M", 1e8)))
    assert run.budgets == [8e7, 1e8, 2e10]  # the study's ladder, then the records' budget_flops


def test_paper_rule_baselines_found_from_coefficients(tmp_path):
    records = [record(0, width_growth=1.35, fpn_depth_growth=1.0), record(1, width_growth=1.2, fpn_depth_growth=1.0),
               record(2, rule="paper"), record(3, width_growth=1.2, label="paper rule")]
    run = load_run(make_run(tmp_path / "run", records))
    assert run.baselines == frozenset({0, 2, 3})
    assert load_run(make_run(tmp_path / "r2", [record(0, width_growth=1.35)])).baselines == frozenset()


def test_importances_need_enough_trials():
    values, note = report_stats.importances(repeated_records())
    assert set(values) == {"Pareto front", "mAP"} and set(values["mAP"]) == {"phi", "topology"}
    assert sum(values["mAP"].values()) == pytest.approx(1.0)
    assert report_stats.importances(repeated_records()[:4]) == ({}, "Skipped: 4 feasible complete trial(s) "
                                                                "with sampled parameters; need 5.")


def test_permutation_p_exact_small_case():
    # Pooled [1, 2, 3, 4]: the 6 splits give A - B in {-2, -1, 0, 0, 1, 2}; |-2| is reached twice.
    p, exact = report_stats.permutation_p([(np.array([1.0, 2.0]), np.array([3.0, 4.0]))])
    assert exact and p == pytest.approx(2 / 6)


def test_fidelity_with_a_fake_trainer(tmp_path):
    points = [(0.3, 3e9), (0.2, 2e9), (0.1, 1e9), (0.05, 4e9)]
    records = [record(i, phi=i, map_=m, flops=f) for i, (m, f) in enumerate(points)]
    run = make_run(tmp_path / "run", records)
    seen = []

    def trainer(spec, seed):
        seen.append(spec.resolution)
        return {0: 0.5, 1: 0.4, 2: 0.45}[len(seen) - 1]

    text = write_report([run], tmp_path / "out", fidelity=(3, 2.0), trainer=trainer).read_text()
    assert seen == [256, 384, 512]
    assert "**tau = 0.333**" in text and "(n = 3): the rankings lean the same way" in text
    saved = json.loads((tmp_path / "out" / "fidelity_fake.json").read_text())
    assert [r["number"] for r in saved["rows"]] == [0, 1, 2]


def test_pick_counts_seed_repeats_once():
    chosen = report_fidelity.pick(repeated_records(), 4)
    assert len({r["group"] for r in chosen}) == 4


def test_cli(tmp_path, capsys):
    run = make_run(tmp_path / "run", [record(0)])
    assert main(["report", str(run)]) == 0
    text = (run / "report" / "report.md").read_text()
    assert f"by `scalesearch report {run} --out {run / 'report'}`." in text.splitlines()[2]
    assert main(["report", str(run), "--fidelity-top-k", "2"]) == 2
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "must be an existing directory" in capsys.readouterr().err


def test_rung_labels_name_phi_when_it_decides_the_rest():
    a, b = record(0, "fpn", phi=0), record(1, "bifpn", phi=1)
    assert report_stats.rung_labels([a, b]) == ["phi=0", "phi=1"]
    c = record(2, "fpn", phi=0, resolution=512)
    assert report_stats.rung_labels([a, b, c]) == ["resolution=256/fpn_repeats=3/phi=0",
                                                  "resolution=384/fpn_repeats=4/phi=1",
                                                  "resolution=512/fpn_repeats=3/phi=0"]


def test_document_renders_both_ways(tmp_path):
    from scalesearch.report_doc import Document, render_html, render_markdown

    doc = Document("T")
    doc.heading(1, "Section")
    doc.para("use **this** `spec` <now>")
    doc.table(["a", "b"], [["x|y", 1]])
    md, html = render_markdown(doc, tmp_path), render_html(doc)
    assert md == "# T\n\n## Section\n\nuse **this** `spec` <now>\n\n| a | b |\n|---|---|\n| x\\|y | 1 |\n"
    assert "<p>use <strong>this</strong> <code>spec</code> &lt;now&gt;</p>" in html
    assert "<tr><td>x|y</td><td>1</td></tr>" in html
