"""Imports of historic members and entries in the interchange layout
(docs/import.md): every row checked, then the whole file in one transaction.

The rows are read as they are iterated and checked on their own first
(columns, ids, dates, amounts, kinds, groups); then applied in the file's
order to the banks they touch with the domain's own rules, each refusal
becoming a problem at its row. Entries' events and index rows go into one
transaction held open for the whole import, in parts of
:data:`PART_ENTRIES` (``LedgerApplication.saving_in_parts``); it commits
only when no row has a problem (members are few: they are saved by one
``save_changes``). :class:`Importing` is mixed into
:class:`timebank.Timebank`.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from timebank._index import combined, index_rows
from timebank._inputs import validate_function, validate_path, validate_rows
from timebank._ledger import serialised
from timebank._output import TOLD_ONLY_BY_CASE, Whereabouts, counted
from timebank.domain import errors
from timebank.domain.bank import MEMBER_KINDS, Bank, recorded_entry
from timebank.domain.entries import NewEntry, RecordedEntry, group_legs
from timebank.domain.errors import ImportFailed
from timebank.domain.policy import Policy
from timebank.domain.registry import Registry
from timebank.domain.roles import Action
from timebank.domain.values import (
    EARLIEST_DAY,
    POT,
    TOO_EARLY,
    AccountKind,
    EntryKind,
    NoSuchDay,
    format_hours,
    is_whole,
    iso_day,
    parent_bank,
    parse_minutes,
    validate_account_id,
    validate_actor_id,
    validate_bank_id,
    validate_category,
    validate_entry_id,
    validate_flag,
    validate_member_id,
    validate_profile_text,
)
from timebank.readmodel import no_cyclic_gc
from timebank.readmodel.statement import balances_on
from timebank.storage import IndexedEntry, IndexUpdate

if TYPE_CHECKING:
    from uuid import UUID

    from eventsourcing.persistence import StoredEvent

    from timebank._access import Access
    from timebank._ledger import LedgerApplication
    from timebank.readmodel._db import ReadModelDB

__all__ = [
    "BALANCE_COLUMNS",
    "ENTRY_COLUMNS",
    "ENTRY_COLUMNS_REQUIRED",
    "ERRORS_MAX",
    "MEMBER_COLUMNS",
    "MEMBER_COLUMNS_REQUIRED",
    "BalanceCheck",
    "BalanceMismatch",
    "CsvRows",
    "ImportFailed",
    "ImportResult",
    "Importing",
    "RowProblem",
    "TimeOverflowRows",
    "read_csv",
    "read_timeoverflow",
]

#: The interchange layout: members, then entries (``receiver_bank`` is
#: optional, for entries between two banks of one tree).
MEMBER_COLUMNS = ("member_id", "kind", "bank", "joined_on", "display_name", "area", "left_on")
MEMBER_COLUMNS_REQUIRED = frozenset({"member_id", "kind", "bank", "joined_on"})
ENTRY_COLUMNS = (
    "entry_id", "occurred_on", "kind", "provider", "receiver", "hours", "bank",
    "category", "note", "reverses", "group_id", "receiver_bank",
)  # fmt: skip
ENTRY_COLUMNS_REQUIRED = frozenset(
    {"entry_id", "occurred_on", "kind", "provider", "receiver", "hours", "bank"}
)
#: Problems reported before an import stops looking for more.
ERRORS_MAX = 100
#: Entries an import applies between two writes into its open transaction:
#: the events of this many are held in memory at a time.
PART_ENTRIES = 5000
#: Entries of the store an import reads in one go: the rows already present
#: and the entries that reversals undo, compared with the file's rows.
READ_AHEAD = 2000

_KINDS = {
    "exchange": EntryKind.EXCHANGE,
    "pot_exchange": EntryKind.POT_EXCHANGE,
    "donation": EntryKind.DONATION,
    "gift": EntryKind.GIFT,
    "opening_balance": EntryKind.OPENING_BALANCE,
    "reversal": EntryKind.REVERSAL,
    "group_exchange": EntryKind.GROUP_EXCHANGE,  # as the export writes a group's rows
}

#: A row as read: its line in the file and its fields.
Row = tuple[int, Mapping[str, str]]
_LINE = operator.itemgetter(0)  # a kept row's line


@attrs.frozen
class RowProblem:
    """One thing wrong with one row: ``FILE:LINE: column: value: reason``."""

    file: str
    line: int
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        return (
            f"{_printable(self.file)}:{self.line}: {self.column}: {_shown(self.value)}:"
            f" {self.reason}"
        )

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


#: The most characters of a value a problem's line shows.
SHOWN_VALUE_MAX = 80


def _printable(text: str) -> str:
    """``text`` escaped if it holds characters a terminal would act on (an
    escape sequence, a line break) or not show: a value, or a file's name,
    in a line of its own. The objects keep it whole."""
    return text if text.isprintable() else repr(text)[1:-1]


def _shown(value: str) -> str:
    """A value as a problem's line shows it: :func:`_printable`, and cut
    short if long. ``RowProblem.value`` keeps it whole."""
    text = _printable(value)
    return text if len(text) <= SHOWN_VALUE_MAX else text[: SHOWN_VALUE_MAX - 1] + "…"


@attrs.frozen
class ImportResult:
    """What an import did (or, with ``dry_run``, would do). ``flagged`` are
    the entries flagged for a balance limit; ``warnings`` the members file's
    new members told from another only by case (docs/import.md)."""

    file: str
    rows: int
    recorded: int
    skipped: int
    flagged: tuple[str, ...]
    banks_created: tuple[str, ...]
    dry_run: bool
    warnings: tuple[RowProblem, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def summary(self) -> str:
        """One line: rows read, entries (or members) recorded, skipped as
        already present, flagged, and any warnings and banks created (what
        the CLI prints)."""
        verb = "would record" if self.dry_run else "recorded"
        return (
            f"{_printable(self.file)}: {counted(self.rows, 'row')} read; {verb} {self.recorded:,};"
            f" {self.skipped:,} already present; {len(self.flagged):,} flagged"
            + (f"; {counted(len(self.warnings), 'warning')}" if self.warnings else "")
            + (f"; banks created: {', '.join(self.banks_created)}" if self.banks_created else "")
        )


#: The columns of a balances file (docs/import.md, "Checking balances").
BALANCE_COLUMNS = ("bank", "account", "on", "hours")


@attrs.frozen
class BalanceMismatch:
    """A balance of a balances file that the store does not give."""

    file: str
    line: int
    bank: str
    account: str
    on: date
    expected_minutes: int
    actual_minutes: int

    @property
    def difference_minutes(self) -> int:
        """The store's balance less the file's."""
        return self.actual_minutes - self.expected_minutes

    def __str__(self) -> str:
        difference = self.difference_minutes
        more_or_less = "more" if difference > 0 else "less"
        return (
            f"{_printable(self.file)}:{self.line}: hours: {format_hours(self.expected_minutes)}:"
            f" the store gives {format_hours(self.actual_minutes)} at the end of {self.on}"
            f" ({format_hours(abs(difference))} {more_or_less})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "on": self.on.isoformat(),
                "difference_minutes": self.difference_minutes}  # fmt: skip


@attrs.frozen
class BalanceCheck:
    """What :meth:`Importing.check_balances` found: every row compared."""

    file: str
    rows: int
    mismatches: tuple[BalanceMismatch, ...]

    @property
    def ok(self) -> bool:
        """Every balance of the file is the store's."""
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "rows": self.rows, "ok": self.ok,
                "mismatches": [m.to_dict() for m in self.mismatches]}  # fmt: skip

    def summary(self) -> str:
        """One line: rows read, how many agree and how many differ."""
        differ = len(self.mismatches)
        agree = self.rows - differ
        return (
            f"{_printable(self.file)}: {counted(self.rows, 'row')} read;"
            f" {agree:,} {'agrees' if agree == 1 else 'agree'};"
            f" {differ:,} {'differs' if differ == 1 else 'differ'}"
        )


