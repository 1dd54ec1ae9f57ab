"""The period report: the figures councils and funders publish.

Every figure is defined in docs/reports.md (the definitions are quoted there
word for word, with the decisions they leave open); this module computes
them with SQL over the read model's tables, so a report over a million
entries reads aggregates, not entries.
"""

from __future__ import annotations

import calendar
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

import attrs
import orjson

from timebank.domain.values import EntryKind
from timebank.readmodel._db import ReadModelDB
from timebank.readmodel._projector import SERVICE_KINDS, TOOK_PART

__all__ = [
    "INACTIVE_DAYS",
    "NO_AREA",
    "NO_CATEGORY",
    "AreaFigures",
    "CategoryFigures",
    "KindFigures",
    "MemberActivity",
    "MonthFigures",
    "Report",
    "build_report",
    "hours",
    "inactive_members",
    "member_activity",
    "one_connection_members",
    "scope",
]

#: A member with no service exchange in this many days before a date is inactive.
INACTIVE_DAYS = 90
#: How a report shown to people (the table, the HTML page, the demo) names
#: the figures of entries with no category and of members with no area
#: (``None`` in the API, JSON and CSV).
NO_CATEGORY: Final = "(none)"
NO_AREA: Final = "(no area)"
#: The kinds of member, in the order ``Report.by_kind`` lists them.
_MEMBER_KINDS = ("individual", "organisation")


def hours(minutes: int) -> Decimal:
    """Minutes as hours, rounded half-even to 2 decimals (for display: every
    figure also comes in exact minutes)."""
    return (Decimal(minutes) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def _number(minutes: int) -> int | float:
    """Hours as a JSON number: an integer when whole, else the 2-decimal
    value above (converted for output only, never computed with)."""
    value = hours(minutes)
    return int(value) if value == value.to_integral_value() else float(value)


@attrs.frozen
class MonthFigures:
    """One calendar month of a report (cut to the report's period)."""

    month: str
    exchanged_minutes: int
    exchanges: int
    new_members: int
    #: Members whose membership was active on the month's last day (or on
    #: the period's last day, for the last month).
    members: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "hours": _number(self.exchanged_minutes),
            "exchanges": self.exchanges,
            "new_members": self.new_members,
            "members": self.members,
            "exchanged_minutes": self.exchanged_minutes,
        }


@attrs.frozen
class CategoryFigures:
    """The service exchanges of one category in a report's period (``None``:
    exchanges recorded without a category)."""

    category: str | None
    exchanged_minutes: int
    exchanges: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "hours": _number(self.exchanged_minutes),
            "exchanges": self.exchanges,
            "exchanged_minutes": self.exchanged_minutes,
        }


@attrs.frozen
class KindFigures:
    """The member figures of one kind of member (``individual`` or
    ``organisation``) in a report; each adds up, over the kinds, to the
    report's own figure."""

    kind: str
    #: Members of this kind whose membership was active on the last day.
    members: int
    new_members: int
    active_members: int
    inactive_members: int

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class AreaFigures:
    """The figures of one area (ward or hub) that members' profiles name
    (``None``: members with no area, or erased)."""

    area: str | None
    members: int
    new_members: int
    active_members: int
    given_minutes: int
    received_minutes: int
    exchanges: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "members": self.members,
            "new_members": self.new_members,
            "active_members": self.active_members,
            "hours_given": _number(self.given_minutes),
            "hours_received": _number(self.received_minutes),
            "exchanges": self.exchanges,
            "given_minutes": self.given_minutes,
            "received_minutes": self.received_minutes,
        }


@attrs.frozen
class MemberActivity:
    """What one member did in a period (see ``Timebank.member_activity``)."""

    bank: str
    member: str
    kind: str
    #: Service exchanges in which they gave or received help.
    exchanges: int
    given_minutes: int
    received_minutes: int
    #: Other members they gave help to or received it from, once each.
    partners: int
    first_exchange_on: date | None
    last_exchange_on: date | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "bank": self.bank,
            "member": self.member,
            "kind": self.kind,
            "exchanges": self.exchanges,
            "hours_given": _number(self.given_minutes),
            "hours_received": _number(self.received_minutes),
            "partners": self.partners,
            "first_exchange_on": _day(self.first_exchange_on),
            "last_exchange_on": _day(self.last_exchange_on),
            "given_minutes": self.given_minutes,
            "received_minutes": self.received_minutes,
        }


