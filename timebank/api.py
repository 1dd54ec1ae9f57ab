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

import contextlib
import os
import weakref
from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from threading import RLock
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, cast
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import attrs
import orjson

from timebank import _audit_worker
from timebank._access import Access
from timebank._audit import (
    AuditReport,
    FiguresCompared,
    LoadedBank,
    audit_log,
    compare_figures,
    log_batches,
)
from timebank._audit_index import StoredIndex
from timebank._event_shapes import DAMAGED_CURE, described
from timebank._index import index_update
from timebank._inputs import validate_function, validate_path, validate_url
from timebank._ledger import LedgerApplication, check_open, serialised, store_file_failure
from timebank._reporting import STATEMENT_LINES_MAX, Reporting, check_page, whole_statement
from timebank.domain import errors
from timebank.domain.bank import (
    PENDING_FIELDS,
    Awaiting,
    Bank,
    MemberStatus,
    bank_uuid,
    recorded_entry,
)
from timebank.domain.entries import NewEntry, RecordedEntry, group_legs, inter_bank_legs
from timebank.domain.policy import Policy
from timebank.domain.recording import recording_now
from timebank.domain.registry import Registry
from timebank.domain.roles import Action, Role
from timebank.domain.values import (
    MINUTES_ABS_MAX,
    POT,
    AccountKind,
    EntryKind,
    Hours,
    clearing_account,
    invariant,
    is_whole,
    parent_bank,
    parse_date,
    parse_minutes,
    root_bank,
    validate_account_id,
    validate_actor_id,
    validate_bank_id,
    validate_category,
    validate_entry_id,
    validate_flag,
    validate_member_id,
    validate_profile_text,
)
from timebank.importing import Importing
from timebank.readmodel import ReadModel
from timebank.storage import (
    Backend,
    IndexedEntry,
    IndexUpdate,
    Profile,
    default_url,
    open_backend,
)
from timebank.storage.base import Proposal
from timebank.views import (
    AccountBalance,
    Backup,
    BankInfo,
    Erasure,
    Figures,
    Member,
    PendingEntry,
    PersonEvent,
    Restored,
    StatementLine,
    SubjectAccess,
)

__all__ = ["STATEMENT_LINES_MAX", "Timebank", "audit", "open", "restore"]

#: Events read a page at a time when a declined entry is read back from its
#: decline (``Timebank._view_before``).
_READ_BACK = 500
#: The fields of a pending entry that name a person taking part in it.
_PENDING_PEOPLE = ("provider", "receiver", "actor", "on_behalf_of", "confirmer", "confirmed_by")
#: The fields of a stored event that name a person, and those that list
#: ``[account, minutes]`` pairs; events read per page when looking for them.
_EVENT_PEOPLE = ("actor", "on_behalf_of", "member_id", "user", "guardian", "provider", "receiver",
                 "confirmer")  # fmt: skip
_EVENT_LEGS = ("participants", "reversed_legs", "side_legs")
#: Reads of several banks (an audit's, check_invariants', every bank's
#: balances) tried between other processes' commits before one under the
#: store's write lock (Timebank._at_one_moment).
MOMENT_TRIES = 3

#: Longest bank display name.
BANK_NAME_LENGTH_MAX = 200

Clock = Callable[[], datetime]
_T = TypeVar("_T")


def open(url: str | None = None, *, create: bool = True, clock: Clock | None = None) -> Timebank:
    """Open the store at ``url`` (default: ``$TIMEBANK_DB`` or
    ``sqlite:///timebank.db``). With ``create=False`` a missing SQLite file,
    or a PostgreSQL schema without a store's tables, raises
    :class:`~timebank.errors.StoreNotFound` and nothing is created."""
    create = validate_flag("create", create)
    url = validate_url(url)
    validate_function(clock, "clock", "returns the time")  # before the store opens
    return Timebank(open_backend(url or default_url(), create=create), clock=clock)


def audit(
    store: str | Timebank | None = None, *, read_model: bool | Literal["full"] = True
) -> AuditReport:
    """Audit a store (docs/audit.md): replay its event log and check every
    ledger invariant; never writes. ``store`` is an open :class:`Timebank`,
    or the URL of one (default as :func:`open`), which is opened with
    ``create=False`` (:class:`~timebank.errors.StoreNotFound` if there is no
    store) and closed after; ``read_model`` as :meth:`Timebank.audit`. The
    report's ``ok`` says whether it is sound; its ``findings`` list each
    problem with the ids that find it."""
    if isinstance(store, Timebank):
        return store.audit(read_model=read_model)
    with open(store, create=False) as tb:
        return tb.audit(read_model=read_model)


def restore(backup: str | os.PathLike[str], url: str | None = None) -> Restored:
    """Put the backup file ``backup`` (one that :meth:`Timebank.backup`
    wrote) in place of the SQLite store at ``url`` (default as :func:`open`),
    docs/storage.md, Restoring: the backup is copied beside the store and
    checked; the store, which no process may have open, is moved aside to
    ``STORE.replaced-<UTC time>`` (``Restored.replaced``) as one whole file;
    the checked copy takes its name, and the read model beside it is deleted
    (the next report rebuilds it). :class:`~timebank.errors.RestoreRefused`,
    with nothing changed, for a missing or unsound backup, the store's own
    file, a store in use, or a store that is not a SQLite file."""
    backup = validate_path(backup, "backup")
    url = validate_url(url) or default_url()
    if not url.startswith("sqlite:///"):
        shown = url.rsplit("@", maxsplit=1)[-1]  # never a password
        raise errors.RestoreRefused(
            f"{shown} is not a SQLite store: restore a PostgreSQL store's pg_dump into an empty"
            " schema (docs/storage.md); a memory:// store has no file",
            url=shown,
        )
    backend = open_backend(url)  # the path checked as open checks it; nothing opened yet
    try:
        events, replaced = backend.restore(Path(backup))
    finally:
        backend.close()
    path = url.removeprefix("sqlite:///")
    return Restored(path, str(backup), events, None if replaced is None else str(replaced))


def _is_event(event: object, kind: str, entry_id: str) -> bool:
    """Whether ``event`` is the bank's ``kind`` event (``EntryDeclined``…)
    of the entry ``entry_id``."""
    return (
        type(event).__qualname__ == f"Bank.{kind}" and getattr(event, "entry_id", None) == entry_id
    )