# --- reading files -------------------------------------------------------------------
class CsvRows:
    """The rows of a CSV file with a header row, as ``(line, row)``, read
    from the file as they are iterated (each iteration reads it again), so
    a large file is never held whole. The line counts the header as 1.
    UTF-8, a byte-order mark accepted.

    A column with no name in the header (a spreadsheet's trailing commas)
    is left out of the rows; a value under it is refused at its row.

    A missing header or bad bytes in it raise :class:`ImportFailed` at once;
    bad bytes further on raise it when the iteration reaches them; ragged
    rows, values under a column with no name and CSV errors are skipped and
    raised together, at their lines, once the whole file was read (an
    import reports them with its own). ``name`` names the file in
    problems (the path when None): the CLI names standard input, which it
    reads into a temporary file, ``<stdin>``."""

    def __init__(self, path: str | Path, *, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = _file_name(path, name)
        self._header_row = self._header()
        #: The header's named columns; one with no name (a spreadsheet's
        #: trailing commas) is passed over while its cells are empty.
        self.columns = [c for c in self._header_row if c]

    def _header(self) -> list[str]:
        try:
            with _text_file(self.path, self.name) as f:
                header = next(csv.reader(f, strict=True), None)
        except csv.Error as e:
            found = [RowProblem(self.name, 1, "-", "", f"not valid CSV: {e}")]
            raise ImportFailed(_failed_message(found), problems=found) from None
        if not header or not any(h.strip() for h in header):
            found = [RowProblem(self.name, 1, "-", "", "no header row")]
            raise ImportFailed(_failed_message(found), problems=found)
        columns = [h.strip() for h in header]
        # a row keeps one value a name: a column named twice would lose one
        twice = sorted({c for c in columns if c and columns.count(c) > 1})
        if twice:
            found = [RowProblem(self.name, 1, c, "", "column named twice") for c in twice]
            raise ImportFailed(_failed_message(found), problems=found)
        return columns

    def __iter__(self) -> Iterator[Row]:
        header, columns = self._header_row, self.columns
        width = len(header)
        named = [(n, c) for n, c in enumerate(header) if c]
        unnamed = [n for n, c in enumerate(header) if not c]
        found: list[RowProblem] = []
        with _text_file(self.path, self.name) as f:
            reader = csv.reader(f, strict=True)
            try:
                next(reader)
                line = reader.line_num + 1
                for fields in reader:
                    if not "".join(fields).strip():
                        pass  # a blank row
                    elif len(fields) != width:
                        found.append(RowProblem(self.name, line, "-", f"{len(fields)} fields",
                                                f"the header has {width} columns"))  # fmt: skip
                    elif not unnamed:
                        yield line, dict(zip(columns, fields, strict=True))
                    elif held := [n for n in unnamed if fields[n].strip()]:
                        found.extend(RowProblem(self.name, line, f"column {n + 1}", fields[n],
                                                "a value under a column with no name")
                                     for n in held)  # fmt: skip
                    else:
                        yield line, {c: fields[n] for n, c in named}
                    line = reader.line_num + 1
            except csv.Error as e:
                found.append(RowProblem(self.name, reader.line_num, "-", "", f"not valid CSV: {e}"))
        if found:
            raise ImportFailed(_failed_message(found), problems=found)


def read_csv(path: str | Path, *, name: str | None = None) -> CsvRows:
    """The rows of a CSV file with a header row, read as they are iterated:
    see :class:`CsvRows`. ``name`` names the file in problems (default:
    ``path``), for a file that stands for another (a download, a pipe)."""
    return CsvRows(validate_path(path, "path"), name=name)


def _file_name(path: str | Path, name: object) -> str:
    """What problems call the file at ``path``: ``name``, else the path."""
    if name is None:
        return str(path)
    if not isinstance(name, str) or not name.strip():
        raise errors.InvalidInput(f"name must be text naming the file: {name!r}")
    return name


@contextmanager
def _text_file(path: Path, name: str) -> Iterator[io.TextIOWrapper]:
    """``path`` open as UTF-8 text (a byte-order mark accepted), decoded as
    it is read; bad bytes raise :class:`ImportFailed` at their line of the
    file ``name``."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            yield f
    except UnicodeDecodeError:
        # the decoder reads ahead of the rows: find the first bad byte's line
        data = path.read_bytes()
        try:
            data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            found = [RowProblem(name, line, "-", repr(data[e.start : e.start + 4]),
                                _not_utf8(data, e))]  # fmt: skip
            raise ImportFailed(_failed_message(found), problems=found) from None
        raise


def _not_utf8(data: bytes, error: UnicodeDecodeError) -> str:
    """Why ``data`` is refused, and how to save it so that it is read."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return ('UTF-16 text (a spreadsheet\'s "Unicode Text"), not UTF-8;'
                ' save the file as "CSV UTF-8"')  # fmt: skip
    return f'not UTF-8 text ({error.reason}); save the file as UTF-8 (a spreadsheet\'s "CSV UTF-8")'


def _failed_message(
    problems: list[RowProblem], limit: int | None = None, outcome: str = "nothing was imported"
) -> str:
    shown = "\n".join(str(p) for p in problems[:20])
    more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
    stopped = f"\n{_stopped(limit)}" if limit is not None else ""
    return f"{outcome}: {counted(len(problems), 'problem')}\n{shown}{more}{stopped}"


def _stopped(limit: int) -> str:
    """What an import that reached its limit of problems says."""
    return f"the limit of {counted(limit, 'problem')} was reached: the file may hold more"


def _failed(
    problems: list[RowProblem], found: _Problems, outcome: str = "nothing was imported"
) -> ImportFailed:
    """The error of an import that found ``problems``; when they reached the
    limit, it says so (``limit_reached``): rows after went unchecked."""
    limit = found.limit if found.full else None
    return ImportFailed(
        _failed_message(problems, limit, outcome), problems=problems, limit_reached=limit
    )


# --- TimeOverflow's transfers ---------------------------------------------------------
#: The columns of TimeOverflow's transfer importer, in its order (no header).
TIMEOVERFLOW_COLUMNS = (
    "source_id", "source_type", "destination_id", "destination_type", "amount",
    "created_at", "reason", "post_id",
)  # fmt: skip


class TimeOverflowRows:
    """TimeOverflow's transfers as interchange entry rows, read from the
    file as they are iterated (see :func:`read_timeoverflow`); the rows it
    cannot map are skipped and raised together, as :class:`ImportFailed`,
    once the whole file was read (an import reports them with its own)."""

    def __init__(
        self, path: str | Path, bank: str, timezone: str, *, name: str | None = None
    ) -> None:
        self.path = Path(path)
        self.name = _file_name(path, name)
        self.bank = bank
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise errors.InvalidInput(f"unknown timezone: {timezone!r}") from None
        self.path.open("rb").close()  # a missing file is an error now, not later

    def __iter__(self) -> Iterator[Row]:
        found = _Problems(self.name, ERRORS_MAX)
        with _text_file(self.path, self.name) as f:
            reader = csv.reader(f)
            line = 1
            for fields in reader:
                if fields and any(v.strip() for v in fields):
                    mapped = _timeoverflow_row(line, fields, found, self.zone)
                    if mapped is not None:
                        yield line, {**mapped, "bank": self.bank}
                line = reader.line_num + 1
        if found.items:
            raise _failed(found.items, found)


def read_timeoverflow(
    path: str | Path, bank: str, *, timezone: str = Policy().timezone, name: str | None = None
) -> TimeOverflowRows:
    """TimeOverflow's transfer CSV (the eight columns its transfer importer
    takes, no header) as interchange entry rows of ``bank``, read as they
    are iterated; the lines are the file's. Time moves from the source
    account to the destination's:

    ============================  =================================================
    source -> destination          entry
    ============================  =================================================
    member -> member               ``exchange``: the destination helped the source
    member -> organisation         ``donation`` of the source to the pot
    organisation -> member         ``gift`` from the pot to the destination
    ============================  =================================================

    ``amount`` is in seconds (whole minutes only); ``created_at``'s date is
    the entry's date, in ``timezone`` (the bank's: give its policy's) when
    ``created_at`` has an offset (``Z``, ``+01:00``, or Ruby's `` UTC``);
    ``post_id`` becomes the category ``post-ID``; ``reason`` (free text) is
    dropped; entry ids are ``to-LINE``. The rows it cannot map raise
    :class:`ImportFailed` once the file was read, named by ``name`` (default:
    ``path``)."""
    return TimeOverflowRows(path, bank, timezone, name=name)


def _timeoverflow_row(  # noqa: PLR0911 - one return per way a row can be wrong
    line: int, fields: list[str], found: _Problems, zone: ZoneInfo
) -> dict[str, str] | None:
    if len(fields) != len(TIMEOVERFLOW_COLUMNS):
        found.add(line, "-", f"{len(fields)} fields",
                  f"TimeOverflow transfers have {len(TIMEOVERFLOW_COLUMNS)}:"
                  f" {', '.join(TIMEOVERFLOW_COLUMNS)}")  # fmt: skip
        return None
    row = dict(zip(TIMEOVERFLOW_COLUMNS, (f.strip() for f in fields), strict=True))
    ends = []
    for side in ("source", "destination"):
        kind = row[f"{side}_type"].lower()
        if kind not in ("member", "organization"):
            found.add(line, f"{side}_type", row[f"{side}_type"], "must be Member or Organization")
            return None
        ends.append(kind)
    seconds = row["amount"]
    # ASCII digits: str.isdigit also takes other scripts' digits ("٣") and
    # superscripts ("³", which int() then refuses)
    if not (seconds.isascii() and seconds.isdigit()) or int(seconds) % 60:
        found.add(line, "amount", seconds, "must be a whole number of minutes, in seconds")
        return None
    minutes = int(seconds) // 60
    if not minutes:  # said of its own column, not of the hours it would map to
        found.add(line, "amount", seconds, "must not be zero")
        return None
    try:
        day = _timeoverflow_day(row["created_at"], zone)
    except ValueError:
        found.add(line, "created_at", row["created_at"], "not a date and time")
        return None
    except OverflowError:  # 9999-12-31 late in the day, moved into a timezone ahead
        found.add(line, "created_at", row["created_at"], "after 9999-12-31 in the bank's timezone")
        return None
    entry = {
        "entry_id": f"to-{line}", "occurred_on": day, "hours": f"{minutes // 60}:{minutes % 60:02}",
        "category": f"post-{row['post_id']}" if row["post_id"] else "",
        "provider": "", "receiver": "",
    }  # fmt: skip
    source, destination = row["source_id"], row["destination_id"]
    if ends == ["member", "member"]:
        return {**entry, "kind": "exchange", "provider": destination, "receiver": source}
    if ends == ["member", "organization"]:
        return {**entry, "kind": "donation", "provider": source}
    if ends == ["organization", "member"]:
        return {**entry, "kind": "gift", "provider": POT, "receiver": destination}
    found.add(line, "destination_type", row["destination_type"],
              "a transfer from the organisation to itself moves nothing")  # fmt: skip
    return None


