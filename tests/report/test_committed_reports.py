"""Committed reports cannot go stale: every study report and benchmark page re-renders from its committed records
(``python benchmarks/render.py``) into a temporary folder identically, and no committed record or report holds an
absolute path of the machine that made it."""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))  # benchmarks/render.py and the renderers it imports beside it
import render  # noqa: E402

REPORTS = render.committed_reports()
# An absolute path under a machine's usual roots, not inside a URL; the project's two lock files are the same
# fixed names on every machine (docs/design.md) and are allowed.
ABSOLUTE = re.compile(r"(?<![\w.:/~-])(?:/|(?:\.\./)+)(?:work|root|tmp|home|opt|usr|mnt|var|srv|data|Users|private|scratch)/[^\s\"'`),;<]*")
ALLOWED = {"/tmp/scalesearch-cpu.lock", "/tmp/scalesearch-latency.lock", "/usr/bin/time"}


def _diff(committed: Path, fresh: Path) -> str:
    a = render.without_written_line(committed.read_text()).splitlines()
    b = render.without_written_line(fresh.read_text()).splitlines()
    return "\n".join(list(difflib.unified_diff(a, b, "committed", "re-rendered", lineterm="", n=0))[:30])


def test_every_committed_report_is_found():
    assert {r.out for r in REPORTS} >= {"reports/quickstart", "reports/bifpn_vs_panet", "reports/beat_lite0_bccd",
                                        "reports/fidelity_bccd", "reports/compound_coefficients_bccd"}
    assert all(run.startswith("reports/runs/") for r in REPORTS for run in r.runs)


@pytest.mark.parametrize("report", REPORTS, ids=[r.out.split("/")[-1] for r in REPORTS])
def test_committed_report_rerenders_identically(report, tmp_path):
    fresh = render.render_report(report, tmp_path / "report").parent
    committed = REPO / report.out
    assert not any((REPO / run / "study.db").exists() for run in report.runs)  # records only, never a storage
    assert render.same_report(committed, fresh, images=False), (
        f"{report.out} is stale: run `python benchmarks/render.py`\n" + _diff(committed / "report.md",
                                                                             fresh / "report.md"))


def test_benchmark_pages_rerender_identically(tmp_path):
    assert render.render_benchmarks(out_folder=tmp_path, index=tmp_path / "benchmarks.md") == 0
    pages = sorted(tmp_path.glob("*.md"))
    assert {p.name for p in pages} >= {"benchmarks.md", "cost.md", "latency.md", "pretrained.md"}
    for page in pages:
        committed = render.INDEX if page.name == "benchmarks.md" else render.FOLDER / page.name
        assert committed.read_text() == page.read_text(), (
            f"{committed.relative_to(REPO)} is stale: run `python benchmarks/render.py`\n" + _diff(committed, page))


def test_no_committed_record_or_report_holds_an_absolute_path():
    found = []
    for path in sorted((REPO / "reports").rglob("*")) + sorted((REPO / "studies").glob("*.yaml")) + [REPO / "README.md"]:
        if path.suffix not in {".json", ".md", ".html", ".yaml"}:
            continue
        text = render.IMAGE_DATA.sub("", path.read_text())
        found += [f"{path.relative_to(REPO)}: {m}" for m in ABSOLUTE.findall(text) if m not in ALLOWED]
    assert not found, "\n".join(found[:20])


def test_recorded_commands_are_made_relative():
    from scalesearch.machine import portable_command, portable_path

    assert portable_path("/work/main/../shared/datasets/bccd", base="/work/main") == "../shared/datasets/bccd"
    assert portable_path("runs/x", base="/work/main") == "runs/x"
    assert portable_command(["scalesearch", "run", "/work/main/studies/a b.yaml", "--set",
                             "dataset.path=/work/main/.device_data/bccd", "--out", "/tmp/runs/x"],
                            base="/work/main") == (
        "scalesearch run 'studies/a b.yaml' --set dataset.path=.device_data/bccd --out .../runs/x")


def test_readme_and_study_header_figures_are_generated_from_records():
    import json

    record = render.FOLDER / "readme.json"
    rec = json.loads(record.read_text()) if record.exists() else None
    readme = (REPO / "README.md").read_text()
    assert readme.count("<!-- generated: ") >= 2
    assert render.render_readme_file(readme, rec) == readme, "README.md is stale: run `python benchmarks/render.py`"
    for study in sorted((REPO / "studies").glob("*.yaml")):
        text = study.read_text()
        assert render.render_study_header(text, study.stem) == text, f"{study.name}: run `python benchmarks/render.py`"


def test_readme_bench_reads_and_times_the_readme_commands(tmp_path):
    import subprocess

    import bench_readme

    commands = bench_readme.readme_commands()
    assert commands["tests"].endswith("python -m pytest -q") and "scalesearch run studies/" in commands["quickstart"]
    assert "python -m pytest -q" in (REPO / ".ci" / "run").read_text()  # CI runs the README's test command
    log = tmp_path / "log.txt"
    result = bench_readme.run_command("echo one && true && echo two", tmp_path, log)
    assert result["returncode"] == 0 and [s["step"] for s in result["steps"]] == ["echo one", "true", "echo two"]
    assert all(s["seconds"] is not None and s["seconds"] >= 0 for s in result["steps"])
    assert result["output_tail"] == ["one", "two"]
    failed = bench_readme.run_command("true && false && echo never", tmp_path, log)
    assert failed["returncode"] == 1 and len(failed["steps"]) == 2 and failed["steps"][1]["seconds"] is None
    assert bench_readme.pytest_summary(["x", "= 731 passed, 1 skipped, 17 deselected in 601.25s (0:10:01) ="]) == {
        "summary_line": "731 passed, 1 skipped, 17 deselected in 601.25s (0:10:01)",
        "counts": {"passed": 731, "skipped": 1, "deselected": 17}, "pytest_seconds": 601.25}
    assert subprocess.run(["bash", "-n", "-c", bench_readme.timed_script(commands["tests"])]).returncode == 0
