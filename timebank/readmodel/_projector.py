"""Applies stored events to the read model's tables, a batch at a time.

The projector reads each event's stored JSON directly (with orjson) rather
than decoding it into a domain object: decoding costs tens of microseconds
an event, and a read model of a million entries must catch up in seconds.
The legs of an entry still come from the domain's own rules
(:func:`~timebank.domain.entries.legs_for`), and the tests check that every
balance in the read model equals the ledger's.

Within a batch, the rows of new entries are collected and the additive
tables (balances, daily totals, activity, pairs) are summed in dictionaries,
then written with one ``upsert_rows`` each (an ``executemany`` on SQLite,
one statement of column arrays on PostgreSQL); the caller commits them with the
new position in one transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from eventsourcing.utils import get_topic

from timebank._event_shapes import DAMAGE, DAMAGED_CURE, described
from timebank.domain.bank import Bank
from timebank.domain.entries import legs_for
from timebank.domain.errors import EventUnreadable, ReadModelError
from timebank.domain.registry import Registry
from timebank.domain.values import CLEARING_PREFIX, OPENING, POT, EntryKind
from timebank.readmodel._db import ReadModelDB

__all__ = [
    "EVERY_ACCOUNT",
    "SERVICE_KINDS",
    "TOOK_PART",
    "WAITING_TABLES",
    "Projector",
    "UnknownEvent",
    "every_account_waits",
    "settle_connections",
    "settle_spans",
    "stored_legs",
]

#: Kinds of entry that are service exchanges in every figure.
SERVICE_KINDS = frozenset(
    {EntryKind.EXCHANGE.value, EntryKind.POT_EXCHANGE.value, EntryKind.GROUP_EXCHANGE.value}
)

#: A party row of a service exchange that stands (not reversed), as its
#: provider or receiver.
TOOK_PART = (
    "reversed = 0 AND kind IN ('exchange', 'pot_exchange', 'group_exchange')"
    " AND role IN ('provider', 'receiver')"
)

#: A stored event: (notification id, stream id as hex, topic, JSON state).
LogRecord = tuple[int, str, str, bytes]


class UnknownEvent(ReadModelError):
    """The log holds an event this version of the read model does not know."""

    code = "unknown_event"


def _bank_topic(name: str) -> str:
    """Topic of a Bank event declared by the library's ``@event`` decorator
    (those are not attributes the type checker can see)."""
    return f"{get_topic(Bank)}.{name}"


def _registry_topic(name: str) -> str:
    return f"{get_topic(Registry)}.{name}"


_ENTRY_TOPICS: dict[str, EntryKind | None] = {
    get_topic(cls): cls.KIND
    for cls in (
        Bank.ExchangeRecorded,
        Bank.PotExchangeRecorded,
        Bank.DonationMade,
        Bank.GiftGiven,
        Bank.OpeningBalanceCarried,
        Bank.GroupExchangeRecorded,
    )
}
_ENTRY_TOPICS[get_topic(Bank.InterBankEntryRecorded)] = None
_KIND_VALUES = {kind: kind.value for kind in EntryKind}
_POT_EXCHANGE = EntryKind.POT_EXCHANGE.value
_DONATION = EntryKind.DONATION.value
_REVERSAL_TOPIC = get_topic(Bank.EntryReversed)

#: Events that change nothing the read model holds (roles, guardians,
#: pending entries until they take effect, the registry's own records).
_IGNORED = frozenset(
    [
        *map(
            _bank_topic,
            (
                "RoleGranted",
                "RoleRevoked",
                "GuardianAppointed",
                "GuardianRemoved",
                "EntryProposed",
                "EntryConfirmed",
                "EntryApproved",
                "EntryDeclined",
                "PendingEntryExpired",
            ),
        ),
        *map(_registry_topic, ("Created", "BankRegistered", "MemberErased")),
    ]
)


def stored_legs(kind: EntryKind | None, d: dict[str, Any]) -> list[tuple[str, int]]:
    """The legs a stored entry event moved on its bank, from its JSON: an
    inter-bank side's (``kind`` None), a group's participants, a reversal's
    reversed legs, or the domain's legs for the kind."""
    if kind is None:
        return [(str(a), int(m)) for a, m in d["side_legs"]]
    if kind is EntryKind.GROUP_EXCHANGE:
        return [(str(a), int(m)) for a, m in d["participants"]]
    if kind is EntryKind.REVERSAL:
        return [(str(a), int(m)) for a, m in d["reversed_legs"]]
    return legs_for(kind, d.get("provider"), d.get("receiver"), d["minutes"])


