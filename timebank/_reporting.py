"""Reports, coordinator lists and the CSV export of :class:`timebank.Timebank`
(a mixin, kept apart from the commands: these only read)."""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, TextIO

from timebank._inputs import validate_writer
from timebank._ledger import as_storage_error, check_open, serialised
from timebank._output import counted
from timebank.domain import errors
from timebank.domain.bank import MEMBER_KINDS, Bank
from timebank.domain.values import (
    CLEARING_PREFIX,
    OPENING,
    POT,
    AccountKind,
    Hours,
    format_hours,
    is_whole,
    parse_date,
    parse_minutes,
    validate_account_id,
    validate_bank_id,
    validate_entry_id,
    validate_flag,
)
from timebank.importing import ENTRY_COLUMNS, MEMBER_COLUMNS
from timebank.readmodel import LogRecord, ReadModel, ReadModelDB
from timebank.readmodel.entries import bank_entries
from timebank.readmodel.report import (
    INACTIVE_DAYS,
    MemberActivity,
    Report,
    build_report,
    inactive_members,
    member_activity,
    one_connection_members,
)
from timebank.readmodel.statement import statement_lines
from timebank.readmodel.words import REPORT_WORDS, check_words
from timebank.views import BankEntry, InactiveMember, NearLimit, OneConnection, StatementLine

if TYPE_CHECKING:
    from timebank._ledger import LedgerApplication
    from timebank.storage import Backend, Profile

__all__ = [
    "ENTRY_COLUMNS",
    "MEMBER_COLUMNS",
    "STATEMENT_LINES_MAX",
    "Reporting",
    "check_page",
    "journal_account",
]

#: Times a read catches the read model up and takes its snapshot before it
#: gives up, each time finding another process's rebuild begun in between.
READ_TRIES = 3
#: Most lines a statement returns unless asked for fewer.
STATEMENT_LINES_MAX = 100_000
#: More lines than any account has; keeps ``offset + limit`` a 64-bit integer
#: for the stores' LIMIT.
_OFFSET_MAX = 10**15