def _timeoverflow_day(text: str, zone: ZoneInfo) -> str:
    """The day of a TimeOverflow ``created_at`` in the bank's ``zone``: a
    time with an offset is moved into it (TimeOverflow keeps UTC, so a
    transfer at 00:30 British Summer Time reads 23:30 the day before); a
    time without one is the bank's own. Ruby writes UTC as `` UTC``."""
    if text.endswith(" UTC"):
        text = text[: -len(" UTC")] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.date() < EARLIEST_DAY:  # refused as the entry's date (and not moved off the calendar)
        return moment.date().isoformat()
    if moment.tzinfo is not None:
        moment = moment.astimezone(zone)
    return moment.date().isoformat()


# --- checking rows on their own --------------------------------------------------------
class _Problems:
    """Problems found so far, up to a limit."""

    def __init__(self, file: str, limit: int) -> None:
        if not isinstance(file, str):
            raise errors.InvalidInput(f"source must be text naming the file: {file!r}")
        # 0 was no problem at all: a file with a bad row "imported" nothing, unsaid
        if not is_whole(limit) or limit < 1:
            raise errors.InvalidInput(f"max_errors must be a whole number from 1: {limit!r}")
        self.file = file
        self.limit = limit
        self.items: list[RowProblem] = []

    def add(self, line: int, column: str, value: object, reason: str) -> None:
        if len(self.items) < self.limit:
            self.items.append(RowProblem(self.file, line, column, str(value), reason))

    @property
    def full(self) -> bool:
        return len(self.items) >= self.limit

    def check(self, line: int, column: str, value: str, parse: Callable[[str], Any]) -> Any:
        """``parse(value)``, or None with a problem for a named error."""
        try:
            return parse(value)
        except errors.TimebankError as e:
            self.add(line, column, value, e.message)
            return None


def _check_columns(
    given: Iterable[Any],
    required: frozenset[str],
    known: tuple[str, ...],
    found: _Problems,
) -> Iterator[Row]:
    """The rows, numbered, if the first one has the layout's columns (else
    none, with the problems); read as they are needed. A file's header
    (:attr:`CsvRows.columns`) is checked even with no row under it."""
    header: list[str] | None = getattr(given, "columns", None)
    rows = _guarded(_numbered(given), found)
    first = next(rows, None)
    if first is not None:
        columns = {str(column) for column in first[1]}  # a row from Python may have any keys
    elif header is not None:
        columns = set(header)
    else:
        return
    meant = {_column_key(column): column for column in known}
    if (separated := _separated_otherwise(columns, meant)) is not None:
        found.add(1, "-", separated[1], f"the columns are separated by {separated[0]};"
                  ' the layout\'s are separated by commas (save the file as "CSV UTF-8'
                  ' (comma delimited)")')  # fmt: skip
        return
    for column in sorted(required - columns):
        found.add(1, column, "", "required column missing")
    for column in sorted(columns - set(known)):
        if (layouts := meant.get(_column_key(column))) is not None:
            found.add(1, column, "", f"unknown column: the layout calls it {layouts}")
        else:
            found.add(1, column, "", f"unknown column (the layout's are: {', '.join(known)})")
    if found.items or first is None:
        return
    yield first
    yield from rows


#: The list separators a spreadsheet may save a CSV with in place of commas.
_OTHER_SEPARATORS: Final = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def _separated_otherwise(columns: set[str], meant: dict[str, str]) -> tuple[str, str] | None:
    """``(what separates them, the header)`` when the header's names are
    separated by another character than a comma (a spreadsheet set to
    another country's list separator): one column holding two or more of
    the layout's names, so read."""
    for column in columns:
        for separator, name in _OTHER_SEPARATORS.items():
            parts = column.split(separator)
            if sum(_column_key(part) in meant for part in parts) >= 2:
                return name, column
    return None


def _column_key(name: str) -> str:
    """A column's name as a spreadsheet may have changed it (``Member ID``,
    ``Joined-On``), for saying which of the layout's it is."""
    return "".join(name.casefold().replace("-", " ").replace("_", " ").split())


def _guarded(rows: Iterable[Row], found: _Problems) -> Iterator[Row]:
    """The rows; the problems a reader raises (a ragged row, bad bytes)
    become problems of the import, reported with its own."""
    try:
        yield from rows
    except ImportFailed as failed:
        for p in failed.problems:
            found.add(p.line, p.column, p.value, p.reason)


#: The form of an import's dates unless ``date_format`` gives another.
_ISO_FORM: Final = (
    "YYYY-MM-DD (ISO); give --date-format (date_format= from Python) for another form,"
    " such as %d/%m/%Y"
)


def _calendar_lacks(error: ValueError) -> bool:
    """Whether ``strptime`` refused text that fits the form but names no day
    (``31/02/2026``: "day is out of range for month"), not text of another
    form ("time data '...' does not match format '...'", which quotes the
    text and so is read no further)."""
    words = str(error)
    return not words.startswith("time data ") and "range" in words


def _day_parser(date_format: str | None) -> Callable[[str], date]:
    if date_format is not None and (not isinstance(date_format, str) or not date_format.strip()):
        raise errors.InvalidInput(f"date_format must be a strptime format: {date_format!r}")

    def parse(text: str) -> date:
        value = text.strip()
        try:
            if date_format is None:
                day = iso_day(value)
            # strptime reads any script's digits ("1\u0663" as 13): ASCII only, as hours
            elif not value.isascii() and any(c.isdecimal() and not c.isascii() for c in value):
                raise ValueError(value)
            else:
                day = datetime.strptime(value, date_format).date()  # noqa: DTZ007 - a date only
        except NoSuchDay as e:
            reason = e.reason if e.reason is TOO_EARLY else f"no such day: {e.reason}"
            raise errors.InvalidDate(reason, value=text) from None
        except ValueError as e:
            if date_format is None:
                raise errors.InvalidDate(
                    f"not a date in the form {_ISO_FORM}", value=text
                ) from None
            if _calendar_lacks(e):
                raise errors.InvalidDate(
                    f"no such day in the calendar, though in the form {date_format!r}"
                    " (a day past its month's end?)",
                    value=text,
                ) from None
            raise errors.InvalidDate(
                f"not a date in the form {date_format!r}", value=text
            ) from None
        if day < EARLIEST_DAY:
            raise errors.InvalidDate(TOO_EARLY, value=text)
        return day

    return parse


def _pot_or_member(text: str) -> str:
    """A gift's giver or receiver: a member, or the pot (TimeOverflow's
    organisation account pays members; a pot gives to another bank's)."""
    return POT if text == POT else validate_member_id(text)


def _stripped(row: Mapping[str, Any]) -> dict[str, str]:
    """Every value of a row as stripped text (``None`` as empty)."""
    return {
        k: v.strip() if type(v) is str else ("" if v is None else str(v).strip())
        for k, v in row.items()
    }


def _text(row: Mapping[str, str], column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value).strip()


class _EntryRow(NamedTuple):
    """A row parsed: what is kept of it for the whole import (see
    docs/import.md, "Memory"). One flat tuple, with :attr:`new` built
    when the row is applied: a million rows take ~50 MB less than as a row
    object holding a ``NewEntry`` (measured: 338 MB against 384 MB)."""

    line: int
    entry_id: str
    bank: str
    kind: EntryKind
    minutes: int
    occurred_on: date
    provider: str | None
    receiver: str | None
    category: str | None
    reverses: str | None
    receiver_bank: str | None
    day_text: str  # occurred_on and hours as the file wrote them, for problems
    hours_text: str
    group: tuple[NewEntry, Mapping[str, str]] | None = None  # a group's entry, first row

    @classmethod
    def of(cls, line: int, new: NewEntry, day_text: str, hours_text: str) -> _EntryRow:
        return cls(line, new.entry_id, new.bank, new.kind, new.minutes, new.occurred_on,
                   new.provider, new.receiver, new.category, new.reverses, new.receiver_bank,
                   day_text, hours_text)  # fmt: skip

    @property
    def new(self) -> NewEntry:
        if self.group is not None:
            return self.group[0]
        return NewEntry(
            entry_id=self.entry_id, bank=self.bank, kind=self.kind, minutes=self.minutes,
            occurred_on=self.occurred_on, provider=self.provider, receiver=self.receiver,
            category=self.category, reverses=self.reverses, receiver_bank=self.receiver_bank,
        )  # fmt: skip

    def value(self, column: str) -> str:
        """The value of ``column`` in the row, for a problem."""
        if self.group is not None:
            return _text(self.group[1], column)
        if column == "occurred_on":
            return self.day_text
        if column == "hours":
            return self.hours_text
        if column == "receiver":  # a donation's is the pot; an opening balance has none
            return self.receiver or "" if self.kind is not EntryKind.DONATION else ""
        return str(getattr(self, column, None) or "")


