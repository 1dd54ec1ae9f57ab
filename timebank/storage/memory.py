"""``memory://``: everything in this process (tests, demos, throwaway runs)."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    StoredEvent,
)
from eventsourcing.popo import POPOAggregateRecorder, POPOApplicationRecorder, POPOFactory

from timebank.readmodel import ReadModelDB, SqliteReadModelDB
from timebank.storage.base import (
    INDEX_KWARG,
    Backend,
    BulkInsert,
    IndexedEntry,
    IndexRow,
    IndexUpdate,
    Profile,
    ProfileStore,
    Proposal,
    combined,
    index_update_from,
    read_log_from_notifications,
)

__all__ = ["MemoryBackend"]


class MemoryRecorder(POPOApplicationRecorder):
    """The in-memory recorder, with the entry and postings indexes, which
    writes the profiles given with events into ``profiles``."""

    def __init__(self, profiles: MemoryProfileStore) -> None:
        super().__init__()
        self._profiles = profiles
        self._entries: dict[str, tuple[UUID, int, str | None]] = {}
        self._reversed_by: dict[str, str] = {}
        self._postings: dict[tuple[UUID, str], list[int]] = {}
        self._pending: dict[str, UUID] = {}
        self._settled: dict[str, tuple[UUID, int]] = {}

    def _insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        update = index_update_from(kwargs)
        with self._database_lock:
            if update is not None:
                self._check_index_unique(update.entries)
                if any(e in self._pending for e, _ in update.pending_added):
                    raise IntegrityError(f"entry already pending: {update.pending_added}")
            ids = super()._insert_events(stored_events, **kwargs)
            if update is not None:
                for entry_id, bank, version, reverses in update.entries:
                    self._entries[entry_id] = (bank, version, reverses)
                    if reverses is not None:
                        self._reversed_by[reverses] = entry_id
                for bank, account, version in update.postings:
                    self._postings.setdefault((bank, account), []).append(version)
                for entry_id in update.pending_removed:
                    del self._pending[entry_id]
                self._pending.update(update.pending_added)
                self._settled.update((e, (b, v)) for e, b, v in update.settled)
                self._profiles.write(update.profiles, update.profiles_erased)
            return ids

    @contextmanager
    def bulk_insert(self) -> Iterator[BulkInsert]:
        """The parts are kept and inserted together when the block ends: the
        store holds every event in memory anyway."""
        events: list[StoredEvent] = []
        parts: list[IndexUpdate] = []

        def insert(stored_events: Sequence[StoredEvent], index: IndexUpdate) -> None:
            events.extend(stored_events)
            parts.append(index)

        yield insert
        if events:
            self.insert_events(events, **{INDEX_KWARG: combined(parts)})

    def _check_index_unique(self, entries: Sequence[tuple[str, UUID, int, str | None]]) -> None:
        new_ids = [e[0] for e in entries]
        new_reverses = [e[3] for e in entries if e[3] is not None]
        if len(set(new_ids)) != len(new_ids) or any(e in self._entries for e in new_ids):
            raise IntegrityError(f"entry id already recorded: {new_ids}")
        if len(set(new_reverses)) != len(new_reverses) or any(
            r in self._reversed_by for r in new_reverses
        ):
            raise IntegrityError(f"entry already reversed: {new_reverses}")

    def find_entry(self, entry_id: str) -> IndexedEntry | None:
        with self._database_lock:
            return self._indexed(entry_id)

    def _indexed(self, entry_id: str) -> IndexedEntry | None:
        """The entry index's row of ``entry_id`` (under the database lock)."""
        found = self._entries.get(entry_id)
        if found is None:
            return None
        bank, version, reverses = found
        return IndexedEntry(entry_id, bank, version, reverses, self._reversed_by.get(entry_id))

    def find_entries(
        self, entry_ids: Sequence[str]
    ) -> list[tuple[IndexedEntry, StoredEvent | None]]:
        found: list[tuple[IndexedEntry, StoredEvent | None]] = []
        with self._database_lock:
            for entry_id in entry_ids:
                indexed = self._indexed(entry_id)
                if indexed is None:
                    continue
                streams = self._stored_events_index.get(str(indexed.bank_uuid), {})
                at = streams.get(indexed.version)
                found.append((indexed, None if at is None else self._stored_events[at]))
        return found

    def recorded_entry_ids(self, entry_ids: Sequence[str]) -> set[str]:
        with self._database_lock:
            return {e for e in entry_ids if e in self._entries}

    def find_proposal(self, entry_id: str) -> Proposal | None:
        with self._database_lock:
            if entry_id in self._pending:
                return Proposal(self._pending[entry_id], None)
            if entry_id in self._settled:
                return Proposal(*self._settled[entry_id])
            return None

    def proposal_ids(self, entry_ids: Sequence[str]) -> set[str]:
        with self._database_lock:
            return {e for e in entry_ids if e in self._pending or e in self._settled}

    def select_postings(
        self, bank_uuid: UUID, account: str, *, limit: int
    ) -> Sequence[StoredEvent]:
        with self._database_lock:
            versions = self._postings.get((bank_uuid, account), [])[:limit]
            index = self._stored_events_index[str(bank_uuid)]
            return [self._stored_events[index[v]] for v in versions]

    def read_log(self, after: int, limit: int) -> Sequence[tuple[int, str, str, bytes]]:
        return read_log_from_notifications(self, after, limit)

    def count_entries(self) -> int:
        with self._database_lock:
            return len(self._entries)

    def entry_index_extent(self) -> dict[str, int]:
        extent: dict[str, int] = {}
        with self._database_lock:
            for bank, version, _ in self._entries.values():
                extent[bank.hex] = max(extent.get(bank.hex, 0), version)
        return extent

    def stream_versions(self) -> dict[str, tuple[int, int]]:
        with self._database_lock:
            return {
                UUID(stream).hex: (len(versions), max(versions))
                for stream, versions in self._stored_events_index.items()
                if versions
            }

    def entry_index_page(self, after: str, limit: int) -> Sequence[IndexRow]:
        with self._database_lock:
            ids = heapq.nsmallest(limit, (e for e in self._entries if e > after))
            return [(e, self._entries[e][0].hex, *self._entries[e][1:]) for e in ids]

    def pending_index(self) -> set[tuple[str, str]]:
        with self._database_lock:
            return {(entry_id, bank.hex) for entry_id, bank in self._pending.items()}

    def settled_index(self) -> set[tuple[str, str, int]]:
        with self._database_lock:
            return {(e, bank.hex, version) for e, (bank, version) in self._settled.items()}

    def close_index(self) -> None:
        """Nothing to release: the index lives as long as the backend."""

    def change_token(self) -> object:
        with self._database_lock:
            return len(self._stored_events)


