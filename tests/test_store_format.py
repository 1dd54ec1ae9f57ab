"""The store's format (docs/storage.md, "The store's format"): a store says
which releases may read it, and one that a later release wrote in a format
this release cannot read is refused, by every way into it, changing nothing.

A later release is played by this one with ``STORE_FORMAT`` and
``__version__`` raised (``a_later_release``): what it writes is what the
real one would, the row and all.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import timebank
from timebank import errors
from timebank.cli import cli
from timebank.storage import _format as store_format

from .conftest import ACTOR, POSTGRES_URL, new_postgres_schema, postgres_schema

KINDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])
LATER = (store_format.STORE_FORMAT + 1, "9.0.0")


def _new_url(kind: str, tmp_path: Path) -> str:
    return new_postgres_schema() if kind == "postgres" else f"sqlite:///{tmp_path / 'store.db'}"


@contextmanager
def _sql(url: str) -> Iterator[Callable[[str], list[tuple[Any, ...]]]]:
    """Run statements on the store's own tables, around timebank (SQLite's
    file, or the PostgreSQL schema as the search path), committed at the end."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            yield lambda statement: conn.execute(statement).fetchall()
            conn.commit()
        return
    import psycopg

    assert POSTGRES_URL is not None
    with psycopg.connect(POSTGRES_URL) as connection:
        connection.execute(f'SET search_path TO "{postgres_schema(url)}"')
        yield (
            lambda statement: (
                connection.execute(statement).fetchall()
                if statement.lstrip().upper().startswith("SELECT")
                else (connection.execute(statement), [])[1]
            )
        )


def _row(url: str) -> tuple[Any, ...] | None:
    """The store's format row, or ``None`` with no table."""
    with _sql(url) as run:
        tables = (
            run("SELECT name FROM sqlite_master WHERE type = 'table'")
            if url.startswith("sqlite")
            else run(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )
        )
        if (store_format.TABLE,) not in tables:
            return None
        (row,) = run(f"SELECT id, format, written_by FROM {store_format.TABLE}")
        return tuple(row)


def _events(url: str) -> int:
    table = "stored_events" if url.startswith("sqlite") else "timebank_events"
    with _sql(url) as run:
        return int(run(f"SELECT count(*) FROM {table}")[0][0])


