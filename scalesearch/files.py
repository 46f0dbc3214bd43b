"""Files that several processes read and write at once: one atomic JSON writer and one on-disk cache.

Both are torch-free. A reader never sees half a file: everything is written to a temp file beside its
target and moved over it with ``os.replace`` (atomic on one file system), so workers, resumed runs and a
report read while a study runs all see either the old file or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file + ``os.replace`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json_atomic(path: str | Path, data: Any, *, indent: int | None = 1) -> None:
    """Write ``data`` as JSON to ``path`` atomically (``write_text_atomic``)."""
    write_text_atomic(path, json.dumps(data, indent=indent, default=str))


def digest(key: Any, length: int = 24) -> str:
    """A stable hex digest of a JSON-able ``key`` (dict keys sorted), the name of its cache entry."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:length]


class JsonCache:
    """One JSON file per entry, ``folder/<prefix>-<key>.json`` (``key``: a ``digest``), shared by processes;
    ``folder`` None keeps nothing on disk (every ``get`` misses). Entries are written atomically, so two
    workers that compute the same entry both succeed and either result stands (equal by construction)."""

    def __init__(self, folder: str | Path | None, prefix: str) -> None:
        self.folder, self.prefix = (Path(folder) if folder else None), prefix

    def path(self, key: str) -> Path | None:
        return self.folder / f"{self.prefix}-{key}.json" if self.folder is not None else None

    def get(self, key: str) -> Any | None:
        """The stored value of ``key``, or None when absent (or no folder)."""
        path = self.path(key)
        if path is None or not path.is_file():
            return None
        return json.loads(path.read_text())

    def put(self, key: str, value: Any) -> None:
        path = self.path(key)
        if path is not None:
            write_json_atomic(path, value, indent=None)
