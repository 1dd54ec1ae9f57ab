"""PostgreSQL storage: the eventsourcing library's PostgreSQL recorder (psycopg 3,
a connection pool) with timebank's index and profile tables beside the events.

URL: ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME[?schema=S&pool_size=N&connect_timeout=S]``
(``postgres://`` too), and libpq's TCP options ``keepalives_idle``,
``keepalives_interval``, ``keepalives_count`` and ``tcp_user_timeout``
(``TCP_OPTIONS``: on by default, so that a connection the network dropped
without a word fails a call rather than hanging it). Without a password in
the URL, libpq's usual sources apply (``PGPASSWORD``, ``~/.pgpass``). Tables
are created on first use in ``schema`` (default ``public``), which must
exist.
"""

from __future__ import annotations

import re
import select
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from functools import partial
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

import attrs
import psycopg
from eventsourcing.persistence import InfrastructureFactory, PersistenceError, StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresFactory,
)
from psycopg.sql import SQL, Composed, Identifier, Literal

from timebank.domain.errors import StorageError, StoreNotFound, UnsupportedStorageURL
from timebank.readmodel import PostgresReadModelDB, ReadModelDB
from timebank.storage import _format as store_format
from timebank.storage.base import (
    IDS_PER_QUERY,
    INDEX_KWARG,
    Backend,
    BulkInsert,
    IndexedEntry,
    IndexRow,
    IndexUpdate,
    Profile,
    ProfileStore,
    Proposal,
    index_update_from,
    read_log_from_notifications,
    write_lock_timed_out,
)

__all__ = ["PostgresBackend", "parse_postgres_url"]

#: Seconds to wait for a connection before ``storage_error``.
CONNECT_TIMEOUT_S = 5
#: Connections each open store keeps (readers and the writer share them).
POOL_SIZE = 5
#: Seconds a writer waits for another's write lock before ``storage_error``.
LOCK_TIMEOUT_S = 10
#: How long an erasure's rewrite of the profile table waits for other
#: transactions that read the table (as SQLite's ERASE_CHECKPOINT_S): it
#: needs the table to itself, and while it waits, every other reader of the
#: table waits behind it.
ERASE_LOCK_S = 5
#: Ids asked about in one query, as one array parameter: a query is a round
#: trip, and an array has no limit of parameters as SQLite's marks have.
IDS_PER_ARRAY = IDS_PER_QUERY * 20
#: Seconds an import's open transaction may wait between two statements
#: before the server ends it (other transactions: the library's 5). An
#: import writes a part of 5,000 entries at a time and applies the next part
#: in between, under a second at 6,097 entries/s; comparing rows already in
#: the store took 1.2 ms a row, about 6 s a part. Ten minutes leaves room
#: for a slow machine while a hung importer's transaction still ends.
IMPORT_IDLE_S = 600

#: The events table the library names after the application (``timebank``):
#: a schema without it holds no store.
EVENTS_TABLE = "timebank_events"
_PROFILE_FIELDS = ("display_name", "email", "phone", "area")
#: Profiles written, each replacing the member's stored one: its parameters
#: are five arrays (member ids, then each field), a member once.
_PROFILE_UPSERT = (
    "INSERT INTO {schema}.timebank_profiles"
    " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[])"
    " ON CONFLICT (member_id) DO UPDATE SET"
    " display_name = excluded.display_name, email = excluded.email,"
    " phone = excluded.phone, area = excluded.area"
)
#: libpq's TCP settings on every connection a store makes (the pool's, the
#: write lock's, the read model's), each a URL option of the same name. A
#: connection the network dropped without a word (a firewall that forgot
#: it, a failover that moved the server's address, the server's machine
#: switched off) otherwise hung a call: for ever one waiting for its answer,
#: and about 15 minutes one sending (Linux's ``tcp_retries2``). Measured,
#: docs/storage.md: a write on a cut link failed after 30 s, a read waiting
#: for its answer after 70 s. A keepalive a minute also keeps a quiet
#: connection from being forgotten by a firewall that drops idle ones.
TCP_OPTIONS = {
    "keepalives_idle": 60,  # seconds of quiet before the first keepalive
    "keepalives_interval": 10,  # seconds between unanswered keepalives
    "keepalives_count": 3,  # unanswered keepalives that end the connection
    "tcp_user_timeout": 30_000,  # ms sent data may go unacknowledged; 0: the system's
}
_URL_OPTIONS = {"schema", "pool_size", "connect_timeout", *TCP_OPTIONS}
#: The URL's options that are whole numbers, as written (ASCII digits).
_WHOLE_OPTIONS = ("pool_size", "connect_timeout", *TCP_OPTIONS)
_WHOLE = re.compile(r"-?[0-9]+")
#: A schema's name as PostgreSQL keeps an unquoted one.
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def parse_postgres_url(url: str) -> dict[str, str]:
    """The eventsourcing settings a ``postgresql://`` URL names; raises
    :class:`UnsupportedStorageURL` for a malformed one."""
    return _parse(url)[0]


