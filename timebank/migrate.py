"""Copy a whole store from one URL to another (for example SQLite to PostgreSQL).

The event log is copied as it is stored, page by page in its recorded order;
the index tables are rebuilt from the events with the same function the API
writes them with; every bank is snapshotted in the new store; the profiles
are copied in one transaction; then the two stores are compared (every
balance, every bank, the number of entries and of pending entries, every
profile). See docs/storage.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import attrs
from eventsourcing.persistence import StoredEvent

from timebank._index import combined, index_rows
from timebank._ledger import as_storage_error
from timebank.api import Timebank
from timebank.domain.bank import Bank
from timebank.domain.errors import MigrationMismatch, StorageError, StoreNotEmpty
from timebank.storage.base import IndexUpdate

__all__ = ["PAGE_SIZE", "Migration", "migrate"]

#: Events read and written per transaction.
PAGE_SIZE = 1000


@attrs.frozen
class Migration:
    """What a migration copied, all verified equal in the new store."""

    events: int
    banks: int
    entries: int
    profiles: int

    def to_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


def migrate(
    source: Timebank,
    target: Timebank,
    *,
    page_size: int = PAGE_SIZE,
    progress: Callable[[int], None] | None = None,
) -> Migration:
    """Copy everything in ``source`` into the empty store ``target``.

    The source's write lock is held throughout, so its writers in every
    process wait (and after the lock's timeout, ten seconds, are refused
    with a ``StorageError``) rather than write what the copy would miss;
    nothing else may write to the target. Each page of events goes in one
    transaction; if a migration is interrupted, empty the target (drop the
    file or schema) and run it again. Raises :class:`StoreNotEmpty` if the
    target holds events, :class:`MigrationMismatch` if the copy differs.
    """
    with source.backend.write_lock():
        return _copy(source, target, page_size, progress)


def _copy(
    source: Timebank,
    target: Timebank,
    page_size: int,
    progress: Callable[[int], None] | None,
) -> Migration:
    target_recorder: Any = target._app.recorder
    with as_storage_error(target.url):
        holds_events = target_recorder.max_notification_id()
    if holds_events:
        raise StoreNotEmpty(f"{target.url} already holds events: migrate into an empty store",
                            url=target.url)  # fmt: skip
    source_recorder: Any = source._app.recorder
    rebuild = _IndexRebuild()
    copied = 0
    start: int | None = None
    while True:
        with as_storage_error(source.url):
            page = source_recorder.select_notifications(start=start, limit=page_size)
        if not page:
            break
        stored = [
            StoredEvent(n.originator_id, n.originator_version, n.topic, n.state) for n in page
        ]
        update = rebuild.rows([source._app.mapper.to_domain_event(e) for e in stored])
        with _writing(target.url):
            target._app.save_stored(stored, update)
        copied += len(stored)
        start = page[-1].id + 1
        if progress is not None:
            progress(copied)
    with _writing(target.url):
        for bank_uuid in rebuild.bank_ids:
            target._app.take_snapshot(bank_uuid)
    with as_storage_error(source.url):
        profiles = source._app.profiles.all()
    with _writing(target.url):  # every profile in one transaction
        target._app.save_stored([], IndexUpdate(profiles=tuple(profiles)))
    result = Migration(copied, len(rebuild.bank_ids), target._app.index.count_entries(),
                       len(profiles))  # fmt: skip
    _verify(source, target, result)
    return result


@contextmanager
def _writing(target: str) -> Iterator[None]:
    """A failure to write the target (a full disk, a dropped connection)
    said with what to do next: the pages copied before it stay there."""
    try:
        with as_storage_error(target):
            yield
    except StorageError as e:
        raise StorageError(
            f"{e}. That store may now hold part of the copy: empty it (delete its file with"
            " any -wal and -shm beside it, or drop its schema), then migrate again",
            url=target,
        ) from e


class _IndexRebuild:
    """Rebuilds the index rows of events read in their recorded order."""

    def __init__(self) -> None:
        self.bank_ids: dict[UUID, str] = {}
        self._home: dict[str, str] = {}  # entry id -> the bank it is indexed on
        self._parties: dict[tuple[str, str], list[str]] = {}  # (bank, entry id) -> parties

    def rows(self, events: list[Any]) -> IndexUpdate:
        return combined([self._rows_of(event) for event in events])

    def _rows_of(self, event: Any) -> IndexUpdate:
        if type(event).__name__ == "Opened" and isinstance(getattr(event, "bank_id", None), str):
            self.bank_ids[event.originator_id] = event.bank_id
        bank_id = self.bank_ids.get(event.originator_id)
        if bank_id is None:  # the registry's stream
            return IndexUpdate()
        extra: list[str] = []
        home = True
        if isinstance(event, Bank.InterBankEntryRecorded):
            home = event.provider_bank == bank_id
        elif isinstance(event, Bank.EntryReversed):
            home = self._home[event.reverses] == bank_id
            extra = self._parties.get((bank_id, event.reverses), [])
        if isinstance(event, Bank.EntryEvent):
            self._parties[(bank_id, event.entry_id)] = event.parties_on(bank_id)
            if home:
                self._home[event.entry_id] = bank_id
        return index_rows(event, bank_id, event.originator_id, home, extra)


def _verify(source: Timebank, target: Timebank, result: Migration) -> None:
    checks: dict[str, Callable[[Timebank], object]] = {
        "banks": lambda tb: [b.to_dict() for b in tb.banks()],
        "balances": lambda tb: [b.to_dict() for b in tb.balances()],
        "entries": lambda tb: tb._app.index.count_entries(),
        "pending entries": lambda tb: [
            [p.to_dict() for p in tb.pending(b.bank)] for b in tb.banks()
        ],
        "profiles": lambda tb: tb._app.profiles.all(),
    }
    for what, read in checks.items():
        if read(source) != read(target):
            raise MigrationMismatch(
                f"the migrated store differs from {source.url} in its {what}",
                url=target.url,
                what=what,
            )
    target.check_invariants()
    if result.entries != source._app.index.count_entries():
        raise MigrationMismatch("entry counts differ", url=target.url, what="entries")