class MemoryProfileStore(ProfileStore):
    def __init__(self) -> None:
        self._profiles: dict[str, Profile] = {}

    def put(self, member_id: str, profile: Profile) -> None:
        self._profiles[member_id] = profile

    def write(self, profiles: Iterable[tuple[str, Profile]], erased: Iterable[str]) -> None:
        """The profiles of a save (:class:`IndexUpdate`), as its recorder
        writes them."""
        self._profiles.update(profiles)
        for member_id in erased:
            self._profiles.pop(member_id, None)

    def get(self, member_id: str) -> Profile | None:
        return self._profiles.get(member_id)

    def get_many(self, member_ids: Sequence[str]) -> dict[str, Profile]:
        return {m: self._profiles[m] for m in member_ids if m in self._profiles}

    def all(self) -> list[tuple[str, Profile]]:
        return sorted(self._profiles.items())

    def purge(self) -> bool:
        """Nothing to clear: a deleted profile is gone from memory."""
        return True


class MemorySnapshotRecorder(POPOAggregateRecorder):
    """The library's snapshot recorder in memory, which can also delete a
    stream's earlier snapshots."""

    def delete_before(self, originator_id: UUID, version: int, limit: int) -> None:
        with self._database_lock:
            versions = self._stored_events_index[str(originator_id)]
            for old in sorted(v for v in versions if v < version)[:limit]:
                self._stored_events[versions.pop(old)] = None  # type: ignore[call-overload]

    def replace(self, snapshot: StoredEvent) -> None:
        with self._database_lock:
            versions = self._stored_events_index[str(snapshot.originator_id)]
            if snapshot.originator_version in versions:
                position = versions.pop(snapshot.originator_version)
                self._stored_events[position] = None  # type: ignore[call-overload]
            self._update_table([snapshot])


class _MemoryFactory(POPOFactory):
    backend: MemoryBackend

    def application_recorder(self) -> ApplicationRecorder:
        return self.backend.recorder

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:  # noqa: ARG002
        return self.backend.snapshot_recorder


class MemoryBackend(Backend):
    """A store that lives as long as this object: reopening an application on
    the same backend object sees everything recorded so far (a "restart"
    without losing memory), which is what the tests use."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self.profile_store = MemoryProfileStore()
        self.recorder = MemoryRecorder(self.profile_store)
        self.snapshot_recorder = MemorySnapshotRecorder()
        self._write_lock = threading.RLock()

    def write_lock(self) -> AbstractContextManager[None]:
        """Stores opened on this backend in several threads take turns."""
        return self._write_lock  # type: ignore[return-value]

    def factory(self, env: Any) -> InfrastructureFactory[Any]:
        factory = _MemoryFactory(env)
        factory.backend = self
        return factory

    def read_model_db(self) -> ReadModelDB:
        """An in-memory SQLite database, gone with the process (as the store)."""
        return SqliteReadModelDB(None)

    def profiles(self, factory: InfrastructureFactory[Any]) -> ProfileStore:  # noqa: ARG002
        return self.profile_store
