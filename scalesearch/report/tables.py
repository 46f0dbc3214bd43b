"""Long tables in a report: a study of thousands of trials stays readable.

A table that would list more than ``LIMIT`` rows (one per topology, repeated point, topology pair, ...) shows the
``LIMIT`` that matter most (the section says which), a note saying how many rows are left out and the CSV file
beside the report that holds every row (``long_table``). Every trial of a run, one row each from its records, is
in ``trials.csv`` beside the report (``write_trials``), which the trial tables point to. A table within the limit
is written as before, and no file is written for it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scalesearch import pareto
from scalesearch.metrics import METRICS
from scalesearch.records import TrialRecord
from scalesearch.report.doc import Document
from scalesearch.report.format import topology_cell

LIMIT = 30  # rows a table shows before the rest go to its CSV file
NUMBERS = 12  # trial numbers a cell lists before it says how many more


def plain(text: Any) -> str:
    """A cell without the report's inline markup (``code``, **bold**), as a CSV holds it."""
    return re.sub(r"\*\*([^*]+)\*\*", r"\1", re.sub(r"`([^`]+)`", r"\1", str(text)))


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    """``rows`` under ``header`` as a CSV file (UTF-8, comma-separated, markup removed); returns ``path``."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([plain(h) for h in header])
        writer.writerows([plain(c) for c in row] for row in rows)
    return path


def numbers_cell(numbers: Sequence[int]) -> str:
    """``3, 8, 12`` for a few trial numbers; the first ``NUMBERS`` and ``... (40 trials)`` for more."""
    if len(numbers) <= NUMBERS:
        return ", ".join(map(str, numbers))
    return ", ".join(map(str, numbers[:NUMBERS])) + f", ... ({len(numbers)} trials)"


def long_table(doc: Document, header: Sequence[str], rows: Sequence[Sequence[Any]], path: Path, rank: Sequence[int],
               chosen: str, what: str = "rows") -> None:
    """``rows`` as one table when there are at most ``LIMIT``. Else the first ``LIMIT`` indices of ``rank`` (rows
    best first; ``chosen`` says how, e.g. ``the 30 with the best mAP``) in the table's own order, then a note with
    how many ``what`` are left out and ``path`` (every row, written here; named relative to the report)."""
    if len(rows) <= LIMIT:
        doc.table(list(header), [list(r) for r in rows])
        return
    keep = sorted(rank[:LIMIT])
    doc.table(list(header), [list(rows[i]) for i in keep])
    write_csv(path, header, rows)
    doc.para(f"Shown: {chosen}; {len(rows) - len(keep)} more {what} left out here. Every row: `{path.name}` "
             "beside this report.")


# ---- every trial of a run ---------------------------------------------------------------------------------

_LEAD = ("number", "state", "label", "seed", "duplicate_of", "topology_name")
_NOT_CELLS = {"params_sampled", "values", "intermediate", "aspect_ratios", "schema"}


def trial_columns(records: Sequence[TrialRecord]) -> list[str]:
    """The CSV's columns: number, state, label, seed, duplicate_of and the topology's short name; then every metric
    of the registry, every spec field, and the other scalar fields of the records (sorted), those some record has;
    each zero-cost score as ``zero_cost.<name>``."""
    present = {k for r in records for k, v in r.flat.items() if v is not None and k not in _NOT_CELLS
               and not isinstance(v, (dict, list))}
    ordered = [k for k in (*METRICS.choices(), *pareto.SPEC_FIELDS, "phi") if k in present]
    rest = sorted(present - set(ordered) - set(_LEAD))
    scores = sorted({f"zero_cost.{k}" for r in records for k in r.zero_cost})
    return [*_LEAD, *ordered, *rest, *scores]


def _trial_cell(record: TrialRecord, column: str) -> Any:
    if column == "topology_name":
        return topology_cell(record.get("topology")) if record.get("topology") is not None else ""
    if column.startswith("zero_cost."):
        value = record.zero_cost.get(column.split(".", 1)[1])
    else:
        value = record.get(column)
    return "" if value is None else value


def write_trials(records: Sequence[TrialRecord], path: Path) -> Path:
    """Every record as one CSV row, in number order (``trial_columns``); returns ``path``."""
    columns = trial_columns(records)
    rows = [[_trial_cell(r, c) for c in columns] for r in sorted(records, key=lambda r: r.number)]
    return write_csv(path, columns, rows)
