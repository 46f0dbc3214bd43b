"""A whole report: ``report.md``, a self-contained ``report.html`` and ``figures/*.png`` from run folders.

Everything comes from the run folders' files (``runs.load_run``); nothing here trains or opens a backend's
storage, so a report is rebuilt with the same numbers from a copy of ``trials.json``, ``meta.json`` and
``study.yaml`` alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from scalesearch import pareto
from scalesearch.errors import UserError
from scalesearch.registry import Registry
from scalesearch.report import baseline, curves, estimator, fidelity, lasting, plots, rules, zero_cost
from scalesearch.report.compare import comparison
from scalesearch.report.doc import Document, Para, render_html, render_markdown
from scalesearch.report.runs import Run, load_run
from scalesearch.report.study import StudySections

# One run's sections, in report order: name -> ``add(page, run, prefix)``, where ``page`` holds the document, figure
# folder, topology colours and reference FLOPs every section draws with. A new section is its module and one entry.
SECTIONS: Registry[Callable[[StudySections, Run, str], None]] = Registry("report section")
SECTIONS.add("study", lambda page, run, prefix: page.study(run, prefix))
SECTIONS.add("latency", lambda page, run, prefix: page.latency(run, prefix))  # first when it is the objective
SECTIONS.add("estimator", lambda page, run, prefix: estimator.add_section(page.doc, run))
SECTIONS.add("curves", lambda page, run, prefix: curves.add_section(page.doc, run, page.fig_dir, page.colors, prefix))
SECTIONS.add("fidelity", lambda page, run, prefix: fidelity.add_section(page.doc, run, page.fig_dir, prefix))
SECTIONS.add("baseline", lambda page, run, prefix: baseline.add_section(page.doc, run, page.fig_dir, prefix))
SECTIONS.add("lasting", lambda page, run, prefix: lasting.add_section(page.doc, run, page.fig_dir, prefix))
SECTIONS.add("rules", lambda page, run, prefix: rules.add_section(page.doc, run))
SECTIONS.add("zero_cost", lambda page, run, prefix: zero_cost.add_section(page.doc, run))


def build_report(runs: Sequence[Run], out_dir: Path) -> Document:
    """The whole document; figures are written under ``out_dir/figures``."""
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    records = [r for run in runs for r in run.records]
    ref_flops = pareto.reference_flops(records, [b for run in runs for b in run.budgets])
    colors = plots.topology_colors(str(r.get("topology")) for r in records)
    doc = Document("Report: " + ", ".join(r.name for r in runs))
    if len(runs) > 1:
        comparison(doc, runs, fig_dir, ref_flops)
    page = StudySections(doc, fig_dir, colors, ref_flops)
    for i, run in enumerate(runs):
        for name in SECTIONS:
            SECTIONS.get(name)(page, run, f"run{i}_" if len(runs) > 1 else "")
    return doc


def write_report(run_dirs: Sequence[str | Path], out_dir: str | Path, *, command: str | None = None) -> Path:
    """Write ``report.md``, ``report.html`` and ``figures/*.png`` to ``out_dir`` (and, for a study too long for its
    tables, ``trials.csv`` and one CSV per cut table: ``report.tables``); returns report.md. ``command`` is the
    report's own command line, stated under the title."""
    import datetime as dt

    runs = [load_run(p) for p in run_dirs]  # every mistake in the inputs surfaces before anything is written
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {str(out)!r}: must be a folder (new or existing), but it is a file")
    doc = build_report(runs, out)
    made = f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
    doc.blocks.insert(0, Para(f"Written {made} by `{command}`." if command else f"Written {made}."))
    (out / "report.md").write_text(render_markdown(doc, out))
    (out / "report.html").write_text(render_html(doc))
    return out / "report.md"
