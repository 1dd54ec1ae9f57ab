"""Shared fixtures: a fixed clock and a store on every backend (memory, SQLite file)."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, settings

import timebank
from timebank.storage.memory import MemoryBackend

settings.register_profile(
    "ci", deadline=None, print_blob=True, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
settings.register_profile(
    "dev", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

#: "Now" for every test: noon UTC on 15 June 2026 (13:00 in Europe/London).
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TODAY = date(2026, 6, 15)
ACTOR = "coord-1"
_T = TypeVar("_T")

#: A PostgreSQL server for the tests: ``scripts/postgres run -- ...`` starts a
#: throwaway one and sets this. In CI it must be there: never a silent skip.
POSTGRES_URL = os.environ.get("TIMEBANK_TEST_POSTGRES")
if os.environ.get("CI") and not POSTGRES_URL:
    raise RuntimeError(
        "CI runs every storage test on PostgreSQL too: run the suite through"
        " `scripts/postgres run -- ...` (TIMEBANK_TEST_POSTGRES is not set)"
    )
BACKENDS = ["memory", "sqlite"] + (["postgres"] if POSTGRES_URL else [])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` run first, the rest in their order. On
    scripts/check's two workers (pytest-xdist's ``worksteal``) each worker
    starts on half the list and takes over the end of the other's when its
    own runs out: a long test started late left one worker running it alone
    at the end of the run, the other idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def fixed_clock() -> datetime:
    return NOW


def open_store(
    kind: str, tmp_path: Path, clock: Callable[[], datetime] | None = fixed_clock
) -> Callable[[], timebank.Timebank]:
    """A function that opens (or reopens) one store of ``kind`` (``clock``:
    the fixed one of the tests, or ``None`` for the system's)."""
    if kind == "memory":
        backend = MemoryBackend()
        return lambda: timebank.Timebank(backend, clock=clock)
    if kind == "postgres":
        url = new_postgres_schema()
        return lambda: timebank.open(url, clock=clock)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    return lambda: timebank.open(url, clock=clock)


def new_postgres_schema() -> str:
    """The test server's URL with a new, empty schema: a store of its own."""
    import psycopg

    if POSTGRES_URL is None:
        raise RuntimeError("no PostgreSQL server: run through scripts/postgres")
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{name}"')
    return f"{POSTGRES_URL}?schema={name}"


def postgres_schema(url: str) -> str:
    """The schema of a URL ``new_postgres_schema`` gave."""
    return url.rpartition("?schema=")[2]


def drop_postgres_schema(url: str) -> None:
    """Drop the schema of a URL ``new_postgres_schema`` gave, with its tables."""
    import psycopg

    with psycopg.connect(url.rpartition("?schema=")[0], autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{postgres_schema(url)}" CASCADE')


@pytest.fixture(params=BACKENDS)
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], timebank.Timebank]:
    return open_store(request.param, tmp_path)


@pytest.fixture
def tb(reopen: Callable[[], timebank.Timebank]) -> Iterator[timebank.Timebank]:
    store = reopen()
    yield store
    store.close()


@pytest.fixture
def bank(tb: timebank.Timebank) -> str:
    """A bank opened 1 Jan 2026 with individuals ann, bob, cat and organisation org."""
    tb.create_bank("riverside", name="Riverside", actor=ACTOR, opened_on="2026-01-01")
    for member in ("ann", "bob", "cat"):
        tb.join("riverside", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    tb.join("riverside", "org", kind="organisation", actor=ACTOR, joined_on="2026-01-01")
    return "riverside"


def snapshot_state(tb: timebank.Timebank) -> tuple[object, ...]:
    """Everything a refused command must leave unchanged."""
    banks = tb.banks()
    return (
        [(b.bank, b.members, b.policy, b.roles) for b in banks],
        [tb.pending(b.bank) for b in banks],
        [
            (b.bank, m.member, tb.guardians(b.bank, m.member))
            for b in banks
            for m in tb.members(b.bank)
        ],
        sorted((b.bank, b.account, b.balance_minutes) for b in tb.balances()),
        tb._app.index.count_entries(),
        tb._app.recorder.max_notification_id(),
    )


def without_change(tb: timebank.Timebank, call: Callable[[], _T]) -> _T:
    """What ``call`` returns, asserting it changed nothing (a command sent
    again and answered as before)."""
    before = snapshot_state(tb)
    answer = call()
    assert snapshot_state(tb) == before, "an answered command changed the store"
    return answer


def first_while_it_waits_for_the_lock(
    monkeypatch: pytest.MonkeyPatch, tb: timebank.Timebank, other_writer: Callable[[], object]
) -> None:
    """Run ``other_writer`` (another store object's command, as another
    process's is) when ``tb``'s next command asks for the write lock, once:
    after that command's checks made before the lock, if any, and before
    those made under it. The test asserts ``not monkeypatch._setattr`` after
    the command to know that it did."""
    write = tb._app.write

    def other_writer_first(command: Callable[[], _T]) -> _T:
        monkeypatch.undo()
        other_writer()
        return write(command)

    monkeypatch.setattr(tb._app, "write", other_writer_first)


@contextmanager
def a_reader_of(store: Path) -> Iterator[None]:
    """Another connection (to SQLite, another process) reading the store
    file in an open transaction, which keeps its write-ahead log from being
    emptied until the block ends."""
    reader = sqlite3.connect(store)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM timebank_profiles").fetchone()
        yield
    finally:
        reader.rollback()
        reader.close()


def report_chart(page: str, chart: str) -> str:
    """The ``<figure>`` of ``chart`` in an HTML report page, up to its end."""
    figure = page[page.index(f'<figure id="{chart}"') :]
    return figure[: figure.index("</figure>")]


def read_terminal(fd: int) -> bytes:
    """All that was written to a pseudo-terminal, read from its end ``fd``
    until the other end is closed (the process that held it is done)."""
    chunks = []
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except OSError:  # EIO: the other end is closed and read to the end
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)