def _day(value: Any) -> str:
    """A date as the JSON transcoder stored it: ``{"_type_": ..., "_data_": "2026-01-31"}``."""
    return str(value["_data_"])


def _account_kind(account: str) -> str:
    if account == POT:
        return "pot"
    if account == OPENING:
        return "opening"
    if account.startswith(CLEARING_PREFIX):
        return "clearing"
    return "member"


class _Entry:
    """What the projector remembers of an entry while reversing it."""

    __slots__ = (
        "bank",
        "category",
        "entry_id",
        "kind",
        "minutes",
        "occurred_on",
        "provider",
        "receiver",
        "receiver_bank",
        "roles",
        "seq",
        "service",
    )

    def __init__(
        self,
        seq: int,
        entry_id: str,
        kind: str,
        bank: str,
        receiver_bank: str | None,
        occurred_on: str,
        minutes: int,
        category: str | None,
        provider: str | None,
        receiver: str | None,
    ) -> None:
        #: Notification id of the entry's first event (its ``rm_entries`` key).
        self.seq = seq
        self.entry_id = entry_id
        self.kind = kind
        self.bank = bank
        self.receiver_bank = receiver_bank
        self.occurred_on = occurred_on
        self.minutes = minutes
        self.category = category
        self.provider = provider
        self.receiver = receiver
        #: (bank, account) -> role, for every party row of the entry.
        self.roles: dict[tuple[str, str], str] = {}
        #: Service participants: providers and receivers as (bank, account).
        self.service: tuple[list[tuple[str, str]], list[tuple[str, str]]] = ([], [])

    @property
    def daily_key(self) -> tuple[str, str, str, str, str]:
        return (
            self.bank,
            self.receiver_bank or "",
            self.occurred_on,
            self.kind,
            self.category or "",
        )


