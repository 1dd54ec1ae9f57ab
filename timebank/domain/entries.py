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

import attrs

from timebank.domain.errors import InvalidGroup
from timebank.domain.values import OPENING, POT, EntryKind

__all__ = ["GROUP_PARTICIPANTS_MAX", "Leg", "NewEntry", "RecordedEntry", "group_legs", "legs_for"]

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

    def differing_field(self, recorded: RecordedEntry) -> str | None:
        """The first field that differs from an already-recorded entry."""
        for name in ("bank", "kind", "provider", "receiver", "category", "reverses"):
            if getattr(self, name) != getattr(recorded, name):
                return name
        if self.participants != recorded.participants:
            return "participants"
        if self.kind is not EntryKind.REVERSAL and self.minutes != recorded.minutes:
            return "minutes"
        if self.occurred_on != recorded.occurred_on:
            return "occurred_on"
        return None


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

    @property
    def participants(self) -> tuple[Leg, ...]:
        """A group exchange's participants (its legs); empty for other kinds."""
        return self.legs if self.kind is EntryKind.GROUP_EXCHANGE else ()

    def minutes_for(self, account: str) -> int:
        """Net minutes this entry moved on one account (0 if not involved)."""
        return sum(m for a, m in self.legs if a == account)

    def counterparties(self, account: str) -> tuple[str, ...]:
        """The other accounts in this entry, seen from ``account``."""
        return tuple(a for a, _ in self.legs if a != account)