def _day(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


@attrs.frozen
class Report:
    """A bank's figures for a period (``start`` to ``end``, inclusive)."""

    bank: str
    #: The banks reported on: the bank, and its mini banks with ``rollup``.
    banks: tuple[str, ...]
    rollup: bool
    start: date
    end: date
    exchanged_minutes: int
    exchanges: int
    transactions: int
    individual_members: int
    organisations: int
    new_members: int
    active_members: int
    inactive_members: int
    donated_to_pot_minutes: int
    pot_funded_minutes: int
    pot_balance_minutes: int
    connections: int
    new_connections: int
    #: Members with an active membership on the last day who, up to that
    #: day, exchanged with exactly one other member.
    members_with_one_connection: int
    by_month: tuple[MonthFigures, ...]
    by_category: tuple[CategoryFigures, ...]
    #: The member figures for individuals, then organisations.
    by_kind: tuple[KindFigures, ...]
    #: Asked for with ``by_area=True``; ``None`` otherwise.
    by_area: tuple[AreaFigures, ...] | None = None

    @property
    def hours_exchanged(self) -> Decimal:
        return hours(self.exchanged_minutes)

    def to_dict(self) -> dict[str, Any]:
        """The report with the issue's field names (hours as numbers)."""
        return {
            "bank": self.bank,
            "banks": list(self.banks),
            "rollup": self.rollup,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "hours_exchanged": _number(self.exchanged_minutes),
            "exchanges": self.exchanges,
            "transactions": self.transactions,
            "individual_members": self.individual_members,
            "organisations": self.organisations,
            "new_members": self.new_members,
            "active_members": self.active_members,
            "inactive_members": self.inactive_members,
            "donated_to_pot_hours": _number(self.donated_to_pot_minutes),
            "pot_funded_hours": _number(self.pot_funded_minutes),
            "pot_balance_hours": _number(self.pot_balance_minutes),
            "connections": self.connections,
            "new_connections": self.new_connections,
            "members_with_one_connection": self.members_with_one_connection,
            "by_month": [m.to_dict() for m in self.by_month],
            "by_category": [c.to_dict() for c in self.by_category],
            "by_kind": [k.to_dict() for k in self.by_kind],
            **({} if self.by_area is None else {"by_area": [a.to_dict() for a in self.by_area]}),
            "exchanged_minutes": self.exchanged_minutes,
            "donated_to_pot_minutes": self.donated_to_pot_minutes,
            "pot_funded_minutes": self.pot_funded_minutes,
            "pot_balance_minutes": self.pot_balance_minutes,
        }


def scope(db: ReadModelDB, bank: str, rollup: bool) -> tuple[str, ...]:
    """The bank, and with ``rollup`` every mini bank below it."""
    banks = [str(r[0]) for r in db.execute("SELECT bank FROM rm_banks ORDER BY bank")]
    return tuple(b for b in banks if b == bank or (rollup and b.startswith(f"{bank}/")))


def _scoped(db: ReadModelDB, bank: str, rollup: bool) -> tuple[tuple[str, ...], str]:
    """The banks reported on, and the ``?`` marks of an ``IN`` list of them."""
    banks = scope(db, bank, rollup)
    return banks, ", ".join("?" * len(banks))


def build_report(
    db: ReadModelDB,
    bank: str,
    start: date,
    end: date,
    rollup: bool,
    today: date,
    areas: Mapping[str, str] | None = None,
) -> Report:
    """Compute the report (the caller has caught the read model up); with
    ``areas`` (member -> area, from their profiles), its figures by area.
    ``today`` (the bank's) ends ``by_month`` unless something is dated
    later."""
    banks, marks = _scoped(db, bank, rollup)
    first, last = start.isoformat(), end.isoformat()

    # Entries and pots: whole months from the monthly totals, the days of
    # months the period cuts from the daily ones.
    totals: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
    months: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
    categories: defaultdict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    pots: defaultdict[str, int] = defaultdict(int)
    for month, home, far, kind, category, entries, minutes in _entry_totals(
        db, banks, marks, start, end
    ):
        totals[kind][0] += int(entries)
        totals[kind][1] += int(minutes)
        if kind in SERVICE_KINDS:
            for into in (months[month], categories[category or None]):
                into[0] += int(entries)
                into[1] += int(minutes)
        if (far or home) in banks:  # the pot that received or paid
            pots[kind] += int(minutes)
    exchanges = sum(totals[k][0] for k in SERVICE_KINDS)
    exchanged = sum(totals[k][1] for k in SERVICE_KINDS)
    transactions = sum(n for k, (n, _) in totals.items() if k != EntryKind.OPENING_BALANCE.value)
    pot_balance = db.execute(
        f"SELECT SUM(minutes) FROM rm_pot_daily WHERE bank IN ({marks}) AND day <= ?",  # noqa: S608
        (*banks, last),
    )[0][0]

    # Members: people (a member of two banks of the scope counts once).
    periods = _periods(db, banks, marks)
    first_joined = {m: min(s for s, _ in spans) for m, (_, spans) in periods.items()}
    new = {m for m, day in first_joined.items() if first <= day <= last}
    on_end = {m for m, (_, spans) in periods.items() if _active_on(spans, last)}
    kinds = {m: kind for m, (kind, _) in periods.items()}
    active = _exchanged_between(db, banks, marks, first, last)
    recent = _exchanged_between(
        db, banks, marks, (end - timedelta(days=INACTIVE_DAYS - 1)).isoformat(), last
    )

    # Connections: pairs of accounts.
    span = _pair_span(db)
    connections = _connections(db, banks, marks, start, end, span)
    if span is None or start <= span[0]:
        new_connections = connections  # nobody exchanged before the period
    else:
        new_connections = db.execute(
            "SELECT COUNT(*) FROM rm_pairs WHERE first_day >= ? AND first_day <= ?"  # noqa: S608
            f" AND (bank_a IN ({marks}) OR bank_b IN ({marks})) AND exchanges > 0",
            (first, last, *banks, *banks),
        )[0][0]

    by_month = []
    joins = sorted(first_joined.values())
    # the months up to this one, or to the last month anything is dated in
    # (a bank of the scope in a timezone ahead, a clock that was ahead)
    dated = [s or "" for _, spans in periods.values() for span in spans for s in span]
    latest = max([today.isoformat(), *(f"{m}-01" for m in months), *dated])
    month_spans = _months(start, min(end, _month_end(date.fromisoformat(latest[:10]))))
    members_at = _members_on(periods, [e.isoformat() for _, e in month_spans])
    for (month_start, month_end), members in zip(month_spans, members_at, strict=True):
        key = month_start.isoformat()[:7]
        joined = bisect_right(joins, month_end.isoformat()) - bisect_left(
            joins, month_start.isoformat()
        )
        by_month.append(
            MonthFigures(
                month=key,
                exchanged_minutes=months[key][1],
                exchanges=months[key][0],
                new_members=joined,
                members=members,
            )
        )
    by_category = tuple(
        CategoryFigures(category, minutes, count)
        for category, (count, minutes) in sorted(
            categories.items(), key=lambda item: (-item[1][1], item[0] or "")
        )
        if count  # a category whose exchanges were all reversed is not listed
    )
    inactive = on_end - recent
    by_kind = tuple(
        KindFigures(
            kind=kind,
            members=sum(1 for m in on_end if kinds[m] == kind),
            new_members=sum(1 for m in new if kinds[m] == kind),
            active_members=sum(1 for m in active if kinds.get(m) == kind),
            inactive_members=sum(1 for m in inactive if kinds[m] == kind),
        )
        for kind in _MEMBER_KINDS
    )
    by_area = None
    if areas is not None:
        by_area = _by_area(db, banks, marks, (first, last), areas, (on_end, new, active))
    return Report(
        bank=bank,
        banks=banks,
        rollup=rollup,
        start=start,
        end=end,
        exchanged_minutes=exchanged,
        exchanges=exchanges,
        transactions=transactions,
        individual_members=by_kind[0].members,
        organisations=by_kind[1].members,
        new_members=len(new),
        active_members=len(active),
        inactive_members=len(inactive),
        donated_to_pot_minutes=pots[EntryKind.DONATION.value],
        pot_funded_minutes=pots[EntryKind.POT_EXCHANGE.value],
        pot_balance_minutes=int(pot_balance or 0),
        connections=int(connections),
        new_connections=int(new_connections),
        members_with_one_connection=len(on_end & _one_connection(db, banks, marks, last).keys()),
        by_month=tuple(by_month),
        by_category=by_category,
        by_kind=by_kind,
        by_area=by_area,
    )


def inactive_members(
    db: ReadModelDB, bank: str, as_of: date, rollup: bool, days: int = INACTIVE_DAYS
) -> list[tuple[str, str, str | None]]:
    """Members with an active membership on ``as_of`` and no service exchange
    in the ``days`` days up to it: (member, kind, last exchange day or None)."""
    banks, marks = _scoped(db, bank, rollup)
    last = as_of.isoformat()
    periods = _periods(db, banks, marks)
    recent = _exchanged_between(
        db, banks, marks, (as_of - timedelta(days=days - 1)).isoformat(), last
    )
    quiet = sorted(m for m, (_, spans) in periods.items() if _active_on(spans, last))
    rows = []
    for member in quiet:
        if member in recent:
            continue
        latest = db.execute(
            f"SELECT MAX(occurred_on) FROM rm_entry_parties WHERE bank IN ({marks})"  # noqa: S608
            f" AND account = ? AND occurred_on <= ? AND {TOOK_PART}",
            (*banks, member, last),
        )[0][0]
        rows.append((member, periods[member][0], latest))
    return rows


def _periods(
    db: ReadModelDB, banks: tuple[str, ...], marks: str
) -> dict[str, tuple[str, list[tuple[str, str | None]]]]:
    """Each member's kind and membership periods in the banks."""
    periods: dict[str, tuple[str, list[tuple[str, str | None]]]] = {}
    for member, kind, started, ended in db.execute(
        "SELECT member, kind, started_on, ended_on FROM rm_memberships"  # noqa: S608
        f" WHERE bank IN ({marks}) ORDER BY member, started_on",
        banks,
    ):
        periods.setdefault(member, (kind, []))[1].append((started, ended))
    return periods


def _active_on(spans: list[tuple[str, str | None]], day: str) -> bool:
    return any(start <= day and (end is None or day <= end) for start, end in spans)


def _members_on(
    periods: dict[str, tuple[str, list[tuple[str, str | None]]]], days: list[str]
) -> list[int]:
    """How many members had an active membership on each day: each member's
    periods are merged (two banks at once count once), then counted with a
    sweep instead of a check per member and day."""
    starts: list[str] = []
    ends: list[str] = []
    for _, spans in periods.values():
        merged: list[list[str]] = []
        for start, end in spans:  # sorted by start
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end or _OPEN)
            else:
                merged.append([start, end or _OPEN])
        starts.extend(s for s, _ in merged)
        ends.extend(e for _, e in merged)
    starts.sort()
    ends.sort()
    return [bisect_right(starts, day) - bisect_left(ends, day) for day in days]