class Projector:
    """Applies one batch of events; :meth:`flush` writes what it collected."""

    def __init__(
        self, db: ReadModelDB, banks: dict[str, str], *, every_connection_waits: bool = False
    ) -> None:
        self.db = db
        #: Bank stream (hex) -> bank id, for events that do not name their bank.
        self.banks = banks
        #: Every account's rm_connections row waits for the end of the
        #: catch-up (a catch-up from empty): none is marked one by one.
        self.every_connection_waits = every_connection_waits
        self._entries: dict[str, list[Any]] = {}
        self._infos: dict[str, _Entry] = {}
        self._parties: dict[tuple[str, str, str], list[Any]] = {}
        self._pot_flows: dict[tuple[str, str], list[Any]] = {}
        self._balances: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._daily: dict[tuple[str, str, str, str, str], list[int]] = {}
        self._monthly: dict[tuple[str, str, str, str, str], list[int]] = {}
        self._pot_daily: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._pair_days: defaultdict[tuple[str, str, str, str, str], int] = defaultdict(int)
        self._pairs: dict[tuple[str, ...], list[Any]] = {}
        self._recompute_pairs: set[tuple[str, ...]] = set()
        self._activities: dict[tuple[str, ...], list[Any]] = {}
        self._recompute_activities: set[tuple[str, ...]] = set()

    # --- dispatch ----------------------------------------------------------------
    def apply(self, records: Iterable[LogRecord]) -> None:
        """Apply ``records`` in order. :class:`UnknownEvent` for a topic of a
        later version; :class:`~timebank.errors.EventUnreadable` for an event
        that cannot be read (damaged), with nothing of the batch kept by the
        caller's transaction."""
        entry_topics = _ENTRY_TOPICS
        seq, topic = 0, ""
        try:
            for seq, stream, topic, state in records:
                if topic in entry_topics:
                    self._entry(seq, self.banks[stream], entry_topics[topic], orjson.loads(state))
                elif topic == _REVERSAL_TOPIC:
                    self._reversal(seq, self.banks[stream], orjson.loads(state))
                elif topic in _HANDLERS:
                    _HANDLERS[topic](self, stream, orjson.loads(state))
                elif topic not in _IGNORED:
                    raise UnknownEvent(
                        f"event {seq} has topic {topic!r}, which this version of the read"
                        " model does not know: upgrade timebank"
                    )
        except DAMAGE as e:  # (orjson's JSONDecodeError is a ValueError)
            raise EventUnreadable(
                f"the read model cannot apply event {seq} ({topic.rpartition(':')[2]}): it is"
                f" damaged ({described(e)}). {DAMAGED_CURE}"
            ) from e

    # --- banks and members ---------------------------------------------------------
    def _opened(self, stream: str, d: dict[str, Any]) -> None:
        bank = d["bank_id"]
        self.banks[stream] = bank
        parent = bank.rsplit("/", 1)[0] if "/" in bank else None
        self.db.execute(
            "INSERT INTO rm_banks VALUES (?, ?, ?, ?, ?, ?)",
            (bank, stream, parent, d["name"], _day(d["opened_on"]), _policy(d["policy"])),
        )
        for account, kind in ((POT, "pot"), (OPENING, "opening")):
            self.db.execute(
                "INSERT INTO rm_accounts VALUES (?, ?, ?, 0, NULL, NULL)", (bank, account, kind)
            )

    def _policy_changed(self, stream: str, d: dict[str, Any]) -> None:
        self.db.execute(
            "UPDATE rm_banks SET policy = ? WHERE stream = ?", (_policy(d["policy"]), stream)
        )

    def _joined(self, stream: str, d: dict[str, Any]) -> None:
        bank, member, day = self.banks[stream], d["member_id"], _day(d["joined_on"])
        self.db.execute(
            "INSERT INTO rm_accounts VALUES (?, ?, ?, 0, 'active', ?)",
            (bank, member, d["kind"], day),
        )
        self.db.execute(
            "INSERT INTO rm_memberships VALUES (?, ?, ?, ?, NULL)", (bank, member, d["kind"], day)
        )

    def _status(self, stream: str, member: str, status: str) -> None:
        self.db.execute(
            "UPDATE rm_accounts SET status = ? WHERE bank = ? AND account = ?",
            (status, self.banks[stream], member),
        )

    def _suspended(self, stream: str, d: dict[str, Any]) -> None:
        self._status(stream, d["member_id"], "suspended")

    def _reinstated(self, stream: str, d: dict[str, Any]) -> None:
        self._status(stream, d["member_id"], "active")

    def _left(self, stream: str, d: dict[str, Any]) -> None:
        self._status(stream, d["member_id"], "left")
        self.db.execute(
            "UPDATE rm_memberships SET ended_on = ?"
            " WHERE bank = ? AND member = ? AND ended_on IS NULL",
            (_day(d["left_on"]), self.banks[stream], d["member_id"]),
        )

    def _rejoined(self, stream: str, d: dict[str, Any]) -> None:
        bank, member = self.banks[stream], d["member_id"]
        self._status(stream, member, "active")
        kind = self.db.execute(
            "SELECT kind FROM rm_accounts WHERE bank = ? AND account = ?", (bank, member)
        )[0][0]
        self.db.execute(
            "INSERT INTO rm_memberships VALUES (?, ?, ?, ?, NULL)",
            (bank, member, kind, _day(d["rejoined_on"])),
        )

    # --- entries ---------------------------------------------------------------------
    def _entry(self, seq: int, bank: str, kind: EntryKind | None, d: dict[str, Any]) -> None:  # noqa: PLR0912 - one loop, kept flat for speed
        entry_id = d["entry_id"]
        provider = d.get("provider")
        receiver = d.get("receiver")
        if kind is None:  # one side of an inter-bank entry
            kind_value = d["kind"]
            home, other = d["provider_bank"], d["receiver_bank"]
            group: list[list[Any]] = []
        else:
            kind_value = _KIND_VALUES[kind]
            home, other = bank, None
            group = d["participants"] if kind is EntryKind.GROUP_EXCHANGE else []
        if kind_value == _DONATION:
            receiver = None  # an import once stored the pot as its receiver
        legs = stored_legs(kind, d)
        info = self._infos.get(entry_id)
        if info is None and (other is None or not self._known(entry_id)):
            info = self._new_entry(seq, kind_value, home, other, provider, receiver, group, d)
        elif info is None:
            info = self._load(entry_id)
        if other is not None:
            self._side(info, bank, d)
        day, category, roles = info.occurred_on, info.category, info.roles
        parties, balances = self._parties, self._balances
        for position, (account, amount) in enumerate(legs):
            if account[0] == "@":
                role = _account_kind(account)
            elif kind is None:
                role = _role(account, amount, bank, info)
            elif group:
                role = "provider" if amount > 0 else "receiver"
            else:  # legs_for gives the provider's leg first, then the other party's
                role = "receiver" if position else "provider"
            roles[bank, account] = role
            parties[entry_id, bank, account] = [
                entry_id, bank, account, role, amount, seq, info.seq, day, kind_value, category,
                position, 0,
            ]  # fmt: skip
            balances[bank, account] += amount
            if role == "pot":
                self._pot_flows[entry_id, bank] = [entry_id, bank, day, kind_value, amount, 0]
                self._pot_daily[bank, day] += amount
        if (
            kind_value == _POT_EXCHANGE
            and receiver is not None
            and (other or bank) == bank
            and (bank, receiver) not in roles
        ):  # helped, paid for by the pot: a party with no leg
            roles[bank, receiver] = "receiver"
            self._party(entry_id, bank, receiver, "receiver", 0, seq, info, None)
        if kind_value in SERVICE_KINDS:
            self._active(info, bank, 1)

    def _new_entry(
        self,
        seq: int,
        kind: str,
        home: str,
        other: str | None,
        provider: str | None,
        receiver: str | None,
        group: list[list[Any]],
        d: dict[str, Any],
    ) -> _Entry:
        entry_id = d["entry_id"]
        info = _Entry(
            seq, entry_id, kind, home, other, _day(d["occurred_on"]), d["minutes"],
            d["category"], provider, receiver,
        )  # fmt: skip
        self._add_entry(info, None, d)
        self._count(info, 1)
        if kind in SERVICE_KINDS:
            if group:
                info.service = (
                    [(home, str(a)) for a, m in group if m > 0],
                    [(home, str(a)) for a, m in group if m < 0],
                )
            else:
                info.service = ([(home, str(provider))], [(other or home, str(receiver))])
            self._connect(info, 1)
        return info

    def _reversal(self, seq: int, bank: str, d: dict[str, Any]) -> None:
        entry_id, original_id = d["entry_id"], d["reverses"]
        original = self._infos.get(original_id) or self._load(original_id)
        info = self._infos.get(entry_id)
        if info is None and not self._known(entry_id):
            info = _Entry(
                seq, entry_id, EntryKind.REVERSAL.value, original.bank, original.receiver_bank,
                _day(d["occurred_on"]), d["minutes"], d["category"],
                original.provider, original.receiver,
            )  # fmt: skip
            self._add_entry(info, original_id, d)
            self._mark_reversed(original_id, entry_id)
            self._count(original, -1)
            if original.kind in SERVICE_KINDS:
                self._connect(original, -1)
        elif info is None:
            info = self._load(entry_id)
        if info.receiver_bank is not None:
            self._side(info, bank, d)
        if original.kind in SERVICE_KINDS:
            self._active(original, bank, -1)
        for position, (account, amount) in enumerate(stored_legs(EntryKind.REVERSAL, d)):
            role = original.roles.get((bank, account)) or _role(account, amount, bank, info)
            info.roles[bank, account] = role
            self._party(entry_id, bank, account, role, amount, seq, info, position)
            if account == POT:
                self._pot_flows[entry_id, bank] = [
                    entry_id, bank, info.occurred_on, info.kind, amount, 0,
                ]  # fmt: skip
                self._pot_daily[bank, info.occurred_on] += amount
        receiver = original.receiver
        if (
            original.kind == _POT_EXCHANGE
            and receiver is not None
            and (original.receiver_bank or original.bank) == bank
            and (bank, receiver) not in info.roles
        ):  # the person helped sees the reversal too, as they saw the entry
            info.roles[bank, receiver] = "receiver"
            self._party(entry_id, bank, receiver, "receiver", 0, seq, info, None)
        for party_bank, account in original.roles:
            if party_bank == bank:
                self._set_reversed(
                    "rm_entry_parties",
                    self._parties,
                    (original_id, bank, account),
                    ("entry_seq", original.seq),
                )
        self._set_reversed(
            "rm_pot_flows", self._pot_flows, (original_id, bank), ("entry_id", original_id)
        )

    def _add_entry(self, info: _Entry, reverses: str | None, d: dict[str, Any]) -> None:
        """Remember the entry and its ``rm_entries`` row (written at the flush)."""
        self._infos[info.entry_id] = info
        self._entries[info.entry_id] = [
            info.entry_id, info.seq, info.bank, info.receiver_bank, info.kind, info.occurred_on,
            info.minutes, info.category, info.provider, info.receiver, reverses, None,
            d["timestamp"]["_data_"], d["actor"], d["on_behalf_of"], _flags(d), None, None,
        ]  # fmt: skip

    def _side(self, info: _Entry, bank: str, d: dict[str, Any]) -> None:
        """Keep one side of an inter-bank entry's own recording time and limit
        flags: each bank records its side at its own moment and checks its
        own accounts' limits."""
        provider_side = bank == info.bank
        values = (d["timestamp"]["_data_"], _flags(d))
        row = self._entries.get(info.entry_id)
        if row is not None:
            first = 12 if provider_side else 16
            row[first], row[first + (3 if provider_side else 1)] = values
            return
        columns = (
            "recorded_at = ?, flags = ?"
            if provider_side
            else ("receiver_recorded_at = ?, receiver_flags = ?")
        )
        self.db.execute(
            f"UPDATE rm_entries SET {columns} WHERE entry_id = ?",  # noqa: S608 - fixed names
            (*values, info.entry_id),
        )

    def _set_reversed(
        self,
        table: str,
        pending: dict[Any, list[Any]],
        key: tuple[str, ...],
        entry: tuple[str, Any],
    ) -> None:
        """Mark a row reversed: in the batch's ``pending`` rows by ``key``
        (entry id, bank, and account if the table has one), or in ``table``
        by ``entry`` (the column that names the entry there, and its value)
        with the rest of ``key``."""
        row = pending.get(key)
        if row is not None:
            row[-1] = 1
            return
        column, value = entry
        where = " AND ".join(f"{c} = ?" for c in (column, "bank", "account")[: len(key)])
        self.db.execute(
            f"UPDATE {table} SET reversed = 1 WHERE {where}",  # noqa: S608 - fixed names
            (value, *key[1:]),
        )

    def _mark_reversed(self, original_id: str, reversal_id: str) -> None:
        row = self._entries.get(original_id)
        if row is not None:
            row[11] = reversal_id
        else:
            self.db.execute(
                "UPDATE rm_entries SET reversed_by = ? WHERE entry_id = ?",
                (reversal_id, original_id),
            )

    def _party(
        self,
        entry_id: str,
        bank: str,
        account: str,
        role: str,
        amount: int,
        seq: int,
        info: _Entry,
        leg: int | None,
    ) -> None:
        self._parties[entry_id, bank, account] = [
            entry_id, bank, account, role, amount, seq, info.seq, info.occurred_on, info.kind,
            info.category, leg, 0,
        ]  # fmt: skip
        self._balances[bank, account] += amount

    def _count(self, info: _Entry, sign: int) -> None:
        bank, far, day, kind, category = info.daily_key
        minutes = sign * info.minutes
        for table, row in (
            (self._daily, (bank, far, day, kind, category)),
            (self._monthly, (bank, far, day[:7], kind, category)),
        ):
            totals = table.get(row)
            if totals is None:
                table[row] = [sign, minutes]
            else:
                totals[0] += sign
                totals[1] += minutes

    def _active(self, info: _Entry, bank: str, sign: int) -> None:
        """Count the entry's participants in ``bank`` (``sign`` -1: a reversal
        takes them out). Each bank's side of an inter-bank entry counts its own
        accounts when its own event is applied, so that an account's first and
        last days, recomputed from its rows, always agree with its count."""
        providers, receivers = info.service
        for account in {*providers, *receivers}:
            if account[0] == bank:
                _add_span(
                    self._activities, self._recompute_activities, account, sign, info.occurred_on
                )

    def _connect(self, info: _Entry, sign: int) -> None:
        """Count the entry's provider-receiver pairs, once per entry (``sign``
        -1: a reversal takes them out)."""
        providers, receivers = info.service
        day = info.occurred_on
        pair_days = self._pair_days
        for p in providers:
            for r in receivers:
                pair = (*p, *r) if p < r else (*r, *p)
                pair_days[(*pair, day)] += sign
                _add_span(self._pairs, self._recompute_pairs, pair, sign, day)

    # --- entries written in an earlier batch ----------------------------------------
    def _known(self, entry_id: str) -> bool:
        return bool(self.db.execute("SELECT 1 FROM rm_entries WHERE entry_id = ?", (entry_id,)))

    def _load(self, entry_id: str) -> _Entry:
        rows = self.db.execute(
            "SELECT seq, kind, bank, receiver_bank, occurred_on, minutes, category, provider,"
            " receiver FROM rm_entries WHERE entry_id = ?",
            (entry_id,),
        )
        if not rows:
            raise UnknownEvent(f"the log reverses or repeats entry {entry_id!r}, never recorded")
        seq, kind, bank, receiver_bank, day, minutes, category, provider, receiver = rows[0]
        info = _Entry(
            seq, entry_id, kind, bank, receiver_bank, day, minutes, category, provider, receiver
        )
        parties = self.db.execute(
            "SELECT bank, account, role FROM rm_entry_parties WHERE entry_seq = ?", (seq,)
        )
        info.roles = {(b, a): role for b, a, role in parties}
        if kind == EntryKind.GROUP_EXCHANGE.value:  # one event: every row is here
            info.service = (
                [(b, a) for (b, a), role in info.roles.items() if role == "provider"],
                [(b, a) for (b, a), role in info.roles.items() if role == "receiver"],
            )
        elif kind in SERVICE_KINDS:  # from the entry, not its rows: an inter-bank
            # entry's other side may not have been applied yet
            info.service = ([(bank, provider)], [(receiver_bank or bank, receiver)])
        self._infos[entry_id] = info
        return info

    # --- writing ---------------------------------------------------------------------
    def flush(self) -> None:
        """Write what the batch collected (the caller's transaction commits it)."""
        db = self.db
        db.insert_rows("rm_entries", 18, self._entries.values())
        db.insert_rows("rm_entry_parties", 12, self._parties.values())
        db.insert_rows("rm_pot_flows", 6, self._pot_flows.values())
        db.upsert_rows(
            "rm_accounts",
            6,
            "ON CONFLICT (bank, account) DO UPDATE"
            " SET balance_minutes = rm_accounts.balance_minutes + excluded.balance_minutes",
            [(b, a, _account_kind(a), m, None, None) for (b, a), m in self._balances.items()],
        )
        for table, column, totals in (
            ("rm_daily", "day", self._daily),
            ("rm_monthly", "month", self._monthly),
        ):
            db.upsert_rows(
                table,
                7,
                f"ON CONFLICT (bank, receiver_bank, {column}, kind, category) DO UPDATE"
                f" SET entries = {table}.entries + excluded.entries,"
                f" minutes = {table}.minutes + excluded.minutes",
                [(*key, n, m) for key, (n, m) in totals.items()],
            )
        db.upsert_rows(
            "rm_pot_daily",
            3,
            "ON CONFLICT (bank, day) DO UPDATE"
            " SET minutes = rm_pot_daily.minutes + excluded.minutes",
            [(*key, m) for key, m in self._pot_daily.items()],
        )
        db.upsert_rows(
            "rm_pair_days",
            6,
            "ON CONFLICT (day, bank_a, account_a, bank_b, account_b) DO UPDATE"
            " SET exchanges = rm_pair_days.exchanges + excluded.exchanges",
            [(*key, n) for key, n in self._pair_days.items()],
        )
        _write_spans(db, "rm_pairs", _PAIR, self._pairs)
        _write_spans(db, "rm_activity", _ACCOUNT, self._activities)
        # settled by settle_spans at the end of the catch-up, when the
        # indexes it seeks by exist
        waiting = {"rm_pairs": self._recompute_pairs, "rm_activity": self._recompute_activities}
        for table, key, stale_table, _, _ in _STALE:
            db.executemany(
                f"INSERT INTO {stale_table} VALUES ({', '.join('?' * len(key))})"  # noqa: S608
                " ON CONFLICT DO NOTHING",
                sorted(waiting[table]),
            )
        if not self.every_connection_waits:
            self._mark_connections()

    def _mark_connections(self) -> None:
        """Queue the accounts whose first connection or the day of their
        second may have moved: those of a pair a reversal touched, and those
        of a pair exchanging on or before the day their second connection
        began (or that have none yet). An exchange after that day changes
        neither, so an established member's new exchanges queue nothing."""
        earliest: dict[tuple[str, str], str] = {}
        for (bank_a, account_a, bank_b, account_b), (_, first, _) in self._pairs.items():
            if first is not None:  # None: only taken out, queued below
                for account in ((bank_a, account_a), (bank_b, account_b)):
                    if first < earliest.get(account, "~"):
                        earliest[account] = first
        for bank_a, account_a, bank_b, account_b in self._recompute_pairs:
            earliest[bank_a, account_a] = earliest[bank_b, account_b] = ""  # before any day
        self.db.executemany(
            "INSERT INTO rm_stale_connections SELECT ?, ? WHERE NOT EXISTS (SELECT 1"
            " FROM rm_connections WHERE bank = ? AND account = ? AND second_on < ?)"
            " ON CONFLICT DO NOTHING",
            [(*account, *account, day) for account, day in sorted(earliest.items())],
        )


