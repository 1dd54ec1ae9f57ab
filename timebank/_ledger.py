"""The eventsourcing application behind :class:`timebank.Timebank` (private).

It owns the repository (with a cache that is fast-forwarded from the store
on every read, so several processes can share one store), the snapshot
policy, the transcodings and the bounded retry on write conflicts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, LRUCache
from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    JSONTranscoder,
)
from eventsourcing.utils import Environment

from timebank.domain import errors
from timebank.domain.bank import Bank, bank_uuid
from timebank.domain.registry import REGISTRY_ID, Registry
from timebank.domain.values import invariant
from timebank.storage.base import INDEX_KWARG, Backend, IndexUpdate, LedgerIndex
from timebank.storage.transcodings import register_transcodings

__all__ = ["RETRIES_MAX", "SNAPSHOT_INTERVAL", "LedgerApplication"]

#: A bank is snapshotted every this many events: opening a store then replays
#: at most this many events per bank.
SNAPSHOT_INTERVAL = 1000
#: How often a command is retried when another writer changed its bank first.
RETRIES_MAX = 8
#: Banks (and the registry) kept in this process's cache.
CACHE_SIZE = 256

T = TypeVar("T")


class LedgerApplication(Application[UUID]):
    name = "timebank"
    snapshotting_intervals = {Bank: SNAPSHOT_INTERVAL}  # noqa: RUF012 - eventsourcing API

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        super().__init__(
            {
                # Commands never mutate the cached object before every rule has
                # passed, and a failed save evicts it (see LedgerApplication.write),
                # so the cache hands out the object itself instead of a deep copy.
                "AGGREGATE_CACHE_MAXSIZE": str(CACHE_SIZE),
                "AGGREGATE_CACHE_FASTFORWARD": "y",
                "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
            }
        )
        recorder: Any = self.recorder
        self.index: LedgerIndex = recorder
        self.profiles = backend.profiles(self.factory)

    def construct_env(self, name: str, env: Any = None) -> Environment:
        # Only what timebank sets: the process environment does not leak in.
        settings = {"IS_SNAPSHOTTING_ENABLED": "y", **(env or {})}
        return Environment(name, settings)

    def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
        return self._backend.factory(env)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_transcodings(transcoder)

    # --- reading ---------------------------------------------------------------------
    def bank(self, bank_id: str) -> Bank:
        try:
            bank: Bank = self.repository.get(bank_uuid(bank_id))
        except AggregateNotFoundError:
            raise errors.BankNotFound(f"no bank {bank_id!r}", bank=bank_id) from None
        return bank

    def bank_by_uuid(self, uuid: UUID) -> Bank:
        bank: Bank = self.repository.get(uuid)
        return bank

    def registry(self) -> Registry | None:
        try:
            registry: Registry = self.repository.get(REGISTRY_ID)
        except AggregateNotFoundError:
            return None
        return registry

    # --- writing ------------------------------------------------------------------------
    def write(self, command: Callable[[], T]) -> T:
        """Run ``command`` (which reads aggregates, changes them and calls
        :meth:`save_changes`) with a bounded retry on write conflicts.

        Any failure evicts the cached aggregates, so a half-applied command can
        never leak into the next one.
        """
        for attempt in range(RETRIES_MAX):
            try:
                return command()
            except IntegrityError:
                self._evict_all()
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - jitter
            except BaseException:
                self._evict_all()
                raise
        raise errors.ConcurrencyConflict(
            f"gave up after {RETRIES_MAX} attempts: other writers kept changing the store",
            attempts=RETRIES_MAX,
        )

    def save_changes(self, *aggregates: Any, index: IndexUpdate | None = None) -> None:
        kwargs = {} if index is None else {INDEX_KWARG: index}
        self.save(*aggregates, **kwargs)

    def _evict_all(self) -> None:
        cache = self.repository.cache
        invariant(isinstance(cache, LRUCache), "the repository caches aggregates")
        cache.clear()  # type: ignore[union-attr]
