"""Crash safety: a writer killed with SIGKILL at random moments leaves a store
that opens, keeps every invariant, and holds exactly the acknowledged entries
(plus, at most, the one being recorded when the kill came: committed, not
yet acknowledged)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import timebank
from timebank import errors

from .conftest import ACTOR, BACKENDS, fixed_clock, new_postgres_schema

KILLS = 20
#: Copies of a running store's files, each at a moment of its own.
COPIES = 8
HUB = "crash/hub"

WRITER = """
import sys
from datetime import UTC, datetime
import timebank
from timebank import errors
url, prefix = sys.argv[1], sys.argv[2]
clock = lambda: datetime(2026, 6, 15, 12, tzinfo=UTC)
with timebank.open(url, clock=clock) as tb:
    n = 0
    while True:
        entry_id = f"{prefix}-{n}"
        if n % 3 == 0:
            tb.record_exchange("crash", "a", "b", minutes=1 + n % 7, actor="coord-1",
                               entry_id=entry_id)
        elif n % 3 == 1:
            tb.record_exchange("crash", "b", "c", minutes=2, actor="coord-1",
                               receiver_bank="crash/hub", entry_id=entry_id)
        else:
            tb.propose("crash/hub", "exchange", "c", "d", minutes=3, actor="c",
                       entry_id=entry_id)
            tb.confirm(entry_id, actor="d")
        print(entry_id, flush=True)
        n += 1
