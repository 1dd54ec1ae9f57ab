"""An account's statement, read from the read model's entry tables.

The lines are the ones the ledger's own postings give (the tests compare the
two on random ledgers): every entry that moved the account, in the order the
bank recorded it, with the running balance; a pot-funded exchange's receiver,
who has no leg, gets a line of 0 minutes too. Counterparties are the entry's
other legs in the same bank, in the order the entry lists them; an
inter-bank entry's clearing account is shown as the account it stands for in
the other bank (``bank:account``), and a reversal names the accounts as the
line of the entry it undoes does.

The other legs of an entry within one bank of a two-party kind come from the
domain's own rule (:func:`~timebank.domain.entries.legs_for`), which is how
the projector wrote its party rows; only group exchanges, reversals and
inter-bank entries have theirs read back from ``rm_entry_parties``. Reading
every line's other rows back (a second index seek and row a line) made a
1,000-line statement take 16.9 ms against 12.1 ms (medians of 200 calls of
each, alternated, on the benchmark store).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import orjson

from timebank.domain.entries import DERIVED_LEG_KINDS, legs_for
from timebank.domain.values import CLEARING_PREFIX, POT, EntryKind
from timebank.readmodel._db import ReadModelDB
from timebank.views import StatementLine

__all__ = ["ENTRY_KINDS", "balances_on", "statement_lines"]

#: The kinds of entry by the text the read model holds (its ``kind`` columns).
ENTRY_KINDS = {kind.value: kind for kind in EntryKind}
_FAR_IS_POT = frozenset({EntryKind.POT_EXCHANGE.value, EntryKind.DONATION.value})
#: Kinds whose legs in one bank follow from the entry's own fields (as the
#: rows hold them).
_DERIVED = frozenset(kind.value for kind in DERIVED_LEG_KINDS)
#: Entries whose rows one query reads at most.
_SEQS_PER_QUERY = 500


_COLUMNS = (
    "SELECT p.entry_id, p.minutes, e.kind, e.occurred_on, e.recorded_at, e.category,"
    " e.reverses, e.reversed_by, e.flags, e.bank, e.receiver_bank, e.provider, e.receiver,"
    " e.receiver_recorded_at, e.receiver_flags, e.seq"
    " FROM rm_entry_parties p JOIN rm_entries e ON e.seq = p.entry_seq"
)

#: A page of lines: chosen from the account's index entries alone (the index
#: holds ``seq``, ``entry_seq`` and ``minutes``), then joined to their
#: entries. Choosing them from the joined rows read and sorted every line of
#: the account for every page. (A party row's entry id is its entry's.)
_PAGE = (
    "SELECT e.entry_id, page.minutes, e.kind, e.occurred_on, e.recorded_at, e.category,"
    " e.reverses, e.reversed_by, e.flags, e.bank, e.receiver_bank, e.provider, e.receiver,"
    " e.receiver_recorded_at, e.receiver_flags, e.seq"
    " FROM (SELECT seq, entry_seq, minutes FROM rm_entry_parties"
    "  WHERE bank = ? AND account = ? ORDER BY seq LIMIT ? OFFSET ?) AS page"
    " JOIN rm_entries e ON e.seq = page.entry_seq ORDER BY page.seq"
)


#: (bank, account, day) keys a query of :func:`balances_on` sums: four
#: parameters each, under the 999 that SQLite before 3.32 takes.
BALANCES_PER_QUERY = 200


def balances_on(db: ReadModelDB, keys: Sequence[tuple[str, str, date]]) -> list[int]:
    """For each (bank, account, day) of ``keys``, in their order, the
    account's balance in the bank at the end of the day: the sum of its
    lines dated on or before it (as a plain integer: PostgreSQL's sum of
    BIGINT is NUMERIC). :data:`BALANCES_PER_QUERY` keys to a query: a
    balance check asks for thousands, and on PostgreSQL each query is a
    round trip."""
    balances: list[int] = []
    for start in range(0, len(keys), BALANCES_PER_QUERY):
        part = keys[start : start + BALANCES_PER_QUERY]
        rows = db.execute(
            "WITH asked(n, bank, account, day) AS (VALUES "  # noqa: S608 - marks only
            + ", ".join("(?, ?, ?, ?)" for _ in part)
            + ") SELECT asked.n, (SELECT CAST(coalesce(sum(p.minutes), 0) AS BIGINT)"
            " FROM rm_entry_parties p WHERE p.bank = asked.bank"
            " AND p.account = asked.account AND p.occurred_on <= asked.day) FROM asked",
            [value for n, (bank, account, day) in enumerate(part)
             for value in (n, bank, account, day.isoformat())],
        )  # fmt: skip
        found = {int(n): int(balance) for n, balance in rows}
        balances.extend(found[n] for n in range(len(part)))
    return balances


def statement_lines(
    db: ReadModelDB, bank: str, account: str, limit: int, offset: int = 0
) -> list[StatementLine]:
    """Lines ``offset + 1`` to ``offset + limit`` of ``account``'s statement in
    ``bank``, each as the whole statement has it: the running balance counts
    the lines before ``offset`` too, and a reversal names the accounts of the
    line it undoes wherever that line is."""
    rows = db.execute(_PAGE, (bank, account, limit, offset))
    if not rows:
        return []
    balance = 0
    if offset:  # a sum, as a plain integer (PostgreSQL's sum of BIGINT is NUMERIC)
        ((balance,),) = db.execute(
            "SELECT CAST(coalesce(sum(minutes), 0) AS BIGINT) FROM (SELECT minutes"
            " FROM rm_entry_parties WHERE bank = ? AND account = ? ORDER BY seq LIMIT ?)"
            " AS before_page",
            (bank, account, offset),
        )
    earlier = _undone_before(db, bank, account, rows)
    # entry seq (the last column) -> id, of the lines whose legs are read back
    stored = {row[-1]: row[0] for row in (*earlier, *rows) if not _derived(row[2], row[10])}
    others = _stored_legs(db, bank, account, stored)
    # entry id -> its line's counterparties
    named = {row[0]: tuple(_counterparties(row, bank, account, others)) for row in earlier}
    lines: list[StatementLine] = []
    for row in rows:
        (
            entry_id, minutes, kind, occurred_on, recorded_at, category, reverses, reversed_by,
            flags, _, receiver_bank, _, _, receiver_recorded_at, receiver_flags, _,
        ) = row  # fmt: skip
        balance += minutes
        if reverses in named:  # the accounts of the entry it undoes, named as there
            named[entry_id] = named[reverses]
        else:
            named[entry_id] = tuple(_counterparties(row, bank, account, others))
        stamp, side_flags = recorded_at, flags
        if receiver_bank is not None and bank != row[9]:
            # the receiving bank's side of an inter-bank entry: recorded at
            # its own moment, with its own flags
            stamp, side_flags = receiver_recorded_at, receiver_flags
        lines.append(
            StatementLine(
                entry_id=entry_id,
                kind=ENTRY_KINDS[kind],
                occurred_on=date.fromisoformat(occurred_on),
                recorded_at=datetime.fromisoformat(stamp),
                minutes=minutes,
                balance_minutes=balance,
                counterparties=named[entry_id],
                category=category,
                reverses=reverses,
                reversed_by=reversed_by,
                flags=tuple(orjson.loads(side_flags)) if side_flags else (),
            )
        )
    return lines


def _undone_before(
    db: ReadModelDB, bank: str, account: str, rows: list[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """The statement rows of the entries that reversals among ``rows`` undo,
    where those entries come before ``rows`` (on an earlier page): the
    reversals' lines name the accounts that theirs name."""
    on_page = {row[0] for row in rows}
    undone = sorted({row[6] for row in rows if row[6] is not None and row[6] not in on_page})
    earlier: list[tuple[Any, ...]] = []
    for start in range(0, len(undone), _SEQS_PER_QUERY):
        chunk = undone[start : start + _SEQS_PER_QUERY]
        earlier += db.execute(
            f"{_COLUMNS} WHERE e.entry_id IN ({', '.join('?' * len(chunk))})"
            " AND p.bank = ? AND p.account = ?",
            (*chunk, bank, account),
        )
    return earlier


