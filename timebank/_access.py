"""Who may do what: the role checks of every command (docs/workflows.md).

An actor's role in a bank is the highest of: the role granted in the bank,
the roles granted in its parent banks, and ``member`` while they are an
active member of the bank. The bank's policy names the lowest role each
:class:`~timebank.domain.roles.Action` needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from timebank.domain import errors
from timebank.domain.bank import Awaiting, Bank
from timebank.domain.entries import Leg, NewEntry
from timebank.domain.roles import Action, Role, at_least, highest
from timebank.domain.values import EntryKind, parent_bank

__all__ = ["PROPOSABLE_KINDS", "Access", "Parties", "Proposal"]

#: What a proposal waits for: (awaiting, confirmer, needs_approval).
Proposal = tuple[Awaiting, str | None, bool]


class Parties(Protocol):
    """Who takes part in an entry, and where (a :class:`NewEntry` or a
    :class:`~timebank.domain.entries.RecordedEntry`)."""

    @property
    def entry_id(self) -> str: ...
    @property
    def bank(self) -> str: ...
    @property
    def provider(self) -> str | None: ...
    @property
    def receiver(self) -> str | None: ...
    @property
    def receiver_bank(self) -> str | None: ...
    @property
    def participants(self) -> tuple[Leg, ...]: ...


#: Kinds a member may propose.
PROPOSABLE_KINDS = (EntryKind.EXCHANGE, EntryKind.POT_EXCHANGE, EntryKind.GIFT, EntryKind.DONATION)


class Access:
    """Role checks over the banks ``bank_of`` loads (parents included)."""

    def __init__(self, bank_of: Callable[[str], Bank]) -> None:
        self._bank_of = bank_of

    def role(self, ledger: Bank, user: str) -> Role | None:
        roles = [ledger.role_of(user)]
        parent = parent_bank(ledger.bank_id)
        while parent is not None:
            roles.append(self._bank_of(parent).granted_role(user))
            parent = parent_bank(parent)
        return highest(*roles)

    def may(self, ledger: Bank, user: str, action: Action) -> bool:
        return at_least(self.role(ledger, user), ledger.policy.permissions.needed(action))

    def require(self, ledger: Bank, user: str, action: Action, what: str = "") -> None:
        """Raise NotPermitted unless ``user`` may take ``action`` in the bank."""
        if not self.may(ledger, user, action):
            self._refuse(ledger, user, action, what)

    def _refuse(self, ledger: Bank, user: str, action: Action, what: str = "") -> None:
        role = self.role(ledger, user)
        needed = ledger.policy.permissions.needed(action)
        raise errors.NotPermitted(
            f"{user!r} may not {what or action.value.replace('_', ' ')} in bank"
            f" {ledger.bank_id!r}: that needs the {needed} role, they have"
            f" {'no role' if role is None else f'the {role} role'}",
            actor=user,
            action=action.value,
            bank=ledger.bank_id,
            role=None if role is None else role.value,
        )

    def require_acting_for(self, ledger: Bank, actor: str, member: str) -> None:
        """``actor`` may act for ``member``: it is them, their guardian angel,
        or someone the policy lets act on behalf of members."""
        if actor == member or ledger.is_guardian(actor, member):
            return
        self.require(ledger, actor, Action.ACT_ON_BEHALF, f"act on behalf of {member!r}")

    def require_member_manager(self, ledgers: Sequence[Bank], actor: str, member: str) -> None:
        """For store-wide acts on a member (profile, erasure): ``actor`` manages
        members in one of the member's banks (any bank if they have none)."""
        if any(self.may(ledger, actor, Action.MANAGE_MEMBERS) for ledger in ledgers):
            return
        raise errors.NotPermitted(
            f"{actor!r} may not manage member {member!r}: that needs the manage_members"
            " permission in one of their banks",
            actor=actor,
            action=Action.MANAGE_MEMBERS.value,
            bank=None,
            role=None,
        )

    # --- entries -----------------------------------------------------------------------
    def require_on_behalf(
        self, ledgers: Sequence[Bank], new: Parties, actor: str, on_behalf_of: str | None
    ) -> None:
        """``on_behalf_of`` names a party of the entry ``new`` (one to record,
        pending, or reversed) that ``actor`` may act for."""
        if on_behalf_of is None:
            return
        ledger = _party_bank(ledgers, new, on_behalf_of)
        if ledger is None:
            raise errors.InvalidInput(
                f"on_behalf_of must name a party of entry {new.entry_id!r}: {on_behalf_of!r}",
                member=on_behalf_of,
            )
        self.require_acting_for(ledger, actor, on_behalf_of)

    def require_record(
        self, ledgers: Sequence[Bank], new: NewEntry, actor: str, on_behalf_of: str | None
    ) -> None:
        """An entry recorded to take effect at once: ``actor`` has ``record``
        in every bank of the entry, or gives their own credits (a gift or a
        donation, up to the approval threshold)."""
        self.require_on_behalf(ledgers, new, actor, on_behalf_of)
        if all(self.may(ledger, actor, Action.RECORD) for ledger in ledgers):
            return
        acting = on_behalf_of or actor
        home = ledgers[0]
        own_gift = new.kind in (EntryKind.GIFT, EntryKind.DONATION) and new.provider == acting
        if own_gift:  # the giver's own credits: judged as theirs to give
            self.require(home, acting, Action.RECORD_OWN, "give their own credits")
            threshold = home.policy.approval_threshold_minutes
            if threshold is not None and new.minutes > threshold:
                raise errors.ApprovalRequired(
                    f"{new.minutes} minutes is above the approval threshold of bank"
                    f" {home.bank_id!r} ({threshold}): propose it for a coordinator to approve",
                    actor=acting,
                    action=Action.RECORD.value,
                    bank=home.bank_id,
                    role=_value(self.role(home, acting)),
                )
            return
        refusing = next(ledger for ledger in ledgers if not self.may(ledger, actor, Action.RECORD))
        self._refuse(refusing, actor, Action.RECORD, "record entries for others")

    def proposal(
        self, ledgers: Sequence[Bank], new: NewEntry, actor: str, on_behalf_of: str | None
    ) -> Proposal:
        """Check that ``actor`` may propose ``new`` and say what it waits for."""
        if new.kind not in PROPOSABLE_KINDS:
            raise errors.InvalidInput(
                f"only {', '.join(k.value for k in PROPOSABLE_KINDS)} entries can be proposed",
                kind=new.kind.value,
            )
        self.require_on_behalf(ledgers, new, actor, on_behalf_of)
        acting = on_behalf_of or actor
        parties = [new.provider] if new.kind in (EntryKind.GIFT, EntryKind.DONATION) else []
        parties = parties or [new.provider, new.receiver]
        ledger = _party_bank(ledgers, new, acting)
        if acting not in parties or ledger is None:
            raise errors.NotPermitted(
                f"{acting!r} can only propose entries they take part in"
                f" ({'as the giver' if len(parties) == 1 else 'as provider or receiver'})",
                actor=acting,
                action=Action.RECORD_OWN.value,
                bank=new.bank,
                role=None,
            )
        self.require(ledger, acting, Action.RECORD_OWN, "propose entries")
        over = any(_over_threshold(other, new.minutes) for other in ledgers)
        if new.kind is EntryKind.EXCHANGE:
            other = new.receiver if acting == new.provider else new.provider
            return Awaiting.CONFIRMATION, other, over
        if new.kind is EntryKind.POT_EXCHANGE:
            other = new.receiver if acting == new.provider else new.provider
            return Awaiting.CONFIRMATION, other, True
        return Awaiting.APPROVAL, None, True

    def require_confirmer(
        self, ledgers: Sequence[Bank], pending: dict[str, Any], actor: str, on_behalf_of: str | None
    ) -> None:
        """Only the party a pending entry waits for (or someone acting for
        them) confirms it."""
        confirmer = pending["confirmer"]
        if confirmer is None:  # a gift, a donation: it awaits no one's confirmation
            raise errors.PendingStateConflict(
                f"entry {pending['entry_id']!r} awaits {pending['awaiting']}, not confirmation",
                awaiting=pending["awaiting"],
                bank=ledgers[0].bank_id,
                entry_id=pending["entry_id"],
            )
        acting = on_behalf_of or actor
        ledger = _party_bank(ledgers, _as_new(ledgers, pending), confirmer)
        if acting != confirmer or ledger is None:
            raise errors.NotPermitted(
                f"entry {pending['entry_id']!r} waits for the confirmation of {confirmer!r},"
                f" not of {acting!r}",
                actor=acting,
                action=Action.RECORD_OWN.value,
                bank=ledgers[0].bank_id,
                role=None,
            )
        if on_behalf_of is not None:
            self.require_acting_for(ledger, actor, on_behalf_of)

    def require_not_involved(self, ledger: Bank, pending: dict[str, Any], actor: str) -> None:
        """Four eyes: nobody approves an entry they take part in or proposed."""
        involved = {pending[k] for k in ("provider", "receiver", "actor", "on_behalf_of")}
        if actor in involved:
            raise errors.NotPermitted(
                f"{actor!r} may not approve entry {pending['entry_id']!r}: they take part"
                " in it or proposed it",
                actor=actor,
                action=Action.APPROVE.value,
                bank=ledger.bank_id,
                role=_value(self.role(ledger, actor)),
            )

    def require_decliner(
        self, ledgers: Sequence[Bank], pending: dict[str, Any], actor: str, on_behalf_of: str | None
    ) -> None:
        """The party it waits for, its proposer, or an approver may decline;
        in a member's name (``on_behalf_of``, a party of the entry that
        ``actor`` may act for), the decline is judged as that member's."""
        if on_behalf_of is not None:
            self.require_on_behalf(ledgers, _as_new(ledgers, pending), actor, on_behalf_of)
        acting = on_behalf_of or actor
        proposer = pending["on_behalf_of"] or pending["actor"]
        if acting in (pending["confirmer"], proposer):
            return
        for ledger in ledgers:
            self.require(ledger, acting, Action.APPROVE, "decline others' entries")


def _as_new(ledgers: Sequence[Bank], pending: dict[str, Any]) -> NewEntry:
    return ledgers[0].proposed_entry(pending["entry_id"])


def _party_bank(ledgers: Sequence[Bank], new: Parties, member: str) -> Bank | None:
    """The bank in which ``member`` is a party of ``new`` (None if not a party)."""
    by_id = {ledger.bank_id: ledger for ledger in ledgers}
    if any(member == m for m, _ in new.participants):
        return by_id[new.bank]
    if member == new.provider:
        return by_id[new.bank]
    if member == new.receiver:
        return by_id[new.receiver_bank or new.bank]
    return None


def _over_threshold(ledger: Bank, minutes: int) -> bool:
    threshold = ledger.policy.approval_threshold_minutes
    return threshold is not None and minutes > threshold


def _value(role: Role | None) -> str | None:
    return None if role is None else role.value
