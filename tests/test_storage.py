"""Storage selection by URL, the SQLite file's settings, and personal data."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError
from eventsourcing.postgres import PostgresFactory

import timebank
from timebank import errors
from timebank._ledger import storage_error
from timebank.migrate import migrate
from timebank.storage import DEFAULT_URL, Profile, default_url, open_backend
from timebank.storage.memory import MemoryBackend
from timebank.storage.postgres import TCP_OPTIONS, parse_postgres_url
from timebank.storage.sqlite import SqliteBackend

from .conftest import (
    ACTOR,
    BACKENDS,
    POSTGRES_URL,
    fixed_clock,
    new_postgres_schema,
    open_store,
    postgres_schema,
)


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


def damage(path: Path, tables: tuple[str, ...]) -> str:
    """Overwrite every page of ``tables`` in the SQLite file at ``path``
    (what a failing disk does), keeping each page's header; the file's
    SHA-256 after."""
    import hashlib
    import os

    with sqlite3.connect(path) as db:
        marks = ",".join("?" * len(tables))
        pages = [p for (p,) in db.execute(
            f"SELECT pageno FROM dbstat WHERE name IN ({marks})", tables)]  # fmt: skip
        size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    assert pages
    with path.open("r+b") as f:
        for page in pages:
            f.seek((page - 1) * size + 12)
            f.write(os.urandom(size - 12))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_damaged_store_file_is_one_storage_error_that_names_it_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """Reads on timebank's own connections raised sqlite3.DatabaseError (a
    traceback from `timebank audit`, of all commands), and writes the
    library's PersistenceError: both are StorageError now, naming the file
    and what to do."""
    import hashlib

    from click.testing import CliRunner

    from timebank.cli import cli

    path = tmp_path / "store.db"
    with timebank.open(f"sqlite:///{path}", clock=fixed_clock) as tb:
        _bank_of_x_and_y(tb)
        for _ in range(200):
            tb.record_exchange("b", "x", "y", "1", actor=ACTOR)
    checksum = damage(path, ("stored_events", "timebank_entry_index"))
    with timebank.open(f"sqlite:///{path}", clock=fixed_clock) as tb:
        calls = {
            "record": lambda: tb.record_exchange("b", "x", "y", "1", actor=ACTOR),
            "report": lambda: tb.report("b"),
            "audit": tb.audit,
            "export": lambda: tb.export_csv(io.StringIO(), io.StringIO()),
        }
        for name, call in calls.items():
            with pytest.raises(errors.StorageError) as caught:
                call()
            message = str(caught.value)
            assert f"{path} is damaged" in message, (name, message)
            assert "restore the store from a backup" in message, name
            assert caught.value.url.endswith(str(path)), name
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{path}", "audit"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"error: storage_error: the store sqlite:///{path} is damaged" in result.output
    # a migration reads the log through the library's connections
    with (
        timebank.open(f"sqlite:///{path}", clock=fixed_clock) as source,
        timebank.open(f"sqlite:///{tmp_path / 'copy.db'}", clock=fixed_clock) as target,
        pytest.raises(errors.StorageError, match=f"the store sqlite:///{path} is damaged"),
    ):
        migrate(source, target)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == checksum


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


def test_a_write_lock_that_cannot_be_opened_is_a_named_error(tmp_path: Path) -> None:
    """(A directory this process may not write, or, as here, something else
    at the lock's name.) The command changes nothing and says which file."""
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
    (tmp_path / "locked.db.lock").unlink()
    (tmp_path / "locked.db.lock").mkdir()
    with timebank.open(url, clock=fixed_clock) as tb:
        with pytest.raises(
            errors.StorageError, match=r"cannot open the write lock .*locked\.db\.lock"
        ):
            tb.join("b", "m1", kind="individual", actor=ACTOR)
        assert tb.members("b") == []


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://localhost/db",  # no user
        "postgresql://u@localhost/",  # no database
        "postgresql://u@localhost/a/b",
        "postgresql://u@localhost/db?colour=red",
        "postgresql://u@localhost:port/db",
        "postgresql://u@localhost/db?pool_size=many",
        # the library does not quote the schema: these failed part-way, in its words
        "postgresql://u@localhost/db?schema=TimeBank",
        "postgresql://u@localhost/db?schema=tb-1",
        "postgresql://u@localhost/db?schema=tb%20one",
        "postgresql://u@localhost/db?schema=1tb",
        f"postgresql://u@localhost/db?schema={'s' * 64}",
        "postgresql://u@localhost/db?pool_size=-1",
        "postgresql://u@localhost/db?connect_timeout=0",  # the pool gave up at once
        "postgresql://u@localhost/db?keepalives_idle=0",
        "postgresql://u@localhost/db?keepalives_interval=0",
        "postgresql://u@localhost/db?keepalives_count=0",
        "postgresql://u@localhost/db?keepalives_count=three",
        "postgresql://u@localhost/db?tcp_user_timeout=-1",
        "postgresql://u@localhost/db?keepalives=0",  # not an option: they are always on
    ],
)
def test_malformed_postgres_urls_are_named(url: str) -> None:
    with pytest.raises(errors.UnsupportedStorageURL):
        open_backend(url)


def test_a_postgres_url_option_that_is_not_a_whole_number_is_named() -> None:
    """Each option that should be a whole number and is not is named, with
    its value, where the message was Python's ("invalid literal for int()
    with base 10: 'many'"), naming no option."""
    url = "postgresql://u@localhost/db?pool_size=many&tcp_user_timeout=1.5&keepalives_count=%D9%A5"
    with pytest.raises(errors.UnsupportedStorageURL) as caught:
        open_backend(url)
    assert str(caught.value).endswith(
        ": pool_size must be a whole number, not 'many'; keepalives_count must be a whole"
        " number, not '\u0665'; tcp_user_timeout must be a whole number, not '1.5'"
    )