#: The stores open in this process, for the child of a fork (see below).
_OPEN_HERE: weakref.WeakSet[Timebank] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for tb in list(_OPEN_HERE):
        tb._forked()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Timebank(Reporting, Importing):
    """A time-bank store: banks, members, entries, balances and statements.

    ``clock`` returns the current time (timezone-aware); tests pass a fixed
    one. It says what day it is in each bank (an entry's default date, and
    what is the future), but never a day after the system's: it may put
    today back, not forward. ``recorded_at`` is when an event was stored, by
    the system's clock, kept increasing in each bank's log through steps
    back of up to a minute (docs/architecture.md, "Two clocks"). Close it
    (or use it as a context manager) when done.
    """

    #: What :class:`~timebank.errors.StoreClosed` says once closed, when
    #: not the usual (in the child of a fork).
    _closed_why: str | None = None

    def __init__(self, backend: Backend, *, clock: Clock | None = None) -> None:
        self.backend = backend
        self.url = backend.url
        self._clock = validate_function(clock, "clock", "returns the time") or recording_now
        self._closed = False
        try:
            self._app = LedgerApplication(backend)
            self._access = Access(self._app.bank)
        except errors.TimebankError:
            raise
        except Exception as e:
            # the store's file itself (damaged, full, unreadable) named as
            # every later command names it; anything else as it came
            raise store_file_failure(backend.url, e) or errors.StorageError(
                f"cannot open the store at {backend.url}: {type(e).__name__}: {e}", url=backend.url
            ) from e
        self._pid = os.getpid()
        _OPEN_HERE.add(self)

    def _forked(self) -> None:
        """In the child of a fork (a web server's worker forked after the app
        opened the store; a ``multiprocessing`` child): every call raises
        ``StoreClosed``, and the connections and files the child shares with
        the parent are let go without closing them (a PostgreSQL connection
        closed here ends the parent's session). The lock is a new one:
        another thread of the parent may have held it at the fork, and no
        thread here would let it go."""
        self._app.lock = RLock()
        if self._closed:
            return
        self._closed = True
        self._closed_why = (
            f"the store at {self.url} was opened in process {self._pid}, which this process"
            " was forked from: open it again in this process"
        )
        if self._read_model is not None:
            self._read_model.forget(self._closed_why, self._app.lock)
        self.backend.forget(self._app.factory)

    def close(self) -> None:
        """Close the store (its read model too); ``with timebank.open(...)``
        calls it. A call another thread is running finishes first; every
        call after raises :class:`~timebank.errors.StoreClosed`. Closing
        again does nothing."""
        with self._app.lock:
            if self._closed:
                return
            self._closed = True
            self._close_read_model()
            self._app.close()
            self.backend.close()

    def __repr__(self) -> str:
        """``<Timebank URL>`` (``(closed)`` after :meth:`close`), for an app's
        logs: a PostgreSQL password is shown as ``***``, as in :attr:`url`."""
        return f"<Timebank {self.url}{' (closed)' if self._closed else ''}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @serialised
    def today(self, bank: str | None = None) -> date:
        """Today's date in the bank's timezone (default policy's without a
        bank): the clock's, never after the system's."""
        return self._today_for(Policy() if bank is None else self.policy(bank))

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise errors.InvalidInput("the clock must return a timezone-aware datetime")
        return now

    # --- banks ------------------------------------------------------------------------
    @serialised
    def create_bank(
        self,
        bank: str,
        *,
        name: str,
        actor: str,
        policy: Policy | None = None,
        opened_on: date | str | None = None,
    ) -> BankInfo:
        """Open a new time bank with its pot; ``actor`` becomes its admin.

        A path such as ``thurrock/tilbury-hub`` opens a **mini time bank**
        inside ``thurrock``: the parent must exist, ``actor`` must hold
        ``manage_bank`` there, and a policy not given is copied from the
        parent's. ``opened_on`` may be in the past (for historic data, not
        before the parent opened) but not in the future of the policy's
        timezone. Who may open a root bank is the embedding app's decision.
        """
        bank = validate_bank_id(bank)
        actor = validate_actor_id(actor)
        if not isinstance(name, str) or not name.strip() or len(name) > BANK_NAME_LENGTH_MAX:
            raise errors.InvalidInput(f"bank name must be 1-200 characters: {name!r}")
        # no control character, as in a profile's text: PostgreSQL's text
        # columns refuse a NUL, and the read model could not take the bank
        validate_profile_text(name, "bank name")
        if policy is not None and not isinstance(policy, Policy):
            raise errors.InvalidPolicy(f"expected a Policy, got {policy!r}")
        day_given = None if opened_on is None else parse_date(opened_on)

        def command() -> BankInfo:
            parent_id = parent_bank(bank)
            parent = None if parent_id is None else self._app.bank(parent_id)
            if parent is not None:
                self._access.require(parent, actor, Action.MANAGE_BANK, "open mini time banks")
            bank_policy = policy or (Policy() if parent is None else parent.policy)
            today = self._today_for(bank_policy)
            day = day_given or today
            if day > today:
                raise errors.OccurredInFuture(
                    f"bank {bank!r} cannot open on {day}: today is {today}",
                    bank=bank,
                    subject=bank,
                )
            if parent is not None and day < parent.opened_on:
                raise errors.BeforeBankOpened(
                    f"mini time bank {bank!r} cannot open on {day}, before"
                    f" {parent.bank_id!r} opened ({parent.opened_on})",
                    bank=bank,
                )
            registry = self._app.registry() or Registry()
            registry.register(bank)
            new_bank = Bank(
                bank_id=bank, name=name.strip(), policy=bank_policy, opened_on=day, actor=actor
            )
            self._app.save_changes(registry, new_bank)
            return _bank_info(new_bank)

        return self._app.write(command)

    @serialised
    def set_policy(self, bank: str, policy: Policy, *, actor: str) -> Policy:
        """Replace a bank's policy; it applies to entries recorded from now on."""
        actor = validate_actor_id(actor)
        if not isinstance(policy, Policy):
            raise errors.InvalidPolicy(f"expected a Policy, got {policy!r}")

        def command() -> Policy:
            ledger = self._app.bank(validate_bank_id(bank))
            self._access.require(ledger, actor, Action.MANAGE_BANK, "change the policy")
            ledger.change_policy(policy, actor)
            self._app.save_changes(ledger)
            return ledger.policy

        return self._app.write(command)

    @serialised
    def policy(self, bank: str) -> Policy:
        """The bank's current policy (limits, timezone, permissions...)."""
        return self._app.bank(validate_bank_id(bank)).policy

    @serialised
    def bank(self, bank: str) -> BankInfo:
        """One bank: its name, parent, opening day, policy, number of members
        and roles."""
        return _bank_info(self._app.bank(validate_bank_id(bank)))

    @serialised
    def banks(self) -> list[BankInfo]:
        """Every bank of the store, mini banks included, in the order they
        were opened."""
        return [_bank_info(ledger) for ledger in self._all_banks()]

    def _all_banks(self) -> list[Bank]:
        """Every bank, loaded, in the order they were opened (the bank cache
        holds them all, however many: docs/performance.md, "Many banks")."""
        return [self._app.bank(b) for b in self._bank_ids()]

    def _bank_ids(self) -> list[str]:
        """Every bank's id, mini banks included, in the order they were
        opened."""
        registry = self._app.registry()
        return [] if registry is None else list(registry.banks)

    # --- roles and guardians ----------------------------------------------------------------
    @serialised
    def grant_role(self, bank: str, user: str, role: Role | str, *, actor: str) -> BankInfo:
        """Give ``user`` the ``coordinator`` or ``admin`` role in a bank (and
        so in its mini banks). Needs ``manage_bank``."""
        user = validate_actor_id(user)
        try:
            granted = Role(role)
        except ValueError:
            raise errors.InvalidInput(f"unknown role: {role!r}", role=role) from None
        return self._bank_command(
            bank, actor, Action.MANAGE_BANK, "grant roles",
            lambda ledger: ledger.grant_role(user, granted, actor),
        )  # fmt: skip

    @serialised
    def revoke_role(self, bank: str, user: str, *, actor: str) -> BankInfo:
        """Take away the role granted to ``user`` in a bank. Needs
        ``manage_bank``; a root bank keeps at least one admin."""
        user = validate_actor_id(user)
        return self._bank_command(
            bank, actor, Action.MANAGE_BANK, "revoke roles",
            lambda ledger: ledger.revoke_role(user, actor),
        )  # fmt: skip

    @serialised
    def role(self, bank: str, user: str) -> Role | None:
        """``user``'s role in a bank: granted there or in a parent bank, or
        ``member`` while an active member; ``None`` without one."""
        bank, user = validate_bank_id(bank), validate_actor_id(user)
        return self._access.role(self._app.bank(bank), user)

    @serialised
    def appoint_guardian(self, bank: str, member: str, guardian: str, *, actor: str) -> BankInfo:
        """Appoint a guardian angel who may act for ``member`` in a bank.
        Needs ``manage_members``."""
        member = validate_member_id(member)
        guardian = validate_actor_id(guardian)
        return self._bank_command(
            bank, actor, Action.MANAGE_MEMBERS, "appoint guardians",
            lambda ledger: ledger.appoint_guardian(member, guardian, actor),
        )  # fmt: skip

    @serialised
    def remove_guardian(self, bank: str, member: str, guardian: str, *, actor: str) -> BankInfo:
        """Remove a guardian angel of ``member``. Needs ``manage_members``."""
        member = validate_member_id(member)
        guardian = validate_actor_id(guardian)
        return self._bank_command(
            bank, actor, Action.MANAGE_MEMBERS, "remove guardians",
            lambda ledger: ledger.remove_guardian(member, guardian, actor),
        )  # fmt: skip

    @serialised
    def guardians(self, bank: str, member: str) -> list[str]:
        """The guardian angels appointed for a member in a bank."""
        bank, member = validate_bank_id(bank), validate_member_id(member)
        return list(self._app.bank(bank).guardians.get(member, []))

    def _bank_command(
        self, bank: str, actor: str, action: Action, what: str, change: Callable[[Bank], None]
    ) -> BankInfo:
        bank = validate_bank_id(bank)
        actor = validate_actor_id(actor)

        def command() -> BankInfo:
            ledger = self._app.bank(bank)
            self._access.require(ledger, actor, action, what)
            change(ledger)
            self._app.save_changes(ledger)
            return _bank_info(ledger)

        return self._app.write(command)

    # --- members ---------------------------------------------------------------------
    @serialised
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
        account there. Personal details go in ``profile``, never in events:
        it is stored (replacing any the member has) in the transaction of
        the join, so a join that fails leaves no profile behind."""
        bank = validate_bank_id(bank)
        member = validate_member_id(member)
        actor = validate_actor_id(actor)
        if profile is not None:
            _check_profile(profile)  # before the join: a bad profile changes nothing
        try:
            account_kind = AccountKind(kind)
        except ValueError:
            raise errors.InvalidInput(
                f"member kind must be individual or organisation: {kind!r}", kind=kind
            ) from None
        day = None if joined_on is None else parse_date(joined_on)

        # the profile goes in with the event, in one transaction
        with_profile = None if profile is None else IndexUpdate(profiles=((member, profile),))

        def command() -> Member:
            ledger = self._app.bank(bank)
            self._access.require(ledger, actor, Action.MANAGE_MEMBERS, "add members")
            today = self._today_in(ledger)
            ledger.join(member, account_kind, day or today, actor, today)
            self._app.save_changes(ledger, index=with_profile)
            return _member(ledger, member)

        return self._app.write(command)

    @serialised
    def member(self, bank: str, member: str) -> Member:
        """One member of a bank: kind, status, periods and balance; raises
        ``MemberNotFound`` if they never joined it."""
        bank, member = validate_bank_id(bank), validate_member_id(member)
        ledger = self._app.bank(bank)
        if not ledger.is_member(member):
            raise errors.MemberNotFound(
                f"{member!r} is not a member of bank {bank!r}", bank=bank, member=member
            )
        return _member(ledger, member)

    @serialised
    def members(self, bank: str) -> list[Member]:
        """Every member who ever joined the bank, in the order they joined
        (left and suspended ones too; see ``status``)."""
        ledger = self._app.bank(validate_bank_id(bank))
        return [_member(ledger, m) for m in ledger.members()]

    @serialised
    def memberships(self, member: str) -> list[Member]:
        """Every bank account of a member (one per bank they joined)."""
        member = validate_member_id(member)
        return [_member(ledger, member) for ledger in self._banks_of(member)]

    @serialised
    def members_alike(self, member: str) -> list[Member]:
        """The memberships of every other member whose id is ``member``'s but
        for case (``M-0042`` for ``m-0042``), whether or not ``member`` is
        one, banks in the order they were opened. Member ids are
        case-sensitive, and an older system's may not have been: an app can
        ask before a ``join`` and warn, as ``timebank join`` and the members
        import do."""
        member = validate_member_id(member)
        folded = member.casefold()
        return [
            _member(ledger, other)
            for ledger in self._all_banks()
            for other in ledger.members()
            if other != member and other.casefold() == folded
        ]

    def _banks_of(self, member: str) -> list[Bank]:
        return [ledger for ledger in self._all_banks() if ledger.is_member(member)]

    @serialised
    def suspend(self, bank: str, member: str, *, actor: str) -> Member:
        """Suspend an active member: they take part in no new entries."""
        return self._lifecycle(
            bank, member, actor, lambda ledger, m, a, _: ledger.suspend(m, a), "suspend members"
        )

    @serialised
    def reinstate(self, bank: str, member: str, *, actor: str) -> Member:
        """Make a suspended member active again."""
        return self._lifecycle(
            bank, member, actor, lambda ledger, m, a, _: ledger.reinstate(m, a), "reinstate members"
        )

    @serialised
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

        def unused() -> None:
            # under the write lock, with the bank found: an id that another
            # writer takes while this call waits for the lock is refused too
            if self._app.index.find_entry(entry_id) is not None:
                raise errors.EntryConflict(
                    f"donation id {entry_id!r} is already recorded",
                    entry_id=entry_id,
                    field="entry_id",
                )
            self._check_not_pending(entry_id)

        return self._lifecycle(
            bank, member, actor,
            lambda ledger, m, a, today: ledger.leave(m, day or today, a, today, entry_id),
            None, unused,
        )  # fmt: skip

    @serialised
    def rejoin(
        self, bank: str, member: str, *, actor: str, rejoined_on: date | str | None = None
    ) -> Member:
        """A member who left joins again on ``rejoined_on`` (default today)."""
        day = None if rejoined_on is None else parse_date(rejoined_on)
        return self._lifecycle(
            bank, member, actor,
            lambda ledger, m, a, today: ledger.rejoin(m, day or today, a, today),
            "readmit members",
        )  # fmt: skip

    def _lifecycle(
        self,
        bank: str,
        member: str,
        actor: str,
        change: Callable[[Bank, str, str, date], None],
        what: str | None,
        check: Callable[[], None] | None = None,
    ) -> Member:
        """A lifecycle change by someone with ``manage_members``; ``what`` is
        None for the changes a member may make for themselves (leaving).
        ``check`` runs under the write lock once the bank is found, before
        the rest (leaving's donation id)."""
        bank = validate_bank_id(bank)
        member = validate_member_id(member)
        actor = validate_actor_id(actor)

        def command() -> Member:
            ledger = self._app.bank(bank)
            if check is not None:
                check()
            if what is not None:
                self._access.require(ledger, actor, Action.MANAGE_MEMBERS, what)
            elif not self._access.may(ledger, actor, Action.MANAGE_MEMBERS):
                self._access.require_acting_for(ledger, actor, member)
            change(ledger, member, actor, self._today_in(ledger))
            self._app.save_changes(ledger, index=index_update([ledger], ledger.bank_id))
            return _member(ledger, member)

        return self._app.write(command)

    @serialised
    def erase_member(self, member: str, *, actor: str) -> Erasure:
        """Erase a member's personal data (their profile) beyond recovery.

        Entries, balances and every figure stay exactly as they were: no event
        ever held the data. A ``MemberErased`` event records the erasure, in
        the transaction that deletes the profile."""
        member = validate_member_id(member)
        actor = validate_actor_id(actor)

        def command() -> bool:
            # under the write lock, as every command's checks: a role
            # revoked meanwhile is seen
            self._require_member_manager(actor, member)
            registry = self._app.registry() or Registry()
            registry.member_erased(member, actor)
            found = self._app.profiles.get(member) is not None
            # the deletion and its record, in one transaction
            self._app.save_changes(registry, index=IndexUpdate(profiles_erased=(member,)))
            return found

        deleted = self._app.write(command)
        return Erasure(member, deleted, self._app.profiles.purge())

    @serialised
    def set_profile(self, member: str, profile: Profile, *, actor: str) -> None:
        """Store (replace) a member's personal details in the profile store."""
        actor = validate_actor_id(actor)
        member = validate_member_id(member)
        _check_profile(profile)

        def command() -> None:
            # under the write lock: an import or a join writing this member's
            # profile does it whole before or after; a role revoked meanwhile
            # is seen
            if actor != member:
                self._require_member_manager(actor, member)
            self._app.profiles.put(member, profile)

        self._app.write(command)

    @serialised
    def update_profile(self, member: str, *, actor: str, **fields: str | None) -> Profile:
        """Change some of a member's personal details: each field given
        (``display_name``, ``email``, ``phone``, ``area``) replaces the stored
        one, ``None`` clears it, and the others stay. Returns the profile as
        stored. Read and written under the store's write lock."""
        actor = validate_actor_id(actor)
        member = validate_member_id(member)
        names = [f.name for f in attrs.fields(Profile)]
        unknown = sorted(fields.keys() - set(names))
        if unknown or not fields:
            problem = f"a profile has no field {unknown[0]!r}" if unknown else "no field given"
            raise errors.InvalidInput(f"{problem}: its fields are {', '.join(names)}")
        _check_profile(Profile(**fields))  # the fields given, as join and set_profile check them

        def command() -> Profile:
            if actor != member:
                self._require_member_manager(actor, member)
            profile = self._app.profiles.changed(member, fields)
            self._app.profiles.put(member, profile)
            return profile

        return self._app.write(command)

    def _require_member_manager(self, actor: str, member: str) -> None:
        """A store-wide act on a member's personal data: by someone who manages
        members in one of their banks (in any bank, if they are in none)."""
        ledgers = self._banks_of(member) or self._all_banks()
        self._access.require_member_manager(ledgers, actor, member)

    @serialised
    def profile(self, member: str) -> Profile | None:
        """The member's personal fields, kept out of the event log; ``None``
        if they have none or were erased."""
        return self._app.profiles.get(validate_member_id(member))

    @serialised
    def subject_access(self, person: str) -> SubjectAccess:
        """Everything this store holds about a person, for a subject access
        request (docs/membership.md): profile, memberships and their periods,
        whole statements, the entries they recorded or that were recorded on
        their behalf, the pending entries they take part in, roles,
        guardianships, and every event of the log that names them. ``person``
        may be a member, a coordinator or a guardian; :class:`MemberNotFound`
        if they have no profile and no event names them."""
        person = validate_member_id(person)

        def read() -> tuple[
            list[str], list[Bank], dict[str, tuple[StatementLine, ...]], dict[str, str | None]
        ]:
            banks = self._bank_ids()
            ledgers = [self._app.bank(b) for b in banks]
            with self._reading() as db:  # caught up to the log's end, then one snapshot
                statements = {
                    ledger.bank_id: whole_statement(db, ledger.bank_id, person)
                    for ledger in ledgers
                    if ledger.is_member(person)
                }
                recorded = {str(r[0]): r[1] for r in db.execute(
                    "SELECT entry_id, reversed_by FROM rm_entries"
                    " WHERE actor = ? OR on_behalf_of = ? ORDER BY seq",
                    (person, person))}  # fmt: skip
            return banks, ledgers, statements, recorded

        # the banks, the read model and the log of one moment: nothing was
        # committed while they were read, so the read model was caught up
        # to the same event as the banks were loaded
        moment, (banks, ledgers, statements, recorded) = self._at_one_moment(read)
        joined = [ledger for ledger in ledgers if ledger.is_member(person)]
        guardian_of = {
            ledger.bank_id: tuple(sorted(m for m, g in ledger.guardians.items() if person in g))
            for ledger in ledgers
        }
        found = SubjectAccess(
            person=person,
            profile=self._app.profiles.get(person),
            memberships=tuple(_member(ledger, person) for ledger in joined),
            periods={
                ledger.bank_id: tuple((start, end) for start, end in ledger.periods[person])
                for ledger in joined
            },
            statements=statements,
            recorded=tuple(  # reversed as of the moment
                attrs.evolve(self.entry(entry_id), reversed_by=reversed_by)
                for entry_id, reversed_by in recorded.items()
            ),
            pending=tuple(
                self._pending_view(ledger, entry_id)
                for ledger in ledgers
                for entry_id, fields in ledger.pending.items()
                if person in {fields[k] for k in _PENDING_PEOPLE}
            ),
            roles={
                ledger.bank_id: ledger.roles[person] for ledger in ledgers if person in ledger.roles
            },
            guardians={
                ledger.bank_id: tuple(ledger.guardians[person])
                for ledger in ledgers
                if ledger.guardians.get(person)
            },
            guardian_of={bank: members for bank, members in guardian_of.items() if members},
            events=self._events_naming(person, banks, moment),
        )
        if found.profile is None and not found.events:
            raise errors.MemberNotFound(
                f"this store holds nothing about {person!r}: no profile, and no event names them",
                member=person,
            )
        return found

    def _events_naming(self, person: str, banks: list[str], end: int) -> tuple[PersonEvent, ...]:
        """Every event of the log up to the event ``end`` (a notification id)
        with ``person`` in a field that names a person, in log order. Only
        the events whose stored bytes hold the id as a JSON string are
        decoded."""
        needle = orjson.dumps(person)
        by_stream = {bank_uuid(b).hex: b for b in banks}
        found: list[PersonEvent] = []
        for records in log_batches(self._app.index.read_log, end):
            for _, stream, topic, state in records:
                if needle not in state:
                    continue
                d = orjson.loads(state)
                named = [k for k in _EVENT_PEOPLE if d.get(k) == person]
                named += [k for k in _EVENT_LEGS if any(a == person for a, _ in d.get(k) or ())]
                if named:
                    found.append(PersonEvent(
                        event=topic.rsplit(":", 1)[-1], bank=by_stream.get(str(stream)),
                        recorded_at=datetime.fromisoformat(d["timestamp"]["_data_"]),
                        entry_id=d.get("entry_id"), named_as=tuple(named),
                    ))  # fmt: skip
        return tuple(found)

    # --- entries ------------------------------------------------------------------------
    @serialised
    def record_exchange(
        self,
        bank: str,
        provider: str,
        receiver: str,
        hours: Hours | None = None,
        *,
        actor: str,
        minutes: int | None = None,
        occurred_on: date | str | None = None,
        category: str | None = None,
        entry_id: str | None = None,
        on_behalf_of: str | None = None,
        receiver_bank: str | None = None,
    ) -> RecordedEntry:
        """``provider`` helped ``receiver``: provider +amount, receiver -amount.

        Give the amount as ``hours`` (``"1.5"``, ``"1:30"``, ``2``) or as whole
        ``minutes``. Pass your own ``entry_id`` to make retries safe: the same
        id with the same fields returns the recorded entry, with different
        fields raises :class:`~timebank.errors.EntryConflict`.

        The entry takes effect at once, so ``actor`` needs the ``record``
        permission (a coordinator); members :meth:`propose` instead.
        ``on_behalf_of`` names the party the actor recorded it for (both ids
        are kept). ``receiver_bank`` names the receiver's bank when it is
        another bank of the same tree (an inter-bank entry, see
        docs/workflows.md).
        """
        return self._record(
            EntryKind.EXCHANGE, bank, provider, receiver, hours, minutes, occurred_on,
            category, entry_id, actor, on_behalf_of, receiver_bank,
        )  # fmt: skip

    @serialised
    def record_pot_exchange(
        self,
        bank: str,
        provider: str,
        receiver: str,
        hours: Hours | None = None,
        *,
        actor: str,
        minutes: int | None = None,
        occurred_on: date | str | None = None,
        category: str | None = None,
        entry_id: str | None = None,
        on_behalf_of: str | None = None,
        receiver_bank: str | None = None,
    ) -> RecordedEntry:
        """``provider`` helped ``receiver`` and the pot of the receiver's bank
        paid: provider +amount, pot -amount, receiver unchanged."""
        return self._record(
            EntryKind.POT_EXCHANGE, bank, provider, receiver, hours, minutes, occurred_on,
            category, entry_id, actor, on_behalf_of, receiver_bank,
        )  # fmt: skip

    @serialised
    def donate(
        self,
        bank: str,
        donor: str,
        hours: Hours | None = None,
        *,
        actor: str,
        minutes: int | None = None,
        occurred_on: date | str | None = None,
        category: str | None = None,
        entry_id: str | None = None,
        on_behalf_of: str | None = None,
        receiver_bank: str | None = None,
    ) -> RecordedEntry:
        """``donor`` gives credits to the community pot of their bank, or of
        ``receiver_bank`` (another bank of the tree). Members may donate their
        own credits up to the bank's approval threshold."""
        return self._record(
            EntryKind.DONATION, bank, donor, None, hours, minutes, occurred_on,
            category, entry_id, actor, on_behalf_of, receiver_bank,
        )  # fmt: skip

    @serialised
    def gift(
        self,
        bank: str,
        giver: str,
        recipient: str,
        hours: Hours | None = None,
        *,
        actor: str,
        minutes: int | None = None,
        occurred_on: date | str | None = None,
        category: str | None = None,
        entry_id: str | None = None,
        on_behalf_of: str | None = None,
        receiver_bank: str | None = None,
    ) -> RecordedEntry:
        """``giver`` gives some of their credits to ``recipient``. Either may
        be ``"@pot"`` (the bank's pot; a coordinator's act), the recipient
        only in another bank (``receiver_bank``): a pot-to-pot transfer.
        Members may give their own credits up to the approval threshold."""
        return self._record(
            EntryKind.GIFT, bank, giver, recipient, hours, minutes, occurred_on,
            category, entry_id, actor, on_behalf_of, receiver_bank,
        )  # fmt: skip

    @serialised
    def record_opening_balance(
        self,
        bank: str,
        member: str,
        hours: Hours | None = None,
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
            EntryKind.OPENING_BALANCE, bank, member, None, hours, minutes, occurred_on,
            None, entry_id, actor, None, None,
        )  # fmt: skip

    @serialised
    def record_group_exchange(
        self,
        bank: str,
        providers: Mapping[str, Hours],
        receivers: Mapping[str, Hours],
        *,
        actor: str,
        occurred_on: date | str | None = None,
        category: str | None = None,
        entry_id: str | None = None,
        on_behalf_of: str | None = None,
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
        provided = _shares("providers", providers)
        received = _shares("receivers", receivers)
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
            undated.bank,
            lambda today: attrs.evolve(undated, occurred_on=day or today),
            actor,
            _optional_member(on_behalf_of),
        )

    @serialised
    def reverse(
        self,
        entry_id: str,
        *,
        actor: str,
        reversal_id: str | None = None,
        occurred_on: date | str | None = None,
        on_behalf_of: str | None = None,
    ) -> RecordedEntry:
        """Undo a recorded entry with a new reversal entry (once; never a
        reversal itself). Nothing is deleted or edited. Needs ``reverse`` in
        the entry's bank (both banks for an inter-bank entry), which reverses
        all of it in one transaction. ``on_behalf_of`` names a party of the
        entry reversed whom the actor may act for (docs/workflows.md)."""
        # the input's form first, as every command checks it (docs/concepts.md)
        entry_id = validate_entry_id(entry_id)
        actor = validate_actor_id(actor)
        new_id = _entry_id(reversal_id)
        day = None if occurred_on is None else parse_date(occurred_on)
        behalf = _optional_member(on_behalf_of)
        target = self.entry(entry_id)

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

        return self._write_entry(target.bank, new, actor, behalf, target.receiver_bank)

    @serialised
    def entry(self, entry_id: str) -> RecordedEntry:
        """A recorded entry by id, with ``reversed_by`` if it was reversed.
        An inter-bank entry is shown from the provider's bank (``legs`` are
        that side's; ``receiver_bank`` names the other)."""
        entry_id = validate_entry_id(entry_id)
        found = self._app.index.find_entry(entry_id)
        if found is None:
            proposal = self._app.index.find_proposal(entry_id)
            pending = self._pending_of(entry_id, proposal)
            if pending is not None:  # say so: it is not recorded yet
                raise errors.EntryNotFound(
                    f"entry {entry_id!r} is pending, not recorded: it awaits"
                    f" {pending.pending[entry_id]['awaiting']} (decline it to drop it)",
                    entry_id=entry_id,
                )
            if proposal is not None:  # settled without taking effect
                why = f": its proposal {self._how_settled(entry_id, proposal)}"
                raise errors.EntryNotFound(f"no entry {entry_id!r}{why}", entry_id=entry_id)
            raise errors.EntryNotFound(f"no entry {entry_id!r}", entry_id=entry_id)
        return self._indexed_entry(entry_id, found)

    def _indexed_entry(self, entry_id: str, found: IndexedEntry) -> RecordedEntry:
        """The recorded entry the entry index's row ``found`` names."""
        bank_id = self._app.bank_by_uuid(found.bank_uuid).bank_id
        with self._app.unreadable_named(f"entry {entry_id!r}"):
            entry_event = self._event_at(found.bank_uuid, found.version)
        return self._entry_of(found, entry_event, bank_id)

    def _entry_of(self, found: IndexedEntry, entry_event: object, bank_id: str) -> RecordedEntry:
        """The recorded entry of the entry index's row ``found`` in bank
        ``bank_id``, from the event that row names (None if the log lacks it)."""
        with self._app.unreadable_named(f"entry {found.entry_id!r}"):  # reading its fields
            if isinstance(entry_event, Bank.EntryEvent):
                return recorded_entry(entry_event, bank_id, found.reversed_by)
        # the index and the log disagree
        held = "no event" if entry_event is None else f"a {type(entry_event).__name__} event"
        raise errors.EventUnreadable(
            f"entry {found.entry_id!r} cannot be read from the store {self.url}: the entry"
            f" index names event {found.version} of bank {bank_id!r}, and the log holds"
            f" {held} there. {DAMAGED_CURE}",
            url=self.url,
        )

    def _entry_today(self, home: Bank, other_bank: str | None) -> date:
        """The date of an entry given none: today in ``home``, or in
        ``other_bank`` (the entry's other side) if that is earlier, so that
        neither bank finds it in its future (docs/workflows.md)."""
        today = self._today_in(home)
        if other_bank is not None:
            with contextlib.suppress(errors.BankNotFound):  # said where the entry is checked
                today = min(today, self._today_in(self._app.bank(other_bank)))
        return today

    def _new_entry(
        self,
        kind: EntryKind,
        bank: str,
        provider: str | None,
        receiver: str | None,
        hours: Hours | None,
        minutes: int | None,
        category: str | None,
        entry_id: str | None,
        receiver_bank: str | None,
    ) -> NewEntry:
        """A validated entry, dated ``date.min`` until the bank's today is known."""
        bank = validate_bank_id(bank)
        other_bank = None if receiver_bank is None else validate_bank_id(receiver_bank)
        other_bank = None if other_bank == bank else other_bank
        pots_allowed = kind is EntryKind.GIFT
        if pots_allowed and receiver == POT and other_bank is None:
            raise errors.InvalidInput("a gift to the bank's own pot is a donation: use donate")
        return NewEntry(
            entry_id=_entry_id(entry_id),
            bank=bank,
            kind=kind,
            minutes=_amount(hours, minutes, allow_negative=kind is EntryKind.OPENING_BALANCE),
            occurred_on=date.min,
            provider=_account(provider, pots_allowed, required=True),
            receiver=_account(receiver, pots_allowed, required=kind not in _NO_RECEIVER),
            category=None if category is None else validate_category(category),
            receiver_bank=other_bank,
        )

    def _record(
        self,
        kind: EntryKind,
        bank: str,
        provider: str | None,
        receiver: str | None,
        hours: Hours | None,
        minutes: int | None,
        occurred_on: date | str | None,
        category: str | None,
        entry_id: str | None,
        actor: str,
        on_behalf_of: str | None,
        receiver_bank: str | None,
    ) -> RecordedEntry:
        undated = self._new_entry(
            kind, bank, provider, receiver, hours, minutes, category, entry_id, receiver_bank
        )
        actor = validate_actor_id(actor)
        day = None if occurred_on is None else parse_date(occurred_on)
        return self._write_entry(
            undated.bank,
            lambda today: attrs.evolve(undated, occurred_on=day or today),
            actor,
            _optional_member(on_behalf_of),
            undated.receiver_bank,
        )

    def _write_entry(
        self,
        bank: str,
        make: Callable[[date], NewEntry],
        actor: str,
        on_behalf_of: str | None,
        other_bank: str | None = None,
    ) -> RecordedEntry:
        """Record, at once, the entry ``make(today)`` describes; ``today`` is
        the entry's bank's (and ``other_bank``'s, whichever is earlier), for
        entries given no date."""

        def command() -> RecordedEntry:
            home = self._app.bank(bank)
            new = make(self._entry_today(home, other_bank))
            if self._app.index.find_entry(new.entry_id) is not None:
                return self._same_entry_or_conflict(new)
            self._check_not_pending(new.entry_id)
            if new.reverses is not None:
                original = self.entry(new.reverses)
                invariant(
                    original.bank == home.bank_id, "a reversal is written on its entry's bank"
                )
                ledgers = self._ledgers(home, original.receiver_bank)
                self._access.require_on_behalf(ledgers, original, actor, on_behalf_of)
                checked = ledgers
                if original.reverses is not None:
                    # A reversal of an inter-bank entry moved both banks but
                    # names its own alone: undoing it (refused next, as a
                    # reversal) needs ``reverse`` in both, as the entry it undid.
                    far = self.entry(original.reverses).receiver_bank
                    checked = self._ledgers(home, far)
                for ledger in checked:
                    self._access.require(ledger, actor, Action.REVERSE, "reverse entries")
                return self._reverse(ledgers, new, original, actor, on_behalf_of)
            ledgers = self._ledgers(home, new.receiver_bank)
            self._access.require_record(ledgers, new, actor, on_behalf_of)
            return self._take_effect(ledgers, new, actor, on_behalf_of)

        return self._app.write(command)

    def _ledgers(
        self,
        home: Bank,
        receiver_bank: str | None,
        load: Callable[[str], Bank] | None = None,
    ) -> list[Bank]:
        """The banks an entry is recorded on: its own (``home``, already
        loaded), and the receiver's (loaded by ``load``, default the store's)."""
        bank = home.bank_id
        if receiver_bank is None:
            return [home]
        if root_bank(bank) != root_bank(receiver_bank):
            raise errors.BanksNotInSameTree(
                f"banks {bank!r} and {receiver_bank!r} are not in the same tree",
                bank=bank,
                receiver_bank=receiver_bank,
            )
        return [home, (load or self._app.bank)(receiver_bank)]

    def _check_not_pending(self, entry_id: str) -> None:
        """Entry ids are unique in the store and never used twice: a
        pending entry's, and a proposal's that was declined or expired, are
        spent too (one look-up)."""
        proposal = self._app.index.find_proposal(entry_id)
        if proposal is None:
            return
        if proposal.settled is None:
            raise errors.EntryConflict(
                f"entry {entry_id!r} is pending: confirm, approve or decline it",
                entry_id=entry_id,
                field="entry_id",
            )
        raise errors.EntryConflict(
            f"entry {entry_id!r} is spent: its proposal {self._how_settled(entry_id, proposal)},"
            " and an entry id is never used again",
            entry_id=entry_id,
            field="entry_id",
        )

    def _take_effect(
        self, ledgers: list[Bank], new: NewEntry, actor: str, on_behalf_of: str | None
    ) -> RecordedEntry:
        """Record ``new`` on its bank(s) and save, with any events already
        pending on them (a confirmation), in one transaction."""
        self._apply_entry(ledgers, new, actor, on_behalf_of)
        return self._save_entry(ledgers, {})

    def _apply_entry(
        self,
        ledgers: list[Bank],
        new: NewEntry,
        actor: str,
        on_behalf_of: str | None,
        *,
        historic: bool = False,
        flag_limits: bool = False,
        today: Callable[[Bank], date] | None = None,
    ) -> None:
        """Record ``new`` on its bank(s) in memory, unsaved (``historic``,
        ``flag_limits``: see :meth:`Bank.record`; the importer's, as is
        ``today``, today's date in a bank, by default asked of the clock)."""
        home = ledgers[0]
        rules = {"historic": historic, "flag_limits": flag_limits}
        today_in = today or self._today_in
        if new.kind is EntryKind.GROUP_EXCHANGE:
            home.record_group(new, actor, today_in(home), on_behalf_of, **rules)
        elif new.receiver_bank is None:
            home.record(new, actor, today_in(home), on_behalf_of, **rules)
        else:
            sides = inter_bank_legs(
                new.kind, new.bank, _party(new.provider), new.receiver_bank, new.receiver,
                new.minutes,
            )  # fmt: skip
            for ledger in ledgers:
                ledger.record_side(
                    new, sides[ledger.bank_id], actor, today_in(ledger), on_behalf_of, **rules
                )

    def _reverse(
        self,
        ledgers: list[Bank],
        new: NewEntry,
        original: RecordedEntry,
        actor: str,
        on_behalf_of: str | None,
    ) -> RecordedEntry:
        """Reverse ``original`` on each bank it was recorded on."""
        parties = self._apply_reversal(ledgers, new, original, actor, on_behalf_of)
        return self._save_entry(ledgers, parties)

    def _apply_reversal(
        self,
        ledgers: list[Bank],
        new: NewEntry,
        original: RecordedEntry,
        actor: str,
        on_behalf_of: str | None,
        *,
        flag_limits: bool = False,
        today: Callable[[Bank], date] | None = None,
    ) -> dict[str, list[str]]:
        """Reverse ``original`` in memory, unsaved, on each bank it was
        recorded on; returns the parties to index per bank (``today``: as
        for :meth:`_apply_entry`)."""
        today_in = today or self._today_in
        parties: dict[str, list[str]] = {}
        if original.receiver_bank is None:
            sides = {original.bank: list(original.legs)}
            parties[original.bank] = [p for p in (original.provider, original.receiver) if p]
        else:
            sides = inter_bank_legs(
                original.kind, original.bank, _party(original.provider),
                original.receiver_bank, original.receiver, original.minutes,
            )  # fmt: skip
            parties[original.bank] = [_party(original.provider)]
            parties[original.receiver_bank] = [p for p in [original.receiver] if p]
        for ledger in ledgers:
            side = ledger.bank_id
            ledger.reverse(
                attrs.evolve(new, bank=side),
                attrs.evolve(original, bank=side, legs=tuple(sides[side])),
                actor,
                today_in(ledger),
                on_behalf_of,
                flag_limits=flag_limits,
            )
        return parties

    def _save_entry(self, ledgers: list[Bank], parties: dict[str, list[str]]) -> RecordedEntry:
        home = ledgers[0]
        entry_events = [e for e in home.pending_events if isinstance(e, Bank.EntryEvent)]
        invariant(len(entry_events) == 1, "one entry per save")
        self._app.save_changes(*ledgers, index=index_update(ledgers, home.bank_id, parties))
        return recorded_entry(entry_events[0], home.bank_id)

    # --- pending entries: propose, confirm, approve, decline, expire -----------------------
    @serialised
    def propose(
        self,
        bank: str,
        kind: EntryKind | str,
        provider: str,
        receiver: str | None = None,
        hours: Hours | None = None,
        *,
        actor: str,
        minutes: int | None = None,
        occurred_on: date | str | None = None,
        category: str | None = None,
        entry_id: str | None = None,
        on_behalf_of: str | None = None,
        receiver_bank: str | None = None,
    ) -> PendingEntry:
        """A member proposes an entry they take part in; it moves no balance
        until it takes effect (docs/workflows.md).

        ``kind`` is ``exchange`` (waits for the other party's confirmation,
        then for a coordinator's approval when above the approval threshold),
        ``pot_exchange`` (confirmation, then approval), ``gift`` or
        ``donation`` (approval). ``actor`` must be the provider or receiver
        (the giver, for gifts and donations), or act for them
        (``on_behalf_of``: a guardian angel or coordinator). Every rule but
        balance limits is checked now; limits are checked when it takes effect.
        The same actor proposing the same ``entry_id`` with the same fields
        again (a retry) gets the pending entry while it is pending; from
        anyone else, or with other fields, it is ``EntryConflict``, as is an
        id once declined or expired (spent).
        """
        try:
            entry_kind = EntryKind(kind)
        except ValueError:
            raise errors.InvalidInput(f"unknown entry kind: {kind!r}", kind=kind) from None
        if (receiver is None) != (entry_kind is EntryKind.DONATION):
            raise errors.InvalidInput(
                f"a {entry_kind} needs {'no' if receiver is not None else 'a'} receiver",
                kind=entry_kind.value,
            )
        undated = self._new_entry(
            entry_kind, bank, provider, receiver, hours, minutes, category, entry_id, receiver_bank
        )
        actor = validate_actor_id(actor)
        acting_for = _optional_member(on_behalf_of)
        day = None if occurred_on is None else parse_date(occurred_on)

        def command() -> PendingEntry:
            ledgers = self._ledgers(self._app.bank(undated.bank), undated.receiver_bank)
            home = ledgers[0]
            today = self._entry_today(home, undated.receiver_bank)
            new = attrs.evolve(undated, occurred_on=day or today)
            if self._proposed_again(home, new, actor, acting_for):
                return self._pending_view(home, new.entry_id)
            if self._app.index.find_entry(new.entry_id) is not None:
                raise errors.EntryConflict(
                    f"entry {new.entry_id!r} is already recorded",
                    entry_id=new.entry_id,
                    field="entry_id",
                )
            self._check_not_pending(new.entry_id)
            awaiting, confirmer, needs_approval = self._access.proposal(
                ledgers, new, actor, acting_for
            )
            for ledger in ledgers[1:]:
                ledger.check_entry(new, self._today_in(ledger))
            home.propose(new, actor, acting_for, awaiting, confirmer, needs_approval, today)
            self._app.save_changes(home, index=index_update([home], home.bank_id))
            return self._pending_view(home, new.entry_id)

        return self._app.write(command)

    @staticmethod
    def _proposed_again(home: Bank, new: NewEntry, actor: str, acting_for: str | None) -> bool:
        """Whether ``new`` is pending on ``home`` as proposed by ``actor``
        for ``acting_for``: a retry of that proposal, answered with it. The
        same entry proposed by anyone else is another proposal of the id."""
        pending = home.pending.get(new.entry_id)
        return (pending is not None and home.proposed_entry_from(pending) == new
                and (pending["actor"], pending["on_behalf_of"]) == (actor, acting_for))  # fmt: skip

    @serialised
    def confirm(
        self, entry_id: str, *, actor: str, on_behalf_of: str | None = None
    ) -> RecordedEntry | PendingEntry:
        """The party a pending entry waits for confirms it. It takes effect
        (returns the :class:`RecordedEntry`; balance limits are checked now)
        or, above the approval threshold, waits for approval (returns the
        :class:`PendingEntry`). Raises ``EntryExpired`` after ``expires_on``."""
        entry_id = validate_entry_id(entry_id)
        actor = validate_actor_id(actor)
        acting_for = _optional_member(on_behalf_of)

        def command() -> RecordedEntry | PendingEntry:
            proposal = self._app.index.find_proposal(entry_id)
            home = self._pending_of(entry_id, proposal)
            if home is None:  # taken effect (a retry?), settled, or no such entry
                return self._answered_again(entry_id, proposal, actor, "EntryConfirmed")
            pending = home.pending_entry(entry_id)
            if pending["awaiting"] == Awaiting.APPROVAL and pending["confirmed_by"] == actor:
                return self._pending_view(home, entry_id)  # a retry: as the call answered
            ledgers = self._ledgers(home, pending["receiver_bank"])
            self._access.require_confirmer(ledgers, pending, actor, acting_for)
            if not home.confirm(entry_id, actor, acting_for, self._today_in(home)):
                self._app.save_changes(home, index=index_update([home], home.bank_id))
                return self._pending_view(home, entry_id)
            return self._proposed_takes_effect(ledgers, pending)

        return self._app.write(command)

    @serialised
    def approve(self, entry_id: str, *, actor: str) -> RecordedEntry:
        """A coordinator approves an entry awaiting approval: it takes effect
        (balance limits are checked now). Needs ``approve`` in its bank(s)."""
        entry_id = validate_entry_id(entry_id)
        actor = validate_actor_id(actor)

        def command() -> RecordedEntry:
            proposal = self._app.index.find_proposal(entry_id)
            home = self._pending_of(entry_id, proposal)
            if home is None:  # taken effect (a retry?), settled, or no such entry
                return self._answered_again(entry_id, proposal, actor, "EntryApproved")
            pending = home.pending_entry(entry_id)
            ledgers = self._ledgers(home, pending["receiver_bank"])
            for ledger in ledgers:
                self._access.require(ledger, actor, Action.APPROVE, "approve entries")
            self._access.require_not_involved(home, pending, actor)
            home.approve(entry_id, actor, self._today_in(home))
            return self._proposed_takes_effect(ledgers, pending)

        return self._app.write(command)

    @serialised
    def decline(
        self, entry_id: str, *, actor: str, on_behalf_of: str | None = None
    ) -> PendingEntry:
        """Decline a pending entry: it will never take effect. The party it
        waits for, its proposer (withdrawing it) or an approver may decline.
        In a member's name (``on_behalf_of``: a party of the entry whom the
        actor may act for) it is judged as that member's decline. Sent again
        by the same actor (for the same member) after it committed, its
        reply lost, it is answered as it was (docs/workflows.md)."""
        entry_id = validate_entry_id(entry_id)
        actor = validate_actor_id(actor)
        acting_for = _optional_member(on_behalf_of)

        def command() -> PendingEntry:
            proposal = self._app.index.find_proposal(entry_id)
            home = self._pending_of(entry_id, proposal)
            if home is None:  # declined (a retry?), settled otherwise, or no such entry
                return self._declined_again(entry_id, proposal, actor, acting_for)
            view = self._pending_view(home, entry_id)
            pending = home.pending_entry(entry_id)
            ledgers = self._ledgers(home, pending["receiver_bank"])
            self._access.require_decliner(ledgers, pending, actor, acting_for)
            home.decline(entry_id, actor, acting_for)
            self._app.save_changes(home, index=index_update([home], home.bank_id))
            return view

        return self._app.write(command)

    @serialised
    def pending(self, bank: str, member: str | None = None) -> list[PendingEntry]:
        """Pending entries of a bank (proposed there, or with their receiver
        there), oldest first; only those ``member`` takes part in, if given."""
        bank = validate_bank_id(bank)
        member = _optional_member(member)
        self._app.bank(bank)  # BankNotFound
        tree = [b for b in self._bank_ids() if root_bank(b) == root_bank(bank)]
        found: list[PendingEntry] = []
        for bank_id in tree:
            ledger = self._app.bank(bank_id)
            for entry_id, pending in ledger.pending.items():
                if bank not in (bank_id, pending["receiver_bank"]):
                    continue
                if member is None or member in (pending["provider"], pending["receiver"]):
                    found.append(self._pending_view(ledger, entry_id))
        return sorted(found, key=lambda p: (p.proposed_on, p.entry_id))

    @serialised
    def expire_pending(self, bank: str, *, actor: str) -> list[str]:
        """Record the expiry of the bank's pending entries past ``expires_on``
        (run it daily); returns their ids. Needs ``approve``."""
        bank = validate_bank_id(bank)
        actor = validate_actor_id(actor)

        def command() -> list[str]:
            ledger = self._app.bank(bank)
            self._access.require(ledger, actor, Action.APPROVE, "expire pending entries")
            expired = ledger.expire_pending(actor, self._today_in(ledger))
            if expired:
                self._app.save_changes(ledger, index=index_update([ledger], ledger.bank_id))
            return expired

        return self._app.write(command)

    def _answered_again(
        self, entry_id: str, proposal: Proposal | None, actor: str, settled: str
    ) -> RecordedEntry:
        """For ``entry_id``, not pending (the caller looked, and found
        ``proposal``): the recorded entry when the event before its own in
        its bank is a ``settled`` event (of ``Bank``: ``EntryConfirmed``,
        ``EntryApproved``) of it by ``actor``, a retry of that call whose
        reply was lost, answered with its outcome (docs/workflows.md,
        "Retrying after a lost reply"); else :class:`PendingEntryNotFound`."""
        found = self._app.index.find_entry(entry_id)
        if found is not None and found.version > 1:
            with self._app.unreadable_named(f"entry {entry_id!r}"):
                before: Any = self._event_at(found.bank_uuid, found.version - 1)
                answered = _is_event(before, settled, entry_id) and before.actor == actor
            if answered:
                return self._indexed_entry(entry_id, found)
        raise self._not_pending(entry_id, found, proposal)

    def _declined_again(
        self, entry_id: str, proposal: Proposal | None, actor: str, acting_for: str | None
    ) -> PendingEntry:
        """For ``entry_id``, not pending (the caller looked, and found
        ``proposal``): when it was declined by ``actor`` for ``acting_for``,
        a retry of that call whose reply was lost, the pending entry as it
        stood when declined, read back from the log (docs/workflows.md,
        "Retrying after a lost reply"); else :class:`PendingEntryNotFound`."""
        if proposal is not None and proposal.settled is not None:
            with self._app.unreadable_named(f"pending entry {entry_id!r}"):
                declined: Any = self._event_at(proposal.bank_uuid, proposal.settled)
                if _is_event(declined, "EntryDeclined", entry_id) and (
                    declined.actor,
                    declined.on_behalf_of,
                ) == (actor, acting_for):
                    return self._view_before(entry_id, proposal.bank_uuid, proposal.settled)
        raise self._not_pending(entry_id, self._app.index.find_entry(entry_id), proposal)

    def _view_before(self, entry_id: str, bank_uuid: UUID, version: int) -> PendingEntry:
        """The pending entry ``entry_id`` as it stood before event ``version``
        of its bank settled it: its proposal, and a confirmation that left it
        awaiting approval, found by reading the bank's events back from there
        (a page at a time; a proposal lives ``pending_expiry_days`` or a
        little longer, so the read is short)."""
        confirmed_by: str | None = None
        upto = version - 1
        while upto > 0:
            page = self._app.events.get(
                bank_uuid, gt=max(0, upto - _READ_BACK), lte=upto, desc=True
            )
            for event in page:
                if _is_event(event, "EntryConfirmed", entry_id) and confirmed_by is None:
                    confirmed_by = event.actor  # type: ignore[attr-defined]
                elif _is_event(event, "EntryProposed", entry_id):
                    fields = {f: getattr(event, f) for f in PENDING_FIELDS - {"confirmed_by"}}
                    if confirmed_by is not None:
                        fields.update(awaiting=Awaiting.APPROVAL.value, confirmed_by=confirmed_by)
                    else:
                        fields["confirmed_by"] = None
                    ledger = self._app.bank_by_uuid(bank_uuid)
                    return self._view_of(ledger, fields)
            upto -= _READ_BACK
        raise errors.EventUnreadable(
            f"pending entry {entry_id!r} cannot be read from the store {self.url}: the log"
            f" of bank {self._app.bank_by_uuid(bank_uuid).bank_id!r} holds no proposal of it"
            f" before the event {version} that settled it. {DAMAGED_CURE}",
            url=self.url,
        )

    def _event_at(self, bank_uuid: UUID, version: int) -> object:
        """Event ``version`` of a bank's stream (None when the log lacks it)."""
        return next(iter(self._app.events.get(bank_uuid, gt=version - 1, lte=version)), None)

    def _how_settled(self, entry_id: str, proposal: Proposal) -> str:
        """How a proposal settled without taking effect ended, read from its
        settling event, as what "its proposal" did: "was declined by 'm-4'"
        (for whom, when on behalf), "expired"."""
        invariant(proposal.settled is not None, "a settled proposal")
        with self._app.unreadable_named(f"pending entry {entry_id!r}"):
            event: Any = self._event_at(proposal.bank_uuid, proposal.settled or 0)
            if _is_event(event, "EntryDeclined", entry_id):
                behalf = "" if event.on_behalf_of is None else f" for {event.on_behalf_of!r}"
                return f"was declined by {event.actor!r}{behalf}"
            if _is_event(event, "PendingEntryExpired", entry_id):
                return "expired"
        held = "no event" if event is None else f"a {type(event).__name__} event"
        raise errors.EventUnreadable(
            f"pending entry {entry_id!r} cannot be read from the store {self.url}: the index"
            f" of settled proposals names event {proposal.settled} of bank"
            f" {self._app.bank_by_uuid(proposal.bank_uuid).bank_id!r}, and the log holds"
            f" {held} there. {DAMAGED_CURE}",
            url=self.url,
        )

    def _not_pending(
        self, entry_id: str, recorded: IndexedEntry | None, proposal: Proposal | None
    ) -> errors.PendingEntryNotFound:
        """The refusal of a command on an entry that is not pending, saying
        when it is recorded (``recorded``: its entry-index row), or was
        declined or expired (``proposal``): a retry of a call that
        committed, its reply lost, lands here."""
        if recorded is not None:
            why = f": entry {entry_id!r} is recorded"
        elif proposal is not None and proposal.settled is not None:
            why = f": its proposal {self._how_settled(entry_id, proposal)}"
        else:
            why = ""
        return errors.PendingEntryNotFound(f"no pending entry {entry_id!r}{why}", entry_id=entry_id)

    def _pending_of(self, entry_id: str, proposal: Proposal | None) -> Bank | None:
        """The bank holding the pending entry the store's index found as
        ``proposal`` (``find_proposal``: one look-up, whatever the number of
        banks); None when it is not pending."""
        if proposal is None or proposal.settled is not None:
            return None
        ledger = self._app.bank_by_uuid(proposal.bank_uuid)
        invariant(entry_id in ledger.pending, "the pending index agrees with its bank")
        return ledger

    def _proposed_takes_effect(self, ledgers: list[Bank], pending: dict[str, Any]) -> RecordedEntry:
        new = ledgers[0].proposed_entry_from(pending)
        if self._app.index.find_entry(new.entry_id) is not None:
            raise errors.EntryConflict(
                f"entry {new.entry_id!r} is already recorded elsewhere in the store",
                entry_id=new.entry_id,
                field="entry_id",
            )
        return self._take_effect(ledgers, new, pending["actor"], pending["on_behalf_of"])

    def _pending_view(self, ledger: Bank, entry_id: str) -> PendingEntry:
        return self._view_of(ledger, ledger.pending_entry(entry_id))

    def _view_of(self, ledger: Bank, pending: dict[str, Any]) -> PendingEntry:
        """The view of a pending entry's fields (``Bank.pending``'s) on ``ledger``."""
        entry_id = pending["entry_id"]
        return PendingEntry(
            entry_id=entry_id,
            bank=ledger.bank_id,
            kind=EntryKind(pending["kind"]),
            minutes=pending["minutes"],
            occurred_on=pending["occurred_on"],
            provider=pending["provider"],
            receiver=pending["receiver"],
            receiver_bank=pending["receiver_bank"],
            category=pending["category"],
            actor=pending["actor"],
            on_behalf_of=pending["on_behalf_of"],
            awaiting=pending["awaiting"],
            confirmer=pending["confirmer"],
            needs_approval=pending["needs_approval"],
            proposed_on=pending["proposed_on"],
            expires_on=pending["expires_on"],
            confirmed_by=pending["confirmed_by"],
            expired=self._today_in(ledger) > pending["expires_on"],
        )

    def _same_entry_or_conflict(
        self, new: NewEntry, recorded: RecordedEntry | None = None
    ) -> RecordedEntry:
        """The recorded entry of ``new``'s id (``recorded``, if read
        already), if its fields are ``new``'s; :class:`EntryConflict` if not."""
        if recorded is None:
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
        """Today's date in the policy's timezone, by this store's clock, but
        never after the day of the time of recording: every event the command
        goes on to record is stamped after that instant, so none is dated
        after its own day (docs/architecture.md, "Two clocks")."""
        zone = ZoneInfo(policy.timezone)
        by_clock = self._now().astimezone(zone).date()
        return min(by_clock, recording_now().astimezone(zone).date())

    # --- balances, statements and figures ---------------------------------------------
    @serialised
    def balance(self, bank: str, account: str) -> int:
        """Current balance in minutes of a member, ``@pot``, ``@opening`` or a
        clearing account (``@clearing:OTHER``)."""
        bank, account = validate_bank_id(bank), validate_account_id(account)
        return self._app.bank(bank).balance(account)

    @serialised
    def balances(self, bank: str | None = None) -> list[AccountBalance]:
        """Every account's balance in one bank, or in every bank (as of one
        moment, while other processes may record: the clearing accounts of
        two banks cancel)."""
        if bank is not None:
            ledgers = [self._app.bank(validate_bank_id(bank))]
        else:
            _, ledgers = self._at_one_moment(self._all_banks)
        return [
            AccountBalance(ledger.bank_id, account, ledger.kinds[account], minutes)
            for ledger in ledgers
            for account, minutes in ledger.balances.items()
        ]

    def backup(self, dest: str | os.PathLike[str]) -> Backup:
        """Write a checked copy of this SQLite store to the new file ``dest``
        while other processes go on writing (docs/storage.md, Backups): a
        consistent copy of every event, snapshot, index row and profile, at
        one moment. :class:`BackupRefused` if ``dest`` exists or the store is
        not a SQLite file; :class:`StorageError` if the copy cannot be written
        or fails its check (then nothing is left at ``dest``). The read model
        is not copied: it is rebuilt from the log. It reads on a connection
        of its own and does not hold this store's lock, so commands from
        other threads go on meanwhile (a million-entry store takes seconds)."""
        path = validate_path(dest, "dest")
        with self._app.lock:  # not held while copying: only to see it is open
            check_open(self)
        size, events = self.backend.backup(path)
        return Backup(str(path), size, events)

    @serialised
    def audit(self, *, read_model: bool | Literal["full"] = True) -> AuditReport:
        """Replay the whole event log and check every ledger invariant
        (docs/audit.md): banks sum to zero, clearing accounts cancel, no pot
        below zero, limits respected or flagged, reversals sound, entries
        inside memberships and not in the future of their recording, ids
        unique, the banks as the store loads them (balances, members,
        roles, guardians, pending entries), the entry and pending indexes
        and the read model equal to a replay, no profile value inside an
        event. Reads only; never writes. The store is checked as of one
        moment, so other processes may record meanwhile.

        ``read_model``: ``True`` compares the read model's balance and figure
        tables with the audit's own replay of the log; ``"full"`` compares
        every table, row for row, with a fresh projection of the log (about
        ten times slower); ``False`` skips the read model. From 100,000
        events on, the figures are compared by a second Python process
        beside the replay (docs/audit.md); :class:`StorageError` if it fails."""
        if read_model is not True and read_model is not False and read_model != "full":
            raise errors.InvalidInput(f'read_model must be True, False or "full": {read_model!r}')
        personal = {
            value
            for _, profile in self._app.profiles.all()
            for value in (profile.display_name, profile.email, profile.phone, profile.area)
            if value
        }
        end, (banks, registry_problem, index) = self._at_one_moment(
            lambda: (*self._loaded_banks(), self._stored_index())
        )
        model = self._existing_read_model() if read_model else None
        rebuild = model.rebuild_reason() if model is not None else None
        if rebuild is not None:  # its tables are not this log's: nothing to compare
            model = None
        figures = None
        url = self.backend.reopen_url
        if (
            model is not None
            and read_model is True
            and url is not None
            and _audit_worker.available()
            and model.position() >= _audit_worker.WORTH_IT_FROM
        ):
            # the figures are compared in another process, beside the replay
            figures = _audit_worker.start(url)
        try:
            return audit_log(
                self._app.index.read_log,
                self._decode_policy,
                personal,
                model,
                banks,
                "full" if read_model == "full" else "figures",
                figures,
                rebuild,
                registry_problem,
                end,
                index,
            )
        except BaseException:
            if figures is not None:  # nobody will wait for it
                figures.cancel()
            raise

    def _at_one_moment(self, read: Callable[[], _T]) -> tuple[int, _T]:
        """``read()`` (several loads of banks) as of one moment, while other
        processes may record, and the log's last event at that moment (its
        notification id). Read between two looks at the log's end that
        agree: nothing was committed meanwhile (loading every bank from its
        snapshot takes a fraction of a second). When writers kept committing
        through ``MOMENT_TRIES`` reads, read under the store's write lock,
        which keeps them out for that long."""
        for _ in range(MOMENT_TRIES):
            end = self._log_end()
            found = read()
            if self._log_end() == end:
                return end, found
        with self.backend.write_lock():
            return self._log_end(), read()

    def _stored_index(self) -> StoredIndex:
        """What the audit reads of the entry and pending indexes at its
        moment of the store (see :class:`StoredIndex`)."""
        index = self._app.index
        return StoredIndex(
            index.entry_index_extent(),
            index.pending_index(),
            index.entry_index_page,
            index.stream_versions(),
            index.settled_index(),
        )

    def _loaded_banks(self) -> tuple[dict[str, LoadedBank | str], str | None]:
        """Each bank as the store loads it (or why it cannot be loaded), for
        the audit, writing nothing; and why the registry of banks cannot be
        loaded, if it cannot."""
        banks: dict[str, LoadedBank | str] = {}
        registry_problem = None
        try:
            with self._app.reading_only():
                registry = self._app.registry()
        except errors.EventUnreadable as e:  # the replay finds the damaged event
            registry, registry_problem = None, str(e)
        for bank_id in registry.banks if registry else []:
            try:  # a log written around the API may not even load
                with self._app.reading_only():  # an audit writes nothing, not even a snapshot
                    bank = self._app.bank(bank_id)
                banks[bank_id] = LoadedBank(  # read only, under the store's lock
                    dict(bank.balances),
                    {m: bank.kinds[m] for m in bank.periods},
                    bank.periods,
                    bank.status,
                    bank.roles,
                    bank.guardians,
                    bank.pending,
                    bank.joined_on,
                    bank.last_occurred_on,
                    (bank.name, bank.opened_on, bank.entries_count),
                    self._app.damaged_snapshots.get(bank_uuid(bank_id)),
                )
            except errors.EventUnreadable as e:  # what is damaged; the audit is the cure
                banks[bank_id] = described(e.__cause__ or e)
            except Exception as e:
                banks[bank_id] = described(e)
        return banks, registry_problem

    def _compare_figures(self) -> FiguresCompared:
        """The audit's comparison of the read model's balance and figure
        tables with the log (run by :mod:`timebank._audit_worker`)."""
        model = self._existing_read_model()
        if model is None:
            return 0, []
        return compare_figures(self._app.index.read_log, self._decode_policy, model)

    def _decode_policy(self, state: bytes) -> Policy:
        """The policy of a stored Opened or PolicyChanged event."""
        policy = self._app.mapper.transcoder.decode(state)["policy"]
        invariant(isinstance(policy, Policy), "an Opened or PolicyChanged event")
        return cast(Policy, policy)

    def _existing_read_model(self) -> ReadModel | None:
        """The read model if one was built (opening it creates nothing)."""
        path = getattr(self.backend, "read_model_path", None)
        if isinstance(path, Path) and not path.exists():
            return None
        if self.url.startswith("memory:") and self._read_model is None:
            return None
        model = self.read_model
        return model if "rm_position" in model.db.table_names() else None

    @serialised
    def ledger_statement(
        self, bank: str, account: str, *, limit: int = STATEMENT_LINES_MAX, offset: int = 0
    ) -> list[StatementLine]:
        """An account's statement replayed from the bank's own postings in the
        event log, not from the read model: what :meth:`statement` must
        equal (the tests and the audit compare them). Slower: it decodes
        every entry event, and every line before ``offset`` too; a full
        page asks the entry index for reversals beyond it."""
        bank, account = validate_bank_id(bank), validate_account_id(account)
        check_page(limit, offset)
        ledger = self._app.bank(bank)
        ledger.balance(account)  # raises MemberNotFound for an unknown account
        stored = self._app.index.select_postings(ledger.id, account, limit=offset + limit)
        lines: list[StatementLine] = []
        position: dict[str, int] = {}
        balance = 0
        for record in stored:
            with self._app.unreadable_named(f"the statement of {account!r} in {bank!r}"):
                entry_event = self._app.mapper.to_domain_event(record)
                if not isinstance(entry_event, Bank.EntryEvent):
                    raise errors.StorageError(f"posting points at {entry_event!r}")
                entry = recorded_entry(entry_event, ledger.bank_id)
            minutes = entry.minutes_for(account)
            balance += minutes
            line = _line(entry, account, minutes, balance)
            if entry.reverses in position:
                reversed_line = lines[position[entry.reverses]]
                lines[position[entry.reverses]] = _with_reversed_by(reversed_line, entry.entry_id)
                # the same accounts as the entry it undoes, named as its line names
                # them (a reversal's event does not say which banks a clearing
                # account stands for)
                line = attrs.evolve(line, counterparties=reversed_line.counterparties)
            position[entry.entry_id] = len(lines)
            lines.append(line)
        page = lines[offset:]
        if len(stored) == offset + limit:  # reversals may come after the page
            for n, line in enumerate(page):
                if line.reversed_by is None and line.kind is not EntryKind.REVERSAL:
                    found = self._app.index.find_entry(line.entry_id)
                    if found is not None and found.reversed_by is not None:
                        page[n] = _with_reversed_by(line, found.reversed_by)
        return page

    @serialised
    def figures(self, bank: str, *, rollup: bool = False) -> Figures:
        """Headline figures over the bank's whole history, by replaying its
        ledger (O(entries); the read models of a later release index them).
        With ``rollup``, over the bank and all its mini banks: an entry between
        two of them counts once, member counts are accounts (a member of two
        banks counts in each). Of one moment, while other processes may
        record: the entries counted are those of the banks as loaded."""
        bank = validate_bank_id(bank)
        rollup = validate_flag("rollup", rollup)

        def load() -> list[Bank]:
            if not rollup:
                return [self._app.bank(bank)]
            inside = [b for b in self._bank_ids() if b.startswith(f"{bank}/")]
            return [self._app.bank(b) for b in (bank, *inside)]

        ledgers = self._at_one_moment(load)[1] if rollup else load()
        ledger = ledgers[0]
        names = ", ".join(repr(each.bank_id) for each in ledgers)
        with self._app.unreadable_named(f"the entries of {names}"):
            entry_events: dict[str, Bank.EntryEvent] = {}
            for each in ledgers:  # up to each bank's loaded version: recorded since is not counted
                for e in self._app.events.get(each.id, lte=each.version):
                    if isinstance(e, Bank.EntryEvent):
                        entry_events.setdefault(e.entry_id, e)  # one side of an inter-bank entry
            events = list(entry_events.values())
            reversed_ids = {e.reverses for e in events if isinstance(e, Bank.EntryReversed)}
            counted = [
                e
                for e in events
                if e.entry_id not in reversed_ids and e.entry_kind is not EntryKind.REVERSAL
            ]
            exchanges = [e for e in counted if e.entry_kind in _SERVICE_EXCHANGES]
            minutes = {
                kind: sum(e.minutes for e in counted if e.entry_kind is kind)
                for kind in (EntryKind.DONATION, EntryKind.POT_EXCHANGE)
            }
            exchanged = sum(e.minutes for e in exchanges)
            transactions = sum(1 for e in counted if e.entry_kind is not EntryKind.OPENING_BALANCE)
        kinds = [
            each.kinds[m]
            for each in ledgers
            for m, status in each.status.items()
            if status != MemberStatus.LEFT
        ]
        return Figures(
            bank=ledger.bank_id,
            individual_members=kinds.count(AccountKind.INDIVIDUAL.value),
            organisations=kinds.count(AccountKind.ORGANISATION.value),
            exchanges=len(exchanges),
            exchanged_minutes=exchanged,
            transactions=transactions,
            donated_to_pot_minutes=minutes[EntryKind.DONATION],
            pot_funded_minutes=minutes[EntryKind.POT_EXCHANGE],
            pot_balance_minutes=sum(each.balance(POT) for each in ledgers),
            reversals=len(reversed_ids),
            banks=tuple(each.bank_id for each in ledgers),
        )

    @serialised
    def check_invariants(self) -> None:
        """Raise AssertionError if any bank's accounts do not sum to zero, its
        pot is below zero, or two banks' clearing accounts with each other do
        not cancel out (used by the tests and the demo). The banks are loaded
        as of one moment, so other processes may record meanwhile."""
        _, loaded = self._at_one_moment(self._all_banks)
        ledgers = {ledger.bank_id: ledger for ledger in loaded}
        for ledger in loaded:
            ledger.check_invariants()
            for other, minutes in ledger.clearing_balances().items():
                mirror = ledgers[other].balances.get(clearing_account(ledger.bank_id), 0)
                invariant(
                    minutes + mirror == 0,
                    f"clearing accounts of {ledger.bank_id} and {other} cancel out",
                )


#: The kinds that count as exchanges of service in every figure.
_SERVICE_EXCHANGES = (EntryKind.EXCHANGE, EntryKind.POT_EXCHANGE, EntryKind.GROUP_EXCHANGE)


def _shares(side: str, shares: object) -> dict[str, int]:
    """A group exchange's side: member ids mapped to their shares in hours."""
    if not isinstance(shares, Mapping):
        raise errors.InvalidGroup(
            f"invalid group exchange: {side} must map member ids to hours, not {shares!r}"
        )
    return {validate_member_id(m): parse_minutes(h) for m, h in shares.items()}


def _optional_member(member: str | None) -> str | None:
    return None if member is None else validate_member_id(member)


#: The kinds of entry with no receiver (the pot or the opening account takes
#: that side).
_NO_RECEIVER = frozenset({EntryKind.DONATION, EntryKind.OPENING_BALANCE})


def _account(account: str | None, pots_allowed: bool, *, required: bool) -> str | None:
    """A member id, or ``@pot`` where a pot may take part; ``None`` only
    where the entry has no such party (``InvalidInput`` otherwise)."""
    if (account is None and not required) or (pots_allowed and account == POT):
        return account
    return validate_member_id(account)


def _party(member: str | None) -> str:
    invariant(member is not None, "the entry has a provider")
    return cast(str, member)


def _amount(hours: object, minutes: int | None, *, allow_negative: bool) -> int:
    if (hours is None) == (minutes is None):
        raise errors.InvalidAmount("give exactly one of hours or minutes", value=(hours, minutes))
    if minutes is not None:
        if not is_whole(minutes):
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
        parent=parent_bank(ledger.bank_id),
        roles=tuple(sorted(ledger.roles.items())),
    )


def _check_profile(profile: object) -> None:
    """A profile given to the API: a :class:`Profile` whose fields are each
    None or text that :func:`validate_profile_text` accepts."""
    if not isinstance(profile, Profile):
        raise errors.InvalidInput(f"expected a Profile, got {profile!r}")
    for field in attrs.fields(Profile):
        value = getattr(profile, field.name)
        if value is not None:
            validate_profile_text(value, field.name)


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
