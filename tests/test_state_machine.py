"""Model-based test: random commands against a real store and a plain model.

After every step: (1) every bank's accounts sum to zero, (2) no balance went
past a hard limit, or further past one (a policy changed since), (3) no pot
is below zero, (4) the clearing accounts of every pair of banks cancel out,
(5) balances, statuses, roles, guardian angels, pending entries and entries
read back from a freshly opened store equal the model's, (6) a refused
command changed nothing (checked inside each rule).

The model is written independently of the library: plain dicts and its own
reading of the rules in docs/concepts.md, docs/membership.md and
docs/workflows.md, including which error comes first.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import timebank
from timebank import errors
from timebank.domain.policy import BalanceLimits, LeaveRule, LimitMode, Policy
from timebank.domain.roles import Permissions

from .conftest import (
    NOW,
    POSTGRES_URL,
    TODAY,
    drop_postgres_schema,
    new_postgres_schema,
    open_store,
    snapshot_state,
    without_change,
)

pytestmark = pytest.mark.slow

#: 500 examples on memory and on SQLite in CI; TIMEBANK_STATE_EXAMPLES overrides.
EXAMPLES = int(os.environ.get("TIMEBANK_STATE_EXAMPLES", "500"))
#: On PostgreSQL, where a step costs more (each reopens the store through
#: the server), fewer: TIMEBANK_STATE_EXAMPLES_POSTGRES overrides.
POSTGRES_EXAMPLES = int(os.environ.get("TIMEBANK_STATE_EXAMPLES_POSTGRES", "30"))
#: How far the store's clock may move from the tests' "now" (15 June 2026):
#: a command's "today" is never after the day of the system clock, which
#: stamps events (docs/architecture.md, "Two clocks"), and this keeps the
#: store's clock before the day this was written, 7 December 2026.
DAYS_PASSED_MAX = 150
#: Two trees: "north" with its mini bank "north/hub" and that one's
#: "north/hub/street" (roles, policies and trees more than one level down), and "south".
BANKS = ["north", "north/hub", "south", "north/hub/street"]
MEMBERS = ["m0", "m1", "m2", "m3", "o0"]
#: "c" opens the banks (their admin), "k" is a coordinator where granted, m0
#: and m3 are members acting for themselves.
ACTORS = ["c", "c", "c", "k", "m0", "m3"]
ENTRY_IDS = [f"e{i}" for i in range(8)]
KINDS = ["exchange", "pot_exchange", "donation", "gift", "opening_balance"]
INTER_BANK_KINDS = ["exchange", "pot_exchange", "donation", "gift"]
OPENED = date(2026, 1, 1)
RANK = {"member": 1, "coordinator": 2, "admin": 3}
MEMBER = RANK["member"]

Legs = dict[str, list[tuple[str, int]]]
Prediction = tuple[type[Exception] | None, Legs, list[str]]


@dataclass
class ModelEntry:
    fields: dict[str, Any]
    legs: Legs  # per bank
    reversed_by: str | None = None


@dataclass
class ModelPending:
    fields: dict[str, Any]  # with "on_behalf_of"
    awaiting: str
    confirmer: str | None
    needs_approval: bool
    actor: str  # who proposed it (for themselves, or for ``on_behalf_of``)
    expires_on: date  # the day it was proposed, plus its bank's pending_expiry_days then
    confirmed_by: str | None = None

    @property
    def proposer(self) -> str:
        """Whose proposal it is: the member it was made for, or its actor."""
        return str(self.fields["on_behalf_of"] or self.actor)


@dataclass
class ModelBank:
    policy: Policy
    kinds: dict[str, str] = field(default_factory=lambda: {"@pot": "pot", "@opening": "system"})
    balances: dict[str, int] = field(default_factory=lambda: {"@pot": 0, "@opening": 0})
    status: dict[str, str] = field(default_factory=dict)
    #: Membership periods per member: [start, end or None].
    periods: dict[str, list[list[date | None]]] = field(default_factory=dict)
    last_entry: dict[str, date] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    #: member -> their guardian angels in this bank
    guardians: dict[str, set[str]] = field(default_factory=dict)

    def member_error(self, member: str) -> type[Exception] | None:
        if self.kinds.get(member) not in ("individual", "organisation"):
            return errors.MemberNotFound
        if self.status[member] != "active":
            return errors.MemberNotActive
        return None

    def in_membership(self, member: str, day: date) -> bool:
        return any(s <= day and (e is None or day <= e) for s, e in self.periods[member])  # type: ignore[operator]


def parent_of(bank: str) -> str | None:
    return bank.rpartition("/")[0] or None


def limits_of(policy: Policy, kind: str) -> tuple[int | None, int | None]:
    chosen = {
        "individual": policy.individual,
        "organisation": policy.organisation,
        "pot": policy.pot,
        "clearing": policy.clearing,
    }
    if kind not in chosen:
        return None, None
    return chosen[kind].lowest_minutes, chosen[kind].highest_minutes


def plain_legs(
    kind: str, provider: str, receiver: str | None, minutes: int
) -> list[tuple[str, int]]:
    return {
        "exchange": [(provider, minutes), (receiver, -minutes)],
        "pot_exchange": [(provider, minutes), ("@pot", -minutes)],
        "donation": [(provider, -minutes), ("@pot", minutes)],
        "gift": [(provider, -minutes), (receiver, minutes)],
        "opening_balance": [(provider, minutes), ("@opening", -minutes)],
    }[kind]  # type: ignore[return-value]


def entry_legs(fields: dict[str, Any]) -> Legs:
    """Legs per bank: one bank, or two with clearing accounts that cancel out."""
    bank, other = fields["bank"], fields["receiver_bank"]
    out, into = plain_legs(
        fields["kind"], fields["provider"], fields["receiver"], fields["minutes"]
    )
    if other is None:
        return {bank: [out, into]}
    return {
        bank: [out, (f"@clearing:{other}", -out[1])],
        other: [into, (f"@clearing:{bank}", -into[1])],
    }


policies = st.builds(
    Policy,
    entry_minutes_max=st.sampled_from([60, 240, 1440]),
    individual=st.builds(
        BalanceLimits, st.sampled_from([None, -120, -600]), st.sampled_from([None, 180, 600])
    ),
    organisation=st.builds(
        BalanceLimits, st.sampled_from([None, -300]), st.sampled_from([None, 900])
    ),
    pot=st.builds(BalanceLimits, st.just(0), st.sampled_from([None, 240])),
    limit_mode=st.sampled_from(list(LimitMode)),
    on_leave=st.sampled_from(list(LeaveRule)),
    clearing=st.builds(BalanceLimits, st.sampled_from([None, -300]), st.sampled_from([None, 300])),
    approval_threshold_minutes=st.sampled_from([None, None, 120]),
    pending_expiry_days=st.sampled_from([30, 30, 1, 5]),
    # mostly the defaults; each action now and then needs another role
    permissions=st.builds(
        Permissions,
        **{
            action: st.sampled_from([default] * 3 + [r for r in RANK if r != default])
            for action, default in [
                ("record", "coordinator"),
                ("record_own", "member"),
                ("approve", "coordinator"),
                ("reverse", "coordinator"),
                ("act_on_behalf", "coordinator"),
                ("manage_members", "coordinator"),
            ]
        },
    ),
)
#: The number of the tests' fixed today, counted from the banks' opening.
TODAY_N = (TODAY - OPENED).days
#: Days as numbers, made dates by :meth:`LedgerMachine.day` when a rule runs,
#: by the store's clock then (``time_passes`` moves it): mostly valid days
#: spread from the banks' opening (0) to today (165, however far the clock
#: has moved), a few before the banks opened (-2, -1) and a few after today
#: (166 is tomorrow, 167 the day after).
days = st.integers(min_value=-2, max_value=TODAY_N + 2)
actors = st.sampled_from(ACTORS)

#: Whom a command names as ``on_behalf_of``: mostly no one, else a member
#: (the entry's provider or receiver, or one who may have no part in it).
behalves = st.sampled_from([None] * 4 + ["provider", "receiver", "m3"])
#: Whether a guardian angel sends a command made on a member's behalf.
sometimes = st.integers(0, 2).map(lambda n: n == 0)

ENTRY_ARGUMENTS: dict[str, st.SearchStrategy[Any]] = {
    "kind": st.sampled_from(KINDS), "bank": st.sampled_from([BANKS[0]] * 3 + BANKS),
    "provider": st.sampled_from(MEMBERS), "receiver": st.sampled_from(MEMBERS),
    "receiver_bank": st.sampled_from([None] * 4 + BANKS),
    "minutes": st.integers(1, 90) | st.integers(1, 1500), "negative": st.booleans(),
    "day": days, "entry_id": st.sampled_from(ENTRY_IDS), "category": st.sampled_from([None, "diy"]),
    "actor": actors, "behalf": behalves, "by_angel": sometimes,
}  # fmt: skip


class LedgerMachine(RuleBasedStateMachine):
    """Drives one store; subclasses choose the backend."""

    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory()
        #: Days since the tests' fixed "now" (``time_passes``); the store's clock.
        self.days_passed = 0
        self.reopen: Callable[[], timebank.Timebank] = self.opener()
        self.tb = self.reopen()
        self.banks: dict[str, ModelBank] = {}
        self.entries: dict[str, ModelEntry] = {}
        self.pending: dict[str, ModelPending] = {}
        #: entry id -> the call that made a proposal take effect, and its actor
        #: (sent again by that actor, the call is answered with the entry)
        self.settled: dict[str, tuple[str, str]] = {}
        #: entry id -> who declined the proposal, for whom, and the answer
        #: they had (the id is spent; sent again by them for the same member,
        #: the call is answered so)
        self.declined: dict[str, tuple[str, str | None, timebank.PendingEntry]] = {}
        #: ids of proposals that expired (spent, as declined ones are)
        self.expired: set[str] = set()
        #: bank -> account -> balance after the last step (for the limits' invariant)
        self.balances_seen: dict[str, dict[str, int]] = {}

    def teardown(self) -> None:
        try:
            # Where the run ended (a random step), the audit's own replay agrees
            # with every bank as the store loads it: balances, members and
            # their statuses, roles, guardians and pending entries. (Once a run:
            # after every step it cost a quarter of this file's time.)
            audit = self.tb.audit(read_model=False)
            assert audit.ok, audit.summary()
        finally:
            self.tb.close()
            self._tmp.cleanup()

    # --- helpers --------------------------------------------------------------------
    def opener(self) -> Callable[[], timebank.Timebank]:
        """What opens (and reopens) this run's store, empty at first."""
        return open_store(self.backend, Path(self._tmp.name), clock=self.now)

    def now(self) -> datetime:
        """The store's clock: noon UTC, ``days_passed`` after the tests' "now"."""
        return NOW + timedelta(days=self.days_passed)

    @property
    def today(self) -> date:
        """Today in every bank (their time zone is London's: noon UTC is the
        same day there)."""
        return self.now().date()

    def day(self, drawn: int | date) -> date:
        """A day drawn from :data:`days`, as a date by the clock as it stands
        (a date, from a rule that steers, as it is)."""
        if isinstance(drawn, date):
            return drawn
        if drawn < 0:
            return OPENED + timedelta(days=drawn)
        if drawn > TODAY_N:
            day = self.today + timedelta(days=drawn - TODAY_N)
        else:
            day = OPENED + timedelta(days=drawn * (self.today - OPENED).days // TODAY_N)
        if day > TODAY:  # in the statistics: the days the clock's moving opens
            event(
                f"a day after the tests' today, {'future' if day > self.today else 'past'} by the clock"
            )
        return day

    def past_expiry(self, expires_on: date) -> bool:
        """Whether a pending entry with this ``expires_on`` has expired: from
        the day after it (the library's one rule, in one place here)."""
        return self.today > expires_on

    def run(self, label: str, expected: type[Exception] | None, command: Callable[[], Any]) -> Any:
        """Run a command the model predicts succeeds (``None``) or fails."""
        before = snapshot_state(self.tb)
        event(f"{label}: {'ok' if expected is None else expected.__name__}")
        if expected is None:
            return command()
        with pytest.raises(expected) as refused:
            command()
        assert snapshot_state(self.tb) == before, "a refused command changed the store"
        if isinstance(refused.value, errors.NotPermitted):
            self.check_refusal(refused.value)
        return None

    def check_refusal(self, refused: errors.NotPermitted) -> None:
        """A refusal names who was refused, what and where, as the model
        reads them: the role it names is theirs in that bank, and a refusal
        for want of a role names an action the policy there keeps from them
        (the model predicts which commands are refused, not which of their
        banks or actors a refusal names)."""
        actor, action, bank, role = (
            refused.actor, refused.action, refused.bank, refused.role,  # type: ignore[attr-defined]
        )  # fmt: skip
        assert isinstance(actor, str), refused
        if bank is None:  # store-wide: no bank of the member lets them
            assert action == "manage_members", refused
            return
        assert bank in self.banks, refused
        rank = self.rank(bank, actor)
        theirs = next((r for r, n in RANK.items() if n == rank), None)
        for_want_of_a_role = "that needs the" in refused.message
        if role is not None or for_want_of_a_role:
            assert role == theirs, (refused, theirs)
        if for_want_of_a_role:
            assert not self.may(bank, actor, action), refused

    def rank(self, bank: str, actor: str) -> int:
        """The model's reading of roles: granted here or in a parent bank, or
        member while an active member here."""
        ranks = [0]
        model = self.banks[bank]
        if model.status.get(actor) == "active":
            ranks.append(MEMBER)
        current: str | None = bank
        while current is not None:
            ranks.append(RANK.get(self.banks[current].roles.get(actor, ""), 0))
            current = parent_of(current)
        return max(ranks)

    def may(self, bank: str, actor: str, action: str) -> bool:
        """The model's reading of permissions: the actor's role in the bank
        is at least the one the bank's policy names for ``action``."""
        return (
            self.rank(bank, actor)
            >= RANK[str(getattr(self.banks[bank].policy.permissions, action))]
        )

    def angels(self, fields: dict[str, Any], member: str) -> set[str]:
        """``member``'s guardian angels in the bank where they take part in
        an entry (none while that bank is not open)."""
        bank = self.banks.get(self.party_bank(fields, member))
        return set() if bank is None else bank.guardians.get(member, set())

    @staticmethod
    def is_party(fields: dict[str, Any], member: str) -> bool:
        """Whether ``member`` takes part in an entry: its provider, its
        receiver, or a participant of a group exchange."""
        named = (fields["provider"], fields["receiver"])
        return member in named or any(m == member for m, _ in fields.get("participants", ()))

    def on_behalf(
        self, fields: dict[str, Any], behalf: str | None, actor: str, by_angel: bool
    ) -> tuple[str | None, str]:
        """Whom a command names as ``on_behalf_of`` (``behalf`` drawn as
        "provider" or "receiver" of the entry, or a member id; m3 where the
        entry has no such party), and who sends it: ``actor``, or with
        ``by_angel`` the member's guardian angel ("g", a guardian of no one
        there, when they have none)."""
        if behalf is None:
            return None, actor
        named = {"provider": fields["provider"], "receiver": fields["receiver"]}
        member = str(named.get(behalf, behalf) or "m3")
        if not by_angel:
            return member, actor
        angels = self.angels(fields, member) if self.is_party(fields, member) else set()
        return member, min(angels, default="g")

    def behalf_error(
        self, fields: dict[str, Any], actor: str, member: str | None
    ) -> type[Exception] | None:
        """``on_behalf_of``: a party of the entry, whom the actor acts for."""
        if member is None:
            return None
        if not self.is_party(fields, member):
            return errors.InvalidInput
        return None if self.acts_for(fields, actor, member) else errors.NotPermitted

    def acts_for(self, fields: dict[str, Any], actor: str, member: str) -> bool:
        """The model's reading of acting on behalf in an entry: as
        :meth:`acts_for_in` reads it, in the bank where the member takes part."""
        return self.acts_for_in(self.party_bank(fields, member), actor, member)

    def acts_for_in(self, bank: str, actor: str, member: str) -> bool:
        """The model's reading of acting on behalf in a bank: the member
        themselves, their guardian angel there, or one whose role there
        the policy lets act for members (a coordinator, by default)."""
        return (
            actor == member
            or actor in self.banks[bank].guardians.get(member, set())
            or self.may(bank, actor, "act_on_behalf")
        )

    @staticmethod
    def party_bank(fields: dict[str, Any], member: str) -> str:
        """The bank in which ``member`` takes part in an entry (the
        provider's is the entry's bank; the receiver's, ``receiver_bank``)."""
        if member == fields["provider"]:
            return str(fields["bank"])
        return str(fields["receiver_bank"] or fields["bank"])

    def limit_error(
        self, bank: ModelBank, legs: list[tuple[str, int]]
    ) -> tuple[type[Exception] | None, list[str]]:
        flags = []
        for account, change in legs:
            kind = bank.kinds.get(account, "clearing")
            low, high = limits_of(bank.policy, kind)
            after = bank.balances.get(account, 0) + change
            breached = None
            if low is not None and change < 0 and after < low:
                breached = low
            elif high is not None and change > 0 and after > high:
                breached = high
            if breached is None:
                continue
            if kind == "pot" and breached == 0:
                return errors.PotOverdrawn, []
            if bank.policy.limit_mode is LimitMode.REFUSE:
                return errors.BalanceLimitExceeded, []
            flags.append(f"limit:{account}:{breached}")
        return None, flags

    def side_error(
        self, side: str, fields: dict[str, Any], legs: list[tuple[str, int]] | None
    ) -> tuple[type[Exception] | None, list[str]]:
        """One bank's rules for its side of an entry, in the documented order;
        limits only when ``legs`` are given (an entry taking effect)."""
        model = self.banks[side]
        provider, receiver = fields["provider"], fields["receiver"]
        receiver_bank = fields["receiver_bank"] or fields["bank"]
        own = [provider] if side == fields["bank"] else []
        own += [receiver] if receiver is not None and side == receiver_bank else []
        for party in own:
            error = model.member_error(party)
            if error is not None:
                return error, []
        if provider == receiver:
            return errors.SelfExchange, []
        minutes = fields["minutes"]
        if fields["kind"] == "opening_balance":
            too_large = abs(minutes) > model.policy.opening_balance_minutes_max
        else:
            too_large = minutes > model.policy.entry_minutes_max
        if too_large:
            return errors.EntryTooLarge, []
        if fields["occurred_on"] > self.today:
            return errors.OccurredInFuture, []
        if not all(model.in_membership(p, fields["occurred_on"]) for p in own):
            return errors.OccurredBeforeJoining, []
        if legs is None:
            return None, []
        return self.limit_error(model, legs)

    def effect_error(self, fields: dict[str, Any]) -> Prediction:
        """The rules of every side of an entry taking effect."""
        legs = entry_legs(fields)
        home_flags: list[str] = []
        for side, side_legs in legs.items():
            error, flags = self.side_error(side, fields, side_legs)
            if error is not None:
                return error, {}, []
            if side == fields["bank"]:
                home_flags = flags
        return None, legs, home_flags

    def tree_error(self, bank: str, receiver_bank: str | None) -> type[Exception] | None:
        if receiver_bank is None:
            return None
        if bank.split("/", maxsplit=1)[0] != receiver_bank.split("/")[0]:
            return errors.BanksNotInSameTree
        return None if receiver_bank in self.banks else errors.BankNotFound

    def idempotent(self, fields: dict[str, Any], entry_id: str) -> type[Exception] | None:
        recorded = self.entries[entry_id].fields
        keys = ("bank", "receiver_bank", "kind", "provider", "receiver", "category", "reverses",
                "occurred_on")  # fmt: skip
        same = all(fields[k] == recorded[k] for k in keys)
        same = same and fields.get("participants", ()) == recorded.get("participants", ())
        if fields["kind"] != "reversal":
            same = same and fields["minutes"] == recorded["minutes"]
        return None if same else errors.EntryConflict

    def apply(self, entry_id: str, fields: dict[str, Any], legs: Legs) -> None:
        day = fields["occurred_on"]
        for bank, side_legs in legs.items():
            model = self.banks[bank]
            for account, change in side_legs:
                if account not in model.balances:
                    model.kinds[account] = "clearing"
                    model.balances[account] = 0
                model.balances[account] += change
            own = [fields["provider"]] if bank == fields["bank"] else []
            own += (
                [fields["receiver"]] if bank == (fields["receiver_bank"] or fields["bank"]) else []
            )
            for account in [a for a, _ in side_legs] + own:
                if account in model.status and (
                    account not in model.last_entry or day > model.last_entry[account]
                ):
                    model.last_entry[account] = day
        self.entries[entry_id] = ModelEntry(fields, legs)

    # --- banks, roles and members ------------------------------------------------------------
    @initialize(
        policy=policies,
        joined=st.lists(st.integers(0, 40), min_size=len(MEMBERS), max_size=len(MEMBERS)),
        with_hub=st.integers(0, 3).map(bool),
        with_angel=st.booleans(),
    )
    def open_first_bank(
        self, policy: Policy, joined: list[int], with_hub: bool, with_angel: bool
    ) -> None:
        """Most steps should exercise entries: start with one bank and its
        members, a coordinator, often its mini bank with some members, and
        half the time a guardian angel for m1."""
        self.create_bank(BANKS[0], policy, "c")
        for member, offset in zip(MEMBERS, joined, strict=True):
            self.join(BANKS[0], member, OPENED + timedelta(days=offset), "c")
            self.tb.set_profile(member, timebank.Profile(display_name=member.upper()), actor="c")
        self.grant(BANKS[0], "k", "c")
        if with_angel:
            self.tb.appoint_guardian(BANKS[0], "m1", "g", actor="c")
            self.banks[BANKS[0]].guardians["m1"] = {"g"}
        if with_hub:
            self.create_bank(BANKS[1], None, "c")
            for member in MEMBERS[1:4]:
                self.join(BANKS[1], member, OPENED, "k")

    @rule(bank=st.sampled_from(BANKS), policy=st.none() | policies, actor=st.sampled_from("ck"))
    def create_bank(self, bank: str, policy: Policy | None, actor: str) -> None:
        parent = parent_of(bank)
        expected: type[Exception] | None = None
        if parent is not None and parent not in self.banks:
            expected = errors.BankNotFound
        elif parent is not None and self.rank(parent, actor) < RANK["admin"]:
            expected = errors.NotPermitted
        elif bank in self.banks:
            expected = errors.BankAlreadyExists
        info = self.run("create_bank", expected, lambda: self.tb.create_bank(
            bank, name=bank.title(), actor=actor, policy=policy, opened_on=OPENED))  # fmt: skip
        if expected is None:
            inherited = Policy() if parent is None else self.banks[parent].policy
            self.banks[bank] = ModelBank(policy or inherited, roles={actor: "admin"})
            assert info.policy == self.banks[bank].policy
            event(f"opened a bank {bank.count('/') + 1} levels deep")  # in the statistics

    @precondition(lambda self: self.banks)
    @rule(data=st.data(), policy=policies, actor=st.sampled_from("ck"))
    def set_policy(self, data: st.DataObject, policy: Policy, actor: str) -> None:
        """A bank changes its rules; they apply to what happens from now on
        (balances beyond new limits stay; a pending entry's limits are the
        ones in force when it takes effect)."""
        bank = data.draw(st.sampled_from(sorted(self.banks)))
        expected = None if self.may(bank, actor, "manage_bank") else errors.NotPermitted
        result = self.run("set_policy", expected,
                          lambda: self.tb.set_policy(bank, policy, actor=actor))  # fmt: skip
        if expected is None:
            self.banks[bank].policy = policy
            assert result == policy

    @precondition(lambda self: self.banks)
    @rule(data=st.data(), user=st.sampled_from(["k", "m3"]), actor=st.sampled_from("ck"))
    def grant_role(self, data: st.DataObject, user: str, actor: str) -> None:
        self.grant(data.draw(st.sampled_from(sorted(self.banks))), user, actor)

    def grant(self, bank: str, user: str, actor: str) -> None:
        model = self.banks[bank]
        expected: type[Exception] | None = None
        if self.rank(bank, actor) < RANK["admin"]:
            expected = errors.NotPermitted
        elif model.roles.get(user) == "admin":
            expected = self.last_admin_error(bank, user)
        self.run("grant_role", expected,
                 lambda: self.tb.grant_role(bank, user, "coordinator", actor=actor))  # fmt: skip
        if expected is None:
            model.roles[user] = "coordinator"

    @precondition(lambda self: self.banks)
    @rule(data=st.data(), user=st.sampled_from(["k", "m3"]), actor=st.sampled_from("ck"))
    def revoke_role(self, data: st.DataObject, user: str, actor: str) -> None:
        bank = data.draw(st.sampled_from(sorted(self.banks)))
        model = self.banks[bank]
        expected: type[Exception] | None = None
        if self.rank(bank, actor) < RANK["admin"]:
            expected = errors.NotPermitted
        elif user not in model.roles:
            expected = errors.RoleNotFound
        elif model.roles[user] == "admin":
            expected = self.last_admin_error(bank, user)
        self.run("revoke_role", expected, lambda: self.tb.revoke_role(bank, user, actor=actor))
        if expected is None:
            del model.roles[user]

    @precondition(lambda self: self.banks)
    @rule(data=st.data(), member=st.sampled_from(MEMBERS), guardian=st.sampled_from(["g", "m0"]),
          actor=actors, remove=st.integers(0, 2).map(lambda n: n == 0))  # fmt: skip
    def appoint_or_remove_guardian(
        self, data: st.DataObject, member: str, guardian: str, actor: str, remove: bool
    ) -> None:
        waiting = sorted(
            (self.party_bank(p.fields, p.confirmer), p.confirmer)
            for p in self.pending.values()
            if p.confirmer
        )  # often a member a proposal waits for, in the bank where it waits
        bank = data.draw(st.sampled_from(sorted(self.banks)))
        bank, member = data.draw(st.sampled_from([(bank, member), *waiting * 2]))
        model = self.banks[bank]
        guardians = model.guardians.setdefault(member, set())
        expected: type[Exception] | None = None
        if not self.may(bank, actor, "manage_members"):
            expected = errors.NotPermitted
        elif remove and guardian not in guardians:
            expected = errors.RoleNotFound
        elif not remove and model.kinds.get(member) not in ("individual", "organisation"):
            expected = errors.MemberNotFound
        elif not remove and guardian == member:
            expected = errors.InvalidInput
        if remove:
            self.run("remove_guardian", expected,
                     lambda: self.tb.remove_guardian(bank, member, guardian, actor=actor))  # fmt: skip
        else:
            self.run("appoint_guardian", expected,
                     lambda: self.tb.appoint_guardian(bank, member, guardian, actor=actor))  # fmt: skip
        if expected is None:
            (guardians.discard if remove else guardians.add)(guardian)
        if not guardians:
            del model.guardians[member]

    def last_admin_error(self, bank: str, user: str) -> type[Exception] | None:
        """A root bank keeps at least one admin (mini banks have their parents')."""
        admins = [u for u, r in self.banks[bank].roles.items() if r == "admin"]
        return errors.LastAdmin if parent_of(bank) is None and admins == [user] else None

    @rule(bank=st.sampled_from(BANKS), member=st.sampled_from(MEMBERS), day=days, actor=actors)
    def join(self, bank: str, member: str, day: int | date, actor: str) -> None:
        day = self.day(day)
        kind = "organisation" if member.startswith("o") else "individual"
        model = self.banks.get(bank)
        expected: type[Exception] | None = None
        if model is None:
            expected = errors.BankNotFound
        elif not self.may(bank, actor, "manage_members"):
            expected = errors.NotPermitted
        elif member in model.kinds:
            expected = errors.MemberAlreadyJoined
        elif day > self.today:
            expected = errors.OccurredInFuture
        elif day < OPENED:
            expected = errors.BeforeBankOpened
        self.run(
            "join",
            expected,
            lambda: self.tb.join(bank, member, kind=kind, actor=actor, joined_on=day),
        )
        if expected is None and model is not None:
            model.kinds[member] = kind
            model.balances[member] = 0
            model.status[member] = "active"
            model.periods[member] = [[day, None]]

    # --- entries ----------------------------------------------------------------------------
    @rule(**ENTRY_ARGUMENTS)
    def record_entry(self, **arguments: Any) -> None:
        """Entries are what a ledger mostly sees: a second rule doubles their share of steps."""
        self.record(**arguments)

    @rule(**ENTRY_ARGUMENTS)
    def record(self, kind: str, bank: str, provider: str, receiver: str,
               receiver_bank: str | None, minutes: int, negative: bool, day: int | date,
               entry_id: str, category: str | None, actor: str, behalf: str | None = None,
               by_angel: bool = False) -> None:  # fmt: skip
        day = self.day(day)
        receiver_or_none = None if kind in ("donation", "opening_balance") else receiver
        if kind == "opening_balance":
            category, receiver_bank, behalf = None, None, None  # for no one: it has no on_behalf_of
            minutes = -minutes if negative else minutes
        if receiver_bank == bank:
            receiver_bank = None
        fields = {"bank": bank, "receiver_bank": receiver_bank, "kind": kind,
                  "provider": provider, "receiver": receiver_or_none, "category": category,
                  "reverses": None, "minutes": minutes, "occurred_on": day}  # fmt: skip
        fields["on_behalf_of"], actor = self.on_behalf(fields, behalf, actor, by_angel)
        expected, legs, flags = self.predict_record(fields, entry_id, actor)
        common = {"actor": actor, "occurred_on": day, "category": category, "entry_id": entry_id,
                  "receiver_bank": receiver_bank, "on_behalf_of": fields["on_behalf_of"]}  # fmt: skip
        call = {
            "exchange": lambda: self.tb.record_exchange(bank, provider, receiver, minutes=minutes, **common),
            "pot_exchange": lambda: self.tb.record_pot_exchange(bank, provider, receiver, minutes=minutes, **common),
            "donation": lambda: self.tb.donate(bank, provider, minutes=minutes, **common),
            "gift": lambda: self.tb.gift(bank, provider, receiver, minutes=minutes, **common),
            "opening_balance": lambda: self.tb.record_opening_balance(bank, provider, minutes=minutes, actor=actor, occurred_on=day, entry_id=entry_id),
        }[kind]  # fmt: skip
        label = kind + (" inter-bank" if receiver_bank else "")
        label += "" if fields["on_behalf_of"] is None else " on behalf"
        result = self.run(label, expected, call)
        if expected is None and entry_id not in self.entries:
            self.apply(entry_id, fields, legs)
            assert list(result.flags) == flags
        if expected is None:
            assert list(result.legs) == self.entries[entry_id].legs[bank]
            assert result.on_behalf_of == self.entries[entry_id].fields.get("on_behalf_of")

    def predict_record(self, fields: dict[str, Any], entry_id: str, actor: str) -> Prediction:
        bank, receiver_bank = fields["bank"], fields["receiver_bank"]
        if bank not in self.banks:
            return errors.BankNotFound, {}, []
        if entry_id in self.entries:
            return self.idempotent(fields, entry_id), {}, []
        if self.proposed(entry_id):
            return errors.EntryConflict, {}, []
        tree_error = self.tree_error(bank, receiver_bank)
        if tree_error is not None:
            return tree_error, {}, []
        behalf_error = self.behalf_error(fields, actor, fields["on_behalf_of"])
        if behalf_error is not None:
            return behalf_error, {}, []
        sides = [bank] + ([receiver_bank] if receiver_bank else [])
        if not all(self.may(side, actor, "record") for side in sides):
            acting = fields["on_behalf_of"] or actor  # a gift is judged as the giver's
            own_gift = fields["kind"] in ("gift", "donation") and fields["provider"] == acting
            if not own_gift or not self.may(bank, acting, "record_own"):
                return errors.NotPermitted, {}, []
            threshold = self.banks[bank].policy.approval_threshold_minutes
            if threshold is not None and fields["minutes"] > threshold:
                return errors.ApprovalRequired, {}, []
        return self.effect_error(fields)

    @precondition(lambda self: self.entries)
    @rule(data=st.data(), reversal_id=st.sampled_from(ENTRY_IDS), day=days | st.just(TODAY_N),
          actor=actors, behalf=behalves, by_angel=sometimes)  # fmt: skip
    def reverse(self, data: st.DataObject, reversal_id: str, day: int | date, actor: str,
                behalf: str | None, by_angel: bool) -> None:  # fmt: skip
        day = self.day(day)
        target_id = data.draw(st.sampled_from(sorted(self.entries)))
        target = self.entries[target_id]
        bank = target.fields["bank"]
        if behalf == "receiver" and target.fields.get("participants"):
            behalf = data.draw(st.sampled_from([m for m, _ in target.fields["participants"]]))
        # for whom: a party of the entry reversed (or m3), as its parties are
        behalf, actor = self.on_behalf(target.fields, behalf, actor, by_angel)
        fields = {"bank": bank, "receiver_bank": None, "kind": "reversal", "provider": None,
                  "receiver": None, "category": target.fields["category"], "reverses": target_id,
                  "minutes": target.fields["minutes"], "occurred_on": day,
                  "on_behalf_of": behalf}  # fmt: skip
        legs = {side: [(a, -m) for a, m in side_legs] for side, side_legs in target.legs.items()}
        expected: type[Exception] | None = None
        flags: list[str] = []
        if reversal_id in self.entries:
            expected = self.idempotent(fields, reversal_id)
        elif self.proposed(reversal_id):
            expected = errors.EntryConflict
        elif (behalf_error := self.behalf_error(target.fields, actor, behalf)) is not None:
            expected = behalf_error
        elif not all(self.may(side, actor, "reverse") for side in legs):
            expected = errors.NotPermitted
        elif target.fields["kind"] == "reversal":
            expected = errors.CannotReverseReversal
        elif target.reversed_by is not None:
            expected = errors.AlreadyReversed
        elif day > self.today:
            expected = errors.OccurredInFuture
        elif day < target.fields["occurred_on"]:
            expected = errors.ReversalBeforeEntry
        else:
            for side, side_legs in legs.items():
                expected, side_flags = self.limit_error(self.banks[side], side_legs)
                flags = side_flags if side == bank else flags
                if expected is not None:
                    break
        label = "reversal" + ("" if behalf is None else " on behalf")
        result = self.run(label, expected, lambda: self.tb.reverse(
            target_id, actor=actor, reversal_id=reversal_id, occurred_on=day,
            on_behalf_of=behalf))  # fmt: skip
        if expected is None and reversal_id not in self.entries:
            self.apply(reversal_id, fields, legs)
            target.reversed_by = reversal_id
            assert list(result.flags) == flags
        if expected is None:
            assert result.on_behalf_of == self.entries[reversal_id].fields["on_behalf_of"]

    @rule(
        bank=st.sampled_from([BANKS[0]] * 3 + BANKS),
        providers=st.lists(st.sampled_from(MEMBERS), min_size=1, max_size=2, unique=True),
        receivers=st.lists(st.sampled_from(MEMBERS), min_size=1, max_size=3, unique=True),
        shares=st.lists(st.integers(1, 120) | st.integers(1, 1500), min_size=3, max_size=3),
        unbalanced=st.integers(0, 9).map(lambda n: n == 0),  # also lets both sides overlap
        day=days, entry_id=st.sampled_from(ENTRY_IDS), category=st.sampled_from([None, "diy"]),
        actor=actors, behalf=st.sampled_from([None] * 6 + MEMBERS), by_angel=sometimes,
    )  # fmt: skip
    def record_group(self, bank: str, providers: list[str], receivers: list[str], shares: list[int],
                     unbalanced: bool, day: int | date, entry_id: str, category: str | None,
                     actor: str, behalf: str | None, by_angel: bool) -> None:  # fmt: skip
        day = self.day(day)
        if not unbalanced:  # mostly well-formed groups: nobody on both sides
            receivers = [m for m in receivers if m not in providers] or [
                next(m for m in MEMBERS if m not in providers)
            ]
        received = {m: shares[i] for i, m in enumerate(receivers)}
        total = sum(received.values())
        given = {m: total // len(providers) for m in providers}
        given[providers[0]] += total - sum(given.values()) + (1 if unbalanced else 0)
        legs = [(m, given[m]) for m in sorted(given)] + [
            (m, -received[m]) for m in sorted(received)
        ]
        fields = {"bank": bank, "receiver_bank": None, "kind": "group_exchange",
                  "provider": None, "receiver": None, "category": category, "reverses": None,
                  "minutes": sum(given.values()), "occurred_on": day,
                  "participants": tuple(legs)}  # fmt: skip
        fields["on_behalf_of"], actor = self.on_behalf(fields, behalf, actor, by_angel)
        expected, flags = self.predict_group(fields, entry_id, given, received, legs, actor)
        as_hours = [
            {m: timebank.format_hours(v) for m, v in side.items()} for side in (given, received)
        ]
        result = self.run("group_exchange" + ("" if behalf is None else " on behalf"), expected,
                          lambda: self.tb.record_group_exchange(
            bank, *as_hours, actor=actor, occurred_on=day, category=category, entry_id=entry_id,
            on_behalf_of=fields["on_behalf_of"]))  # fmt: skip
        if expected is None and entry_id not in self.entries:
            self.apply(entry_id, fields, {bank: legs})
            assert list(result.flags) == flags
        if expected is None:
            assert list(result.legs) == self.entries[entry_id].legs[bank]
            assert result.on_behalf_of == self.entries[entry_id].fields["on_behalf_of"]

    def predict_group(self, fields: dict[str, Any], entry_id: str, given: dict[str, int],
                      received: dict[str, int], legs: list[tuple[str, int]],
                      actor: str) -> tuple[type[Exception] | None, list[str]]:  # fmt: skip
        if any(v <= 0 for v in given.values()):
            return errors.InvalidAmount, []  # hours are parsed before the group is checked
        if set(given) & set(received) or sum(given.values()) != sum(received.values()):
            return errors.InvalidGroup, []
        model = self.banks.get(fields["bank"])
        if model is None:
            return errors.BankNotFound, []
        if entry_id in self.entries:
            return self.idempotent(fields, entry_id), []
        if self.proposed(entry_id):
            return errors.EntryConflict, []
        behalf_error = self.behalf_error(fields, actor, fields["on_behalf_of"])
        if behalf_error is not None:
            return behalf_error, []
        if not self.may(fields["bank"], actor, "record"):
            return errors.NotPermitted, []
        for member, _ in legs:
            error = model.member_error(member)
            if error is not None:
                return error, []
        if max(abs(m) for _, m in legs) > model.policy.entry_minutes_max:
            return errors.EntryTooLarge, []
        if fields["occurred_on"] > self.today:
            return errors.OccurredInFuture, []
        if not all(model.in_membership(m, fields["occurred_on"]) for m, _ in legs):
            return errors.OccurredBeforeJoining, []
        return self.limit_error(model, legs)

    @precondition(lambda self: any(e.fields["kind"] in KINDS for e in self.entries.values()))
    @rule(data=st.data())
    def retry_same_entry(self, data: st.DataObject) -> None:
        """Sending a recorded entry again returns it and changes nothing, whoever sends it."""
        entry_id = data.draw(
            st.sampled_from(sorted(k for k, e in self.entries.items() if e.fields["kind"] in KINDS))
        )
        f = self.entries[entry_id].fields
        self.record(f["kind"], f["bank"], f["provider"], f["receiver"] or "m0",
                    f["receiver_bank"], abs(f["minutes"]), f["minutes"] < 0, f["occurred_on"],
                    entry_id, f["category"], data.draw(actors))  # fmt: skip

    # --- pending entries ---------------------------------------------------------------------
    @rule(kind=st.sampled_from(INTER_BANK_KINDS), bank=st.sampled_from([BANKS[0]] * 3 + BANKS),
          provider=st.sampled_from(MEMBERS), receiver=st.sampled_from(MEMBERS),
          receiver_bank=st.sampled_from([None] * 4 + BANKS), minutes=st.integers(1, 300),
          day=days | st.just(TODAY_N), entry_id=st.sampled_from(ENTRY_IDS),
          who=st.sampled_from(["provider", "provider", "receiver", "k", "m0"]),
          behalf=behalves, by_angel=sometimes)  # fmt: skip
    def propose(self, kind: str, bank: str, provider: str, receiver: str,
                receiver_bank: str | None, minutes: int, day: int | date, entry_id: str,
                who: str, behalf: str | None = None, by_angel: bool = False) -> None:  # fmt: skip
        day = self.day(day)
        receiver_or_none = None if kind == "donation" else receiver
        receiver_bank = None if receiver_bank == bank else receiver_bank
        actor = {"provider": provider, "receiver": receiver}.get(who, who)
        fields = {"bank": bank, "receiver_bank": receiver_bank, "kind": kind,
                  "provider": provider, "receiver": receiver_or_none, "category": None,
                  "reverses": None, "minutes": minutes, "occurred_on": day}  # fmt: skip
        fields["on_behalf_of"], actor = self.on_behalf(fields, behalf, actor, by_angel)
        expected: type[Exception] | None = None
        same = (
            entry_id in self.pending
            and self.pending[entry_id].fields == fields
            and self.pending[entry_id].actor == actor
        )  # a retry, by the same actor for the same member: anyone else's conflicts
        if bank not in self.banks:
            expected = errors.BankNotFound
        elif self.tree_error(bank, receiver_bank) is not None:
            expected = self.tree_error(bank, receiver_bank)
        elif same:
            expected = None
        elif entry_id in self.entries or self.proposed(entry_id):
            expected = errors.EntryConflict
        elif (behalf_error := self.behalf_error(fields, actor, fields["on_behalf_of"])) is not None:
            expected = behalf_error
        else:
            acting = fields["on_behalf_of"] or actor  # a proposal is judged as the member's
            parties = [provider] if kind in ("gift", "donation") else [provider, receiver]
            party_bank = bank if acting == provider else (receiver_bank or bank)
            if acting not in parties or not self.may(party_bank, acting, "record_own"):
                expected = errors.NotPermitted
            else:
                for side in ([receiver_bank] if receiver_bank else []) + [bank]:
                    expected, _ = self.side_error(side, fields, None)
                    if expected is not None:
                        break
        label = "propose" + (" inter-bank" if receiver_bank else "")
        label += "" if fields["on_behalf_of"] is None else " on behalf"
        result = self.run(label, expected,
                          lambda: self.tb.propose(bank, kind, provider, receiver_or_none,
                                                  minutes=minutes, actor=actor, occurred_on=day,
                                                  entry_id=entry_id, receiver_bank=receiver_bank,
                                                  on_behalf_of=fields["on_behalf_of"]))  # fmt: skip
        if expected is not None or same:
            return
        thresholds = [self.banks[b].policy.approval_threshold_minutes
                      for b in [bank] + ([receiver_bank] if receiver_bank else [])]  # fmt: skip
        over = any(t is not None and minutes > t for t in thresholds)
        if kind in ("gift", "donation"):
            awaiting, confirmer, needs_approval = "approval", None, True
        else:
            confirmer = receiver if (fields["on_behalf_of"] or actor) == provider else provider
            awaiting, needs_approval = "confirmation", over or kind == "pot_exchange"
        expires_on = self.today + timedelta(days=self.banks[bank].policy.pending_expiry_days)
        self.pending[entry_id] = ModelPending(
            fields, awaiting, confirmer, needs_approval, actor, expires_on
        )
        assert (result.awaiting, result.confirmer) == (awaiting, confirmer)
        assert (result.proposed_on, result.expires_on) == (self.today, expires_on)
        assert (result.actor, result.on_behalf_of) == (actor, fields["on_behalf_of"])

    def takes_effect(
        self, label: str, entry_id: str, actor: str, command: Callable[[], Any]
    ) -> None:
        pending = self.pending[entry_id]
        expected, legs, flags = self.effect_error(pending.fields)
        result = self.run(label, expected, command)
        if expected is None:
            del self.pending[entry_id]
            self.settled[entry_id] = (label, actor)
            self.apply(entry_id, pending.fields, legs)
            # the proposer's entry: its actor, and the member it was proposed for
            assert (result.entry_id, result.actor, result.on_behalf_of, list(result.flags)) == (
                entry_id, pending.actor, pending.fields["on_behalf_of"], flags)  # fmt: skip

    @rule(kind=st.sampled_from(INTER_BANK_KINDS), to_hub=st.booleans(),
          provider=st.sampled_from(MEMBERS[1:4]), receiver=st.sampled_from(MEMBERS[1:4]),
          minutes=st.integers(1, 120), entry_id=st.sampled_from(ENTRY_IDS))  # fmt: skip
    def record_between_banks(self, kind: str, to_hub: bool, provider: str, receiver: str,
                             minutes: int, entry_id: str) -> None:  # fmt: skip
        """Steer towards inter-bank entries between a bank and its mini bank."""
        bank, other = ("north", "north/hub") if to_hub else ("north/hub", "north")
        self.record(kind, bank, provider, receiver, other, minutes, False, self.today, entry_id,
                    None, "c")  # fmt: skip

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        """Steer towards pending entries taking effect: the awaited party
        confirms, or an admin approves."""
        entry_id = data.draw(st.sampled_from(sorted(self.pending)))
        pending = self.pending[entry_id]
        right = pending.confirmer if pending.awaiting == "confirmation" else "c"
        actor = data.draw(st.sampled_from([right, right, "k", "m0", "m3", "c"]))
        if pending.awaiting == "confirmation":
            self.confirm_as(entry_id, actor or "c")
        else:
            self.approve_as(entry_id, actor or "c")

    @rule(kind=st.sampled_from(["exchange", "exchange", *INTER_BANK_KINDS]),
          provider=st.sampled_from(MEMBERS), receiver=st.sampled_from(MEMBERS),
          to_hub=st.integers(0, 3).map(lambda n: n == 0), minutes=st.integers(1, 150),
          entry_id=st.sampled_from(ENTRY_IDS))  # fmt: skip
    def propose_own(self, kind: str, provider: str, receiver: str, to_hub: bool, minutes: int,
                    entry_id: str) -> None:  # fmt: skip
        """Steer towards proposals a member may make: their own, dated today."""
        receiver_bank = "north/hub" if to_hub else None
        self.propose(kind, "north", provider, receiver, receiver_bank, minutes, self.today, entry_id,
                     "provider")  # fmt: skip

    def proposed(self, entry_id: str) -> bool:
        """Whether a proposal has the id: pending, or declined or expired (spent)."""
        return entry_id in self.pending or entry_id in self.declined or entry_id in self.expired

    def pending_id(self, data: st.DataObject) -> str:
        """Mostly an entry that is pending, now and then one that is not (one
        a confirmation or approval made take effect, one declined or expired,
        or another)."""
        others = sorted(self.settled) + sorted(self.declined) + sorted(self.expired) + ["e7"]
        return data.draw(st.sampled_from(sorted(self.pending) * 4 + others))

    @rule(data=st.data())
    def confirm(self, data: st.DataObject) -> None:
        entry_id = self.pending_id(data)
        pending = self.pending.get(entry_id)
        settled = self.settled.get(entry_id)
        choices = ["k", "m0"] + ([pending.confirmer] * 3 if pending and pending.confirmer else [])
        choices += [settled[1]] * 2 if settled else []  # the actor sends it again
        self.confirm_as(entry_id, data.draw(st.sampled_from(choices)))

    @precondition(lambda self: any(p.confirmer for p in self.pending.values()))
    @rule(data=st.data())
    def confirm_in_the_confirmers_name(self, data: st.DataObject) -> None:
        """By their guardian angel (most often, where they have one), a
        coordinator, another member, or the proposer, who may not."""
        entry_id = data.draw(st.sampled_from(sorted(e for e, p in self.pending.items()
                                                    if p.confirmer)))  # fmt: skip
        pending = self.pending[entry_id]
        confirmer = str(pending.confirmer)
        angels = sorted(self.angels(pending.fields, confirmer))
        actor = data.draw(st.sampled_from([*angels * 4, "g", "k", "m0", pending.proposer]))
        self.confirm_as(entry_id, actor, on_behalf_of=confirmer)

    def confirm_as(self, entry_id: str, actor: str, on_behalf_of: str | None = None) -> None:
        pending = self.pending.get(entry_id)
        expected: type[Exception] | None = None

        def command() -> Any:
            return self.tb.confirm(entry_id, actor=actor, on_behalf_of=on_behalf_of)

        if self.settled.get(entry_id) == ("confirm", actor) or (
            pending is not None and pending.confirmed_by == actor
        ):
            self.answered_again("confirm", entry_id, command)
            return
        if pending is None:
            expected = errors.PendingEntryNotFound
        elif pending.confirmer is None:  # a gift or donation awaits no confirmation
            expected = errors.PendingStateConflict
        elif (on_behalf_of or actor) != pending.confirmer:
            expected = errors.NotPermitted
        elif on_behalf_of is not None and not self.acts_for(pending.fields, actor, on_behalf_of):
            expected = errors.NotPermitted  # neither them, their guardian, nor a coordinator
        elif pending.awaiting != "confirmation":
            expected = errors.PendingStateConflict
        elif self.past_expiry(pending.expires_on):
            expected = errors.EntryExpired
        if on_behalf_of is not None and pending is not None:
            angel = actor in self.angels(pending.fields, on_behalf_of)
            outcome = "ok" if expected is None else expected.__name__
            event(f"confirm in another's name{' by their guardian' if angel else ''}: {outcome}")
        if expected is None and pending is not None and not pending.needs_approval:
            self.takes_effect("confirm", entry_id, actor, command)
            return
        result = self.run("confirm", expected, command)
        if expected is None and pending is not None:
            pending.awaiting = "approval"
            pending.confirmed_by = actor
            assert result.awaiting == "approval"

    def answered_again(self, label: str, entry_id: str, command: Callable[[], Any]) -> None:
        """A confirmation or approval sent again by its actor (a lost reply):
        answered with its outcome, the store unchanged."""
        result = self.run(f"{label} again", None, lambda: without_change(self.tb, command))
        assert result.entry_id == entry_id
        if entry_id in self.pending:
            assert result.awaiting == "approval"
        else:
            assert isinstance(result, timebank.RecordedEntry)

    @rule(data=st.data(), actor=actors)
    def approve(self, data: st.DataObject, actor: str) -> None:
        self.approve_as(self.pending_id(data), actor)

    def approve_as(self, entry_id: str, actor: str) -> None:
        pending = self.pending.get(entry_id)
        expected: type[Exception] | None = None
        if self.settled.get(entry_id) == ("approve", actor):
            self.answered_again("approve", entry_id, lambda: self.tb.approve(entry_id, actor=actor))
            return
        if pending is None:
            expected = errors.PendingEntryNotFound
        else:
            sides = [pending.fields["bank"], pending.fields["receiver_bank"]]
            f = pending.fields
            if not all(self.may(side, actor, "approve") for side in sides if side):
                expected = errors.NotPermitted
            elif actor in (f["provider"], f["receiver"], pending.actor):
                expected = errors.NotPermitted  # four eyes: also whoever proposed it for another
            elif pending.awaiting != "approval":
                expected = errors.PendingStateConflict
            elif self.past_expiry(pending.expires_on):
                expected = errors.EntryExpired
            else:
                self.takes_effect("approve", entry_id, actor,
                                  lambda: self.tb.approve(entry_id, actor=actor))  # fmt: skip
                return
        self.run("approve", expected, lambda: self.tb.approve(entry_id, actor=actor))

    @rule(data=st.data(), behalf=behalves, by_angel=sometimes)
    def decline(self, data: st.DataObject, behalf: str | None, by_angel: bool) -> None:
        entry_id = self.pending_id(data)
        pending = self.pending.get(entry_id)
        parties = [pending.confirmer, pending.proposer] if pending else []
        declined = self.declined.get(entry_id)
        actor = data.draw(st.sampled_from([*ACTORS, *(p for p in parties if p)]))
        on_behalf_of = None
        if pending is not None:
            if behalf == "provider" and pending.confirmer and data.draw(st.booleans()):
                behalf = pending.confirmer  # often the member it waits for
            on_behalf_of, actor = self.on_behalf(pending.fields, behalf, actor, by_angel)
        if declined is not None and data.draw(st.integers(0, 2)) == 0:
            actor, on_behalf_of = declined[0], declined[1]  # sent again (its reply lost)
        self.decline_as(entry_id, actor, on_behalf_of)

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def a_stranger_declines(self, data: st.DataObject) -> None:
        """Steer towards declines the bank's policy judges: by someone who is
        neither the party the entry waits for nor its proposer (an approver
        may; so a decline checked against another action fails here)."""
        entry_id = data.draw(st.sampled_from(sorted(self.pending)))
        pending = self.pending[entry_id]
        strangers = [
            a for a in ("m0", "m3", "k", "c") if a not in (pending.confirmer, pending.proposer)
        ]
        self.decline_as(entry_id, data.draw(st.sampled_from(strangers)), None)

    def decline_as(self, entry_id: str, actor: str, on_behalf_of: str | None) -> None:
        pending = self.pending.get(entry_id)
        parties = [pending.confirmer, pending.proposer] if pending else []
        declined = self.declined.get(entry_id)

        def command() -> timebank.PendingEntry:
            return self.tb.decline(entry_id, actor=actor, on_behalf_of=on_behalf_of)

        if declined is not None and declined[:2] == (actor, on_behalf_of):
            result = self.run("decline again", None, lambda: without_change(self.tb, command))
            answered = declined[2]  # as it was, ``expired`` as of the retry (docs/workflows.md)
            assert result == attrs.evolve(answered, expired=self.past_expiry(answered.expires_on))
            return
        expected: type[Exception] | None = None
        if pending is None:
            expected = errors.PendingEntryNotFound
        elif (behalf_error := self.behalf_error(pending.fields, actor, on_behalf_of)) is not None:
            expected = behalf_error
        elif (on_behalf_of or actor) not in parties:  # judged as the member's, if for one
            sides = [pending.fields["bank"], pending.fields["receiver_bank"]]
            acting = on_behalf_of or actor
            if not all(self.may(side, acting, "approve") for side in sides if side):
                expected = errors.NotPermitted
        label = "decline" + ("" if on_behalf_of is None else " on behalf")
        result = self.run(label, expected, command)
        if expected is None and pending is not None:
            del self.pending[entry_id]
            self.declined[entry_id] = (actor, on_behalf_of, result)
            assert (result.entry_id, result.actor) == (entry_id, pending.actor)

    @precondition(lambda self: self.days_passed < DAYS_PASSED_MAX)
    @rule(days=st.sampled_from([1, 2, 5, 31]))
    def time_passes(self, days: int) -> None:
        """Days go by (the store's clock moves): pending entries reach and
        pass their ``expires_on``; yesterday's future dates are today's."""
        self.days_passed = min(self.days_passed + days, DAYS_PASSED_MAX)

    @precondition(lambda self: self.pending)
    @rule(data=st.data(), past=st.booleans(), run_the_job=st.booleans())
    def a_proposal_reaches_its_expiry(
        self, data: st.DataObject, past: bool, run_the_job: bool
    ) -> None:
        """Steer towards expiry: time passes until a pending entry's
        ``expires_on`` is today (its last day: it stands) or yesterday
        (``past``); then the daily job runs in its bank, or the entry is left
        for a confirmation or approval to find."""
        entry_id = data.draw(st.sampled_from(sorted(self.pending)))
        pending = self.pending[entry_id]
        days = max(0, (pending.expires_on - self.today).days + past)
        if self.days_passed + days > DAYS_PASSED_MAX:
            return
        self.days_passed += days
        if run_the_job:
            self.expire_pending(pending.fields["bank"], "c")

    @rule(bank=st.sampled_from(BANKS), actor=actors)
    def expire_pending(self, bank: str, actor: str) -> None:
        """The daily job: every pending entry of the bank past its
        ``expires_on`` expires (its id spent); needs ``approve``."""
        due = sorted(e for e, p in self.pending.items()
                     if p.fields["bank"] == bank and self.past_expiry(p.expires_on))  # fmt: skip
        expected: type[Exception] | None = None
        if bank not in self.banks:
            expected = errors.BankNotFound
        elif not self.may(bank, actor, "approve"):
            expected = errors.NotPermitted
        result = self.run(
            "expire pending", expected, lambda: self.tb.expire_pending(bank, actor=actor)
        )
        if expected is None:
            event(f"expire pending: {'some' if due else 'none'} due")
            assert sorted(result) == due
            for entry_id in due:
                del self.pending[entry_id]
                self.expired.add(entry_id)

    # --- membership lifecycle ---------------------------------------------------------------
    def status_error(
        self, bank: str, member: str, allowed: set[str], actor: str, self_service: bool = False
    ) -> tuple[ModelBank | None, type[Exception] | None]:
        """The bank's model, and the error a lifecycle command from ``allowed``
        states meets first on the bank, the actor's role, the member and
        their status."""
        model = self.banks.get(bank)
        if model is None:
            return None, errors.BankNotFound
        acting_for = self_service and self.acts_for_in(bank, actor, member)
        if not self.may(bank, actor, "manage_members") and not acting_for:
            return model, errors.NotPermitted
        if model.kinds.get(member) not in ("individual", "organisation"):
            return model, errors.MemberNotFound
        if model.status[member] not in allowed:
            return model, errors.MemberStatusConflict
        return model, None

    def lifecycle(self, label: str, bank: str, member: str, allowed: set[str], actor: str,
                  command: Callable[[], Any]) -> ModelBank | None:  # fmt: skip
        """Run suspend or reinstate; return the bank's model when it succeeded."""
        model, expected = self.status_error(bank, member, allowed, actor)
        result = self.run(label, expected, command)
        if expected is None:
            assert result.status == {"suspend": "suspended", "reinstate": "active"}[label]
        return model if expected is None else None

    @rule(bank=st.sampled_from(BANKS), member=st.sampled_from(MEMBERS), actor=actors)
    def suspend(self, bank: str, member: str, actor: str) -> None:
        model = self.lifecycle("suspend", bank, member, {"active"}, actor,
                               lambda: self.tb.suspend(bank, member, actor=actor))  # fmt: skip
        if model is not None:
            model.status[member] = "suspended"

    @rule(bank=st.sampled_from(BANKS), member=st.sampled_from(MEMBERS), actor=actors)
    def reinstate(self, bank: str, member: str, actor: str) -> None:
        model = self.lifecycle("reinstate", bank, member, {"suspended"}, actor,
                               lambda: self.tb.reinstate(bank, member, actor=actor))  # fmt: skip
        if model is not None:
            model.status[member] = "active"

    @rule(bank=st.sampled_from(BANKS), member=st.sampled_from(MEMBERS), day=days,
          donation_id=st.sampled_from(ENTRY_IDS), actor=st.sampled_from([*ACTORS, "self", "g"]))  # fmt: skip
    def leave(self, bank: str, member: str, day: int | date, donation_id: str, actor: str) -> None:
        day = self.day(day)
        actor = member if actor == "self" else actor  # or their guardian angel, "g" or m0
        model, expected = self.status_error(bank, member, {"active", "suspended"}, actor, True)
        legs: list[tuple[str, int]] = []
        flags: list[str] = []
        if model is not None and (donation_id in self.entries or self.proposed(donation_id)):
            expected = errors.EntryConflict  # once the bank is found
        elif expected is not None or model is None:
            pass
        elif day > self.today:
            expected = errors.OccurredInFuture
        elif day < model.periods[member][-1][0]:  # type: ignore[operator]
            expected = errors.OccurredBeforeJoining
        elif member in model.last_entry and model.last_entry[member] > day:
            expected = errors.LeaveBeforeLastEntry
        elif model.policy.on_leave is LeaveRule.DONATE and model.balances[member] > 0:
            legs = [(member, -model.balances[member]), ("@pot", model.balances[member])]
            expected, flags = self.limit_error(model, legs)
        angel = model is not None and actor in model.guardians.get(member, set())
        label = "leave" + (" by their guardian" if angel else "")
        result = self.run(label, expected, lambda: self.tb.leave(
            bank, member, actor=actor, left_on=day, donation_id=donation_id))  # fmt: skip
        if expected is not None or model is None:
            return
        assert result.status == "left"
        if legs:
            fields = {"bank": bank, "receiver_bank": None, "kind": "donation", "provider": member,
                      "receiver": None, "category": None, "reverses": None,
                      "minutes": legs[1][1], "occurred_on": day, "on_behalf_of": None}  # fmt: skip
            self.apply(donation_id, fields, {bank: legs})
            assert list(self.tb.entry(donation_id).flags) == flags
        model.status[member] = "left"
        model.periods[member][-1][1] = day

    @rule(bank=st.sampled_from(BANKS), member=st.sampled_from(MEMBERS), day=days, actor=actors)
    def rejoin(self, bank: str, member: str, day: int | date, actor: str) -> None:
        day = self.day(day)
        model, expected = self.status_error(bank, member, {"left"}, actor)
        if expected is not None or model is None:
            pass
        elif day > self.today:
            expected = errors.OccurredInFuture
        elif day <= model.periods[member][-1][1]:  # type: ignore[operator]
            expected = errors.OccurredBeforeJoining
        result = self.run(
            "rejoin", expected, lambda: self.tb.rejoin(bank, member, actor=actor, rejoined_on=day)
        )
        if expected is None and model is not None:
            assert result.status == "active"
            model.status[member] = "active"
            model.periods[member].append([day, None])

    @rule(member=st.sampled_from(MEMBERS), actor=actors)
    def erase(self, member: str, actor: str) -> None:
        """Erasing a profile changes no balance (checked by the invariants)."""
        theirs = [b for b, m in self.banks.items() if member in m.kinds] or list(self.banks)
        allowed = any(self.may(b, actor, "manage_members") for b in theirs)
        self.run("erase", None if allowed else errors.NotPermitted,
                 lambda: self.tb.erase_member(member, actor=actor))  # fmt: skip
        if allowed:
            assert self.tb.profile(member) is None

    @rule()
    def restart(self) -> None:
        """Close the store and open it again (the process restarts)."""
        self.tb.close()
        self.tb = self.reopen()

    # --- invariants ----------------------------------------------------------------------
    @invariant()
    def balances_sum_to_zero_limits_hold_and_clearing_cancels_out(self) -> None:
        """Hard limits hold: no step took a balance past one, or further past
        one it was already beyond (a policy change applies to what happens
        after it, and leaves balances as they are)."""
        for bank, model in self.banks.items():
            rows = self.tb.balances(bank)
            before = self.balances_seen.get(bank, {})
            assert sum(r.balance_minutes for r in rows) == 0
            for row in rows:
                low, high = limits_of(model.policy, row.kind)
                now, was = row.balance_minutes, before.get(row.account, 0)
                assert row.kind != "pot" or now >= 0
                if model.policy.limit_mode is LimitMode.REFUSE:
                    assert low is None or now >= min(low, was)
                    assert high is None or now <= max(high, was)
                if row.kind == "clearing":
                    other = row.account.removeprefix("@clearing:")
                    mirror = self.tb.balance(other, f"@clearing:{bank}")
                    assert row.balance_minutes + mirror == 0
            self.balances_seen[bank] = {r.account: r.balance_minutes for r in rows}

    @invariant()
    def a_freshly_opened_store_agrees_with_the_model(self) -> None:
        fresh = self.reopen()
        try:
            for bank, model in self.banks.items():
                assert {
                    r.account: r.balance_minutes for r in fresh.balances(bank)
                } == model.balances
                assert {m.member: m.status for m in fresh.members(bank)} == model.status
                assert dict(fresh.bank(bank).roles) == model.roles
                stored = fresh._app.bank(bank).guardians  # as fresh.guardians() reads them
                assert {m: set(g) for m, g in stored.items()} == model.guardians
                home = {p.entry_id for p in fresh.pending(bank) if p.bank == bank}
                assert home == {e for e, p in self.pending.items() if p.fields["bank"] == bank}
            assert sorted(b.bank for b in fresh.banks()) == sorted(self.banks)
            found = {e: fresh._app.index.find_proposal(e) for e in ENTRY_IDS}
            assert {e for e, p in found.items() if p and p.settled is None} == set(self.pending)
            settled = set(self.declined) | self.expired
            assert {e for e, p in found.items() if p and p.settled} == settled
            for entry_id, entry in self.entries.items():
                assert fresh.entry(entry_id).reversed_by == entry.reversed_by
            fresh.check_invariants()
        finally:
            fresh.close()


class SqliteLedgerMachine(LedgerMachine):
    backend = "sqlite"


class PostgresLedgerMachine(LedgerMachine):
    """The same runs on PostgreSQL: its own SQL for the index tables, its
    transactions and locks. Each run has a schema of its own on the test
    server, dropped when the run ends."""

    backend = "postgres"

    def opener(self) -> Callable[[], timebank.Timebank]:
        self.url = new_postgres_schema()
        return lambda: timebank.open(self.url, clock=self.now)

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            drop_postgres_schema(self.url)


TestLedgerOnMemory = LedgerMachine.TestCase
TestLedgerOnMemory.settings = settings(max_examples=EXAMPLES, stateful_step_count=30)
TestLedgerOnSqlite = SqliteLedgerMachine.TestCase
TestLedgerOnSqlite.settings = settings(max_examples=EXAMPLES, stateful_step_count=30)
TestLedgerOnPostgres = pytest.mark.skipif(
    POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)"
)(PostgresLedgerMachine.TestCase)
TestLedgerOnPostgres.settings = settings(max_examples=POSTGRES_EXAMPLES, stateful_step_count=30)