@attrs.frozen
class _MemberRow:
    line: int
    bank: str
    member: str
    kind: str
    joined_on: date
    left_on: date | None
    #: The profile's fields the row gives (``display_name``, ``area``; a
    #: blank cell gives nothing).
    fields: dict[str, str]


class _Parser:
    """Checks rows on their own. Values that repeat between rows (dates,
    amounts, banks, members, categories) are checked once and shared, so
    the rows kept for an import hold one copy of each."""

    def __init__(self, date_format: str | None, found: _Problems) -> None:
        self.found = found
        self.day_of = _day_parser(date_format)
        self.known: dict[tuple[str, str], Any] = {}  # (column kind, text) -> value

    def check(
        self, line: int, column: str, text: str, kind: str, parse: Callable[[str], Any]
    ) -> Any:
        """``parse(text)`` (shared), or None with a problem."""
        value = self.known.get((kind, text))
        if value is None:
            value = self.found.check(line, column, text, parse)
            if value is not None:
                self.known[kind, text] = value
        return value

    def share(self, text: str) -> str:
        return self.known.setdefault(("text", text), text)  # type: ignore[no-any-return]


def _parse_entries(
    rows: Iterable[Row], date_format: str | None, found: _Problems
) -> tuple[list[_EntryRow], int]:
    """The rows that passed the checks of a row on its own, and how many
    rows were read."""
    parser = _Parser(date_format, found)
    singles: list[_EntryRow] = []
    groups: dict[str, list[tuple[int, Mapping[str, str]]]] = {}
    seen: dict[str, int] = {}
    read = 0
    for line, row in rows:
        read += 1
        if found.full:
            break
        group_id = _text(row, "group_id")
        if group_id:
            groups.setdefault(group_id, []).append((line, row))
            continue
        entry_id = found.check(line, "entry_id", _text(row, "entry_id"), validate_entry_id)
        if entry_id is not None and entry_id in seen:
            found.add(line, "entry_id", entry_id, f"also on line {seen[entry_id]}")
            continue
        if entry_id is not None:
            seen[entry_id] = line
        parsed = _parse_entry(line, row, entry_id, parser)
        if parsed is not None:
            singles.append(parsed)
    for group_id, members in groups.items():
        new = _parse_group(group_id, members, parser.day_of, found)
        if new is None:
            continue
        first, raw = members[0]
        if group_id in seen:
            found.add(first, "group_id", group_id, f"also an entry id on line {seen[group_id]}")
            continue
        seen[group_id] = first
        kept = _EntryRow.of(first, new, _text(raw, "occurred_on"), _text(raw, "hours"))
        singles.append(kept._replace(group=(new, raw)))
    return singles, read


def _parse_entry(  # noqa: PLR0912 - one flat check per column
    line: int, row: Mapping[str, str], entry_id: str | None, parser: _Parser
) -> _EntryRow | None:
    found = parser.found
    before = len(found.items)
    text = _stripped(row).get
    kind_text = text("kind", "")
    kind = _KINDS.get(kind_text)
    if kind is None or kind is EntryKind.GROUP_EXCHANGE:
        found.add(line, "kind", kind_text, "must be one of exchange, pot_exchange, donation,"
                  " gift, opening_balance, reversal (a group's rows share a group_id)")  # fmt: skip
        return None
    day_text = parser.share(text("occurred_on", ""))
    day = parser.check(line, "occurred_on", day_text, "day", parser.day_of)
    bank = parser.check(line, "bank", text("bank", ""), "bank", validate_bank_id)
    far_text = text("receiver_bank", "")
    far = (
        parser.check(line, "receiver_bank", far_text, "bank", validate_bank_id)
        if far_text
        else None
    )
    category_text = text("category", "")
    category = (
        parser.check(line, "category", category_text, "category", validate_category)
        if category_text
        else None
    )
    provider_text, receiver_text = text("provider", ""), text("receiver", "")
    hours_text = parser.share(text("hours", ""))
    reverses = None
    minutes = None
    if kind is EntryKind.REVERSAL:
        for column, value in (("provider", provider_text), ("receiver", receiver_text)):
            if value:
                found.add(line, column, value, "a reversal names only the entry it reverses")
        reverses = found.check(line, "reverses", text("reverses", ""), validate_entry_id)
        if hours_text:  # checked against the reversed entry when applied
            minutes = parser.check(line, "hours", hours_text, "signed", _signed_minutes)
        provider = receiver = None
    else:
        if text("reverses", ""):
            found.add(line, "reverses", text("reverses", ""), "only a reversal reverses")
        if kind is EntryKind.OPENING_BALANCE:
            minutes = parser.check(line, "hours", hours_text, "signed", _signed_minutes)
        else:
            minutes = parser.check(line, "hours", hours_text, "minutes", parse_minutes)
        if kind is EntryKind.GIFT:
            provider = parser.check(line, "provider", provider_text, "giver", _pot_or_member)
        else:
            provider = parser.check(line, "provider", provider_text, "member", validate_member_id)
        receiver = None
        if kind is EntryKind.GIFT:  # to another bank's pot too, as the API takes it
            receiver = parser.check(line, "receiver", receiver_text, "giver", _pot_or_member)
            if receiver == POT and (not far_text or far == bank):
                found.add(line, "receiver", receiver_text,
                          "a gift to the bank's own pot is a donation")  # fmt: skip
        elif kind in (EntryKind.EXCHANGE, EntryKind.POT_EXCHANGE):
            receiver = parser.check(line, "receiver", receiver_text, "member", validate_member_id)
        elif receiver_text:
            found.add(line, "receiver", receiver_text, f"a {kind_text} has no receiver")
        if kind is EntryKind.OPENING_BALANCE and far:
            found.add(line, "receiver_bank", far, "an opening balance is within one bank")
    if len(found.items) > before or entry_id is None or day is None or bank is None:
        return None
    if kind in (EntryKind.DONATION, EntryKind.OPENING_BALANCE):
        receiver = None  # as the API records them (docs/events.md)
    return _EntryRow(
        line, entry_id, bank, kind,
        minutes or 0,  # a reversal's: its entry's, filled in when applied
        day, provider, receiver, category, reverses,
        None if far == bank else far,
        day_text, hours_text,
    )  # fmt: skip


def _signed_minutes(text: str) -> int:
    return parse_minutes(text, allow_negative=True)


def _balance_minutes(text: str) -> int:
    return parse_minutes(text, allow_negative=True, allow_zero=True)


def _parse_group(  # noqa: PLR0912 - one flat check per column
    group_id: str,
    rows: list[tuple[int, Mapping[str, str]]],
    day_of: Callable[[str], date],
    found: _Problems,
) -> NewEntry | None:
    first = rows[0][0]
    before = len(found.items)
    gid = found.check(first, "group_id", group_id, validate_entry_id)
    provided: dict[str, int] = {}
    received: dict[str, int] = {}
    shared: dict[str, set[str]] = {"occurred_on": set(), "bank": set(), "category": set()}
    for line, row in rows:
        found.check(line, "entry_id", _text(row, "entry_id"), validate_entry_id)
        kind_text = _text(row, "kind")
        if kind_text not in ("exchange", "group_exchange"):
            found.add(line, "kind", kind_text, "a group's rows are exchanges")
        for column in ("reverses", "receiver_bank"):
            if _text(row, column):
                found.add(line, column, _text(row, column), "not allowed in a group exchange")
        minutes = found.check(line, "hours", _text(row, "hours"), parse_minutes)
        for column, into in (("provider", provided), ("receiver", received)):
            text = _text(row, column)
            if text:
                member = found.check(line, column, text, validate_member_id)
                if member is not None and minutes is not None:
                    into[member] = into.get(member, 0) + minutes
        if not _text(row, "provider") and not _text(row, "receiver"):
            found.add(line, "provider", "", "a group's row names a provider or a receiver")
        for column, values in shared.items():
            values.add(_text(row, column))
    for column, values in shared.items():
        if len(values) > 1:
            found.add(first, column, " / ".join(sorted(values)),
                      f"the rows of group {group_id!r} must agree")  # fmt: skip
    if len(found.items) > before or gid is None:
        return None
    day = found.check(first, "occurred_on", next(iter(shared["occurred_on"])), day_of)
    bank = found.check(first, "bank", next(iter(shared["bank"])), validate_bank_id)
    category_text = next(iter(shared["category"]))
    category = (
        found.check(first, "category", category_text, validate_category) if category_text else None
    )
    participants = None
    try:
        participants = group_legs(provided, received)
    except errors.TimebankError as e:
        found.add(first, "group_id", group_id, e.message)  # the group's hours as a whole
    if participants is None or day is None or bank is None or len(found.items) > before:
        return None
    return NewEntry(
        entry_id=gid,
        bank=bank,
        kind=EntryKind.GROUP_EXCHANGE,
        minutes=sum(provided.values()),
        occurred_on=day,
        category=category,
        participants=participants,
    )


