"""The servers and tools the README promises the tests run against: PostgreSQL (initdb, pg_ctl), Ray's ``ray``
command, optuna-dashboard, Chromium. Outside CI a missing one skips its tests, with the reason; in CI (the
``CI`` environment variable set, as ``.ci/run`` and CI services set it) it fails them with one line instead:
CI does not pass by skipping. Importable from every test folder (``tests/conftest.py`` puts this folder on
``sys.path``)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    """Skip with ``reason``; under CI, fail with it (one line, no traceback)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: a missing server or tool fails the run, it does not skip)",
                    pytrace=False)
    pytest.skip(reason)


def need_module(name: str, install: str) -> ModuleType:
    """``pytest.importorskip`` that fails under CI; ``install`` says how to get it."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        unavailable(f"{name} cannot be imported ({error}): {install}")


TEST_EXTRAS = "pip install -e '.[test]' installs it"
