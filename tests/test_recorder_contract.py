"""The eventsourcing library's own recorder test cases, run against the
recorder subclasses timebank writes for each backend (they add the index
tables to every insert, so they must still be the library's recorders)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.tests.persistence import ApplicationRecorderTestCase
from eventsourcing.utils import Environment

from timebank.storage.memory import MemoryBackend, MemoryRecorder
from timebank.storage.sqlite import SqliteBackend, SqliteRecorder

from .conftest import POSTGRES_URL, new_postgres_schema


def _recorder(backend: Any) -> Any:
    return backend.factory(Environment("timebank", {})).application_recorder()


class TestMemoryRecorder(ApplicationRecorderTestCase[MemoryRecorder]):
    def create_recorder(self) -> MemoryRecorder:
        recorder = _recorder(MemoryBackend())
        assert isinstance(recorder, MemoryRecorder)
        return recorder


class TestSqliteRecorder(ApplicationRecorderTestCase[SqliteRecorder]):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()

    def tearDown(self) -> None:
        self._tmp.cleanup()

    def create_recorder(self) -> SqliteRecorder:
        path = Path(self._tmp.name) / f"r{len(list(Path(self._tmp.name).iterdir()))}.db"
        recorder = _recorder(SqliteBackend(f"sqlite:///{path}", path))
        assert isinstance(recorder, SqliteRecorder)
        return recorder


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
class TestPostgresRecorder(ApplicationRecorderTestCase[Any]):
    def create_recorder(self) -> Any:
        from timebank.storage.postgres import PostgresBackend, PostgresIndexRecorder

        recorder = _recorder(PostgresBackend(new_postgres_schema()))
        assert isinstance(recorder, PostgresIndexRecorder)
        return recorder
