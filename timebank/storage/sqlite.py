"""``sqlite:///path.db``: the embedded default, one file per store.

Events, snapshots, the entry and postings indexes and the profile table all
live in one SQLite file in WAL mode, so a backup is one file (see
docs/storage.md). Each commit is synced to disk (``synchronous=FULL``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote
from uuid import UUID

import attrs

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from eventsourcing.persistence import InfrastructureFactory, StoredEvent
from eventsourcing.sqlite import (
    SQLiteAggregateRecorder,
    SQLiteApplicationRecorder,
    SQLiteCursor,
    SQLiteFactory,
)

from timebank.domain.errors import BackupRefused, RestoreRefused, StorageError, StoreNotFound
from timebank.readmodel import ReadModelDB, SqliteReadModelDB
from timebank.storage import _format as store_format
from timebank.storage._sqlite_failures import (
    STORE_CURE,
    check_sqlite_version,
    into_wal,
    is_file_failure,
    is_write_failure,
    raise_file_failure,
)
from timebank.storage.base import (
    IDS_PER_QUERY,
    Backend,
    BulkInsert,
    IndexedEntry,
    IndexRow,
    IndexUpdate,
    Profile,
    ProfileStore,
    Proposal,
    index_update_from,
    write_lock_timed_out,
)

__all__ = ["SqliteBackend"]

#: Seconds a writer waits for another process's write lock before giving up.
LOCK_TIMEOUT_S = 10
#: Page cache of the connection that writes an import (PRAGMA cache_size:
#: negative is KiB), 32 MB.
BULK_CACHE_KIB = -32_768
#: Seconds erasure keeps trying to empty the write-ahead log while other
#: processes hold it open.
ERASE_CHECKPOINT_S = 5
#: The temporary table an import's postings wait in until its end.
_STAGED_POSTINGS = "timebank_staged_postings"

#: A profile written, replacing the member's stored one.
_PROFILE_UPSERT = (
    "INSERT INTO timebank_profiles VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (member_id) DO UPDATE SET display_name = excluded.display_name,"
    " email = excluded.email, phone = excluded.phone, area = excluded.area"
)


def _connect(db_name: str) -> sqlite3.Connection:
    """A connection of timebank's own beside the library's pool: autocommit,
    shareable between threads (callers hold a lock), waiting for writers."""
    return sqlite3.connect(
        db_name, uri=True, isolation_level=None, check_same_thread=False, timeout=LOCK_TIMEOUT_S
    )


def _raise_store_failure(error: sqlite3.DatabaseError, db_name: str) -> NoReturn:
    """The store file's own failures (damaged, not a database, unreadable,
    full) on timebank's connections as one :class:`StorageError` naming the
    file; other errors raised as they are. (The library's connections raise
    its ``PersistenceError``, which the API turns into the same error.)"""
    url = f"sqlite:///{unquote(db_name.removeprefix('file://'))}"
    raise_file_failure(error, f"the store {url}", STORE_CURE, url)


@contextmanager
def _store_file(db_name: str) -> Iterator[None]:
    """:func:`_raise_store_failure` for a block (the profile table's
    statements; the reads on every look-up catch it inline instead, which
    costs nothing when nothing fails)."""
    try:
        yield
    except sqlite3.DatabaseError as e:
        _raise_store_failure(e, db_name)


def _copy_problems(copy: sqlite3.Connection) -> tuple[list[str], int]:
    """What SQLite finds wrong with a copy of a store (nothing when it is
    sound and holds a timebank store's tables), and its events; a sound copy
    is made one file, with no write-ahead log beside it when it is opened."""
    try:
        problems = [str(row[0]) for row in copy.execute("PRAGMA integrity_check")]
        tables = {str(row[0]) for row in copy.execute("SELECT name FROM sqlite_master")}
        if problems == ["ok"] and not {"stored_events", "timebank_entry_index"} <= tables:
            problems = ["not a timebank store"]
        if problems == ["ok"] and store_format.TABLE in tables:
            row = copy.execute(store_format.select_sql(store_format.TABLE)).fetchone()
            unreadable = None if row is None else store_format.too_new(row)
            if unreadable is not None:  # a restore's, of a backup a later release wrote
                problems = [f"it was {unreadable}: upgrade timebank to restore it"]
        if problems == ["ok"]:
            copy.execute("PRAGMA journal_mode=DELETE")
            events = copy.execute("SELECT coalesce(max(rowid), 0) FROM stored_events")
            return [], int(events.fetchone()[0])
    except sqlite3.DatabaseError as e:
        # not the copy's pages: a statement's own fault, or no room to write
        if not is_file_failure(e) or is_write_failure(e):
            raise
        problems = [str(e)]
    return problems, 0


def _checked_copy(copy: sqlite3.Connection, dest: Path) -> int:
    """The events in a backup's copy, once :func:`_copy_problems` finds none."""
    problems, events = _copy_problems(copy)
    if problems:
        raise StorageError(
            f"the backup {dest} failed its check, so it was not kept: {'; '.join(problems[:3])}"
            " (the store itself may be damaged: audit it)",
            url=str(dest),
        )
    return events


#: The eventsourcing library's tables in a store; timebank's own begin
#: ``timebank_``. Any other table is another application's.
_LIBRARY_TABLES = frozenset({"stored_events", "stored_snapshots"})


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction on an autocommit connection of timebank's own,
    taken at once (``BEGIN IMMEDIATE``: it waits for another writer with
    the connection's timeout rather than failing part-way)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        # as the read model's exclusive(): SQLite may already have rolled
        # back (on a full disk, an I/O error), and a ROLLBACK then would
        # fail and hide the error
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _user(uid: int) -> str:
    """A user's name, or their number where the system has no name for it."""
    try:
        import pwd  # noqa: PLC0415 - POSIX only

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


#: A SQLite file and the write-ahead log and shared-memory files beside it.
_WITH_LOG = ("", "-wal", "-shm")


def _discard(copy: Path) -> None:
    """Delete a copy being made, and any journal SQLite kept beside it (a
    rollback journal while it was written; a log while it was checked)."""
    for suffix in (*_WITH_LOG, "-journal"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)


#: A new store is its owner's alone: it holds members' profiles (names,
#: emails, phones). Files made beside a store take the store's mode
#: (docs/storage.md, "Who can read the files").
PRIVATE_MODE = 0o600


def create_with_mode(path: Path, mode: int) -> None:
    """Create ``path`` empty with exactly ``mode`` (the umask takes no bits
    off) unless it exists; if it cannot be made, whoever opens it next says
    why. Never more open than ``mode`` meanwhile: it is made with the
    umask's share of it, then given the rest."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError:  # it exists, or it cannot be made here
        return
    os.close(fd)
    with contextlib.suppress(OSError):
        os.chmod(path, mode)


def mode_of(path: Path) -> int:
    """``path``'s permission bits; owner-only if there is no such file."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return PRIVATE_MODE


def _restore(backup: Path, store: Path, read_model: Path, url: str) -> tuple[int, Path | None]:
    """Put a checked copy of the backup in place of the store's file
    (docs/storage.md, Restoring): the events restored, and where the store
    it replaced now is (``None`` if there was none). The store's read model
    (``read_model``) is deleted (it is rebuilt from the log). :class:`RestoreRefused`
    with nothing changed if the backup is missing, is the store, or fails its
    check, or if the store is in use."""
    if not backup.is_file():
        raise RestoreRefused(f"no backup at {backup}", url=url)
    if store.exists() and backup.resolve() == store.resolve():
        raise RestoreRefused(f"{backup} is the store itself: restore from a backup", url=url)
    part = store.with_name(f"{store.name}.restoring")
    try:
        _discard(part)  # left by a restore that was killed
        # as open as the store it replaces, or as the backup if there is none
        create_with_mode(part, mode_of(store if store.exists() else backup))
        source = sqlite3.connect(f"{backup.resolve().as_uri()}?mode=ro", uri=True)
        with closing(source), closing(sqlite3.connect(part)) as copy:
            try:
                source.backup(copy)
                problems, events = _copy_problems(copy)
            except sqlite3.DatabaseError as e:
                if is_write_failure(e):  # the copy's (the backup is read only)
                    raise
                problems, events = [str(e)], 0
        if problems:
            raise RestoreRefused(
                f"the backup {backup} failed its check, so nothing was restored:"
                f" {'; '.join(problems[:3])}",
                url=url,
            )
        with part.open("rb") as written:
            os.fsync(written.fileno())
        replaced = None
        with _alone(store, url):
            # derived from the log: rebuilt by the next report (and a
            # read model that outlived this would be rebuilt anyway, as
            # it follows one log: docs/reports.md)
            for suffix in _WITH_LOG:
                Path(f"{read_model}{suffix}").unlink(missing_ok=True)
            if any(Path(f"{store}{s}").exists() for s in _WITH_LOG):  # a lost store's log too
                replaced = _unused(
                    store.with_name(
                        f"{store.name}.replaced-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
                    )
                )
                for suffix in _WITH_LOG:
                    if Path(f"{store}{suffix}").exists():  # a damaged store's log stays its pair
                        os.replace(f"{store}{suffix}", f"{replaced}{suffix}")
            os.replace(part, store)
            _sync_directory(store.parent)
    except (sqlite3.DatabaseError, OSError) as e:
        raise StorageError(f"cannot restore {backup} into {store}: {e}", url=url) from None
    finally:
        _discard(part)
    return events, replaced


def _unused(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``… the first that no file (or
    write-ahead log of one) has: an earlier replaced store is never overwritten."""
    candidate, n = path, 1
    while any(Path(f"{candidate}{s}").exists() for s in _WITH_LOG):
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


@contextmanager
def _alone(store: Path, url: str) -> Iterator[None]:
    """Hold the store so that no other connection uses it: SQLite takes a
    store out of write-ahead-log mode only when no other connection, in any
    process, has it open (which also merges its log into the file), and an
    exclusive lock then keeps newcomers waiting. A store SQLite cannot read
    at all (damaged) is held as it is; a missing one needs no holding."""
    if not store.exists():
        yield
        return
    conn = sqlite3.connect(store.resolve().as_uri(), uri=True, isolation_level=None, timeout=0)
    try:
        try:
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.DatabaseError as e:
            if str(getattr(e, "sqlite_errorname", "")).startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
                mode = "in use"
            elif is_file_failure(e):
                mode = "delete"  # damaged: moved aside as it is, with its log
            else:
                raise
        if mode != "delete":
            raise RestoreRefused(
                f"the store {store} is in use: stop every process that uses it, then restore",
                url=url,
            )
        yield
    finally:
        conn.close()


def _sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _hex(originator_id: UUID | str) -> str:
    """A stream id as the library's SQLite recorder stores it."""
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


class SqliteRecorder(SQLiteApplicationRecorder):
    """SQLite application recorder, with the entry and postings indexes."""

    def __init__(self, datastore: Any, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name)
        self._reader_connection: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()

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
            "CREATE TABLE IF NOT EXISTS timebank_pending ("
            " entry_id TEXT PRIMARY KEY,"
            " bank_uuid TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS timebank_settled ("
            " entry_id TEXT PRIMARY KEY,"
            " bank_uuid TEXT NOT NULL,"
            " version INTEGER NOT NULL)",
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
            self._insert_index_rows(c, update, "timebank_postings")
        return ids

    @staticmethod
    def _insert_index_rows(c: SQLiteCursor, update: IndexUpdate, postings_table: str) -> None:
        c.executemany(
            "INSERT INTO timebank_entry_index VALUES (?, ?, ?, ?)",
            [(e, b.hex, v, r) for e, b, v, r in update.entries],
        )
        c.executemany(
            f"INSERT INTO {postings_table} VALUES (?, ?, ?)",  # noqa: S608 - one of two names
            [(b.hex, a, v) for b, a, v in update.postings],
        )
        c.executemany(
            "DELETE FROM timebank_pending WHERE entry_id = ?",
            [(e,) for e in update.pending_removed],
        )
        c.executemany(
            "INSERT INTO timebank_pending VALUES (?, ?)",
            [(e, b.hex) for e, b in update.pending_added],
        )
        c.executemany(
            "INSERT INTO timebank_settled VALUES (?, ?, ?) ON CONFLICT (entry_id)"
            " DO UPDATE SET bank_uuid = excluded.bank_uuid, version = excluded.version",
            [(e, b.hex, v) for e, b, v in update.settled],
        )
        if update.profiles or update.profiles_erased:
            # as on the profile store's own connection: what a profile row
            # held is overwritten when it is replaced or deleted, not left in
            # the file's free space (this pooled connection goes back to its
            # own setting after, for the snapshots it deletes)
            c.execute("PRAGMA secure_delete")
            usual = int(c.fetchone()[0])
            c.execute("PRAGMA secure_delete = ON")
            try:
                c.executemany(_PROFILE_UPSERT, [(m, *attrs.astuple(p)) for m, p in update.profiles])
                c.executemany(
                    "DELETE FROM timebank_profiles WHERE member_id = ?",
                    [(m,) for m in update.profiles_erased],
                )
            finally:
                c.execute(f"PRAGMA secure_delete = {usual}")

    @contextmanager
    def bulk_insert(self) -> Iterator[BulkInsert]:
        with self.datastore.transaction(commit=True) as c:
            # A larger page cache for the import's one transaction (the
            # connection's own size comes back when the import ends), for
            # the keys its rows go into out of order: the entry index, when
            # the file's ids are not in order (a million random ids: 5.8 s
            # with SQLite's default 2 MB, 4.1 s with 32 MB), and before the
            # postings were sorted (below), the postings (17.6 s against
            # 11.5-12.9 s). With the benchmark's ids, in near order, it
            # changes nothing measurable; it costs 9 MB at the peak.
            c.execute("PRAGMA cache_size")
            usual = int(c.fetchone()[0])
            c.execute(f"PRAGMA cache_size={BULK_CACHE_KIB}")
            # The postings are staged in a temporary table as the parts come
            # and go into their (bank, account, version) key once, sorted, at
            # the end: written as they come, in the file's random account
            # order, nearly every one lands on a different page of the key.
            # Measured on the import benchmark's store ceiling: 63,115
            # entries/s as they come, 82,806 sorted at the end. The staging
            # table is created and dropped inside the transaction, so a
            # rollback takes it away with the rest.
            c.execute(f"DROP TABLE IF EXISTS temp.{_STAGED_POSTINGS}")
            c.execute(
                f"CREATE TEMP TABLE {_STAGED_POSTINGS}"
                " (bank_uuid TEXT NOT NULL, account TEXT NOT NULL, version INTEGER NOT NULL)"
            )
            try:

                def insert(stored_events: Sequence[StoredEvent], index: IndexUpdate) -> None:
                    # the library's own statement, in one executemany: it
                    # runs one execute an event for the notification ids,
                    # which an import does not need
                    c.executemany(
                        self.insert_events_statement,
                        [(_hex(s.originator_id), s.originator_version, s.topic, s.state)
                         for s in stored_events],
                    )  # fmt: skip
                    self._insert_index_rows(c, index, f"temp.{_STAGED_POSTINGS}")

                yield insert
            finally:
                c.execute(f"PRAGMA cache_size={usual}")
            # with the usual page cache: SQLite's sorter takes as much memory
            # as the page cache may, which would add the import's 32 MB to
            # the memory it already holds at its end
            c.execute(
                "INSERT INTO timebank_postings SELECT bank_uuid, account, version"  # noqa: S608
                f" FROM temp.{_STAGED_POSTINGS} ORDER BY bank_uuid, account, version"
            )
            c.execute(f"DROP TABLE temp.{_STAGED_POSTINGS}")

    # Reads (events, index look-ups, the change token) go through one
    # dedicated connection in autocommit mode, used only for SELECTs: each
    # SELECT is its own read transaction and sees the latest commit of every
    # process (WAL), without the pool's BEGIN/ROLLBACK round trips.
    def _reader(self) -> sqlite3.Connection:
        if self._reader_connection is None:
            self._reader_connection = _connect(self.datastore.pool.db_name)
        return self._reader_connection

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        with self._reader_lock:
            try:
                return self._reader().execute(sql, params).fetchall()
            except sqlite3.DatabaseError as e:
                _raise_store_failure(e, self.datastore.pool.db_name)

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        statement = self.select_events_statement
        params: list[Any] = [_hex(originator_id)]
        if gt is not None:
            statement += "AND originator_version>? "
            params.append(gt)
        if lte is not None:
            statement += "AND originator_version<=? "
            params.append(lte)
        statement += "ORDER BY originator_version " + ("DESC " if desc else "ASC ")
        if limit is not None:
            statement += "LIMIT ? "
            params.append(limit)
        rows = self._read(statement, tuple(params))
        return [StoredEvent(self.convert_originator_id(r[0]), r[1], r[2], r[3]) for r in rows]

    def change_token(self) -> object:
        return self._read("PRAGMA data_version", ())[0][0]

    def find_entry(self, entry_id: str) -> IndexedEntry | None:
        rows = self._read(
            "SELECT bank_uuid, version, reverses,"
            " (SELECT r.entry_id FROM timebank_entry_index r WHERE r.reverses = i.entry_id)"
            " FROM timebank_entry_index i WHERE entry_id = ?",
            (entry_id,),
        )
        if not rows:
            return None
        bank, version, reverses, reversed_by = rows[0]
        return IndexedEntry(entry_id, UUID(bank), version, reverses, reversed_by)

    def find_entries(
        self, entry_ids: Sequence[str]
    ) -> list[tuple[IndexedEntry, StoredEvent | None]]:
        found: list[tuple[IndexedEntry, StoredEvent | None]] = []
        for start in range(0, len(entry_ids), IDS_PER_QUERY):
            part = tuple(entry_ids[start : start + IDS_PER_QUERY])
            rows = self._read(
                "SELECT i.entry_id, i.bank_uuid, i.version, i.reverses,"  # noqa: S608 - the library's table name
                " (SELECT r.entry_id FROM timebank_entry_index r WHERE r.reverses = i.entry_id),"
                " e.topic, e.state"
                f" FROM timebank_entry_index i LEFT JOIN {self.events_table_name} e"
                " ON e.originator_id = i.bank_uuid AND e.originator_version = i.version"
                f" WHERE i.entry_id IN ({','.join('?' * len(part))})",
                part,
            )
            for entry_id, bank, version, reverses, reversed_by, topic, state in rows:
                indexed = IndexedEntry(entry_id, UUID(bank), version, reverses, reversed_by)
                stored = None if topic is None else StoredEvent(UUID(bank), version, topic, state)
                found.append((indexed, stored))
        return found

    def recorded_entry_ids(self, entry_ids: Sequence[str]) -> set[str]:
        return self._ids_in(("timebank_entry_index",), entry_ids)

    def proposal_ids(self, entry_ids: Sequence[str]) -> set[str]:
        return self._ids_in(("timebank_pending", "timebank_settled"), entry_ids)

    def _ids_in(self, tables: tuple[str, ...], entry_ids: Sequence[str]) -> set[str]:
        """Those of ``entry_ids`` that any of the index ``tables`` holds, a
        bounded number of ids a query."""
        found: set[str] = set()
        # each table's query takes the ids again: plain "?" marks (numbered
        # ones, "?1", warn with a sequence on Python 3.12.0 to 3.12.3), at
        # most IDS_PER_QUERY in all (SQLite before 3.32 takes 999)
        step = IDS_PER_QUERY // len(tables)
        for start in range(0, len(entry_ids), step):
            part = tuple(entry_ids[start : start + step])
            marks = ",".join("?" * len(part))
            rows = self._read(
                " UNION ALL ".join(
                    f"SELECT entry_id FROM {table} WHERE entry_id IN ({marks})"  # noqa: S608 - our tables
                    for table in tables
                ),
                part * len(tables),
            )
            found.update(r[0] for r in rows)
        return found

    def find_proposal(self, entry_id: str) -> Proposal | None:
        rows = self._read(
            "SELECT bank_uuid, NULL FROM timebank_pending WHERE entry_id = ?"
            " UNION ALL SELECT bank_uuid, version FROM timebank_settled WHERE entry_id = ?",
            (entry_id, entry_id),
        )
        return Proposal.first_of([(UUID(bank), settled) for bank, settled in rows])

    def select_postings(
        self, bank_uuid: UUID, account: str, *, limit: int
    ) -> Sequence[StoredEvent]:
        rows = self._read(
            # the table name is the library's setting, never user input
            "SELECT e.originator_version, e.topic, e.state"  # noqa: S608
            f" FROM timebank_postings p JOIN {self.events_table_name} e"
            " ON e.originator_id = p.bank_uuid AND e.originator_version = p.version"
            " WHERE p.bank_uuid = ? AND p.account = ?"
            " ORDER BY p.version LIMIT ?",
            (bank_uuid.hex, account, limit),
        )
        return [StoredEvent(bank_uuid, r[0], r[1], r[2]) for r in rows]

    def read_log(self, after: int, limit: int) -> Sequence[tuple[int, str, str, bytes]]:
        # (rowid, originator_id, topic, state), as the table holds them; the
        # state as bytes even if an edit by hand stored it as text
        return self._read(
            "SELECT rowid, originator_id, topic, CAST(state AS BLOB)"  # noqa: S608 - the library's table name
            f" FROM {self.events_table_name} WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (after, limit),
        )

    def count_entries(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM timebank_entry_index", ())[0][0])

    def entry_index_extent(self) -> dict[str, int]:
        rows = self._read(
            "SELECT bank_uuid, MAX(version) FROM timebank_entry_index GROUP BY bank_uuid", ()
        )
        return dict(rows)

    def stream_versions(self) -> dict[str, tuple[int, int]]:
        rows = self._read(
            "SELECT originator_id, COUNT(*), MAX(originator_version)"  # noqa: S608 - the library's table name
            f" FROM {self.events_table_name} GROUP BY originator_id",
            (),
        )
        return {stream: (events, highest) for stream, events, highest in rows}

    def entry_index_page(self, after: str, limit: int) -> Sequence[IndexRow]:
        return self._read(
            "SELECT entry_id, bank_uuid, version, reverses FROM timebank_entry_index"
            " WHERE entry_id > ? ORDER BY entry_id LIMIT ?",
            (after, limit),
        )

    def pending_index(self) -> set[tuple[str, str]]:
        return set(self._read("SELECT entry_id, bank_uuid FROM timebank_pending", ()))

    def settled_index(self) -> set[tuple[str, str, int]]:
        return set(self._read("SELECT entry_id, bank_uuid, version FROM timebank_settled", ()))

    def close_index(self) -> None:
        with self._reader_lock:
            if self._reader_connection is not None:
                self._reader_connection.close()
                self._reader_connection = None


class SqliteProfileStore(ProfileStore):
    """The profile table, on a connection of its own with ``secure_delete``:
    a deleted or replaced profile is overwritten in the file, not unlinked."""

    def __init__(self, factory: SQLiteFactory) -> None:
        self._db_name = factory.datastore.pool.db_name
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = _connect(self._db_name)
            self._connection.execute("PRAGMA secure_delete = ON")
        return self._connection

    def put(self, member_id: str, profile: Profile) -> None:
        with self._lock, _store_file(self._db_name):
            self._db().execute(_PROFILE_UPSERT, (member_id, *attrs.astuple(profile)))

    def get(self, member_id: str) -> Profile | None:
        with self._lock, _store_file(self._db_name):
            row = (
                self._db()
                .execute(
                    "SELECT display_name, email, phone, area FROM timebank_profiles"
                    " WHERE member_id = ?",
                    (member_id,),
                )
                .fetchone()
            )
        return None if row is None else Profile(*row)

    def get_many(self, member_ids: Sequence[str]) -> dict[str, Profile]:
        found: dict[str, Profile] = {}
        with self._lock, _store_file(self._db_name):
            for start in range(0, len(member_ids), IDS_PER_QUERY):
                part = tuple(member_ids[start : start + IDS_PER_QUERY])
                rows = self._db().execute(
                    "SELECT member_id, display_name, email, phone, area FROM timebank_profiles"  # noqa: S608 - marks only
                    f" WHERE member_id IN ({','.join('?' * len(part))})",
                    part,
                )
                found.update((row[0], Profile(*row[1:])) for row in rows)
        return found

    def all(self) -> list[tuple[str, Profile]]:
        with self._lock, _store_file(self._db_name):
            rows = self._db().execute(
                "SELECT member_id, display_name, email, phone, area FROM timebank_profiles"
                " ORDER BY member_id"
            )
            return [(row[0], Profile(*row[1:])) for row in rows]

    def purge(self) -> bool:
        """Checkpoint the write-ahead log into the file and empty it, so that
        no earlier page of the profile table is left in the ``-wal`` file;
        false if other connections still read it after ERASE_CHECKPOINT_S.

        The checkpoint waits for them in SQLite's busy handler, for the
        connection's busy timeout, set to that wait for the checkpoint alone."""
        with self._lock, _store_file(self._db_name):
            db = self._db()
            db.execute(f"PRAGMA busy_timeout = {round(ERASE_CHECKPOINT_S * 1000)}")
            try:
                busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            finally:
                db.execute(f"PRAGMA busy_timeout = {LOCK_TIMEOUT_S * 1000}")
        return not busy

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class SqliteSnapshotRecorder(SQLiteAggregateRecorder):
    """The library's snapshot recorder, which can also delete a stream's
    earlier snapshots."""

    def delete_before(self, originator_id: UUID, version: int, limit: int) -> None:
        table = self.events_table_name
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"DELETE FROM {table} WHERE originator_id = ?"  # noqa: S608 - the library's table name
                f" AND originator_version IN (SELECT originator_version FROM {table}"
                " WHERE originator_id = ? AND originator_version < ?"
                " ORDER BY originator_version LIMIT ?)",
                (_hex(originator_id), _hex(originator_id), version, limit),
            )

    def replace(self, snapshot: StoredEvent) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"DELETE FROM {self.events_table_name}"  # noqa: S608 - the library's table name
                " WHERE originator_id = ? AND originator_version = ?",
                (_hex(snapshot.originator_id), snapshot.originator_version),
            )
            self._insert_events(c, [snapshot])


class _SqliteFactory(SQLiteFactory):
    application_recorder_class = SqliteRecorder
    aggregate_recorder_class = SqliteSnapshotRecorder


class SqliteBackend(Backend):
    """A SQLite file. ``path`` may be relative to the working directory.

    Writers take turns through an exclusive lock on ``PATH.lock`` (an
    ``flock``, released by the system if the process dies), held from the
    moment a command reads the bank until its transaction commits: SQLite
    has one writer at a time anyway, and a writer that read stale state
    would only conflict and retry. Without ``fcntl`` (Windows) writers rely
    on optimistic concurrency and its retries alone.
    """

    def __init__(self, url: str, path: Path, *, create: bool = True) -> None:
        check_sqlite_version()
        self.url = url
        self.path = path
        self._create = create
        self._lock_file: Any = None

    @property
    def file(self) -> Path:
        """The store's own file: ``path``, or the file it links to when it is
        a symbolic link, as SQLite follows it to put ``-wal`` and ``-shm``
        beside that file. The lock, the read model and a restore go by it,
        so that a link and the file are one store (docs/storage.md, SQLite);
        a path that is no link stays as given, for the messages that name
        it (a linked directory on the way changes no file's place in it)."""
        return self.path.resolve() if self.path.is_symlink() else self.path

    @property
    def reopen_url(self) -> str:
        return f"sqlite:///{self.path.resolve()}"  # from any working directory

    def factory(self, env: Any) -> InfrastructureFactory[Any]:
        create_with_mode(self.path, PRIVATE_MODE)  # a new store: its owner's alone
        # In WAL before the library's connections ask for it, each with a
        # pragma that fails at once where another process is switching a new
        # store (into_wal); on a file already in WAL theirs changes nothing.
        uri = self.path.resolve().as_uri()
        try:
            with closing(_connect(uri)) as conn:
                mark = self._checked(conn)  # before anything is written to the file
                into_wal(conn, LOCK_TIMEOUT_S, f"the store at {self.url}", self.url)
                if mark:
                    with _transaction(conn):
                        conn.execute(store_format.create_sql(store_format.TABLE))
                        conn.execute(
                            store_format.upsert_sql(store_format.TABLE, "?"),
                            store_format.this_release(),
                        )
        except sqlite3.DatabaseError as e:
            failure = self._not_allowed(e)
            if failure is None:
                raise
            raise failure from None
        env[_SqliteFactory.SQLITE_DBNAME] = uri
        env[_SqliteFactory.SQLITE_LOCK_TIMEOUT] = str(LOCK_TIMEOUT_S)
        return _SqliteFactory(env)

    def _not_allowed(self, error: sqlite3.DatabaseError) -> StorageError | None:
        """When SQLite could not open or write the store (a user other than
        the store's owner, a read-only mount), a ``StorageError`` that says
        what this user cannot do, and what to do: SQLite's own words
        ("attempt to write a readonly database", "unable to open database
        file") said neither. ``None`` when the user may do all it needs, or
        when even that cannot be found out (a directory it may not enter)."""
        name = str(getattr(error, "sqlite_errorname", ""))
        if not name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
            return None
        file, directory = self.file, self.file.resolve().parent
        try:
            cannot = []
            if file.exists():
                on_file = [what for what, mode in (("read", os.R_OK), ("write", os.W_OK))
                           if not os.access(file, mode)]  # fmt: skip
                if on_file:
                    cannot.append(f"{' or '.join(on_file)} {file}")
            if not os.access(directory, os.W_OK | os.X_OK):
                cannot.append(f"write in its directory {directory}")
            cure = (
                f"run as the store's owner ({_user(file.stat().st_uid)}), or let this user read"
                " and write both"
                if file.exists()
                else "make the store in a directory this user may write"
            )
        except OSError:
            return None
        if not cannot:
            return None
        return StorageError(
            f"cannot use the store {self.url}: {error}: this process's user ({_user(os.geteuid())})"
            f" cannot {', and cannot '.join(cannot)}, which SQLite needs even to read a store"
            f" (its -wal and -shm files go beside it): {cure} (docs/storage.md, Who can read"
            " the files)",
            url=self.url,
        )

    def _checked(self, conn: sqlite3.Connection) -> bool:
        """Refuse a file that holds another application's tables and no
        store (``StorageError``), or no store when opened only to read
        (``StoreNotFound``), or a store of a later format
        (``StoreFormatTooNew``); whether this open should write the store's
        format row (docs/storage.md, "The store's format")."""
        tables = {
            str(name)
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not str(name).startswith("sqlite_")
        }
        foreign = sorted(
            t for t in tables if t not in _LIBRARY_TABLES and not t.startswith("timebank_")
        )
        # (a store that someone added a table to, a search index say, is
        # still a store, and opens)
        if foreign and "stored_events" not in tables:
            if "rm_position" in tables:  # the read model beside a store, named by mistake
                raise StorageError(
                    f"{self.path} is the read model of a store, not a store: name the store"
                    " itself (timebank.db for timebank.reports.db)",
                    url=self.url,
                )
            shown = ", ".join(foreign[:5]) + (
                f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            )
            raise StorageError(
                f"{self.path} is not a timebank store: it holds another application's tables"
                f" ({shown}), and timebank keeps its store in a file of its own (a backup copies"
                " and a restore replaces the whole file): name a new file",
                url=self.url,
            )
        if "stored_events" not in tables and not self._create:
            raise StoreNotFound(
                f"no timebank store at {self.path} ({self.url}): the file holds none", url=self.url
            )
        row = None
        if store_format.TABLE in tables:
            row = conn.execute(store_format.select_sql(store_format.TABLE)).fetchone()
        return store_format.checked(self.url, row) and self._create

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        if self._lock_file is None:
            lock = Path(f"{self.file}.lock")
            create_with_mode(lock, mode_of(self.path))  # open to whoever may write the store
            try:
                self._lock_file = lock.open("a")  # kept open
            except OSError as e:  # a directory this process may not write, say
                raise StorageError(
                    f"cannot open the write lock {lock} of {self.url}: {e.strerror or e}",
                    url=self.url,
                ) from None
        fd = self._lock_file.fileno()
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        pause = 0.0002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise write_lock_timed_out(self.url, LOCK_TIMEOUT_S) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.005)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def backup(self, dest: Path) -> tuple[int, int]:
        """Copy the store with SQLite's online backup, in one read transaction
        (a consistent copy while other processes write), into ``DEST.part``;
        check it (``integrity_check``, a timebank store's tables), sync it,
        and rename it to ``dest``. Returns its bytes and events. Nothing is
        left at ``dest`` or beside it if any step fails."""
        if dest.exists():  # the store's own file among them
            raise BackupRefused(
                f"{dest} exists: back up to a new file (a dated name, say)", url=self.url
            )
        part = dest.with_name(f"{dest.name}.part")
        store = self.path.resolve().as_uri()
        try:
            _discard(part)  # left by a backup that was killed
            create_with_mode(part, mode_of(self.path))  # as open as the store, no more
            source = _connect(f"{store}?mode=ro")
            with closing(source), closing(sqlite3.connect(part)) as copy:
                try:
                    source.backup(copy)  # every page in one step: one snapshot
                except sqlite3.DatabaseError as e:
                    if not is_write_failure(e):  # else the copy's (the store is read only)
                        _raise_store_failure(e, store)
                    raise
                events = _checked_copy(copy, dest)
            with part.open("rb") as written:
                os.fsync(written.fileno())
            os.replace(part, dest)
            _sync_directory(dest.parent)
        except (sqlite3.DatabaseError, OSError) as e:
            raise StorageError(f"cannot write the backup {dest}: {e}", url=self.url) from None
        finally:
            _discard(part)
        return dest.stat().st_size, events

    def restore(self, backup: Path) -> tuple[int, Path | None]:
        """See :func:`_restore` (docs/storage.md, Restoring)."""
        return _restore(backup, self.file, self.read_model_path, self.url)

    def read_model_db(self) -> ReadModelDB:
        """``STORE.reports.db`` beside the store's file (``timebank.db`` ->
        ``timebank.reports.db``), as open as the store."""
        create_with_mode(self.read_model_path, mode_of(self.path))
        return SqliteReadModelDB(self.read_model_path)

    @property
    def read_model_path(self) -> Path:
        return self.file.with_name(f"{self.file.stem}.reports.db")

    def profiles(self, factory: InfrastructureFactory[Any]) -> ProfileStore:
        if not isinstance(factory, SQLiteFactory):
            raise TypeError(f"expected the SQLite factory, got {factory!r}")
        return SqliteProfileStore(factory)
