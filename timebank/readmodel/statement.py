"""An account's statement, read from the read model's entry tables.

The lines are the ones the ledger's own postings give (the tests compare the
two on random ledgers): every entry that moved the account, in the order the
bank recorded it, with the running balance; a pot-funded exchange's receiver,
who has no leg, gets a line of 0 minutes too. Counterparties are the entry's
other legs in the same bank, in the order the entry lists them; an
inter-bank entry's clearing account is shown as the account it stands for in
the other bank (``bank:account``), and a reversal names the accounts as the
line of the entry it undoes does.
"""

from __future__ import annotations

from datetime import date, datetime

import orjson

from timebank.domain.values import CLEARING_PREFIX, POT, EntryKind
from timebank.readmodel._db import ReadModelDB
from timebank.views import StatementLine

__all__ = ["statement_lines"]

_KINDS = {kind.value: kind for kind in EntryKind}
_FAR_IS_POT = frozenset({EntryKind.POT_EXCHANGE.value, EntryKind.DONATION.value})


def statement_lines(db: ReadModelDB, bank: str, account: str, limit: int) -> list[StatementLine]:
    """The first ``limit`` lines of ``account``'s statement in ``bank``."""
    rows = db.execute(
        "SELECT p.entry_id, p.minutes, e.kind, e.occurred_on, e.recorded_at, e.category,"
        " e.reverses, e.reversed_by, e.flags, e.bank, e.receiver_bank, e.provider, e.receiver,"
        " e.receiver_recorded_at, e.receiver_flags"
        " FROM rm_entry_parties p JOIN rm_entries e ON e.seq = p.entry_seq"
        " WHERE p.bank = ? AND p.account = ? ORDER BY p.seq LIMIT ?",
        (bank, account, limit),
    )
    others: dict[str, list[str]] = {}  # entry id -> its other legs in this bank, in order
    for entry_id, other in db.execute(
        "SELECT q.entry_id, q.account FROM rm_entry_parties p"
        " JOIN rm_entry_parties q ON q.entry_seq = p.entry_seq AND q.bank = p.bank"
        " WHERE p.bank = ? AND p.account = ? AND q.account <> p.account AND q.leg IS NOT NULL"
        " ORDER BY q.entry_id, q.leg",
        (bank, account),
    ):
        others.setdefault(entry_id, []).append(other)
    lines: list[StatementLine] = []
    named: dict[str, tuple[str, ...]] = {}  # entry id -> its line's counterparties
    balance = 0
    for (
        entry_id, minutes, kind, occurred_on, recorded_at, category, reverses, reversed_by,
        flags, provider_bank, receiver_bank, provider, receiver, receiver_recorded_at,
        receiver_flags,
    ) in rows:  # fmt: skip
        balance += minutes
        counterparties = others.get(entry_id, [])
        stamp, side_flags = recorded_at, flags
        if receiver_bank is not None:  # an inter-bank entry, seen from one side
            if bank == provider_bank:
                far_bank, far = receiver_bank, (POT if kind in _FAR_IS_POT else receiver)
            else:  # the receiving bank's side: recorded at its own moment, its own flags
                far_bank, far = provider_bank, provider
                stamp, side_flags = receiver_recorded_at, receiver_flags
            counterparties = [
                f"{far_bank}:{far}" if a.startswith(CLEARING_PREFIX) else a for a in counterparties
            ]
        if reverses in named:  # the accounts of the entry it undoes, named as there
            counterparties = list(named[reverses])
        named[entry_id] = tuple(counterparties)
        lines.append(
            StatementLine(
                entry_id=entry_id,
                kind=_KINDS[kind],
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
