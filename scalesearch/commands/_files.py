"""Output files and folders named by options (``--json``, ``--md``, ``--save``, ``--out``): checked before a command does any work,
so that a typo fails in one line at once instead of after minutes of counting or training."""

from __future__ import annotations

from pathlib import Path

from scalesearch.errors import UserError


def check_output(option: str, path: str | Path | None) -> Path | None:
    """``path`` as a ``Path`` (None stays None); ``UserError`` if it is a folder or lies under a file."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option} {path}: must be a file path, but it is a folder")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UserError(f"{option} {path}: must lie in a folder, but {parent} is a file")
    return path


def write_output(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, making its folder if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def check_folder(option: str, path: str | Path) -> Path:
    """``path`` as a ``Path``; ``UserError`` if it exists and is not a folder (a missing one is made later)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path}: must be a folder (made if missing), but it is a file")
    return path
