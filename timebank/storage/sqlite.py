"""``sqlite:///path.db``: the embedded default, one file per store.

Events, snapshots, the entry and postings indexes and the profile table all
live in one SQLite file in WAL mode, so a backup is one file (see
docs/storage.md). Each commit is synced to disk (``synchronous=FULL``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InfrastructureFactory, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteFactory

from timebank.storage.base import (
    Backend,
    IndexedEntry,
    Profile,
    ProfileStore,
    index_update_from,
)

__all__ = ["SqliteBackend"]

#: Seconds a writer waits for another process's write lock before giving up.
LOCK_TIMEOUT_S = 10

_PROFILE_FIELDS = ("display_name", "email", "phone", "area")


class SqliteRecorder(SQLiteApplicationRecorder):
    """SQLite application recorder, with the entry and postings indexes."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS timebank_entry_index ("
            " entry_id TEXT PRIMARY KEY,"
            " bank_uuid TEXT NOT NULL,"
            " version INTEGER NOT NULL,"
            " reverses TEXT UNIQUE)",
            "CREATE TABLE IF NOT EXISTS timebank_postings ("
            " bank_uuid TEXT NOT NULL,"
            " account TEXT NOT NULL,"
            " version INTEGER NOT NULL,"
            " PRIMARY KEY (bank_uuid, account, version)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS timebank_profiles ("
            " member_id TEXT PRIMARY KEY,"
            " display_name TEXT, email TEXT, phone TEXT, area TEXT)",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        update = index_update_from(kwargs)
        if update is not None:
            c.executemany(
                "INSERT INTO timebank_entry_index VALUES (?, ?, ?, ?)",
                [(e, b.hex, v, r) for e, b, v, r in update.entries],
            )
            c.executemany(
                "INSERT INTO timebank_postings VALUES (?, ?, ?)",
                [(b.hex, a, v) for b, a, v in update.postings],
            )
        return ids

    def find_entry(self, entry_id: str) -> IndexedEntry | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT bank_uuid, version, reverses,"
                " (SELECT r.entry_id FROM timebank_entry_index r WHERE r.reverses = i.entry_id)"
                " FROM timebank_entry_index i WHERE entry_id = ?",
                (entry_id,),
            )
            row = c.fetchone()
        if row is None:
            return None
        return IndexedEntry(entry_id, UUID(row[0]), row[1], row[2], row[3])

    def select_postings(
        self, bank_uuid: UUID, account: str, *, limit: int
    ) -> Sequence[StoredEvent]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(  # the table name is the library's setting, never user input
                "SELECT e.originator_version, e.topic, e.state"  # noqa: S608
                f" FROM timebank_postings p JOIN {self.events_table_name} e"
                " ON e.originator_id = p.bank_uuid AND e.originator_version = p.version"
                " WHERE p.bank_uuid = ? AND p.account = ?"
                " ORDER BY p.version LIMIT ?",
                (bank_uuid.hex, account, limit),
            )
            rows = c.fetchall()
        return [StoredEvent(bank_uuid, r[0], r[1], r[2]) for r in rows]

    def count_entries(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT COUNT(*) FROM timebank_entry_index")
            return int(c.fetchone()[0])


class SqliteProfileStore(ProfileStore):
    def __init__(self, factory: SQLiteFactory) -> None:
        self._datastore = factory.datastore

    def put(self, member_id: str, profile: Profile) -> None:
        values = [getattr(profile, f) for f in _PROFILE_FIELDS]
        with self._datastore.transaction(commit=True) as c:
            c.execute(
                "INSERT INTO timebank_profiles VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (member_id) DO UPDATE SET display_name = excluded.display_name,"
                " email = excluded.email, phone = excluded.phone, area = excluded.area",
                (member_id, *values),
            )

    def get(self, member_id: str) -> Profile | None:
        with self._datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT display_name, email, phone, area FROM timebank_profiles"
                " WHERE member_id = ?",
                (member_id,),
            )
            row = c.fetchone()
        return None if row is None else Profile(*row)


class _SqliteFactory(SQLiteFactory):
    application_recorder_class = SqliteRecorder


class SqliteBackend(Backend):
    """A SQLite file. ``path`` may be relative to the working directory."""

    def __init__(self, url: str, path: Path) -> None:
        self.url = url
        self.path = path

    def factory(self, env: Any) -> InfrastructureFactory[Any]:
        env[_SqliteFactory.SQLITE_DBNAME] = self.path.resolve().as_uri()
        env[_SqliteFactory.SQLITE_LOCK_TIMEOUT] = str(LOCK_TIMEOUT_S)
        return _SqliteFactory(env)

    def profiles(self, factory: InfrastructureFactory[Any]) -> ProfileStore:
        if not isinstance(factory, SQLiteFactory):
            raise TypeError(f"expected the SQLite factory, got {factory!r}")
        return SqliteProfileStore(factory)
