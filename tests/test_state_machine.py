"""Model-based test: random commands against a real store and a plain model.

After every step: (1) every bank's accounts sum to zero, (2) no balance
breaks a hard limit, (3) no pot is below zero, (4) balances read back from a
freshly opened store equal the model's, (5) a refused command changed
nothing (checked inside each rule). The model is written independently of
the library: plain dicts and its own reading of the rules in docs/concepts.md.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import timebank
from timebank import errors
from timebank.domain.policy import BalanceLimits, LeaveRule, LimitMode, Policy

from .conftest import TODAY, open_store, snapshot_state

#: At least 500 examples per backend in CI; TIMEBANK_STATE_EXAMPLES overrides.
EXAMPLES = int(os.environ.get("TIMEBANK_STATE_EXAMPLES", "500"))
BANKS = ["north", "south"]
MEMBERS = ["m0", "m1", "m2", "m3", "o0"]
ENTRY_IDS = [f"e{i}" for i in range(8)]
KINDS = ["exchange", "pot_exchange", "donation", "gift", "opening_balance"]
OPENED = date(2026, 1, 1)


@dataclass
class ModelEntry:
    fields: dict[str, Any]
    legs: list[tuple[str, int]]
    reversed_by: str | None = None


@dataclass
class ModelBank:
    policy: Policy
    kinds: dict[str, str] = field(default_factory=lambda: {"@pot": "pot", "@opening": "system"})
    balances: dict[str, int] = field(default_factory=lambda: {"@pot": 0, "@opening": 0})
    status: dict[str, str] = field(default_factory=dict)
    #: Membership periods per member: [start, end or None].
    periods: dict[str, list[list[date | None]]] = field(default_factory=dict)
    last_entry: dict[str, date] = field(default_factory=dict)

    def member_error(self, member: str) -> type[Exception] | None:
        if self.kinds.get(member) not in ("individual", "organisation"):
            return errors.MemberNotFound
        if self.status[member] != "active":
            return errors.MemberNotActive
        return None

    def in_membership(self, member: str, day: date) -> bool:
        return any(s <= day and (e is None or day <= e) for s, e in self.periods[member])  # type: ignore[operator]


def limits_of(policy: Policy, kind: str) -> tuple[int | None, int | None]:
    chosen = {
        "individual": policy.individual,
        "organisation": policy.organisation,
        "pot": policy.pot,
    }
    if kind not in chosen:
        return None, None
    return chosen[kind].lowest_minutes, chosen[kind].highest_minutes


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
)
#: Mostly valid dates (the bank opens on day 0, "today" is day 165), a few
#: before the bank opened and a few in the future.
days = st.integers(min_value=-2, max_value=167).map(lambda n: OPENED + timedelta(days=n))


ENTRY_ARGUMENTS: dict[str, st.SearchStrategy[Any]] = {
    "kind": st.sampled_from(KINDS), "bank": st.sampled_from([BANKS[0]] * 3 + BANKS),
    "provider": st.sampled_from(MEMBERS), "receiver": st.sampled_from(MEMBERS),
    "minutes": st.integers(1, 90) | st.integers(1, 1500), "negative": st.booleans(),
    "day": days, "entry_id": st.sampled_from(ENTRY_IDS), "category": st.sampled_from([None, "diy"]),
}  # fmt: skip


class LedgerMachine(RuleBasedStateMachine):
    """Drives one store; subclasses choose the backend."""

    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory()
        self.reopen: Callable[[], timebank.Timebank] = open_store(
            self.backend, Path(self._tmp.name)
        )
        self.tb = self.reopen()
        self.banks: dict[str, ModelBank] = {}
        self.entries: dict[str, ModelEntry] = {}

    def teardown(self) -> None:
        self.tb.close()
        self._tmp.cleanup()

    # --- helpers --------------------------------------------------------------------
    def run(self, label: str, expected: type[Exception] | None, command: Callable[[], Any]) -> Any:
        """Run a command the model predicts succeeds (``None``) or fails."""
        before = snapshot_state(self.tb)
        event(f"{label}: {'ok' if expected is None else expected.__name__}")
        if expected is None:
            return command()
        with pytest.raises(expected):
            command()
        assert snapshot_state(self.tb) == before, "a refused command changed the store"
        return None

    def limit_error(
        self, bank: ModelBank, legs: list[tuple[str, int]]
    ) -> tuple[type[Exception] | None, list[str]]:
        flags = []
        for account, change in legs:
            low, high = limits_of(bank.policy, bank.kinds[account])
            after = bank.balances[account] + change
            breached = None
            if low is not None and change < 0 and after < low:
                breached = low
            elif high is not None and change > 0 and after > high:
                breached = high
            if breached is None:
                continue
            if bank.kinds[account] == "pot" and breached == 0:
                return errors.PotOverdrawn, []
            if bank.policy.limit_mode is LimitMode.REFUSE:
                return errors.BalanceLimitExceeded, []
            flags.append(f"limit:{account}:{breached}")
        return None, flags

    # --- rules ------------------------------------------------------------------------
    @initialize(
        policy=policies,
        joined=st.lists(st.integers(0, 40), min_size=len(MEMBERS), max_size=len(MEMBERS)),
    )
    def open_first_bank(self, policy: Policy, joined: list[int]) -> None:
        """Most steps should exercise entries: start with one bank and its members."""
        self.create_bank(BANKS[0], policy)
        for member, offset in zip(MEMBERS, joined, strict=True):
            self.join(BANKS[0], member, OPENED + timedelta(days=offset))
            self.tb.set_profile(member, timebank.Profile(display_name=member.upper()), actor="c")

    @rule(bank=st.sampled_from(BANKS), policy=policies)
    def create_bank(self, bank: str, policy: Policy) -> None:
        expected = errors.BankAlreadyExists if bank in self.banks else None
        self.run(
            "create_bank",
            expected,
            lambda: self.tb.create_bank(
                bank, name=bank.title(), actor="c", policy=policy, opened_on=OPENED
            ),
        )
        if expected is None:
            self.banks[bank] = ModelBank(policy)

    @rule(bank=st.sampled_from(BANKS), member=st.sampled_from(MEMBERS), day=days)
    def join(self, bank: str, member: str, day: date) -> None:
        kind = "organisation" if member.startswith("o") else "individual"
        model = self.banks.get(bank)
        expected: type[Exception] | None = None
        if model is None:
            expected = errors.BankNotFound
        elif member in model.kinds:
            expected = errors.MemberAlreadyJoined
        elif day > TODAY:
            expected = errors.OccurredInFuture
        elif day < OPENED:
            expected = errors.BeforeBankOpened
        self.run(
            "join",
            expected,
            lambda: self.tb.join(bank, member, kind=kind, actor="c", joined_on=day),
        )
        if expected is None and model is not None:
            model.kinds[member] = kind
            model.balances[member] = 0
            model.status[member] = "active"
            model.periods[member] = [[day, None]]

    @rule(**ENTRY_ARGUMENTS)
    def record_entry(self, **arguments: Any) -> None:
        """Entries are what a ledger mostly sees: a second rule doubles their share of steps."""
        self.record(**arguments)

    @rule(**ENTRY_ARGUMENTS)
    def record(self, kind: str, bank: str, provider: str, receiver: str, minutes: int,
               negative: bool, day: date, entry_id: str, category: str | None) -> None:  # fmt: skip
        if kind in ("donation", "opening_balance"):
            receiver_or_none: str | None = None
        else:
            receiver_or_none = receiver
        if kind == "opening_balance":
            category = None
            minutes = -minutes if negative else minutes
        fields = {"bank": bank, "kind": kind, "provider": provider, "receiver": receiver_or_none,
                  "category": category, "reverses": None, "minutes": minutes, "occurred_on": day}  # fmt: skip
        expected, legs, flags = self.predict_record(fields, entry_id)
        call = {
            "exchange": lambda: self.tb.record_exchange(bank, provider, receiver, minutes=minutes, **common),
            "pot_exchange": lambda: self.tb.record_pot_exchange(bank, provider, receiver, minutes=minutes, **common),
            "donation": lambda: self.tb.donate(bank, provider, minutes=minutes, **common),
            "gift": lambda: self.tb.gift(bank, provider, receiver, minutes=minutes, **common),
            "opening_balance": lambda: self.tb.record_opening_balance(bank, provider, minutes=minutes, actor="c", occurred_on=day, entry_id=entry_id),
        }[kind]  # fmt: skip
        common = {"actor": "c", "occurred_on": day, "category": category, "entry_id": entry_id}
        result = self.run(kind, expected, call)
        if expected is None and entry_id not in self.entries:
            self.apply(bank, entry_id, fields, legs)
            assert list(result.flags) == flags
        if expected is None:
            assert list(result.legs) == self.entries[entry_id].legs

    def predict_record(
        self, fields: dict[str, Any], entry_id: str
    ) -> tuple[type[Exception] | None, list[tuple[str, int]], list[str]]:
        model = self.banks.get(fields["bank"])
        if model is None:
            return errors.BankNotFound, [], []
        if entry_id in self.entries:
            return self.idempotent(fields, entry_id), [], []
        kind, provider, receiver, minutes = (
            fields["kind"],
            fields["provider"],
            fields["receiver"],
            fields["minutes"],
        )
        parties = [p for p in (provider, receiver) if p is not None]
        for party in parties:
            error = model.member_error(party)
            if error is not None:
                return error, [], []
        if provider == receiver:
            return errors.SelfExchange, [], []
        limit = (
            model.policy.opening_balance_minutes_max
            if kind == "opening_balance"
            else model.policy.entry_minutes_max
        )
        if abs(minutes) > limit:
            return errors.EntryTooLarge, [], []
        if fields["occurred_on"] > TODAY:
            return errors.OccurredInFuture, [], []
        if not all(model.in_membership(p, fields["occurred_on"]) for p in parties):
            return errors.OccurredBeforeJoining, [], []
        legs = {
            "exchange": [(provider, minutes), (receiver, -minutes)],
            "pot_exchange": [(provider, minutes), ("@pot", -minutes)],
            "donation": [(provider, -minutes), ("@pot", minutes)],
            "gift": [(provider, -minutes), (receiver, minutes)],
            "opening_balance": [(provider, minutes), ("@opening", -minutes)],
        }[kind]
        error, flags = self.limit_error(model, legs)
        return error, legs, flags

    def idempotent(self, fields: dict[str, Any], entry_id: str) -> type[Exception] | None:
        recorded = self.entries[entry_id].fields
        same = all(
            fields[k] == recorded[k]
            for k in ("bank", "kind", "provider", "receiver", "category", "reverses", "occurred_on")
        )
        same = same and fields.get("participants", ()) == recorded.get("participants", ())
        if fields["kind"] != "reversal":
            same = same and fields["minutes"] == recorded["minutes"]
        return None if same else errors.EntryConflict

    def apply(
        self, bank: str, entry_id: str, fields: dict[str, Any], legs: list[tuple[str, int]]
    ) -> None:
        model = self.banks[bank]
        for account, change in legs:
            model.balances[account] += change
        day = fields["occurred_on"]
        for account in [a for a, _ in legs] + [fields["provider"], fields["receiver"]]:
            if account in model.status and (
                account not in model.last_entry or day > model.last_entry[account]
            ):
                model.last_entry[account] = day
        self.entries[entry_id] = ModelEntry(fields, legs)

    @precondition(lambda self: self.entries)
    @rule(data=st.data(), reversal_id=st.sampled_from(ENTRY_IDS), day=days)
    def reverse(self, data: st.DataObject, reversal_id: str, day: date) -> None:
        target_id = data.draw(st.sampled_from(sorted(self.entries)))
        target = self.entries[target_id]
        bank = target.fields["bank"]
        fields = {"bank": bank, "kind": "reversal", "provider": None, "receiver": None,
                  "category": target.fields["category"], "reverses": target_id,
                  "minutes": target.fields["minutes"], "occurred_on": day}  # fmt: skip
        legs = [(a, -m) for a, m in target.legs]
        expected: type[Exception] | None = None
        flags: list[str] = []
        if reversal_id in self.entries:
            expected = self.idempotent(fields, reversal_id)
        elif target.fields["kind"] == "reversal":
            expected = errors.CannotReverseReversal
        elif target.reversed_by is not None:
            expected = errors.AlreadyReversed
        elif day > TODAY:
            expected = errors.OccurredInFuture
        elif day < target.fields["occurred_on"]:
            expected = errors.ReversalBeforeEntry
        else:
            expected, flags = self.limit_error(self.banks[bank], legs)
        result = self.run(
            "reversal",
            expected,
            lambda: self.tb.reverse(target_id, actor="c", reversal_id=reversal_id, occurred_on=day),
        )
        if expected is None and reversal_id not in self.entries:
            self.apply(bank, reversal_id, fields, legs)
            target.reversed_by = reversal_id
            assert list(result.flags) == flags

    @rule(
        bank=st.sampled_from([BANKS[0]] * 3 + BANKS),
        providers=st.lists(st.sampled_from(MEMBERS), min_size=1, max_size=2, unique=True),
        receivers=st.lists(st.sampled_from(MEMBERS), min_size=1, max_size=3, unique=True),
        shares=st.lists(st.integers(1, 120) | st.integers(1, 1500), min_size=3, max_size=3),
        unbalanced=st.integers(0, 9).map(lambda n: n == 0),  # also lets both sides overlap
        day=days, entry_id=st.sampled_from(ENTRY_IDS), category=st.sampled_from([None, "diy"]),
    )  # fmt: skip
    def record_group(self, bank: str, providers: list[str], receivers: list[str], shares: list[int],
                     unbalanced: bool, day: date, entry_id: str, category: str | None) -> None:  # fmt: skip
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
        fields = {"bank": bank, "kind": "group_exchange", "provider": None, "receiver": None,
                  "category": category, "reverses": None, "minutes": sum(given.values()),
                  "occurred_on": day, "participants": tuple(legs)}  # fmt: skip
        expected, flags = self.predict_group(fields, entry_id, given, received, legs)
        as_hours = [
            {m: timebank.format_hours(v) for m, v in side.items()} for side in (given, received)
        ]
        result = self.run("group_exchange", expected, lambda: self.tb.record_group_exchange(
            bank, *as_hours, actor="c", occurred_on=day, category=category, entry_id=entry_id))  # fmt: skip
        if expected is None and entry_id not in self.entries:
            self.apply(bank, entry_id, fields, legs)
            assert list(result.flags) == flags
        if expected is None:
            assert list(result.legs) == self.entries[entry_id].legs

    def predict_group(self, fields: dict[str, Any], entry_id: str, given: dict[str, int],
                      received: dict[str, int], legs: list[tuple[str, int]]) -> tuple[type[Exception] | None, list[str]]:  # fmt: skip
        if any(v <= 0 for v in given.values()):
            return errors.InvalidAmount, []  # hours are parsed before the group is checked
        if set(given) & set(received) or sum(given.values()) != sum(received.values()):
            return errors.InvalidGroup, []
        model = self.banks.get(fields["bank"])
        if model is None:
            return errors.BankNotFound, []
        if entry_id in self.entries:
            return self.idempotent(fields, entry_id), []
        for member, _ in legs:
            error = model.member_error(member)
            if error is not None:
                return error, []
        if max(abs(m) for _, m in legs) > model.policy.entry_minutes_max:
            return errors.EntryTooLarge, []
        if fields["occurred_on"] > TODAY:
            return errors.OccurredInFuture, []
        if not all(model.in_membership(m, fields["occurred_on"]) for m, _ in legs):
            return errors.OccurredBeforeJoining, []
        return self.limit_error(model, legs)

    @precondition(lambda self: any(e.fields["kind"] in KINDS for e in self.entries.values()))
    @rule(data=st.data())
    def retry_same_entry(self, data: st.DataObject) -> None:
        """Sending a recorded entry again returns it and changes nothing."""
        entry_id = data.draw(
            st.sampled_from(sorted(k for k, e in self.entries.items() if e.fields["kind"] in KINDS))
        )
        f = self.entries[entry_id].fields
        self.record(f["kind"], f["bank"], f["provider"], f["receiver"] or "m0", abs(f["minutes"]),
                    f["minutes"] < 0, f["occurred_on"], entry_id, f["category"])  # fmt: skip

    # --- membership lifecycle ---------------------------------------------------------------
    def status_error(
        self, bank: str, member: str, allowed: set[str]
    ) -> tuple[ModelBank | None, type[Exception] | None]:
        """The bank's model, and the error a lifecycle command from ``allowed``
        states meets first on the bank, the member and their status."""
        model = self.banks.get(bank)
        if model is None:
            return None, errors.BankNotFound
        if model.kinds.get(member) not in ("individual", "organisation"):
            return model, errors.MemberNotFound
        if model.status[member] not in allowed:
            return model, errors.MemberStatusConflict
        return model, None

    def lifecycle(
        self, label: str, bank: str, member: str, allowed: set[str], command: Callable[[], Any]
    ) -> ModelBank | None:
        """Run suspend or reinstate; return the bank's model when it succeeded."""
        model, expected = self.status_error(bank, member, allowed)
        result = self.run(label, expected, command)
        if expected is None:
            assert result.status == {"suspend": "suspended", "reinstate": "active"}[label]
        return model if expected is None else None

    @rule(bank=st.sampled_from(BANKS), member=st.sampled_from(MEMBERS))
    def suspend(self, bank: str, member: str) -> None:
        model = self.lifecycle(
            "suspend", bank, member, {"active"}, lambda: self.tb.suspend(bank, member, actor="c")
        )
        if model is not None:
            model.status[member] = "suspended"

    @rule(bank=st.sampled_from(BANKS), member=st.sampled_from(MEMBERS))
    def reinstate(self, bank: str, member: str) -> None:
        model = self.lifecycle(
            "reinstate",
            bank,
            member,
            {"suspended"},
            lambda: self.tb.reinstate(bank, member, actor="c"),
        )
        if model is not None:
            model.status[member] = "active"

    @rule(
        bank=st.sampled_from(BANKS),
        member=st.sampled_from(MEMBERS),
        day=days,
        donation_id=st.sampled_from(ENTRY_IDS),
    )
    def leave(self, bank: str, member: str, day: date, donation_id: str) -> None:
        model, expected = self.status_error(bank, member, {"active", "suspended"})
        legs: list[tuple[str, int]] = []
        flags: list[str] = []
        if donation_id in self.entries:
            expected = errors.EntryConflict
        elif expected is not None or model is None:
            pass
        elif day > TODAY:
            expected = errors.OccurredInFuture
        elif day < model.periods[member][-1][0]:  # type: ignore[operator]
            expected = errors.OccurredBeforeJoining
        elif member in model.last_entry and model.last_entry[member] > day:
            expected = errors.LeaveBeforeLastEntry
        elif model.policy.on_leave is LeaveRule.DONATE and model.balances[member] > 0:
            legs = [(member, -model.balances[member]), ("@pot", model.balances[member])]
            expected, flags = self.limit_error(model, legs)
        result = self.run(
            "leave",
            expected,
            lambda: self.tb.leave(bank, member, actor="c", left_on=day, donation_id=donation_id),
        )
        if expected is not None or model is None:
            return
        assert result.status == "left"
        if legs:
            fields = {"bank": bank, "kind": "donation", "provider": member, "receiver": None,
                      "category": None, "reverses": None, "minutes": legs[1][1], "occurred_on": day}  # fmt: skip
            self.apply(bank, donation_id, fields, legs)
            assert list(self.tb.entry(donation_id).flags) == flags
        model.status[member] = "left"
        model.periods[member][-1][1] = day

    @rule(bank=st.sampled_from(BANKS), member=st.sampled_from(MEMBERS), day=days)
    def rejoin(self, bank: str, member: str, day: date) -> None:
        model, expected = self.status_error(bank, member, {"left"})
        if expected is not None or model is None:
            pass
        elif day > TODAY:
            expected = errors.OccurredInFuture
        elif day <= model.periods[member][-1][1]:  # type: ignore[operator]
            expected = errors.OccurredBeforeJoining
        result = self.run(
            "rejoin", expected, lambda: self.tb.rejoin(bank, member, actor="c", rejoined_on=day)
        )
        if expected is None and model is not None:
            assert result.status == "active"
            model.status[member] = "active"
            model.periods[member].append([day, None])

    @rule(member=st.sampled_from(MEMBERS))
    def erase(self, member: str) -> None:
        """Erasing a profile changes no balance (checked by the invariants)."""
        event("erase: ok")
        self.tb.erase_member(member, actor="dpo")
        assert self.tb.profile(member) is None

    @rule()
    def restart(self) -> None:
        """Close the store and open it again (the process restarts)."""
        self.tb.close()
        self.tb = self.reopen()

    # --- invariants ----------------------------------------------------------------------
    @invariant()
    def balances_sum_to_zero_and_limits_hold(self) -> None:
        for bank, model in self.banks.items():
            rows = self.tb.balances(bank)
            assert sum(r.balance_minutes for r in rows) == 0
            for row in rows:
                low, high = limits_of(model.policy, row.kind)
                assert row.kind != "pot" or row.balance_minutes >= 0
                if model.policy.limit_mode is LimitMode.REFUSE:
                    assert low is None or row.balance_minutes >= low
                    assert high is None or row.balance_minutes <= high

    @invariant()
    def a_freshly_opened_store_agrees_with_the_model(self) -> None:
        fresh = self.reopen()
        try:
            for bank, model in self.banks.items():
                assert {
                    r.account: r.balance_minutes for r in fresh.balances(bank)
                } == model.balances
                assert {m.member: m.status for m in fresh.members(bank)} == model.status
            assert sorted(b.bank for b in fresh.banks()) == sorted(self.banks)
            for entry_id, entry in self.entries.items():
                assert fresh.entry(entry_id).reversed_by == entry.reversed_by
        finally:
            fresh.close()


class SqliteLedgerMachine(LedgerMachine):
    backend = "sqlite"


TestLedgerOnMemory = LedgerMachine.TestCase
TestLedgerOnMemory.settings = settings(max_examples=EXAMPLES, stateful_step_count=30)
TestLedgerOnSqlite = SqliteLedgerMachine.TestCase
TestLedgerOnSqlite.settings = settings(max_examples=EXAMPLES, stateful_step_count=30)
