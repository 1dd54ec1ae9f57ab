"""The ledger of one time bank: the consistency boundary of every entry.

A :class:`Bank` holds what it needs to enforce its rules: its policy, its
members (kind and join date) and the balance of every account. Every entry is
one event on it, so writes to one bank are serialised by the event store's
optimistic concurrency and different banks write in parallel.

Events carry ids, codes, dates and whole minutes only: never a name, an email
or free text. Display names live in the erasable profile store.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from timebank.domain import errors
from timebank.domain.entries import Leg, NewEntry, RecordedEntry, legs_for
from timebank.domain.policy import LeaveRule, LimitMode, Policy
from timebank.domain.recording import RecordedAggregate
from timebank.domain.roles import Role, highest
from timebank.domain.values import (
    CLEARING_PREFIX,
    OPENING,
    POT,
    AccountKind,
    EntryKind,
    invariant,
    parent_bank,
)

__all__ = [
    "MEMBER_KINDS",
    "PENDING_DAYS",
    "PENDING_FIELDS",
    "Awaiting",
    "Bank",
    "MemberStatus",
    "bank_uuid",
    "recorded_entry",
]

_NAMESPACE = uuid5(NAMESPACE_URL, "https://timebank.invalid/ids")
MEMBER_KINDS = frozenset({AccountKind.INDIVIDUAL.value, AccountKind.ORGANISATION.value})
#: What a bank keeps of a pending entry (``Bank.pending``): the fields of its
#: ``EntryProposed``, the days among them, and who confirmed it.
PENDING_DAYS = ("occurred_on", "proposed_on", "expires_on")
PENDING_FIELDS = frozenset({
    "entry_id", "kind", "provider", "receiver", "receiver_bank", "minutes", "category",
    "actor", "on_behalf_of", "awaiting", "confirmer", "needs_approval", *PENDING_DAYS,
    "confirmed_by",
})  # fmt: skip


class MemberStatus(StrEnum):
    """Where a member is in the lifecycle (see docs/membership.md)."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    LEFT = "left"


class Awaiting(StrEnum):
    """What a pending entry waits for (see docs/workflows.md)."""

    CONFIRMATION = "confirmation"  #: the other party's confirmation
    APPROVAL = "approval"  #: a coordinator's approval


@lru_cache(maxsize=4096)  # asked on every read of a bank: uuid5 took 11 µs, this 0.2 µs
def bank_uuid(bank_id: str) -> UUID:
    """The event-stream id of a bank: derived from its path, so it is stable."""
    return uuid5(_NAMESPACE, f"bank:{bank_id}")