class Reporting:
    """Read-model based reads; mixed into :class:`~timebank.Timebank`."""

    _app: LedgerApplication
    backend: Backend
    url: str
    _read_model: ReadModel | None = None

    if TYPE_CHECKING:  # provided by Timebank

        def today(self, bank: str | None = None) -> date: ...

        def profile(self, member: str) -> Profile | None: ...

    @property
    def read_model(self) -> ReadModel:
        """This store's read model (opened on first use, caught up by every
        method below; call ``.catch_up()`` or ``.rebuild()`` yourself too)."""
        with self._app.lock:
            check_open(self)
            if self._read_model is None:
                self._read_model = ReadModel(
                    self.backend.read_model_db(), self._read_log, self._log_end, lock=self._app.lock
                )
            return self._read_model

    def _read_log(self, after: int, limit: int) -> Sequence[LogRecord]:
        """The store's events after ``after``, for the read model: a failure
        the library reports is a :class:`~timebank.errors.StorageError` here
        too, as in the methods under the store's lock, since
        ``read_model.catch_up()`` and ``.rebuild()`` are called directly."""
        with as_storage_error(self.url):
            return self._app.index.read_log(after, limit)

    def _log_end(self) -> int:
        """The notification id of the store's last event (0 when empty)."""
        with as_storage_error(self.url):
            return self._app.recorder.max_notification_id() or 0

    def _caught_up(self) -> ReadModel:
        """The read model, caught up (callers hold the store's lock)."""
        model = self.read_model
        model.catch_up()
        return model

    @contextlib.contextmanager
    def _reading(self) -> Iterator[ReadModelDB]:
        """The read model, caught up, its queries inside one snapshot: another
        process catching the same read model up meanwhile changes nothing
        that a report, statement or export of several queries reads. A
        snapshot that does not hold the log up to where it ended before the
        catch-up is of another process's rebuild, begun since: caught up
        again (in turns with the rebuild) and read again, up to
        ``READ_TRIES`` times. Once the snapshot has read ``rm_position``, no
        rebuild drops a table until it ends (on PostgreSQL a rebuild waits
        for its readers; on SQLite a snapshot keeps its tables)."""
        for _ in range(READ_TRIES):
            end = self._log_end()
            model = self._caught_up()
            with model.db.snapshot():
                # (0 where the tables a rebuild made again still lack their
                # row in this snapshot: PostgreSQL, a read that waited for it)
                if model.position() >= end:
                    yield model.db
                    return
        raise errors.StorageError(
            f"the read model {self.read_model.location} was rebuilt by another process while"
            f" it was read, {counted(READ_TRIES, 'time')}; try again",
            url=self.url,
        )

    def _close_read_model(self) -> None:
        if self._read_model is not None:
            self._read_model.close()
            self._read_model = None

    @serialised
    def statement(
        self, bank: str, account: str, *, limit: int = STATEMENT_LINES_MAX, offset: int = 0
    ) -> list[StatementLine]:
        """Every entry on an account, in the order its bank recorded them, with
        the running balance: the ``limit`` lines after the first ``offset``.
        Each line is as on the whole statement (the balance counts the lines
        before ``offset``; ``reversed_by`` names the reversal even when it
        falls beyond the page). New entries only ever add lines at the end,
        so ``offset += len(page)`` until a page is shorter than ``limit``
        reads a statement of any length. Read from the read model; equal to
        :meth:`~timebank.Timebank.ledger_statement`, which replays the log."""
        bank, account = validate_bank_id(bank), validate_account_id(account)
        check_page(limit, offset)
        self._app.bank(bank).balance(account)  # MemberNotFound for an unknown account
        with self._reading() as db:
            return statement_lines(db, bank, account, limit, offset)

    @serialised
    def report(
        self,
        bank: str,
        *,
        start: date | str | None = None,
        end: date | str | None = None,
        rollup: bool = False,
        by_area: bool = False,
    ) -> Report:
        """The period report of ``bank`` (with ``rollup``, of it and its mini
        banks) from ``start`` to ``end`` inclusive, by the date help happened.
        Defaults: from the bank's opening to today. With ``by_area``, also its
        figures by the area (ward or hub) each member's profile names now
        (``Report.by_area``; it reads the period's entries, so it takes longer).
        Definitions: docs/reports.md."""
        rollup, by_area = validate_flag("rollup", rollup), validate_flag("by_area", by_area)
        info, first, last = self._period(bank, start, end)
        areas = None
        if by_area:
            areas = {member: p.area for member, p in self._app.profiles.all() if p.area}
        with self._reading() as db:
            return build_report(
                db, info.bank_id, first, last, rollup, self.today(info.bank_id), areas
            )

    @serialised
    def report_html(
        self,
        bank: str,
        *,
        start: date | str | None = None,
        end: date | str | None = None,
        rollup: bool = False,
        by_area: bool = False,
        words: Mapping[str, str] | None = None,
    ) -> str:
        """The period report (as :meth:`report`) as one self-contained,
        printable HTML page with charts, for an app to serve or save. In
        English, or in the language of ``words``: a translation of
        :data:`timebank.REPORT_WORDS`, checked whole first
        (``InvalidInput`` naming every problem). Needs the ``charts`` extra
        (``ChartsUnavailable`` without it). docs/reports.md, "The HTML
        report"."""
        checked = REPORT_WORDS if words is None else check_words(words)
        from timebank import __version__  # noqa: PLC0415 - the package imports this module
        from timebank.readmodel.html import render_html  # noqa: PLC0415 - loads matplotlib

        result = self.report(bank, start=start, end=end, rollup=rollup, by_area=by_area)
        name = self._app.bank(validate_bank_id(bank)).name
        return render_html(result, bank_name=name, version=__version__,
                           made_on=self.today(bank), words=checked)  # fmt: skip

    @serialised
    def member_activity(
        self,
        bank: str,
        *,
        start: date | str | None = None,
        end: date | str | None = None,
        rollup: bool = False,
    ) -> list[MemberActivity]:
        """Each member whose membership was active on a day of the period
        (defaults as :meth:`report`), with what they did in it: exchanges,
        hours given and received, how many other members they exchanged
        with, their first and last exchange days. Reads the period's entries,
        like the figures by area. Definitions: docs/reports.md."""
        rollup = validate_flag("rollup", rollup)
        info, first, last = self._period(bank, start, end)
        with self._reading() as db:
            rows = member_activity(db, info.bank_id, first, last, rollup)
        return [
            MemberActivity(info.bank_id, member, kind, exchanges, given, received, partners,
                           _optional_day(first_on), _optional_day(last_on))
            for member, kind, exchanges, given, received, partners, first_on, last_on in rows
        ]  # fmt: skip

    @serialised
    def entries(
        self,
        bank: str,
        *,
        start: date | str | None = None,
        end: date | str | None = None,
        rollup: bool = False,
        flagged: bool = False,
        limit: int = STATEMENT_LINES_MAX,
        offset: int = 0,
        after: str | None = None,
    ) -> list[BankEntry]:
        """The entries of ``bank`` (with ``rollup``, and of its mini banks)
        whose help happened from ``start`` to ``end`` (defaults as
        :meth:`report`), in date order and, on one day, in the order
        recorded: every kind, reversals too, one row an entry (an inter-bank
        entry in both its banks). With ``flagged``, only the entries flagged
        past a balance limit there (flag mode, an import of historic data).
        The ``limit`` rows after the first ``offset``, or after the entry
        ``after`` (the last row of the page before; ``EntryNotFound`` if it
        is not an entry of those banks dated in the period). An entry
        recorded between pages with an earlier date moves the rows after
        it: paged by ``offset``, a row can come twice; paged by ``after``,
        never. Read from the read model."""
        rollup, flagged = validate_flag("rollup", rollup), validate_flag("flagged", flagged)
        check_page(limit, offset)
        if after is not None:
            after = validate_entry_id(after)
            if offset:
                raise errors.InvalidInput(
                    f"give offset or after, not both: offset={offset!r}, after={after!r}"
                )
        info, first, last = self._period(bank, start, end)
        with self._reading() as db:
            return bank_entries(db, info.bank_id, first, last, rollup=rollup, flagged=flagged,
                                limit=limit, offset=offset, after=after)  # fmt: skip

    def _period(
        self, bank: str, start: date | str | None, end: date | str | None
    ) -> tuple[Bank, date, date]:
        """The bank, and the period's first and last days (defaults: the
        bank's opening, today)."""
        bank = validate_bank_id(bank)
        first = None if start is None else parse_date(start)  # its form before the bank
        last = None if end is None else parse_date(end)
        info = self._app.bank(bank)
        first = info.opened_on if first is None else first
        last = self.today(info.bank_id) if last is None else last
        if first > last:
            raise errors.InvalidInput(f"the period starts ({first}) after it ends ({last})")
        return info, first, last

    def _on_day(self, bank: str, as_of: date | str | None) -> tuple[Bank, date]:
        """The bank, and the day a list is for (default: today in the bank)."""
        info = self._app.bank(validate_bank_id(bank))
        return info, self.today(info.bank_id) if as_of is None else parse_date(as_of)

    @serialised
    def inactive_members(
        self,
        bank: str,
        *,
        as_of: date | str | None = None,
        days: int = INACTIVE_DAYS,
        rollup: bool = False,
    ) -> list[InactiveMember]:
        """Members with an active membership on ``as_of`` (default today) and
        no service exchange in the ``days`` days up to it, for coordinators
        to call on."""
        rollup = validate_flag("rollup", rollup)
        info, day = self._on_day(bank, as_of)
        if not is_whole(days) or not 1 <= days <= 3660:
            raise errors.InvalidInput(f"days must be a whole number from 1 to 3660: {days!r}")
        with self._reading() as db:
            rows = inactive_members(db, info.bank_id, day, rollup, days)
        return [
            InactiveMember(bank=info.bank_id, member=m, kind=k, last_exchange_on=_optional_day(d))
            for m, k, d in rows
        ]

    @serialised
    def members_with_one_connection(
        self, bank: str, *, as_of: date | str | None = None, rollup: bool = False
    ) -> list[OneConnection]:
        """Members with an active membership on ``as_of`` (default today)
        who, up to that day, have exchanged with exactly one other member,
        with that member: the people the report's
        ``members_with_one_connection`` counts, for coordinators to introduce
        to others. Members who never exchanged are in
        :meth:`inactive_members`."""
        rollup = validate_flag("rollup", rollup)
        info, day = self._on_day(bank, as_of)
        with self._reading() as db:
            rows = one_connection_members(db, info.bank_id, day, rollup)
        return [
            OneConnection(info.bank_id, member, kind, partner, date.fromisoformat(first))
            for member, kind, partner, first in rows
        ]

    @serialised
    def members_near_limit(self, bank: str, *, within: Hours = "2:00") -> list[NearLimit]:
        """Members whose balance is within ``within`` hours (``"2:00"``,
        ``"1.5"``, ``2``, ``Decimal("1.5")``) of a balance limit of the
        bank's policy, or beyond it; ``0`` lists only those at or beyond."""
        margin = parse_minutes(within, allow_zero=True)
        ledger = self._app.bank(validate_bank_id(bank))
        rows = []
        for member, kind in sorted(ledger.kinds.items()):
            if kind not in MEMBER_KINDS:
                continue
            limits = ledger.policy.limits_for(AccountKind(kind))
            balance = ledger.balances[member]
            if limits is None:
                continue
            for side, limit in (
                ("lowest", limits.lowest_minutes),
                ("highest", limits.highest_minutes),
            ):
                if limit is None:
                    continue
                headroom = balance - limit if side == "lowest" else limit - balance
                if headroom <= margin:
                    rows.append(
                        NearLimit(ledger.bank_id, member, kind, balance, side, limit, headroom)
                    )
        return rows

    @serialised
    def export_ledger(self, out: TextIO) -> int:
        """Write the whole ledger as a plain-text double-entry journal that
        hledger and Ledger read (docs/audit.md): one transaction per entry,
        dated ``occurred_on``, coded by entry id, with a posting of whole
        minutes (commodity ``min``) for every leg on every bank it moved (an
        inter-bank entry: both banks' sides, through their clearing
        accounts). Returns the number of transactions."""
        out = validate_writer(out, "out")
        with self._reading() as db:
            rows = db.execute(
                "SELECT e.entry_id, e.occurred_on, e.kind, e.category, p.bank, p.account,"
                " p.minutes FROM rm_entries e JOIN rm_entry_parties p ON p.entry_seq = e.seq"
                " WHERE p.leg IS NOT NULL ORDER BY e.seq, p.seq, p.leg"
            )
        out.write("; timebank journal: 1 hour of help = 60 min; accounts BANK:members:ID,\n")
        out.write("; BANK:pot, BANK:opening, BANK:clearing:OTHER-BANK\n")
        written = 0
        current = None
        for entry_id, day, kind, category, bank, account, minutes in rows:
            if entry_id != current:
                current = entry_id
                written += 1
                tag = f"  ; category:{category}" if category else ""
                out.write(f"\n{day} ({entry_id}) {kind}{tag}\n")
            out.write(f"    {journal_account(bank, account)}  {minutes} min\n")
        return written

    @serialised
    def export_csv(self, members: TextIO, entries: TextIO) -> tuple[int, int]:
        """Write the whole ledger in the interchange layout (docs/import.md):
        one members row per membership period, one entries row per entry (a
        group exchange: one row per participant). Returns the row counts."""
        members = validate_writer(members, "members")
        entries = validate_writer(entries, "entries")
        with self._reading() as db:  # the three tables as of one moment
            member_rows = db.execute(
                "SELECT member, kind, bank, started_on, ended_on FROM rm_memberships"
                " ORDER BY bank, member, started_on"
            )
            entry_rows = db.execute(
                "SELECT entry_id, occurred_on, kind, provider, receiver, minutes, bank,"
                " category, reverses, receiver_bank FROM rm_entries ORDER BY seq"
            )
            groups: dict[str, list[tuple[str, int]]] = {}
            for entry_id, account, minutes in db.execute(
                "SELECT entry_id, account, minutes FROM rm_entry_parties"
                " WHERE kind = 'group_exchange' ORDER BY seq, account"
            ):
                groups.setdefault(entry_id, []).append((account, minutes))
        out = csv.writer(members, lineterminator="\n")
        out.writerow(MEMBER_COLUMNS)
        profiles: dict[str, Any] = {}
        for member, kind, bank, started, ended in member_rows:
            if member not in profiles:
                profiles[member] = self.profile(member)
            profile = profiles[member]
            out.writerow([
                member, kind, bank, started,
                (profile.display_name or "") if profile else "",
                (profile.area or "") if profile else "",
                ended or "",
            ])  # fmt: skip
        out = csv.writer(entries, lineterminator="\n")
        out.writerow(ENTRY_COLUMNS)
        written = 0
        for (
            entry_id,
            day,
            kind,
            provider,
            receiver,
            minutes,
            bank,
            category,
            reverses,
            far,
        ) in entry_rows:
            if kind == "group_exchange":
                for account, amount in groups[entry_id]:
                    giver, taker = (account, "") if amount > 0 else ("", account)
                    out.writerow([
                        entry_id, day, kind, giver, taker, format_hours(abs(amount)), bank,
                        category or "", "", "", entry_id, "",
                    ])  # fmt: skip
                    written += 1
                continue
            undone = kind == "reversal"  # its parties are those of the entry it reverses
            out.writerow([
                entry_id, day, kind, "" if undone else provider or "",
                "" if undone else receiver or "", format_hours(minutes),
                bank, category or "", "", reverses or "", "", far or "",
            ])  # fmt: skip
            written += 1
        return len(member_rows), written