#: Stands for "no end yet" when comparing ISO dates.
_OPEN = "9999-12-31"


def _exchanged_between(
    db: ReadModelDB, banks: tuple[str, ...], marks: str, first: str, last: str
) -> set[str]:
    """Members who took part in a standing service exchange between two days.

    Each account's first and last such day decide it, unless the days
    straddle the period; then one index seek into its entry rows does. The
    two kinds of account are two queries joined by ``UNION``, not one
    ``OR``: PostgreSQL then seeks only for the straddling accounts, by a
    semi-join (a year 60 to 45 ms, a month 166 to 45 ms at a million
    entries), where SQLite, which short-circuits the ``OR``, is unchanged."""
    rows = db.execute(
        f"SELECT a.account FROM rm_activity a WHERE a.bank IN ({marks})"  # noqa: S608
        " AND a.exchanges > 0 AND a.first_day <= ? AND a.last_day >= ?"
        " AND (a.first_day >= ? OR a.last_day <= ?)"
        f" UNION SELECT a.account FROM rm_activity a WHERE a.bank IN ({marks})"
        " AND a.exchanges > 0 AND a.first_day < ? AND a.last_day > ?"
        " AND EXISTS (SELECT 1 FROM rm_entry_parties"
        "  WHERE bank = a.bank AND account = a.account AND occurred_on >= ?"
        f"  AND occurred_on <= ? AND {TOOK_PART})",
        (*banks, last, first, first, last, *banks, first, last, first, last),
    )
    return {str(r[0]) for r in rows}