def _parse_members(rows: list[Row], date_format: str | None, found: _Problems) -> list[_MemberRow]:
    day_of = _day_parser(date_format)
    parsed: list[_MemberRow] = []
    #: (member, column) -> the first value a row gives, and its line: a
    #: person has one profile, so their rows must agree on it
    given: dict[tuple[str, str], tuple[str, int]] = {}
    for line, row in rows:
        if found.full:
            break
        before = len(found.items)
        member = found.check(line, "member_id", _text(row, "member_id"), validate_member_id)
        kind = _text(row, "kind")
        if kind not in {str(k) for k in MEMBER_KINDS}:
            found.add(line, "kind", kind, "must be individual or organisation")
        bank = found.check(line, "bank", _text(row, "bank"), validate_bank_id)
        joined = found.check(line, "joined_on", _text(row, "joined_on"), day_of)
        left_text = _text(row, "left_on")
        left = found.check(line, "left_on", left_text, day_of) if left_text else None
        if joined is not None and left is not None and left < joined:
            found.add(line, "left_on", left_text, f"before joined_on ({joined})")
        name, area = _text(row, "display_name"), _text(row, "area")
        for column, text in (("display_name", name), ("area", area)):
            if not text:
                continue
            found.check(line, column, text, functools.partial(validate_profile_text, field=column))
            if member is not None:
                first, first_line = given.setdefault((member, column), (text, line))
                if text != first:
                    found.add(line, column, text, f"{member!r} has {first!r} on line {first_line}")
        if len(found.items) > before or member is None or bank is None or joined is None:
            continue
        fields = {c: t for c, t in (("display_name", name), ("area", area)) if t}
        parsed.append(_MemberRow(line, bank, member, kind, joined, left, fields))
    return parsed


def _told_only_by_case(
    parsed: list[_MemberRow], said: Whereabouts, strict: bool, found: _Problems
) -> list[RowProblem]:
    """A warning for each member new to the store whose id another member's
    matches but for case: a member of a bank (``said``, asked before
    anything of the file is joined) or a new member on an earlier line;
    with ``strict``, a problem instead. Each is named once, at the first
    line that gives them."""
    first: dict[str, int] = {}  # each new member's first line, in line order
    for row in sorted(parsed, key=lambda r: r.line):
        if row.member not in first and not said.knows(row.member):
            first[row.member] = row.line
    earlier: dict[str, list[str]] = {}  # new members by casefolded id
    warnings = []
    for member, line in first.items():
        alike = earlier.setdefault(member.casefold(), [])
        others = said.alike_members(member) + [f"{o!r} is on line {first[o]}" for o in alike]
        alike.append(member)
        if not others:
            continue
        reason = f"{TOLD_ONLY_BY_CASE}: {'; '.join(others)}"
        if strict:
            found.add(line, "member_id", member, f"{reason} (refused: strict)")
        else:
            warnings.append(RowProblem(found.file, line, "member_id", member, reason))
    return warnings


def _wanted(parsed: list[_EntryRow], present: set[str]) -> Iterator[str]:
    """The stored entries the rows will ask for, in the rows' order: each
    row's reversed entry, then the row's own entry."""
    for row in parsed:
        if row.reverses is not None and row.reverses in present:
            yield row.reverses
        if row.entry_id in present:
            yield row.entry_id


# --- the mixin -----------------------------------------------------------------------
_COLUMN_OF_ERROR: dict[type[errors.TimebankError], str] = {
    errors.OccurredInFuture: "occurred_on",
    errors.ReversalBeforeEntry: "occurred_on",
    errors.BeforeBankOpened: "occurred_on",
    errors.EntryTooLarge: "hours",
    errors.InvalidAmount: "hours",
    errors.BalanceLimitExceeded: "hours",
    errors.PotOverdrawn: "hours",
    errors.AlreadyReversed: "reverses",
    errors.CannotReverseReversal: "reverses",
    errors.EntryNotFound: "reverses",
    errors.EntryConflict: "entry_id",
    errors.BankNotFound: "bank",
    errors.BanksNotInSameTree: "receiver_bank",
    errors.NotPermitted: "bank",
}


class _StoredEntries:
    """The store's entries that an import's rows name (a row already
    present, a reversal's stored entry), read ahead in the rows' order,
    :data:`READ_AHEAD` at a time: a few queries instead of two or three
    round trips an entry (a second import of 60,000 entries on PostgreSQL
    took 86 s read one by one). A read event is mapped when its row asks
    for it, so a damaged one is named at its own row, as before."""

    def __init__(
        self,
        app: LedgerApplication,
        entry_of: Callable[[IndexedEntry, object, str], RecordedEntry],
        entry: Callable[[str], RecordedEntry],
        wanted: Iterator[str],
    ) -> None:
        self._app = app
        self._entry_of = entry_of
        self._entry = entry
        #: The ids the rows will ask for, in their order (lazily: a re-import
        #: of a million rows would hold a million more references).
        self._wanted = wanted
        self._held: dict[str, tuple[IndexedEntry, StoredEvent | None]] = {}
        self._bank_ids: dict[UUID, str] = {}  # each bank's name, asked once

    def get(self, entry_id: str) -> RecordedEntry:
        """The stored entry ``entry_id``, as :meth:`Timebank.entry` gives it
        (and its errors, for an id the store does not hold)."""
        if entry_id not in self._held:
            ids = list(itertools.islice(self._wanted, READ_AHEAD))
            if entry_id not in ids:  # a retried row, or rows before it asked for nothing
                ids.append(entry_id)
            self._held = {found.entry_id: (found, stored) for found, stored in
                          self._app.index.find_entries(ids)}  # fmt: skip
        if entry_id not in self._held:
            return self._entry(entry_id)
        found, stored = self._held[entry_id]
        bank_id = self._bank_ids.get(found.bank_uuid)
        if bank_id is None:
            bank_id = self._app.bank_by_uuid(found.bank_uuid).bank_id
            self._bank_ids[found.bank_uuid] = bank_id
        with self._app.unreadable_named(f"entry {entry_id!r}"):
            event = None if stored is None else self._app.mapper.to_domain_event(stored)
        return self._entry_of(found, event, bank_id)


class _Session:
    """The banks an import changes, in memory, and the index rows of the
    events it triggers on them; saved all at once."""

    def __init__(
        self,
        app: LedgerApplication,
        create_banks: bool,
        actor: str,
        earliest: Mapping[str, date],
        today_for: Callable[[Policy], date],
    ) -> None:
        self.app = app
        self.create_banks = create_banks
        self.actor = actor
        self.today_for = today_for
        #: The earliest date the file gives each bank: a bank it creates opens then.
        self.earliest = earliest
        self.ledgers: dict[str, Bank] = {}
        self.registry: Registry | None = None
        self.created: list[str] = []
        self.index: list[IndexUpdate] = []
        #: Banks whose permission for the actor was checked (roles do not
        #: change during an import; see Importing._require_once).
        self.permitted: set[str] = set()
        #: Entry ids of the file, and of the entries its reversals undo,
        #: already in the store (asked once, in the write).
        self.present: set[str] = set()
        #: Those entries, read as the rows ask for them.
        self.stored: _StoredEntries | None = None
        #: Entry ids of the file that name a proposal, pending or settled
        #: without taking effect: spent (asked once, in the write).
        self.proposed: set[str] = set()
        #: Today's date in each bank, asked of the clock once an import (a
        #: bank's timezone does not change during it).
        self.today_by_bank: dict[str, date] = {}
        #: False in a dry run: nothing is written, so no index rows are made.
        self.writing = True

    def bank(self, bank_id: str, opened_on: date) -> Bank:
        ledger = self.ledgers.get(bank_id)
        if ledger is not None:
            return ledger
        try:
            ledger = self.app.bank(bank_id)
        except errors.BankNotFound:
            if not self.create_banks:
                raise errors.BankNotFound(
                    f"no bank {bank_id!r} (give --create-banks, or create_banks=True from Python,"
                    " to create it)",
                    bank=bank_id,
                ) from None
            opened_on = min(opened_on, self.earliest.get(bank_id, opened_on))
            parent_id = parent_bank(bank_id)
            parent = None if parent_id is None else self.bank(parent_id, opened_on)
            policy = Policy() if parent is None else parent.policy
            day = opened_on if parent is None else max(opened_on, parent.opened_on)
            if day > self.today_for(policy):
                raise errors.OccurredInFuture(
                    f"bank {bank_id!r} cannot open on {day}", bank=bank_id, subject=bank_id
                ) from None
            if self.registry is None:
                self.registry = self.app.registry() or Registry()
            self.registry.register(bank_id)
            ledger = Bank(
                bank_id=bank_id, name=bank_id, policy=policy, opened_on=day, actor=self.actor
            )
            self.created.append(bank_id)
        self.ledgers[bank_id] = ledger
        return ledger

    def stored_entry(self, entry_id: str) -> RecordedEntry:
        """A stored entry a row names (see :class:`_StoredEntries`)."""
        assert self.stored is not None, "read once the present entries are known"
        return self.stored.get(entry_id)

    def today(self, ledger: Bank) -> date:
        """Today's date in ``ledger``'s timezone, as at the import's first
        question about it."""
        day = self.today_by_bank.get(ledger.bank_id)
        if day is None:
            day = self.today_by_bank[ledger.bank_id] = self.today_for(ledger.policy)
        return day

    def indexed(self, ledgers: list[Bank], home: str, marks: list[int],
                parties: Mapping[str, list[str]]) -> None:  # fmt: skip
        """Index the events triggered on ``ledgers`` since ``marks`` (unless
        the session writes nothing)."""
        if not self.writing:
            return
        for ledger, mark in zip(ledgers, marks, strict=True):
            for event in ledger.pending_events[mark:]:
                self.index.append(
                    index_rows(event, ledger.bank_id, ledger.id, ledger.bank_id == home,
                               list(parties.get(ledger.bank_id, [])))
                )  # fmt: skip

    def _changed(self) -> list[Any]:
        """The registry and the banks with events not yet written."""
        aggregates: list[Any] = [self.registry] if self.registry is not None else []
        return aggregates + [ledger for ledger in self.ledgers.values() if ledger.pending_events]

    def save(self) -> None:
        aggregates = self._changed()
        if aggregates:
            self.app.save_changes(*aggregates, index=combined(self.index))

    def write_part(self, save: Callable[[Sequence[Any], IndexUpdate], None] | None) -> None:
        """Write the events triggered so far, with their index rows, into
        the import's open transaction; with no ``save`` (a dry run, or after
        a problem: nothing will be committed) drop them. Either way the
        banks keep their state and hold no pending events."""
        aggregates = self._changed()
        if save is not None:
            save(aggregates, combined(self.index))
        else:
            for aggregate in aggregates:
                aggregate.collect_events()
        self.index = []