_ACCOUNT = ("bank", "account")
_PAIR = ("bank_a", "account_a", "bank_b", "account_b")
#: Spans whose first and last days wait in a table: (span table, its key,
#: table of waiting keys, where the days are recomputed from, day column).
_STALE = (
    ("rm_pairs", _PAIR, "rm_stale_pairs",
     "SELECT {} FROM rm_pair_days WHERE {} AND exchanges > 0", "day"),
    ("rm_activity", _ACCOUNT, "rm_stale_activity",
     "SELECT {} FROM rm_entry_parties WHERE {} AND " + TOOK_PART, "occurred_on"),  # noqa: S608
)  # fmt: skip
#: Span table -> the table of its keys waiting to be settled.
WAITING_TABLES = {table: waiting for table, _, waiting, _, _ in _STALE}


def settle_spans(db: ReadModelDB) -> None:
    """Recompute the first and last days of the pairs and accounts waiting in
    ``rm_stale_pairs`` and ``rm_stale_activity``, and empty those (in the
    caller's transaction, once the report indexes exist)."""
    for table, key, stale_table, source, day in _STALE:
        stale = db.execute(f"SELECT {', '.join(key)} FROM {stale_table}")  # noqa: S608
        if stale:
            _recompute_spans(db, table, key, stale, source, day)
            db.execute(f"DELETE FROM {stale_table}")  # noqa: S608


