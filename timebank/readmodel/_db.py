"""Where a read model lives: a SQLite database (with sqlite-utils) or
tables in the store's PostgreSQL schema. Both speak the same SQL (written
with ``?`` placeholders); this module hides the few differences."""

from __future__ import annotations

import abc
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from timebank.domain.errors import StorageError
from timebank.storage._sqlite_failures import check_sqlite_version, into_wal, raise_file_failure

__all__ = ["PostgresReadModelDB", "ReadModelDB", "SqliteReadModelDB"]

#: Seconds a catch-up waits for another process's catch-up to finish.
BUSY_TIMEOUT_S = 30
#: Seconds a rebuild on PostgreSQL waits for other transactions that have
#: read the read model's tables to end.
TABLES_LOCK_S = 5
#: Milliseconds of one try at taking them: the longest that the reads of
#: other processes queue behind it.
TABLES_LOCK_TRY_MS = 200
#: What to do about a damaged read model file.
_CURE = "It holds nothing the event log does not: delete the file and the next report rebuilds it"


class ReadModelDB(abc.ABC):
    """A connection to the read model's tables."""

    #: ``sqlite`` or ``postgresql``.
    dialect: str
    #: Where it is, for messages (no password).
    location: str

    @abc.abstractmethod
    def exclusive(self) -> Any:
        """A context manager: one transaction, with every other writer of
        this read model kept out until it commits (or rolls back)."""

    @abc.abstractmethod
    def snapshot(self) -> Any:
        """A context manager: one read-only transaction, in which every read
        sees the same committed state."""

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; the rows it returns, if any."""

    @abc.abstractmethod
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def insert_rows(self, table: str, width: int, rows: Iterable[Sequence[Any]]) -> None:
        """Insert whole rows of ``width`` values (every column, in order)
        into ``table``, which has no conflicting key."""
        self.executemany(
            f"INSERT INTO {table} VALUES ({', '.join('?' * width)})",  # noqa: S608 - fixed names
            rows,
        )

    def upsert_rows(
        self, table: str, width: int, conflict: str, rows: Iterable[Sequence[Any]]
    ) -> None:
        """Insert whole rows of ``width`` values into ``table``; ``conflict``
        (``ON CONFLICT (key) DO UPDATE SET ...``, reading ``excluded``) says
        what a row whose key is there already does instead. No two of the
        rows may share a key. Inside :meth:`exclusive`."""
        self.executemany(
            f"INSERT INTO {table} VALUES ({', '.join('?' * width)}) {conflict}",  # noqa: S608 - fixed names
            rows,
        )

    def take_tables(self, tables: Sequence[str]) -> None:  # noqa: B027 - optional hook
        """Inside :meth:`exclusive`, before a rebuild drops ``tables``: have
        them to itself, once other transactions that read them end. Nothing
        on SQLite, where the readers of a WAL file keep their snapshot of a
        dropped table."""

    def drop_indexes(self, names: Sequence[str]) -> None:
        """Inside :meth:`exclusive`: drop the indexes ``names`` (those of an
        earlier release that another replaces) where they are. On
        PostgreSQL an index its table's readers keep (a transaction left
        open) is left for a later catch-up."""
        for name in names:
            self.execute(f"DROP INDEX IF EXISTS {name}")

    def analyze(self, tables: Iterable[str]) -> None:  # noqa: B027 - optional hook
        """Refresh the planner's statistics of ``tables`` after a large
        catch-up. Nothing on SQLite: its plans here were chosen, and are
        measured, without statistics, and ``ANALYZE`` would change them."""

    @abc.abstractmethod
    def table_names(self) -> list[str]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""


#: Helper threads SQLite may use for one large sort (``PRAGMA threads``).
SORT_THREADS = min(4, os.cpu_count() or 1)
#: Pages of write-ahead log (4 KB each) after which a commit checkpoints it.
WAL_CHECKPOINT_PAGES = 25_000


class SqliteReadModelDB(ReadModelDB):
    """A SQLite file (or ``:memory:``), opened with sqlite-utils so that the
    same ``Database`` object answers ad-hoc queries (``.db.query(...)``)."""

    dialect = "sqlite"

    def __init__(self, path: Path | None) -> None:
        check_sqlite_version()
        self.path = path
        self.location = str(path) if path is not None else ":memory:"
        conn = sqlite3.connect(
            self.location, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
        )
        try:
            with self._readable():
                if path is not None:
                    into_wal(conn, BUSY_TIMEOUT_S, f"the read model {self.location}", self.location)
                self._configure(conn, path)
        except BaseException:
            conn.close()
            raise
        self.conn = conn
        #: sqlite-utils' view of the same connection (table listing, queries).
        self.db = sqlite_utils.Database(conn)

    @staticmethod
    def _configure(conn: sqlite3.Connection, path: Path | None) -> None:
        if path is not None:
            # Checkpoint every ~100 MB of WAL rather than every 4 MB: a batch
            # of a catch-up rewrites pages all over the aggregate tables, and
            # checkpointing after nearly every batch took 25 s of a 92 s
            # million-event rebuild (77 s with this; measured back to back).
            # The WAL goes back into the file when the last connection closes.
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        # A read model is rebuilt from the log after a crash that loses its
        # last commits, but a torn file must not happen: NORMAL is safe in WAL.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=OFF")
        # 64 MB of page cache: a catch-up of a large store updates pages all
        # over the aggregate tables (measured: the default 2 MB made catching
        # up a million entries I/O-bound).
        conn.execute("PRAGMA cache_size=-65536")
        # Helper threads for SQLite's large sorts: building the report
        # indexes at the end of a catch-up from empty (4.4 s to 3.6 s of a
        # million-event one) and the GROUP BY of member activity or the
        # figures by area over a long period (3.5 s to 2.9 s), measured on
        # two cores; building the largest index took 47 MB more at its peak
        # (190 MB against 143 MB). SQLite uses them only for large sorts.
        conn.execute(f"PRAGMA threads={SORT_THREADS}")

    @contextmanager
    def _readable(self) -> Iterator[None]:
        """The file's own failures as one named error: damaged or not SQLite
        (the read model holds only what the log gives, so deleting it is the
        cure), or unreadable, unwritable, full. Other errors pass as they are."""
        try:
            yield
        except sqlite3.DatabaseError as e:
            raise_file_failure(e, f"the read model {self.location}", _CURE, self.location)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        # SQLite waits for another writer's turn itself, up to the connection's
        # timeout (BUSY_TIMEOUT_S); a turn that does not come by then is an error.
        try:
            with self._readable():
                self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise StorageError(
                f"cannot write the read model {self.location}: {e}", url=self.location
            ) from None
        try:
            yield
            with self._readable():
                self.conn.execute("COMMIT")
        except BaseException:
            # SQLite may already have rolled back (it does on a full disk or
            # an I/O error), and a ROLLBACK then would fail and hide the error.
            if self.conn.in_transaction:
                with self._readable():
                    self.conn.execute("ROLLBACK")
            raise

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        with self._readable():
            self.conn.execute("BEGIN")  # deferred: reads only, from its first read on
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._readable():
            return self.conn.execute(sql, tuple(params)).fetchall()

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._readable():
            self.conn.executemany(sql, rows)

    def table_names(self) -> list[str]:
        with self._readable():
            return self.db.table_names()

    def close(self) -> None:
        self.conn.close()


@contextmanager
def _lock_waits_at_most(conn: Any, ms: int) -> Iterator[None]:
    """Inside a PostgreSQL transaction: a lock that the block's statements
    ask for is waited for ``ms`` at most (``lock_timeout``, set for this
    transaction only), then the connection's own setting again. Not put back
    when the block fails: its transaction is then rolled back, and the
    setting with it."""
    conn.execute(f"SET LOCAL lock_timeout = '{ms}ms'")
    yield
    conn.execute("SET LOCAL lock_timeout TO DEFAULT")


def _one_try(conn: Any, statement: str) -> bool:
    """Inside :func:`_lock_waits_at_most`: ``statement`` on a savepoint of
    the open PostgreSQL transaction, or False, having done nothing (rolled
    back to the savepoint), when a lock it asks for was not had in time."""
    import psycopg  # noqa: PLC0415 - the optional extra timebank[postgres]

    try:
        with conn.transaction():
            conn.execute(statement)
    except psycopg.errors.LockNotAvailable:
        return False
    return True


class PostgresReadModelDB(ReadModelDB):
    """Tables beside the event store's, in its PostgreSQL schema, on a
    connection of their own. A connection the server dropped (a restart, a
    failover, an idle timeout) is opened again: at once where nothing was
    under way (a transaction's start, a statement outside one), else at the
    next call, the call that lost it failing with ``storage_error``."""

    dialect = "postgresql"

    def __init__(self, connect: Callable[[], Any], schema: str, location: str) -> None:
        self._connect = connect
        self.schema = schema
        self.location = location
        self._types: dict[str, tuple[str, ...]] = {}
        self.conn = self._open()

    def _open(self) -> Any:
        # An autocommit connection: exclusive() and snapshot() open the only
        # transactions.
        conn = self._connect()
        conn.execute(f'SET search_path TO "{self.schema}"')
        return conn

    def _live(self) -> Any:
        """The connection; a new one if the server dropped it."""
        if self.conn.closed or self.conn.broken:
            self.conn.close()
            self.conn = self._open()
        return self.conn

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        """A lost connection (the next call reconnects), or another operational
        failure, as one named error."""
        import psycopg  # noqa: PLC0415 - the optional extra timebank[postgres]

        try:
            yield
        except psycopg.OperationalError as e:
            lost = self.conn.closed or self.conn.broken  # else: a timeout, a cancel
            what = "lost the read model's connection to" if lost else "the read model failed at"
            raise StorageError(
                f"{what} {self.location}: {' '.join(str(e).split())}", url=self.location
            ) from None
        except psycopg.DataError as e:  # a value of the log its columns refuse (a NUL in text)
            raise StorageError(
                f"the read model at {self.location} cannot take a value of the event log:"
                f" {' '.join(str(e).split())}",
                url=self.location,
            ) from None

    def _again_if_dropped(self, run: Callable[[Any], Any]) -> Any:
        """``run(connection)`` where nothing is under way; once more on a new
        connection if the server had dropped this one."""
        import psycopg  # noqa: PLC0415

        conn = self._live()
        try:
            return run(conn)
        except psycopg.OperationalError:
            if not conn.broken:
                raise
            return run(self._live())

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with contextlib.ExitStack() as stack:
            conn = self._again_if_dropped(lambda c: (stack.enter_context(c.transaction()), c)[1])
            yield conn

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        import psycopg  # noqa: PLC0415 - the optional extra timebank[postgres]

        with self._reachable(), self._transaction() as conn:
            # One catch-up at a time: the others wait here, then see the
            # position the first one committed; up to BUSY_TIMEOUT_S, as on
            # SQLite (without it, behind a catch-up stopped in its
            # transaction, every report of every process waited for ever)
            with _lock_waits_at_most(conn, round(BUSY_TIMEOUT_S * 1000)):
                try:
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_key,))
                except psycopg.errors.LockNotAvailable:
                    raise StorageError(
                        f"cannot write the read model {self.location}: another process has had"
                        f" its turn for {BUSY_TIMEOUT_S:g} s (catching it up)",
                        url=self.location,
                    ) from None
            yield

    def drop_indexes(self, names: Sequence[str]) -> None:
        # Dropping an index locks its table against every reader, once the
        # readers it finds have ended; meanwhile the reads of every other
        # process queue behind it. Behind a transaction left open (a long
        # export, a query tool) the catch-up and every report waited for
        # ever. So one short try each, on a savepoint; an index is first
        # looked for in the catalog, which locks nothing.
        conn = self.conn
        for name in names:
            (found,) = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
            if found:
                with _lock_waits_at_most(conn, TABLES_LOCK_TRY_MS):
                    # not dropped while a reader holds its table: a later catch-up drops it
                    _one_try(conn, f"DROP INDEX IF EXISTS {name}")

    def take_tables(self, tables: Sequence[str]) -> None:
        if not tables:
            return
        # Taken in short tries, each given up (rolled back to its savepoint)
        # when it does not get them all: a lock asked for queues the reads of
        # every other process behind it, and one held while another was
        # asked for could deadlock with a report reading table after table.
        # Without a bound, behind a transaction left open it waited for ever.
        conn = self.conn
        deadline = time.monotonic() + TABLES_LOCK_S
        lock = f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE"
        with _lock_waits_at_most(conn, TABLES_LOCK_TRY_MS):
            while not _one_try(conn, lock):
                if time.monotonic() >= deadline:
                    raise StorageError(
                        f"cannot rebuild the read model {self.location}: another process"
                        f" has been reading its tables for {TABLES_LOCK_S:g} s (a long"
                        " export, or a transaction left open)",
                        url=self.location,
                    )
                time.sleep(TABLES_LOCK_TRY_MS / 2000)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        with self._reachable(), self._transaction() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield

    @property
    def _lock_key(self) -> str:
        return f"timebank:readmodel:{self.schema}"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        def run(conn: Any) -> list[tuple[Any, ...]]:
            with conn.cursor() as cursor:
                cursor.execute(self._sql(sql), tuple(params))
                rows = cursor.fetchall() if cursor.description is not None else []
            return [tuple(row) for row in rows]

        with self._reachable():
            conn = self.conn
            if conn.closed or conn.broken or conn.info.transaction_status == _IDLE:
                return self._again_if_dropped(run)  # type: ignore[no-any-return]
            return run(conn)  # inside a transaction: lost with it if dropped

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._reachable(), self.conn.cursor() as cursor:
            cursor.executemany(self._sql(sql), list(rows))

    def insert_rows(self, table: str, width: int, rows: Iterable[Sequence[Any]]) -> None:  # noqa: ARG002 - the server counts the columns
        """With ``COPY``: the server takes the rows as one stream instead of
        one statement a row (measured: see docs/performance.md)."""
        with (
            self._reachable(),
            self.conn.cursor() as cursor,
            cursor.copy(f"COPY {table} FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def upsert_rows(
        self, table: str, width: int, conflict: str, rows: Iterable[Sequence[Any]]
    ) -> None:
        """One ``INSERT ... SELECT FROM unnest(...)`` of the rows' columns, as
        binary arrays (written by psycopg's C code), instead of one statement
        a row (measured: see docs/performance.md). No staging table, so a
        role without the ``TEMPORARY`` privilege can catch up too."""
        rows = list(rows)
        if not rows:
            return
        types = self._column_types(table)
        if len(types) != width:
            raise ValueError(f"{table} has {len(types)} columns, not {width}")
        arrays = ", ".join(f"%b::{column_type}[]" for column_type in types)
        with self._reachable(), self.conn.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} SELECT * FROM unnest({arrays}) {conflict}",  # noqa: S608
                [list(column) for column in zip(*rows, strict=True)],
            )

    def analyze(self, tables: Iterable[str]) -> None:
        """``ANALYZE``, as PostgreSQL's manual asks after a bulk load: until
        autovacuum gets to new tables the planner guesses, and the first
        reports after a million-event rebuild took up to twice as long
        (measured, with its cost: 0.75 s; docs/performance.md)."""
        for table in tables:
            self.execute(f"ANALYZE {table}")

    def _column_types(self, table: str) -> tuple[str, ...]:
        """The SQL types of ``table``'s columns, in order (asked once)."""
        types = self._types.get(table)
        if types is None:
            rows = self.execute(
                "SELECT data_type FROM information_schema.columns"
                " WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                (self.schema, table),
            )
            types = self._types[table] = tuple(str(r[0]) for r in rows)
        return types

    def table_names(self) -> list[str]:
        rows = self.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
            (self.schema,),
        )
        return sorted(str(r[0]) for r in rows)

    def close(self) -> None:
        self.conn.close()


#: libpq's transaction status of a connection with no transaction open
#: (``psycopg.pq.TransactionStatus.IDLE``, without importing psycopg here).
_IDLE = 0
