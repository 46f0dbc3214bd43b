"""User-facing errors.

Anything the user can fix (a bad key, a missing file, an unknown name) raises ``UserError``;
the command line prints its message on one line and exits with code 2, without a traceback.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class UserError(ValueError):
    """A mistake in user input: the message names the key or file, the rule, then the value."""


def close_names_hint(name: str, choices: Iterable[str], n: int = 5, listed: int = 12, what: str = "names") -> str:
    """``close names: a, b`` when some choices resemble ``name``; else ``valid names: ...`` (short lists) or
    how many names are valid. The one helper behind every "did you mean" in the package."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    if close:
        return f"close names: {', '.join(close)}"
    if len(choices) <= listed:
        return f"valid {what}: {', '.join(choices)}"
    return f"{len(choices)} names are valid"


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> UserError:
    """Build a ``UserError`` for an unknown registry name, listing the close or valid names."""
    return UserError(f"unknown {kind} {name!r} ({close_names_hint(name, choices)})")