@pytest.mark.parametrize("url", ["postgresql://u@localhost/db?schema=time_bank_2",
                                 "postgresql://u@localhost/db?schema=",
                                 "postgresql://u@localhost/db?pool_size=0&connect_timeout=1",
                                 "postgresql://u@localhost/db?tcp_user_timeout=0&keepalives_idle=1"
                                 "&keepalives_interval=1&keepalives_count=1"])  # fmt: skip
def test_postgres_urls_at_the_edges_are_taken(url: str) -> None:
    assert parse_postgres_url(url)[PostgresFactory.POSTGRES_USER] == "u"


def test_a_postgres_password_never_shows(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://clerk:s3cret@127.0.0.1:{port}/timebank?connect_timeout=1"
    with pytest.raises(errors.StorageError) as caught:
        timebank.open(url)
    assert "cannot connect" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in str(caught.value.ids)
    result = subprocess.run(
        [Path(sys.executable).with_name("timebank"), "--db", url, "balances"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: storage_error: cannot connect to PostgreSQL")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://clerk@127.0.0.1/timebank?password=s3cret",
        "postgresql://clerk@127.0.0.1/timebank?schema=tb&PASSWORD=s3cret&sslmode=x",
        "postgresql://clerk:s3cret@127.0.0.1/timebank?colour=red",
        "postgresql://clerk:s3cret@127.0.0.1/",
    ],
)
def test_a_postgres_password_never_shows_in_a_refused_url(url: str) -> None:
    with pytest.raises(errors.UnsupportedStorageURL) as caught:
        timebank.open(url)
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in str(caught.value.ids)
    assert "***" in str(caught.value)
    if "?password" in url.lower() or "&password" in url.lower():
        assert "a password goes before the @" in str(caught.value)


def test_a_store_shows_its_url_and_whether_it_is_closed(
    reopen: Callable[[], timebank.Timebank],
) -> None:
    tb = reopen()
    assert tb.url.split(":", 1)[0] in ("memory", "sqlite", "postgresql")
    assert repr(tb) == f"<Timebank {tb.url}>"
    tb.close()
    assert repr(tb) == f"<Timebank {tb.url} (closed)>"


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_postgres_password_never_shows_in_the_url_of_an_open_store() -> None:
    assert POSTGRES_URL is not None
    with_password = POSTGRES_URL.replace("postgresql://postgres@", "postgresql://postgres:s3cret@")
    assert "s3cret" in with_password  # the server trusts loopback logins: it opens
    with timebank.open(with_password) as tb:
        assert "s3cret" not in tb.url
        assert "s3cret" not in repr(tb)
        assert "***" in repr(tb)


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_postgres_schema_the_database_lacks_is_refused_saying_how_to_make_it() -> None:
    import psycopg
    from click.testing import CliRunner

    from timebank.cli import cli

    assert POSTGRES_URL is not None
    url = f"{POSTGRES_URL}?schema=no_such_schema"
    with pytest.raises(errors.StorageError) as caught:
        timebank.open(url)
    assert type(caught.value) is errors.StorageError
    assert "has no schema no_such_schema" in str(caught.value)
    assert "CREATE SCHEMA no_such_schema AUTHORIZATION" in str(caught.value)
    with pytest.raises(errors.StoreNotFound) as not_found:  # a command that only reads
        timebank.open(url, create=False)
    # It says what to make first, where creating a store would fail in turn.
    assert "has no schema no_such_schema: make it with CREATE SCHEMA no_such_schema" in str(
        not_found.value
    )
    assert str(not_found.value).count(url) == 1
    said = CliRunner().invoke(cli, ["--db", url, "balances"]).output
    assert said.startswith("error: store_not_found: no timebank store in schema no_such_schema")
    assert said.index("CREATE SCHEMA no_such_schema") < said.index("`timebank create-bank`")
    with psycopg.connect(POSTGRES_URL) as connection:  # nothing made, the schema least of all
        schema = "SELECT 1 FROM pg_namespace WHERE nspname = 'no_such_schema'"
        assert connection.execute(schema).fetchone() is None


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_refused_postgres_login_is_one_named_error() -> None:
    assert POSTGRES_URL is not None
    wrong = POSTGRES_URL.replace("postgresql://postgres@", "postgresql://nobody-here@", 1)
    with pytest.raises(errors.StorageError, match="cannot connect"):
        timebank.open(wrong)


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_postgres_store_opens_and_reads_while_a_writer_holds_its_table_lock() -> None:
    """The library locks the events table (EXCLUSIVE) from a write's insert
    to its commit: a long import's whole write, and for ever behind a writer
    stopped there (SIGSTOP, a paused machine). Opening the store runs its
    CREATE ... IF NOT EXISTS statements, and CREATE INDEX IF NOT EXISTS
    locks its table before it looks for the index: opening waited for the
    writer's commit. It and the reads after it now go on at once."""
    import threading

    import psycopg

    url = new_postgres_schema()
    schema = postgres_schema(url)
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
    assert POSTGRES_URL is not None
    writer = psycopg.connect(POSTGRES_URL)  # a transaction, as a write's insert holds it
    read: list[object] = []

    def open_and_read() -> None:
        for create in (True, False):
            with timebank.open(url, create=create, clock=fixed_clock) as tb:
                read.append(([b.bank for b in tb.banks()], tb.balances("b")))

    try:
        writer.execute(f'LOCK TABLE "{schema}".timebank_events IN EXCLUSIVE MODE')
        reader = threading.Thread(target=open_and_read, daemon=True)
        reader.start()
        reader.join(timeout=60)
        assert len(read) == 2, "opening the store waited for the writer's table lock"
    finally:
        writer.rollback()
        writer.close()
    reader.join()
    assert read[0] == read[1]
    assert read[0][0] == ["b"]


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_postgres_schema_without_a_store_is_not_found_unless_creating() -> None:
    import psycopg
    from click.testing import CliRunner

    from timebank.cli import cli

    url = new_postgres_schema()
    schema = postgres_schema(url)
    assert POSTGRES_URL is not None

    def tables() -> list[str]:
        with psycopg.connect(POSTGRES_URL) as connection:
            rows = connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            ).fetchall()
        return sorted(r[0] for r in rows)

    with pytest.raises(errors.StoreNotFound, match=f"no timebank store in schema {schema}"):
        timebank.open(url, create=False)  # what read-only commands and the audit use
    with pytest.raises(errors.StoreNotFound):
        timebank.audit(url)
    out = CliRunner().invoke(cli, ["--db", url, "audit"])
    assert (out.exit_code, out.output.startswith("error: store_not_found:")) == (1, True)
    assert tables() == []  # nothing created
    with timebank.open(url) as tb:  # creating: the tables, then the store opens as usual
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
    assert "timebank_events" in tables()
    with timebank.open(url, create=False) as tb:
        assert [b.bank for b in tb.banks()] == ["b"]


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_postgres_erasure_leaves_no_profile_and_changes_no_figure() -> None:
    with timebank.open(new_postgres_schema(), clock=fixed_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        for member in ("w-1", "k-2"):
            tb.join("b", member, kind="individual", actor=ACTOR, joined_on="2026-01-01",
                    profile=timebank.Profile(display_name=f"Person {member}"))  # fmt: skip
        tb.record_exchange("b", "w-1", "k-2", "2", actor=ACTOR)
        before = (tb.balances(), tb.figures("b"), tb.statement("b", "w-1"))
        result = tb.erase_member("w-1", actor=ACTOR)
        assert (result.profile_deleted, result.physically_complete) == (True, True)
        assert tb.profile("w-1") is None
        assert tb.profile("k-2") == timebank.Profile(display_name="Person k-2")
        assert (tb.balances(), tb.figures("b"), tb.statement("b", "w-1")) == before


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_postgres_erasure_a_reader_holds_back_says_so_and_holds_up_no_one_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The table's rewrite needs it to itself: while another process's
    transaction that read a profile stays open, the erasure deletes the
    profile, waits ERASE_LOCK_S for the rest, says it is not complete, and
    lets the other readers go; run again once the reader is gone, it
    completes. It waited for as long as the reader's transaction, and every
    reader of profiles waited behind it."""
    import threading
    import time

    import psycopg

    import timebank.storage.postgres

    assert POSTGRES_URL is not None
    monkeypatch.setattr(timebank.storage.postgres, "ERASE_LOCK_S", 0.5)
    url = new_postgres_schema()
    schema = postgres_schema(url)
    with timebank.open(url, clock=fixed_clock) as tb, timebank.open(url) as other:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        for member in ("w-1", "k-2"):
            tb.join("b", member, kind="individual", actor=ACTOR, joined_on="2026-01-01",
                    profile=timebank.Profile(display_name=f"Person {member}"))  # fmt: skip
        with psycopg.connect(POSTGRES_URL) as reader:  # a transaction left open
            reader.execute(f'SELECT count(*) FROM "{schema}".timebank_profiles').fetchone()
            answers: dict[str, object] = {}

            def erase() -> None:
                answers["erased"] = tb.erase_member("w-1", actor=ACTOR)

            def read() -> None:
                time.sleep(0.1)  # after the erasure has begun to wait
                answers["read"] = other.profile("k-2")

            threads = [threading.Thread(target=f, daemon=True) for f in (erase, read)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert not any(t.is_alive() for t in threads), "held up while the reader stays"
            held = answers["erased"]
            assert isinstance(held, timebank.Erasure)
            assert (held.profile_deleted, held.physically_complete) == (True, False)
            assert answers["read"] == timebank.Profile(display_name="Person k-2")
            assert tb.profile("w-1") is None
            reader.rollback()
        again = tb.erase_member("w-1", actor=ACTOR)
        assert (again.profile_deleted, again.physically_complete) == (False, True)
        # each pooled connection's own wait is as it was (the pool hands
        # them out in turn, so twenty takes visit every idle one)
        datastore = tb._app.profiles._datastore  # type: ignore[attr-defined]
        for _ in range(20):
            with datastore.get_connection() as conn:
                assert conn.execute("SHOW lock_timeout").fetchall() == [{"lock_timeout": "0"}]


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_store_opened_before_a_fork_refuses_the_child_and_the_parent_goes_on(
    tmp_path: Path, kind: str
) -> None:
    """docs/api.md: an app that opened the store before its server forked
    workers (gunicorn's --preload, multiprocessing). The children used the
    parent's connections (on PostgreSQL: an IndexError, then every process
    hung), and on PostgreSQL a child that merely dropped the store ended
    the parent's sessions. The child now gets StoreClosed, at once even
    though another thread of the parent held the store's lock at the fork,
    and the parent goes on."""
    import gc
    import json
    import os
    import select
    import signal
    import threading
    import warnings

    tb = open_store(kind, tmp_path, clock=None)()  # no `with`: the child drops every reference
    try:
        tb.create_bank("r", name="R", actor=ACTOR, opened_on="2026-01-01")
        for member in ("a", "b"):
            tb.join("r", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
        tb.record_exchange("r", "a", "b", "1", actor=ACTOR, occurred_on="2026-02-01")
        assert tb.report("r").exchanges == 1
        model = tb.read_model
        holding, forked = threading.Event(), threading.Event()

        def hold_the_lock() -> None:  # another thread's call, under way at the fork
            with tb._app.lock:
                holding.set()
                forked.wait(30)

        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        assert holding.wait(30)
        reading, writing = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # forking with threads
            child = os.fork()
        if child == 0:  # the child: report what each call did, drop the store, exit
            said = []
            for call in (lambda: tb.balance("r", "a"), tb.close, model.position, tb.report):
                try:
                    call()  # type: ignore[operator]
                    said.append("answered")
                except errors.StoreClosed as e:
                    said.append(str(e))
            del call, tb, model, hold_the_lock, holder  # the store collected, as at exit
            gc.collect()
            os.write(writing, json.dumps(said).encode())
            os._exit(0)
        forked.set()
        holder.join()
        os.close(writing)
        answered, _, _ = select.select([reading], [], [], 60)
        if not answered:  # the child hangs (on the lock a thread held at the fork)
            os.kill(child, signal.SIGKILL)
        with os.fdopen(reading) as pipe:
            said = json.loads(pipe.read() or "null")
        assert os.waitpid(child, 0)[1] == 0
        refused = (
            f"the store at {tb.url} was opened in process {os.getpid()}, which this process was"
            " forked from: open it again in this process"
        )
        assert said == [refused, "answered", refused, refused]  # close(): nothing to do
        # the parent's connections are as they were
        tb.record_exchange("r", "a", "b", "1", actor=ACTOR, occurred_on="2026-02-02")
        assert tb.report("r").exchanges == 2
        assert tb.balance("r", "a") == 120
        assert tb.audit().ok
    finally:
        tb.close()


def _every_connection(tb: timebank.Timebank, names: set[str]) -> list[dict[str, str]]:
    """The settings ``names`` that libpq gives (those not at libpq's own
    default) on each connection a PostgreSQL store made: the write lock's,
    the read model's, and the event store's and profile store's pool."""

    def settings(conn: Any) -> dict[str, str]:
        return {k: v for k, v in conn.info.get_parameters().items() if k in names}

    tb.create_bank("r", name="R", actor=ACTOR, opened_on="2026-01-01")
    assert tb.report("r").exchanges == 0  # the read model's connection is made
    found = [settings(tb.backend._lock_connection), settings(tb.read_model.db.conn)]  # type: ignore[attr-defined]
    for datastore in (tb._app.recorder.datastore, tb._app.profiles._datastore):  # type: ignore[attr-defined]
        with datastore.get_connection() as conn:
            found.append(settings(conn))
    return found


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
@pytest.mark.parametrize(
    ("options", "wanted"),
    [
        ("", {k: str(v) for k, v in TCP_OPTIONS.items()}),
        ("&keepalives_idle=45&keepalives_interval=5&keepalives_count=4&tcp_user_timeout=5000",
         {"keepalives_idle": "45", "keepalives_interval": "5", "keepalives_count": "4",
          "tcp_user_timeout": "5000"}),
    ],
)  # fmt: skip
def test_every_connection_a_postgres_store_makes_has_keepalives_and_a_tcp_user_timeout(
    options: str, wanted: dict[str, str]
) -> None:
    """docs/storage.md: libpq's TCP settings, timebank's own or the URL's, on
    every connection, so that one the network dropped without a word fails
    a call rather than hanging it (test_silent_network.py cuts a link)."""
    with timebank.open(new_postgres_schema() + options) as tb:
        assert _every_connection(tb, set(TCP_OPTIONS)) == [wanted] * 4


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_libpq_service_file_reaches_every_connection_a_postgres_store_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/storage.md: a libpq service file (PGSERVICE) sets what the URL
    does not (here the name the server shows for the connections) on every
    connection; the URL's host, port and database, and timebank's TCP
    settings, win over the file's."""
    service = tmp_path / "pg_service.conf"
    service.write_text(
        "[timebank]\napplication_name=riverside-app\nkeepalives_idle=7200\n"
        "host=nowhere.invalid\nport=1\ndbname=nowhere\n"  # the URL's own win
    )
    monkeypatch.setenv("PGSERVICEFILE", str(service))
    monkeypatch.setenv("PGSERVICE", "timebank")
    with timebank.open(new_postgres_schema()) as tb:
        wanted = {"application_name": "riverside-app", "keepalives_idle": "60"}
        assert _every_connection(tb, set(wanted)) == [wanted] * 4


def _end_sessions(admin: Any, name: str) -> int:
    """End every session named ``name`` (the store's, through PGAPPNAME), as
    a server's restart does, and wait until their server processes are gone
    (a restart's are, before the server is back); how many were ended."""
    dropped = admin.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
        (name,),
    ).fetchone()
    assert dropped is not None
    for _ in range(500):
        left = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchone()
        if left == (0,):
            return int(dropped[0])
        time.sleep(0.01)
    pytest.fail("the server processes of the ended connections did not end in 5 s")


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_commands_after_the_server_dropped_every_connection_take_new_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a restart (every connection of the store ended by the server),
    the next commands work: a pooled connection or the write lock's that
    the server ended is replaced before it is used, where each failed one
    command (seven of the next ten, measured), and nothing is lost."""
    import psycopg

    assert POSTGRES_URL is not None
    admin = psycopg.connect(POSTGRES_URL, autocommit=True)
    # libpq names each connection made from here on so (the store's: this
    # process runs one test at a time), and only those are dropped: the
    # server's other sessions are other tests', on other pytest workers
    name = f"timebank-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("PGAPPNAME", name)
    with admin, timebank.open(new_postgres_schema(), create=True, clock=fixed_clock) as tb:
        _bank_of_x_and_y(tb)
        for _ in range(3):  # the pool's connections in use, and the write lock's
            tb.record_exchange("b", "x", "y", "1", actor=ACTOR)
        assert tb.report("b").exchanges == 3  # and the read model's

        assert _end_sessions(admin, name) >= 3  # the pool's, the write lock's, the read model's
        for _ in range(10):
            tb.record_exchange("b", "x", "y", "1", actor=ACTOR)
        assert _end_sessions(admin, name) >= 2
        assert tb.balance("b", "x") == 60 * 13
        assert tb.report("b").exchanges == 13
        assert tb.audit().ok


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_command_on_a_connection_ended_unseen_fails_as_a_storage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connection ended in a way the check cannot see as it is taken (a
    link cut without a word, before the keepalives notice) fails the
    command that uses it with ``storage_error``, changing nothing, not with
    the library's PersistenceError; the connection is then replaced."""
    import psycopg

    from timebank.storage import postgres

    assert POSTGRES_URL is not None
    name = f"timebank-test-{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        monkeypatch.setenv("PGAPPNAME", name)
        with timebank.open(new_postgres_schema(), create=True, clock=fixed_clock) as tb:
            _bank_of_x_and_y(tb)
            tb.record_exchange("b", "x", "y", "1", actor=ACTOR)
            monkeypatch.setattr(postgres, "_ended", lambda connection: connection.closed)
            assert _end_sessions(admin, name) >= 2
            failed: list[Exception] = []
            recorded = 0
            for _ in range(20):
                try:
                    tb.record_exchange("b", "x", "y", "1", actor=ACTOR)
                    recorded += 1
                except Exception as e:  # what was raised is the assertion
                    failed.append(e)
            assert failed, "the ended connections were never used"
            assert all(isinstance(e, errors.StorageError) for e in failed), failed
            assert all(tb.url in str(e) for e in failed)
            assert recorded >= 20 - len(failed) > 0
            assert tb.balance("b", "x") == 60 * (1 + recorded)  # the failed ones changed nothing


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_connections_numbered_past_1024_are_taken_as_they_are() -> None:
    """A busy process (a web app's sockets and files) numbers its new
    connections' sockets past 1024, which ``select()`` refuses: the check as
    a connection is taken found each one ended and replaced it (measured: 50
    writes made 3,751 connections). It uses ``poll()``, which has no such
    limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2048
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"this process may open only {hard} files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    held = [open(os.devnull) for _ in range(1100)]  # noqa: SIM115 - held open on purpose
    try:
        with timebank.open(new_postgres_schema(), clock=fixed_clock) as tb:
            _bank_of_x_and_y(tb)
            pool = tb._app.recorder.datastore.pool  # type: ignore[attr-defined]
            pool.wait(10)  # its first connections all made
            made = pool.get_stats()["connections_num"]
            for _ in range(20):
                tb.record_exchange("b", "x", "y", "1", actor=ACTOR)
            assert tb.backend._lock_connection.pgconn.socket >= 1024  # type: ignore[attr-defined]
            with pool.connection() as connection:
                assert connection.pgconn.socket >= 1024
            assert pool.get_stats()["connections_num"] == made
            assert tb.balance("b", "x") == 20 * 60
    finally:
        for file in held:
            file.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_server_that_ends_idle_sessions_fails_no_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/storage.md: a server that ends sessions idle for a while
    (``idle_session_timeout``, which some managed services set) ended the
    store's connections between commands, and 14 of 18 writes, reads and
    reports failed (measured); each ended connection is now replaced as it
    is taken, the read model's too."""
    url = new_postgres_schema()
    monkeypatch.setenv("PGOPTIONS", "-c idle_session_timeout=600")  # the store's sessions
    with timebank.open(url) as tb:
        _bank_of_x_and_y(tb)
        for exchanges in (1, 2, 3):
            time.sleep(0.8)  # every connection idle past the server's limit
            tb.record_exchange("b", "x", "y", "1", actor=ACTOR)
            time.sleep(0.8)
            assert tb.balance("b", "x") == 60 * exchanges
            time.sleep(0.8)
            assert tb.report("b").exchanges == exchanges


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_the_postgres_read_model_connects_again_after_the_server_drops_it() -> None:
    """A server restart or failover drops the read model's own connection.
    Where nothing was under way (a transaction's start, a statement outside
    one), the call connects again and goes on; a call that loses it inside
    a transaction fails with storage_error, and the next call connects
    again. Before, every later report failed until the process restarted."""
    import psycopg

    assert POSTGRES_URL is not None

    def drop(tb: timebank.Timebank) -> None:  # what a restart does to it
        pid = tb.read_model.db.conn.info.backend_pid  # type: ignore[attr-defined]
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    with timebank.open(new_postgres_schema(), create=True, clock=fixed_clock) as tb:
        _bank_of_x_and_y(tb)
        model = tb.read_model
        model.catch_up()
        tb.record_exchange("b", "x", "y", "1", actor=ACTOR)
        drop(tb)
        assert model.catch_up() == 1  # at a transaction's start: connected again
        drop(tb)
        assert model.db.execute("SELECT count(*) FROM rm_entries") == [(1,)]  # outside one

        def lost_inside_a_transaction() -> None:
            with model.db.exclusive():
                drop(tb)
                model.db.execute("SELECT count(*) FROM rm_entries")

        with pytest.raises(errors.StorageError, match="lost the read model's connection"):
            lost_inside_a_transaction()
        assert model.position() > 0  # the next call, even a plain read: connected again
        assert tb.report("b").exchanges == 1


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_read_model_catch_up_that_cannot_read_the_log_is_a_storage_error() -> None:
    """``read_model.catch_up()`` and ``.rebuild()`` are called directly, not
    through a method under the store's lock: a failure of the log's reads
    that the library reports (here its table gone, as after a partial
    restore) was the library's ProgrammingError there."""
    import psycopg

    assert POSTGRES_URL is not None
    url = new_postgres_schema()
    schema = postgres_schema(url)
    with timebank.open(url, create=True, clock=fixed_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        tb.join("b", "x", kind="individual", actor=ACTOR, joined_on="2026-01-01")
        model = tb.read_model
        model.catch_up()
        position = model.position()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'ALTER TABLE "{schema}".timebank_events RENAME TO set_aside')
            try:
                for call in (model.catch_up, model.rebuild):
                    with pytest.raises(errors.StorageError, match="failed") as caught:
                        call()
                    assert tb.url in str(caught.value)
            finally:
                admin.execute(f'ALTER TABLE "{schema}".set_aside RENAME TO timebank_events')
        assert position > 0
        assert model.catch_up() == position  # the failed rebuild dropped the tables; back
        assert [m.member for m in tb.members("b")] == ["x"]


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_value_the_postgres_read_model_cannot_take_is_a_storage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A store written before bank names were checked may hold a NUL in
    one, which PostgreSQL's text columns refuse: the read model stops at
    that event with a named error (it was a raw DataError) and changes
    nothing; the store's own commands go on."""
    url = new_postgres_schema()
    with timebank.open(url, create=True, clock=fixed_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        assert tb.report("b").individual_members == 0
        position = tb.read_model.position()
        with monkeypatch.context() as earlier_release:  # which took any name
            earlier_release.setattr(timebank.api, "validate_profile_text", lambda v, _: v)
            tb.create_bank("b/hub", name="Hub\x00", actor=ACTOR, opened_on="2026-01-01")
        with pytest.raises(errors.StorageError, match="cannot take a value of the event log"):
            tb.report("b")
        assert tb.read_model.position() == position
        tb.join("b", "x", kind="individual", actor=ACTOR, joined_on="2026-01-01")
        assert [m.member for m in tb.members("b")] == ["x"]


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
@pytest.mark.parametrize("encoding", ["LATIN1", "SQL_ASCII", "UTF8"])
def test_a_postgres_database_must_be_utf8(encoding: str) -> None:
    """docs/storage.md: in LATIN1 a member joined and their profile failed;
    in SQL_ASCII (a cluster set up under the C locale) the store could not
    read back the bank it had created. Such a database is refused on open,
    named, with nothing created in it; a UTF8 one takes names in any script."""
    import uuid

    import psycopg

    assert POSTGRES_URL is not None
    database = f"tb_{encoding.lower()}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database} ENCODING '{encoding}' LC_COLLATE 'C'"
                      " LC_CTYPE 'C' TEMPLATE template0")  # fmt: skip
    server = POSTGRES_URL.split("@", 1)[1].split("/", 1)[0]
    url = f"postgresql://postgres@{server}/{database}"
    try:
        if encoding != "UTF8":
            with pytest.raises(errors.StorageError, match=f"is encoded {encoding}: timebank needs"):
                timebank.open(url, clock=fixed_clock)
            with psycopg.connect(url) as c:
                tables = c.execute("SELECT count(*) FROM information_schema.tables"
                                   " WHERE table_schema = 'public'").fetchone()  # fmt: skip
            assert tables == (0,)
            return
        with timebank.open(url, clock=fixed_clock) as tb:
            tb.create_bank(
                "torfaen", name="Banc Amser Ynysybŵl", actor=ACTOR, opened_on="2026-01-01"
            )
            for member, name, area in (
                ("amira", "أميرة", "Ynysybŵl"),
                ("bryn", "Brŷn", "Pontypŵl"),
            ):
                tb.join("torfaen", member, kind="individual", actor=ACTOR, joined_on="2026-01-01",
                        profile=Profile(display_name=name, area=area))  # fmt: skip
            tb.record_exchange(
                "torfaen", "amira", "bryn", "2", actor=ACTOR, occurred_on="2026-02-01"
            )
        with timebank.open(url, clock=fixed_clock, create=False) as tb:
            assert tb.bank("torfaen").name == "Banc Amser Ynysybŵl"
            assert tb.profile("amira") == Profile(display_name="أميرة", area="Ynysybŵl")
            report = tb.report("torfaen", start="2026-01-01", end="2026-06-30", by_area=True)
            assert {a.area: a.given_minutes for a in report.by_area or ()} == {
                "Ynysybŵl": 120, "Pontypŵl": 0
            }  # fmt: skip
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {database} WITH (FORCE)")


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_postgres_connection_must_be_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    """PGCLIENTENCODING set to another encoding made even a UTF8 database's
    names unwritable: refused on open, named."""
    assert POSTGRES_URL is not None
    url = new_postgres_schema()
    monkeypatch.setenv("PGCLIENTENCODING", "LATIN1")
    with pytest.raises(errors.StorageError, match=r"client encoding LATIN1.*PGCLIENTENCODING"):
        timebank.open(url, clock=fixed_clock)
    monkeypatch.setenv("PGCLIENTENCODING", "UTF8")
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("b", name="Brŷn", actor=ACTOR, opened_on="2026-01-01")
        assert tb.bank("b").name == "Brŷn"


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_postgres_role_that_owns_only_its_schema_runs_a_whole_store() -> None:
    """docs/storage.md asks only for a role that owns its schema: in a
    database where the public may do nothing (no temporary tables either,
    as hardened servers have it), such a role records, imports, erases,
    reports, rebuilds the read model and audits clean; in a schema it does
    not own it is refused saying what to grant."""
    import uuid

    import psycopg

    assert POSTGRES_URL is not None
    suffix = uuid.uuid4().hex[:12]
    database, role = f"tb_least_{suffix}", f"tb_role_{suffix}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"CREATE DATABASE {database}")
        admin.execute(f"REVOKE ALL ON DATABASE {database} FROM PUBLIC")
        admin.execute(f"GRANT CONNECT ON DATABASE {database} TO {role}")
    server, _ = POSTGRES_URL.split("@", 1)[1].split("/", 1)
    try:
        with psycopg.connect(f"postgresql://postgres@{server}/{database}", autocommit=True) as c:
            c.execute(f"CREATE SCHEMA timebank AUTHORIZATION {role}")
        with (
            psycopg.connect(f"postgresql://{role}@{server}/{database}") as own,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            own.execute("CREATE TEMPORARY TABLE t (a integer)")
        # a schema it does not own: refused saying what to grant, nothing made
        with psycopg.connect(f"postgresql://postgres@{server}/{database}", autocommit=True) as c:
            c.execute("CREATE SCHEMA not_its_own")
        not_owned = f"postgresql://{role}@{server}/{database}?schema=not_its_own"
        with pytest.raises(errors.StorageError) as refused:
            timebank.open(not_owned)
        assert str(refused.value) == (
            f"the role {role} may not create tables in the schema not_its_own at {not_owned}"
            " (permission denied for schema not_its_own): timebank makes its tables in a schema"
            f" its role owns (ALTER SCHEMA not_its_own OWNER TO {role}; docs/storage.md)"
        )
        with psycopg.connect(f"postgresql://postgres@{server}/{database}") as c:
            made = "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            assert c.execute(f"{made} WHERE n.nspname = 'not_its_own'").fetchone() == (0,)
        url = f"postgresql://{role}@{server}/{database}?schema=timebank"
        with timebank.open(url, clock=fixed_clock) as tb:
            tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
            for member in ("ann", "bob"):
                tb.join("b", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
            tb.record_exchange("b", "ann", "bob", "2:00", actor=ACTOR, occurred_on="2026-02-01")
            tb.donate("b", "bob", "1:00", actor=ACTOR, occurred_on="2026-02-02")
            tb.record_pot_exchange("b", "bob", "ann", "0:30", actor=ACTOR,
                                   occurred_on="2026-02-03", entry_id="p1")  # fmt: skip
            tb.reverse("p1", actor=ACTOR, occurred_on="2026-02-04")
            tb.import_members(
                [{"member_id": "cat", "kind": "individual", "bank": "b",
                  "joined_on": "2026-01-05", "display_name": "Cat"}], actor=ACTOR,
            )  # fmt: skip
            imported = tb.import_entries(
                [{"entry_id": "old-1", "occurred_on": "2026-01-10", "kind": "exchange",
                  "provider": "cat", "receiver": "ann", "hours": "1:30", "bank": "b"}],
                actor=ACTOR,
            )  # fmt: skip
            assert imported.recorded == 1
            tb.erase_member("cat", actor=ACTOR)
            report = tb.report("b", start="2026-02-01", end="2026-02-28")
            assert (report.exchanges, report.exchanged_minutes) == (1, 120)
            assert report.donated_to_pot_minutes == 60
            assert {a.account: a.balance_minutes for a in tb.balances("b")} == {
                "ann": 30, "bob": -180, "cat": 90, "@pot": 60, "@opening": 0
            }  # fmt: skip
            tables = tb.read_model.tables()
            assert tb.read_model.rebuild() > 0
            assert tb.read_model.tables() == tables
        assert timebank.audit(url).ok
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            admin.execute(f"DROP ROLE IF EXISTS {role}")


def test_a_postgres_failure_is_one_line_and_a_pipeline_aborted_one_says_where_to_look() -> None:
    """What the eventsourcing library raises for a failed PostgreSQL write,
    as timebank's error: the server's message and HINT on one line; psycopg's
    ``PipelineAborted`` (a statement after one that failed, whose error the
    library's retries did not keep) with where the first error is."""
    import psycopg

    url = "postgresql://u@h/db"
    full = OperationalError('could not extend file "x": No space left on device\nHINT:  Check')
    assert str(storage_error(url, full)) == (
        f"the store {url} failed: OperationalError: could not extend file"
        ' "x": No space left on device HINT: Check'
    )
    aborted = OperationalError("pipeline aborted")
    aborted.__cause__ = psycopg.errors.PipelineAborted()  # as the library raises it
    assert str(storage_error(url, aborted)) == (
        f"the store {url} failed: OperationalError: pipeline aborted (an earlier statement"
        " of the transaction failed: the server's log says why)"
    )


def test_a_sqlite_older_than_the_floor_is_refused_before_a_file_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version Python's sqlite3 module reports is set here to Ubuntu
    18.04's (3.22.0): no store file is made, and an in-memory store's
    report (its read model is SQLite) says so too. The floor itself, 3.26.0,
    is real in ``scripts/lowest``, which runs every test on it."""
    import sqlite3

    from timebank.storage._sqlite_failures import SQLITE_FLOOR

    assert SQLITE_FLOOR == (3, 26, 0)
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 22, 0))
    refusal = "this Python's SQLite is 3.22.0, older than 3.26.0, the oldest timebank runs on"
    with pytest.raises(errors.StorageError, match=refusal):
        timebank.open(f"sqlite:///{tmp_path / 'store.db'}")
    assert list(tmp_path.iterdir()) == []
    with timebank.open("memory://", clock=fixed_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        with pytest.raises(errors.StorageError, match=refusal):
            tb.report("b", start="2026-01-01", end="2026-01-31")
    monkeypatch.setattr(sqlite3, "sqlite_version_info", SQLITE_FLOOR)
    with timebank.open(f"sqlite:///{tmp_path / 'store.db'}", clock=fixed_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        assert tb.report("b", start="2026-01-01", end="2026-01-31").exchanges == 0


def _bank_of_x_and_y(tb: timebank.Timebank, bank: str = "b") -> None:
    """Open ``bank`` with individuals x and y."""
    tb.create_bank(bank, name=bank.upper(), actor=ACTOR, opened_on="2026-01-01")
    for member in ("x", "y"):
        tb.join(bank, member, kind="individual", actor=ACTOR, joined_on="2026-01-01")


def _end_the_write_lock_session(tb: timebank.Timebank) -> None:
    """End the server session that holds ``tb``'s PostgreSQL write lock, as a
    dropped connection does, and wait until it is gone: without the wait
    it could still hold the lock when a commit checked it."""
    import psycopg

    assert POSTGRES_URL is not None
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        pid = tb.backend._lock_pid  # type: ignore[attr-defined]
        ended = admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
        assert ended.fetchone() == (True,)


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
@pytest.mark.parametrize("other", ["proposes the id", "writes elsewhere"])
def test_a_command_that_lost_its_postgres_write_lock_runs_again_under_a_new_one(
    other: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write lock's own connection dropped while a command runs (docs/
    storage.md): another writer takes the lock and commits between the
    command's checks and its commit. The commit is fenced, so the command
    runs again from its reads: it sees the other's proposal of its id and
    is refused, or, when the other wrote elsewhere, is recorded once.
    Unfenced, the id was both pending in one bank and recorded in
    another, which no key of the store catches."""
    url = new_postgres_schema()
    with (
        timebank.open(url, clock=fixed_clock) as first,
        timebank.open(url, clock=fixed_clock) as second,
    ):
        for bank in ("one", "two"):
            _bank_of_x_and_y(first, bank)
        recorder = first._app.recorder
        insert_events = recorder.insert_events
        calls: list[str] = []

        def lose_the_lock_then_insert(*args: Any, **kwargs: Any) -> Any:
            calls.append("insert")
            if len(calls) == 1:  # the command has made its checks: its lock is lost
                _end_the_write_lock_session(first)
                if other == "proposes the id":
                    second.propose("two", "exchange", "x", "y", "1", actor="x", entry_id="e1")
                else:
                    second.record_exchange("two", "x", "y", "2", actor=ACTOR, entry_id="e2")
            return insert_events(*args, **kwargs)

        monkeypatch.setattr(recorder, "insert_events", lose_the_lock_then_insert)

        def record() -> timebank.RecordedEntry:
            return first.record_exchange("one", "x", "y", "1", actor=ACTOR, entry_id="e1")

        if other == "proposes the id":
            # run again, the command finds the proposal before it writes
            with pytest.raises(errors.EntryConflict, match="'e1' is pending"):
                record()
            assert len(calls) == 1
            assert [p.entry_id for p in second.pending("two")] == ["e1"]
            assert first.balance("one", "x") == 0
        else:
            assert record().entry_id == "e1"
            assert len(calls) == 2  # the fenced commit, and the command's second run
            assert (first.balance("one", "x"), first.balance("two", "x")) == (60, 120)
        monkeypatch.undo()
        report = first.audit(read_model=False)
        assert report.ok, report.summary()


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_an_import_that_lost_its_postgres_write_lock_runs_again_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An import's transaction is fenced as a command's commit is: with its
    write lock lost before its first part, the import is rolled back and
    run again under a new lock, and records each row once."""
    with timebank.open(new_postgres_schema(), clock=fixed_clock) as tb:
        _bank_of_x_and_y(tb)
        recorder = tb._app.recorder
        bulk_insert = recorder.bulk_insert
        transactions: list[int] = []

        @contextmanager
        def losing_the_lock_first() -> Iterator[Any]:
            transactions.append(1)
            if len(transactions) == 1:
                _end_the_write_lock_session(tb)
            with bulk_insert() as insert:
                yield insert

        monkeypatch.setattr(recorder, "bulk_insert", losing_the_lock_first)
        rows = [{"entry_id": f"i{n}", "occurred_on": "2026-02-01", "kind": "exchange",
                 "provider": "x", "receiver": "y", "hours": "1", "bank": "b"} for n in range(3)]  # fmt: skip
        assert tb.import_entries(rows, actor=ACTOR).recorded == 3
        assert len(transactions) == 2
        monkeypatch.undo()
        assert tb.balance("b", "x") == 180
        report = tb.audit(read_model=False)
        assert report.ok, report.summary()


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_python_error_while_writing_index_rows_on_postgres_commits_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The eventsourcing library's insert catches an exception raised in
    Python inside its transaction, commits, and raises it after: events
    were committed without their index rows. A fault in timebank's own
    part of the write (a bug, say) now fails the transaction on the server
    first, so nothing of the command is written, and the error says why."""
    with timebank.open(new_postgres_schema(), clock=fixed_clock) as tb:
        _bank_of_x_and_y(tb)
        recorder = tb._app.recorder

        def faulty(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("a fault while writing index rows")

        monkeypatch.setattr(recorder, "_insert_index_rows", faulty)
        with pytest.raises(errors.StorageError) as raised:
            tb.record_exchange("b", "x", "y", "1", actor=ACTOR, entry_id="e1")
        assert (
            "could not write the index rows of these events (RuntimeError: a fault while"
            " writing index rows), so their transaction is rolled back" in str(raised.value)
        )
        monkeypatch.undo()
        assert tb.balance("b", "x") == 0
        report = tb.audit(read_model=False)
        assert report.ok, report.summary()
        assert tb.record_exchange("b", "x", "y", "1", actor=ACTOR, entry_id="e1").minutes == 60


def test_profiles_are_read_many_at_a_time(tb: timebank.Timebank) -> None:
    """``get_many`` gives the stored profiles of the ids asked that have
    one, over more ids than one query takes; an id without one is left out."""
    from timebank.storage.base import IDS_PER_QUERY

    store = tb._app.profiles
    stored = {f"p{i}": timebank.Profile(display_name=f"P {i}", area=f"w{i % 3}")
              for i in range(0, IDS_PER_QUERY + 300, 2)}  # fmt: skip
    for member, profile in stored.items():
        store.put(member, profile)
    asked = [f"p{i}" for i in range(IDS_PER_QUERY + 300)] + ["nobody"]
    assert store.get_many(asked) == stored
    assert store.get_many([]) == {}
    assert store.changed_many({"p0": {"area": None}, "p1": {"phone": "01632 960001"}}) == [
        ("p0", timebank.Profile(display_name="P 0")),
        ("p1", timebank.Profile(phone="01632 960001")),
    ]
