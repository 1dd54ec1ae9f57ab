"""What queries return: small frozen value objects with ``to_dict()`` for JSON."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import attrs

from timebank.domain.entries import RecordedEntry
from timebank.domain.policy import Policy
from timebank.domain.values import EntryKind, fields_as_json, format_hours, jsonable
from timebank.storage.base import Profile

__all__ = [
    "AccountBalance",
    "Backup",
    "BankEntry",
    "BankInfo",
    "Erasure",
    "Figures",
    "InactiveMember",
    "Member",
    "NearLimit",
    "OneConnection",
    "PendingEntry",
    "PersonEvent",
    "Restored",
    "StatementLine",
    "SubjectAccess",
]


@attrs.frozen
class BankInfo:
    """A bank: ``parent`` is the bank a mini time bank sits in (else ``None``);
    ``roles`` the roles granted in the bank itself (user -> role)."""

    bank: str
    name: str
    opened_on: date
    policy: Policy
    members: int
    parent: str | None = None
    roles: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "bank": self.bank,
            "name": self.name,
            "parent": self.parent,
            "opened_on": self.opened_on.isoformat(),
            "members": self.members,
            "roles": dict(self.roles),
            "policy": self.policy.to_dict(),
        }


@attrs.frozen
class Member:
    """A member's account in one bank. ``status`` is active, suspended or left;
    ``left_on`` is set while they have left."""

    bank: str
    member: str
    kind: str
    joined_on: date
    balance_minutes: int
    status: str = "active"
    left_on: date | None = None

    def to_dict(self) -> dict[str, Any]:
        return fields_as_json(self)


@attrs.frozen
class AccountBalance:
    """The balance of one account. ``account`` is a member id, ``@pot`` or
    ``@opening``; ``kind`` is individual, organisation, pot or system."""

    bank: str
    account: str
    kind: str
    balance_minutes: int

    def to_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "balance_hours": format_hours(self.balance_minutes)}


@attrs.frozen
class Backup:
    """A checked copy of a store: the file, its size, the events it holds."""

    path: str
    bytes: int
    events: int

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class Restored:
    """A store restored from a backup: the store's file, the backup it now
    holds, its events, and where the store it replaced was moved (``None``
    when there was none)."""

    path: str
    backup: str
    events: int
    replaced: str | None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class Erasure:
    """The outcome of erasing a member's personal data.

    ``profile_deleted``: there was a profile and it is gone.
    ``physically_complete``: no copy is left in the store's files (false only
    when other processes' reads held it back: on SQLite by keeping the
    write-ahead log busy, on PostgreSQL by holding the profile table in an
    open transaction, each for more than 5 s; run the erasure again later
    to finish it).
    """

    member: str
    profile_deleted: bool
    physically_complete: bool

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class PendingEntry:
    """An entry proposed and not yet in effect: it moves no balance.

    ``awaiting`` is ``confirmation`` (by ``confirmer``, the other party) or
    ``approval`` (by a coordinator). ``expired`` is true after ``expires_on``
    in the bank's timezone: it can then only be declined or expired.
    ``actor`` proposed it, for ``on_behalf_of`` when set.
    """

    entry_id: str
    bank: str
    kind: EntryKind
    minutes: int
    occurred_on: date
    provider: str | None
    receiver: str | None
    receiver_bank: str | None
    category: str | None
    actor: str
    on_behalf_of: str | None
    awaiting: str
    confirmer: str | None
    needs_approval: bool
    proposed_on: date
    expires_on: date
    confirmed_by: str | None
    expired: bool

    def to_dict(self) -> dict[str, Any]:
        return fields_as_json(self)


@attrs.frozen
class StatementLine:
    """One entry on an account's statement, with the balance after it.

    Lines come in the order the entries were recorded, which is the order in
    which they moved the balance.
    """

    entry_id: str
    kind: EntryKind
    occurred_on: date
    recorded_at: datetime
    minutes: int
    balance_minutes: int
    counterparties: tuple[str, ...]
    category: str | None
    reverses: str | None
    reversed_by: str | None
    flags: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return fields_as_json(self)


@attrs.frozen
class BankEntry:
    """One entry of a bank's list (:meth:`~timebank.Timebank.entries`), as the
    read model holds it: one row an entry. ``bank`` recorded it (the
    provider's, for an inter-bank entry; ``receiver_bank`` is the other);
    ``minutes`` is a group exchange's providers' total, an opening balance
    signed, a reversal the amount it undoes; a group exchange has no
    ``provider`` or ``receiver`` (:meth:`~timebank.Timebank.entry` gives its
    legs). A reversal's row repeats the parties and banks of the entry it
    undoes, which its own record (:meth:`~timebank.Timebank.entry`) leaves
    to that entry. ``recorded_at`` and ``flags`` (the balance limits it went
    past) are those of its side in the banks listed."""

    entry_id: str
    kind: EntryKind
    occurred_on: date
    minutes: int
    bank: str
    receiver_bank: str | None
    provider: str | None
    receiver: str | None
    category: str | None
    reverses: str | None
    reversed_by: str | None
    actor: str
    on_behalf_of: str | None
    recorded_at: datetime
    flags: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**fields_as_json(self), "hours": format_hours(self.minutes)}


@attrs.frozen
class InactiveMember:
    """A member with no service exchange lately (see ``inactive_members``)."""

    bank: str
    member: str
    kind: str
    #: Their last service exchange in the banks asked about, if any.
    last_exchange_on: date | None

    def to_dict(self) -> dict[str, Any]:
        return fields_as_json(self)


@attrs.frozen
class OneConnection:
    """A member who has exchanged with exactly one other member (see
    ``members_with_one_connection``): someone a coordinator may introduce
    to others."""

    bank: str
    member: str
    kind: str
    #: The one member they have exchanged with (in any bank).
    connected_with: str
    #: The day of their first exchange with that member.
    connected_on: date

    def to_dict(self) -> dict[str, Any]:
        return fields_as_json(self)


@attrs.frozen
class NearLimit:
    """A member whose balance is close to (or beyond) a limit of the policy."""

    bank: str
    member: str
    kind: str
    balance_minutes: int
    #: ``lowest`` or ``highest``: which limit is near.
    side: str
    limit_minutes: int
    #: Minutes left before the limit (negative: beyond it).
    headroom_minutes: int

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class Figures:
    """Headline figures of a bank over its whole history (see docs/concepts.md).

    Reversed entries and reversals are left out of every count; opening
    balances are never exchanges or transactions.
    """

    bank: str
    individual_members: int
    organisations: int
    exchanges: int
    exchanged_minutes: int
    transactions: int
    donated_to_pot_minutes: int
    pot_funded_minutes: int
    pot_balance_minutes: int
    reversals: int
    #: The banks counted: the bank alone, or with its mini banks (rollup).
    banks: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "banks": list(self.banks)}


@attrs.frozen
class PersonEvent:
    """An event of the log that names a person: what it is, in which bank
    (``None`` for the store's registry), when it was recorded, its entry
    if it has one, and the fields that name them (``actor``, ``member_id``,
    ``provider``, ``participants``...)."""

    event: str
    bank: str | None
    recorded_at: datetime
    entry_id: str | None
    named_as: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return fields_as_json(self)


@attrs.frozen
class SubjectAccess:
    """Everything one store holds about a person, for a subject access
    request (docs/membership.md): their profile, memberships and the periods
    of each, their statements, the entries they recorded or that were
    recorded on their behalf, the pending entries they take part in, their
    roles and guardianships, and every event of the log that names them.
    Mappings are by bank."""

    person: str
    profile: Profile | None
    memberships: tuple[Member, ...]
    periods: dict[str, tuple[tuple[date | None, date | None], ...]]
    statements: dict[str, tuple[StatementLine, ...]]
    recorded: tuple[RecordedEntry, ...]
    pending: tuple[PendingEntry, ...]
    roles: dict[str, str]
    guardians: dict[str, tuple[str, ...]]
    guardian_of: dict[str, tuple[str, ...]]
    #: Every event of the log that names them, in log order.
    events: tuple[PersonEvent, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "person": self.person,
            "profile": None if self.profile is None else self.profile.to_dict(),
            "memberships": [
                {**m.to_dict(), "periods": jsonable(self.periods[m.bank])} for m in self.memberships
            ],
            "statements": {
                bank: [line.to_dict() for line in lines] for bank, lines in self.statements.items()
            },
            "recorded": [e.to_dict() for e in self.recorded],
            "pending": [p.to_dict() for p in self.pending],
            "roles": dict(self.roles),
            "guardians": {bank: list(g) for bank, g in self.guardians.items()},
            "guardian_of": {bank: list(m) for bank, m in self.guardian_of.items()},
            "events": [e.to_dict() for e in self.events],
        }
