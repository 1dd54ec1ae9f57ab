"""A bank's entries over a period, read from ``rm_entries`` (one row an
entry) through its index by date (docs/reports.md, "Statements and
coordinator lists")."""

from __future__ import annotations

from datetime import date, datetime

import orjson

from timebank.domain.errors import EntryNotFound
from timebank.readmodel._db import ReadModelDB
from timebank.readmodel.report import scope
from timebank.readmodel.statement import ENTRY_KINDS
from timebank.views import BankEntry

__all__ = ["bank_entries"]


#: A row of the list (``seq`` last: a compound SELECT orders by its columns).
_SELECT = (
    "SELECT entry_id, kind, occurred_on, minutes, bank, receiver_bank, provider, receiver,"
    " category, reverses, reversed_by, actor, on_behalf_of, recorded_at, flags,"
    " receiver_recorded_at, receiver_flags, seq FROM rm_entries"
)


def bank_entries(
    db: ReadModelDB,
    bank: str,
    first: date,
    last: date,
    *,
    rollup: bool,
    flagged: bool,
    limit: int,
    offset: int,
    after: str | None = None,
) -> list[BankEntry]:
    """Rows ``offset + 1`` to ``offset + limit`` of the entries of ``bank``
    (with ``rollup``, and of its mini banks) dated ``first`` to ``last``, in
    date order and then recorded order; with ``flagged``, only those with
    limit flags on a side in those banks. With ``after`` (an entry id;
    ``offset`` is then 0), the ``limit`` rows after that entry's place in
    that order: :class:`EntryNotFound` when it is not an entry of those
    banks dated in the period."""
    banks = scope(db, bank, rollup)
    marks = ", ".join("?" * len(banks))
    period: tuple[object, ...] = (first.isoformat(), last.isoformat())
    select = _SELECT + " WHERE occurred_on BETWEEN ? AND ?"
    if after is not None:  # from its place on: the index by date starts there
        start, seq = _place(db, after, bank, banks, first, last)
        select += " AND (occurred_on > ? OR seq > ?)"
        period = (start, last.isoformat(), start, seq)
    if flagged:
        # a side's flagged rows through its partial index, not every row of
        # the period; UNION lists an entry flagged on both sides once
        sql = (
            f"{select} AND flags IS NOT NULL AND bank IN ({marks})"
            f" UNION {select} AND receiver_flags IS NOT NULL AND receiver_bank IN ({marks})"
        )
        params = (*period, *banks, *period, *banks)
    else:
        sql = f"{select} AND (bank IN ({marks}) OR receiver_bank IN ({marks}))"
        params = (*period, *banks, *banks)
    rows = db.execute(f"{sql} ORDER BY occurred_on, seq LIMIT ? OFFSET ?", (*params, limit, offset))
    listed = set(banks)
    found = []
    for row in rows:
        (
            entry_id, kind, occurred_on, minutes, recorder, receiver_bank, provider, receiver,
            category, reverses, reversed_by, actor, on_behalf_of, recorded_at, flags,
            receiver_recorded_at, receiver_flags, _,
        ) = row  # fmt: skip
        sides = [flags] if recorder in listed else []
        if receiver_bank in listed:
            sides.append(receiver_flags)
        stamp = recorded_at if recorder in listed else (receiver_recorded_at or recorded_at)
        found.append(
            BankEntry(
                entry_id=entry_id,
                kind=ENTRY_KINDS[kind],
                occurred_on=date.fromisoformat(occurred_on),
                minutes=minutes,
                bank=recorder,
                receiver_bank=receiver_bank,
                provider=provider,
                receiver=receiver,
                category=category,
                reverses=reverses,
                reversed_by=reversed_by,
                actor=actor,
                on_behalf_of=on_behalf_of,
                recorded_at=datetime.fromisoformat(stamp),
                flags=tuple(flag for side in sides if side for flag in orjson.loads(side)),
            )
        )
    return found


def _place(
    db: ReadModelDB, entry_id: str, listed: str, banks: tuple[str, ...], first: date, last: date
) -> tuple[str, int]:
    """Where the entry ``entry_id`` is in the list ``listed`` gives, of the
    entries of ``banks`` dated ``first`` to ``last``: its date and its
    position in the log (``seq``)."""
    found = db.execute(
        "SELECT occurred_on, seq, bank, receiver_bank FROM rm_entries WHERE entry_id = ?",
        (entry_id,),
    )
    if not found:
        raise EntryNotFound(f"no entry {entry_id!r} to list entries after", entry_id=entry_id)
    ((occurred_on, seq, bank, receiver_bank),) = found
    if bank not in banks and receiver_bank not in banks:
        where = f"{listed!r}{' or its mini banks' if len(banks) > 1 else ''}"
        raise EntryNotFound(
            f"entry {entry_id!r} is of {bank!r}, not of {where}: not in the list to page after",
            entry_id=entry_id,
        )
    if not first.isoformat() <= occurred_on <= last.isoformat():
        raise EntryNotFound(
            f"entry {entry_id!r} is dated {occurred_on}, outside the list's period"
            f" ({first} to {last}): not in the list to page after",
            entry_id=entry_id,
        )
    return str(occurred_on), int(seq)