#: The row of rm_stale_connections that stands for every account.
EVERY_ACCOUNT = ("", "")

#: Each account's partners (the member of the other account of each of its
#: pairs with a standing exchange) and the first day of each pair: {stale}
#: narrows it to the accounts waiting.
_PARTNERS = (
    "SELECT p.bank_a AS bank, p.account_a AS account, p.account_b AS partner,"
    " p.first_day AS day FROM {stale}rm_pairs p WHERE p.exchanges > 0{join_a}"
    " UNION ALL"
    " SELECT p.bank_b, p.account_b, p.account_a, p.first_day"
    " FROM {stale}rm_pairs p WHERE p.exchanges > 0{join_b}"
)
#: The waiting accounts first (SQLite keeps the order of a CROSS JOIN): each
#: seeks its pairs, rather than every pair looking for its accounts.
_WAITING_FIRST = "rm_stale_connections s CROSS JOIN "
_STALE_JOIN = " AND p.bank_{side} = s.bank AND p.account_{side} = s.account"
#: Each account's first connection (the member it first exchanged with,
#: in any of their accounts, unless two began that day: then it had two from
#: the start, and which is "first" means nothing) and the first day of its
#: second.
_CONNECTIONS = (
    "INSERT INTO rm_connections"
    " SELECT bank, account, connected_on,"
    " CASE WHEN second_on = connected_on THEN NULL ELSE partner END, second_on"
    " FROM (SELECT bank, account,"
    "  MAX(CASE WHEN n = 1 THEN day END) AS connected_on,"
    "  MAX(CASE WHEN n = 1 THEN partner END) AS partner,"
    "  MAX(CASE WHEN n = 2 THEN day END) AS second_on"
    "  FROM (SELECT bank, account, partner, day, ROW_NUMBER()"
    "   OVER (PARTITION BY bank, account ORDER BY day) AS n"
    "   FROM (SELECT bank, account, partner, MIN(day) AS day FROM ({partners}) u"
    "    GROUP BY bank, account, partner) m) r"
    "  WHERE n <= 2 GROUP BY bank, account) c"
)


