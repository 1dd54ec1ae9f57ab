"""The audit: replay a store's event log and check every ledger invariant
(docs/audit.md). It reads the log as stored (the raw JSON, not the banks'
cached state), so an event written around the API is seen; it never writes.

Each problem is a :class:`Finding` with the ids needed to find it; a flagged
limit breach (historic data, or a bank in flag mode) is listed as ``info``.
"""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import attrs
import orjson

from timebank._audit_index import ExpectedIndex, StoredIndex, index_findings, missing_events
from timebank._audit_tables import (
    CONNECTIONS_WAITING,
    STALE,
    Seen,
    TableReplay,
    differences,
    read_tables,
    without_waiting_accounts,
    without_waiting_days,
)
from timebank._event_shapes import DAMAGE, described, shape_problem
from timebank._output import counted
from timebank.domain.bank import PENDING_DAYS, PENDING_FIELDS, Awaiting, MemberStatus
from timebank.domain.errors import EventUnreadable
from timebank.domain.policy import BalanceLimits, Policy
from timebank.domain.registry import REGISTRY_ID
from timebank.domain.roles import Role
from timebank.domain.values import CLEARING_PREFIX, OPENING, POT, AccountKind, EntryKind
from timebank.readmodel import ReadModel, SqliteReadModelDB, no_cyclic_gc
from timebank.readmodel._projector import (
    _ENTRY_TOPICS,
    _REVERSAL_TOPIC,
    LogRecord,
    _bank_topic,
    stored_legs,
)

__all__ = ["AuditReport", "Finding", "LoadedBank", "audit_log"]

#: Events read per batch.
BATCH = 20_000

ERROR, INFO = "error", "info"

ACTIVE, SUSPENDED, LEFT = (MemberStatus.ACTIVE.value, MemberStatus.SUSPENDED.value,
                           MemberStatus.LEFT.value)  # fmt: skip
ADMIN, AWAITING_APPROVAL = Role.ADMIN.value, Awaiting.APPROVAL.value
#: The fields of a pending entry (``Bank.pending``) taken from its
#: ``EntryProposed`` as they are (its days are decoded; who confirmed it
#: comes later).
_PENDING_FIELDS = PENDING_FIELDS - {*PENDING_DAYS, "confirmed_by"}


