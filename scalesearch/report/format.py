"""How numbers are written in reports: counts with SI suffixes, mAP to four places, plain cells, generated
topologies by their short names (``scalesearch.topology_names``), front headings from the metric registry."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from typing import Any

from scalesearch.metrics import get_metric
from scalesearch.topology_names import short_name


def fmt_count(value: Any) -> str:
    """2.571e9 -> '2.571 G'; None -> '-'."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "-"
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3f} {unit}"
    return f"{value:g}"


def fmt_map(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def cell(value: Any) -> str:
    """A table cell: floats to 4 significant digits, sequences bracketed, None as '-'."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(cell(v) for v in value) + "]"
    return "-" if value is None else str(value)


def topology_cell(value: Any) -> str:
    """A topology as a table cell or legend entry: a generated graph by its short name (``gen-3fa2c1d0``)."""
    return _short_name(value) if isinstance(value, str) else cell(value)


@functools.lru_cache(maxsize=8192)
def _short_name(topology: str) -> str:
    """``short_name`` once per graph: it parses the graph, and a report of thousands of trials names each often."""
    return short_name(topology)


def point_cell(group: str) -> str:
    """A point's label (``pareto.group_key``) with any generated topology in it by its short name."""
    return re.sub(r"(?<=topology=)[^\s/]+", lambda m: short_name(m[0]), group)


def field_cell(key: str, value: Any) -> str:
    """A record field as a cell: ``topology`` by its short name, anything else by ``cell``."""
    return topology_cell(value) if key == "topology" else cell(value)


def front_heading(objectives: Sequence[str] = ("map", "flops")) -> str:
    """``Pareto front (maximise mAP, minimise FLOPs)``, from the metric registry."""
    words = (f"{get_metric(m).direction.removesuffix('ze')}se {get_metric(m).label}" for m in objectives)
    return f"Pareto front ({', '.join(words)})"


def fmt_std(values) -> str:
    """Sample standard deviation (ddof=1) of a numpy array; '-' below two values."""
    return f"{values.std(ddof=1):.4f}" if len(values) > 1 else "-"


def distinct_front(front: Sequence[Any]) -> tuple[list[Any], dict[int, int]]:
    """A front's rows for a table: the trials that measured their point (a duplicate, ``duplicate_of`` set, ties
    with the trial it names and is left out), in front order, and per kept trial how many duplicates of it the
    front holds. The first duplicate of an original outside ``front`` stands in for it."""
    numbers = {r.number for r in front if r.get("duplicate_of") is None}
    kept: list[Any] = []
    again: dict[int, int] = {}
    stand: dict[int, int] = {}
    for r in front:
        original = r.get("duplicate_of")
        if original is None:
            kept.append(r)
        elif original in numbers or original in stand:
            holder = original if original in numbers else stand[original]
            again[holder] = again.get(holder, 0) + 1
        else:
            stand[original] = r.number
            kept.append(r)
    return kept, again


def distinct_sentence(front: Sequence[Any], kept: Sequence[Any]) -> str:
    """`` (7 distinct point(s); the other 376 trial(s) are duplicates: ...)`` when ``front`` holds duplicates of
    ``kept`` (``distinct_front``), else ""."""
    extra = len(front) - len(kept)
    return (f" ({len(kept)} distinct point(s); the other {extra} trial(s) are duplicates: the sampler proposed a "
            "measured point again, and each row counts them)" if extra else "")