def every_account_waits(db: ReadModelDB) -> bool:
    """Whether every account's rm_connections row waits (``EVERY_ACCOUNT``)."""
    return bool(
        db.execute(
            "SELECT 1 FROM rm_stale_connections WHERE bank = ? AND account = ?", EVERY_ACCOUNT
        )
    )


def settle_connections(db: ReadModelDB) -> None:
    """Recompute the rm_connections rows of the accounts waiting in
    ``rm_stale_connections`` from ``rm_pairs`` (whose days
    :func:`settle_spans` has settled first), and empty it."""
    if not db.execute("SELECT 1 FROM rm_stale_connections LIMIT 1"):
        return
    if every_account_waits(db):
        db.execute("DELETE FROM rm_connections")
        partners = _PARTNERS.format(stale="", join_a="", join_b="")
    else:
        db.execute(
            "DELETE FROM rm_connections WHERE EXISTS (SELECT 1 FROM rm_stale_connections s"
            " WHERE s.bank = rm_connections.bank AND s.account = rm_connections.account)"
        )
        partners = _PARTNERS.format(
            stale=_WAITING_FIRST,
            join_a=_STALE_JOIN.format(side="a"),
            join_b=_STALE_JOIN.format(side="b"),
        )
    db.execute(_CONNECTIONS.format(partners=partners))
    db.execute("DELETE FROM rm_stale_connections")