class Bank(RecordedAggregate):
    """A time bank's ledger: members, accounts, balances and entries."""

    #: The version of the state a bank holds. A release that changes it (an
    #: attribute added, removed or given another meaning) raises this number:
    #: snapshots of another number are then never loaded, and each bank is
    #: replayed from its events instead (tests/test_snapshots.py records the
    #: shape of this version's state and fails when it moves).
    STATE_VERSION: ClassVar[int] = 1

    @staticmethod
    def create_id(bank_id: str) -> UUID:
        return bank_uuid(bank_id)

    @event("Opened")
    def __init__(
        self,
        bank_id: str,
        name: str,
        policy: Policy,
        opened_on: date,
        actor: str,
    ) -> None:
        self.bank_id = bank_id
        self.name = name
        self.policy = policy
        self.opened_on = opened_on
        self.kinds: dict[str, str] = {POT: AccountKind.POT.value, OPENING: AccountKind.SYSTEM.value}
        self.joined_on: dict[str, date] = {}
        self.balances: dict[str, int] = {POT: 0, OPENING: 0}
        self.entries_count = 0
        #: Members' states (see MemberStatus), membership periods
        #: ``[start, end or None]`` and the latest date of any of their entries.
        self.status: dict[str, str] = {}
        self.periods: dict[str, list[list[date | None]]] = {}
        self.last_occurred_on: dict[str, date] = {}
        #: Roles granted in this bank (user -> role); its creator is an admin.
        self.roles: dict[str, str] = {actor: Role.ADMIN.value}
        #: Guardian angels appointed for members (member -> guardians).
        self.guardians: dict[str, list[str]] = {}
        #: Entries proposed and not yet settled, by id: the fields of
        #: EntryProposed, with ``awaiting`` updated on confirmation.
        self.pending: dict[str, dict[str, Any]] = {}

    # --- events -----------------------------------------------------------------
    class EntryEvent(Aggregate.Event):
        """Base of every entry event: the fields all entries share."""

        KIND: ClassVar[EntryKind]
        entry_id: str
        occurred_on: date
        minutes: int
        category: str | None
        actor: str
        #: The member the actor acted for (a guardian angel or coordinator
        #: recording for someone), or None.
        on_behalf_of: str | None
        flags: list[str]

        @property
        def entry_kind(self) -> EntryKind:
            return self.KIND

        def legs(self) -> list[Leg]:
            raise NotImplementedError

        def parties(self) -> list[str]:
            """The accounts this entry involves, beyond its legs."""
            return []

        def parties_on(self, bank_id: str) -> list[str]:  # noqa: ARG002 - overridden
            """The parties on the bank ``bank_id`` (all of them, but for an
            inter-bank entry)."""
            return self.parties()

        def apply(self, aggregate: Any) -> None:
            aggregate._post(self.legs(), self.parties_on(aggregate.bank_id), self.occurred_on)

    class _PartiesEvent(EntryEvent):
        provider: str
        receiver: str | None

        def legs(self) -> list[Leg]:
            return legs_for(self.entry_kind, self.provider, self.receiver, self.minutes)

        def parties(self) -> list[str]:
            return [p for p in (self.provider, self.receiver) if p is not None]

    class ExchangeRecorded(_PartiesEvent):
        """``provider`` helped ``receiver`` for ``minutes``."""

        KIND = EntryKind.EXCHANGE

    class PotExchangeRecorded(_PartiesEvent):
        """``provider`` helped ``receiver``; the bank's pot paid."""

        KIND = EntryKind.POT_EXCHANGE

    class DonationMade(_PartiesEvent):
        """``provider`` gave ``minutes`` of credit to the bank's pot."""

        KIND = EntryKind.DONATION

    class GiftGiven(_PartiesEvent):
        """``provider`` gave ``minutes`` of credit to ``receiver``."""

        KIND = EntryKind.GIFT

    class OpeningBalanceCarried(_PartiesEvent):
        """``provider``'s balance carried over from an older system (signed)."""

        KIND = EntryKind.OPENING_BALANCE

    class GroupExchangeRecorded(EntryEvent):
        """Several providers helped several receivers at once (a class, a street
        event); ``participants`` are ``[member, minutes]``, providers positive.
        ``minutes`` is the total the providers gave."""

        KIND = EntryKind.GROUP_EXCHANGE
        participants: list[list[Any]]

        def legs(self) -> list[Leg]:
            return [(str(member), int(minutes)) for member, minutes in self.participants]

    class InterBankEntryRecorded(EntryEvent):
        """This bank's side of an entry between two banks of a tree: the same
        ``entry_id`` is recorded on both, in one transaction. ``kind`` is the
        entry's kind; ``side_legs`` its legs here, the clearing account with
        the other bank included."""

        kind: str
        provider: str
        provider_bank: str
        receiver: str | None
        receiver_bank: str
        side_legs: list[list[Any]]

        @property
        def entry_kind(self) -> EntryKind:
            return EntryKind(self.kind)

        def legs(self) -> list[Leg]:
            return [(str(account), int(minutes)) for account, minutes in self.side_legs]

        def parties_on(self, bank_id: str) -> list[str]:
            sides = ((self.provider, self.provider_bank), (self.receiver, self.receiver_bank))
            return [party for party, bank in sides if party is not None and bank == bank_id]

        def apply(self, aggregate: Any) -> None:
            aggregate._open_clearing_accounts(self.legs())
            super().apply(aggregate)

    class EntryReversed(EntryEvent):
        """Entry ``reverses`` was undone; ``reversed_legs`` are its legs negated."""

        KIND = EntryKind.REVERSAL
        reverses: str
        reversed_legs: list[list[Any]]

        def legs(self) -> list[Leg]:
            return [(str(account), int(minutes)) for account, minutes in self.reversed_legs]

    # --- queries -------------------------------------------------------------------
    def is_member(self, member_id: str) -> bool:
        return self.kinds.get(member_id) in MEMBER_KINDS

    def members(self) -> list[str]:
        return [m for m in self.kinds if self.is_member(m)]

    def balance(self, account: str) -> int:
        if not isinstance(account, str) or account not in self.balances:
            raise errors.MemberNotFound(
                f"no account {account!r} in bank {self.bank_id!r}",
                bank=self.bank_id,
                member=account,
            )
        return self.balances[account]

    def check_invariants(self) -> None:
        """Every account sums to zero; the pot never below zero. O(accounts)."""
        invariant(sum(self.balances.values()) == 0, f"{self.bank_id}: balances sum to zero")
        invariant(self.balances[POT] >= 0, f"{self.bank_id}: pot is not below zero")
        invariant(set(self.balances) == set(self.kinds), "every account has a kind")
        invariant(
            any(r == Role.ADMIN for r in self.roles.values())
            or parent_bank(self.bank_id) is not None,
            f"{self.bank_id}: a root bank has an admin",
        )

    def clearing_balances(self) -> dict[str, int]:
        """Balances of this bank's clearing accounts, by the other bank's id."""
        return {
            account.removeprefix(CLEARING_PREFIX): minutes
            for account, minutes in self.balances.items()
            if account.startswith(CLEARING_PREFIX)
        }

    # --- roles and guardians (docs/workflows.md) ---------------------------------------
    def granted_role(self, user: str) -> Role | None:
        """The role granted to ``user`` in this bank itself, if any."""
        role = self.roles.get(user)
        return None if role is None else Role(role)

    def role_of(self, user: str) -> Role | None:
        """``user``'s role here: granted, or ``member`` while an active member.
        (Roles granted in parent banks are added by the caller.)"""
        active = self.is_member(user) and self.status[user] == MemberStatus.ACTIVE
        return highest(self.granted_role(user), Role.MEMBER if active else None)

    def is_guardian(self, guardian: str, member: str) -> bool:
        return guardian in self.guardians.get(member, [])

    def grant_role(self, user: str, role: Role, actor: str) -> None:
        if role is Role.MEMBER:
            raise errors.InvalidInput(
                "the member role comes with joining the bank; grant coordinator or admin",
                role=role,
            )
        if self.roles.get(user) == role:
            return
        if self.roles.get(user) == Role.ADMIN:
            self._check_not_last_admin(user)
        self._role_granted(user, role.value, actor)

    @event("RoleGranted")
    def _role_granted(self, user: str, role: str, actor: str) -> None:  # noqa: ARG002 - audit
        self.roles[user] = role

    def revoke_role(self, user: str, actor: str) -> None:
        if user not in self.roles:
            raise errors.RoleNotFound(
                f"{user!r} has no role in bank {self.bank_id!r}", bank=self.bank_id, user=user
            )
        if self.roles[user] == Role.ADMIN:
            self._check_not_last_admin(user)
        self._role_revoked(user, actor)

    @event("RoleRevoked")
    def _role_revoked(self, user: str, actor: str) -> None:  # noqa: ARG002 - audit trail
        del self.roles[user]

    def _check_not_last_admin(self, user: str) -> None:
        admins = [u for u, r in self.roles.items() if r == Role.ADMIN]
        if parent_bank(self.bank_id) is None and admins == [user]:
            raise errors.LastAdmin(
                f"{user!r} is the last admin of bank {self.bank_id!r}; grant another first",
                bank=self.bank_id,
                user=user,
            )

    def appoint_guardian(self, member_id: str, guardian: str, actor: str) -> None:
        self._check_member(member_id)
        if guardian == member_id:
            raise errors.InvalidInput(f"{member_id!r} cannot be their own guardian")
        if not self.is_guardian(guardian, member_id):
            self._guardian_appointed(member_id, guardian, actor)

    @event("GuardianAppointed")
    def _guardian_appointed(self, member_id: str, guardian: str, actor: str) -> None:  # noqa: ARG002
        self.guardians.setdefault(member_id, []).append(guardian)

    def remove_guardian(self, member_id: str, guardian: str, actor: str) -> None:
        if not self.is_guardian(guardian, member_id):
            raise errors.RoleNotFound(
                f"{guardian!r} is not a guardian of {member_id!r} in bank {self.bank_id!r}",
                bank=self.bank_id,
                user=guardian,
                member=member_id,
            )
        self._guardian_removed(member_id, guardian, actor)

    @event("GuardianRemoved")
    def _guardian_removed(self, member_id: str, guardian: str, actor: str) -> None:  # noqa: ARG002
        self.guardians[member_id].remove(guardian)
        if not self.guardians[member_id]:
            del self.guardians[member_id]

    # --- commands --------------------------------------------------------------------
    def change_policy(self, policy: Policy, actor: str) -> None:
        if policy != self.policy:
            self._policy_changed(policy, actor)

    @event("PolicyChanged")
    def _policy_changed(self, policy: Policy, actor: str) -> None:  # noqa: ARG002 - audit trail
        self.policy = policy

    def join(
        self, member_id: str, kind: AccountKind, joined_on: date, actor: str, today: date
    ) -> None:
        if member_id in self.kinds:
            raise errors.MemberAlreadyJoined(
                f"member {member_id!r} has already joined bank {self.bank_id!r}",
                bank=self.bank_id,
                member=member_id,
            )
        if kind not in MEMBER_KINDS:
            raise errors.InvalidInput(
                f"member kind must be individual or organisation: {kind!r}", kind=kind
            )
        self._check_not_future(joined_on, today, member_id)
        if joined_on < self.opened_on:
            raise errors.BeforeBankOpened(
                f"member {member_id!r} cannot join on {joined_on}: bank"
                f" {self.bank_id!r} opened on {self.opened_on}",
                bank=self.bank_id,
                member=member_id,
            )
        self._member_joined(member_id, str(kind), joined_on, actor)

    @event("MemberJoined")
    def _member_joined(
        self,
        member_id: str,
        kind: str,
        joined_on: date,
        actor: str,  # noqa: ARG002 - kept in the event for the audit trail
    ) -> None:
        self.kinds[member_id] = kind
        self.joined_on[member_id] = joined_on
        self.balances[member_id] = 0
        self.status[member_id] = MemberStatus.ACTIVE.value
        self.periods[member_id] = [[joined_on, None]]

    # --- membership lifecycle (docs/membership.md) ----------------------------------
    def _check_status(self, member: str, allowed: set[MemberStatus], command: str) -> None:
        self._check_member(member)
        if self.status[member] not in allowed:
            raise errors.MemberStatusConflict(
                f"cannot {command} member {member!r} of bank {self.bank_id!r}:"
                f" they are {self.status[member]}",
                bank=self.bank_id,
                member=member,
                status=self.status[member],
            )

    def suspend(self, member_id: str, actor: str) -> None:
        self._check_status(member_id, {MemberStatus.ACTIVE}, "suspend")
        self._member_suspended(member_id, actor)

    @event("MemberSuspended")
    def _member_suspended(self, member_id: str, actor: str) -> None:  # noqa: ARG002 - audit
        self.status[member_id] = MemberStatus.SUSPENDED.value

    def reinstate(self, member_id: str, actor: str) -> None:
        self._check_status(member_id, {MemberStatus.SUSPENDED}, "reinstate")
        self._member_reinstated(member_id, actor)

    @event("MemberReinstated")
    def _member_reinstated(self, member_id: str, actor: str) -> None:  # noqa: ARG002 - audit
        self.status[member_id] = MemberStatus.ACTIVE.value

    def leave(
        self, member_id: str, left_on: date, actor: str, today: date, donation_id: str
    ) -> None:
        """The member leaves; by policy a positive balance is donated to the pot
        (entry ``donation_id``, in the same save) or frozen."""
        self._check_status(member_id, {MemberStatus.ACTIVE, MemberStatus.SUSPENDED}, "leave")
        self._check_not_future(left_on, today, member_id)
        started = self.periods[member_id][-1][0]
        ids = {"bank": self.bank_id, "member": member_id}
        if started is not None and left_on < started:
            raise errors.OccurredBeforeJoining(
                f"{member_id!r} cannot leave on {left_on}, before joining on {started}", **ids
            )
        latest = self.last_occurred_on.get(member_id)
        if latest is not None and latest > left_on:
            raise errors.LeaveBeforeLastEntry(
                f"{member_id!r} has an entry on {latest}, after {left_on}",
                last_occurred_on=latest,
                **ids,
            )
        balance = self.balances[member_id]
        donated = self.policy.on_leave is LeaveRule.DONATE and balance > 0
        if donated:
            legs = legs_for(EntryKind.DONATION, member_id, None, balance)
            flags = self._check_limits(donation_id, legs)
            self.trigger_event(
                self.DonationMade, entry_id=donation_id, occurred_on=left_on, minutes=balance,
                category=None, actor=actor, on_behalf_of=None, flags=flags, provider=member_id,
                receiver=None,
            )  # fmt: skip
        self._member_left(member_id, left_on, actor, donation_id if donated else None)

    @event("MemberLeft")
    def _member_left(
        self,
        member_id: str,
        left_on: date,
        actor: str,  # noqa: ARG002 - kept in the event for the audit trail
        donation_id: str | None,  # noqa: ARG002 - links the leaving to its donation
    ) -> None:
        self.status[member_id] = MemberStatus.LEFT.value
        self.periods[member_id][-1][1] = left_on

    def rejoin(self, member_id: str, rejoined_on: date, actor: str, today: date) -> None:
        self._check_status(member_id, {MemberStatus.LEFT}, "rejoin")
        self._check_not_future(rejoined_on, today, member_id)
        left_on = self.periods[member_id][-1][1]
        if left_on is not None and rejoined_on <= left_on:
            raise errors.OccurredBeforeJoining(
                f"{member_id!r} cannot rejoin on {rejoined_on}: they left on {left_on}",
                bank=self.bank_id,
                member=member_id,
            )
        self._member_rejoined(member_id, rejoined_on, actor)

    @event("MemberRejoined")
    def _member_rejoined(self, member_id: str, rejoined_on: date, actor: str) -> None:  # noqa: ARG002
        self.status[member_id] = MemberStatus.ACTIVE.value
        self.periods[member_id].append([rejoined_on, None])

    # --- entries ----------------------------------------------------------------------------
    def check_entry(self, new: NewEntry, today: date, *, historic: bool = False) -> None:
        """Every rule of an entry (of any kind but group and reversal) on this
        bank's side, except balance limits: those are checked when it takes
        effect. Raises a named error. A ``historic`` entry (an import) needs
        its members to have been members on its day, not active today."""
        invariant(self.bank_id in new.banks, "entry is checked on its own bank")
        invariant(
            new.kind is not EntryKind.DONATION or new.receiver is None,
            "a donation names no receiver (the pot is its bank's)",
        )
        parties = self._own_parties(new)
        for member in parties:
            self._check_member(member)
            if not historic:
                self._check_active(member)
        # the same member in two banks is still one person; two pots are not
        if new.provider == new.receiver and (new.provider != POT or new.receiver_bank is None):
            raise errors.SelfExchange(
                f"provider and receiver are both {new.provider!r}",
                bank=self.bank_id,
                entry_id=new.entry_id,
                member=new.provider,
            )
        self._check_amount(new)
        self._check_dates(new, today, parties)

    def _own_parties(self, new: NewEntry) -> list[str]:
        """The entry's member parties that belong to this bank (pots excluded)."""
        receiver_bank = new.receiver_bank or new.bank
        sides = ((new.provider, new.bank), (new.receiver, receiver_bank))
        return [m for m, bank in sides if m not in (None, POT) and bank == self.bank_id]

    def record(
        self,
        new: NewEntry,
        actor: str,
        today: date,
        on_behalf_of: str | None = None,
        *,
        historic: bool = False,
        flag_limits: bool = False,
    ) -> None:
        """Record an entry within this bank, of any kind but group and
        reversal, or raise a named error. ``historic``: see
        :meth:`check_entry`; ``flag_limits``: a balance limit breached is
        flagged, whatever the policy's limit mode (historic data)."""
        invariant(new.bank == self.bank_id and new.receiver_bank is None, "a same-bank entry")
        self.check_entry(new, today, historic=historic)
        legs = legs_for(new.kind, new.provider, new.receiver, new.minutes)
        flags = self._check_limits(new.entry_id, legs, flag_limits)
        self._trigger_entry(
            _EVENT_FOR_KIND[new.kind], new, actor, on_behalf_of, flags,
            provider=new.provider, receiver=new.receiver,
        )  # fmt: skip

    def record_side(
        self,
        new: NewEntry,
        legs: list[Leg],
        actor: str,
        today: date,
        on_behalf_of: str | None = None,
        *,
        historic: bool = False,
        flag_limits: bool = False,
    ) -> None:
        """Record this bank's side (``legs``, from ``inter_bank_legs``) of an
        entry between two banks, or raise a named error. The caller saves
        both sides in one transaction. ``historic``, ``flag_limits``: see
        :meth:`record`."""
        invariant(new.receiver_bank is not None, "an inter-bank entry")
        invariant(sum(m for _, m in legs) == 0, "each side balances")
        self.check_entry(new, today, historic=historic)
        flags = self._check_limits(new.entry_id, legs, flag_limits)
        self._trigger_entry(
            self.InterBankEntryRecorded,
            new,
            actor,
            on_behalf_of,
            flags,
            kind=new.kind.value,
            provider=new.provider,
            provider_bank=new.bank,
            receiver=new.receiver,
            receiver_bank=new.receiver_bank,
            side_legs=[[account, minutes] for account, minutes in legs],
        )

    # --- pending entries (docs/workflows.md) -------------------------------------------
    def propose(
        self,
        new: NewEntry,
        actor: str,
        on_behalf_of: str | None,
        awaiting: Awaiting,
        confirmer: str | None,
        needs_approval: bool,
        today: date,
    ) -> None:
        """Record a proposed entry that moves no balance until it is confirmed
        (by ``confirmer``) and/or approved. Every rule but balance limits is
        checked now (and again when it takes effect)."""
        invariant(new.bank == self.bank_id, "a proposal is kept on the provider's bank")
        invariant((awaiting is Awaiting.CONFIRMATION) == (confirmer is not None), "confirmer")
        self.check_entry(new, today)
        if new.entry_id in self.pending:
            raise errors.EntryConflict(
                f"entry {new.entry_id!r} is already pending",
                entry_id=new.entry_id,
                field="entry_id",
            )
        self._entry_proposed(
            entry_id=new.entry_id, kind=new.kind.value, provider=new.provider,
            receiver=new.receiver, receiver_bank=new.receiver_bank, minutes=new.minutes,
            occurred_on=new.occurred_on, category=new.category, actor=actor,
            on_behalf_of=on_behalf_of, awaiting=awaiting.value, confirmer=confirmer,
            needs_approval=needs_approval, proposed_on=today,
            expires_on=today + timedelta(days=self.policy.pending_expiry_days),
        )  # fmt: skip

    @event("EntryProposed")
    def _entry_proposed(
        self,
        entry_id: str,
        kind: str,
        provider: str | None,
        receiver: str | None,
        receiver_bank: str | None,
        minutes: int,
        occurred_on: date,
        category: str | None,
        actor: str,
        on_behalf_of: str | None,
        awaiting: str,
        confirmer: str | None,
        needs_approval: bool,
        proposed_on: date,
        expires_on: date,
    ) -> None:
        self.pending[entry_id] = {
            "entry_id": entry_id, "kind": kind, "provider": provider, "receiver": receiver,
            "receiver_bank": receiver_bank, "minutes": minutes, "occurred_on": occurred_on,
            "category": category, "actor": actor, "on_behalf_of": on_behalf_of,
            "awaiting": awaiting, "confirmer": confirmer, "needs_approval": needs_approval,
            "proposed_on": proposed_on, "expires_on": expires_on, "confirmed_by": None,
        }  # fmt: skip

    def pending_entry(self, entry_id: str) -> dict[str, Any]:
        """A pending entry's fields, or raise PendingEntryNotFound."""
        found = self.pending.get(entry_id)
        if found is None:
            raise errors.PendingEntryNotFound(
                f"no pending entry {entry_id!r} in bank {self.bank_id!r}",
                bank=self.bank_id,
                entry_id=entry_id,
            )
        return found

    def proposed_entry(self, entry_id: str) -> NewEntry:
        """The entry a pending entry will record when it takes effect."""
        return self.proposed_entry_from(self.pending_entry(entry_id))

    def proposed_entry_from(self, found: dict[str, Any]) -> NewEntry:
        """The entry of a pending entry's fields (read before it was settled)."""
        entry_id = found["entry_id"]
        return NewEntry(
            entry_id=entry_id,
            bank=self.bank_id,
            kind=EntryKind(found["kind"]),
            minutes=found["minutes"],
            occurred_on=found["occurred_on"],
            provider=found["provider"],
            receiver=found["receiver"],
            category=found["category"],
            receiver_bank=found["receiver_bank"],
        )

    def _check_awaiting(self, entry_id: str, awaiting: Awaiting, today: date) -> dict[str, Any]:
        found = self.pending_entry(entry_id)
        ids = {"bank": self.bank_id, "entry_id": entry_id}
        if found["awaiting"] != awaiting:
            raise errors.PendingStateConflict(
                f"entry {entry_id!r} awaits {found['awaiting']}, not {awaiting}",
                awaiting=found["awaiting"],
                **ids,
            )
        if today > found["expires_on"]:
            raise errors.EntryExpired(
                f"pending entry {entry_id!r} expired after {found['expires_on']}",
                expires_on=found["expires_on"],
                **ids,
            )
        return found

    def confirm(self, entry_id: str, actor: str, on_behalf_of: str | None, today: date) -> bool:
        """The other party confirms; returns whether the entry now takes
        effect (the caller records it in the same save) or awaits approval."""
        found = self._check_awaiting(entry_id, Awaiting.CONFIRMATION, today)
        takes_effect = not found["needs_approval"]
        self._entry_confirmed(entry_id, actor, on_behalf_of, takes_effect)
        return takes_effect

    @event("EntryConfirmed")
    def _entry_confirmed(
        self,
        entry_id: str,
        actor: str,
        on_behalf_of: str | None,  # noqa: ARG002 - audit trail
        takes_effect: bool,
    ) -> None:
        if takes_effect:
            del self.pending[entry_id]
        else:
            self.pending[entry_id]["awaiting"] = Awaiting.APPROVAL.value
            self.pending[entry_id]["confirmed_by"] = actor

    def approve(self, entry_id: str, actor: str, today: date) -> None:
        """A coordinator approves; the caller records the entry in the same save."""
        self._check_awaiting(entry_id, Awaiting.APPROVAL, today)
        self._entry_approved(entry_id, actor)

    @event("EntryApproved")
    def _entry_approved(self, entry_id: str, actor: str) -> None:  # noqa: ARG002 - audit trail
        del self.pending[entry_id]

    def decline(self, entry_id: str, actor: str, on_behalf_of: str | None) -> None:
        """The entry will never take effect (declined, withdrawn or refused)."""
        self.pending_entry(entry_id)
        self._entry_declined(entry_id, actor, on_behalf_of)

    @event("EntryDeclined")
    def _entry_declined(self, entry_id: str, actor: str, on_behalf_of: str | None) -> None:  # noqa: ARG002
        del self.pending[entry_id]

    def expire_pending(self, actor: str, today: date) -> list[str]:
        """Record the expiry of every pending entry past its ``expires_on``."""
        expired = [e for e, found in self.pending.items() if today > found["expires_on"]]
        for entry_id in expired:
            self._pending_entry_expired(entry_id, actor)
        return expired

    @event("PendingEntryExpired")
    def _pending_entry_expired(self, entry_id: str, actor: str) -> None:  # noqa: ARG002 - audit
        del self.pending[entry_id]

    def record_group(
        self,
        new: NewEntry,
        actor: str,
        today: date,
        on_behalf_of: str | None = None,
        *,
        historic: bool = False,
        flag_limits: bool = False,
    ) -> None:
        """Record a group exchange (all of it or none), or raise a named error.
        ``historic``, ``flag_limits``: see :meth:`record`."""
        invariant(new.kind is EntryKind.GROUP_EXCHANGE, "a group exchange")
        invariant(sum(m for _, m in new.participants) == 0, "a group balances")
        members = [member for member, _ in new.participants]
        for member in members:
            self._check_member(member)
            if not historic:
                self._check_active(member)
        largest = max(abs(m) for _, m in new.participants)
        if largest > self.policy.entry_minutes_max:
            raise errors.EntryTooLarge(
                f"a share of {largest} minutes is more than bank {self.bank_id!r} allows"
                f" for one participant ({self.policy.entry_minutes_max} minutes)",
                bank=self.bank_id,
                entry_id=new.entry_id,
                limit_minutes=self.policy.entry_minutes_max,
            )
        self._check_dates(new, today, members)
        legs = list(new.participants)
        flags = self._check_limits(new.entry_id, legs, flag_limits)
        self._trigger_entry(
            self.GroupExchangeRecorded, new, actor, on_behalf_of, flags,
            participants=[[member, minutes] for member, minutes in legs],
        )  # fmt: skip

    def reverse(
        self,
        new: NewEntry,
        original: RecordedEntry,
        actor: str,
        today: date,
        on_behalf_of: str | None = None,
        *,
        flag_limits: bool = False,
    ) -> None:
        """Record a reversal of ``original``, or raise a named error.
        ``flag_limits``: see :meth:`record`."""
        invariant(new.bank == self.bank_id == original.bank, "reversal on its own bank")
        invariant(new.reverses == original.entry_id, "reversal names its entry")
        ids = {"bank": self.bank_id, "entry_id": new.entry_id, "reverses": original.entry_id}
        if original.kind is EntryKind.REVERSAL:
            raise errors.CannotReverseReversal(
                f"entry {original.entry_id!r} is itself a reversal; record the"
                " original entry again instead",
                **ids,
            )
        if original.reversed_by is not None:
            raise errors.AlreadyReversed(
                f"entry {original.entry_id!r} was already reversed by {original.reversed_by!r}",
                reversed_by=original.reversed_by,
                **ids,
            )
        self._check_not_future(new.occurred_on, today, new.entry_id)
        if new.occurred_on < original.occurred_on:
            raise errors.ReversalBeforeEntry(
                f"reversal dated {new.occurred_on} is before entry"
                f" {original.entry_id!r} ({original.occurred_on})",
                **ids,
            )
        legs = [(account, -minutes) for account, minutes in original.legs]
        flags = self._check_limits(new.entry_id, legs, flag_limits)
        self._trigger_entry(
            self.EntryReversed, new, actor, on_behalf_of, flags,
            minutes=original.minutes, category=original.category,
            reverses=original.entry_id, reversed_legs=[[a, m] for a, m in legs],
        )  # fmt: skip

    def _trigger_entry(
        self,
        event_class: type[Bank.EntryEvent],
        new: NewEntry,
        actor: str,
        on_behalf_of: str | None,
        flags: list[str],
        **fields: Any,
    ) -> None:
        """Trigger an entry event: the fields every entry has, from ``new``,
        then its kind's own ``fields`` (which may override them)."""
        common = {
            "entry_id": new.entry_id, "occurred_on": new.occurred_on, "minutes": new.minutes,
            "category": new.category, "actor": actor, "on_behalf_of": on_behalf_of,
            "flags": flags,
        }  # fmt: skip
        self.trigger_event(event_class, **{**common, **fields})

    # --- rules ----------------------------------------------------------------------------
    def _check_member(self, member: str) -> None:
        if not self.is_member(member):
            raise errors.MemberNotFound(
                f"{member!r} is not a member of bank {self.bank_id!r}",
                bank=self.bank_id,
                member=member,
            )

    def _check_active(self, member: str) -> None:
        if self.status[member] != MemberStatus.ACTIVE:
            raise errors.MemberNotActive(
                f"member {member!r} of bank {self.bank_id!r} is {self.status[member]}:"
                " no new entries",
                bank=self.bank_id,
                member=member,
                status=self.status[member],
            )

    def in_membership(self, member: str, day: date) -> bool:
        """Whether ``day`` falls inside one of the member's membership periods."""
        for start, end in self.periods[member]:
            if start is not None and start <= day and (end is None or day <= end):
                return True
        return False

    def _check_amount(self, new: NewEntry) -> None:
        if new.kind is EntryKind.OPENING_BALANCE:
            limit = self.policy.opening_balance_minutes_max
            too_large = abs(new.minutes) > limit
        else:
            limit = self.policy.entry_minutes_max
            too_large = new.minutes > limit
            invariant(new.minutes > 0, "entry amounts are positive")
        if too_large:
            raise errors.EntryTooLarge(
                f"{new.minutes} minutes is more than bank {self.bank_id!r} allows"
                f" for one {new.kind} ({limit} minutes)",
                bank=self.bank_id,
                entry_id=new.entry_id,
                limit_minutes=limit,
            )

    def _check_dates(self, new: NewEntry, today: date, parties: list[str]) -> None:
        self._check_not_future(new.occurred_on, today, new.entry_id)
        for member in parties:
            if not self.in_membership(member, new.occurred_on):
                raise errors.OccurredBeforeJoining(
                    f"entry {new.entry_id!r} on {new.occurred_on} is outside the membership"
                    f" of {member!r} ({self._membership_text(member)})",
                    bank=self.bank_id,
                    entry_id=new.entry_id,
                    member=member,
                )

    def _membership_text(self, member: str) -> str:
        """A member's periods, for a message: ``a member from 2026-01-01 to
        2026-03-01, and from 2026-04-01``."""
        spans = [
            f"from {start}" + ("" if end is None else f" to {end}")
            for start, end in self.periods[member]
        ]
        return "a member " + ", and ".join(spans)

    def _check_not_future(self, day: date, today: date, subject: str) -> None:
        if day > today:
            raise errors.OccurredInFuture(
                f"{subject!r}: {day} is in the future (today is {today} in {self.policy.timezone})",
                bank=self.bank_id,
                subject=subject,
            )

    def _check_limits(self, entry_id: str, legs: list[Leg], flag_only: bool = False) -> list[str]:
        """Refuse or flag limit breaches (``flag_only``: flag, whatever the
        policy's mode); return the flags to record. A pot is never overdrawn."""
        changes: dict[str, int] = {}
        for account, minutes in legs:
            changes[account] = changes.get(account, 0) + minutes
        flags: list[str] = []
        for account, change in changes.items():
            known = self.kinds.get(account)
            if known is None:
                invariant(account.startswith(CLEARING_PREFIX), "known account")
                known = AccountKind.CLEARING
            kind = _KINDS[known]
            limits = self.policy.limits_for(kind)
            balance = self.balances.get(account, 0)
            breached = None if limits is None else limits.breach(balance, change)
            if breached is None:
                continue
            ids = {"bank": self.bank_id, "entry_id": entry_id, "account": account}
            if kind is AccountKind.POT and breached == 0:
                raise errors.PotOverdrawn(
                    f"the pot of bank {self.bank_id!r} holds {balance} minutes;"
                    f" entry {entry_id!r} needs {-change}",
                    balance_minutes=balance,
                    **ids,
                )
            if self.policy.limit_mode is LimitMode.REFUSE and not flag_only:
                raise errors.BalanceLimitExceeded(
                    f"entry {entry_id!r} would take {account!r} from {balance} to"
                    f" {balance + change} minutes, past its limit of {breached}",
                    balance_minutes=balance,
                    limit_minutes=breached,
                    **ids,
                )
            flags.append(f"limit:{account}:{breached}")
        return flags

    def _open_clearing_accounts(self, legs: list[Leg]) -> None:
        """A clearing account opens with the first entry with its bank."""
        for account, _ in legs:
            if account.startswith(CLEARING_PREFIX) and account not in self.balances:
                self.kinds[account] = AccountKind.CLEARING.value
                self.balances[account] = 0

    def _post(self, legs: list[Leg], parties: list[str], occurred_on: date) -> None:
        """Apply an entry's legs (on recording and on replay)."""
        # (on every entry and every replayed one: the checks' messages are
        # only built when they fail)
        balances, status, latest = self.balances, self.status, self.last_occurred_on
        invariant(sum([m for _, m in legs]) == 0, "an entry's legs sum to zero")
        for account, minutes in legs:
            if account not in balances:
                invariant(False, f"account {account!r} exists")
            balances[account] += minutes
        invariant(balances[POT] >= 0, "the pot is never below zero")
        for account in [*(a for a, _ in legs), *parties]:
            if account in status and not latest.get(account, occurred_on) > occurred_on:
                latest[account] = occurred_on
        self.entries_count += 1


