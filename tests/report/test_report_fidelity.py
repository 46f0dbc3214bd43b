"""The report states Kendall tau from RUN/fidelity.json; it reads that file and never trains."""

from __future__ import annotations

from report_fakes import make_run, record, report_text

from scalesearch.fidelity import FILE, FidelityRecord
from scalesearch.files import write_json_atomic
from scalesearch.report import write_report


def fidelity_rows(pairs):
    return [FidelityRecord(f"phi={i}", i, {"resolution": 256}, 1e9 * (i + 1), short, 4.0, 1200, None, (0,), (long,))
            for i, (short, long) in enumerate(pairs)]


def test_fidelity_section_from_records(tmp_path):
    run = make_run(tmp_path / "run", [record(i, phi=i, map_=0.1 * (i + 1)) for i in range(3)])
    write_json_atomic(run / FILE, [r.to_json() for r in fidelity_rows([(0.3, 0.5), (0.2, 0.4), (0.1, 0.45)])])
    text = write_report([run], tmp_path / "out").read_text()
    assert "## Proxy fidelity" in text and "| 0 | phi=0 | 1.000 G | 0.3000 | 0.5000 | 1 |" in text
    assert "**tau = 0.333**" in text and "(n = 3): the rankings lean the same way" in text


def test_no_fidelity_section_without_the_file(tmp_path):
    assert "Proxy fidelity" not in report_text(tmp_path, [record(0)])


def test_frozen_backbone_retraining_has_its_own_section(tmp_path):
    from scalesearch.fidelity import FROZEN_FILE

    run = make_run(tmp_path / "run", [record(i, phi=i, map_=0.1 * (i + 1)) for i in range(3)])
    write_json_atomic(run / FILE, [r.to_json() for r in fidelity_rows([(0.3, 0.5), (0.2, 0.4), (0.1, 0.45)])])
    write_json_atomic(run / FROZEN_FILE, [r.to_json() for r in fidelity_rows([(0.3, 0.4), (0.2, 0.5), (0.1, 0.6)])])
    text = write_report([run], tmp_path / "out").read_text()
    fine, frozen = text.split("## Proxy fidelity, backbone frozen")
    assert "**tau = 0.333**" in fine and "| 1 | phi=1 | 2.000 G | 0.2000 | 0.4000 | 1 |" in fine
    assert f"`{run / FROZEN_FILE}`" in frozen.split("\n\n")[1] and "| 1 | phi=1 | 2.000 G | 0.2000 | 0.5000 | 1 |" in frozen
    assert "**tau = -1.000**" in frozen and "Top-1 regret (long-budget mAP lost by trusting the proxy's winner among " \
                                           "these): **0.2000**" in frozen
    assert (tmp_path / "out" / "figures" / "fidelity_frozen.png").is_file()
    # a frozen retraining alone (beat_lite0.py --frozen-backbone) still gets its section
    (run / FILE).unlink()
    text = write_report([run], tmp_path / "out2").read_text()
    assert "Proxy fidelity, backbone frozen" in text and "**tau = 0.333**" not in text