@attrs.frozen
class Finding:
    """One thing the audit found: ``check`` names the invariant."""

    check: str
    severity: str
    message: str
    ids: dict[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class LoadedBank:
    """A bank as the store loads it (its latest snapshot and the events
    after it): what the audit compares with its replay of the log."""

    balances: dict[str, int]
    #: member -> kind, for the members only (not the pot and system accounts)
    kinds: dict[str, str]
    periods: dict[str, list[list[date | None]]]
    #: member -> ``active``, ``suspended`` or ``left``
    statuses: dict[str, str]
    #: user -> role granted in this bank; member -> guardians
    roles: dict[str, str]
    guardians: dict[str, list[str]]
    #: entry id -> the pending entry's fields (``Bank.pending``)
    pending: dict[str, dict[str, Any]]
    #: member -> the day of their first joining, and of their latest entry
    joined_on: dict[str, date]
    last_occurred_on: dict[str, date]
    #: the bank's name, opening day and count of entries
    details: tuple[str, date, int]
    #: why its latest snapshot was set aside as damaged (it was then
    #: replayed from its events), if it was
    snapshot_damage: str | None = None


@attrs.frozen
class AuditReport:
    """What an audit read and found; ``ok`` when nothing is an error."""

    events: int
    banks: int
    entries: int
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not any(f.severity == ERROR for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "events": self.events, "banks": self.banks, "entries": self.entries,
            "findings": [f.to_dict() for f in self.findings],
        }  # fmt: skip

    def summary(self) -> str:
        """A head line (events, banks, entries; clean or how many problems
        and notes), then one line per finding (what ``timebank audit`` prints)."""
        infos = len(self.findings) - len(self.errors)
        head = (
            f"audit: {counted(self.events, 'event')}, {counted(self.banks, 'bank')},"
            f" {counted(self.entries, 'entry', 'entries')}:"
            f" {'clean' if self.ok else counted(len(self.errors), 'problem')}"
            + (f", {counted(infos, 'note')}" if infos else "")
        )
        lines = [f"{f.severity}: {f.check}: {f.message}" for f in self.findings]
        return "\n".join([head, *lines])


@attrs.define
class _Bank:
    bank_id: str
    policy: Policy
    balances: defaultdict[str, int] = attrs.field(factory=lambda: defaultdict(int))
    kinds: dict[str, str] = attrs.field(factory=dict)
    periods: dict[str, list[list[date | None]]] = attrs.field(factory=dict)
    statuses: dict[str, str] = attrs.field(factory=dict)
    roles: dict[str, str] = attrs.field(factory=dict)
    guardians: dict[str, list[str]] = attrs.field(factory=dict)
    pending: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    joined_on: dict[str, date] = attrs.field(factory=dict)
    last_occurred_on: dict[str, date] = attrs.field(factory=dict)
    name: str = ""
    opened_on: date | None = None
    entries_count: int = 0
    #: account -> its limits under the current policy (emptied when it changes)
    _limits: dict[str, BalanceLimits | None] = attrs.field(factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        """The bank's time zone, in which it dates its days."""
        return ZoneInfo(self.policy.timezone)

    def set_policy(self, policy: Policy) -> None:
        self.policy = policy
        self._limits.clear()

    def joined(self, d: dict[str, Any]) -> None:
        member = d["member_id"]
        self.kinds[member] = d["kind"]
        self._limits.pop(member, None)  # its kind decides its limits
        day = _day(d["joined_on"])
        self.periods[member] = [[day, None]]
        self.joined_on[member] = day
        self.statuses[member] = ACTIVE

    def posted(self, legs: list[tuple[str, int]], parties: list[str], day: date) -> None:
        """An entry of ``day`` with ``legs`` and naming ``parties``: as a bank
        keeps the latest day of each member's entries, and their count."""
        latest, statuses = self.last_occurred_on, self.statuses
        for account in [*(a for a, _ in legs), *parties]:  # as the domain's Bank._post
            if account in statuses and not latest.get(account, day) > day:
                latest[account] = day
        self.entries_count += 1

    def left(self, d: dict[str, Any]) -> None:
        periods = self.periods.get(d["member_id"])
        if periods:
            periods[-1][1] = _day(d["left_on"])
        self.statuses[d["member_id"]] = LEFT

    def rejoined(self, d: dict[str, Any]) -> None:
        periods = self.periods.setdefault(d["member_id"], [])
        periods.append([_day(d["rejoined_on"]), None])
        self.statuses[d["member_id"]] = ACTIVE

    def suspended(self, d: dict[str, Any]) -> None:
        self.statuses[d["member_id"]] = SUSPENDED

    def reinstated(self, d: dict[str, Any]) -> None:
        self.statuses[d["member_id"]] = ACTIVE

    def role_granted(self, d: dict[str, Any]) -> None:
        self.roles[d["user"]] = d["role"]

    def role_revoked(self, d: dict[str, Any]) -> None:
        self.roles.pop(d["user"], None)

    def guardian_appointed(self, d: dict[str, Any]) -> None:
        self.guardians.setdefault(d["member_id"], []).append(d["guardian"])

    def guardian_removed(self, d: dict[str, Any]) -> None:
        guardians = self.guardians.get(d["member_id"], [])
        if d["guardian"] in guardians:
            guardians.remove(d["guardian"])
        if not guardians:
            self.guardians.pop(d["member_id"], None)

    def proposed(self, d: dict[str, Any]) -> None:
        fields = {name: d.get(name) for name in _PENDING_FIELDS}
        for name in PENDING_DAYS:
            fields[name] = _day(d[name])
        self.pending[d["entry_id"]] = {**fields, "confirmed_by": None}

    def confirmed(self, d: dict[str, Any]) -> None:
        found = self.pending.get(d["entry_id"])
        if found is None:
            return
        if d["takes_effect"]:
            del self.pending[d["entry_id"]]
        else:
            found.update(awaiting=AWAITING_APPROVAL, confirmed_by=d["actor"])

    def settled(self, d: dict[str, Any]) -> None:
        """Approved (its entry recorded in the same save), declined or expired."""
        self.pending.pop(d["entry_id"], None)

    def breach(self, account: str, change: int) -> int | None:
        """The limit of ``account`` that ``change`` breaks, from its balance
        before it, or ``None``."""
        try:
            limits = self._limits[account]
        except KeyError:
            limits = self._limits[account] = self.policy.limits_for(self.kind_of(account))
        return None if limits is None else limits.breach(self.balances[account], change)

    def kind_of(self, account: str) -> AccountKind:
        if account == POT:
            return AccountKind.POT
        if account == OPENING:
            return AccountKind.SYSTEM
        if account.startswith(CLEARING_PREFIX):
            return AccountKind.CLEARING
        return AccountKind(self.kinds.get(account, AccountKind.INDIVIDUAL.value))

    def member_on(self, member: str, day: date) -> bool:
        periods = self.periods.get(member)
        if periods is None:
            return False
        for start, end in periods:
            if start is not None and start <= day and (end is None or day <= end):
                return True
        return False


_OPENED, _POLICY_CHANGED = _bank_topic("Opened"), _bank_topic("PolicyChanged")
_INTER_BANK_TOPIC = _bank_topic("InterBankEntryRecorded")

#: The other events that change what the audit compares with a loaded bank.
_BANK_EVENTS: dict[str, Callable[[_Bank, dict[str, Any]], None]] = {
    _bank_topic("MemberJoined"): _Bank.joined,
    _bank_topic("MemberLeft"): _Bank.left,
    _bank_topic("MemberRejoined"): _Bank.rejoined,
    _bank_topic("MemberSuspended"): _Bank.suspended,
    _bank_topic("MemberReinstated"): _Bank.reinstated,
    _bank_topic("RoleGranted"): _Bank.role_granted,
    _bank_topic("RoleRevoked"): _Bank.role_revoked,
    _bank_topic("GuardianAppointed"): _Bank.guardian_appointed,
    _bank_topic("GuardianRemoved"): _Bank.guardian_removed,
    _bank_topic("EntryProposed"): _Bank.proposed,
    _bank_topic("EntryConfirmed"): _Bank.confirmed,
    _bank_topic("EntryApproved"): _Bank.settled,
    _bank_topic("EntryDeclined"): _Bank.settled,
    _bank_topic("PendingEntryExpired"): _Bank.settled,
}
#: Of those, the events that settle a proposal without its taking effect.
_WITHOUT_EFFECT = frozenset({_bank_topic("EntryDeclined"), _bank_topic("PendingEntryExpired")})
_PROPOSED = _bank_topic("EntryProposed")


class _Auditor:
    def __init__(
        self,
        decode_policy: Callable[[bytes], Policy],
        personal: set[str],
        tables: TableReplay | None = None,
    ) -> None:
        self.decode_policy = decode_policy
        self.personal = _encoded(personal)
        #: What the read model's tables must hold, when they are compared
        #: (by a replay that keeps only the books they need: no checks).
        self.tables = tables
        self.checks = tables is None
        self.banks: dict[str, _Bank] = {}  # by stream
        #: entry id -> (stream, topic, what the table replay keeps of it)
        self.entries: dict[str, tuple[str, str, Seen | None]] = {}
        self.reversed_by: dict[str, str] = {}
        self.findings: list[Finding] = []
        self.events = 0
        self.last = 0  # notification id of the last event read
        #: stream -> its events read: the version of the latest (checks only)
        self.versions: dict[str, int] = {}
        #: the entry-index rows of the entries replayed (checks only)
        self.index = ExpectedIndex()
        #: proposals settled without taking effect: entry id -> (stream,
        #: version of the settling event) (checks only)
        self.settled: dict[str, tuple[str, int]] = {}
        #: pending proposals: entry id -> stream (checks only)
        self.proposals: dict[str, str] = {}
        #: entry ids found naming two things (``entry_id_reused``), found once
        self.reused: set[str] = set()
        #: streams with an event left out of the replay (unreadable)
        self.left_out: set[str] = set()
        #: stream -> the stamp of its latest event read (checks only)
        self.stamps: dict[str, str] = {}
        #: stream -> (times it went back, the first: event, its stamp, the one before)
        self.went_back: dict[str, tuple[int, int, str, str]] = {}

    def find(self, check: str, message: str, severity: str = ERROR, **ids: Any) -> None:
        self.findings.append(Finding(check, severity, message, ids))

    def apply(self, records: Sequence[LogRecord]) -> None:
        versions = self.versions if self.checks else None
        for seq, stream, topic, state in records:
            self.events += 1
            self.last = seq
            version = 0
            if versions is not None:
                version = versions[stream] = versions.get(stream, 0) + 1
            if self.personal and _holds_personal(state, self.personal):
                self.find("personal_data", f"event {seq} holds a value of a member's profile",
                          event=seq)  # fmt: skip
            try:
                d = orjson.loads(state)
            except orjson.JSONDecodeError as e:
                problem: str | None = f"its state is not JSON ({e})"
            else:
                # the table replay leaves the event's form to the checking one
                problem = shape_problem(topic, d) if self.checks else None
            if problem is None:
                if self.checks:
                    self._stamped(seq, stream, d)
                try:
                    self._apply(seq, stream, topic, state, d, version)
                    continue
                except DAMAGE as e:  # well formed, but not as the rules read it
                    problem = described(e)
            if self.checks:
                self.left_out.add(stream)
                self.find("event_unreadable",
                          f"event {seq} ({topic.rpartition(':')[2]}) cannot be read: {problem};"
                          " it was left out of the replay", event=seq, topic=topic)  # fmt: skip

    def _stamped(self, seq: int, stream: str, d: dict[str, Any]) -> None:
        """Note where a stream's stamps go back in time (``recorded_out_of_order``)."""
        stamp = d["timestamp"]["_data_"]  # its form is checked (shape_problem)
        before = self.stamps.get(stream)
        self.stamps[stream] = stamp
        if before is None or not _earlier(stamp, before):
            return
        times, *first = self.went_back.get(stream, (0, seq, stamp, before))
        self.went_back[stream] = (times + 1, *first)

    def _apply(
        self, seq: int, stream: str, topic: str, state: bytes, d: dict[str, Any], version: int
    ) -> None:
        """One event, read: what it does to the replay, and what it breaks."""
        if topic in _ENTRY_TOPICS or topic == _REVERSAL_TOPIC:
            bank = self.banks.get(stream)
            if bank is None:
                if self.checks:
                    self.find("unknown_bank", f"event {seq} is an entry of no opened bank",
                              event=seq)  # fmt: skip
                return
            self._entry(seq, stream, bank, topic, d, version)
        elif topic == _OPENED:
            opened = _Bank(d["bank_id"], self.decode_policy(state), name=d["name"],
                           opened_on=_day(d["opened_on"]))  # fmt: skip
            opened.roles[d["actor"]] = ADMIN  # whoever opens a bank is its admin
            self.banks[stream] = opened
        elif topic == _POLICY_CHANGED and stream in self.banks:
            self.banks[stream].set_policy(self.decode_policy(state))
        elif topic in _BANK_EVENTS and stream in self.banks:
            bank = self.banks[stream]
            entry_id = d.get("entry_id")
            if self.checks and topic == _PROPOSED and entry_id is not None:
                named = self._named(entry_id)
                if named:
                    self._reused(entry_id, [*named, "a proposal made after it"],
                                 bank=bank.bank_id, event=seq)  # fmt: skip
            _BANK_EVENTS[topic](bank, d)
            if self.checks and entry_id is not None:
                # where the id is pending, as the bank's own book has it now
                if entry_id in bank.pending:
                    self.proposals[entry_id] = stream
                elif self.proposals.get(entry_id) == stream:
                    del self.proposals[entry_id]
                if topic in _WITHOUT_EFFECT:  # its id stays spent
                    self.settled[entry_id] = (stream, version)

    def _named(self, entry_id: str) -> list[str]:
        """What ``entry_id`` names so far in the replay: a recorded entry, a
        pending proposal, a proposal declined or expired."""
        named = []
        if entry_id in self.entries:
            named.append("a recorded entry")
        if entry_id in self.proposals:
            named.append(f"a pending proposal in {self.banks[self.proposals[entry_id]].bank_id!r}")
        if entry_id in self.settled:
            stream = self.settled[entry_id][0]
            named.append(f"a proposal in {self.banks[stream].bank_id!r} that was declined or"
                         " expired")  # fmt: skip
        return named

    def _reused(self, entry_id: str, named: list[str], **ids: Any) -> None:
        if entry_id not in self.reused:
            self.reused.add(entry_id)
            self.find("entry_id_reused",
                      f"entry id {entry_id!r} names {' and '.join(named)}: an entry id names"
                      " one thing for good", entry_id=entry_id, **ids)  # fmt: skip

    def _entry(
        self, seq: int, stream: str, bank: _Bank, topic: str, d: dict[str, Any], version: int
    ) -> None:
        entry_id = d["entry_id"]
        kind = EntryKind.REVERSAL if topic == _REVERSAL_TOPIC else _ENTRY_TOPICS.get(topic)
        seen = self.entries.get(entry_id)
        legs = stored_legs(kind, d)
        if self.checks:
            self._check(seq, stream, bank, topic, d, seen, legs)
            self._indexed(stream, bank, topic, d, seen, version)
        replayed = None if self.tables is None else self._tables(bank, topic, kind, d, seen, legs)
        if seen is None:
            self.entries[entry_id] = (stream, topic, replayed)
        for account, minutes in legs:
            bank.balances[account] += minutes
        bank.posted(legs, _parties(kind, d, bank.bank_id), _day(d["occurred_on"]))
        if self.checks and bank.balances[POT] < 0:
            self.find("pot_negative",
                      f"the pot of {bank.bank_id!r} is {bank.balances[POT]} minutes after"
                      f" entry {entry_id!r}", bank=bank.bank_id, entry_id=entry_id,
                      event=seq)  # fmt: skip

    def _check(
        self,
        seq: int,
        stream: str,
        bank: _Bank,
        topic: str,
        d: dict[str, Any],
        seen: tuple[str, str, Seen | None] | None,
        legs: list[tuple[str, int]],
    ) -> None:
        """The invariants of one entry event, before its legs are applied."""
        entry_id, day = d["entry_id"], _day(d["occurred_on"])
        ids = {"bank": bank.bank_id, "entry_id": entry_id, "event": seq}
        # an inter-bank entry's two sides, and a reversal of one, share an id
        side = _ENTRY_TOPICS.get(topic) is None
        if seen is not None and (seen[0] == stream or not side or seen[1] != topic):
            self.find("duplicate_entry_id", f"entry id {entry_id!r} is recorded twice", **ids)
        self._future(bank, entry_id, day, d, ids)
        changes = _changes(legs)
        if topic == _REVERSAL_TOPIC:
            self._reversal(entry_id, d["reverses"], seen is not None, ids)
        else:
            for member, _ in changes:
                if not member.startswith("@") and not bank.member_on(member, day):
                    self.find("outside_membership",
                              f"entry {entry_id!r} on {day} is outside the membership"
                              f" of {member!r}",
                              member=member, **ids)  # fmt: skip
        if sum(m for _, m in legs) != 0:
            self.find(
                "unbalanced_entry", f"the legs of entry {entry_id!r} do not sum to zero", **ids
            )
        self._limits(bank, entry_id, changes, d.get("flags"), ids)

    def _indexed(
        self,
        stream: str,
        bank: _Bank,
        topic: str,
        d: dict[str, Any],
        seen: tuple[str, str, Seen | None] | None,
        version: int,
    ) -> None:
        """The entry-index row an entry event makes, as the API writes it
        (``timebank._index``): on the entry's own bank; for an entry between
        two banks, and a reversal of one, once, on its provider's bank (the
        log may hold either bank's side first); a duplicated id once, for
        its first entry."""
        entry_id, index = d["entry_id"], self.index
        reverses = d.get("reverses") if topic == _REVERSAL_TOPIC else None
        if topic == _INTER_BANK_TOPIC:
            home = index.homes[entry_id] = d["provider_bank"]
        elif reverses is not None and reverses in index.homes:  # its side here came first
            home = index.homes[entry_id] = index.homes[reverses]
        else:
            home = None
        if home is not None:
            if home != bank.bank_id or entry_id in index.counted:
                return
            index.counted.add(entry_id)
        elif seen is not None:
            return  # a duplicate: the index holds the first
        index.add(stream, entry_id, version, reverses)

    def _tables(
        self,
        bank: _Bank,
        topic: str,
        kind: EntryKind | None,
        d: dict[str, Any],
        seen: tuple[str, str, Seen | None] | None,
        legs: list[tuple[str, int]],
    ) -> Seen | None:
        """The event to the table replay; what it keeps of a new entry id."""
        assert self.tables is not None
        if topic == _REVERSAL_TOPIC:
            original = self.entries.get(d["reverses"])
            if original is not None and original[2] is not None:
                self.tables.reversal(bank.bank_id, d, original[2], seen is None, legs)
        elif seen is None:
            return self.tables.entry(bank.bank_id, kind, d, legs)
        elif seen[2] is not None:  # the other bank's side (or the id used twice)
            self.tables.side(bank.bank_id, seen[2], d, legs)
        return None

    def _future(
        self, bank: _Bank, entry_id: str, day: date, d: dict[str, Any], ids: dict[str, Any]
    ) -> None:
        stamp = d["timestamp"]["_data_"]
        # a day before the UTC date of recording is before the local one in
        # every time zone: only later days need the bank's zone (most do not)
        if stamp.endswith("+00:00") and d["occurred_on"]["_data_"] < stamp[:10]:
            return
        today = datetime.fromisoformat(stamp).astimezone(bank.zone).date()
        if day > today:
            self.find("future_entry", f"entry {entry_id!r} on {day} was recorded on {today}",
                      **ids)  # fmt: skip

    def _reversal(self, entry_id: str, original: str, again: bool, ids: dict[str, Any]) -> None:
        if original not in self.entries:
            self.find("reversal_of_unknown_entry",
                      f"reversal {entry_id!r} reverses {original!r}, never recorded before it",
                      reverses=original, **ids)  # fmt: skip
        earlier = self.reversed_by.get(original)
        if earlier is not None and earlier != entry_id:
            self.find("reversed_twice",
                      f"entry {original!r} is reversed by {earlier!r} and by {entry_id!r}",
                      reverses=original, **ids)  # fmt: skip
        elif not again:
            self.reversed_by[original] = entry_id

    def _limits(
        self,
        bank: _Bank,
        entry_id: str,
        changes: Iterable[tuple[str, int]],
        flags: list[str] | None,
        ids: dict[str, Any],
    ) -> None:
        for account, change in changes:
            breached = bank.breach(account, change)
            if breached is None:
                continue
            if f"limit:{account}:{breached}" in (flags or ()):
                self.find("limit_flagged",
                          f"entry {entry_id!r} took {account!r} past its limit of {breached}"
                          " minutes (flagged when recorded)", INFO, account=account,
                          **ids)  # fmt: skip
            else:
                self.find("limit_breached",
                          f"entry {entry_id!r} took {account!r} past its limit of {breached}"
                          " minutes with no flag", account=account, **ids)  # fmt: skip

    def finish(self) -> None:
        if self.checks:  # an entry recorded under a proposal's id, before or after it
            for entry_id in sorted(self.proposals.keys() | self.settled.keys()):
                if entry_id in self.entries:
                    self._reused(entry_id, self._named(entry_id))
        for stream, (times, seq, stamp, before) in self.went_back.items():
            bank = self.banks.get(stream)
            where = "the registry" if bank is None else f"bank {bank.bank_id!r}"
            self.find("recorded_out_of_order",
                      f"the log of {where} goes back in time at event {seq}: stamped {stamp},"
                      f" after an event stamped {before} ({counted(times, 'time')} in all):"
                      " a system clock put back by more than a minute, or an edited log",
                      INFO, **({} if bank is None else {"bank": bank.bank_id}), event=seq,
                      times=times)  # fmt: skip
        by_id = {bank.bank_id: bank for bank in self.banks.values()}
        for bank in by_id.values():
            total = sum(bank.balances.values())
            if total != 0:
                self.find("bank_sum", f"the accounts of {bank.bank_id!r} sum to {total}, not 0",
                          bank=bank.bank_id)  # fmt: skip
            for account, minutes in bank.balances.items():
                if not account.startswith(CLEARING_PREFIX):
                    continue
                other = by_id.get(account[len(CLEARING_PREFIX) :])
                mirror = 0 if other is None else other.balances[f"{CLEARING_PREFIX}{bank.bank_id}"]
                if minutes + mirror != 0:
                    self.find("clearing_sum",
                              f"clearing between {bank.bank_id!r} and"
                              f" {account[len(CLEARING_PREFIX):]!r} sums to {minutes + mirror}",
                              bank=bank.bank_id, account=account)  # fmt: skip


#: How the audit compares the read model: its balance and figure tables
#: with the audit's own replay (``figures``, the default), every table row
#: for row with a fresh projection (``full``), or not at all (``None``).
ReadModelCheck = Literal["figures", "full"] | None


def audit_log(
    read_log: Callable[[int, int], Sequence[LogRecord]],
    decode_policy: Callable[[bytes], Policy],
    personal: set[str],
    read_model: ReadModel | None,
    banks: dict[str, LoadedBank | str],
    check: ReadModelCheck = "figures",
    figures: Callable[[], FiguresCompared] | None = None,
    rebuild: str | None = None,
    registry_problem: str | None = None,
    end: int | None = None,
    index: StoredIndex | None = None,
) -> AuditReport:
    """Replay the log through ``read_log`` up to the event ``end`` (its
    notification id: the last event when ``banks`` were loaded; the log's
    end when ``None``) and check every invariant; compare the final state
    of each bank with ``banks`` (as the store loads each bank, or why it
    could not be loaded) and ``read_model`` as ``check`` says. ``figures`` gives the figures
    comparison when another process ran it beside this replay (see
    :mod:`timebank._audit_worker`); without it, it runs here, after.
    ``rebuild`` says why the next catch-up will rebuild the read model
    (then given as ``None``: its tables are not this log's to compare);
    ``registry_problem`` why the registry of banks could not be loaded
    (then ``banks`` is empty); ``index`` what the store's entry and pending
    indexes hold at the moment ``end``, to compare with the replay."""
    auditor = _Auditor(decode_policy, personal)
    with no_cyclic_gc():  # millions of small acyclic objects (see no_cyclic_gc)
        for batch in log_batches(read_log, end):
            auditor.apply(batch)
    auditor.finish()
    replayed = {
        b.bank_id: {a: m for a, m in b.balances.items() if m} for b in auditor.banks.values()
    }
    if registry_problem is not None:
        auditor.find("registry_unreadable",
                     f"the registry of banks cannot be loaded, so no bank was compared as the"
                     f" store loads it: {registry_problem}")  # fmt: skip
    for bank, accounts in banks.items():
        if isinstance(accounts, str):
            auditor.find("bank_unreadable", f"bank {bank!r} cannot be loaded: {accounts}",
                         bank=bank)  # fmt: skip
    loaded = {bank: b for bank, b in banks.items() if not isinstance(b, str)}
    for bank, b in loaded.items():
        if b.snapshot_damage is not None:
            auditor.find("snapshot_damaged",
                         f"the latest snapshot of {bank!r} is damaged ({b.snapshot_damage}):"
                         " it was set aside, the bank replayed from its events, and the next"
                         " command that loads the bank snapshots it afresh; the disk may be"
                         " failing", INFO,
                         bank=bank)  # fmt: skip
    held = {bank: {a: m for a, m in b.balances.items() if m} for bank, b in loaded.items()}
    unreadable = {bank for bank, accounts in banks.items() if isinstance(accounts, str)}
    for bank in sorted((set(replayed) | set(held)) - unreadable):
        if replayed.get(bank, {}) != held.get(bank, {}):
            auditor.find("balances", f"the balances of {bank!r} differ from a replay of the log",
                         bank=bank)  # fmt: skip
    _compare_loaded(auditor, loaded)
    if index is not None:
        _compare_index(auditor, index)
    if read_model is not None and check == "figures":
        position, found = (
            figures() if figures else compare_figures(read_log, decode_policy, read_model)
        )
        auditor.findings += found
        _note_behind(auditor, position)
    if read_model is not None and check == "full":
        _compare_read_model(auditor, read_model, read_log)
    if rebuild is not None:
        auditor.find("read_model_rebuild",
                     f"the read model is rebuilt from the log when next read ({rebuild});"
                     " its tables were not compared", INFO)  # fmt: skip
    entries = len(auditor.entries)
    return AuditReport(auditor.events, len(auditor.banks), entries, tuple(auditor.findings))


def _compare_index(auditor: _Auditor, index: StoredIndex) -> None:
    """The store's entry, pending and settled indexes against the replay's."""
    pending = [(e, stream) for stream, b in auditor.banks.items() for e in b.pending]
    bank_ids = {stream: b.bank_id for stream, b in auditor.banks.items()}
    for message, ids in missing_events(index, bank_ids, REGISTRY_ID.hex):
        auditor.find("event_missing", message, **ids)
    settled = [(e, stream, version) for e, (stream, version) in auditor.settled.items()]
    for check, message, ids in index_findings(
        auditor.index, auditor.entries, pending, settled, index, bank_ids, auditor.left_out
    ):
        auditor.find(check, message, **ids)


def _compare_loaded(auditor: _Auditor, loaded: dict[str, LoadedBank]) -> None:
    """A finding for each bank whose state, as the store loads it, differs
    from the replay's: its name, opening day and count of entries; its
    members (kind, membership periods, status, first joining, latest
    entry's day); its roles and guardians; its pending entries. (Balances
    are compared by the caller.)"""
    replayed = {b.bank_id: b for b in auditor.banks.values()}
    for bank in sorted(set(replayed) & set(loaded)):
        ours, held = replayed[bank], loaded[bank]
        if (ours.name, ours.opened_on, ours.entries_count) != held.details:
            auditor.find("bank_details",
                         f"the name, opening day or count of entries of {bank!r} as the store"
                         f" loads it ({held.details}) differ from a replay of the log"
                         f" ({(ours.name, ours.opened_on, ours.entries_count)})",
                         bank=bank)  # fmt: skip
        for check, what, key, mine, theirs in (
            ("bank_members", "members", "member", _members(ours), _members(held)),
            ("bank_roles", "roles and guardians", "user", _access(ours), _access(held)),
            ("bank_pending", "pending entries", "entry_id", ours.pending, held.pending),
        ):
            differ = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            if differ:
                auditor.find(
                    check,
                    f"the {what} of {bank!r} as the store loads them differ from a replay of the"
                    f" log: {len(differ)} ({key} {differ[0]!r} first)",
                    bank=bank, **{key: differ[0]},
                )  # fmt: skip


def _members(bank: _Bank | LoadedBank) -> dict[str, tuple[Any, ...]]:
    return {
        m: (
            bank.kinds.get(m),
            periods,
            bank.statuses.get(m),
            bank.joined_on.get(m),
            bank.last_occurred_on.get(m),
        )
        for m, periods in bank.periods.items()
    }


def _parties(kind: EntryKind | None, d: dict[str, Any], bank_id: str) -> list[str]:
    """The parties a stored entry event names on ``bank_id`` beyond its
    legs' accounts (the domain's ``parties_on``), keyed as ``stored_legs``
    is: an inter-bank side's (``kind`` None) on this bank; none for a group
    or a reversal (their legs are their parties); else its two parties."""
    if kind is None:
        sides = ((d["provider"], d["provider_bank"]), (d["receiver"], d["receiver_bank"]))
        return [party for party, bank in sides if party is not None and bank == bank_id]
    if kind is EntryKind.GROUP_EXCHANGE or kind is EntryKind.REVERSAL:
        return []
    return [p for p in (d["provider"], d["receiver"]) if p is not None]


def _access(bank: _Bank | LoadedBank) -> dict[str, tuple[Any, ...]]:
    users = bank.roles.keys() | bank.guardians.keys()
    return {u: (bank.roles.get(u), bank.guardians.get(u)) for u in users}


#: The read model's position, and what comparing its figure tables found.
FiguresCompared = tuple[int, list[Finding]]


def compare_figures(
    read_log: Callable[[int, int], Sequence[LogRecord]],
    decode_policy: Callable[[bytes], Policy],
    read_model: ReadModel,
) -> FiguresCompared:
    """Compare the read model's balance and figure tables with a replay of
    the log up to the read model's own position (read with the tables, in
    one snapshot): a replay that keeps only the books those tables need."""
    replay = _Auditor(decode_policy, set(), TableReplay())
    with no_cyclic_gc():
        position, tables = read_tables(read_model)
        for batch in log_batches(read_log, position):
            replay.apply(batch)
        _compare_tables(replay, position, tables)
    return position, replay.findings


def _note_behind(auditor: _Auditor, position: int) -> None:
    if position < auditor.last:
        auditor.find("read_model_behind",
                     f"the read model has read {position:,} of {auditor.last:,} events"
                     " (it catches up when next read); compared up to there", INFO)  # fmt: skip


def _note_settling(
    auditor: _Auditor, waiting: Mapping[str, Sized], connections_waiting: Sized
) -> None:
    accounts, pairs = len(waiting["rm_activity"]), len(waiting["rm_pairs"])
    if accounts or pairs:
        auditor.find("read_model_settling",
                     f"{counted(accounts, 'account')} and {counted(pairs, 'pair')} wait for the"
                     " end of a read-model catch-up to settle their first and last exchange days;"
                     " their counts were compared, not those days", INFO)  # fmt: skip
    if connections_waiting:
        auditor.find("read_model_settling",
                     "accounts wait for the end of a read-model catch-up to settle their"
                     " connections (rm_stale_connections); their rm_connections rows were"
                     " not compared", INFO)  # fmt: skip


def _compare_tables(auditor: _Auditor, position: int, tables: dict[str, Any]) -> None:
    """The read model's balance and figure tables against the replay, which
    has read the log up to the read model's ``position``."""
    if not tables:  # never built
        return
    assert auditor.tables is not None
    banks = auditor.banks.values()
    expected = auditor.tables.expected(
        {(b.bank_id, a): m for b in banks for a, m in b.balances.items()},
        [
            (
                b.bank_id,
                member,
                start.isoformat(),
                b.kinds[member],
                None if end is None else end.isoformat(),
            )
            for b in banks
            for member, periods in b.periods.items()
            for start, end in periods
            if start is not None
        ],
    )
    waiting = {table: tables.get(stale, {}) for table, stale in STALE.items()}
    connections_waiting = tables.get(CONNECTIONS_WAITING, {})
    _note_settling(auditor, waiting, connections_waiting)
    for table, replayed in expected.items():
        ours, theirs = tables[table], replayed
        if table == "rm_connections":
            ours = without_waiting_accounts(ours, connections_waiting)
            theirs = without_waiting_accounts(theirs, connections_waiting)
        elif waiting.get(table):
            ours = without_waiting_days(ours, waiting[table])
            theirs = without_waiting_days(theirs, waiting[table])
        keys = differences(ours, theirs)
        if keys:
            auditor.find("read_model",
                         f"read-model table {table} differs from a replay of the log"
                         f" (at event {position:,}) in {counted(len(keys), 'row')},"
                         f" first {keys[0]}",
                         table=table, rows=len(keys), first=list(keys[0]))  # fmt: skip


def _compare_read_model(
    auditor: _Auditor, model: ReadModel, read_log: Callable[[int, int], Sequence[LogRecord]]
) -> None:
    """The read model's tables against a fresh projection of the log up to
    the same position (in memory; the read model itself is not touched)."""
    with model.db.snapshot():  # another process catching it up meanwhile changes neither
        position, ours = model.position(), model.tables()
    _note_behind(auditor, position)

    def upto(after: int, limit: int) -> Sequence[LogRecord]:
        return [r for r in read_log(after, limit) if r[0] <= position]

    fresh = ReadModel(SqliteReadModelDB(None), upto)
    try:
        fresh.catch_up()
        theirs = fresh.tables()
    except EventUnreadable as e:  # found as event_unreadable by the replay
        auditor.find("read_model_unchecked",
                     f"the read model was not compared row for row: {e}", INFO)  # fmt: skip
        return
    finally:
        fresh.close()
    waiting = {table: set(ours.pop(stale, [])) for table, stale in STALE.items()}
    connections_waiting = set(ours.pop(CONNECTIONS_WAITING, []))
    for stale in (*STALE.values(), CONNECTIONS_WAITING):
        theirs.pop(stale, None)  # settled at the end of its own catch-up: empty
    _note_settling(auditor, waiting, connections_waiting)
    for tables in (ours, theirs):
        rows = tables.get("rm_connections", [])
        kept = without_waiting_accounts({row[:2]: row for row in rows}, connections_waiting)
        tables["rm_connections"] = [row for row in rows if row[:2] in kept]
    for table, keys in waiting.items():
        width = len(next(iter(keys), ()))
        for tables in (ours, theirs):
            tables[table] = [
                (*row[:width], row[width], None, None) if row[:width] in keys else row
                for row in tables.get(table, [])
            ]
    for table in sorted(set(ours) | set(theirs)):
        if ours.get(table) != theirs.get(table):
            auditor.find("read_model", f"read-model table {table} differs from a fresh projection"
                         f" of the log (at event {position:,})", table=table)  # fmt: skip


def _changes(legs: list[tuple[str, int]]) -> Iterable[tuple[str, int]]:
    """Each account an entry's legs move, with its change."""
    if len(legs) == 2 and legs[0][0] != legs[1][0]:  # most entries: two accounts
        return legs
    totals: dict[str, int] = {}
    for account, minutes in legs:
        totals[account] = totals.get(account, 0) + minutes
    return totals.items()


def log_batches(
    read_log: Callable[[int, int], Sequence[LogRecord]], end: int | None = None
) -> Iterator[Sequence[LogRecord]]:
    """The log up to the event ``end`` (a notification id; the log's end
    when ``None``), a batch at a time; the next batch is read on another
    thread while this one is checked (the database works without holding
    Python's lock, so the read overlaps the checks: about 10 % at a million
    entries)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-read") as reader:
        ahead = reader.submit(read_log, 0, BATCH)
        while True:
            records = ahead.result()
            more = len(records) == BATCH
            if end is not None and records and records[-1][0] >= end:
                records, more = [r for r in records if r[0] <= end], False
            if not records:
                return
            if more:
                ahead = reader.submit(read_log, records[-1][0], BATCH)
            yield records
            if not more:
                return


def _earlier(stamp: str, than: str) -> bool:
    """Whether one stamp (ISO) is before another: as text when both are in
    UTC, as timebank writes them, else as times."""
    if stamp.endswith("+00:00") and than.endswith("+00:00"):
        return stamp < than  # "…:00+00:00" sorts before "…:00.000001+00:00", as it should
    return datetime.fromisoformat(stamp) < datetime.fromisoformat(than)


def _day(value: Any) -> date:
    return _iso_day(str(value["_data_"]))


@functools.cache
def _iso_day(text: str) -> date:
    """A day's ISO text read once (a million entries fall on a few thousand
    days)."""
    return date.fromisoformat(text)


#: A JSON string as stored (its escaped text), and the colon after a key.
_STRINGS = re.compile(rb'"((?:[^"\\]|\\.)*)"(\s*:)?')


def _holds_personal(state: bytes, personal: frozenset[bytes]) -> bool:
    """Whether a string value (not a key) of the stored JSON ``state`` is one
    of ``personal`` (as :func:`_encoded` gives them)."""
    # with no escape, every '"' starts or ends a string: the strings, keys
    # too, are every other piece, looked up in C; only a hit (or an escape)
    # needs the regex, which tells values from keys (~15 us an event)
    if b"\\" not in state and personal.isdisjoint(state.split(b'"')[1::2]):
        return False
    return not personal.isdisjoint(_string_values(state))


def _string_values(state: bytes) -> set[bytes]:
    """The text of every JSON string in ``state`` that is a value, not a key."""
    return {text for text, key in _STRINGS.findall(state) if not key}


def _encoded(values: set[str]) -> frozenset[bytes]:
    """Each value as a JSON string's text may hold it: as the library's
    encoder writes it (UTF-8), with every non-ASCII character escaped, and as
    orjson writes it (events written around the API)."""
    return frozenset(
        form
        for value in values
        for form in (
            json.dumps(value, ensure_ascii=False)[1:-1].encode(),
            json.dumps(value)[1:-1].encode(),
            orjson.dumps(value)[1:-1],
        )
    )