class _Rollback(Exception):
    """Raised inside the write command so the changed banks are dropped."""


class Importing:
    """Imports; mixed into :class:`~timebank.Timebank`."""

    _app: LedgerApplication
    _access: Access

    if TYPE_CHECKING:  # provided by Timebank

        def _today_for(self, policy: Policy) -> date: ...

        def _bank_ids(self) -> list[str]: ...

        def _same_entry_or_conflict(
            self, new: NewEntry, recorded: RecordedEntry | None = None
        ) -> RecordedEntry: ...

        def _entry_of(
            self, found: IndexedEntry, entry_event: object, bank_id: str
        ) -> RecordedEntry: ...

        def _check_not_pending(self, entry_id: str) -> None: ...

        def _reading(self) -> AbstractContextManager[ReadModelDB]: ...

        def entry(self, entry_id: str) -> RecordedEntry: ...

        def _ledgers(
            self, home: Bank, receiver_bank: str | None, load: Callable[[str], Bank] | None = None
        ) -> list[Bank]: ...

        def _apply_entry(
            self,
            ledgers: list[Bank],
            new: NewEntry,
            actor: str,
            on_behalf_of: str | None,
            *,
            historic: bool = False,
            flag_limits: bool = False,
            today: Callable[[Bank], date] | None = None,
        ) -> None: ...

        def _apply_reversal(
            self,
            ledgers: list[Bank],
            new: NewEntry,
            original: RecordedEntry,
            actor: str,
            on_behalf_of: str | None,
            *,
            flag_limits: bool = False,
            today: Callable[[Bank], date] | None = None,
        ) -> dict[str, list[str]]: ...

    @serialised
    def check_balances(
        self,
        rows: Iterable[Row] | Iterable[Mapping[str, str]],
        *,
        source: str = "balances",
        date_format: str | None = None,
        max_errors: int = ERRORS_MAX,
    ) -> BalanceCheck:
        """Compare the balances an older system showed (``bank, account, on,
        hours``: docs/import.md, "Checking balances") with the store's at the
        end of each day ``on``; writes nothing. Raises :class:`ImportFailed`
        listing every row that cannot be read or names what the store does
        not hold (up to ``max_errors``), before any balance is compared."""
        rows = validate_rows(rows)
        found = _Problems(source, max_errors)
        parse_day = _day_parser(date_format)
        listed = _check_columns(rows, frozenset(BALANCE_COLUMNS), BALANCE_COLUMNS, found)
        wanted: list[tuple[int, str, str, date, int]] = []
        given: dict[tuple[str, str, date], tuple[int, int, str]] = {}
        banks_of = self._whereabouts()  # for the rows that name a member not in their bank
        ledgers: dict[str, Bank] = {}  # each bank read once (a round trip on PostgreSQL)
        for line, raw in listed:
            if found.full:  # the limit of problems: the rows after go unchecked
                break
            row = {column: _text(raw, column) for column in BALANCE_COLUMNS}
            bank = found.check(line, "bank", row["bank"], validate_bank_id)
            account = found.check(line, "account", row["account"], validate_account_id)
            day = found.check(line, "on", row["on"], parse_day)
            minutes = found.check(line, "hours", row["hours"], _balance_minutes)
            if bank is None or account is None or day is None or minutes is None:
                continue
            if not self._balance_row_holds(found, line, row, (bank, account, day), banks_of,
                                           ledgers):  # fmt: skip
                continue
            earlier = given.setdefault((bank, account, day), (minutes, line, row["hours"]))
            if earlier[0] != minutes:
                again = f"{account!r} is given {earlier[2]} on {day} on line {earlier[1]}"
                found.add(line, "hours", row["hours"], again)
            wanted.append((line, bank, account, day, minutes))
        if found.items:
            raise _failed(found.items, found, "nothing was checked")
        with self._reading() as db:
            actual = balances_on(db, [(bank, account, day) for _, bank, account, day, _ in wanted])
        mismatches = tuple(
            BalanceMismatch(source, line, bank, account, day, minutes, balance)
            for (line, bank, account, day, minutes), balance in zip(wanted, actual, strict=True)
            if balance != minutes
        )
        return BalanceCheck(source, len(wanted), mismatches)

    def _balance_row_holds(
        self, found: _Problems, line: int, row: Mapping[str, str], key: tuple[str, str, date],
        banks_of: Whereabouts, ledgers: dict[str, Bank],
    ) -> bool:  # fmt: skip
        """Whether the store holds the row's bank and account and its day is
        not after the bank's today (else a problem at the column; a member
        not in the bank is told the banks they are in). ``ledgers`` holds
        the banks read so far."""
        bank, account, day = key
        ledger = ledgers.get(bank)
        if ledger is None:
            try:
                ledger = ledgers[bank] = self._app.bank(bank)
            except errors.BankNotFound as e:
                found.add(line, "bank", row["bank"], e.message)
                return False
        if account not in ledger.balances:
            where = "" if account.startswith("@") else banks_of.of(account)
            found.add(line, "account", row["account"],
                      f"no account {account!r} in bank {bank!r}{where}")  # fmt: skip
            return False
        today = self._today_for(ledger.policy)
        if day > today:
            found.add(line, "on", row["on"], f"after today ({today}) in bank {bank!r}")
            return False
        return True

    @serialised
    def import_members(
        self,
        rows: Iterable[Row] | Iterable[Mapping[str, str]],
        *,
        actor: str,
        source: str = "members",
        create_banks: bool = False,
        dry_run: bool = False,
        strict: bool = False,
        date_format: str | None = None,
        max_errors: int = ERRORS_MAX,
    ) -> ImportResult:
        """Import members in the interchange layout (docs/import.md): all the
        rows or none. ``rows`` are ``(line, row)`` pairs (:func:`read_csv`)
        or plain rows (lines counted from 2). Raises :class:`ImportFailed`
        listing every problem (up to ``max_errors``); writes nothing then,
        nor with ``dry_run``. A member already in the bank with the same
        membership periods is skipped. A new member whose id another
        member's matches but for case is recorded with a warning
        (``ImportResult.warnings``), or refused with ``strict``."""
        actor = validate_actor_id(actor)
        create_banks = validate_flag("create_banks", create_banks)
        dry_run = validate_flag("dry_run", dry_run)
        strict = validate_flag("strict", strict)
        rows = validate_rows(rows)
        found = _Problems(source, max_errors)
        listed = list(_check_columns(rows, MEMBER_COLUMNS_REQUIRED, MEMBER_COLUMNS, found))
        parsed = _parse_members(listed, date_format, found)
        by_member: dict[tuple[str, str], list[_MemberRow]] = {}
        for row in parsed:
            by_member.setdefault((row.bank, row.member), []).append(row)
        #: the fields the file gives each member it records
        profiles: dict[str, dict[str, str]] = {}
        outcome: dict[str, Any] = {"recorded": 0, "skipped": 0, "warnings": []}

        earliest = _earliest((row.bank, row.joined_on) for row in parsed)

        def command() -> list[str]:
            session = _Session(self._app, create_banks, actor, earliest, self._today_for)
            # before anything is joined: against the store as it was
            warnings = _told_only_by_case(parsed, self._whereabouts(session), strict, found)
            # counted afresh if a write conflict makes the store retry the command
            outcome.update(recorded=0, skipped=0, warnings=warnings)
            profiles.clear()
            for (bank_id, member), periods in sorted(by_member.items()):
                if found.full:
                    break
                periods.sort(key=lambda r: r.joined_on)
                first = periods[0]
                try:
                    ledger = session.bank(bank_id, first.joined_on)
                    self._require_once(session, ledger, Action.MANAGE_MEMBERS, "import members")
                except errors.TimebankError as e:
                    found.add(first.line, "bank", bank_id, e.message)
                    continue
                wanted = [[r.joined_on, r.left_on] for r in periods]
                if ledger.is_member(member):
                    if ledger.periods[member] == wanted and ledger.kinds[member] == first.kind:
                        outcome["skipped"] += 1  # and their profile, as it is
                    else:
                        found.add(first.line, "member_id", member,
                                  f"already in bank {bank_id!r} as {ledger.kinds[member]}"
                                  f" with periods {_periods(ledger.periods[member])};"
                                  f" this file gives {first.kind} {_periods(wanted)}")  # fmt: skip
                    continue
                self._join_periods(ledger, member, periods, actor, found)
                outcome["recorded"] += 1
                for row in periods:
                    if row.fields:  # the rows agree (_parse_members)
                        profiles.setdefault(member, {}).update(row.fields)
            if found.items:
                raise _Rollback
            if dry_run:
                raise _Rollback(session.created)
            # with the events, in their transaction: the fields the file
            # gives, over what is stored (an email set through the API stays)
            session.index.append(IndexUpdate(profiles=tuple(
                self._app.profiles.changed_many(profiles)
            )))  # fmt: skip
            session.save()
            return session.created

        created = self._run(command, found)
        return ImportResult(source, len(listed), outcome["recorded"], outcome["skipped"], (),
                            tuple(created), dry_run, tuple(outcome["warnings"]))  # fmt: skip

    def _require_once(self, session: _Session, ledger: Bank, action: Action, what: str) -> None:
        """:class:`NotPermitted` unless the import's actor may take
        ``action`` in ``ledger``: asked once a bank (roles do not change
        during an import, and a bank's parents are read to ask, a round trip
        each on PostgreSQL), and not for a bank the import creates."""
        bank_id = ledger.bank_id
        if bank_id not in session.created and bank_id not in session.permitted:
            self._access.require(ledger, session.actor, action, what)
            session.permitted.add(bank_id)

    def _join_periods(
        self,
        ledger: Bank,
        member: str,
        periods: list[_MemberRow],
        actor: str,
        found: _Problems,
    ) -> None:
        today = self._today_for(ledger.policy)
        for n, row in enumerate(periods):
            if row.kind != periods[0].kind:
                found.add(row.line, "kind", row.kind,
                          f"{member!r} is {periods[0].kind} on line {periods[0].line}")  # fmt: skip
                return
            try:
                if n and (periods[n - 1].left_on is None):
                    raise errors.MemberStatusConflict(
                        f"the membership from {periods[n - 1].joined_on} has no left_on,"
                        " so no later one can start"
                    )
                if n == 0:
                    ledger.join(member, AccountKind(row.kind), row.joined_on, actor, today)
                else:
                    ledger.rejoin(member, row.joined_on, actor, today)
            except errors.TimebankError as e:
                found.add(row.line, "joined_on", row.joined_on, e.message)
                return
            if row.left_on is None:
                continue
            try:
                ledger.leave(member, row.left_on, actor, today, f"{member}-left-{row.left_on}")
            except errors.TimebankError as e:
                found.add(row.line, "left_on", row.left_on, e.message)
                return

    @serialised
    def import_entries(
        self,
        rows: Iterable[Row] | Iterable[Mapping[str, str]],
        *,
        actor: str,
        source: str = "entries",
        create_banks: bool = False,
        dry_run: bool = False,
        strict: bool = False,
        date_format: str | None = None,
        max_errors: int = ERRORS_MAX,
        progress: Callable[[int], None] | None = None,
    ) -> ImportResult:
        """Import entries in the interchange layout (docs/import.md): all the
        rows or none, applied in date order with every rule of the ledger; a
        balance limit breached is flagged on the entry (refused with
        ``strict``). An entry already recorded with the same fields is
        skipped. Raises :class:`ImportFailed` listing every problem (up to
        ``max_errors``); writes nothing then, nor with ``dry_run``.
        ``progress(n)`` is called as rows are applied."""
        actor = validate_actor_id(actor)
        create_banks = validate_flag("create_banks", create_banks)
        dry_run = validate_flag("dry_run", dry_run)
        strict = validate_flag("strict", strict)
        progress = validate_function(progress, "progress", "takes the number of rows applied")
        rows = validate_rows(rows)
        found = _Problems(source, max_errors)
        checked = _check_columns(rows, ENTRY_COLUMNS_REQUIRED, ENTRY_COLUMNS, found)
        # The cyclic garbage collector stays paused for the whole import, as
        # for a read model's catch-up: an import makes no cycles worth
        # collecting early, and the collector's passes over the banks'
        # growing state and the pending events took 3 s of a million-entry
        # import even with the parsed rows frozen out of them (measured,
        # alternated: 52.98 and 54.23 s frozen, 51.21 and 52.07 s paused;
        # the same peak memory).
        with no_cyclic_gc():
            parsed, read = _parse_entries(checked, date_format, found)
            # in the file's order (an export's is the order the ledger recorded
            # them); a row that needs a later one (its reversed entry, a pot's
            # donation) waits
            parsed.sort(key=_LINE)
            outcome: dict[str, Any] = {"recorded": 0, "skipped": 0, "flagged": []}
            # the entries that rows of the file reverse, and their days
            reversed_here = {row.reverses for row in parsed if row.reverses is not None}
            days = {
                row.entry_id: row.occurred_on for row in parsed if row.entry_id in reversed_here
            }
            earliest = _earliest(
                (bank, row.occurred_on)
                for row in parsed
                for bank in (row.bank, row.receiver_bank)
                if bank is not None
            )

            def command() -> list[str]:
                # counted afresh if a write conflict makes the store retry the command
                outcome.update(recorded=0, skipped=0, flagged=[])
                session = _Session(self._app, create_banks, actor, earliest, self._today_for)
                ids = [r.entry_id for r in parsed]
                session.present = self._app.index.recorded_entry_ids([*ids, *reversed_here])
                session.proposed = self._app.index.proposal_ids(ids)
                del ids  # a million references: not held through the import (8 MB)
                session.stored = _StoredEntries(
                    self._app, self._entry_of, self.entry, _wanted(parsed, session.present)
                )
                session.writing = not dry_run
                with self._app.saving_in_parts() as save:
                    self._apply_entries(session, parsed, days, actor, strict, found, outcome,
                                        progress, None if dry_run else save)  # fmt: skip
                    if found.items:
                        raise _Rollback
                    if dry_run:
                        raise _Rollback(session.created)
                    session.write_part(save)
                return session.created

            created = self._run(command, found)
        if progress is not None:
            progress(len(parsed))
        return ImportResult(source, read, outcome["recorded"], outcome["skipped"],
                            tuple(outcome["flagged"]), tuple(created), dry_run)  # fmt: skip

    def _apply_entries(
        self,
        session: _Session,
        parsed: list[_EntryRow],
        days: Mapping[str, date],
        actor: str,
        strict: bool,
        found: _Problems,
        outcome: dict[str, Any],
        progress: Callable[[int], None] | None,
        save: Callable[[Sequence[Any], IndexUpdate], None] | None,
    ) -> None:
        """Apply the rows in the file's order; a row refused for want of
        another row (its reversed entry, a pot's donation) waits and is tried
        again, in date order, while that lets more rows in. Every
        :data:`PART_ENTRIES` rows the events so far are written with
        ``save`` (dropped once a problem was found: nothing will commit)."""
        recorded: dict[str, RecordedEntry] = {}  # only entries the file reverses
        waiting: list[tuple[_EntryRow, errors.TimebankError]] = []
        banks_of = self._whereabouts(session)  # for the rows that name a member not in their bank
        done = 0
        rows = parsed
        while rows:
            for row in rows:
                if found.full:
                    return
                try:
                    entry = self._import_one(session, row.new, recorded, days, actor, strict)
                except _HalfApplied as half:
                    _add(found, row, half.error, HALF_APPLIED)
                    return  # a bank holds half an entry: what follows can't be trusted
                except _WAITS_FOR_OTHER_ROWS as e:
                    waiting.append((row, e))
                    continue
                except errors.TimebankError as e:
                    _add(found, row, e, self._banks_they_are_in(e, banks_of))
                    continue
                done += 1
                if done % PART_ENTRIES == 0:
                    session.write_part(None if found.items else save)
                if progress is not None and done % 1000 == 0:
                    progress(done)
                if entry is None:
                    outcome["skipped"] += 1
                    continue
                outcome["recorded"] += 1
                if entry.flags:
                    outcome["flagged"].append(entry.entry_id)
            again = sorted((row for row, _ in waiting), key=_by_date)
            if not again or len(again) == len(rows):
                for row, error in waiting:
                    _add(found, row, error)
                return
            rows, waiting = again, []

    def _banks_they_are_in(self, error: errors.TimebankError, said: Whereabouts) -> str:
        """For a member named in a bank they are not in, the banks they are
        in, said after the refusal (a mini bank's member under its parent's
        id is the usual slip); asked once a member, on the refusals' path
        only. Nothing for any other refusal."""
        member = error.ids.get("member")
        if not isinstance(error, errors.MemberNotFound) or not isinstance(member, str):
            return ""
        return said.of(member)

    def _whereabouts(self, session: _Session | None = None) -> Whereabouts:
        """For the rows of one file that name a member not in their bank:
        the banks each is in, said after the refusal. A bank the import's
        ``session`` created is not in the store yet: it is read from the
        session."""
        made = {} if session is None else session.ledgers

        def memberships() -> Iterator[tuple[str, str]]:
            for bank_id in self._bank_ids():
                ledger = made[bank_id] if bank_id in made else self._app.bank(bank_id)
                yield from ((m, bank_id) for m in ledger.members())

        return Whereabouts(
            memberships, "a member of no bank: the members file brings them in first"
        )

    def _run(self, command: Callable[[], list[str]], found: _Problems) -> list[str]:
        """Run an import's command in the store's write; a problem or a dry
        run drops every change (the write empties the bank cache)."""
        try:
            return self._app.write(command)  # applies even after problems: to find them all
        except _Rollback as rollback:
            if found.items:
                problems = sorted(found.items, key=lambda p: p.line)
                raise _failed(problems, found) from None
            return list(rollback.args[0]) if rollback.args else []

    def _import_one(  # noqa: PLR0912 - the checks a row passes before it is applied
        self,
        session: _Session,
        new: NewEntry,
        recorded: dict[str, RecordedEntry],
        later: Mapping[str, date],
        actor: str,
        strict: bool,
    ) -> Bank.EntryEvent | None:
        """Apply one entry to the session's banks: its event on its home
        bank, or None if it was already in the store with the same fields.
        ``recorded`` holds the entries of the file that ``later`` rows
        reverse (an id twice in the file was refused when the rows were
        parsed)."""
        if new.reverses is not None:
            original = recorded.get(new.reverses) or self._stored_original(session, new, later)
            if new.bank not in (original.bank, original.receiver_bank):
                raise errors.InvalidInput(
                    f"entry {original.entry_id!r} is in bank {original.bank!r}", column="bank"
                )
            if new.minutes and new.minutes != original.minutes:
                raise errors.InvalidAmount(
                    f"entry {original.entry_id!r} is of {original.minutes} minutes, not"
                    f" {new.minutes}", value=new.minutes,
                )  # fmt: skip
            # a reversal is recorded on its entry's bank(s), of its entry's amount
            new = attrs.evolve(new, bank=original.bank, minutes=original.minutes,
                               category=original.category, receiver_bank=None)  # fmt: skip
        if new.entry_id in session.present:
            self._same_entry_or_conflict(new, session.stored_entry(new.entry_id))
            return None
        if new.entry_id in session.proposed:
            self._check_not_pending(new.entry_id)  # EntryConflict: the id is spent

        def load(bank: str) -> Bank:
            ledger = session.bank(bank, new.occurred_on)
            self._require_once(session, ledger, Action.RECORD, "import entries")
            return ledger

        home = load(new.bank)
        if new.reverses is not None:
            ledgers = self._ledgers(home, original.receiver_bank, load)
        else:
            ledgers = self._ledgers(home, new.receiver_bank, load)
            if len(ledgers) == 2:  # both sides' rules first: one side is never left alone
                for ledger in ledgers:
                    ledger.check_entry(new, session.today(ledger), historic=True)
        marks = [len(ledger.pending_events) for ledger in ledgers]
        parties: dict[str, list[str]] = {}
        try:
            if new.reverses is not None:
                parties = self._apply_reversal(
                    ledgers, new, original, actor, None, flag_limits=not strict,
                    today=session.today,
                )  # fmt: skip
            else:
                self._apply_entry(ledgers, new, actor, None, historic=True,
                                  flag_limits=not strict, today=session.today)  # fmt: skip
        except errors.TimebankError as e:
            _check_untouched(ledgers, marks, e)
            raise
        session.indexed(ledgers, home.bank_id, marks, parties)
        event: Bank.EntryEvent = home.pending_events[-1]  # type: ignore[assignment]
        if new.reverses is not None:
            recorded[new.reverses] = attrs.evolve(original, reversed_by=new.entry_id)
        if new.entry_id in later:  # a later row reverses it
            recorded[new.entry_id] = recorded_entry(event, home.bank_id)
        return event

    def _stored_original(
        self, session: _Session, new: NewEntry, later: Mapping[str, date]
    ) -> RecordedEntry:
        """The store's entry a reversal undoes; an entry of the file dated
        after the reversal is a named error, not a missing entry."""
        assert new.reverses is not None
        day = later.get(new.reverses)
        if day is not None and new.reverses not in session.present:
            if new.occurred_on < day:
                raise errors.ReversalBeforeEntry(
                    f"reversal dated {new.occurred_on} is before entry {new.reverses!r} ({day})",
                    entry_id=new.entry_id,
                    reverses=new.reverses,
                )
            raise _NotYet(
                f"entry {new.reverses!r} is not recorded: its own row was refused",
                entry_id=new.reverses,
            )
        return session.stored_entry(new.reverses)


