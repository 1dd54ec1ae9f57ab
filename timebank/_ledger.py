"""The eventsourcing application behind :class:`timebank.Timebank` (private).

It owns the repository (with a cache that is fast-forwarded from the store
on every read, so several processes can share one store), the snapshot
policy, the transcodings and the bounded retry on write conflicts.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from threading import RLock
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    project_aggregate,
)
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    JSONTranscoder,
    PersistenceError,
)
from eventsourcing.utils import Environment, resolve_topic

from timebank._event_shapes import DAMAGE, DAMAGED_CURE, described
from timebank._snapshot_check import snapshot_problem
from timebank.domain import errors
from timebank.domain.bank import Bank, bank_uuid
from timebank.domain.registry import REGISTRY_ID, Registry
from timebank.domain.values import invariant
from timebank.storage._sqlite_failures import STORE_CURE, file_failure
from timebank.storage.base import (
    INDEX_KWARG,
    Backend,
    IndexUpdate,
    LedgerIndex,
    SnapshotRecorder,
)
from timebank.storage.transcodings import FastJSONTranscoder, register_transcodings

__all__ = [
    "RETRIES_MAX",
    "SNAPSHOT_INTERVAL",
    "LedgerApplication",
    "as_storage_error",
    "serialised",
    "storage_error",
]

#: A bank is snapshotted every this many events: opening a store then replays
#: at most this many events per bank.
SNAPSHOT_INTERVAL = 1000
#: The key under which a snapshot's state records the ``STATE_VERSION`` of
#: its aggregate's class when it was taken (absent: 1).
STATE_VERSION_KEY = "timebank_state_version"
#: A new snapshot deletes at most this many of its aggregate's earlier
#: snapshots, oldest first: one in the usual case, and a store that kept
#: every snapshot (before timebank pruned them) is cleared a few at a time
#: instead of holding one write for the whole deletion (18 s for 1,014
#: snapshots of 2 MB).
PRUNE_MAX = 8
#: Where timebank logs what it does on its own (a snapshot it could not take).
_log = logging.getLogger("timebank")
#: How often a command is retried when another writer changed its bank first.
RETRIES_MAX = 16
#: Banks (and the registry) kept in this process's cache, or every bank
#: of a store that has more: commands that read every bank (a rollup, a
#: person's memberships, the audit's checks) would otherwise find none of
#: them cached, each reading evicting the one the next needs (measured: 78
#: ms a call of ``memberships`` among 300 banks, 2 ms among 200). They hold
#: every bank at once anyway, so the cache adds nothing to their peak.
CACHE_SIZE = 256

T = TypeVar("T")


F = TypeVar("F", bound=Callable[..., Any])


def serialised(method: F) -> F:
    """Run a public method of :class:`timebank.Timebank` under the store's
    lock, so a Timebank can be shared between threads (commands change
    cached state in place). A failure of the store that the eventsourcing
    library reports (its ``PersistenceError``: a lost connection, a damaged
    or full file) is raised as :class:`~timebank.errors.StorageError`, as
    every other failure of storage is."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._app.lock:
            if self._closed:
                check_open(self)
            # as_storage_error() inline: a balance look-up takes about 9 us,
            # and a generator-based context manager would add a tenth to it
            try:
                return method(self, *args, **kwargs)
            except PersistenceError as e:
                raise storage_error(self.url, e) from e

    return cast(F, locked)


def check_open(timebank: Any) -> None:
    """:class:`~timebank.errors.StoreClosed` if ``timebank`` was closed."""
    if timebank._closed:
        raise errors.StoreClosed(
            timebank._closed_why or f"the store at {timebank.url} was closed: open it again",
            url=timebank.url,
        )


@contextmanager
def as_storage_error(url: str) -> Iterator[None]:
    """A failure of the store at ``url`` that the eventsourcing library
    reports, raised as the :class:`~timebank.errors.StorageError` that names
    that store (for work done outside a method under :func:`serialised`)."""
    try:
        yield
    except PersistenceError as e:
        raise storage_error(url, e) from e


