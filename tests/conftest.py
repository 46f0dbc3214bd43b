"""Shared by every test folder: makes ``tests/servers.py`` importable (``from servers import unavailable``)
wherever a test lives, whichever folder pytest collects first."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.append(_HERE)  # appended: a folder's own conftest (``from conftest import ...``) still comes first
