"""``make_storage``: processes racing to create Optuna's tables retry; real errors stay one-line user errors."""
from __future__ import annotations

import optuna
import pytest
from sqlalchemy.exc import OperationalError

from scalesearch.errors import UserError
from scalesearch.search import optuna_study


def _raise_then_build(monkeypatch, message: str, failures: int) -> list[int]:
    calls: list[int] = []
    real = optuna.storages.RDBStorage

    def flaky(url, **kwargs):
        calls.append(1)
        if len(calls) <= failures:
            raise OperationalError("CREATE TABLE trial_values", {}, Exception(message))
        return real(url, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", flaky)
    monkeypatch.setattr("time.sleep", lambda s: None)
    return calls


def test_sqlite_table_creation_race_is_retried(tmp_path, monkeypatch):
    calls = _raise_then_build(monkeypatch, "table trial_values already exists", failures=2)
    storage = optuna_study.make_storage(f"sqlite:///{tmp_path / 'shared.db'}")
    assert len(calls) == 3 and storage.get_all_studies() == []


def test_other_sqlite_errors_are_not_retried(tmp_path, monkeypatch):
    calls = _raise_then_build(monkeypatch, "unable to open database file", failures=5)
    with pytest.raises(UserError, match="search.storage: must be a reachable database URL"):
        optuna_study.make_storage(f"sqlite:///{tmp_path / 'x.db'}")
    assert len(calls) == 1
