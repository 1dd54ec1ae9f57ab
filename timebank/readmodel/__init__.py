"""Read models: tables derived from the event log, for reports and exports.

A :class:`ReadModel` applies each stored event exactly once, in log order,
to plain SQL tables (``rm_*``, documented in docs/reports.md): in a SQLite
file beside a SQLite store (``timebank.db`` -> ``timebank.reports.db``), in
memory for a ``memory://`` store, or in the store's own schema on
PostgreSQL. Each batch of events and the new position commit in one
transaction, so a read model interrupted at any moment resumes where its
last commit left it. It never holds personal data (ids, dates and minutes
only), so erasing a member's profile leaves nothing to erase here.
"""

from __future__ import annotations

import gc
import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from timebank.domain.errors import StoreClosed
from timebank.readmodel._db import PostgresReadModelDB, ReadModelDB, SqliteReadModelDB
from timebank.readmodel._projector import (
    EVERY_ACCOUNT,
    SERVICE_KINDS,
    LogRecord,
    Projector,
    UnknownEvent,
    every_account_waits,
    settle_connections,
    settle_spans,
)
from timebank.readmodel._schema import (
    RETIRED_INDEXES,
    SCHEMA_VERSION,
    TABLES,
    create_statements,
    index_statements,
    upgrade_statements,
)

__all__ = [
    "BATCH_SIZE",
    "SERVICE_KINDS",
    "LogRecord",
    "PostgresReadModelDB",
    "ReadModel",
    "ReadModelDB",
    "SqliteReadModelDB",
    "UnknownEvent",
    "no_cyclic_gc",
]

#: Events applied (and committed) per transaction.
BATCH_SIZE = 20_000

#: Reads stored events after a notification id: ``(after, limit) -> records``.
LogReader = Callable[[int, int], Sequence[LogRecord]]
#: Called with the events applied so far after each committed batch.
Progress = Callable[[int], None]