def _entry_totals(
    db: ReadModelDB, banks: tuple[str, ...], marks: str, start: date, end: date
) -> list[tuple[Any, ...]]:
    """(month, bank, receiver bank, kind, category, entries, minutes) of the
    entries in the banks and the period: its whole months from the monthly
    totals, the days of the months it cuts (its first and last) from the
    daily ones."""
    scope = f"(bank IN ({marks}) OR receiver_bank IN ({marks}))"
    # the first and last days of the whole months (none after December 9999)
    whole_from = start if start.day == 1 else _next_day(_month_end(start))
    whole_to = end if _is_month_end(end) else end.replace(day=1) - timedelta(days=1)
    rows: list[tuple[Any, ...]] = []
    cut = [(start, end)]
    if whole_from is not None and whole_from <= whole_to:
        rows += db.execute(
            "SELECT month, bank, receiver_bank, kind, category, entries, minutes"  # noqa: S608
            f" FROM rm_monthly WHERE month >= ? AND month <= ? AND {scope}",
            (whole_from.isoformat()[:7], whole_to.isoformat()[:7], *banks, *banks),
        )
        cut = [(start, whole_from - timedelta(days=1))]
        if whole_to < end:
            cut.append((whole_to + timedelta(days=1), end))
    for first, last in cut:
        if first > last:
            continue
        rows += db.execute(
            "SELECT substr(day, 1, 7), bank, receiver_bank, kind, category,"  # noqa: S608
            f" SUM(entries), SUM(minutes) FROM rm_daily WHERE day >= ? AND day <= ? AND {scope}"
            " GROUP BY substr(day, 1, 7), bank, receiver_bank, kind, category",
            (first.isoformat(), last.isoformat(), *banks, *banks),
        )
    return rows


