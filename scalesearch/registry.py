"""One shape for every plug-in family: a ``Registry`` maps a name to a member, filled where the member is
defined (``@FAMILY.register("name")`` or ``FAMILY.add("name", member)``).

A member whose module needs a heavy engine (torch, Optuna, Ray) is declared by its import path instead
(``FAMILY.declare("name", "package.module:attr")``): its name is known, validated and offered as a CLI
choice without importing the engine, and the module is imported on the first ``get``. A declared member's
module registers nothing itself; the declaration is its entry.

Unknown names raise one ``UserError`` naming the family and the close or valid names (``errors.unknown_name``),
so a study key or a CLI option that takes a member needs no list of its own: ``choices()`` is the list.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any, Callable, Generic, Iterator, TypeVar

from scalesearch.errors import unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    """Named members of one plug-in family (``kind`` is how errors name it: "search backend", "metric")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._members: dict[str, T] = {}
        self._declared: dict[str, str] = {}  # name -> "module:attr", imported on first get

    def add(self, name: str, member: T) -> T:
        """Register ``member`` as ``name``; a name is registered once (a second one is a bug, not an override)."""
        if name in self._members or name in self._declared:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._members[name] = member
        return member

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of ``add``."""
        return lambda member: self.add(name, member)

    def declare(self, name: str, target: str) -> None:
        """A member known by name now and imported from ``"module:attr"`` when first asked for."""
        if name in self._members or name in self._declared:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._declared[name] = target

    def get(self, name: str) -> T:
        """The member ``name``; ``UserError`` naming the family and close names when unknown."""
        if name in self._members:
            return self._members[name]
        if name not in self._declared:
            raise unknown_name(self.kind, name, self.choices())
        module, attr = self._declared[name].split(":")
        member: Any = getattr(importlib.import_module(module), attr)
        self._members[name] = member
        del self._declared[name]
        return member

    @contextlib.contextmanager
    def temporarily(self, name: str, member: T) -> Iterator[T]:
        """``member`` registered as ``name`` inside a ``with`` block only (a test's fake, an experiment), then
        removed: the process's registry is left as it was."""
        self.add(name, member)
        try:
            yield member
        finally:
            self._members.pop(name, None)

    def choices(self) -> tuple[str, ...]:
        """Every name, registered or declared, in registration order (CLI choices, config validation)."""
        return (*self._members, *self._declared)

    def __getitem__(self, name: str) -> T:
        """``get``: an unknown name is a ``UserError`` (a ``ValueError``), not a ``KeyError``."""
        return self.get(name)

    def items(self) -> list[tuple[str, T]]:
        """(name, member) pairs in registration order; imports declared members."""
        return [(name, self.get(name)) for name in self.choices()]

    def __contains__(self, name: object) -> bool:
        return name in self._members or name in self._declared

    def __iter__(self) -> Iterator[str]:
        return iter(self.choices())

    def __len__(self) -> int:
        return len(self._members) + len(self._declared)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.choices())})"