def _parse(url: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The eventsourcing settings a ``postgresql://`` URL names, and libpq's
    TCP settings (``TCP_OPTIONS``, with the URL's values) for every
    connection; raises :class:`UnsupportedStorageURL` for a malformed URL."""
    parts = urlsplit(url)
    options = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(options) - _URL_OPTIONS
    problem = None
    if not parts.hostname or not parts.username:
        problem = "it needs a user and a host: postgresql://user@host:5432/dbname"
    elif not parts.path.strip("/") or "/" in parts.path.strip("/"):
        problem = "it needs one database name: postgresql://user@host:5432/dbname"
    elif "password" in {k.lower() for k in unknown}:
        problem = (
            "a password goes before the @ (postgresql://user:password@host/dbname), or leave"
            " it out and libpq reads PGPASSWORD or ~/.pgpass"
        )
    elif unknown:
        problem = f"unknown options {sorted(unknown)} (known: {sorted(_URL_OPTIONS)})"
    elif options.get("schema") and not _SCHEMA.fullmatch(options["schema"]):
        problem = (
            f"schema {options['schema']!r} must be lower-case letters, digits and '_', starting"
            " with a letter or '_' (up to 63): the eventsourcing library does not quote it"
        )
    elif not_whole := [n for n in _WHOLE_OPTIONS if not _WHOLE.fullmatch(options.get(n, "0"))]:
        # int()'s own words ("invalid literal for int() with base 10") named no option
        problem = "; ".join(f"{n} must be a whole number, not {options[n]!r}" for n in not_whole)
    else:
        try:
            port = parts.port or 5432
            pool_size = int(options.get("pool_size", POOL_SIZE))
            timeout = int(options.get("connect_timeout", CONNECT_TIMEOUT_S))
            tcp = {name: int(options.get(name, usual)) for name, usual in TCP_OPTIONS.items()}
        except ValueError as e:  # the port's
            problem = str(e)
        else:
            if pool_size < 0 or timeout < 1:
                problem = "pool_size must be 0 or more and connect_timeout 1 or more (seconds)"
            elif tcp["tcp_user_timeout"] < 0 or any(
                tcp[name] < 1 for name in TCP_OPTIONS if name.startswith("keepalives")
            ):
                problem = (
                    "keepalives_idle, keepalives_interval and keepalives_count must be 1 or more,"
                    " and tcp_user_timeout 0 or more (milliseconds; 0: the system's own)"
                )
    if problem is not None:
        raise UnsupportedStorageURL(f"invalid PostgreSQL URL {_redacted(url)!r}: {problem}",
                                    url=_redacted(url))  # fmt: skip
    settings = {
        PostgresFactory.POSTGRES_DBNAME: unquote(parts.path.strip("/")),
        PostgresFactory.POSTGRES_HOST: parts.hostname or "",
        PostgresFactory.POSTGRES_PORT: str(port),
        PostgresFactory.POSTGRES_USER: unquote(parts.username or ""),
        PostgresFactory.POSTGRES_PASSWORD: unquote(parts.password or ""),
        PostgresFactory.POSTGRES_SCHEMA: options.get("schema", ""),
        PostgresFactory.POSTGRES_POOL_SIZE: str(pool_size),
        PostgresFactory.POSTGRES_CONNECT_TIMEOUT: str(timeout),
        PostgresFactory.POSTGRES_LOCK_TIMEOUT: "10",
    }
    return settings, {"keepalives": 1, **tcp}


def _redacted(url: str) -> str:
    """``url`` with its password shown as ``***``: the one before the ``@``,
    and one given as a ``password=`` option (which the URL refuses, in a
    message that shows the URL)."""
    parts = urlsplit(url)
    if parts.password is not None:
        url = url.replace(f":{parts.password}@", ":***@", 1)
    if parts.query:
        query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
        url = url.replace(f"?{parts.query}", f"?{query}", 1)
    return url


def _sql(datastore: Any, statement: str, events_table: str = "stored_events") -> Composed:
    """``statement`` with ``{schema}`` and ``{events}`` as quoted identifiers."""
    return SQL(statement).format(
        schema=Identifier(datastore.schema), events=Identifier(events_table)
    )


def _profile_columns(profiles: Iterable[tuple[str, Profile]]) -> list[list[str | None]]:
    """The parameters of :data:`_PROFILE_UPSERT`: a member's last profile."""
    rows = [(member, *attrs.astuple(p)) for member, p in dict(profiles).items()]
    return [list(column) for column in zip(*rows, strict=True)]


def _read(
    datastore: Any, statement: Composed, params: tuple[Any, ...] | dict[str, Any]
) -> list[Any]:
    with datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, params)
        return list(curs.fetchall())


class PostgresIndexRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL recorder, writing timebank's index rows in the
    same transaction as the events (see docs/architecture.md)."""

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        #: Checks, inside a commit's transaction, that the command's write
        #: lock is still held (set by the backend; see PostgresBackend.fence).
        self.fence: Callable[[Any], None] = _no_fence
        self.sql_create_statements.extend(
            self._sql(statement)
            for statement in (
                "CREATE TABLE IF NOT EXISTS {schema}.timebank_entry_index ("
                " entry_id TEXT PRIMARY KEY, bank_uuid UUID NOT NULL,"
                " version BIGINT NOT NULL, reverses TEXT UNIQUE)",
                "CREATE TABLE IF NOT EXISTS {schema}.timebank_postings ("
                " bank_uuid UUID NOT NULL, account TEXT NOT NULL, version BIGINT NOT NULL,"
                " PRIMARY KEY (bank_uuid, account, version))",
                "CREATE TABLE IF NOT EXISTS {schema}.timebank_pending ("
                " entry_id TEXT PRIMARY KEY, bank_uuid UUID NOT NULL)",
                "CREATE TABLE IF NOT EXISTS {schema}.timebank_settled ("
                " entry_id TEXT PRIMARY KEY, bank_uuid UUID NOT NULL, version BIGINT NOT NULL)",
                "CREATE TABLE IF NOT EXISTS {schema}.timebank_profiles ("
                " member_id TEXT PRIMARY KEY,"
                " display_name TEXT, email TEXT, phone TEXT, area TEXT)",
            )
        )

    def _sql(self, statement: str) -> Composed:
        return _sql(self.datastore, statement, self.events_table_name)

    def _create_table(self, curs: Any) -> None:
        # Every open runs them (in turns with other processes' opens:
        # _PostgresFactory). CREATE INDEX IF NOT EXISTS locks its table
        # (SHARE) before it looks for the index, so it waited for any writer
        # between the library's LOCK TABLE and its commit: a long import's
        # whole transaction, and for ever behind a writer stopped there. An
        # index already made is left out (a catalog read locks no table).
        statements = self.sql_create_statements
        schema = self.datastore.schema
        self.sql_create_statements = [s for s in statements if not _index_made(curs, s, schema)]
        try:
            super()._create_table(curs)
        finally:
            self.sql_create_statements = statements

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # The library does nothing for a save without events; the rows given
        # with one (a migration's profiles) are written in a transaction of
        # their own, as the SQLite and memory recorders write them.
        update = index_update_from(kwargs)
        if stored_events or update is None or update == IndexUpdate():  # nothing of its own
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        with self.datastore.transaction(commit=True) as curs:
            self._insert_index_rows(curs, **kwargs)
        return None

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # The events first (the library locks the table, then inserts): a
        # stale writer then fails on the events' unique key, with the
        # IntegrityError that is retried, before any index row is tried.
        super()._insert_stored_events(curs, stored_events, **kwargs)
        # another cursor: the library reads the new notification ids from this one
        with curs.connection.cursor() as index_cursor:
            try:
                self.fence(index_cursor)  # after the table lock: no writer can come between
                self._insert_index_rows(index_cursor, **kwargs)
            except Exception as e:
                # The library catches an exception raised here, commits, and
                # then raises it: the server must fail the transaction first,
                # or the events would be committed without their index rows.
                # (The caller then gets the server's error, which names this.)
                index_cursor.execute(_failing(f"{type(e).__name__}: {e}"))
                raise

    @contextmanager
    def bulk_insert(self) -> Iterator[BulkInsert]:
        # The events of a part go in as four binary arrays of plain values
        # (C code in psycopg's binary build), not as the library's one array
        # of a composite type, which psycopg writes out in Python: that took
        # 17 % of a 100,000-entry import (py-spy). The table is locked and
        # the channel notified as the library does before its own inserts.
        statement = self._sql(
            "INSERT INTO {schema}.{events} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[])"
        )
        with self.datastore.transaction(commit=True) as curs:
            # An import applies its rows between the parts it writes, and
            # compares rows already present with the store, so its open
            # transaction waits on Python for seconds: the library's 5 s limit
            # on an idle transaction made the server end a re-import of
            # 60,000 entries (73.8 s, every row compared) and fail it. The
            # import holds the store's write lock throughout anyway; the limit
            # for its own transaction only is IMPORT_IDLE_S.
            curs.execute(f"SET LOCAL idle_in_transaction_session_timeout = '{IMPORT_IDLE_S}s'")

            def insert(stored_events: Sequence[StoredEvent], index: IndexUpdate) -> None:
                if not stored_events:
                    return
                self._lock_table(curs)
                self.fence(curs)
                self._notify_channel(curs)
                curs.execute(
                    statement,
                    [
                        [e.originator_id for e in stored_events],
                        [e.originator_version for e in stored_events],
                        [e.topic for e in stored_events],
                        [e.state for e in stored_events],
                    ],
                )
                self._insert_index_rows(curs, **{INDEX_KWARG: index})

            yield insert

    def _insert_index_rows(self, curs: Any, **kwargs: Any) -> None:
        update = index_update_from(kwargs)
        if update is None:
            return
        # one statement a table, the rows as binary arrays: executemany sends
        # one statement a row (a 30,000-entry import took 5.5 s that way, 4.4 s
        # this way; without psycopg's C extension, which waits on every row,
        # the difference is several times that)
        if update.entries:
            curs.execute(
                self._sql(
                    "INSERT INTO {schema}.timebank_entry_index SELECT * FROM"
                    " unnest(%b::text[], %b::uuid[], %b::bigint[], %b::text[])"
                ),
                [list(column) for column in zip(*update.entries, strict=True)],
            )
        if update.postings:
            curs.execute(
                self._sql(
                    "INSERT INTO {schema}.timebank_postings SELECT * FROM"
                    " unnest(%b::uuid[], %b::text[], %b::bigint[])"
                ),
                [list(column) for column in zip(*update.postings, strict=True)],
            )
        if update.pending_removed:
            curs.executemany(
                self._sql("DELETE FROM {schema}.timebank_pending WHERE entry_id = %s"),
                [(e,) for e in update.pending_removed],
            )
        if update.pending_added:
            curs.executemany(
                self._sql("INSERT INTO {schema}.timebank_pending VALUES (%s, %s)"),
                list(update.pending_added),
            )
        if update.settled:
            curs.executemany(
                self._sql(
                    "INSERT INTO {schema}.timebank_settled VALUES (%s, %s, %s)"
                    " ON CONFLICT (entry_id) DO UPDATE"
                    " SET bank_uuid = excluded.bank_uuid, version = excluded.version"
                ),
                list(update.settled),
            )
        if update.profiles:
            curs.execute(self._sql(_PROFILE_UPSERT), _profile_columns(update.profiles))
        if update.profiles_erased:
            curs.execute(
                self._sql("DELETE FROM {schema}.timebank_profiles WHERE member_id = ANY(%s)"),
                (list(update.profiles_erased),),
            )

    def _read(self, statement: str, params: tuple[Any, ...] | dict[str, Any]) -> list[Any]:
        return _read(self.datastore, self._sql(statement), params)

    def change_token(self) -> object:
        return self._read("SELECT max(notification_id) AS m FROM {schema}.{events}", ())[0]["m"]

    def recorded_entry_ids(self, entry_ids: Sequence[str]) -> set[str]:
        return self._ids_in(("timebank_entry_index",), entry_ids)

    def proposal_ids(self, entry_ids: Sequence[str]) -> set[str]:
        return self._ids_in(("timebank_pending", "timebank_settled"), entry_ids)

    def _ids_in(self, tables: tuple[str, ...], entry_ids: Sequence[str]) -> set[str]:
        """Those of ``entry_ids`` that any of the index ``tables`` holds."""
        found: set[str] = set()
        query = " UNION ALL ".join(
            f"SELECT entry_id FROM {{schema}}.{table} WHERE entry_id = ANY(%(ids)s)"  # noqa: S608 - our tables
            for table in tables
        )
        for start in range(0, len(entry_ids), IDS_PER_ARRAY):
            rows = self._read(query, {"ids": list(entry_ids[start : start + IDS_PER_ARRAY])})
            found.update(row["entry_id"] for row in rows)
        return found

    def find_entry(self, entry_id: str) -> IndexedEntry | None:
        rows = self._read(
            "SELECT bank_uuid, version, reverses,"
            " (SELECT r.entry_id FROM {schema}.timebank_entry_index r"
            "  WHERE r.reverses = i.entry_id) AS reversed_by"
            " FROM {schema}.timebank_entry_index i WHERE entry_id = %s",
            (entry_id,),
        )
        if not rows:
            return None
        row = rows[0]
        return IndexedEntry(
            entry_id, row["bank_uuid"], row["version"], row["reverses"], row["reversed_by"]
        )

    def find_entries(
        self, entry_ids: Sequence[str]
    ) -> list[tuple[IndexedEntry, StoredEvent | None]]:
        found: list[tuple[IndexedEntry, StoredEvent | None]] = []
        for start in range(0, len(entry_ids), IDS_PER_ARRAY):
            rows = self._read(
                "SELECT i.entry_id, i.bank_uuid, i.version, i.reverses,"
                " (SELECT r.entry_id FROM {schema}.timebank_entry_index r"
                "  WHERE r.reverses = i.entry_id) AS reversed_by, e.topic, e.state"
                " FROM {schema}.timebank_entry_index i LEFT JOIN {schema}.{events} e"
                " ON e.originator_id = i.bank_uuid AND e.originator_version = i.version"
                " WHERE i.entry_id = ANY(%(ids)s)",
                {"ids": list(entry_ids[start : start + IDS_PER_ARRAY])},
            )
            for row in rows:
                bank, version = row["bank_uuid"], row["version"]
                indexed = IndexedEntry(
                    row["entry_id"], bank, version, row["reverses"], row["reversed_by"]
                )
                state = row["state"]
                topic = row["topic"]
                stored = None if state is None else StoredEvent(bank, version, topic, bytes(state))
                found.append((indexed, stored))
        return found

    def find_proposal(self, entry_id: str) -> Proposal | None:
        rows = self._read(
            "SELECT bank_uuid, NULL::bigint AS version FROM {schema}.timebank_pending"
            " WHERE entry_id = %(id)s UNION ALL SELECT bank_uuid, version"
            " FROM {schema}.timebank_settled WHERE entry_id = %(id)s",
            {"id": entry_id},
        )
        return Proposal.first_of([(row["bank_uuid"], row["version"]) for row in rows])

    def select_postings(
        self, bank_uuid: UUID, account: str, *, limit: int
    ) -> Sequence[StoredEvent]:
        rows = self._read(
            "SELECT e.originator_version, e.topic, e.state"
            " FROM {schema}.timebank_postings p JOIN {schema}.{events} e"
            " ON e.originator_id = p.bank_uuid AND e.originator_version = p.version"
            " WHERE p.bank_uuid = %s AND p.account = %s ORDER BY p.version LIMIT %s",
            (bank_uuid, account, limit),
        )
        return [
            StoredEvent(bank_uuid, r["originator_version"], r["topic"], bytes(r["state"]))
            for r in rows
        ]

    def read_log(self, after: int, limit: int) -> Sequence[tuple[int, str, str, bytes]]:
        return read_log_from_notifications(self, after, limit)

    def count_entries(self) -> int:
        return int(
            self._read("SELECT count(*) AS n FROM {schema}.timebank_entry_index", ())[0]["n"]
        )

    def entry_index_extent(self) -> dict[str, int]:
        rows = self._read(
            "SELECT bank_uuid, max(version) AS top FROM {schema}.timebank_entry_index"
            " GROUP BY bank_uuid",
            (),
        )
        return {row["bank_uuid"].hex: row["top"] for row in rows}

    def stream_versions(self) -> dict[str, tuple[int, int]]:
        rows = self._read(
            "SELECT originator_id, count(*) AS events, max(originator_version) AS highest"
            " FROM {schema}.{events} GROUP BY originator_id",
            (),
        )
        return {row["originator_id"].hex: (row["events"], row["highest"]) for row in rows}

    def entry_index_page(self, after: str, limit: int) -> Sequence[IndexRow]:
        rows = self._read(
            "SELECT entry_id, bank_uuid, version, reverses FROM {schema}.timebank_entry_index"
            " WHERE entry_id > %s ORDER BY entry_id LIMIT %s",
            (after, limit),
        )
        return [(r["entry_id"], r["bank_uuid"].hex, r["version"], r["reverses"]) for r in rows]

    def pending_index(self) -> set[tuple[str, str]]:
        rows = self._read("SELECT entry_id, bank_uuid FROM {schema}.timebank_pending", ())
        return {(row["entry_id"], row["bank_uuid"].hex) for row in rows}

    def settled_index(self) -> set[tuple[str, str, int]]:
        rows = self._read("SELECT entry_id, bank_uuid, version FROM {schema}.timebank_settled", ())
        return {(row["entry_id"], row["bank_uuid"].hex, row["version"]) for row in rows}

    def close_index(self) -> None:
        """The pool is closed with the datastore."""


class PostgresProfileStore(ProfileStore):
    """The profile table. Erasure deletes the row, then rewrites the table
    (``VACUUM FULL``) so that its files hold no copy of the old values."""

    def __init__(self, datastore: Any) -> None:
        self._datastore = datastore

    def put(self, member_id: str, profile: Profile) -> None:
        with self._datastore.transaction(commit=True) as curs:
            curs.execute(
                _sql(self._datastore, _PROFILE_UPSERT), _profile_columns([(member_id, profile)])
            )

    def get(self, member_id: str) -> Profile | None:
        statement = _sql(
            self._datastore,
            "SELECT display_name, email, phone, area FROM {schema}.timebank_profiles"
            " WHERE member_id = %s",
        )
        rows = _read(self._datastore, statement, (member_id,))
        return None if not rows else Profile(*(rows[0][f] for f in _PROFILE_FIELDS))

    def get_many(self, member_ids: Sequence[str]) -> dict[str, Profile]:
        statement = _sql(
            self._datastore,
            "SELECT member_id, display_name, email, phone, area FROM {schema}.timebank_profiles"
            " WHERE member_id = ANY(%s)",
        )
        found: dict[str, Profile] = {}
        for start in range(0, len(member_ids), IDS_PER_ARRAY):
            rows = _read(
                self._datastore, statement, (list(member_ids[start : start + IDS_PER_ARRAY]),)
            )
            found.update((r["member_id"], Profile(*(r[f] for f in _PROFILE_FIELDS))) for r in rows)
        return found

    def all(self) -> list[tuple[str, Profile]]:
        statement = _sql(
            self._datastore,
            "SELECT member_id, display_name, email, phone, area FROM {schema}.timebank_profiles"
            " ORDER BY member_id",
        )
        rows = _read(self._datastore, statement, ())
        return [(r["member_id"], Profile(*(r[f] for f in _PROFILE_FIELDS))) for r in rows]

    def purge(self) -> bool:
        """Rewrite the profile table (``VACUUM FULL``), so that its files hold
        no row version of a deleted or replaced profile; false if it could
        not have the table to itself within ERASE_LOCK_S (another
        transaction reading it), or failed.

        Without that bound it waited for as long as any other process's
        transaction that had read a profile stayed open (a long export, an
        idle connection), and every other reader of profiles waited behind
        it (a ``VACUUM`` cannot run in a transaction, so the wait is set for
        the connection and put back after)."""
        with self._datastore.get_connection() as conn:
            conn.autocommit = True
            usual = None
            try:
                # (the library's connections give rows as dicts)
                setting = conn.execute("SELECT current_setting('lock_timeout') AS usual")
                usual = setting.fetchone()["usual"]
                conn.execute(f"SET lock_timeout = '{round(ERASE_LOCK_S * 1000)}ms'")
                conn.execute(_sql(self._datastore, "VACUUM FULL {schema}.timebank_profiles"))
                complete = True
            except psycopg.Error:
                complete = False
            finally:
                if usual is not None:  # (on a broken connection: the pool replaces it)
                    with suppress(psycopg.Error):
                        conn.execute(SQL("SET lock_timeout = {}").format(Literal(usual)))
                conn.autocommit = False
        return complete


class PostgresSnapshotRecorder(PostgresAggregateRecorder):
    """The library's snapshot recorder, which can also delete a stream's
    earlier snapshots."""

    def delete_before(self, originator_id: UUID, version: int, limit: int) -> None:
        statement = _sql(
            self.datastore,
            "DELETE FROM {schema}.{events} WHERE originator_id = %s"
            " AND originator_version IN (SELECT originator_version FROM {schema}.{events}"
            " WHERE originator_id = %s AND originator_version < %s"
            " ORDER BY originator_version LIMIT %s)",
            self.events_table_name,
        )
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(statement, (originator_id, originator_id, version, limit))

    def replace(self, snapshot: StoredEvent) -> None:
        statement = _sql(
            self.datastore,
            "DELETE FROM {schema}.{events} WHERE originator_id = %s AND originator_version = %s",
            self.events_table_name,
        )
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(statement, (snapshot.originator_id, snapshot.originator_version))
            self._insert_stored_events(curs, [snapshot])


#: The index a ``CREATE [UNIQUE] INDEX IF NOT EXISTS`` statement makes.
_CREATE_INDEX = re.compile(r'CREATE (?:UNIQUE )?INDEX IF NOT EXISTS "?([^"\s]+)"? ON ', re.I)


def _index_made(curs: Any, statement: Composed, schema: str) -> bool:
    """Whether ``statement`` makes an index that ``schema`` already holds."""
    found = _CREATE_INDEX.match(statement.as_string(curs))
    if found is None:
        return False
    row = curs.execute(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND c.relkind = 'i'",
        (schema, found.group(1)),
    ).fetchone()
    return row is not None


def _failing(why: str) -> Composed:
    """A statement the server fails, saying ``why``, so that the
    transaction it is sent in cannot commit."""
    return SQL(
        "DO $fail$ BEGIN RAISE EXCEPTION 'timebank could not write the index rows of"
        " these events (%), so their transaction is rolled back', {why}; END $fail$"
    ).format(why=Literal(why))


def _no_fence(curs: Any) -> None:
    """A write outside a command's write lock (a migration's) checks nothing."""


def _ended(connection: psycopg.Connection[Any]) -> bool:
    """Whether an idle connection was ended under it: by the server (a
    restart, a failover, ``pg_terminate_backend``: it sends its reason, then
    closes) or by the system (keepalives unanswered, ``TCP_OPTIONS``). Both
    leave its socket something to read, which an idle connection otherwise
    has only for a notice; only then is the server asked, with an empty
    statement. Otherwise one ``poll()``, no round trip: not ``select()``,
    which refuses a socket numbered 1024 or more (a busy process's), and
    then every connection looked ended (measured: 50 writes made 3,751
    connections)."""
    if connection.closed or connection.broken:
        return True
    try:
        waiting = select.poll()
        waiting.register(connection.pgconn.socket, select.POLLIN)
        if waiting.poll(0):
            connection.execute("")  # every connection timebank keeps is autocommit
    except (psycopg.Error, OSError):
        return True
    return False


def _taking_live_connections(pool: Any) -> None:
    """Make ``pool`` hand out no connection that was ended under it
    (``_ended``): such a one is closed and given back, which the pool
    replaces, and the next is taken, without a wait while the pool has
    others. After a server's restart each pooled connection failed the
    first command that took it (measured: the next seven commands of a
    store failed). psycopg_pool's own check (the library's ``pre_ping``) is
    a round trip at every use, and waits a second and more after each
    connection it finds ended (measured: the first command after a
    restart waited 5 s, then failed)."""
    taken = type(pool).getconn

    def getconn(timeout: float | None = None) -> Any:
        for _ in range(pool.max_size):
            connection = taken(pool, timeout)
            if not _ended(connection):
                return connection
            connection.close()
            pool.putconn(connection)  # a closed connection: the pool makes another
        return taken(pool, timeout)

    pool.getconn = getconn


class _PostgresFactory(PostgresFactory):
    """The library's factory, with timebank's recorders, each made (its
    types, tables and indexes created if need be) in turns with the other
    processes that open the store (``turns``: PostgresBackend.turn), and
    the pool's connections made with libpq's TCP settings ``tcp`` and
    checked when taken (``_taking_live_connections``)."""

    application_recorder_class = PostgresIndexRecorder
    aggregate_recorder_class = PostgresSnapshotRecorder

    def __init__(
        self,
        env: Any,
        fence: Callable[[Any], None],
        turns: Callable[[], AbstractContextManager[Any]],
        tcp: dict[str, Any],
    ) -> None:
        super().__init__(env)
        # the pool is not open yet: every connection it makes has them
        kwargs = self.datastore.pool.kwargs
        if not isinstance(kwargs, dict):  # the library gives it a dict
            raise TypeError(f"expected the pool's connection settings, got {kwargs!r}")
        kwargs.update(tcp)
        _taking_live_connections(self.datastore.pool)
        self._fence = fence
        self._turns = turns

    def application_recorder(self) -> Any:
        with self._turns():
            recorder = super().application_recorder()
        if not isinstance(recorder, PostgresIndexRecorder):  # narrows the type, too
            raise TypeError(f"timebank's recorder expected, not {recorder!r}")
        recorder.fence = self._fence
        return recorder

    def aggregate_recorder(self, purpose: str = "events") -> Any:
        with self._turns():
            return super().aggregate_recorder(purpose)


def _nothing() -> None:
    """Does nothing (what a forked child's pool does when closed)."""


class PostgresBackend(Backend):
    """A PostgreSQL database (and schema), for councils that outgrow one file.

    Writers of a store take turns through a session advisory lock, held on a
    connection of its own from a command's first read to its commit: the
    library already serialises inserts with a table lock, and without turns
    a writer that read stale state conflicts and retries (measured: with 4
    processes on one bank, up to 15 retries for one command).
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = _redacted(url)
        self._url = url
        self._settings, self._tcp = _parse(url)
        self._create = create
        self._lock_connection: psycopg.Connection[Any] | None = None
        self._schema = self._settings[PostgresFactory.POSTGRES_SCHEMA] or "public"
        self._lock_key = f"timebank:write:{self._schema}"
        #: The server process of the lock connection while a command holds
        #: the write lock, else None (see fence).
        self._lock_pid: int | None = None

    @property
    def reopen_url(self) -> str:
        return self._url  # with its password

    def _connect(self, **options: Any) -> psycopg.Connection[Any]:
        settings = self._settings
        return psycopg.connect(
            dbname=settings[PostgresFactory.POSTGRES_DBNAME],
            host=settings[PostgresFactory.POSTGRES_HOST],
            port=settings[PostgresFactory.POSTGRES_PORT],
            user=settings[PostgresFactory.POSTGRES_USER],
            password=settings[PostgresFactory.POSTGRES_PASSWORD] or None,
            connect_timeout=int(settings[PostgresFactory.POSTGRES_CONNECT_TIMEOUT]),
            **self._tcp,
            **options,
        )

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        refused = partial(write_lock_timed_out, self.url, LOCK_TIMEOUT_S)
        with self._session_lock(self._lock_key, "the write lock", refused) as (_, pid):
            self._lock_pid = pid
            try:
                yield
            finally:
                self._lock_pid = None

    @contextmanager
    def _session_lock(
        self, key: str, what: str, refused: Callable[[], StorageError]
    ) -> Iterator[tuple[psycopg.Connection[Any], int]]:
        """The advisory lock ``key``, on the lock connection (opened when
        there is none), held until the block ends; waited for up to
        ``LOCK_TIMEOUT_S``, then ``refused()``. Yields the connection and
        the server's own process id of its session: not the client's idea
        of it (a pooler in front, PgBouncer's session mode, hands out its
        own)."""
        try:
            if self._lock_connection is not None and _ended(self._lock_connection):
                self._drop_lock_connection()  # ended under it: a restart, a cut link
            if self._lock_connection is None:
                self._lock_connection = self._connect(autocommit=True)
                self._lock_connection.execute(f"SET lock_timeout = '{LOCK_TIMEOUT_S}s'")
            connection = self._lock_connection
            ((pid,),) = connection.execute(
                "SELECT pg_backend_pid() FROM pg_advisory_lock(hashtext(%s))", (key,)
            ).fetchall()
        except psycopg.errors.LockNotAvailable:  # the lock_timeout
            raise refused() from None
        except psycopg.Error as e:
            self._drop_lock_connection()
            raise StorageError(
                f"cannot take {what} of {self.url}: {' '.join(str(e).split())}", url=self.url
            ) from None
        try:
            yield connection, int(pid)
        finally:
            try:
                connection.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
            except psycopg.Error:
                self._drop_lock_connection()  # closing the session releases the lock

    def fence(self, curs: Any) -> None:
        """Inside a commit's transaction: fail it, as a write conflict (a
        unique violation: ``IntegrityError``, and the command runs again
        under the lock taken anew), when the write lock this backend took
        for the command is no longer held by its lock connection's session,
        so that another writer may have committed since the command's reads
        (docs/storage.md). The server raises it, so the transaction is rolled
        back: the library commits what a transaction holds when Python
        raises inside it. Nothing to check outside a command."""
        pid = self._lock_pid
        if pid is None:
            return
        curs.execute(
            SQL(
                "DO $fence$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_locks"
                " WHERE locktype = 'advisory' AND granted AND pid = {pid}"
                " AND classid = ((hashtext({key})::bigint >> 32) & 4294967295)::oid"
                " AND objid = (hashtext({key})::bigint & 4294967295)::oid AND objsubid = 1)"
                " THEN RAISE EXCEPTION 'the write lock of this store was lost during the"
                " command: another writer may have written since its reads'"
                " USING ERRCODE = 'unique_violation'; END IF; END $fence$"
            ).format(pid=Literal(pid), key=Literal(self._lock_key))
        )

    def _drop_lock_connection(self) -> None:
        if self._lock_connection is not None:
            self._lock_connection.close()
            self._lock_connection = None

    def close(self) -> None:
        self._drop_lock_connection()

    def forget(self, factory: InfrastructureFactory[Any]) -> None:
        # A connection's socket is the parent's too: closing it here sends
        # the server the end of the parent's session. The library closes its
        # pool when its objects are collected (a child that merely exited
        # ended the parent's sessions so, measured); with that close a no-op
        # the pooled connections are collected unclosed, and psycopg ends no
        # connection that another process opened. Nothing here closes the
        # write lock's connection or the read model's: the store refuses
        # every call, close() included.
        if isinstance(factory, PostgresFactory):
            factory.datastore.close = _nothing  # type: ignore[method-assign]  # its pool, left open

    def factory(self, env: Any) -> InfrastructureFactory[Any]:
        env.update(self._settings)
        try:
            # One direct connection first: its error says why (refused, no
            # such role, bad password), where the pool would only time out.
            with self._connect() as connection:
                self._check_encoding(connection)
                missing = self._missing_schema(connection)
                found = self._create or (
                    missing is None and self._has_table(connection, EVENTS_TABLE)
                )
                if found and missing is None:
                    self._mark(connection)
            if not found:  # the factory would create the tables: a write
                why = "" if missing is None else f": {missing}"
                raise StoreNotFound(
                    f"no timebank store in schema {self._schema} at {self.url}{why}", url=self.url
                )
            factory = _PostgresFactory(env, self.fence, self.turn, self._tcp)
        except psycopg.errors.InsufficientPrivilege as e:  # making a new store's first table
            user = self._settings[PostgresFactory.POSTGRES_USER]
            raise StorageError(
                f"the role {user} may not create tables in the schema {self._schema} at"
                f" {self.url} ({str(e).splitlines()[0]}): timebank makes its tables in a schema"
                f" its role owns (ALTER SCHEMA {self._schema} OWNER TO {user}; docs/storage.md)",
                url=self.url,
            ) from None
        except (psycopg.Error, PersistenceError, OSError) as e:
            raise StorageError(
                f"cannot connect to PostgreSQL at {self.url}: {' '.join(str(e).split())}",
                url=self.url,
            ) from None
        return factory

    def _check_encoding(self, connection: psycopg.Connection[Any]) -> None:
        """Refuse a database, or a connection, not in UTF8 (docs/storage.md):
        in another, names in most scripts cannot be written, and in
        ``SQL_ASCII`` the store cannot read back its own events."""
        database = connection.info.parameter_status("server_encoding")
        if database != "UTF8":
            name = self._settings[PostgresFactory.POSTGRES_DBNAME]
            raise StorageError(
                f"the database {name} at {self.url} is encoded {database}: timebank needs"
                " a UTF8 database, for names in every script (make one with CREATE"
                " DATABASE … ENCODING 'UTF8' TEMPLATE template0; docs/storage.md)",
                url=self.url,
            )
        client = connection.info.parameter_status("client_encoding")
        if client != "UTF8":
            raise StorageError(
                f"the connection to {self.url} has the client encoding {client}: timebank"
                " needs UTF8 (is PGCLIENTENCODING set? unset it, or set it to UTF8)",
                url=self.url,
            )

    def _missing_schema(self, connection: psycopg.Connection[Any]) -> str | None:
        """What is wrong when the database lacks ``schema``, else None; when
        creating, the refusal itself, before anything is made: timebank
        creates its tables in a schema, never the schema itself, which is the
        database owner's to make and give to timebank's role
        (docs/storage.md). The library's own error came from its first
        ``CREATE TABLE`` and said nothing of what to do."""
        found = connection.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self._schema,)
        ).fetchone()
        if found:
            return None
        name = self._settings[PostgresFactory.POSTGRES_DBNAME]
        make = f"CREATE SCHEMA {self._schema} AUTHORIZATION the role timebank logs in as"
        if self._create:
            raise StorageError(
                f"the database {name} at {self.url} has no schema {self._schema}: timebank"
                f" makes its tables in a schema that exists (make it with {make};"
                " docs/storage.md)",
                url=self.url,
            )
        # For a command that only reads, which the CLI then tells how a store
        # is made: making one would fail on the missing schema too.
        return (
            f"the database {name} has no schema {self._schema}: make it with {make}"
            " (docs/storage.md), then a store in it"
        )

    def _mark(self, connection: psycopg.Connection[Any]) -> None:
        """Refuse a store of a later format (``StoreFormatTooNew``), before
        anything is written; when this open may write, put in the store's
        format row, or raise it (docs/storage.md, "The store's format")."""
        table = f"{self._schema}.{store_format.TABLE}"  # a schema of plain letters
        row = None
        if self._has_table(connection, store_format.TABLE):
            row = connection.execute(store_format.select_sql(table)).fetchone()
        connection.rollback()  # the reads' transaction: none is left open
        if not (store_format.checked(self.url, row) and self._create):
            return
        try:
            with self.turn() as turn, turn.transaction():
                turn.execute(store_format.create_sql(table))
                turn.execute(store_format.upsert_sql(table, "%s"), store_format.this_release())
        except psycopg.errors.InsufficientPrivilege:
            raise  # said by factory()
        except psycopg.Error as e:  # connected, so not a failure to connect
            raise StorageError(
                f"cannot open the store at {self.url}: {' '.join(str(e).split())}", url=self.url
            ) from None

    @contextmanager
    def turn(self) -> Iterator[psycopg.Connection[Any]]:
        """The store's turn to create its tables, held on the lock
        connection (which it yields) until the block ends: several
        processes opening one new store at once (an app's workers
        starting) made the library's types and tables together and failed
        ("duplicate key value violates unique constraint
        pg_type_typname_nsp_index", in 25 of 30 rounds of three opening one
        new schema); the library makes its types in transactions of their
        own, so no transaction's lock could cover them."""

        def refused() -> StorageError:
            return StorageError(
                f"cannot open the store at {self.url}: another process has been creating its"
                f" tables for {LOCK_TIMEOUT_S} s",
                url=self.url,
            )

        key = f"timebank:create:{self._schema}"
        with self._session_lock(key, "the turn to create the tables", refused) as (held, _):
            yield held

    def _has_table(self, connection: psycopg.Connection[Any], name: str) -> bool:
        """Whether the store's schema holds the table ``name``."""
        row = connection.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (self._schema, name),
        ).fetchone()
        return row is not None

    def read_model_db(self) -> ReadModelDB:
        """The ``rm_*`` tables in the store's own schema, on a connection of
        their own."""

        def connect() -> psycopg.Connection[Any]:
            try:
                return self._connect(autocommit=True)
            except psycopg.Error as e:
                raise StorageError(
                    f"cannot connect to PostgreSQL at {self.url}: {' '.join(str(e).split())}",
                    url=self.url,
                ) from None

        return PostgresReadModelDB(connect, self._schema, self.url)

    def profiles(self, factory: InfrastructureFactory[Any]) -> ProfileStore:
        if not isinstance(factory, PostgresFactory):
            raise TypeError(f"expected the PostgreSQL factory, got {factory!r}")
        return PostgresProfileStore(factory.datastore)