def _counterparties(
    row: tuple[Any, ...], bank: str, account: str, others: dict[str, list[str]]
) -> list[str]:
    """The other accounts of a statement row's entry in ``bank``: an
    inter-bank entry's clearing account shown as the account it stands for
    (``bank:account``)."""
    entry_id, minutes, kind = row[0], row[1], row[2]
    provider_bank, receiver_bank, provider, receiver = row[9], row[10], row[11], row[12]
    if _derived(kind, receiver_bank):
        legs = legs_for(ENTRY_KINDS[kind], provider, receiver, minutes)
        return [a for a, _ in legs if a != account]
    counterparties = others.get(entry_id, [])
    if receiver_bank is None:
        return counterparties
    if bank == provider_bank:  # an inter-bank entry, seen from one side
        far_bank, far = receiver_bank, (POT if kind in _FAR_IS_POT else receiver)
    else:
        far_bank, far = provider_bank, provider
    return [f"{far_bank}:{far}" if a.startswith(CLEARING_PREFIX) else a for a in counterparties]


def _derived(kind: str, receiver_bank: str | None) -> bool:
    """Whether an entry's legs follow from its own fields: a two-party kind
    within one bank."""
    return kind in _DERIVED and receiver_bank is None


def _stored_legs(
    db: ReadModelDB, bank: str, account: str, stored: dict[int, str]
) -> dict[str, list[str]]:
    """Entry id -> the accounts of its other legs in ``bank``, in order, for
    the ``stored`` entries (entry seq -> id), read from their party rows."""
    others: dict[str, list[str]] = {}
    seqs = sorted(stored)
    for start in range(0, len(seqs), _SEQS_PER_QUERY):
        chunk = seqs[start : start + _SEQS_PER_QUERY]
        # by entry_seq alone (the bank and account are tested here): with
        # them in the WHERE clause SQLite may seek the whole bank instead
        for seq, leg_bank, other in db.execute(
            "SELECT entry_seq, bank, account FROM rm_entry_parties"  # noqa: S608 - only marks
            f" WHERE entry_seq IN ({', '.join('?' * len(chunk))}) AND leg IS NOT NULL"
            " ORDER BY entry_seq, leg",
            chunk,
        ):
            if leg_bank == bank and other != account:
                others.setdefault(stored[seq], []).append(other)
    return others