def _is_month_end(day: date) -> bool:
    return day == _month_end(day)


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _next_day(day: date) -> date | None:
    """The day after ``day``; none after the calendar's last."""
    return None if day == date.max else day + timedelta(days=1)


def _pair_span(db: ReadModelDB) -> tuple[date, date] | None:
    """The first and last day any pair exchanged: two seeks at the ends of
    the table's key, which starts with the day (SQLite answers MIN and MAX in
    one SELECT by scanning the whole table: 122 ms of a 266 ms whole-history
    report on the benchmark store, measured)."""
    low, high = db.execute(
        "SELECT (SELECT MIN(day) FROM rm_pair_days), (SELECT MAX(day) FROM rm_pair_days)"
    )[0]
    return None if low is None else (date.fromisoformat(low), date.fromisoformat(high))


def _connections(
    db: ReadModelDB,
    banks: tuple[str, ...],
    marks: str,
    start: date,
    end: date,
    span: tuple[date, date] | None,
) -> int:
    """Distinct pairs with a standing service exchange in the period.

    Three exact plans: a period covering the whole history counts the pairs;
    one covering most of it decides each pair from its first and last day,
    looking at its days only when they straddle the period; a shorter one
    reads the pairs' days in the period through the day index."""
    if span is None:
        return 0
    first, last = start.isoformat(), end.isoformat()
    scope = f"(bank_a IN ({marks}) OR bank_b IN ({marks}))"
    if start <= span[0] and end >= span[1]:
        row = db.execute(
            f"SELECT COUNT(*) FROM rm_pairs WHERE exchanges > 0 AND {scope}",  # noqa: S608
            (*banks, *banks),
        )
    elif (min(end, span[1]) - max(start, span[0])).days + 1 >= ((span[1] - span[0]).days + 1) // 2:
        row = db.execute(
            f"SELECT COUNT(*) FROM rm_pairs p WHERE {scope} AND exchanges > 0"  # noqa: S608
            " AND first_day <= ? AND last_day >= ?"
            " AND (first_day >= ? OR last_day <= ? OR EXISTS (SELECT 1 FROM rm_pair_days d"
            "  WHERE d.bank_a = p.bank_a AND d.account_a = p.account_a"
            "  AND d.bank_b = p.bank_b AND d.account_b = p.account_b"
            "  AND d.day >= ? AND d.day <= ? AND d.exchanges > 0))",
            (*banks, *banks, last, first, first, last, first, last),
        )
    else:
        row = db.execute(
            f"SELECT COUNT(*) FROM ({_PERIOD_PAIRS.format(marks=marks)}) x",  # noqa: S608
            (first, last, *banks, *banks),
        )
    return int(row[0][0])


