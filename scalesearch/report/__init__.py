"""Study reports from run folders: ``write_report(run_dirs, out_dir)``.

Modules, in data-flow order: ``runs`` (load a run folder's files) -> ``pareto`` (fronts, hypervolume;
``scalesearch.pareto``), ``stats`` (topology comparison over seeds), ``importance`` (PED-ANOVA) ->
``study`` / ``compare`` / ``fidelity`` / ``status`` (sections) -> ``doc`` (Markdown + HTML), ``plots`` (figures)
and ``tables`` (long tables cut to the rows that matter, every row and every trial in CSV files beside the
report) -> ``build`` (the whole report). The report reads only ``trials.json``,
``meta.json``, ``study.yaml`` and ``fidelity.json``; it never trains and never opens ``study.db``.
"""

from scalesearch.report.build import build_report, write_report

__all__ = ["build_report", "write_report"]
