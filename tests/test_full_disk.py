"""A full disk: every command that needs room it cannot get fails with one
named line that says which file, and leaves the store, its read model,
backups and exported files as they were (docs/operations.md, "The disk is
full").

Real files that cannot grow: each command runs in a child process whose
files may not grow past a limit (``RLIMIT_FSIZE``, with ``SIGXFSZ``
ignored, so a write past it fails with ``EFBIG`` as one past a full disk
fails with ``ENOSPC``), and, where the test may mount one (as root, as CI
runs), on a real file system that is full. After each, the store passes
SQLite's integrity check and the audit, and the command, run again with
room, completes.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

import timebank
from timebank import errors

from .conftest import ACTOR, POSTGRES_URL, fixed_clock, new_postgres_schema

_CLI = [sys.executable, "-c", "from timebank.cli import main; main()"]
BANK = "full"
MEMBERS = [f"m{n}" for n in range(20)]
ENTRIES = 3000
#: Small enough that each command below needs more; large enough for
#: SQLite's shared-memory file (32 KB) beside a store in WAL mode.
LIMIT = 64 * 1024
#: The report the commands are held to (a fixed period: not "up to today").
REPORT = (
    "report",
    "--bank",
    BANK,
    "--from",
    "2026-01-01",
    "--to",
    "2026-06-30",
    "--format",
    "json",
)


def _limited(limit: int | None) -> Callable[[], None] | None:
    if limit is None:
        return None

    def limit_files() -> None:  # in the child, before it runs
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an ignored signal stays ignored
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return limit_files


def run(cwd: Path, *args: str, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """The ``timebank`` command in ``cwd`` on its store ``store.db``, its files
    kept under ``limit`` bytes each."""
    return subprocess.run(
        [*_CLI, "--db", "sqlite:///store.db", "--actor", ACTOR, *args],
        cwd=cwd, capture_output=True, text=True, check=False, preexec_fn=_limited(limit),
    )  # fmt: skip


def refused(result: subprocess.CompletedProcess[str], progress: str = "") -> str:
    """The one error line of a command that failed cleanly (after lines of
    progress that start with ``progress``, if given)."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    *before, last = result.stderr.strip().splitlines()
    assert all(progress and line.startswith(progress) for line in before), result.stderr
    assert last.startswith("error: "), result.stderr  # no traceback
    return last


