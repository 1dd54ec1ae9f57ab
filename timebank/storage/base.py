"""The storage port: what every backend provides to the application.

A backend supplies an eventsourcing ``InfrastructureFactory`` whose
application recorder also keeps two indexes, written in the same transaction
as the events they describe (so they can never disagree with the log):

- the **entry index**: entry id -> (bank stream, version, entry it reverses),
  which makes entry ids unique across the store and lets a reversal be
  recorded only once, even when two processes race;
- the **postings index**: (bank stream, account, version) for every account an
  entry moves, which makes a member's statement a range read.

and a :class:`ProfileStore` for personal data, kept out of events.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

import attrs
from eventsourcing.persistence import InfrastructureFactory, StoredEvent

from timebank.domain.errors import BackupRefused, RestoreRefused, StorageError
from timebank.domain.values import fields_as_json

if TYPE_CHECKING:
    from pathlib import Path

    from timebank.readmodel import ReadModelDB

__all__ = [
    "Backend",
    "BulkInsert",
    "IndexRow",
    "IndexUpdate",
    "IndexedEntry",
    "LedgerIndex",
    "Profile",
    "ProfileStore",
    "Proposal",
    "combined",
    "index_update_from",
    "read_log_from_notifications",
    "write_lock_timed_out",
]

#: Entry ids asked about in one query by ``recorded_entry_ids``.
IDS_PER_QUERY = 500

#: Keyword under which the application hands an :class:`IndexUpdate` to the
#: recorder through ``Application.save(..., **kwargs)``.
INDEX_KWARG = "timebank_index"


@attrs.frozen
class IndexedEntry:
    entry_id: str
    bank_uuid: UUID
    version: int
    reverses: str | None
    reversed_by: str | None


@attrs.frozen
class Profile:
    """Personal data of a member: erasable, never copied into events."""

    display_name: str | None = None
    email: str | None = None
    phone: str | None = None
    area: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """The four fields as JSON-ready data (each text or ``None``)."""
        return fields_as_json(self)


@attrs.frozen
class IndexUpdate:
    """Rows written with the events of one ``save()``, in its transaction:
    their index rows, and the profiles the same act writes or deletes (a
    join with a profile, a members import, an erasure)."""

    entries: tuple[tuple[str, UUID, int, str | None], ...] = ()
    postings: tuple[tuple[UUID, str, int], ...] = ()
    #: Pending entries proposed in this save (entry id, bank stream), and
    #: pending entries settled in it (confirmed, approved, declined, expired).
    pending_added: tuple[tuple[str, UUID], ...] = ()
    pending_removed: tuple[str, ...] = ()
    #: Proposals settled in this save without taking effect (declined,
    #: expired): entry id, bank stream, version of the settling event. Their
    #: ids stay spent (a row replaces an earlier one of the same id, which
    #: only a log from before this index can hold).
    settled: tuple[tuple[str, UUID, int], ...] = ()
    #: Profiles stored (member id, profile), each replacing the member's
    #: stored one; then members whose profile is deleted.
    profiles: tuple[tuple[str, Profile], ...] = ()
    profiles_erased: tuple[str, ...] = ()


def combined(parts: Sequence[IndexUpdate]) -> IndexUpdate:
    """The rows of several events, in order, as one update; a pending entry
    proposed and settled among them leaves no pending row."""
    added: dict[str, UUID] = {}
    removed: list[str] = []
    for part in parts:
        added.update(part.pending_added)
        for entry_id in part.pending_removed:
            if added.pop(entry_id, None) is None:
                removed.append(entry_id)
    return IndexUpdate(
        entries=tuple(e for p in parts for e in p.entries),
        postings=tuple(posting for p in parts for posting in p.postings),
        pending_added=tuple(added.items()),
        pending_removed=tuple(removed),
        settled=tuple({e: (e, b, v) for p in parts for e, b, v in p.settled}.values()),
        # a member's last profile of the parts: one row a member
        profiles=tuple({m: p for part in parts for m, p in part.profiles}.items()),
        profiles_erased=tuple(dict.fromkeys(m for p in parts for m in p.profiles_erased)),
    )


@attrs.frozen
class Proposal:
    """A proposal found by its id: the bank stream it is kept on, and the
    version of the event that settled it without taking effect (declined,
    expired), or None while it is pending."""

    bank_uuid: UUID
    settled: int | None

    @staticmethod
    def first_of(rows: Sequence[tuple[UUID, int | None]]) -> Proposal | None:
        """The proposal an id's index rows (bank stream, settling version or
        None) name: its pending row first, for a log from before the settled
        index may hold an id both re-proposed and settled once."""
        if not rows:
            return None
        return Proposal(*min(rows, key=lambda row: row[1] is not None))


#: A row of the entry index as the audit reads it: entry id, bank stream (as
#: hex), version of its event there, the entry it reverses.
IndexRow = tuple[str, str, int, str | None]

#: Writes one part of a transaction written in parts: stored events and
#: their index rows (see :meth:`LedgerIndex.bulk_insert`).
BulkInsert = Callable[[Sequence[StoredEvent], IndexUpdate], None]


def index_update_from(kwargs: dict[str, Any]) -> IndexUpdate | None:
    update = kwargs.get(INDEX_KWARG)
    if update is not None and not isinstance(update, IndexUpdate):
        raise TypeError(f"{INDEX_KWARG} must be an IndexUpdate, not {update!r}")
    return update


class LedgerIndex(Protocol):
    """Implemented by every backend's application recorder."""

    def find_entry(self, entry_id: str) -> IndexedEntry | None: ...

    def find_entries(
        self, entry_ids: Sequence[str]
    ) -> list[tuple[IndexedEntry, StoredEvent | None]]:
        """Those of ``entry_ids`` that the entry index holds, each with the
        stored event its row names (None where the log lacks it), in no
        set order: what :meth:`find_entry` and a read of that event give,
        for many entries in a few queries (an import compares the rows
        already present with them)."""
        ...

    def recorded_entry_ids(self, entry_ids: Sequence[str]) -> set[str]:
        """Those of ``entry_ids`` that the entry index holds (an import asks
        once for all its rows instead of once a row)."""
        ...

    def find_proposal(self, entry_id: str) -> Proposal | None:
        """The proposal with this id, pending or settled without taking
        effect, if any: one look-up (a round trip on PostgreSQL)."""
        ...

    def proposal_ids(self, entry_ids: Sequence[str]) -> set[str]:
        """Those of ``entry_ids`` that name a proposal, pending or settled
        without taking effect (an import asks once for all its rows)."""
        ...

    def select_postings(
        self, bank_uuid: UUID, account: str, *, limit: int
    ) -> Sequence[StoredEvent]: ...

    def count_entries(self) -> int: ...

    def entry_index_extent(self) -> dict[str, int]:
        """Per bank stream (as hex): the highest version of its rows in the
        entry index. The audit reads it at its moment of the store; the
        index only grows, so the rows up to that version are that moment's
        when read later."""
        ...

    def entry_index_page(self, after: str, limit: int) -> Sequence[IndexRow]:
        """Up to ``limit`` rows of the entry index whose entry ids sort after
        ``after``, in id order (the audit's)."""
        ...

    def stream_versions(self) -> dict[str, tuple[int, int]]:
        """Per stream of the log (as hex): how many events it holds, and
        the highest version among them. A stream's versions run from 1 with
        no gap, so the two are equal unless an event was deleted around
        timebank. The audit reads it at its moment of the store."""
        ...

    def pending_index(self) -> set[tuple[str, str]]:
        """Every row of the pending index: (entry id, bank stream as hex)."""
        ...

    def settled_index(self) -> set[tuple[str, str, int]]:
        """Every row of the index of settled proposals: (entry id, bank
        stream as hex, version of the settling event)."""
        ...

    def read_log(self, after: int, limit: int) -> Sequence[tuple[int, str, str, bytes]]:
        """Up to ``limit`` stored events with notification ids above
        ``after``, in order: (notification id, stream id as hex, topic,
        state). The read models' source."""
        ...

    def close_index(self) -> None: ...

    def bulk_insert(self) -> AbstractContextManager[BulkInsert]:
        """One transaction written in parts (an import): the function it
        gives writes stored events and their index rows into the open
        transaction, which commits when the block ends and is rolled back
        if it raises. Only one part's events need be in memory at a time
        (a store in memory may keep them until the end)."""
        ...

    def change_token(self) -> object:
        """A value that changes whenever anything is committed to the store,
        by this process or another; cheap enough to call on every read."""
        ...