#: The member and bank events, by topic: plain functions of the class, not
#: bound methods kept on each projector, so that a projector holds no
#: reference cycle and its batch's rows are freed as soon as it goes
#: (a dict of bound methods kept every batch's objects alive until the
#: collector's full passes: 9 s of a million-event rebuild, measured).
_HANDLERS: dict[str, Callable[[Projector, str, dict[str, Any]], None]] = {
    _bank_topic("Opened"): Projector._opened,
    _bank_topic("PolicyChanged"): Projector._policy_changed,
    _bank_topic("MemberJoined"): Projector._joined,
    _bank_topic("MemberSuspended"): Projector._suspended,
    _bank_topic("MemberReinstated"): Projector._reinstated,
    _bank_topic("MemberLeft"): Projector._left,
    _bank_topic("MemberRejoined"): Projector._rejoined,
}


def _add_span(
    spans: dict[tuple[str, ...], list[Any]],
    recompute: set[tuple[str, ...]],
    key: tuple[str, ...],
    sign: int,
    day: str,
) -> None:
    """Count one standing exchange on ``day`` in (``sign`` 1) or out (-1) of
    a span: [exchanges, first day, last day]. Taking one out may move the
    first or last day: the key is recomputed from the rows after the flush."""
    totals = spans.get(key)
    if totals is None:
        if sign > 0:
            spans[key] = [1, day, day]
            return
        totals = spans[key] = [0, None, None]
    totals[0] += sign
    if sign > 0:
        if totals[1] is None or day < totals[1]:
            totals[1] = day
        if totals[2] is None or day > totals[2]:
            totals[2] = day
    else:
        recompute.add(key)