#: An account's kind as the bank holds it (its value) -> the kind.
_KINDS: dict[str, AccountKind] = {k.value: k for k in AccountKind}

_EVENT_FOR_KIND: dict[EntryKind, type[Bank.EntryEvent]] = {
    EntryKind.EXCHANGE: Bank.ExchangeRecorded,
    EntryKind.POT_EXCHANGE: Bank.PotExchangeRecorded,
    EntryKind.DONATION: Bank.DonationMade,
    EntryKind.GIFT: Bank.GiftGiven,
    EntryKind.OPENING_BALANCE: Bank.OpeningBalanceCarried,
}


def recorded_entry(
    entry_event: Bank.EntryEvent, bank_id: str, reversed_by: str | None = None
) -> RecordedEntry:
    """The :class:`RecordedEntry` an entry event describes."""
    provider = getattr(entry_event, "provider", None)
    receiver = getattr(entry_event, "receiver", None)
    if entry_event.entry_kind is EntryKind.DONATION:
        receiver = None  # an import once stored the pot: a donation names none
    return RecordedEntry(
        entry_id=entry_event.entry_id,
        bank=bank_id,
        kind=entry_event.entry_kind,
        minutes=entry_event.minutes,
        occurred_on=entry_event.occurred_on,
        recorded_at=entry_event.timestamp,
        actor=entry_event.actor,
        legs=tuple(entry_event.legs()),
        provider=provider,
        receiver=receiver,
        category=entry_event.category,
        reverses=getattr(entry_event, "reverses", None),
        flags=tuple(entry_event.flags),
        reversed_by=reversed_by,
        on_behalf_of=entry_event.on_behalf_of,
        provider_bank=getattr(entry_event, "provider_bank", None),
        receiver_bank=getattr(entry_event, "receiver_bank", None),
    )
