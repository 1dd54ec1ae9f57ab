"""The store's format: which releases of timebank may read a store
(docs/storage.md, "The store's format").

A store keeps one row, ``timebank_store(id, format, written_by)``. Opening
a store reads it before anything is written and refuses a format above
:data:`STORE_FORMAT`; an open that may write puts the row in (a new store,
one made before the row existed) or raises its format to this release's.
The SQL is the same on SQLite and PostgreSQL but for its placeholders and
the table's schema.
"""

from __future__ import annotations

from timebank.domain.errors import StoreFormatTooNew

__all__ = [
    "STORE_FORMAT",
    "TABLE",
    "checked",
    "create_sql",
    "select_sql",
    "this_release",
    "too_new",
    "upsert_sql",
]

#: The format this release writes and the highest it reads. Raised by a
#: release that stores anything an earlier release would misread or could
#: not read: a new event class, a field added to an event or given a new
#: meaning, a changed index table (tests/test_release_logs.py fails on such
#: a change until it is raised).
STORE_FORMAT = 1

#: The table of the one row.
TABLE = "timebank_store"


def create_sql(table: str) -> str:
    """The table (``table`` qualified by its schema on PostgreSQL)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY CHECK (id = 1),"
        " format INTEGER NOT NULL, written_by TEXT NOT NULL)"
    )


def select_sql(table: str) -> str:
    return f"SELECT format, written_by FROM {table} WHERE id = 1"  # noqa: S608 - a constant


def upsert_sql(table: str, placeholder: str) -> str:
    """The row put in, or its format raised (never lowered): two processes
    that open one store at once both write the same."""
    p = placeholder
    return (
        f"INSERT INTO {table} (id, format, written_by) VALUES (1, {p}, {p})"  # noqa: S608
        " ON CONFLICT (id) DO UPDATE SET format = excluded.format,"
        f" written_by = excluded.written_by WHERE {table}.format < excluded.format"
    )


def checked(url: str, row: tuple[int, str] | None) -> bool:
    """Whether an open that may write should write the row (``row`` as read,
    ``None`` when there is none). Raises :class:`StoreFormatTooNew` for a
    format above this release's."""
    if row is None:
        return True
    unreadable = too_new(row)
    if unreadable is not None:
        raise StoreFormatTooNew(
            f"the store at {url} was {unreadable}: upgrade timebank in this environment"
            " (docs/operations.md, Upgrading timebank)",
            url=url,
            found=int(row[0]),
            written_by=str(row[1]),
        )
    return int(row[0]) < STORE_FORMAT


def too_new(row: tuple[int, str]) -> str | None:
    """Why this release cannot read a store whose row is ``row``, or ``None``
    when it can."""
    from timebank import __version__  # noqa: PLC0415 - the package imports this module

    found, written_by = int(row[0]), str(row[1])
    if found <= STORE_FORMAT:
        return None
    return (
        f"written by timebank {written_by} (store format {found}); this is timebank"
        f" {__version__}, which reads stores of format {STORE_FORMAT} and below"
    )


def this_release() -> tuple[int, str]:
    """The row this release writes."""
    from timebank import __version__  # noqa: PLC0415 - the package imports this module

    return STORE_FORMAT, __version__