#: The distinct pairs of accounts, one of them in the banks, with a standing
#: service exchange between two days (parameters: the days, then the banks
#: twice), read through the day index of the pairs' days.
_PERIOD_PAIRS = (
    "SELECT DISTINCT bank_a, account_a, bank_b, account_b FROM rm_pair_days"
    " WHERE day >= ? AND day <= ? AND exchanges > 0"
    " AND (bank_a IN ({marks}) OR bank_b IN ({marks}))"
)


#: Minutes given, minutes received and exchanges of the period's standing
#: service exchanges (``FROM`` :data:`_SERVICE_ROWS`), by what the query
#: groups by.
_GIVEN_RECEIVED = (
    " SUM(CASE WHEN p.role = 'provider' THEN p.minutes ELSE 0 END),"
    " SUM(CASE WHEN p.role = 'receiver' THEN"
    "  CASE WHEN e.kind = 'pot_exchange' THEN e.minutes ELSE -p.minutes END ELSE 0 END),"
    " COUNT(DISTINCT e.seq)"
)
#: The party rows, in the banks, of the standing service exchanges between
#: two days (parameters: the days, then the banks): the entries (by their
#: date index, or every one: see :func:`_entries`), then each one's rows.
_SERVICE_ROWS = (
    " FROM {entries} CROSS JOIN rm_entry_parties p{join}"
    " WHERE e.occurred_on >= ? AND e.occurred_on <= ?"
    " AND e.kind IN ('exchange', 'pot_exchange', 'group_exchange') AND e.reversed_by IS NULL"
    " AND p.entry_seq = e.seq AND p.bank IN ({marks}) AND p.role IN ('provider', 'receiver')"
)
#: Each area's (area, minutes given, minutes received, exchanges). The
#: member -> area map is one JSON parameter, a table for the query's length
#: (the read model holds no personal data, so it is not joined from a table).
_AREAS = (
    "WITH areas AS (SELECT key AS member, value AS area FROM {each})"  # noqa: S608 - fixed text
    " SELECT a.area,"
    + _GIVEN_RECEIVED
    + _SERVICE_ROWS.format(
        join=" LEFT JOIN areas a ON a.member = p.account", marks="{marks}", entries="{entries}"
    )
    + " GROUP BY a.area"
)
#: Each member's (member, minutes given, minutes received, exchanges, first
#: and last day of one).
_ACTIVITY = (
    "SELECT p.account,"
    + _GIVEN_RECEIVED
    + ", MIN(e.occurred_on), MAX(e.occurred_on)"
    + _SERVICE_ROWS.format(join="", marks="{marks}", entries="{entries}")
    + " GROUP BY p.account"
)
#: A period holding at least this share of the read model's entries has its
#: service exchanges read from every entry in turn, not by the date index
#: (SQLite; PostgreSQL's planner chooses by its statistics). Measured at a
#: million entries over ten years, the query of each member's activity: a
#: week 30 ms by the index against 140 ms reading every entry, a month 100
#: against 190 ms, a quarter (2.5 % of the entries) 250 against 260 ms, a
#: year 0.97 against 0.62 s, ten years 3.9 against 2.6 s (docs/performance.md).
SCAN_SHARE = 0.05


def _entries(db: ReadModelDB, first: str, last: str) -> str:
    """The entries a period's service exchanges are read from: through the
    date index for a short period, every entry in turn for a long one."""
    if db.dialect != "sqlite":
        return "rm_entries e"
    within, total = db.execute(
        "SELECT SUM(CASE WHEN month >= ? AND month <= ? THEN entries ELSE 0 END), SUM(entries)"
        " FROM rm_monthly",
        (first[:7], last[:7]),
    )[0]
    if total and within >= SCAN_SHARE * total:
        return "rm_entries e NOT INDEXED"
    return "rm_entries e"


#: A JSON object as a table of (key, value) rows, per dialect.
_JSON_EACH = {"sqlite": "json_each(?)", "postgresql": "json_each_text(CAST(? AS json))"}


