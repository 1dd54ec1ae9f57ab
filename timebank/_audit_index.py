"""The audit's comparison of the store's entry and pending indexes with its
replay of the log (private; docs/audit.md, ``entry_index`` and
``pending_index``).

The entry index makes entry ids unique across the store and lets an entry
be reversed only once (a reversal's row names the entry it reverses); the
pending index finds the bank of a pending entry. Both are written in the
transaction of the events they describe, so they differ from the log only
when something outside timebank changed one of them: an event deleted, a
row edited by hand, a damaged page. A row missing from the entry index lets
its entry id be recorded again, or its entry be reversed again.

The replay keeps, per bank stream, the count of the rows its entries make
and an order-free digest of them (the sum of their hashes), so a million
entries cost no row kept in memory; the index is read the same way, up to
each stream's highest version at the audit's moment of the store (the index
only grows, so those rows are that moment's when read later). Only a stream
whose count or digest differs is read again, to name its entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from timebank._output import counted
from timebank.storage.base import IndexRow

__all__ = ["ExpectedIndex", "StoredIndex", "index_findings", "missing_events"]

#: Index rows read per query.
PAGE = 20_000
_MASK = (1 << 64) - 1


@attrs.frozen
class StoredIndex:
    """What the audit reads of the indexes: at its moment of the store, the
    highest version of each stream's entry-index rows (``extent``), every
    pending-index row, and each stream's count of events and highest
    version (``streams``); then the entry index a page at a time (``page``)."""

    extent: Mapping[str, int]
    pending: set[tuple[str, str]]
    page: Callable[[str, int], Sequence[IndexRow]]
    streams: Mapping[str, tuple[int, int]]
    #: every row of the index of settled proposals (entry id, stream, version)
    settled: set[tuple[str, str, int]]


class ExpectedIndex:
    """The entry-index rows of the replayed entries, as counts and digests
    per bank stream (see the module's docstring)."""

    def __init__(self) -> None:
        #: stream -> [rows, digest]
        self.streams: dict[str, list[int]] = {}
        #: id of an entry recorded on two banks (an inter-bank entry, or a
        #: reversal of one) -> the bank it is indexed on (its provider's)
        self.homes: dict[str, str] = {}
        #: those of them whose row is counted
        self.counted: set[str] = set()

    def add(self, stream: str, entry_id: str, version: int, reverses: str | None) -> None:
        _count(self.streams, stream, entry_id, version, reverses)


def _count(
    streams: dict[str, list[int]], stream: str, entry_id: str, version: int, reverses: str | None
) -> None:
    found = streams.get(stream)
    if found is None:
        found = streams[stream] = [0, 0]
    found[0] += 1
    found[1] = (found[1] + hash((entry_id, version, reverses))) & _MASK


def index_findings(
    expected: ExpectedIndex,
    entries: Mapping[str, tuple[Any, ...]],
    pending: Iterable[tuple[str, str]],
    settled: Iterable[tuple[str, str, int]],
    stored: StoredIndex,
    bank_ids: Mapping[str, str],
    left_out: set[str],
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(check, message, ids) for each bank whose entry-index,
    pending-index or settled-index rows differ from the replay's.
    ``entries`` are the replay's (entry id -> a tuple whose first item is
    the stream it was met on first), ``pending`` its pending entries (entry
    id, stream), ``settled`` its proposals settled without taking effect
    (entry id, stream, version of the settling event); ``bank_ids`` names
    each stream; streams in ``left_out`` (an event of theirs was left out of
    the replay, already a finding) are not compared."""
    rows: dict[str, list[int]] = {}
    for entry_id, stream, version, reverses in _rows(stored):
        _count(rows, stream, entry_id, version, reverses)
    differing = {
        stream
        for stream in expected.streams.keys() | rows.keys()
        if expected.streams.get(stream) != rows.get(stream) and stream not in left_out
    }
    if differing:
        yield from _named(expected, entries, stored, differing, bank_ids)
    for index, whose, replayed, held in (
        ("pending index", "pending entries", set(pending), stored.pending),
        ("index of settled proposals", "declined or expired proposals", set(settled),
         stored.settled),
    ):  # fmt: skip
        yield from _rows_differing(index, whose, replayed, held, bank_ids, left_out)


def _rows_differing(
    index: str,
    whose: str,
    expected: set[Any],
    stored: set[Any],
    bank_ids: Mapping[str, str],
    left_out: set[str],
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """A ``pending_index`` finding for each bank whose rows of ``index``
    (tuples of entry id, stream, ...) differ from the replay's; a row for
    the right entry with another version is both missing and extra."""
    expected = {row for row in expected if row[1] not in left_out}
    stored = {row for row in stored if row[1] not in left_out}
    for stream in sorted({row[1] for row in expected ^ stored}):
        bank = bank_ids.get(stream, stream)
        missing = sorted(row[0] for row in expected - stored if row[1] == stream)
        extra = sorted(row[0] for row in stored - expected if row[1] == stream)
        ids = {"bank": bank, "missing": len(missing), "extra": len(extra)}
        yield ("pending_index",
               f"the {index} of {bank!r} differs from the log: "
               + _parts(missing, f"of the log's {whose} missing from it",
                        extra, f"for none of the log's {whose}"),
               {**ids, "entry_id": (missing or extra)[0]})  # fmt: skip


def missing_events(
    stored: StoredIndex, bank_ids: Mapping[str, str], registry: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(message, ids) for each stream of the log whose versions do not run
    from 1 without a gap: an event deleted around timebank. ``bank_ids``
    names each bank's stream; ``registry`` is the registry's."""
    for stream, (events, highest) in sorted(stored.streams.items()):
        if events == highest:
            continue
        bank = bank_ids.get(stream)
        if bank is not None:
            name = f"bank {bank!r}"
        elif stream == registry:
            name = "the registry of banks"
        else:
            name = f"stream {stream}"
        if highest > events:
            how = f"{counted(highest - events, 'event')} missing (deleted around timebank)"
        else:  # versions from 1 and unique: only one below 1 leaves more events than that
            how = "versions below 1 (written around timebank)"
        yield (f"the log of {name} holds {counted(events, 'event')} numbered up to {highest}:"
               f" {how}",
               {"bank": bank or stream, "events": events, "highest": highest})  # fmt: skip


def _rows(stored: StoredIndex, only: set[str] | None = None) -> Iterator[IndexRow]:
    """The entry index's rows of the audit's moment (of the streams
    ``only``, when given)."""
    after = ""
    while page := stored.page(after, PAGE):
        for row in page:
            top = stored.extent.get(row[1])
            if top is not None and row[2] <= top and (only is None or row[1] in only):
                yield row
        after = page[-1][0]


def _named(
    expected: ExpectedIndex,
    entries: Mapping[str, tuple[Any, ...]],
    stored: StoredIndex,
    differing: set[str],
    bank_ids: Mapping[str, str],
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """The entries by which each stream's entry index differs: read again."""
    held: dict[str, set[str]] = {stream: set() for stream in differing}
    for entry_id, stream, _, _ in _rows(stored, differing):
        held[stream].add(entry_id)
    made: dict[str, set[str]] = {stream: set() for stream in differing}
    streams = {bank: stream for stream, bank in bank_ids.items()}
    for entry_id, seen in entries.items():
        home = expected.homes.get(entry_id)
        stream = seen[0] if home is None else streams.get(home, seen[0])
        if stream in made:
            made[stream].add(entry_id)
    for stream in sorted(differing):
        bank = bank_ids.get(stream, stream)
        missing, extra = sorted(made[stream] - held[stream]), sorted(held[stream] - made[stream])
        ids = {"bank": bank, "missing": len(missing), "extra": len(extra)}
        if missing or extra:
            message = f"the entry index of {bank!r} differs from the log: " + _parts(
                missing, "of the log's entries missing from it", extra, "for no entry of the log"
            )
            if missing:
                message += " (an id missing could be recorded again, its entry reversed again)"
            ids["entry_id"] = (missing or extra)[0]
        else:
            message = (
                f"the entry index of {bank!r} differs from the log in the version or the"
                " reversed entry of a row"
            )
        yield "entry_index", message, ids


def _parts(missing: list[str], missing_said: str, extra: list[str], extra_said: str) -> str:
    """How many rows are missing and how many extra, each with its first."""
    parts = [f"{len(missing):,} {missing_said} (first {missing[0]!r})"] if missing else []
    if extra:
        parts.append(f"{counted(len(extra), 'row')} {extra_said} (first {extra[0]!r})")
    return "; ".join(parts)