def sound(directory: Path, db: str = "store.db") -> None:
    """The store is whole: SQLite's integrity check and the audit agree."""
    with closing(sqlite3.connect(directory / db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    audit = subprocess.run(
        [*_CLI, "--db", f"sqlite:///{db}", "audit", "--format", "json"],
        cwd=directory, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert audit.returncode == 0, audit.stdout + audit.stderr


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def entry_rows(count: int, prefix: str = "h") -> Iterator[dict[str, str]]:
    for n in range(count):
        yield {
            "entry_id": f"{prefix}{n}", "occurred_on": f"2026-{1 + n % 5:02d}-{1 + n % 28:02d}",
            "kind": "exchange", "provider": MEMBERS[n % 20], "receiver": MEMBERS[(n + 7) % 20],
            "hours": "1:30", "bank": BANK, "category": "gardening",
        }  # fmt: skip


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of 3,000 exchanges with its read model caught up, a backup of
    it, its export and its report (what the commands below are held to)."""
    directory = tmp_path_factory.mktemp("base")
    with timebank.open(f"sqlite:///{directory / 'store.db'}", clock=fixed_clock) as tb:
        tb.create_bank(BANK, name="Full", actor=ACTOR, opened_on="2026-01-01")
        for member in MEMBERS:
            tb.join(BANK, member, kind="individual", actor=ACTOR, joined_on="2026-01-01",
                    profile=timebank.Profile(display_name=f"Name {member}"))  # fmt: skip
        tb.import_entries(entry_rows(ENTRIES), actor=ACTOR)
        tb.read_model.catch_up()
    assert run(directory, "backup", "backup.db").returncode == 0
    assert run(directory, "export", "--to", "export").returncode == 0
    report = run(directory, *REPORT)
    (directory / "report.json").write_text(report.stdout)
    return directory


@pytest.fixture
def work(base: Path, tmp_path: Path) -> Path:
    """A copy of the base store's directory, for one test to fill up."""
    directory = tmp_path / "work"
    subprocess.run(["cp", "-a", str(base), str(directory)], check=True)
    return directory


def test_the_commands_need_more_room_than_the_limit(base: Path) -> None:
    """The limit is a real constraint for every file the tests below write."""
    for written in ("store.db", "store.reports.db", "backup.db", "export/entries.csv"):
        assert (base / written).stat().st_size > 2 * LIMIT, written


def test_a_report_that_cannot_build_its_read_model_changes_nothing(work: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work / 'store.reports.db'}{suffix}").unlink(missing_ok=True)
    before = digest(work / "store.db")
    line = refused(run(work, *REPORT, limit=LIMIT))
    assert line.startswith("error: storage_error: cannot use the read model store.reports.db:")
    assert digest(work / "store.db") == before
    sound(work)
    again = run(work, *REPORT)
    assert json.loads(again.stdout) == json.loads((work / "report.json").read_text())


def test_a_rebuild_that_runs_out_of_room_leaves_a_read_model_that_catches_up(
    work: Path,
) -> None:
    line = refused(run(work, "read-model", "rebuild", limit=LIMIT))
    assert line.startswith("error: storage_error: cannot use the read model store.reports.db:")
    sound(work)
    with closing(sqlite3.connect(work / "store.reports.db")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    again = run(work, *REPORT)
    assert json.loads(again.stdout) == json.loads((work / "report.json").read_text())
    full = subprocess.run(
        [*_CLI, "--db", "sqlite:///store.db", "audit", "--read-model", "full"],
        cwd=work, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert full.returncode == 0, full.stdout


def test_an_import_that_runs_out_of_room_records_nothing(work: Path) -> None:
    (work / "store.db").unlink()
    members = run(work, "import", "members", "export/members.csv", "--create-banks")
    assert members.returncode == 0, members.stderr
    line = refused(run(work, "import", "entries", "export/entries.csv", limit=LIMIT))
    assert line.startswith("error: storage_error: cannot use the store sqlite:///store.db:")
    sound(work)
    assert _entries(work) == 0
    assert run(work, "import", "entries", "export/entries.csv").returncode == 0
    assert _entries(work) == ENTRIES
    sound(work)


def test_an_import_from_a_pipe_that_cannot_be_kept_says_where_and_records_nothing(
    work: Path,
) -> None:
    """``import entries -`` keeps standard input in a temporary file first
    (docs/import.md): with no room for it, one line names the directory and
    says to set TMPDIR, nothing is left there, and the store is untouched."""
    (work / "store.db").unlink()
    members = run(work, "import", "members", "export/members.csv", "--create-banks")
    assert members.returncode == 0, members.stderr
    spools = work / "spools"
    spools.mkdir()
    piped = subprocess.run(
        [*_CLI, "--db", "sqlite:///store.db", "--actor", ACTOR, "import", "entries", "-"],
        cwd=work, input=(work / "export" / "entries.csv").read_text(), capture_output=True,
        text=True, check=False, preexec_fn=_limited(LIMIT), env={**os.environ, "TMPDIR": str(spools)},
    )  # fmt: skip
    assert refused(piped) == (
        f"error: file_error: [Errno {errno.EFBIG}] standard input could not be kept in {spools}"
        " for the import (File too large); nothing was imported: set TMPDIR to a directory"
        " with room for it"
    )
    assert list(spools.iterdir()) == []
    assert _entries(work) == 0
    sound(work)


def _entries(directory: Path) -> int:
    with timebank.open(f"sqlite:///{directory / 'store.db'}") as tb:
        return tb._app.index.count_entries()


def test_a_backup_to_a_full_disk_names_the_backup_and_leaves_no_file(work: Path) -> None:
    before = digest(work / "store.db")
    line = refused(run(work, "backup", "new.db", limit=LIMIT))
    # the backup's file, not the store (which it only reads)
    assert line.startswith("error: storage_error: cannot write the backup new.db:"), line
    assert not list(work.glob("new.db*"))  # nor the copy, nor its journal
    assert digest(work / "store.db") == before
    sound(work)
    assert run(work, "backup", "new.db").returncode == 0
    sound(work, "new.db")


def test_a_restore_on_a_full_disk_blames_no_backup_and_keeps_the_store(work: Path) -> None:
    made = run(work, "record-exchange", BANK, "m0", "m1", "1", "--entry-id", "after-backup")
    assert made.returncode == 0, made.stderr
    assert _entries(work) == ENTRIES + 1
    before = digest(work / "store.db")
    line = refused(run(work, "restore", "backup.db", limit=LIMIT))
    assert line.startswith("error: storage_error: cannot restore backup.db into store.db:"), line
    assert "failed its check" not in line  # the backup is sound: there was no room
    assert digest(work / "store.db") == before
    assert not list(work.glob("store.db.re*"))  # nothing restoring, nothing replaced
    sound(work)
    restored = run(work, "restore", "backup.db")
    assert restored.returncode == 0, restored.stderr
    assert _entries(work) == ENTRIES  # the backup's, without the entry made after it


def test_an_export_to_a_full_disk_keeps_the_files_already_there(work: Path) -> None:
    export = work / "export"
    old = {name: digest(export / name) for name in ("members.csv", "entries.csv")}
    made = run(work, "record-exchange", BANK, "m0", "m1", "1", "--entry-id", "after-export")
    assert made.returncode == 0, made.stderr
    assert run(work, "read-model", "catch-up").returncode == 0  # the export writes, only
    line = refused(run(work, "export", "--to", "export", limit=LIMIT))
    # the directory, or the file whose last part failed to reach the disk
    # (Python 3.13's larger buffers hold more of each file until the end)
    named = r"error: file_error: \[Errno 27\] File too large: 'export(/(members|entries)\.csv)?'"
    assert re.fullmatch(named, line), line
    assert {name: digest(export / name) for name in old} == old
    assert sorted(p.name for p in export.iterdir()) == ["entries.csv", "members.csv"]
    assert run(work, "export", "--to", "export").returncode == 0
    assert "after-export" in (export / "entries.csv").read_text()


def test_a_report_file_on_a_full_disk_is_named_and_not_left_half_written(work: Path) -> None:
    # Its charts make the page larger than SQLite's shared-memory file, which
    # the store needs (so the limit cannot be below it).
    small = 40 * 1024
    report = run(work, "report", "--bank", BANK, "--format", "html", "--output", "r.html")
    assert report.returncode == 0
    assert (work / "r.html").stat().st_size > small
    (work / "r.html").write_text("the report of last month")
    line = refused(
        run(work, "report", "--bank", BANK, "--format", "html", "--output", "r.html", limit=small)
    )
    assert line == "error: file_error: [Errno 27] File too large: 'r.html'", line
    assert (work / "r.html").read_text() == "the report of last month"
    assert [p.name for p in work.iterdir() if p.name.startswith((".r.", "r."))] == ["r.html"]


def test_a_migration_that_runs_out_of_room_says_to_empty_the_target(work: Path) -> None:
    # room for a page of events (1,000) of the three the store holds
    limit = (work / "store.db").stat().st_size // 2
    line = refused(run(work, "migrate", "--to", "sqlite:///copy.db", limit=limit), "copied ")
    assert line.startswith("error: storage_error: cannot use the store sqlite:///copy.db: ")
    assert line.endswith(
        ". That store may now hold part of the copy: empty it (delete its file with any -wal"
        " and -shm beside it, or drop its schema), then migrate again"
    ), line
    sound(work)
    again = refused(run(work, "migrate", "--to", "sqlite:///copy.db"))
    assert again == (
        "error: store_not_empty: sqlite:///copy.db already holds events: migrate into an"
        " empty store"
    )
    (work / "copy.db").unlink()
    assert run(work, "migrate", "--to", "sqlite:///copy.db").returncode == 0
    sound(work, "copy.db")


WRITER = """
import sys
import timebank
from timebank import errors
with timebank.open(sys.argv[1]) as tb:
    n = 0
    try:
        while True:
            tb.record_exchange("full", "m0", "m1", "1:00", actor="coord-1", entry_id=f"w{n}",
                               occurred_on="2026-06-01")
            print(f"w{n}", flush=True)
            n += 1
    except errors.StorageError as e:
        print(f"refused w{n}: {e}", flush=True)
    # the store is still usable for what needs no room
    print(f"balance {tb.balance('full', 'm0')}", flush=True)
"""


def _record_until_full(
    url: str, limit: int | None = None, env: dict[str, str] | None = None
) -> tuple[list[str], str, str]:
    """Record exchanges in a child process until the store cannot take one
    more: the entries it acknowledged, the refusal, the balance it read after."""
    writer = subprocess.run(
        [sys.executable, "-c", WRITER, url], capture_output=True, text=True, check=False,
        preexec_fn=_limited(limit), timeout=300, env=None if env is None else os.environ | env,
    )  # fmt: skip
    assert writer.returncode == 0, writer.stderr
    *acknowledged, refusal, balance = writer.stdout.splitlines()
    return acknowledged, refusal, balance


def _kept_exactly(url: str, acknowledged: list[str], refusal: str, balance: str) -> None:
    """Every acknowledged entry is there; the refused one is not; the store
    records again once there is room, and audits clean."""
    refused_id = refusal.split()[1].rstrip(":")
    with timebank.open(url) as tb:
        base_balance = tb.balance(BANK, "m0") - 60 * len(acknowledged)
        assert balance == f"balance {tb.balance(BANK, 'm0')}"
        for entry_id in acknowledged:
            assert tb.entry(entry_id).minutes == 60
        with pytest.raises(errors.NotFound):
            tb.entry(refused_id)
        tb.record_exchange(BANK, "m0", "m1", "1:00", actor=ACTOR, entry_id=refused_id,
                           occurred_on="2026-06-01")  # fmt: skip
        assert tb.balance(BANK, "m0") == base_balance + 60 * (len(acknowledged) + 1)
        audit = tb.audit()
        assert audit.ok, audit.summary()


def test_recording_into_a_store_that_cannot_grow_keeps_every_acknowledged_entry(
    work: Path,
) -> None:
    url = f"sqlite:///{work / 'store.db'}"
    size = max(os.path.getsize(work / "store.db"), 32 * 1024)
    acknowledged, refusal, balance = _record_until_full(url, size + 256 * 1024)
    assert acknowledged  # it recorded some before the file could not grow
    assert refusal.startswith(f"refused w{len(acknowledged)}: cannot use the store sqlite:///")
    _kept_exactly(url, acknowledged, refusal, balance)
    sound(work)


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A real file system of 4 MB (tmpfs), mounted for the test (in the
    system's temporary directory, where PostgreSQL's server user can reach
    it, which pytest's own directories do not let it)."""
    mount = Path(tempfile.mkdtemp(prefix="timebank-small-disk-"))
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if made.returncode != 0:  # not root, or no right to mount: CI runs as root
        mount.rmdir()
        pytest.skip(f"cannot mount a small file system here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)
        mount.rmdir()


def test_a_store_on_a_full_disk_refuses_with_what_to_do_and_loses_nothing(
    base: Path, small_disk: Path
) -> None:
    subprocess.run(["cp", str(base / "store.db"), str(small_disk)], check=True)
    url = f"sqlite:///{small_disk / 'store.db'}"
    acknowledged, refusal, balance = _record_until_full(url)
    assert acknowledged
    assert refusal.endswith(
        "database or disk is full: make room on the disk that holds it, then run the command again"
    ), refusal
    _make_room(small_disk)
    _kept_exactly(url, acknowledged, refusal, balance)
    sound(small_disk)


def _fill(disk: Path) -> None:
    """A file written until the disk has no room left."""
    with (disk / "ballast").open("wb", buffering=0) as ballast:
        try:
            while True:
                ballast.write(bytes(64 * 1024))
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise


def _make_room(disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)


@pytest.fixture
def small_tablespace(small_disk: Path) -> Iterator[str]:
    """A PostgreSQL tablespace on the small disk (the test server's role is
    a superuser), dropped afterwards with what was made in it."""
    if POSTGRES_URL is None:
        pytest.skip("no PostgreSQL server (CI always has one)")
    import psycopg

    if os.geteuid() == 0:  # the server runs as postgres (scripts/postgres)
        shutil.chown(small_disk, "postgres")
    name = f"small_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE TABLESPACE {name} LOCATION '{small_disk}'")
    try:
        yield name
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            for (schema,) in conn.execute(
                "SELECT DISTINCT n.nspname FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace JOIN pg_tablespace t ON t.oid = c.reltablespace"
                " WHERE t.spcname = %s AND n.nspname NOT LIKE 'pg\\_%%'",  # not TOAST's
                (name,),
            ).fetchall():
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            conn.execute(f"DROP TABLESPACE {name}")


@pytest.mark.slow
def test_a_postgres_store_on_a_full_disk_refuses_in_one_line_and_loses_nothing(
    small_disk: Path, small_tablespace: str
) -> None:
    """The store's tables in a tablespace on a full disk: the server refuses
    each write that needs a new page, and timebank says so in one line."""
    url = new_postgres_schema()
    (small_disk / "ballast").write_bytes(bytes(3 * 1024 * 1024))  # 1 MB left: fills sooner
    in_small = {"PGOPTIONS": f"-c default_tablespace={small_tablespace}"}
    setup = subprocess.run(
        [sys.executable, "-c", SETUP, url], capture_output=True, text=True, check=False,
        env=os.environ | in_small,
    )  # fmt: skip
    assert setup.returncode == 0, setup.stderr
    acknowledged, refusal, balance = _record_until_full(url, env=in_small)
    assert acknowledged
    assert refusal.startswith(f"refused w{len(acknowledged)}: the store postgresql://"), refusal
    # the server's words and its HINT on one line, or (when the library's
    # retry met the connection its failure left) where to find them
    assert refusal.endswith(
        ("No space left on device HINT: Check free disk space.", "the server's log says why)")
    ), refusal
    report = subprocess.run(
        [*_CLI, "--db", url, *REPORT], capture_output=True, text=True, check=False,
        env=os.environ | in_small,
    )  # fmt: skip
    line = refused(report)
    assert line.startswith("error: storage_error: the read model failed at postgresql://"), line
    assert line.endswith("No space left on device HINT: Check free disk space."), line
    _make_room(small_disk)
    _kept_exactly(url, acknowledged, refusal, balance)
    with timebank.open(url) as tb:  # the read model builds now, and holds every entry
        figures = tb.report(BANK, start="2026-01-01", end="2026-06-30")
        assert figures.transactions == len(acknowledged) + 1
        audit = tb.audit()  # its figures compared with the log
        assert audit.findings == (), audit.summary()


SETUP = f"""
import sys
import timebank
with timebank.open(sys.argv[1]) as tb:
    tb.create_bank({BANK!r}, name="Full", actor={ACTOR!r}, opened_on="2026-01-01")
    for member in {MEMBERS!r}:
        tb.join({BANK!r}, member, kind="individual", actor={ACTOR!r}, joined_on="2026-01-01")
"""


def test_a_store_that_cannot_even_be_opened_for_room_is_named_as_every_command_names_it(
    work: Path,
) -> None:
    """Opening a store in WAL mode makes its shared-memory file (32 KB)."""
    line = refused(run(work, "balance", BANK, "m0", limit=16 * 1024))
    assert line.startswith("error: storage_error: cannot use the store sqlite:///store.db: ")
    sound(work)


def test_a_report_that_waits_in_its_buffer_on_a_full_disk_names_the_file(
    work: Path, small_disk: Path
) -> None:
    """A report smaller than the file's buffer reaches the disk only when it
    is flushed at the end. That flush fails on a full disk, and so does
    closing the file thrown away, whose buffer still holds the report: the
    error told is the flush's, which names the file, not the second one."""
    output = small_disk / "r.json"
    output.write_text("the report of last month")
    assert len(report := (work / "report.json").read_bytes()) < io.DEFAULT_BUFFER_SIZE
    _fill(small_disk)
    line = refused(run(work, *REPORT, "--output", str(output)))
    assert line == f"error: file_error: [Errno 28] No space left on device: '{output}'", line
    assert output.read_text() == "the report of last month"
    assert sorted(p.name for p in small_disk.iterdir()) == ["ballast", "r.json"]
    _make_room(small_disk)
    assert run(work, *REPORT, "--output", str(output)).returncode == 0
    assert output.read_bytes() == report