class SnapshotRecorder(Protocol):
    """Implemented by every backend's snapshot recorder: the library's
    aggregate recorder, which can also delete a stream's earlier snapshots
    (timebank keeps only the latest; see docs/architecture.md)."""

    def delete_before(self, originator_id: UUID, version: int, limit: int) -> None:
        """Delete the oldest ``limit`` of the snapshots of ``originator_id``
        older than ``version``, in one transaction."""
        ...

    def replace(self, snapshot: StoredEvent) -> None:
        """Insert ``snapshot``, in place of one of the same stream and
        version if there is one, in one transaction."""
        ...


class ProfileStore(abc.ABC):
    @abc.abstractmethod
    def put(self, member_id: str, profile: Profile) -> None: ...

    @abc.abstractmethod
    def get(self, member_id: str) -> Profile | None: ...

    @abc.abstractmethod
    def get_many(self, member_ids: Sequence[str]) -> dict[str, Profile]:
        """The stored profiles of those of ``member_ids`` that have one, many
        to a query (a members import asks once for all its members)."""

    def changed(self, member_id: str, fields: Mapping[str, str | None]) -> Profile:
        """The member's stored profile (an empty one if none) with the
        ``fields`` given replaced and the others kept: what a change of some
        fields stores (``update_profile``)."""
        return attrs.evolve(self.get(member_id) or Profile(), **fields)

    def changed_many(
        self, fields_by_member: Mapping[str, Mapping[str, str | None]]
    ) -> list[tuple[str, Profile]]:
        """:meth:`changed` for many members, read with :meth:`get_many` (a
        members import): each member's profile with their fields replaced."""
        stored = self.get_many(list(fields_by_member))
        return [
            (member_id, attrs.evolve(stored.get(member_id) or Profile(), **fields))
            for member_id, fields in fields_by_member.items()
        ]

    @abc.abstractmethod
    def all(self) -> list[tuple[str, Profile]]:
        """Every stored profile, by member id (for migration between stores)."""

    @abc.abstractmethod
    def purge(self) -> bool:
        """Clear the store's files of deleted and replaced profiles (a
        profile is deleted, with its ``MemberErased`` event, through
        :attr:`IndexUpdate.profiles_erased`): whether no copy is left."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the store holds."""


