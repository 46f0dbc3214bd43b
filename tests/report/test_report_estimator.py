"""The "Estimator" section: the estimate cost from the records, and a supernet run's supernets from their
summaries, with the training amortised over the estimates."""

from __future__ import annotations

import json

from report_fakes import make_run, record, report_text, section  # noqa: F401

from scalesearch.report import write_report


def _rows(estimator, n=4):
    return [record(i, phi=i % 2, map_=0.2 + 0.01 * i, estimator=estimator, estimate_seconds=1.0 + i,
                   estimate_cpu_seconds=2.0 * (1 + i)) for i in range(n)]


def test_no_section_without_estimate_times(tmp_path):
    assert "## Estimator" not in report_text(tmp_path, [record(0), record(1, phi=1)])


def test_cost_per_estimate_from_the_records(tmp_path):
    body = report_text(tmp_path, _rows("cached")).split("## Estimator", 1)[1]
    # CPU-s 2, 4, 6, 8: median 5; wall 1..4: median 2.5 -> 1,440 per hour
    assert ("`cached`: one proxy training per trial on the frozen backbone's cached features. 4 trial(s) estimated: "
            "median 5.00 CPU-s (2.50 s wall) per estimate, 1,440 estimates per hour on one worker.") in body
    assert "Supernet training" not in body


def test_supernets_are_listed_and_their_training_amortised(tmp_path):
    run = make_run(tmp_path / "run", _rows("supernet"))
    for topology, cpu in (("fpn", 600.0), ("bifpn", 900.0)):
        folder = run / "estimator" / "supernet" / f"{topology}-abc"
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps({"topology": topology, "sub_networks": 1280, "steps": 600,
                                                         "seconds": cpu / 2, "cpu_seconds": cpu, "final_loss": 2.5}))
    body = write_report([run], tmp_path / "out").read_text().split("## Estimator", 1)[1]
    assert "| bifpn | 1,280 | 600 | 7.5 min | 900 | 2.500 |" in body and "| fpn | 1,280 | 600 | 5.0 min | 600 |" in body
    # (600 + 900 + 2 + 4 + 6 + 8) / 4 = 380
    assert ("Supernet training: 0.42 CPU-hours (12 min wall) for 2 supernet(s) holding 2,560 sub-networks, once per "
            "run. Per candidate, training amortised over the 4 estimates: 380.0 CPU-s.") in body