"""


def _crash_store(kind: str, tmp_path: Path) -> str:
    """A new store with the writer's banks and members; its URL."""
    url = f"sqlite:///{tmp_path / 'crash.db'}" if kind == "sqlite" else new_postgres_schema()
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("crash", name="Crash", actor=ACTOR, opened_on="2026-01-01")
        tb.create_bank(HUB, name="Hub", actor=ACTOR, opened_on="2026-01-01")
        for member in ("a", "b"):
            tb.join("crash", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
        for member in ("c", "d"):
            tb.join(HUB, member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    return url


def _start_writer(url: str, prefix: str) -> tuple[subprocess.Popen[str], str]:
    """A WRITER process, once it has acknowledged its first entry (whose id
    is returned with it)."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, prefix],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert writer.stdout is not None
    first = writer.stdout.readline()  # it is up and recording
    assert first.startswith(f"{prefix}-"), first
    return writer, first


@pytest.mark.slow
@pytest.mark.parametrize("kind", [k for k in BACKENDS if k != "memory"])
def test_writers_killed_at_random_lose_only_what_was_not_acknowledged(
    kind: str, tmp_path: Path
) -> None:
    url = _crash_store(kind, tmp_path)
    rng = random.Random(20261122)
    acknowledged: list[str] = []
    in_flight: set[str] = set()
    for kill in range(KILLS):
        writer, first = _start_writer(url, f"k{kill}")
        time.sleep(rng.uniform(0.0, 0.3))
        writer.send_signal(signal.SIGKILL)
        rest = writer.stdout.read()
        writer.wait()
        lines = [first.strip(), *rest.split()]
        acknowledged += lines
        in_flight.add(f"k{kill}-{len(lines)}")  # the one it may have been recording
        with timebank.open(url, clock=fixed_clock) as tb:
            tb.check_invariants()
            for entry_id in lines:
                tb.entry(entry_id)  # raises EntryNotFound if an acknowledged entry is lost
            extra = tb._app.index.count_entries() - len(acknowledged)
            committed_in_flight = {e for e in in_flight if _recorded(tb, e)}
            assert extra == len(committed_in_flight), (extra, committed_in_flight)
            assert tb.pending(HUB) == [] or all(p.entry_id in in_flight for p in tb.pending(HUB))
    assert len(acknowledged) >= KILLS


def _recorded(tb: timebank.Timebank, entry_id: str) -> bool:
    try:
        tb.entry(entry_id)
    except errors.EntryNotFound:
        return False
    return True


@pytest.mark.parametrize("kind", [k for k in BACKENDS if k != "memory"])
def test_a_writer_stopped_under_the_write_lock_holds_up_writers_and_no_reader(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer process stopped (SIGSTOP) while it holds the store's write
    lock, as a paused virtual machine, a debugger or a process swapped out
    stops one: reads, reports and the audit go on at once; a write waits
    out the lock's timeout and is refused with ``storage_error``, having
    changed nothing; once the writer runs again it goes on, and the store
    holds what it acknowledged and at most the one entry it was recording."""
    import timebank.storage.postgres as postgres_storage
    import timebank.storage.sqlite as sqlite_storage

    url = _crash_store(kind, tmp_path)
    for module in (sqlite_storage, postgres_storage):  # before the store opens its lock
        monkeypatch.setattr(module, "LOCK_TIMEOUT_S", 1)
    rng = random.Random(20261205)
    writer, first = _start_writer(url, "s")
    assert writer.stdout is not None
    try:
        for _ in range(500):
            writer.send_signal(signal.SIGSTOP)
            if _write_lock_held(url):
                break
            writer.send_signal(signal.SIGCONT)
            time.sleep(rng.uniform(0.0, 0.01))
        else:
            pytest.fail("the writer was never stopped while it held the write lock")
        with timebank.open(url, clock=fixed_clock) as tb:
            balances, entries = tb.balances(), tb._app.index.count_entries()
            assert entries >= 1
            report = tb.report("crash")
            assert report.transactions == tb.figures("crash").transactions >= 1
            assert tb.statement("crash", "a")
            assert tb.audit().ok
            with pytest.raises(errors.StorageError, match=r"another process has held the write"
                               r" lock of .* for more than 1 s"):  # fmt: skip
                tb.record_exchange("crash", "a", "b", minutes=5, actor=ACTOR, entry_id="meanwhile")
            assert (tb.balances(), tb._app.index.count_entries()) == (balances, entries)
            assert not _recorded(tb, "meanwhile")
        writer.send_signal(signal.SIGCONT)
        more = [writer.stdout.readline() for _ in range(3)]  # it goes on
    finally:
        writer.send_signal(signal.SIGCONT)
        writer.send_signal(signal.SIGKILL)
    lines = [first.strip(), *(line.strip() for line in more), *writer.stdout.read().split()]
    writer.wait()
    assert all(line.startswith("s-") for line in lines), lines
    with timebank.open(url, clock=fixed_clock) as tb:
        for entry_id in lines:
            tb.entry(entry_id)  # raises EntryNotFound if an acknowledged entry is lost
        assert tb._app.index.count_entries() - len(lines) in (0, 1)
        assert not _recorded(tb, "meanwhile")
        assert tb.audit().ok


def test_the_files_copied_at_any_moment_while_a_writer_runs_are_a_sound_store(
    tmp_path: Path,
) -> None:
    """A file-system or virtual machine snapshot of a running store holds
    its file and ``-wal`` (and ``-shm``) as they were at one moment: the
    writer is stopped (SIGSTOP) at random moments and its files copied
    then. Each copy opens, passes SQLite's integrity check and the audit,
    and holds every entry the writer had acknowledged before it."""
    url = _crash_store("sqlite", tmp_path)
    store = Path(url.removeprefix("sqlite:///"))
    rng = random.Random(20261205)
    # what it acknowledged goes to a file, read whole while it is stopped (a
    # pipe read without blocking is no reliable thing in Python's text I/O)
    said = tmp_path / "acknowledged.txt"
    with said.open("w") as out:
        writer = subprocess.Popen([sys.executable, "-c", WRITER, url, "v"], stdout=out)
    copies: list[tuple[Path, int]] = []
    acknowledged: list[str] = []
    try:
        for _ in range(500):  # it is up and recording
            if said.read_text().count("\n"):
                break
            time.sleep(0.01)
        for n in range(COPIES):
            time.sleep(rng.uniform(0.0, 0.05))
            writer.send_signal(signal.SIGSTOP)
            text = said.read_text()
            acknowledged = text[: text.rfind("\n") + 1].split()  # whole lines only
            copy = tmp_path / f"copy-{n}" / store.name
            copy.parent.mkdir()
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{store}{suffix}").exists():
                    shutil.copyfile(f"{store}{suffix}", f"{copy}{suffix}")
            copies.append((copy, len(acknowledged)))
            writer.send_signal(signal.SIGCONT)
    finally:
        writer.send_signal(signal.SIGCONT)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert len(acknowledged) > COPIES
    for copy, known in copies:
        with sqlite3.connect(copy) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        with timebank.open(f"sqlite:///{copy}", clock=fixed_clock, create=False) as tb:
            for entry_id in acknowledged[:known]:
                tb.entry(entry_id)  # raises EntryNotFound if the copy lost it
            assert tb._app.index.count_entries() - known in (0, 1)  # and the one in flight
            assert tb.audit().ok, copy


def _write_lock_held(url: str) -> bool:
    """Whether some process holds the store's write lock now (taken and let
    go at once if not)."""
    if url.startswith("sqlite:///"):
        import fcntl

        with Path(f"{url.removeprefix('sqlite:///')}.lock").open("a") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
            return False
    import psycopg

    base, schema = url.split("?schema=")
    with psycopg.connect(base, autocommit=True) as connection:
        key = f"timebank:write:{schema}"
        row = connection.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
        assert row is not None
        if row[0]:
            connection.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
        return not row[0]
