"""Backups of a SQLite store (docs/storage.md, Backups): a checked, consistent
copy taken while other processes write, and the restore the docs describe."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import timebank
from timebank import errors
from timebank.cli import cli

from .conftest import (
    ACTOR,
    BACKENDS,
    POSTGRES_URL,
    drop_postgres_schema,
    fixed_clock,
    new_postgres_schema,
    open_store,
    postgres_schema,
    snapshot_state,
)
from .test_storage import damage


def _store(path: Path, entries: int = 20) -> str:
    url = f"sqlite:///{path}"
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        for member in ("x", "y"):
            tb.join("b", member, kind="individual", actor=ACTOR, joined_on="2026-01-01",
                    profile=timebank.Profile(display_name=f"Member {member}"))  # fmt: skip
        for _ in range(entries):
            tb.record_exchange("b", "x", "y", "0:30", actor=ACTOR)
    return url


def test_a_backup_is_a_whole_checked_copy_that_restores(tmp_path: Path) -> None:
    url = _store(tmp_path / "store.db")
    dest = tmp_path / "backups" / "store-2026-06-15.db"
    dest.parent.mkdir()
    with timebank.open(url, clock=fixed_clock) as tb:
        done = tb.backup(dest)
        before = (tb.balances(), tb.statement("b", "x"), tb.report("b").to_dict())
        events = tb._app.recorder.max_notification_id()
        tb.record_exchange("b", "y", "x", "2", actor=ACTOR, entry_id="after-the-backup")
    assert (done.path, done.bytes, done.events) == (str(dest), dest.stat().st_size, events)
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]  # no part file
    with sqlite3.connect(dest) as copy:  # one file: no write-ahead log to carry beside it
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    copy.close()
    assert (tmp_path / "store.reports.db").exists()  # the report above caught it up
    restored = timebank.restore(dest, url)
    assert (restored.path, restored.backup, restored.events) == (
        str(tmp_path / "store.db"), str(dest), events,
    )  # fmt: skip
    assert restored.replaced is not None
    replaced = Path(restored.replaced)
    assert replaced.parent == tmp_path
    assert replaced.name.startswith("store.db.replaced-")
    assert not (tmp_path / "store.reports.db").exists()  # rebuilt by the next report
    assert not list(tmp_path.glob("*.restoring"))
    with timebank.open(f"sqlite:///{replaced}", clock=fixed_clock, create=False) as tb:
        assert tb.entry("after-the-backup").minutes == 120  # kept aside, whole
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        assert tb.audit().ok
        assert (tb.balances(), tb.statement("b", "x"), tb.report("b").to_dict()) == before
        assert tb.profile("x") == timebank.Profile(display_name="Member x")
        with pytest.raises(errors.EntryNotFound):
            tb.entry("after-the-backup")
        tb.record_exchange("b", "y", "x", "1", actor=ACTOR)  # the store goes on
        assert tb.audit().ok


def test_a_backup_taken_while_another_process_writes_is_consistent(tmp_path: Path) -> None:
    """The copy is the store at one moment: whatever a writer in another
    process committed before it, nothing half-written, and it audits clean."""
    url = _store(tmp_path / "store.db", entries=1)
    writer = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, timebank\n"
            "with timebank.open(sys.argv[1]) as tb:\n"
            "    for i in range(1000):\n"
            "        tb.record_exchange('b', 'x', 'y', '0:15', actor='coord-1',"
            " occurred_on='2026-06-01')\n"
        ), url],
    )  # fmt: skip
    copies: list[timebank.Backup] = []
    try:
        with timebank.open(url, clock=fixed_clock) as tb:
            recorder = tb._app.recorder
            while recorder.max_notification_id() < 100 and writer.poll() is None:
                time.sleep(0.01)  # the writer is under way
            while writer.poll() is None and len(copies) < 8:
                copies.append(tb.backup(tmp_path / f"copy-{len(copies)}.db"))
                time.sleep(0.05)
    finally:
        assert writer.wait(timeout=120) == 0
    counts = [c.events for c in copies]
    assert counts == sorted(counts)
    assert len(set(counts)) >= 2, counts  # copies of different moments of the writing
    assert 100 <= counts[0] < 6 + 1000, counts
    for copy in copies:
        with timebank.open(f"sqlite:///{copy.path}", clock=fixed_clock, create=False) as tb:
            report = tb.audit()
            assert report.ok, report.summary()
            assert report.events == copy.events
            exchanges = report.entries
            assert tb.balance("b", "x") == 30 + 15 * (exchanges - 1)


def test_a_backup_never_replaces_a_file_and_a_store_must_be_a_sqlite_file(
    tmp_path: Path,
) -> None:
    url = _store(tmp_path / "store.db")
    taken = tmp_path / "taken.db"
    taken.write_bytes(b"last week's backup")
    with timebank.open(url, clock=fixed_clock) as tb:
        for dest in (taken, tmp_path / "store.db"):
            with pytest.raises(errors.BackupRefused, match="exists: back up to a new file"):
                tb.backup(dest)
    assert taken.read_bytes() == b"last week's backup"
    for kind in BACKENDS:
        if kind == "sqlite":
            continue
        with open_store(kind, tmp_path)() as tb, pytest.raises(
            errors.BackupRefused, match="not a SQLite file: back up PostgreSQL with pg_dump"
        ):  # fmt: skip
            tb.backup(tmp_path / f"{kind}.db")
        assert not (tmp_path / f"{kind}.db").exists()


def test_a_copy_that_fails_its_check_or_cannot_be_written_leaves_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    url = _store(path, entries=200)
    with (
        timebank.open(url, clock=fixed_clock) as tb,
        pytest.raises(errors.StorageError, match="cannot write the backup"),
    ):
        tb.backup(tmp_path / "no-such-directory" / "copy.db")
    damage(path, ("timebank_entry_index",))
    with (
        timebank.open(url, clock=fixed_clock) as tb,
        pytest.raises(errors.StorageError, match="failed its check, so it was not kept"),
    ):
        tb.backup(tmp_path / "copy.db")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("copy")) == []


def test_the_backup_command(tmp_path: Path) -> None:
    url = _store(tmp_path / "store.db")
    dest = tmp_path / "copy.db"
    out = CliRunner().invoke(cli, ["--db", url, "backup", str(dest)])
    assert out.exit_code == 0, out.output
    size = dest.stat().st_size
    assert out.output.startswith(f"backed up 25 events ({size / 1e6:,.1f} MB) to {dest}")
    assert f"to {dest}; the copy passed SQLite's integrity check" in out.output
    again = CliRunner().invoke(cli, ["--db", url, "backup", str(dest)])
    assert (again.exit_code, again.output.startswith("error: backup_refused:")) == (1, True)
    missing = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path / 'none.db'}", "backup",
                                       str(tmp_path / "x.db")])  # fmt: skip
    assert missing.output.startswith("error: store_not_found:")
    assert not (tmp_path / "none.db").exists()


def test_the_backup_runs_in_a_thread_beside_commands_of_the_same_store(tmp_path: Path) -> None:
    """A Timebank shared between threads: the backup reads on a connection
    of its own, and the commands of other threads land beside it."""
    url = _store(tmp_path / "store.db")
    with timebank.open(url, clock=fixed_clock) as tb:
        done: list[timebank.Backup] = []
        thread = threading.Thread(target=lambda: done.append(tb.backup(tmp_path / "copy.db")))
        thread.start()
        for _ in range(10):
            tb.record_exchange("b", "y", "x", "0:30", actor=ACTOR)
        thread.join()
        assert tb.balance("b", "x") == 20 * 30 - 10 * 30
    assert done[0].events >= 25


# --- restore -----------------------------------------------------------------------------------
def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_a_restore_refuses_with_nothing_changed(tmp_path: Path) -> None:
    url = _store(tmp_path / "store.db")
    with timebank.open(url, clock=fixed_clock) as tb:
        backup = tb.backup(tmp_path / "backup.db")
    (tmp_path / "junk.db").write_bytes(b"not a database at all")
    with sqlite3.connect(tmp_path / "other.db") as other:
        other.execute("CREATE TABLE t (x)")
    other.close()
    damaged = tmp_path / "damaged.db"
    shutil.copy(backup.path, damaged)
    damage(damaged, ("timebank_entry_index",))
    later = tmp_path / "later.db"  # a backup of the store once a later release wrote it
    shutil.copy(backup.path, later)
    with sqlite3.connect(later) as conn:
        conn.execute("UPDATE timebank_store SET format = format + 1, written_by = '9.0.0'")
    conn.close()
    before = _files(tmp_path)
    refusals = {
        tmp_path / "none.db": "no backup at",
        tmp_path / "store.db": "is the store itself",
        tmp_path / "junk.db": "failed its check, so nothing was restored",
        tmp_path / "other.db": "failed its check, so nothing was restored: not a timebank store",
        damaged: "failed its check, so nothing was restored",
        later: "nothing was restored: it was written by timebank 9.0.0 .store format 2.; this is"
        f" timebank {timebank.__version__}, which reads stores of format 1 and below: upgrade"
        " timebank to restore it",
    }
    for bad, reason in refusals.items():
        with pytest.raises(errors.RestoreRefused, match=reason):
            timebank.restore(bad, url)
        assert _files(tmp_path) == before, bad
    # A store in use, by this process or another: SQLite says so.
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.balance("b", "x")
        with pytest.raises(errors.RestoreRefused, match="is in use: stop every process"):
            timebank.restore(backup.path, url)
        tb.record_exchange("b", "x", "y", "1", actor=ACTOR)  # and it goes on
    assert not list(tmp_path.glob("*.restoring"))
    assert not list(tmp_path.glob("*.replaced-*"))
    for kind in BACKENDS:
        if kind != "sqlite":
            store = open_store(kind, tmp_path)()
            with store as tb, pytest.raises(errors.RestoreRefused, match="not a SQLite store"):
                timebank.restore(backup.path, tb.url)


def test_a_restore_keeps_a_killed_writers_log_with_the_store_it_replaces(tmp_path: Path) -> None:
    """The trap of restoring by hand: a write-ahead log left beside the
    store. The restore merges it into the replaced file, which keeps every
    committed entry, and the restored store has no log but its own."""
    url = _store(tmp_path / "store.db")
    with timebank.open(url, clock=fixed_clock) as tb:
        backup = tb.backup(tmp_path / "backup.db")
    killed = subprocess.run(
        [sys.executable, "-c", (
            "import os, signal, timebank\n"
            f"tb = timebank.open({url!r})\n"
            "tb.record_exchange('b', 'y', 'x', '3', actor='coord-1', entry_id='in-the-log')\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n"
        )],
        check=False, capture_output=True,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert (tmp_path / "store.db-wal").stat().st_size > 0  # committed there, not yet merged
    restored = timebank.restore(backup.path, url)
    assert restored.replaced is not None
    assert not Path(f"{restored.replaced}-wal").exists()  # merged into the file
    assert (
        not (tmp_path / "store.db-wal").exists() or (tmp_path / "store.db-wal").stat().st_size == 0
    )
    with timebank.open(f"sqlite:///{restored.replaced}", clock=fixed_clock, create=False) as tb:
        assert tb.entry("in-the-log").minutes == 180
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        with pytest.raises(errors.EntryNotFound):
            tb.entry("in-the-log")
        assert tb.audit().ok


def test_a_lost_or_damaged_store_is_restored(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    url = _store(path)
    with timebank.open(url, clock=fixed_clock) as tb:
        backup = tb.backup(tmp_path / "backup.db")
        balances = tb.balances()
    damage(path, ("stored_events",))
    damaged = path.read_bytes()
    restored = timebank.restore(backup.path, url)
    assert restored.replaced is not None
    kept = Path(restored.replaced).read_bytes()
    # kept as it was, but for the 100-byte file header SQLite rewrites on
    # taking it out of write-ahead-log mode
    assert (len(kept), kept[100:]) == (len(damaged), damaged[100:])
    path.write_bytes(b"its first page lost")  # not even a database now: moved as it is
    unreadable = timebank.restore(backup.path, url)
    assert unreadable.replaced is not None
    assert Path(unreadable.replaced).read_bytes() == b"its first page lost"
    # within the same second too, an earlier replaced store is never overwritten
    assert unreadable.replaced != restored.replaced
    assert Path(restored.replaced).read_bytes() == kept
    for name in ("store.db", "store.db-wal", "store.db-shm", "store.reports.db"):
        (tmp_path / name).unlink(missing_ok=True)  # the disk lost
    again = timebank.restore(backup.path, url)
    assert (again.replaced, again.events) == (None, backup.events)
    # the file lost but its write-ahead log left: never applied to the backup
    (tmp_path / "store.db").unlink()
    (tmp_path / "store.db-wal").write_bytes(b"another database's log")
    orphan = timebank.restore(backup.path, url)
    assert orphan.replaced is not None
    assert Path(f"{orphan.replaced}-wal").read_bytes() == b"another database's log"
    assert not Path(orphan.replaced).exists()
    assert not (tmp_path / "store.db-wal").exists()
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        assert tb.balances() == balances
        assert tb.audit().ok


def test_the_restore_command(tmp_path: Path) -> None:
    url = _store(tmp_path / "store.db")
    with timebank.open(url, clock=fixed_clock) as tb:
        backup = tb.backup(tmp_path / "backup.db")
        busy = CliRunner().invoke(cli, ["--db", url, "restore", backup.path])
        assert (busy.exit_code, busy.output.startswith("error: restore_refused:")) == (1, True)
        assert "is in use" in busy.output
    out = CliRunner().invoke(cli, ["--db", url, "restore", backup.path])
    assert out.exit_code == 0, out.output
    assert out.output.startswith(f"restored 25 events from {backup.path} into ")
    assert "store.db.replaced-" in out.output
    assert "keep it until `timebank audit`" in out.output


def test_a_store_path_that_is_a_link_is_the_file_it_points_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/storage.md, SQLite: through a link (``current.db``) and through
    the file's own path, writers take turns through one lock and share one
    read model; a restore through the link restores the file and leaves
    the link a link (it had replaced the link, leaving the file's own path
    on the old store)."""
    import fcntl

    import timebank.storage.sqlite as sqlite_storage

    (tmp_path / "real").mkdir()
    real, link = tmp_path / "real" / "tb.db", tmp_path / "current.db"
    with timebank.open(f"sqlite:///{real}", clock=fixed_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        tb.backup(tmp_path / "backup.db")
        tb.create_bank("c", name="C", actor=ACTOR, opened_on="2026-01-01")
        assert [b.bank for b in tb.banks()] == ["b", "c"]
        tb.read_model.catch_up()
    link.symlink_to(real)
    with (
        timebank.open(f"sqlite:///{link}", clock=fixed_clock) as through_link,
        (tmp_path / "real" / "tb.db.lock").open("a") as other,  # a writer by the file's path
    ):
        assert through_link.read_model.behind() == 0  # the file's read model
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with monkeypatch.context() as waiting:
            waiting.setattr(sqlite_storage, "LOCK_TIMEOUT_S", 0.2)  # once opened
            with pytest.raises(errors.StorageError, match="write lock"):
                through_link.join("b", "m1", kind="individual", actor=ACTOR)
        fcntl.flock(other.fileno(), fcntl.LOCK_UN)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.db", "current.db", "real"]
    restored = timebank.restore(tmp_path / "backup.db", f"sqlite:///{link}")
    assert link.is_symlink()
    assert link.resolve() == real
    assert restored.replaced is not None
    assert Path(restored.replaced).parent == real.parent
    for path in (link, real):
        with timebank.open(f"sqlite:///{path}", clock=fixed_clock) as tb:
            assert [b.bank for b in tb.banks()] == ["b"]


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_postgres_store_dumped_and_restored_as_the_storage_page_says_is_the_same_store(
    tmp_path: Path,
) -> None:
    """docs/storage.md: back up with ``pg_dump --schema=SCHEMA``; restore with
    psql into a database without that schema (the dump makes it)."""
    assert POSTGRES_URL is not None
    # the server's own tools (scripts/postgres says where), else those on PATH
    tools = Path(os.environ.get("TIMEBANK_TEST_POSTGRES_BIN") or shutil.which("pg_dump") or ".")
    tools = tools if tools.is_dir() else tools.parent
    url = new_postgres_schema()
    schema = postgres_schema(url)
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        tb.create_bank("b/hub", name="Hub", actor=ACTOR, opened_on="2026-01-01")
        for member in ("x", "y", "z"):
            tb.join("b", member, kind="individual", actor=ACTOR, joined_on="2026-01-01",
                    profile=timebank.Profile(display_name=member.upper(), area="north"))  # fmt: skip
        tb.join("b/hub", "h", kind="individual", actor=ACTOR, joined_on="2026-01-01")
        for n in range(6):
            tb.record_exchange("b", "x", "y", "1:30", actor=ACTOR, entry_id=f"e{n}")
        tb.reverse("e0", actor=ACTOR, reversal_id="r0")
        tb.record_exchange("b", "z", "h", "2", actor=ACTOR, entry_id="inter", receiver_bank="b/hub")
        tb.propose("b", "exchange", "y", "z", "1", actor="y", entry_id="asked")

        def state(tb: timebank.Timebank) -> tuple[object, ...]:
            return (
                snapshot_state(tb),
                [(e.entry_id, e.reversed_by) for e in tb.entries("b", rollup=True)],
                [tb.profile(m) for m in ("x", "y", "z")],
                tb.report("b", rollup=True).to_dict(),  # the read model, in the schema too
            )

        before = state(tb)
        last = tb._app.recorder.max_notification_id()
        y_had = tb.balance("b", "y")
    dump = tmp_path / "timebank.sql"
    subprocess.run([tools / "pg_dump", f"--schema={schema}", "-f", dump, "-d", POSTGRES_URL],
                   check=True)  # fmt: skip
    drop_postgres_schema(url)  # the store is lost
    subprocess.run([tools / "psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", POSTGRES_URL, "-f", dump],
                   check=True, capture_output=True)  # fmt: skip
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        assert state(tb) == before
        report = tb.audit()
        assert report.ok, report.summary()
        # the log goes on where it stopped, and so does the pending entry
        tb.confirm("asked", actor="z")
        tb.record_exchange("b", "y", "x", "0:30", actor=ACTOR, entry_id="after")
        assert tb._app.recorder.max_notification_id() > last
        assert tb.balance("b", "y") == y_had + 60 + 30
        assert [e.entry_id for e in tb.entries("b")][-2:] == ["asked", "after"]