def _write_spans(
    db: ReadModelDB, table: str, key: tuple[str, ...], spans: dict[tuple[str, ...], list[Any]]
) -> None:
    """Upsert the spans into ``table`` (counts added, days widened)."""
    db.upsert_rows(
        table,
        len(key) + 3,
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE"
        f" SET exchanges = {table}.exchanges + excluded.exchanges,"
        f" first_day = CASE WHEN {table}.first_day IS NULL"
        f"  OR excluded.first_day < {table}.first_day"
        f"  THEN excluded.first_day ELSE {table}.first_day END,"
        f" last_day = CASE WHEN {table}.last_day IS NULL"
        f"  OR excluded.last_day > {table}.last_day"
        f"  THEN excluded.last_day ELSE {table}.last_day END",
        [(*k, n, first, last) for k, (n, first, last) in spans.items()],
    )


def _recompute_spans(
    db: ReadModelDB,
    table: str,
    key: tuple[str, ...],
    recompute: Iterable[tuple[Any, ...]],
    source: str,
    day: str,
) -> None:
    """Recompute the first and last days of the ``recompute`` keys of
    ``table`` from the ``source`` rows."""
    where = " AND ".join(f"{column} = ?" for column in key)
    db.executemany(
        f"UPDATE {table} SET"  # noqa: S608 - fixed names
        f" first_day = ({source.format(f'MIN({day})', where)}),"
        f" last_day = ({source.format(f'MAX({day})', where)})"
        f" WHERE {where}",
        [k * 3 for k in sorted(recompute)],
    )


def _flags(d: dict[str, Any]) -> str | None:
    flags = d["flags"]
    return orjson.dumps(flags).decode() if flags else None


def _policy(value: Any) -> str:
    return orjson.dumps(value["_data_"], option=orjson.OPT_SORT_KEYS).decode()


def _role(account: str, amount: int, bank: str, info: _Entry) -> str:
    """A party's role in an entry, from the entry's own fields."""
    kind = _account_kind(account)
    if kind != "member":
        return kind
    if info.kind == EntryKind.GROUP_EXCHANGE.value:
        return "provider" if amount > 0 else "receiver"
    if account == info.provider and bank == info.bank:
        return "provider"
    if account == info.receiver and bank == (info.receiver_bank or info.bank):
        return "receiver"
    return "provider" if amount > 0 else "receiver"