class _HalfApplied(Exception):
    def __init__(self, error: errors.TimebankError) -> None:
        super().__init__(error.message)
        self.error = error


class _NotYet(errors.EntryNotFound):
    """A reversal's entry is in the file but not recorded yet."""


#: Refusals that another row of the file may lift: the row waits for them.
_WAITS_FOR_OTHER_ROWS = (_NotYet, errors.PotOverdrawn, errors.BalanceLimitExceeded)


#: Said of the row at which an import stopped checking (see _check_untouched).
HALF_APPLIED = "; the import stopped at this row: the rows after it were not checked"


def _add(found: _Problems, row: _EntryRow, error: errors.TimebankError, then: str = "") -> None:
    column = _column(error, row.new)
    found.add(row.line, column, row.value(column), error.message + then)


def _by_date(row: _EntryRow) -> tuple[date, bool, int]:
    """Date order; on one day, entries before the reversals that may undo them."""
    return row.occurred_on, row.kind is EntryKind.REVERSAL, row.line


def _check_untouched(ledgers: list[Bank], marks: list[int], error: errors.TimebankError) -> None:
    """A refused entry between two banks may have recorded one side before
    the other refused (a limit, with ``strict``): nothing will be saved, and
    the import stops at that row rather than go on from a state no file
    describes."""
    for ledger, mark in zip(ledgers, marks, strict=True):
        if len(ledger.pending_events) != mark:
            raise _HalfApplied(error) from error