def _by_area(
    db: ReadModelDB,
    banks: tuple[str, ...],
    marks: str,
    period: tuple[str, str],
    areas: Mapping[str, str],
    people: tuple[set[str], set[str], set[str]],
) -> tuple[AreaFigures, ...]:
    """The figures by area: ``people`` are the members on the last day, the
    new and the active members (each counted in their own area)."""
    # members, new members, active members, given, received, exchanges
    figures: defaultdict[str | None, list[int]] = defaultdict(lambda: [0] * 6)
    for column, members in enumerate(people):
        for member in members:
            figures[areas.get(member)][column] += 1
    for area, given, received, exchanges in db.execute(
        _AREAS.format(each=_JSON_EACH[db.dialect], marks=marks, entries=_entries(db, *period)),
        (orjson.dumps(dict(areas)).decode(), *period, *banks),
    ):
        totals = figures[area]
        totals[3] += int(given)
        totals[4] += int(received)
        totals[5] += int(exchanges)
    return tuple(
        AreaFigures(area, *totals)
        for area, totals in sorted(
            figures.items(), key=lambda item: (item[0] is None, item[0] or "")
        )
        if any(totals)
    )


def member_activity(
    db: ReadModelDB, bank: str, start: date, end: date, rollup: bool
) -> list[tuple[Any, ...]]:
    """Each member whose membership was active on a day of the period, with
    what they did in it: (member, kind, exchanges, minutes given, minutes
    received, partners, first and last exchange day or None), by member."""
    banks, marks = _scoped(db, bank, rollup)
    first, last = start.isoformat(), end.isoformat()
    periods = _periods(db, banks, marks)
    done = {
        str(row[0]): row[1:]
        for row in db.execute(
            _ACTIVITY.format(marks=marks, entries=_entries(db, first, last)), (first, last, *banks)
        )
    }
    partners: defaultdict[str, set[str]] = defaultdict(set)
    for bank_a, account_a, bank_b, account_b in db.execute(
        _PERIOD_PAIRS.format(marks=marks), (first, last, *banks, *banks)
    ):
        if bank_a in banks:
            partners[account_a].add(account_b)
        if bank_b in banks:
            partners[account_b].add(account_a)
    rows = []
    for member, (kind, spans) in sorted(periods.items()):
        if not any(s <= last and (e is None or e >= first) for s, e in spans):
            continue
        given, received, exchanges, first_on, last_on = done.get(member, (0, 0, 0, None, None))
        rows.append(
            (member, kind, int(exchanges), int(given), int(received),
             len(partners[member]), first_on, last_on)
        )  # fmt: skip
    return rows


def one_connection_members(
    db: ReadModelDB, bank: str, as_of: date, rollup: bool
) -> list[tuple[str, str, str, str]]:
    """Members with an active membership on ``as_of`` who, up to that day,
    exchanged with exactly one other member: (member, kind, that member,
    the day they first exchanged), by member."""
    banks, marks = _scoped(db, bank, rollup)
    last = as_of.isoformat()
    periods = _periods(db, banks, marks)
    found = _one_connection(db, banks, marks, last)
    return [
        (member, periods[member][0], *found[member])
        for member in sorted(found)
        if member in periods and _active_on(periods[member][1], last)
    ]


def _one_connection(
    db: ReadModelDB, banks: tuple[str, ...], marks: str, last: str
) -> dict[str, tuple[str, str]]:
    """Members whose accounts in the banks had, up to ``last``, standing
    service exchanges with exactly one other member in all (a member of two
    banks may have reached the same one from both): member -> (that member,
    the first day they exchanged)."""
    partners: defaultdict[str, dict[str, str]] = defaultdict(dict)
    several: set[str] = set()
    for member, partner, connected_on, second_on in db.execute(
        "SELECT account, partner, connected_on, second_on FROM rm_connections"  # noqa: S608
        f" WHERE bank IN ({marks}) AND connected_on <= ?",
        (*banks, last),
    ):
        if second_on is not None and second_on <= last:
            several.add(member)
        else:  # one by then (so a partner is named)
            known = partners[member].get(partner)
            partners[member][partner] = connected_on if known is None else min(known, connected_on)
    return {
        member: next(iter(found.items()))
        for member, found in partners.items()
        if len(found) == 1 and member not in several
    }


def _months(start: date, end: date) -> list[tuple[date, date]]:
    """The calendar months the period touches, each cut to the period."""
    months = []
    day: date | None = start
    while day is not None and day <= end:
        last = _month_end(day)
        months.append((day, min(end, last)))
        day = _next_day(last)
    return months