def read_log_from_notifications(
    recorder: Any, after: int, limit: int
) -> list[tuple[int, str, str, bytes]]:
    """:meth:`LedgerIndex.read_log` through the library's notifications."""
    return [
        (n.id, n.originator_id.hex, n.topic, n.state)
        for n in recorder.select_notifications(after + 1, limit)
    ]


def write_lock_timed_out(url: str, seconds: float) -> StorageError:
    """What a writer raises, on every backend, when another process held the
    store's write lock for longer than it waits (docs/operations.md quotes
    it)."""
    return StorageError(
        f"another process has held the write lock of {url} for more than {seconds} s", url=url
    )


class Backend(abc.ABC):
    """One storage technology, selected by URL."""

    url: str

    @property
    def reopen_url(self) -> str | None:
        """The URL another process opens this same store with (it may hold a
        password: never show or log it), or ``None`` when no other process
        can (a store in this process's memory)."""
        return None

    @abc.abstractmethod
    def factory(self, env: Any) -> InfrastructureFactory[Any]:
        """The eventsourcing factory the application uses."""

    @abc.abstractmethod
    def profiles(self, factory: InfrastructureFactory[Any]) -> ProfileStore:
        """The profile store, sharing the factory's connections."""

    @abc.abstractmethod
    def read_model_db(self) -> ReadModelDB:
        """A connection to where this store's read model lives."""

    def write_lock(self) -> AbstractContextManager[None]:
        """Held around every command (read, check, write), so that writers of
        this store, in any process, take turns instead of conflicting. The
        default is none: optimistic concurrency and its retries alone."""
        return nullcontext()

    def backup(self, dest: Path) -> tuple[int, int]:  # noqa: ARG002 - no file to copy here
        """Write a checked copy of the store to ``dest``; its bytes and
        events. Only a SQLite store is one file to copy."""
        raise BackupRefused(
            "this store is not a SQLite file: back up PostgreSQL with pg_dump, or copy any"
            " store into a new SQLite file with `timebank migrate` (docs/storage.md, Backups)"
        )

    def restore(self, backup: Path) -> tuple[int, Path | None]:  # noqa: ARG002 - no file
        """Put a checked copy of ``backup`` in place of the store's file; the
        events restored and where the replaced store went. Only a SQLite
        store is one file to replace."""
        raise RestoreRefused(
            "this store is not a SQLite file: restore a PostgreSQL store's pg_dump into an empty"
            " schema (docs/storage.md, Restoring)"
        )

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the backend holds beyond its factory."""

    def forget(self, factory: InfrastructureFactory[Any]) -> None:  # noqa: B027 - optional hook
        """In the child of a fork: let go of this process's copies of the
        store's connections without closing them, which would close the
        parent's too. Nothing on SQLite (closing a file here leaves the
        parent's locks and files as they are) or in memory."""