def store_file_failure(url: str, error: BaseException) -> errors.StorageError | None:
    """``error`` (or the error it wraps) as the named error of the store's
    file at ``url`` when SQLite says that file is damaged or unusable;
    ``None`` for any other error."""
    return file_failure(error.__cause__ or error, f"the store {url}", STORE_CURE, url)


def storage_error(url: str, error: PersistenceError) -> errors.StorageError:
    """The library's report of a failed store as timebank's named error, on
    one line: the file named, and what to do, when SQLite says the file
    itself is damaged or unusable."""
    failure = store_file_failure(url, error)
    if failure is not None:
        return failure
    # PostgreSQL's messages run over lines ("...\nHINT: Check free disk space.")
    said = " ".join(str(error).split())
    if type(error.__cause__).__name__ == "PipelineAborted":
        # psycopg's word for a statement after one that failed in the same
        # pipelined transaction; the library retried, and the first error
        # was not kept (seen on a full disk): the server's log has it.
        said += " (an earlier statement of the transaction failed: the server's log says why)"
    return errors.StorageError(f"the store {url} failed: {type(error).__name__}: {said}", url=url)


class LedgerApplication(Application[UUID]):
    name = "timebank"
    snapshotting_intervals = {Bank: SNAPSHOT_INTERVAL}  # noqa: RUF012 - eventsourcing API

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        super().__init__({})
        recorder: Any = self.recorder
        self.index: LedgerIndex = recorder
        self.profiles = backend.profiles(self.factory)
        #: Serialises this object's commands and reads: it is safe to share
        #: between threads (several processes coordinate through the store).
        self.lock = RLock()
        # Aggregates cached with the store's change token seen when they were
        # last known to be current; see cached().
        self._cache: OrderedDict[UUID, tuple[Any, object]] = OrderedDict()
        # Aggregates whose latest snapshot holds a state of another shape:
        # they were replayed from their first event, and are snapshotted
        # afresh at once, or at their next save if that failed or was not
        # allowed (see reading_only()).
        self._stale_snapshots: set[UUID] = set()
        #: Aggregates whose latest snapshot their last load set aside as
        #: damaged and did not replace, and why (the audit reports them).
        self.damaged_snapshots: dict[UUID, str] = {}
        self._reading_only = False

    def close(self) -> None:
        self.index.close_index()
        self.profiles.close()
        super().close()

    def construct_env(self, name: str, env: Any = None) -> Environment:
        # Only what timebank sets: the process environment does not leak in.
        settings = {"IS_SNAPSHOTTING_ENABLED": "y", **(env or {})}
        return Environment(name, settings)

    def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
        return self._backend.factory(env)

    def construct_transcoder(self) -> FastJSONTranscoder:
        transcoder = FastJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_transcodings(transcoder)

    # --- reading ---------------------------------------------------------------------
    def cached(self, aggregate_id: UUID, name: str | None = None) -> Any:
        """The current state of an aggregate, from this process's cache when
        nothing was committed to the store since it was last checked.

        The store's change token (SQLite's ``PRAGMA data_version``) costs a few
        microseconds; only when it moved is the aggregate fast-forwarded with
        the events recorded since its version (by any process). Raises
        :class:`AggregateNotFoundError`, and :class:`~timebank.errors.EventUnreadable`
        (naming the aggregate ``name``) when one of its stored events or its
        snapshot cannot be read.
        """
        # (not in ``unreadable_named``: every read of a bank comes here, and
        # a context manager cost 3.2 µs, more than the cache's hit, 2.2 µs)
        try:
            return self._cached(aggregate_id)
        except DAMAGE as e:
            self._cache.pop(aggregate_id, None)
            raise self._unreadable(name or f"stream {aggregate_id}", e) from e
        except BaseException:
            self._cache.pop(aggregate_id, None)
            raise

    @contextmanager
    def unreadable_named(self, what: str) -> Iterator[None]:
        """What reading a damaged stored event or snapshot raises, in this
        block, as :class:`~timebank.errors.EventUnreadable` naming ``what``
        (a bank, the events of an entry)."""
        try:
            yield
        except DAMAGE as e:
            raise self._unreadable(what, e) from e

    def _unreadable(self, what: str, error: BaseException) -> errors.EventUnreadable:
        return errors.EventUnreadable(
            f"{what} cannot be read from the store {self._backend.url}: a stored event"
            f" or snapshot of it is damaged ({described(error)}). {DAMAGED_CURE}",
            url=self._backend.url,
        )

    def _cached(self, aggregate_id: UUID) -> Any:
        token = self.index.change_token()
        found = self._cache.get(aggregate_id)
        aggregate: Any
        if found is None:
            aggregate = self._load(aggregate_id)
            # Loading (a snapshot and up to an interval of events) takes a
            # while; catch up with what other writers committed meanwhile, or
            # a write that follows would conflict again (a retry after a
            # conflict loads afresh: under contention it would starve).
            loaded_at, token = token, self.index.change_token()
            if token != loaded_at:
                aggregate = _project(aggregate, self.events.get(aggregate_id, gt=aggregate.version))
        else:
            aggregate, seen = found
            if seen != token:
                new_events = self.events.get(aggregate_id, gt=aggregate.version)
                aggregate = _project(aggregate, new_events)
        self._cache[aggregate_id] = (aggregate, token)
        self._cache.move_to_end(aggregate_id)
        if len(self._cache) > CACHE_SIZE:
            registry = self._cache.get(REGISTRY_ID)
            banks = 0 if registry is None else len(registry[0].banks)
            while len(self._cache) > max(CACHE_SIZE, banks + 1):
                self._cache.popitem(last=False)
        return aggregate

    def _load(self, aggregate_id: UUID) -> Any:
        """An aggregate from its latest snapshot and the events after it, or
        from all its events when it has no snapshot or its snapshot holds a
        state of another shape than this code's (its class's
        ``STATE_VERSION``): a snapshot is only a cache of the log. An
        aggregate replayed past a stale snapshot is snapshotted afresh at
        once, unless in :meth:`reading_only`. Raises
        :class:`AggregateNotFoundError`."""
        start: list[Any] = []
        self.damaged_snapshots.pop(aggregate_id, None)  # as found by this load
        if self.snapshots is not None:
            try:
                for snapshot in self.snapshots.get(aggregate_id, desc=True, limit=1):
                    problem = _stale_or_damaged(snapshot)
                    if problem is None:
                        start.append(snapshot)
                    else:
                        self._stale_snapshots.add(aggregate_id)
                        if problem:
                            self.damaged_snapshots[aggregate_id] = problem
            except DAMAGE as e:
                start.clear()
                self._stale_snapshots.add(aggregate_id)
                self.damaged_snapshots[aggregate_id] = described(e)
            if aggregate_id in self.damaged_snapshots:  # only a cache: replay the events
                _log.warning("the latest snapshot of %s is damaged (%s): replaying its events",
                             aggregate_id, self.damaged_snapshots[aggregate_id])  # fmt: skip
        after = start[0].originator_version if start else None
        aggregate = _project(None, chain(start, self.events.get(aggregate_id, gt=after)))
        if aggregate is None:
            raise AggregateNotFoundError(f"no aggregate {aggregate_id}")
        if aggregate_id in self._stale_snapshots and not self._reading_only:
            self._snapshot_afresh(aggregate)
        return aggregate

    def _snapshot_afresh(self, aggregate: Any) -> None:
        """Snapshot an aggregate just replayed past a stale snapshot (in place
        of it, if it is of the same version), so that the next process to
        open it does not replay it whole again (31.8 s for the million-event
        benchmark bank). Only a cache is at stake: if the store refuses the
        write (read only, say), a warning is logged and the aggregate is
        snapshotted at its next save."""
        try:
            self._snapshot(aggregate, replace=True)
            self.damaged_snapshots.pop(aggregate.id, None)  # replaced
        except PersistenceError as e:
            _log.warning(
                "could not snapshot %s afresh after replaying it (%s); its next save will",
                aggregate.id,
                e,
            )

    @contextmanager
    def reading_only(self) -> Iterator[None]:
        """Within this block, loading writes nothing to the store: a stale
        snapshot is left for the next save to replace (an audit never
        writes)."""
        before, self._reading_only = self._reading_only, True
        try:
            yield
        finally:
            self._reading_only = before

    def bank(self, bank_id: str) -> Bank:
        return self.bank_by_uuid(bank_uuid(bank_id), bank_id)

    def bank_by_uuid(self, uuid: UUID, bank_id: str | None = None) -> Bank:
        try:
            bank: Bank = self.cached(uuid, bank_id and f"bank {bank_id!r}")
        except AggregateNotFoundError:
            name = bank_id or f"stream {uuid}"
            raise errors.BankNotFound(f"no bank {name!r}", bank=name) from None
        return bank

    def registry(self) -> Registry | None:
        try:
            registry: Registry = self.cached(REGISTRY_ID, "the registry of banks")
        except AggregateNotFoundError:
            return None
        return registry

    # --- writing ------------------------------------------------------------------------
    def write(self, command: Callable[[], T]) -> T:
        """Run ``command`` (which reads aggregates, changes them and calls
        :meth:`save_changes`) with a bounded retry on write conflicts.

        Commands change cached aggregates in place, and only after every rule
        has passed; any failure empties the cache, so a half-applied command
        can never leak into the next one.
        """
        for attempt in range(RETRIES_MAX):
            try:
                with self._backend.write_lock():
                    return command()
            except IntegrityError:
                self._cache.clear()
                # full jitter, exponential up to 50 ms: writers that collided
                # spread out instead of colliding again
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))  # noqa: S311
            except BaseException:
                self._cache.clear()
                raise
        raise errors.ConcurrencyConflict(
            f"gave up after {RETRIES_MAX} attempts: other writers kept changing the store",
            attempts=RETRIES_MAX,
        )

    def save_stored(self, stored_events: list[Any], index: IndexUpdate) -> None:
        """Write events already in stored form (a migration's copy) with their
        index rows, in one transaction."""
        self.recorder.insert_events(stored_events, **{INDEX_KWARG: index})
        self._cache.clear()

    def save_changes(self, *aggregates: Any, index: IndexUpdate | None = None) -> None:
        kwargs = {} if index is None else {INDEX_KWARG: index}
        self.save(*aggregates, **kwargs)

    @contextmanager
    def saving_in_parts(self) -> Iterator[Callable[[Sequence[Any], IndexUpdate], None]]:
        """One transaction written in parts (an import): the function given
        takes aggregates and the index rows of their pending events, and
        writes those events into the open transaction (and drops them from
        the aggregates, so a long import holds one part at a time). The
        transaction commits when the block ends and is rolled back if it
        raises; the banks that crossed a snapshot interval are snapshotted
        after the commit, as after :meth:`save_changes`."""
        first_versions: dict[UUID, tuple[Any, int]] = {}
        with self.index.bulk_insert() as insert:

            def save(aggregates: Sequence[Any], index: IndexUpdate) -> None:
                stored = []
                for aggregate in aggregates:
                    events = aggregate.collect_events()
                    if events:
                        first_versions.setdefault(
                            aggregate.id, (aggregate, events[0].originator_version)
                        )
                        stored += [self.mapper.to_stored_event(e) for e in events]
                if stored:
                    insert(stored, index)

            yield save
        for aggregate, first in first_versions.values():
            self._snapshot_if_crossed(aggregate, first)

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Snapshot a bank when a save crosses a multiple of the interval.

        The aggregate in hand is exactly the state after the save, so it is
        snapshotted as it is, instead of being rebuilt from the store (which
        the library's default does, replaying up to a whole interval).
        """
        for aggregate in processing_event.aggregates.values():
            versions = [
                e.originator_version
                for e in processing_event.events
                if e.originator_id == aggregate.id
            ]
            if not versions:  # saved without a change (a command that was a no-op)
                continue
            invariant(max(versions) == aggregate.version, "snapshot the saved state")
            self._snapshot_if_crossed(aggregate, min(versions))

    def _snapshot_if_crossed(self, aggregate: Any, first_saved: int) -> None:
        """Snapshot ``aggregate`` (as it is: the state just saved) if the
        versions saved, ``first_saved`` to its version, cross a multiple of
        its interval."""
        interval = self.snapshotting_intervals.get(type(aggregate))
        if interval is None:
            return
        crossed = aggregate.version // interval != (first_saved - 1) // interval
        if crossed or aggregate.id in self._stale_snapshots:
            self._snapshot(aggregate)

    def take_snapshot(
        self,
        aggregate_id: UUID,
        version: int | None = None,
        projector_func: Any = project_aggregate,  # noqa: ARG002 - the library's signature
    ) -> None:
        """Snapshot the current state of an aggregate, as timebank takes
        every snapshot (stamped with its state's version, earlier ones
        deleted). Only the current state: ``version`` must be None."""
        if version is not None:
            raise ValueError("timebank snapshots an aggregate's current state only")
        self._snapshot(self.cached(aggregate_id), replace=True)

    def _snapshot(self, aggregate: Any, *, replace: bool = False) -> None:
        """Snapshot ``aggregate`` as it is, stamped with the version of its
        class's state, and delete up to :data:`PRUNE_MAX` of its earlier
        snapshots (only the latest is ever read; see docs/architecture.md,
        "Snapshots"). With ``replace``, a snapshot already at its version
        (a stale one, or one taken before) is replaced, in one transaction."""
        if self.snapshots is None:
            return
        recorder: SnapshotRecorder = self.snapshots.recorder  # type: ignore[assignment]
        snapshot = getattr(type(aggregate), "Snapshot", Snapshot).take(aggregate)
        snapshot.state[STATE_VERSION_KEY] = _state_version(type(aggregate))
        if replace:
            recorder.replace(self.snapshots.mapper.to_stored_event(snapshot))
        else:
            self.snapshots.put([snapshot])
        self._stale_snapshots.discard(aggregate.id)
        recorder.delete_before(aggregate.id, snapshot.originator_version, PRUNE_MAX)


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """``aggregate`` (None for a new one) with ``events`` applied in turn:
    eventsourcing's ``project_aggregate`` without its per-event assertion,
    an ``isinstance`` against a runtime-checkable protocol, which on Python
    3.11 cost about 55 µs an event, more than applying most events (16 % of
    the ledger state machine's time, measured). A stored event whose topic
    names a class without ``mutate`` fails here with ``AttributeError``:
    damage, as the assertion's ``AssertionError`` was (``DAMAGE``;
    tests/test_damaged_store.py)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def _state_version(cls: type) -> int:
    """The version of the state an aggregate class holds (``STATE_VERSION``,
    raised by a release that changes it; 1 when the class names none)."""
    version: int = getattr(cls, "STATE_VERSION", 1)
    return version


def _stale_or_damaged(snapshot: Any) -> str | None:
    """``None`` when ``snapshot`` holds a whole state of the shape its
    aggregate's class has now; ``""`` when it holds one of another state
    version; what is wrong with it when it is damaged. Takes the stamp out of
    the state either way."""
    taken_at = snapshot.state.pop(STATE_VERSION_KEY, 1)
    cls = resolve_topic(snapshot.topic)
    if taken_at != _state_version(cls):
        return ""
    return snapshot_problem(cls, snapshot.state)
