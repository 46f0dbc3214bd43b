"""User-facing errors.

Anything the user can fix (a bad key, a missing file, an unknown name) raises ``UserError``;
the command line prints its message on one line and exits with code 2, without a traceback.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class UserError(ValueError):
    """A mistake in user input: the message names the key or file, the rule, then the value."""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> UserError:
    """Build a ``UserError`` for an unknown registry name, listing the close or valid names."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=5, cutoff=0.5)
    if close:
        hint = f"close names: {', '.join(close)}"
    elif len(choices) <= 12:
        hint = f"valid names: {', '.join(choices)}"
    else:
        hint = f"{len(choices)} names are valid"
    return UserError(f"unknown {kind} {name!r} ({hint})")