def _earliest(days: Iterable[tuple[str, date]]) -> dict[str, date]:
    """The earliest day per bank, a parent's no later than its mini banks'."""
    earliest: dict[str, date] = {}
    for named, day in days:
        bank: str | None = named
        while bank is not None:
            earliest[bank] = min(day, earliest.get(bank, day))
            bank = parent_bank(bank)
    return earliest


def _numbered(rows: Iterable[Any]) -> Iterator[Row]:
    """``(line, row)`` pairs: as given (:func:`read_csv`), or plain rows
    numbered from line 2. A row that is not a mapping of column -> text is
    :class:`InvalidInput` (before anything is written: the rows are all
    read before the first write)."""
    for n, given in enumerate(rows, 2):
        line, row = given if isinstance(given, tuple) and len(given) == 2 else (n, given)
        if not isinstance(row, Mapping) or not isinstance(line, int):
            raise errors.InvalidInput(
                f"row {n}: a row is a dict of column -> text (or a (line, row) pair"
                f" as read_csv gives), not {given!r}"
            )
        yield line, row


def _periods(periods: list[list[date | None]]) -> str:
    return ", ".join(f"{a}..{b or ''}" for a, b in periods)


def _column(error: errors.TimebankError, new: NewEntry) -> str:
    named = getattr(error, "column", None)
    if isinstance(named, str):
        return named
    member = getattr(error, "member", None)
    if member is not None:
        if member == new.provider:
            return "provider"
        if member == new.receiver:
            return "receiver"
        return "provider" if new.kind is not EntryKind.GROUP_EXCHANGE else "group_id"
    for kind, column in _COLUMN_OF_ERROR.items():
        if isinstance(error, kind):
            return column
    return "entry_id"
