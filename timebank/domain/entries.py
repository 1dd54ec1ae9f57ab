"""Entries: what a caller asks to record, and what the ledger recorded.

Every entry is double-entry: its *legs* (account, signed minutes) sum to
zero. ``provider`` and ``receiver`` name the member parties by role, with the
same meaning as the columns of the import/export CSV layout:

============== ==================== ===================== =========================
kind           provider             receiver              legs
============== ==================== ===================== =========================
exchange       gave help            received help         provider +m, receiver -m
pot_exchange   gave help            received help         provider +m, @pot -m
donation       donor                (none)                provider -m, @pot +m
gift           giver                recipient             provider -m, receiver +m
opening_bal.   member               (none)                provider +m, @opening -m
reversal       (none)               (none)                the reversed entry's legs, negated
group_exch.    (none)               (none)                each provider +share, each receiver -share
============== ==================== ===================== =========================
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import attrs

from timebank.domain.errors import InvalidGroup
from timebank.domain.values import (
    CLEARING_PREFIX,
    OPENING,
    POT,
    EntryKind,
    clearing_account,
    fields_as_json,
)

__all__ = [
    "DERIVED_LEG_KINDS",
    "GROUP_PARTICIPANTS_MAX",
    "INTER_BANK_KINDS",
    "Leg",
    "NewEntry",
    "RecordedEntry",
    "group_legs",
    "inter_bank_legs",
    "legs_for",
]

#: Most members one group exchange may have (a street event, a class).
GROUP_PARTICIPANTS_MAX = 200

#: One side of an entry: (account name within the bank, signed minutes).
Leg = tuple[str, int]


@attrs.frozen
class NewEntry:
    """A validated request to record an entry (built by the API, not by users).

    Two requests with the same ``entry_id`` are the same entry when every
    field here is equal; the actor who recorded it is not compared, so a
    retry by another coordinator is still the same entry.
    """

    entry_id: str
    bank: str
    kind: EntryKind
    minutes: int
    occurred_on: date
    provider: str | None = None
    receiver: str | None = None
    category: str | None = None
    reverses: str | None = None
    #: A group exchange's participants: providers (+minutes) then receivers
    #: (-minutes), each side in member-id order.
    participants: tuple[Leg, ...] = ()
    #: The receiver's bank, for an entry between two banks of a tree
    #: (``bank`` is then the provider's bank); ``None`` within one bank.
    receiver_bank: str | None = None

    @property
    def banks(self) -> tuple[str, ...]:
        """The banks this entry is recorded on (one, or two for inter-bank)."""
        return (self.bank,) if self.receiver_bank is None else (self.bank, self.receiver_bank)

    def differing_field(self, recorded: RecordedEntry) -> str | None:
        """The first field that differs from an already-recorded entry."""
        names = ("bank", "receiver_bank", "kind", "provider", "receiver", "category", "reverses")
        for name in names:
            if getattr(self, name) != getattr(recorded, name):
                return name
        if self.participants != recorded.participants:
            return "participants"
        if self.kind is not EntryKind.REVERSAL and self.minutes != recorded.minutes:
            return "minutes"
        if self.occurred_on != recorded.occurred_on:
            return "occurred_on"
        return None


#: The kinds whose legs :func:`legs_for` derives from an entry's own fields
#: (a group exchange's and a reversal's legs are stored with them).
DERIVED_LEG_KINDS = frozenset(
    {
        EntryKind.EXCHANGE,
        EntryKind.POT_EXCHANGE,
        EntryKind.DONATION,
        EntryKind.GIFT,
        EntryKind.OPENING_BALANCE,
    }
)


def legs_for(
    kind: EntryKind, provider: str | None, receiver: str | None, minutes: int
) -> list[Leg]:
    """The legs of an entry of any kind but reversal (whose legs are stored)."""
    if kind is EntryKind.EXCHANGE:
        return [(_party(provider), minutes), (_party(receiver), -minutes)]
    if kind is EntryKind.POT_EXCHANGE:
        return [(_party(provider), minutes), (POT, -minutes)]
    if kind is EntryKind.DONATION:
        return [(_party(provider), -minutes), (POT, minutes)]
    if kind is EntryKind.GIFT:
        return [(_party(provider), -minutes), (_party(receiver), minutes)]
    if kind is EntryKind.OPENING_BALANCE:
        return [(_party(provider), minutes), (OPENING, -minutes)]
    raise ValueError(f"a reversal's legs are stored, not derived: {kind}")


#: The kinds an inter-bank entry may have.
INTER_BANK_KINDS = frozenset(
    {EntryKind.EXCHANGE, EntryKind.POT_EXCHANGE, EntryKind.GIFT, EntryKind.DONATION}
)


def inter_bank_legs(
    kind: EntryKind,
    provider_bank: str,
    provider: str,
    receiver_bank: str,
    receiver: str | None,
    minutes: int,
) -> dict[str, list[Leg]]:
    """The legs of an entry between two banks, per bank: each side is the
    same-bank leg plus the bank's clearing account with the other bank, so
    each side sums to zero and the two clearing legs cancel out.

    A pot exchange is paid by the receiver's bank's pot; a donation goes to
    the receiver's bank's pot.
    """
    if kind not in INTER_BANK_KINDS:
        raise ValueError(f"not an inter-bank kind: {kind}")
    legs = legs_for(kind, provider, receiver, minutes)
    (out_account, out_minutes), (in_account, in_minutes) = legs
    return {
        provider_bank: [
            (out_account, out_minutes),
            (clearing_account(receiver_bank), -out_minutes),
        ],
        receiver_bank: [(in_account, in_minutes), (clearing_account(provider_bank), -in_minutes)],
    }


def group_legs(providers: dict[str, int], receivers: dict[str, int]) -> tuple[Leg, ...]:
    """The legs of a group exchange, validated: providers +minutes, receivers
    -minutes, each side in member-id order. Raises :class:`InvalidGroup`."""
    problem = None
    if not providers or not receivers:
        problem = "a group exchange needs at least one provider and one receiver"
    elif set(providers) & set(receivers):
        problem = f"on both sides: {sorted(set(providers) & set(receivers))}"
    elif len(providers) + len(receivers) > GROUP_PARTICIPANTS_MAX:
        problem = f"more than {GROUP_PARTICIPANTS_MAX} participants"
    elif any(m <= 0 for m in [*providers.values(), *receivers.values()]):
        problem = "every share must be a positive number of minutes"
    elif sum(providers.values()) != sum(receivers.values()):
        problem = (
            f"providers give {sum(providers.values())} minutes but receivers get"
            f" {sum(receivers.values())}"
        )
    if problem is not None:
        raise InvalidGroup(f"invalid group exchange: {problem}")
    return tuple(
        [(m, providers[m]) for m in sorted(providers)]
        + [(m, -receivers[m]) for m in sorted(receivers)]
    )


def _party(member: str | None) -> str:
    if member is None:
        raise ValueError("entry is missing a party")
    return member


@attrs.frozen
class RecordedEntry:
    """An entry as the ledger recorded it (read back from the event store).

    ``minutes`` is the entry's amount (for a reversal, the reversed entry's
    amount); ``legs`` say exactly how it moved balances. ``recorded_at`` is
    when it was recorded (UTC); ``occurred_on`` when the help happened.
    ``reversed_by`` is the id of the reversal that undid it, if any.

    A reversal's record names only the entry it undoes (``reverses``): its
    ``provider``, ``receiver``, ``provider_bank`` and ``receiver_bank`` are
    ``None``, and its ``legs`` are that entry's in this bank, negated, a
    clearing leg included. The entry it undoes has them, and its kind says
    what a clearing leg stands for.
    """

    entry_id: str
    bank: str
    kind: EntryKind
    minutes: int
    occurred_on: date
    recorded_at: datetime
    actor: str
    legs: tuple[Leg, ...]
    provider: str | None = None
    receiver: str | None = None
    category: str | None = None
    reverses: str | None = None
    flags: tuple[str, ...] = ()
    reversed_by: str | None = None
    #: The member the ``actor`` recorded it for (guardian angel, coordinator).
    on_behalf_of: str | None = None
    #: For an entry between two banks: the provider's and receiver's banks
    #: (``bank`` is the side this record was read from); else ``None``.
    provider_bank: str | None = None
    receiver_bank: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready data: dates as ISO text, ``legs`` as
        ``[account, minutes]`` pairs (what ``timebank entry --format json``
        prints)."""
        return fields_as_json(self)

    @property
    def participants(self) -> tuple[Leg, ...]:
        """A group exchange's participants (its legs); empty for other kinds."""
        return self.legs if self.kind is EntryKind.GROUP_EXCHANGE else ()

    def minutes_for(self, account: str) -> int:
        """Net minutes this entry moved on one account (0 if not involved)."""
        return sum(m for a, m in self.legs if a == account)

    def counterparties(self, account: str) -> tuple[str, ...]:
        """The other accounts in this entry, seen from ``account``. For an
        inter-bank entry the clearing account is shown as the account it
        stands for in the other bank, ``bank:account``."""
        others = [a for a, _ in self.legs if a != account]
        if self.provider_bank is None or self.receiver_bank is None:
            return tuple(others)
        if self.bank == self.provider_bank:
            far_bank, far = self.receiver_bank, self.receiver
            if self.kind in (EntryKind.POT_EXCHANGE, EntryKind.DONATION):
                far = POT
        else:
            far_bank, far = self.provider_bank, self.provider
        return tuple(f"{far_bank}:{far}" if a.startswith(CLEARING_PREFIX) else a for a in others)