class ReadModel:
    """The read model of one store. :meth:`catch_up` before reading it (the
    :class:`~timebank.Timebank` report methods do). Its methods may be called
    from several threads: they take turns under ``lock``, a re-entrant one
    (a store's read model is given the store's own, which every call of its
    :class:`~timebank.Timebank` holds), a catch-up one batch at a time, so
    that other calls go on between its batches."""

    def __init__(
        self,
        db: ReadModelDB,
        read_log: LogReader,
        log_end: Callable[[], int] | None = None,
        *,
        lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        self.db = db
        self._read_log = read_log
        self._log_end = log_end
        self._lock = lock if lock is not None else threading.RLock()
        #: Why every call now raises ``StoreClosed``, once closed.
        self._closed: str | None = None

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """One thread at a time: they share the database connection (a
        catch-up in one thread and a report in another interleaved their
        statements on it: "cannot start a transaction within a
        transaction", tables that were not there)."""
        with self._lock:
            if self._closed is not None:
                raise StoreClosed(self._closed, url=self.location)
            yield

    @property
    def location(self) -> str:
        """The SQLite file (or ``:memory:``), or the PostgreSQL URL."""
        return self.db.location

    def position(self) -> int:
        """Notification id of the last event applied (0 when empty)."""
        with self._turn():
            if "rm_position" not in self.db.table_names():
                return 0
            rows = self.db.execute("SELECT notification_id FROM rm_position")
            return int(rows[0][0]) if rows else 0

    def log_end(self) -> int:
        """Notification id of the log's last event (0 when empty)."""
        if self._log_end is None:
            raise TypeError("this read model was opened without the log's end")
        with self._turn():
            return self._log_end()

    def behind(self) -> int:
        """How many events the next catch-up will apply: those recorded since
        the last one, or the whole log when it will rebuild (see
        :meth:`rebuild_reason`)."""
        with self._turn():
            end = self.log_end()
            return end if self.rebuild_reason() is not None else end - self.position()

    def catch_up(self, *, batch_size: int = BATCH_SIZE, progress: Progress | None = None) -> int:
        """Apply every event recorded since the last catch-up; how many.
        ``progress(applied)`` is called after each committed batch.

        Several processes may call it at once: they take turns, and each
        event is applied once (the position is read and written inside the
        same exclusive transaction as the rows). It ends by building the
        report indexes a read model built from empty lacks, and by settling
        the first and last days of the accounts and pairs an applied reversal
        took an exchange from (``rm_stale_activity``, ``rm_stale_pairs``), and
        then the connections of the accounts waiting in
        ``rm_stale_connections``, in one transaction; on PostgreSQL, after a
        batch or more, it also refreshes the planner's statistics.
        """
        with self._turn():
            self._ensure_schema()
        applied = 0
        # The collector stays paused for the whole catch-up, reads included:
        # paused only around each batch's projection, it traversed the batch's
        # rows (still referenced until the next batch replaced them) once it
        # resumed, 9 s of a million-event rebuild (measured). Nothing here
        # makes reference cycles, so nothing waits for it.
        with no_cyclic_gc():
            while True:
                with self._turn(), self.db.exclusive():
                    position = self._followed_position()
                    if position is None:
                        self._drop()  # another log's (a store restored): rebuilt from this one
                        self._create()
                        position = 0
                    records = self._read_log(position, batch_size)
                    if records:
                        banks = {
                            str(s): str(b)
                            for s, b in self.db.execute("SELECT stream, bank FROM rm_banks")
                        }
                        projector = Projector(
                            self.db, banks, every_connection_waits=self._every_waits(position)
                        )
                        projector.apply(records)
                        projector.flush()
                        self.db.execute(
                            "UPDATE rm_position SET notification_id = ?, last_event = ?",
                            (records[-1][0], fingerprint(records[-1])),
                        )
                applied += len(records)
                if progress is not None and records:
                    progress(applied)
                if len(records) < batch_size:
                    break
        with self._turn(), self.db.exclusive():
            self.db.drop_indexes(RETIRED_INDEXES)
            for statement in index_statements():
                self.db.execute(statement)
            settle_spans(self.db)
            settle_connections(self.db)
            if applied >= batch_size:
                self.db.analyze(TABLES)
        return applied

    def _every_waits(self, position: int) -> bool:
        """Whether every account's connections wait for the end of the
        catch-up: from empty, they are computed once from every pair rather
        than queued account by account in each batch."""
        if position == 0:
            self.db.execute(
                "INSERT INTO rm_stale_connections VALUES (?, ?) ON CONFLICT DO NOTHING",
                EVERY_ACCOUNT,
            )
            return True
        return every_account_waits(self.db)

    def rebuild(self, *, batch_size: int = BATCH_SIZE, progress: Progress | None = None) -> int:
        """Drop every table and apply the whole log again; events applied
        (``progress`` as for :meth:`catch_up`)."""
        with self._turn(), self.db.exclusive():
            # made again in the same transaction: another process's catch-up,
            # between two of its batches, finds the tables, empty, at 0
            self._drop()
            self._create()
        return self.catch_up(batch_size=batch_size, progress=progress)

    def tables(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every read-model table, sorted (to compare two read
        models, as the tests do)."""
        with self._turn():
            return {
                name: sorted(self.db.execute(f"SELECT * FROM {name}"), key=_sort_key)  # noqa: S608
                for name in TABLES
            }

    def close(self) -> None:
        """Close the read model's database connection (the store's own
        ``close()`` does it); every call after it raises ``StoreClosed``."""
        with self._lock:
            if self._closed is None:
                self._closed = (
                    f"the read model {self.location} was closed with its store: open the store"
                    " again"
                )
                self.db.close()

    def forget(self, why: str, lock: AbstractContextManager[Any]) -> None:
        """In the child of a fork: every call raises ``StoreClosed`` saying
        ``why``, and the database connection, the parent's too, is left
        open; ``lock`` replaces a lock another thread of the parent may have
        held at the fork."""
        self._lock = lock
        self._closed = why

    def rebuild_reason(self) -> str | None:
        """Why the next catch-up will rebuild this read model from the log
        (one of a schema version it cannot bring up in place, or one that
        applied events the log no longer holds), or ``None``."""
        with self._turn():
            return self._rebuild_reason()

    def _rebuild_reason(self) -> str | None:
        if "rm_position" not in self.db.table_names():
            return None
        ((version,),) = self.db.execute("SELECT schema_version FROM rm_position")
        if version != SCHEMA_VERSION and upgrade_statements(int(version), self.db.dialect) is None:
            return f"its tables are of schema {version}, this version reads {SCHEMA_VERSION}"
        if self._followed_position() is None:
            return "it applied events the log does not hold (a store restored from a backup?)"
        return None

    def _followed_position(self) -> int | None:
        """The read model's position, or ``None`` if the log no longer holds
        there the event it applied last (a store restored from a backup, or
        replaced by another store's file)."""
        ((position, last),) = self.db.execute("SELECT notification_id, last_event FROM rm_position")
        position = int(position)
        if not position:
            return 0
        records = self._read_log(position - 1, 1)
        if records and records[0][0] == position and fingerprint(records[0]) == last:
            return position
        return None

    # --- schema ------------------------------------------------------------------------
    def _ensure_schema(self) -> None:
        with self.db.exclusive():
            if "rm_position" in self.db.table_names():
                version = self.db.execute("SELECT schema_version FROM rm_position")[0][0]
                if version == SCHEMA_VERSION:
                    return
                upgrade = upgrade_statements(int(version), self.db.dialect)
                if upgrade is not None:  # brought up in place; the catch-up settles it
                    for statement in upgrade:
                        self.db.execute(statement)
                    return
                self._drop()  # another version's tables: rebuilt from the log
            self._create()

    def _create(self) -> None:
        for statement in create_statements(self.db.dialect):
            self.db.execute(statement)
        self.db.execute("INSERT INTO rm_position VALUES (1, 0, ?, NULL)", (SCHEMA_VERSION,))

    def _drop(self) -> None:
        existing = set(self.db.table_names())
        names = [name for name in reversed(list(TABLES)) if name in existing]
        self.db.take_tables(names)
        for name in names:
            self.db.execute(f"DROP TABLE {name}")


def fingerprint(record: LogRecord) -> str:
    """What identifies a stored event in ``rm_position.last_event``: its
    stream and a hash of its stored bytes (which hold its timestamp)."""
    return f"{record[1]}:{hashlib.blake2b(record[3], digest_size=16).hexdigest()}"


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch is projected (or the
    log audited, or an import runs): they allocate hundreds of thousands of
    small acyclic objects, and the collector's passes over them cost ~40 %
    of a batch's time (measured; 3 s of a million-entry import)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _sort_key(row: tuple[Any, ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((value is None, str(value)) for value in row)
