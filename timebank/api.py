"""The Python API: one :class:`Timebank` object an embedding app opens from a URL.

>>> import timebank
>>> with timebank.open("memory://") as tb:
...     _ = tb.create_bank("riverside", name="Riverside Time Bank", actor="coord-1",
...                        opened_on="2026-01-05")
...     _ = tb.join("riverside", "m-1", kind="individual", actor="coord-1",
...                 joined_on="2026-01-05")
...     _ = tb.join("riverside", "m-2", kind="individual", actor="coord-1",
...                 joined_on="2026-01-05")
...     entry = tb.record_exchange("riverside", "m-1", "m-2", "1:30", actor="coord-1",
...                                occurred_on="2026-02-01", entry_id="ex-1")
...     tb.balance("riverside", "m-1")
90

Every command takes ``actor`` (the id of whoever records it) and raises a
:class:`~timebank.errors.TimebankError` subclass when refused, having
changed nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, Self, TypeVar, cast
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import attrs

from timebank._ledger import LedgerApplication
from timebank.domain import errors
from timebank.domain.bank import Bank, MemberStatus, recorded_entry
from timebank.domain.entries import NewEntry, RecordedEntry, group_legs
from timebank.domain.policy import Policy
from timebank.domain.registry import Registry
from timebank.domain.values import (
    MINUTES_ABS_MAX,
    POT,
    AccountKind,
    EntryKind,
    parse_date,
    parse_minutes,
    validate_actor_id,
    validate_bank_id,
    validate_category,
    validate_entry_id,
    validate_member_id,
)
from timebank.storage import Backend, IndexUpdate, Profile, default_url, open_backend
from timebank.views import AccountBalance, BankInfo, Erasure, Figures, Member, StatementLine

__all__ = ["STATEMENT_LINES_MAX", "Timebank", "open"]

#: Most lines a statement returns unless asked for fewer.
STATEMENT_LINES_MAX = 100_000
#: Longest bank display name.
BANK_NAME_LENGTH_MAX = 200

Clock = Callable[[], datetime]
F = TypeVar("F", bound=Callable[..., Any])


def _serialised(method: F) -> F:
    """Run a public method under the store's lock, so a Timebank can be
    shared between threads (commands change cached state in place)."""

    @functools.wraps(method)
    def locked(self: Timebank, *args: Any, **kwargs: Any) -> Any:
        with self._app.lock:
            return method(self, *args, **kwargs)

    return cast(F, locked)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def open(url: str | None = None, *, create: bool = True, clock: Clock | None = None) -> Timebank:
    """Open the store at ``url`` (default: ``$TIMEBANK_DB`` or
    ``sqlite:///timebank.db``). With ``create=False`` a missing SQLite file
    raises :class:`~timebank.errors.StoreNotFound`."""
    return Timebank(open_backend(url or default_url(), create=create), clock=clock)


class Timebank:
    """A time-bank store: banks, members, entries, balances and statements.

    ``clock`` returns the current time (timezone-aware); tests pass a fixed
    one. Close it (or use it as a context manager) when done.
    """

    def __init__(self, backend: Backend, *, clock: Clock | None = None) -> None:
        self.backend = backend
        self.url = backend.url
        self._clock = clock or _utc_now
        try:
            self._app = LedgerApplication(backend)
        except errors.TimebankError:
            raise
        except Exception as e:
            raise errors.StorageError(
                f"cannot open the store at {backend.url}: {type(e).__name__}: {e}", url=backend.url
            ) from e

    def close(self) -> None:
        self._app.close()
        self.backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @_serialised
    def today(self, bank: str | None = None) -> date:
        """Today's date in the bank's timezone (default policy's without a bank)."""
        return self._today_for(Policy() if bank is None else self.policy(bank))

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise errors.InvalidInput("the clock must return a timezone-aware datetime")
        return now

    # --- banks ------------------------------------------------------------------------
    @_serialised
    def create_bank(
        self,
        bank: str,
        *,
        name: str,
        actor: str,
        policy: Policy | None = None,
        opened_on: date | str | None = None,
    ) -> BankInfo:
        """Open a new time bank with its pot. ``opened_on`` may be in the past
        (for historic data) but not in the future of ``policy.timezone``."""
        bank = validate_bank_id(bank)
        actor = validate_actor_id(actor)
        if not isinstance(name, str) or not name.strip() or len(name) > BANK_NAME_LENGTH_MAX:
            raise errors.InvalidInput(f"bank name must be 1-200 characters: {name!r}")
        policy = policy or Policy()
        today = self._today_for(policy)
        day = today if opened_on is None else parse_date(opened_on)
        if day > today:
            raise errors.OccurredInFuture(
                f"bank {bank!r} cannot open on {day}: today is {today}",
                bank=bank,
                subject=bank,
            )

        def command() -> BankInfo:
            registry = self._app.registry() or Registry()
            registry.register(bank)
            new_bank = Bank(
                bank_id=bank, name=name.strip(), policy=policy, opened_on=day, actor=actor
            )
            self._app.save_changes(registry, new_bank)
            return _bank_info(new_bank)

        return self._app.write(command)

    @_serialised
    def set_policy(self, bank: str, policy: Policy, *, actor: str) -> Policy:
        """Replace a bank's policy; it applies to entries recorded from now on."""
        actor = validate_actor_id(actor)
        if not isinstance(policy, Policy):
            raise errors.InvalidPolicy(f"expected a Policy, got {policy!r}")

        def command() -> Policy:
            ledger = self._app.bank(validate_bank_id(bank))
            ledger.change_policy(policy, actor)
            self._app.save_changes(ledger)
            return ledger.policy

        return self._app.write(command)

    @_serialised
    def policy(self, bank: str) -> Policy:
        return self._app.bank(validate_bank_id(bank)).policy

    @_serialised
    def bank(self, bank: str) -> BankInfo:
        return _bank_info(self._app.bank(validate_bank_id(bank)))

    @_serialised
    def banks(self) -> list[BankInfo]:
        registry = self._app.registry()
        ids = [] if registry is None else list(registry.banks)
        return [_bank_info(self._app.bank(b)) for b in ids]

    # --- members ---------------------------------------------------------------------
    @_serialised
    def join(
        self,
        bank: str,
        member: str,
        *,
        kind: AccountKind | str,
        actor: str,
        joined_on: date | str | None = None,
        profile: Profile | None = None,
    ) -> Member:
        """A member (``individual`` or ``organisation``) joins a bank and gets an
        account there. Personal details go in ``profile``, never in events."""
        bank = validate_bank_id(bank)
        member = validate_member_id(member)
        actor = validate_actor_id(actor)
        try:
            account_kind = AccountKind(kind)
        except ValueError:
            raise errors.InvalidInput(
                f"member kind must be individual or organisation: {kind!r}", kind=kind
            ) from None
        day = None if joined_on is None else parse_date(joined_on)

        def command() -> Member:
            ledger = self._app.bank(bank)
            today = self._today_in(ledger)
            ledger.join(member, account_kind, day or today, actor, today)
            self._app.save_changes(ledger)
            return _member(ledger, member)

        joined = self._app.write(command)
        if profile is not None:
            self._app.profiles.put(member, profile)
        return joined

    @_serialised
    def member(self, bank: str, member: str) -> Member:
        ledger = self._app.bank(validate_bank_id(bank))
        member = validate_member_id(member)
        if not ledger.is_member(member):
            raise errors.MemberNotFound(
                f"{member!r} is not a member of bank {bank!r}", bank=bank, member=member
            )
        return _member(ledger, member)

    @_serialised
    def members(self, bank: str) -> list[Member]:
        ledger = self._app.bank(validate_bank_id(bank))
        return [_member(ledger, m) for m in ledger.members()]

    @_serialised
    def suspend(self, bank: str, member: str, *, actor: str) -> Member:
        """Suspend an active member: they take part in no new entries."""
        return self._lifecycle(bank, member, actor, lambda ledger, m, a, _: ledger.suspend(m, a))

    @_serialised
    def reinstate(self, bank: str, member: str, *, actor: str) -> Member:
        """Make a suspended member active again."""
        return self._lifecycle(bank, member, actor, lambda ledger, m, a, _: ledger.reinstate(m, a))

    @_serialised
    def leave(
        self,
        bank: str,
        member: str,
        *,
        actor: str,
        left_on: date | str | None = None,
        donation_id: str | None = None,
    ) -> Member:
        """The member leaves the bank on ``left_on`` (default today). By the
        bank's ``on_leave`` policy a positive balance is donated to the pot
        (entry ``donation_id``) or frozen; see docs/membership.md."""
        day = None if left_on is None else parse_date(left_on)
        entry_id = _entry_id(donation_id)
        if self._app.index.find_entry(entry_id) is not None:
            raise errors.EntryConflict(
                f"donation id {entry_id!r} is already recorded", entry_id=entry_id, field="entry_id"
            )
        return self._lifecycle(
            bank, member, actor,
            lambda ledger, m, a, today: ledger.leave(m, day or today, a, today, entry_id),
        )  # fmt: skip

    @_serialised
    def rejoin(
        self, bank: str, member: str, *, actor: str, rejoined_on: date | str | None = None
    ) -> Member:
        """A member who left joins again on ``rejoined_on`` (default today)."""
        day = None if rejoined_on is None else parse_date(rejoined_on)
        return self._lifecycle(
            bank, member, actor,
            lambda ledger, m, a, today: ledger.rejoin(m, day or today, a, today),
        )  # fmt: skip

    def _lifecycle(
        self, bank: str, member: str, actor: str, change: Callable[[Bank, str, str, date], None]
    ) -> Member:
        bank = validate_bank_id(bank)
        member = validate_member_id(member)
        actor = validate_actor_id(actor)

        def command() -> Member:
            ledger = self._app.bank(bank)
            change(ledger, member, actor, self._today_in(ledger))
            self._app.save_changes(ledger, index=_index_update(ledger, {}))
            return _member(ledger, member)

        return self._app.write(command)

    @_serialised
    def erase_member(self, member: str, *, actor: str) -> Erasure:
        """Erase a member's personal data (their profile) beyond recovery.

        Entries, balances and every figure stay exactly as they were: no event
        ever held the data. A ``MemberErased`` event records the erasure."""
        member = validate_member_id(member)
        actor = validate_actor_id(actor)
        deleted, complete = self._app.profiles.erase(member)

        def command() -> None:
            registry = self._app.registry() or Registry()
            registry.member_erased(member, actor)
            self._app.save_changes(registry)

        self._app.write(command)
        return Erasure(member, deleted, complete)

    @_serialised
    def set_profile(self, member: str, profile: Profile, *, actor: str) -> None:
        """Store (replace) a member's personal details in the profile store."""
        validate_actor_id(actor)
        if not isinstance(profile, Profile):
            raise errors.InvalidInput(f"expected a Profile, got {profile!r}")
        self._app.profiles.put(validate_member_id(member), profile)

    @_serialised
    def profile(self, member: str) -> Profile | None:
        return self._app.profiles.get(validate_member_id(member))

    # --- entries ------------------------------------------------------------------------
    @_serialised
    def record_exchange(
        self,
        bank: str,
        provider: str,
        receiver: str,
        hours: object = None,
        *,
        actor: str,
        minutes: int | None = None,
        occurred_on: date | str | None = None,
        category: str | None = None,
        entry_id: str | None = None,
    ) -> RecordedEntry:
        """``provider`` helped ``receiver``: provider +amount, receiver -amount.

        Give the amount as ``hours`` (``"1.5"``, ``"1:30"``, ``2``) or as whole
        ``minutes``. Pass your own ``entry_id`` to make retries safe: the same
        id with the same fields returns the recorded entry, with different
        fields raises :class:`~timebank.errors.EntryConflict`.
        """
        return self._record(
            EntryKind.EXCHANGE, bank, provider, receiver, hours, minutes,
            occurred_on, category, entry_id, actor,
        )  # fmt: skip

    @_serialised
    def record_pot_exchange(
        self,
        bank: str,
        provider: str,
        receiver: str,
        hours: object = None,
        *,
        actor: str,
        minutes: int | None = None,
        occurred_on: date | str | None = None,
        category: str | None = None,
        entry_id: str | None = None,
    ) -> RecordedEntry:
        """``provider`` helped ``receiver`` and the bank's pot paid:
        provider +amount, pot -amount, receiver unchanged."""
        return self._record(
            EntryKind.POT_EXCHANGE, bank, provider, receiver, hours, minutes,
            occurred_on, category, entry_id, actor,
        )  # fmt: skip

    @_serialised
    def donate(
        self,
        bank: str,
        donor: str,
        hours: object = None,
        *,
        actor: str,
        minutes: int | None = None,
        occurred_on: date | str | None = None,
        category: str | None = None,
        entry_id: str | None = None,
    ) -> RecordedEntry:
        """``donor`` gives credits to the bank's community pot."""
        return self._record(
            EntryKind.DONATION, bank, donor, None, hours, minutes,
            occurred_on, category, entry_id, actor,
        )  # fmt: skip

    @_serialised
    def gift(
        self,
        bank: str,
        giver: str,
        recipient: str,
        hours: object = None,
        *,
        actor: str,
        minutes: int | None = None,
        occurred_on: date | str | None = None,
        category: str | None = None,
        entry_id: str | None = None,
    ) -> RecordedEntry:
        """``giver`` gives some of their credits to ``recipient``."""
        return self._record(
            EntryKind.GIFT, bank, giver, recipient, hours, minutes,
            occurred_on, category, entry_id, actor,
        )  # fmt: skip

    @_serialised
    def record_opening_balance(
        self,
        bank: str,
        member: str,
        hours: object = None,
        *,
        actor: str,
        minutes: int | None = None,
        occurred_on: date | str | None = None,
        entry_id: str | None = None,
    ) -> RecordedEntry:
        """Carry a balance over from an older system (may be negative). The
        other side goes to the bank's ``@opening`` account; opening balances
        never count as exchanges or transactions."""
        return self._record(
            EntryKind.OPENING_BALANCE, bank, member, None, hours, minutes,
            occurred_on, None, entry_id, actor,
        )  # fmt: skip

    @_serialised
    def record_group_exchange(
        self,
        bank: str,
        providers: Mapping[str, object],
        receivers: Mapping[str, object],
        *,
        actor: str,
        occurred_on: date | str | None = None,
        category: str | None = None,
        entry_id: str | None = None,
    ) -> RecordedEntry:
        """Several members helped several others at once, as one atomic entry.

        ``providers`` and ``receivers`` map member ids to their share in hours
        (``"1.5"``, ``"1:30"``, ``2``); the providers' shares must add up to
        the receivers'. A teacher giving a one-hour class to six people:
        ``providers={"t-1": 6}``, ``receivers={"a": 1, "b": 1, ...}``. Every
        share is checked against the per-entry limit and every participant's
        balance against the bank's limits; any refusal records nothing.
        """
        bank = validate_bank_id(bank)
        actor = validate_actor_id(actor)
        provided = {validate_member_id(m): parse_minutes(h) for m, h in providers.items()}
        received = {validate_member_id(m): parse_minutes(h) for m, h in receivers.items()}
        participants = group_legs(provided, received)
        day = None if occurred_on is None else parse_date(occurred_on)
        undated = NewEntry(
            entry_id=_entry_id(entry_id),
            bank=bank,
            kind=EntryKind.GROUP_EXCHANGE,
            minutes=sum(provided.values()),
            occurred_on=date.min,  # replaced below
            category=None if category is None else validate_category(category),
            participants=participants,
        )
        return self._write_entry(
            bank, lambda today: attrs.evolve(undated, occurred_on=day or today), actor
        )

    @_serialised
    def reverse(
        self,
        entry_id: str,
        *,
        actor: str,
        reversal_id: str | None = None,
        occurred_on: date | str | None = None,
    ) -> RecordedEntry:
        """Undo a recorded entry with a new reversal entry (once; never a
        reversal itself). Nothing is deleted or edited."""
        target = self.entry(entry_id)
        actor = validate_actor_id(actor)
        new_id = _entry_id(reversal_id)
        day = None if occurred_on is None else parse_date(occurred_on)

        def new(today: date) -> NewEntry:
            return NewEntry(
                entry_id=new_id,
                bank=target.bank,
                kind=EntryKind.REVERSAL,
                minutes=target.minutes,
                occurred_on=day or today,
                category=target.category,
                reverses=target.entry_id,
            )

        return self._write_entry(target.bank, new, actor)

    @_serialised
    def entry(self, entry_id: str) -> RecordedEntry:
        """A recorded entry by id, with ``reversed_by`` if it was reversed."""
        entry_id = validate_entry_id(entry_id)
        found = self._app.index.find_entry(entry_id)
        if found is None:
            raise errors.EntryNotFound(f"no entry {entry_id!r}", entry_id=entry_id)
        events = self._app.events.get(found.bank_uuid, gt=found.version - 1, lte=found.version)
        (entry_event,) = events
        ledger = self._app.bank_by_uuid(found.bank_uuid)
        if not isinstance(entry_event, Bank.EntryEvent):
            raise errors.StorageError(f"index of entry {entry_id!r} points at {entry_event!r}")
        return recorded_entry(entry_event, ledger.bank_id, found.reversed_by)

    def _record(
        self,
        kind: EntryKind,
        bank: str,
        provider: str | None,
        receiver: str | None,
        hours: object,
        minutes: int | None,
        occurred_on: date | str | None,
        category: str | None,
        entry_id: str | None,
        actor: str,
    ) -> RecordedEntry:
        bank = validate_bank_id(bank)
        actor = validate_actor_id(actor)
        amount = _amount(hours, minutes, allow_negative=kind is EntryKind.OPENING_BALANCE)
        day = None if occurred_on is None else parse_date(occurred_on)
        undated = NewEntry(
            entry_id=_entry_id(entry_id),
            bank=bank,
            kind=kind,
            minutes=amount,
            occurred_on=date.min,  # replaced below
            provider=None if provider is None else validate_member_id(provider),
            receiver=None if receiver is None else validate_member_id(receiver),
            category=None if category is None else validate_category(category),
        )
        return self._write_entry(
            bank, lambda today: attrs.evolve(undated, occurred_on=day or today), actor
        )

    def _write_entry(
        self, bank: str, make: Callable[[date], NewEntry], actor: str
    ) -> RecordedEntry:
        """Record the entry ``make(today)`` describes; ``today`` is in the
        bank's timezone, for entries given no date."""

        def command() -> RecordedEntry:
            ledger = self._app.bank(bank)
            today = self._today_in(ledger)
            new = make(today)
            if self._app.index.find_entry(new.entry_id) is not None:
                return self._same_entry_or_conflict(new)
            parties = [new.provider, new.receiver]
            if new.kind is EntryKind.GROUP_EXCHANGE:
                ledger.record_group(new, actor, today)
            elif new.reverses is None:
                ledger.record(new, actor, today)
            else:
                original = self.entry(new.reverses)
                ledger.reverse(new, original, actor, today)
                parties = [original.provider, original.receiver]
            (entry_event,) = ledger.pending_events
            if not isinstance(entry_event, Bank.EntryEvent):
                raise TypeError(f"expected an entry event, got {entry_event!r}")
            index = _index_update(ledger, {new.entry_id: [p for p in parties if p]})
            self._app.save_changes(ledger, index=index)
            return recorded_entry(entry_event, ledger.bank_id)

        return self._app.write(command)

    def _same_entry_or_conflict(self, new: NewEntry) -> RecordedEntry:
        recorded = self.entry(new.entry_id)
        field = new.differing_field(recorded)
        if field is not None:
            raise errors.EntryConflict(
                f"entry {new.entry_id!r} is already recorded with a different {field}"
                f" ({getattr(recorded, field)!r}, not {getattr(new, field)!r})",
                entry_id=new.entry_id,
                field=field,
            )
        return recorded

    def _today_in(self, ledger: Bank) -> date:
        return self._today_for(ledger.policy)

    def _today_for(self, policy: Policy) -> date:
        """Today's date in the policy's timezone, by this store's clock."""
        return self._now().astimezone(ZoneInfo(policy.timezone)).date()

    # --- balances, statements and figures ---------------------------------------------
    @_serialised
    def balance(self, bank: str, account: str) -> int:
        """Current balance in minutes of a member, ``@pot`` or ``@opening``."""
        return self._app.bank(validate_bank_id(bank)).balance(account)

    @_serialised
    def balances(self, bank: str | None = None) -> list[AccountBalance]:
        """Every account's balance in one bank, or in every bank."""
        banks = [validate_bank_id(bank)] if bank is not None else [b.bank for b in self.banks()]
        rows: list[AccountBalance] = []
        for bank_id in banks:
            ledger = self._app.bank(bank_id)
            rows.extend(
                AccountBalance(bank_id, account, ledger.kinds[account], minutes)
                for account, minutes in ledger.balances.items()
            )
        return rows

    @_serialised
    def statement(
        self, bank: str, account: str, *, limit: int = STATEMENT_LINES_MAX
    ) -> list[StatementLine]:
        """Every entry on an account, in recorded order, with the running balance."""
        ledger = self._app.bank(validate_bank_id(bank))
        ledger.balance(account)  # raises MemberNotFound for an unknown account
        if not 0 < limit <= STATEMENT_LINES_MAX:
            raise errors.InvalidInput(f"limit must be 1..{STATEMENT_LINES_MAX}: {limit}")
        stored = self._app.index.select_postings(ledger.id, account, limit=limit)
        lines: list[StatementLine] = []
        position: dict[str, int] = {}
        balance = 0
        for record in stored:
            entry_event = self._app.mapper.to_domain_event(record)
            if not isinstance(entry_event, Bank.EntryEvent):
                raise errors.StorageError(f"posting points at {entry_event!r}")
            entry = recorded_entry(entry_event, ledger.bank_id)
            minutes = entry.minutes_for(account)
            balance += minutes
            if entry.reverses in position:
                reversed_line = lines[position[entry.reverses]]
                lines[position[entry.reverses]] = _with_reversed_by(reversed_line, entry.entry_id)
            position[entry.entry_id] = len(lines)
            lines.append(_line(entry, account, minutes, balance))
        return lines

    @_serialised
    def figures(self, bank: str) -> Figures:
        """Headline figures over the bank's whole history, by replaying its
        ledger (O(entries); the read models of a later release index them)."""
        ledger = self._app.bank(validate_bank_id(bank))
        entry_events = [
            e for e in self._app.events.get(ledger.id) if isinstance(e, Bank.EntryEvent)
        ]
        reversed_ids = {e.reverses for e in entry_events if isinstance(e, Bank.EntryReversed)}
        counted = [
            e
            for e in entry_events
            if e.entry_id not in reversed_ids and e.entry_kind is not EntryKind.REVERSAL
        ]
        exchanges = [e for e in counted if e.entry_kind in _SERVICE_EXCHANGES]
        kinds = [ledger.kinds[m] for m, s in ledger.status.items() if s != MemberStatus.LEFT]
        return Figures(
            bank=ledger.bank_id,
            individual_members=kinds.count(AccountKind.INDIVIDUAL.value),
            organisations=kinds.count(AccountKind.ORGANISATION.value),
            exchanges=len(exchanges),
            exchanged_minutes=sum(e.minutes for e in exchanges),
            transactions=sum(1 for e in counted if e.entry_kind is not EntryKind.OPENING_BALANCE),
            donated_to_pot_minutes=sum(
                e.minutes for e in counted if e.entry_kind is EntryKind.DONATION
            ),
            pot_funded_minutes=sum(
                e.minutes for e in counted if e.entry_kind is EntryKind.POT_EXCHANGE
            ),
            pot_balance_minutes=ledger.balance(POT),
            reversals=len(reversed_ids),
        )

    @_serialised
    def check_invariants(self) -> None:
        """Raise AssertionError if any bank's accounts do not sum to zero or its
        pot is below zero (used by the tests and the demo)."""
        for info in self.banks():
            self._app.bank(info.bank).check_invariants()


#: The kinds that count as exchanges of service in every figure.
_SERVICE_EXCHANGES = (EntryKind.EXCHANGE, EntryKind.POT_EXCHANGE, EntryKind.GROUP_EXCHANGE)


def _index_update(ledger: Bank, parties: dict[str, list[str]]) -> IndexUpdate:
    """Index rows for the entry events about to be saved: the entry, and a
    posting for every account it moves and every party (so the person helped
    by the pot sees it on their statement too)."""
    entries: list[tuple[str, UUID, int, str | None]] = []
    postings: list[tuple[UUID, str, int]] = []
    for pending in ledger.pending_events:
        if not isinstance(pending, Bank.EntryEvent):
            continue
        version = pending.originator_version
        reverses = getattr(pending, "reverses", None)
        entries.append((pending.entry_id, ledger.id, version, reverses))
        accounts = [a for a, _ in pending.legs()] + parties.get(pending.entry_id, [])
        postings.extend((ledger.id, a, version) for a in dict.fromkeys(accounts))
    return IndexUpdate(entries=tuple(entries), postings=tuple(postings))


def _amount(hours: object, minutes: int | None, *, allow_negative: bool) -> int:
    if (hours is None) == (minutes is None):
        raise errors.InvalidAmount("give exactly one of hours or minutes", value=(hours, minutes))
    if minutes is not None:
        if not isinstance(minutes, int) or isinstance(minutes, bool):
            raise errors.InvalidAmount(f"minutes must be an int: {minutes!r}", value=minutes)
        if minutes == 0 or (minutes < 0 and not allow_negative):
            raise errors.InvalidAmount(f"minutes must be positive: {minutes}", value=minutes)
        if abs(minutes) > MINUTES_ABS_MAX:
            raise errors.InvalidAmount(f"amount is too large: {minutes}", value=minutes)
        return minutes
    return parse_minutes(hours, allow_negative=allow_negative)


def _entry_id(entry_id: str | None) -> str:
    return f"e-{uuid4().hex}" if entry_id is None else validate_entry_id(entry_id)


def _bank_info(ledger: Bank) -> BankInfo:
    return BankInfo(
        bank=ledger.bank_id,
        name=ledger.name,
        opened_on=ledger.opened_on,
        policy=ledger.policy,
        members=len(ledger.joined_on),
    )


def _member(ledger: Bank, member: str) -> Member:
    status = ledger.status[member]
    return Member(
        bank=ledger.bank_id,
        member=member,
        kind=ledger.kinds[member],
        joined_on=ledger.joined_on[member],
        balance_minutes=ledger.balances[member],
        status=status,
        left_on=ledger.periods[member][-1][1] if status == MemberStatus.LEFT else None,
    )


def _line(entry: RecordedEntry, account: str, minutes: int, balance: int) -> StatementLine:
    return StatementLine(
        entry_id=entry.entry_id,
        kind=entry.kind,
        occurred_on=entry.occurred_on,
        recorded_at=entry.recorded_at,
        minutes=minutes,
        balance_minutes=balance,
        counterparties=entry.counterparties(account),
        category=entry.category,
        reverses=entry.reverses,
        reversed_by=None,
        flags=entry.flags,
    )


def _with_reversed_by(line: StatementLine, reversal_id: str) -> StatementLine:
    return attrs.evolve(line, reversed_by=reversal_id)
