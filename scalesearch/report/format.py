"""How numbers are written in reports: counts with SI suffixes, mAP to four places, plain cells."""

from __future__ import annotations

import math
from typing import Any


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


def fmt_std(values) -> str:
    """Sample standard deviation (ddof=1) of a numpy array; '-' below two values."""
    return f"{values.std(ddof=1):.4f}" if len(values) > 1 else "-"
