"""SQLite's failures of a file itself, as one named error that says which
file and what to do (the store's file and the read model's alike); and the
switch of a file to WAL, which fails at once where connections open a new
file together."""

from __future__ import annotations

import sqlite3
import time
from typing import NoReturn

from timebank.domain.errors import StorageError

#: SQLite's result codes for a file that is not a database, or is damaged.
DAMAGED = ("SQLITE_NOTADB", "SQLITE_CORRUPT")
#: ... and for one the process cannot read, write or grow as it is.
UNUSABLE = ("SQLITE_IOERR", "SQLITE_FULL", "SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM")

#: ... and, among those, for a file that could not be written or grown (a full
#: disk, a quota, a file-size limit, no permission). A connection opened
#: read-only writes nothing, so when it copies into another file these are
#: the copy's. (Exact names: ``SQLITE_READONLY_RECOVERY`` and its kin are a
#: read-only connection's own.)
WRITE_FAILURES = (
    "SQLITE_FULL",
    "SQLITE_IOERR_WRITE",
    "SQLITE_IOERR_FSYNC",
    "SQLITE_IOERR_DIR_FSYNC",
    "SQLITE_IOERR_TRUNCATE",
    "SQLITE_READONLY",
)

#: The oldest SQLite timebank runs on (the library Python's ``sqlite3``
#: module finds on the system, which may be older than Python): 3.26.0, the
#: one Red Hat Enterprise Linux 8 ships. Upserts came in 3.24 and the read
#: model's window functions in 3.25; ``scripts/lowest`` runs every test on
#: 3.26.0.
SQLITE_FLOOR = (3, 26, 0)

#: What to do about a full disk.
FULL_CURE = "make room on the disk that holds it, then run the command again"

#: What to do about a damaged store file.
STORE_CURE = (
    "Keep the file (it may hold entries made since the last backup) and restore the store"
    " from a backup (docs/storage.md, Backups)"
)


def check_sqlite_version(found: tuple[int, int, int] | None = None) -> None:
    """:class:`StorageError` if this Python's SQLite (or ``found``) is older
    than :data:`SQLITE_FLOOR`: refused before a file is opened, where an
    older one would fail later, part-way, on a statement it cannot parse."""
    found = found or sqlite3.sqlite_version_info
    if found < SQLITE_FLOOR:
        shown, floor = (".".join(str(n) for n in v) for v in (found, SQLITE_FLOOR))
        raise StorageError(
            f"this Python's SQLite is {shown}, older than {floor}, the oldest timebank runs on:"
            " use a Python whose sqlite3 module finds a newer one, or a PostgreSQL store"
            " (docs/storage.md, SQLite)"
        )


def is_file_failure(error: BaseException) -> bool:
    """Whether SQLite says ``error`` is a failure of the file itself
    (damaged, not a database, unreadable, unwritable, full)."""
    name = getattr(error, "sqlite_errorname", "")
    return isinstance(error, sqlite3.DatabaseError) and name.startswith(DAMAGED + UNUSABLE)


def is_write_failure(error: BaseException) -> bool:
    """Whether SQLite says ``error`` is a failure to write or grow a file."""
    name = getattr(error, "sqlite_errorname", "")
    return isinstance(error, sqlite3.DatabaseError) and name in WRITE_FAILURES


def file_failure(error: BaseException, what: str, cure: str, url: str) -> StorageError | None:
    """``error`` as a :class:`StorageError` naming ``what`` (a file), when
    SQLite says that file is damaged or not a database (saying ``cure``),
    or cannot be read, written or grown; None for any other error (a
    mistake in a statement, a lock), which should pass as it is."""
    if not is_file_failure(error):
        return None
    if str(getattr(error, "sqlite_errorname", "")).startswith(DAMAGED):
        return StorageError(f"{what} is damaged ({error}). {cure}", url=url)
    if getattr(error, "sqlite_errorname", "") == "SQLITE_FULL":
        return StorageError(f"cannot use {what}: {error}: {FULL_CURE}", url=url)
    return StorageError(f"cannot use {what}: {error}", url=url)


def raise_file_failure(error: sqlite3.DatabaseError, what: str, cure: str, url: str) -> NoReturn:
    """Raise ``error`` as the :class:`StorageError` that :func:`file_failure`
    makes of it, or as it is (called in the ``except`` block that caught it)."""
    failure = file_failure(error, what, cure, url)
    if failure is None:
        raise error
    raise failure from None


def into_wal(conn: sqlite3.Connection, timeout_s: float, what: str, url: str) -> None:
    """Put the file of ``conn`` in WAL mode: left as it is when it is already
    (asking is a read), else switched, asked again while another connection
    holds the lock that the switch needs, which connections opening a new
    file at the same moment do. SQLite answers "database is locked" there at
    once, without its busy handler: three stores opening one new file
    together met it (measured on SQLite 3.26 and 3.40; docs/storage.md).
    Not switched within ``timeout_s``: ``StorageError`` ("cannot open
    WHAT: ..."). Other errors (a damaged file) pass as they are."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal":
                return
            failure = "another connection holds it"
        except sqlite3.OperationalError as e:
            if "locked" not in str(e):
                raise
            failure = str(e)
        if time.monotonic() > deadline:
            raise StorageError(f"cannot open {what}: {failure}", url=url)
        time.sleep(0.01)