@contextmanager
def a_later_release(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process plays a later release that raised the store format."""
    with monkeypatch.context() as patch:
        patch.setattr(store_format, "STORE_FORMAT", LATER[0])
        patch.setattr(timebank, "__version__", LATER[1])
        yield


def _record(url: str, entry_id: str) -> None:
    with timebank.open(url) as tb:
        if not tb.banks():
            tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
            tb.join("b", "m-1", kind="individual", actor=ACTOR, joined_on="2026-01-01")
            tb.join("b", "m-2", kind="individual", actor=ACTOR, joined_on="2026-01-01")
        tb.record_exchange(
            "b", "m-1", "m-2", "1:00", actor=ACTOR, occurred_on="2026-02-01", entry_id=entry_id
        )


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_store_records_the_format_and_release_that_made_it(kind: str, tmp_path: Path) -> None:
    url = _new_url(kind, tmp_path)
    _record(url, "e-1")
    assert _row(url) == (1, store_format.STORE_FORMAT, timebank.__version__)
    assert timebank.STORE_FORMAT == store_format.STORE_FORMAT == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_store_a_later_release_wrote_is_refused_every_way_in_and_left_as_it_was(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _new_url(kind, tmp_path)
    _record(url, "e-1")  # this release's store, then the later release opens it
    with a_later_release(monkeypatch):
        _record(url, "e-2")
    assert _row(url) == (1, *LATER)
    events = _events(url)
    said = (
        f"the store at {url} was written by"
        f" timebank {LATER[1]} (store format {LATER[0]}); this is timebank"
        f" {timebank.__version__}, which reads stores of format {store_format.STORE_FORMAT}"
        " and below: upgrade timebank in this environment (docs/operations.md, Upgrading timebank)"
    )
    for way_in in (
        lambda: timebank.open(url),
        lambda: timebank.open(url, create=False),
        lambda: timebank.audit(url),
    ):
        with pytest.raises(errors.StoreFormatTooNew) as refused:
            way_in()
        assert str(refused.value) == said
        assert (refused.value.found, refused.value.written_by) == LATER
        assert refused.value.code == "store_format_too_new"
    for command in (
        ["balances"],
        ["audit"],
        ["report", "--bank", "b"],
        ["migrate", "--to", "memory://"],
    ):
        out = CliRunner().invoke(cli, ["--db", url, *command])
        assert (out.exit_code, out.output) == (1, f"error: store_format_too_new: {said}\n"), command
    assert (_row(url), _events(url)) == ((1, *LATER), events)  # nothing written
    with a_later_release(monkeypatch), timebank.open(url) as tb:  # which reads it on
        assert [e.entry_id for e in tb.statement("b", "m-1")] == ["e-1", "e-2"]


@pytest.mark.parametrize("kind", KINDS)
def test_only_an_open_that_may_write_puts_the_row_in_or_raises_it(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _new_url(kind, tmp_path)
    _record(url, "e-1")
    with _sql(url) as run:  # as a store made before the row existed
        run(f"DROP TABLE {store_format.TABLE}")
    with timebank.open(url, create=False) as tb:  # counts as format 1, and is read
        assert tb.balance("b", "m-1") == 60
    assert _row(url) is None  # an open that only reads wrote nothing
    timebank.open(url).close()
    this = (1, 1, timebank.__version__)
    assert _row(url) == this
    with a_later_release(monkeypatch):
        timebank.open(url, create=False).close()
        assert _row(url) == this
        timebank.open(url).close()
        assert _row(url) == (1, *LATER)
    with _sql(url) as run:  # never lowered, by an open of an older format
        run(f"UPDATE {store_format.TABLE} SET format = 0, written_by = '0.0.1'")
    timebank.open(url).close()
    assert _row(url) == this


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_sqlite_file_of_another_application_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE django_session (session_key TEXT PRIMARY KEY)")
        conn.execute("CREATE TABLE notes (n INTEGER)")
        conn.commit()
    before = _digest(path)
    url = f"sqlite:///{path}"
    for create in (True, False):
        with pytest.raises(errors.StorageError) as refused:
            timebank.open(url, create=create)
        assert type(refused.value) is errors.StorageError
        assert str(refused.value) == (
            f"{path} is not a timebank store: it holds another application's tables"
            " (django_session, notes), and timebank keeps its store in a file of its own"
            " (a backup copies and a restore replaces the whole file): name a new file"
        )
    out = CliRunner().invoke(cli, ["--db", url, "create-bank", "b", "--name", "B"])
    assert (out.exit_code, out.output.startswith("error: storage_error:")) == (1, True)
    # not a byte changed, not even its journal mode (WAL would leave files beside it)
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]


def test_a_read_model_named_as_a_store_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'timebank.db'}"
    _record(url, "e-1")
    with timebank.open(url) as tb:
        tb.report("b")  # the read model, caught up beside the store
    read_model = tmp_path / "timebank.reports.db"
    before = _digest(read_model)
    out = CliRunner().invoke(cli, ["--db", f"sqlite:///{read_model}", "balances"])
    assert (out.exit_code, out.output) == (
        1,
        f"error: storage_error: {read_model} is the read model of a store, not a store: name"
        " the store itself (timebank.db for timebank.reports.db)\n",
    )
    assert _digest(read_model) == before


def test_a_sqlite_store_that_someone_added_a_table_to_still_opens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    _record(url, "e-1")
    with _sql(url) as run:
        run("CREATE TABLE my_notes (entry_id TEXT, note TEXT)")
    _record(url, "e-2")
    with timebank.open(url, create=False) as tb:
        assert tb.balance("b", "m-1") == 120
    assert timebank.audit(url).ok


def test_an_empty_sqlite_file_is_no_store_to_read_and_a_new_one_to_write(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    url = f"sqlite:///{path}"
    with pytest.raises(errors.StoreNotFound, match="the file holds none"):
        timebank.open(url, create=False)
    assert path.stat().st_size == 0
    _record(url, "e-1")
    with timebank.open(url, create=False) as tb:
        assert tb.balance("b", "m-1") == 60


@pytest.mark.parametrize("kind", KINDS)
def test_processes_that_open_one_new_store_at_once_make_it_together(
    kind: str, tmp_path: Path
) -> None:
    """An app's workers starting at once, each opening the one new store:
    on PostgreSQL the library made its types and tables in each of them
    together, and opens failed ("duplicate key value violates unique
    constraint pg_type_typname_nsp_index", 25 of 30 rounds of three)."""
    import threading

    failures: list[str] = []
    for round_ in range(10):
        url = (
            new_postgres_schema()
            if kind == "postgres"
            else f"sqlite:///{tmp_path / f'store-{round_}.db'}"
        )
        ready = threading.Barrier(3)

        def open_it(url: str = url, ready: threading.Barrier = ready) -> None:
            ready.wait()
            try:
                timebank.open(url).close()
            except errors.StorageError as e:
                failures.append(str(e))

        threads = [threading.Thread(target=open_it) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert _row(url) == (1, store_format.STORE_FORMAT, timebank.__version__)
        _record(url, "e-1")  # a whole store, which works
        assert timebank.audit(url).ok
    assert failures == []


def _said_as_another_user(url: str, command: list[str]) -> str:
    """What the CLI says to ``command`` run by a user who is not the store's
    owner: as root (CI), in a forked child that becomes ``nobody``."""
    import json
    import os
    import pwd
    import select

    nobody = pwd.getpwnam("nobody")
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            out = CliRunner().invoke(cli, ["--db", url, *command])
            os.write(writing, json.dumps([out.exit_code, out.output]).encode())
        finally:
            os._exit(0)
    os.close(writing)
    answered, _, _ = select.select([reading], [], [], 60)
    assert answered, "the child said nothing"
    with os.fdopen(reading) as pipe:
        exit_code, output = json.loads(pipe.read())
    os.waitpid(child, 0)
    assert exit_code == 1
    return str(output)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root, to be another user (CI)"
)
def test_a_sqlite_store_another_user_may_not_write_says_what_they_cannot_do() -> None:
    """docs/storage.md, Who can read the files: a store is its owner's alone
    (0600), and SQLite writes beside it even to read. A reading command run
    by another user said only SQLite's "unable to open database file" or
    "attempt to write a readonly database"."""
    import tempfile

    with tempfile.TemporaryDirectory(dir="/tmp") as name:  # one any user may enter
        directory = Path(name)
        directory.chmod(0o755)
        store = directory / "timebank.db"
        url = f"sqlite:///{store}"
        _record(url, "e-1")
        before = _digest(store)
        said = _said_as_another_user(url, ["balances"])
        assert said == (
            f"error: storage_error: cannot use the store {url}: unable to open database file:"
            f" this process's user (nobody) cannot read or write {store}, and cannot write in"
            f" its directory {directory}, which SQLite needs even to read a store (its -wal"
            " and -shm files go beside it): run as the store's owner (root), or let this user"
            " read and write both (docs/storage.md, Who can read the files)\n"
        )
        store.chmod(0o644)  # read, but still not write
        said = _said_as_another_user(url, ["balances"])
        assert f"(nobody) cannot write {store}, and cannot write in its directory" in said
        new = directory / "new.db"
        said = _said_as_another_user(f"sqlite:///{new}", ["create-bank", "b", "--name", "B"])
        assert said.endswith(
            f"(nobody) cannot write in its directory {directory}, which SQLite needs even to read"
            " a store (its -wal and -shm files go beside it): make the store in a directory this"
            " user may write (docs/storage.md, Who can read the files)\n"
        )
        assert (_digest(store), new.exists()) == (before, False)