def journal_account(bank: str, account: str) -> str:
    """An account's name in the double-entry journal: ``BANK:members:ID``,
    ``BANK:pot``, ``BANK:opening``, ``BANK:clearing:OTHER-BANK``."""
    if account == POT:
        return f"{bank}:pot"
    if account == OPENING:
        return f"{bank}:opening"
    if account.startswith(CLEARING_PREFIX):
        return f"{bank}:clearing:{account[len(CLEARING_PREFIX) :]}"
    return f"{bank}:members:{account}"


def whole_statement(db: ReadModelDB, bank: str, account: str) -> tuple[StatementLine, ...]:
    """Every line of an account's statement, read a page of
    ``STATEMENT_LINES_MAX`` at a time inside the caller's one snapshot."""
    lines: list[StatementLine] = []
    while page := statement_lines(db, bank, account, STATEMENT_LINES_MAX, len(lines)):
        lines += page
        if len(page) < STATEMENT_LINES_MAX:
            break
    return tuple(lines)


def check_page(limit: int, offset: int) -> None:
    """A statement's ``limit`` must be a whole number 1..STATEMENT_LINES_MAX,
    its ``offset`` a whole number from 0."""
    if not is_whole(limit) or not 0 < limit <= STATEMENT_LINES_MAX:
        raise errors.InvalidInput(
            f"limit must be a whole number from 1 to {STATEMENT_LINES_MAX}: {limit!r}"
        )
    if not is_whole(offset) or not 0 <= offset <= _OFFSET_MAX:
        raise errors.InvalidInput(
            f"offset must be a whole number from 0 to {_OFFSET_MAX}: {offset!r}"
        )


def _optional_day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)
