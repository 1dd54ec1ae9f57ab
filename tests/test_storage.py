"""Storage selection by URL, the SQLite file's settings, and personal data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import timebank
from timebank import errors
from timebank.storage import DEFAULT_URL, default_url, open_backend
from timebank.storage.memory import MemoryBackend
from timebank.storage.sqlite import SqliteBackend

from .conftest import ACTOR, fixed_clock


def test_urls_select_backends(tmp_path: Path) -> None:
    assert isinstance(open_backend("memory://"), MemoryBackend)
    backend = open_backend(f"sqlite:///{tmp_path / 'a.db'}")
    assert isinstance(backend, SqliteBackend)
    assert backend.path == tmp_path / "a.db"
    relative = open_backend("sqlite:///relative.db")
    assert isinstance(relative, SqliteBackend)
    assert relative.path == Path("relative.db")


@pytest.mark.parametrize(
    "url", ["postgres://x", "sqlite://", "sqlite:///", "mysql://a/b", "timebank.db"]
)
def test_unsupported_urls_are_named(url: str) -> None:
    with pytest.raises(errors.UnsupportedStorageURL):
        open_backend(url)


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(errors.StoreNotFound):
        open_backend(f"sqlite:///{tmp_path / 'no' / 'such.db'}")


def test_the_default_store_is_timebank_db_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TIMEBANK_DB", raising=False)
    assert default_url() == DEFAULT_URL == "sqlite:///timebank.db"
    monkeypatch.setenv("TIMEBANK_DB", "memory://")
    assert default_url() == "memory://"


def test_sqlite_stores_are_wal_files_synced_on_every_commit(tmp_path: Path) -> None:
    tb = timebank.open(f"sqlite:///{tmp_path / 's.db'}")
    with tb, tb._app.factory.datastore.transaction(commit=False) as c:
        c.execute("PRAGMA journal_mode")
        assert c.fetchone()[0] == "wal"
        c.execute("PRAGMA synchronous")
        assert c.fetchone()[0] == 2  # FULL: an acknowledged entry is on disk


def test_the_process_environment_does_not_reconfigure_the_event_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """eventsourcing reads settings from os.environ; timebank must not."""
    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.popo")
    monkeypatch.setenv("COMPRESSOR_TOPIC", "eventsourcing.compressor:ZlibCompressor")
    path = tmp_path / "env.db"
    with timebank.open(f"sqlite:///{path}", clock=fixed_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
    states = [row[0] for row in sqlite3.connect(path).execute("SELECT state FROM stored_events")]
    assert states
    assert all(state.startswith(b"{") for state in states)  # plain JSON, not compressed


PERSONAL = {"display_name": "Zelda Quartermaine", "email": "zelda@example.org",
            "phone": "07700 900123", "area": "Quarry Ward"}  # fmt: skip


def test_no_personal_data_reaches_events_snapshots_or_indexes(tmp_path: Path) -> None:
    path = tmp_path / "pii.db"
    with timebank.open(f"sqlite:///{path}", clock=fixed_clock) as tb:
        tb.create_bank("b", name="Bank", actor=ACTOR, opened_on="2026-01-01")
        tb.join("b", "m-1", kind="individual", actor=ACTOR, joined_on="2026-01-01",
                profile=timebank.Profile(**PERSONAL))  # fmt: skip
        tb.join("b", "m-2", kind="individual", actor=ACTOR, joined_on="2026-01-01")
        for n in range(1005):  # enough to cross a snapshot
            tb.record_exchange("b", "m-1", "m-2", minutes=1, actor=ACTOR, entry_id=f"e{n}")
        assert tb.profile("m-1") == timebank.Profile(**PERSONAL)
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM stored_snapshots").fetchone()[0] >= 1
    tables = ["stored_events", "stored_snapshots", "timebank_entry_index", "timebank_postings"]
    for table in tables:
        text = "\n".join(repr(row) for row in db.execute(f"SELECT * FROM {table}"))
        assert text, table
        for value in PERSONAL.values():
            assert value not in text, (table, value)
    # The profile table is where it lives (and what erasure will delete).
    assert (
        db.execute("SELECT display_name FROM timebank_profiles").fetchone()[0]
        == PERSONAL["display_name"]
    )


def test_sqlite_writers_take_turns_and_a_stuck_one_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commands hold an exclusive lock on ``DB.lock`` while they read, check
    and write; a process that holds it too long gets a named error, and the
    command changed nothing."""
    import fcntl

    import timebank.storage.sqlite as sqlite_storage

    url = f"sqlite:///{tmp_path / 'turns.db'}"
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        tb.join("b", "m1", kind="individual", actor=ACTOR, joined_on="2026-01-01")
        monkeypatch.setattr(sqlite_storage, "LOCK_TIMEOUT_S", 0.2)
        with (tmp_path / "turns.db.lock").open("a") as other:  # another writer
            fcntl.flock(other.fileno(), fcntl.LOCK_EX)
            with pytest.raises(errors.StorageError, match="write lock"):
                tb.join("b", "m2", kind="individual", actor=ACTOR)
            fcntl.flock(other.fileno(), fcntl.LOCK_UN)
        assert [m.member for m in tb.members("b")] == ["m1"]
        tb.join("b", "m2", kind="individual", actor=ACTOR)  # free again
        assert [m.member for m in tb.members("b")] == ["m1", "m2"]
