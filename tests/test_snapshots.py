"""Snapshots are a cache of the log: only the latest is kept, and one of
another state version is never loaded (docs/architecture.md, "Snapshots")."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.application import project_aggregate
from hypothesis import given, settings
from hypothesis import strategies as st

import timebank
from timebank import _ledger
from timebank._ledger import STATE_VERSION_KEY
from timebank._snapshot_check import BANK_STATE, snapshot_problem
from timebank.domain.bank import Bank, bank_uuid
from timebank.domain.roles import Role
from timebank.storage.memory import MemoryBackend

from .conftest import ACTOR, fixed_clock
from .ledger_model import HUB, ROOT, new_ledger

INTERVAL = 10  # a small snapshot interval, so that a test crosses it often


def small_interval(tb: timebank.Timebank) -> timebank.Timebank:
    tb._app.snapshotting_intervals = {Bank: INTERVAL}
    return tb


def snapshots(tb: timebank.Timebank, bank: str) -> list[Any]:
    """The bank's snapshots as the store holds them, oldest first."""
    snapshot_store = tb._app.snapshots
    assert snapshot_store is not None
    return list(snapshot_store.get(bank_uuid(bank)))


def open_bank(tb: timebank.Timebank) -> None:
    tb.create_bank("riverside", name="Riverside", actor=ACTOR, opened_on="2026-01-01")
    for member in ("ann", "bob"):
        tb.join("riverside", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")


def exchanges(tb: timebank.Timebank, count: int) -> None:
    for _ in range(count):
        tb.record_exchange("riverside", "ann", "bob", minutes=30, actor=ACTOR)


def test_only_the_latest_snapshot_of_a_bank_is_kept(
    reopen: Callable[[], timebank.Timebank],
) -> None:
    tb = small_interval(reopen())
    open_bank(tb)  # versions 1-3
    exchanges(tb, 3 * INTERVAL)  # crosses 10, 20 and 30
    kept = snapshots(tb, "riverside")
    assert [s.originator_version for s in kept] == [3 * INTERVAL]  # taken as 30 was saved
    assert kept[0].state[STATE_VERSION_KEY] == Bank.STATE_VERSION
    tb.close()
    tb = reopen()  # a fresh process loads from the one snapshot kept
    assert tb.balance("riverside", "ann") == 30 * 3 * INTERVAL
    assert tb._app._stale_snapshots == set()
    tb.close()


def test_earlier_snapshots_are_deleted_a_few_at_a_time_oldest_first(
    reopen: Callable[[], timebank.Timebank], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that kept every snapshot (as before timebank pruned them) is
    cleared PRUNE_MAX at a time, so that no write waits for all of them."""
    tb = small_interval(reopen())
    monkeypatch.setattr(_ledger, "PRUNE_MAX", 0)
    open_bank(tb)
    exchanges(tb, 5 * INTERVAL)
    assert [s.originator_version for s in snapshots(tb, "riverside")] == [10, 20, 30, 40, 50]
    monkeypatch.setattr(_ledger, "PRUNE_MAX", 2)
    exchanges(tb, INTERVAL)
    assert [s.originator_version for s in snapshots(tb, "riverside")] == [30, 40, 50, 60]
    exchanges(tb, 2 * INTERVAL)
    assert [s.originator_version for s in snapshots(tb, "riverside")] == [70, 80]
    exchanges(tb, INTERVAL)
    assert [s.originator_version for s in snapshots(tb, "riverside")] == [90]
    tb.close()


def poison(tb: timebank.Timebank, stamp: int | None) -> int:
    """Replace the bank's latest snapshot by one whose state says ann has a
    balance she never had, stamped ``stamp`` (None: no stamp, as snapshots
    taken before stamps were). Returns that balance: seeing it proves the
    snapshot was loaded."""
    snapshot_store = tb._app.snapshots
    assert snapshot_store is not None
    tb._app.take_snapshot(bank_uuid("riverside"))  # of the current state: no events after it
    [latest] = snapshots(tb, "riverside")
    latest.state["balances"]["ann"] = 12_345
    del latest.state[STATE_VERSION_KEY]
    if stamp is not None:
        latest.state[STATE_VERSION_KEY] = stamp
    recorder: Any = snapshot_store.recorder
    recorder.delete_before(latest.originator_id, latest.originator_version + 1, 1)
    snapshot_store.put([latest])
    return 12_345


@pytest.mark.parametrize("stamp", [1, None], ids=["stamped-1", "unstamped"])
def test_a_snapshot_of_another_state_version_is_never_loaded(
    reopen: Callable[[], timebank.Timebank], monkeypatch: pytest.MonkeyPatch, stamp: int | None
) -> None:
    tb = small_interval(reopen())
    open_bank(tb)
    exchanges(tb, INTERVAL)
    true_balance = tb.balance("riverside", "ann")
    poisoned = poison(tb, stamp)
    tb.close()
    # The control: at state version 1 the poisoned snapshot is what loads
    # (and a snapshot with no stamp counts as version 1).
    tb = reopen()
    assert tb.balance("riverside", "ann") == poisoned
    tb.close()

    # A release whose banks hold another state: the snapshot is not loaded,
    # the bank is replayed from its first event and snapshotted afresh at
    # once (the stale snapshot deleted), so no other process replays it.
    monkeypatch.setattr(Bank, "STATE_VERSION", Bank.STATE_VERSION + 1)
    tb = small_interval(reopen())
    assert tb.balance("riverside", "ann") == true_balance
    [fresh] = snapshots(tb, "riverside")
    assert fresh.originator_version == INTERVAL + 3
    assert fresh.state[STATE_VERSION_KEY] == Bank.STATE_VERSION
    assert tb._app._stale_snapshots == set()
    tb.close()
    tb = reopen()
    assert tb.balance("riverside", "ann") == true_balance
    assert tb._app._stale_snapshots == set()
    tb.close()


def stale_store(
    reopen: Callable[[], timebank.Timebank], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, int]:
    """A bank whose one snapshot is of the state version before this code's:
    (ann's true balance, the snapshot's version)."""
    tb = small_interval(reopen())
    open_bank(tb)
    exchanges(tb, INTERVAL)
    tb._app.take_snapshot(bank_uuid("riverside"))
    true_balance = tb.balance("riverside", "ann")
    tb.close()
    monkeypatch.setattr(Bank, "STATE_VERSION", Bank.STATE_VERSION + 1)
    return true_balance, INTERVAL + 3


def test_an_audit_replays_a_stale_snapshot_s_bank_and_writes_nothing(
    reopen: Callable[[], timebank.Timebank], monkeypatch: pytest.MonkeyPatch
) -> None:
    true_balance, version = stale_store(reopen, monkeypatch)
    tb = small_interval(reopen())
    report = tb.audit(read_model=False)
    assert report.ok, report.summary()
    [kept] = snapshots(tb, "riverside")  # the stale one, untouched
    assert (kept.originator_version, kept.state[STATE_VERSION_KEY]) == (version, 1)
    assert tb._app._stale_snapshots == {bank_uuid("riverside")}
    # outside the audit, its next save snapshots it afresh
    exchanges(tb, 1)
    [fresh] = snapshots(tb, "riverside")
    assert (fresh.originator_version, fresh.state[STATE_VERSION_KEY]) == (
        version + 1,
        Bank.STATE_VERSION,
    )
    assert tb.balance("riverside", "ann") == true_balance + 30
    tb.close()


def test_a_store_that_refuses_the_fresh_snapshot_still_loads_the_bank(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A snapshot is only a cache: a store that will not take one (here a
    trigger refuses every new snapshot) logs a warning, and the replayed
    bank is used as it is."""
    path = tmp_path / "store.db"
    true_balance, version = stale_store(lambda: timebank.open(f"sqlite:///{path}"), monkeypatch)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TRIGGER no_snapshots BEFORE INSERT ON stored_snapshots"
                   " BEGIN SELECT RAISE(ABORT, 'no new snapshots here'); END")  # fmt: skip
    db.close()
    with caplog.at_level(logging.WARNING, logger="timebank"):
        tb = timebank.open(f"sqlite:///{path}")
        assert tb.balance("riverside", "ann") == true_balance
    assert "could not snapshot" in caplog.text
    assert "no new snapshots here" in caplog.text
    [kept] = snapshots(tb, "riverside")
    assert kept.originator_version == version
    assert tb._app._stale_snapshots == {bank_uuid("riverside")}
    tb.close()


def test_take_snapshot_takes_timebank_s_snapshot(reopen: Callable[[], timebank.Timebank]) -> None:
    """The library's ``take_snapshot`` (which a migration calls) stamps and
    prunes as well, replaces a snapshot of the same version (the library's
    raised IntegrityError), and refuses an earlier version than the current
    one."""
    tb = small_interval(reopen())
    open_bank(tb)
    exchanges(tb, INTERVAL)
    tb._app.take_snapshot(bank_uuid("riverside"))
    [latest] = snapshots(tb, "riverside")
    assert (latest.originator_version, latest.state[STATE_VERSION_KEY]) == (
        INTERVAL + 3,
        Bank.STATE_VERSION,
    )
    tb._app.take_snapshot(bank_uuid("riverside"))  # again, at the same version
    [again] = snapshots(tb, "riverside")
    assert again.originator_version == INTERVAL + 3
    assert again.timestamp > latest.timestamp  # the new one, in place of the first
    with pytest.raises(ValueError, match="current state only"):
        tb._app.take_snapshot(bank_uuid("riverside"), version=5)
    tb.close()


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_a_bank_loaded_from_its_snapshot_is_the_bank_its_events_replay_to(
    data: st.DataObject,
) -> None:
    """For any generated ledger (mini banks, inter-bank entries, groups,
    reversals, leaving and rejoining) and any snapshot interval, a fresh
    process loads each bank from its one snapshot, and gets exactly the
    state that replaying all its events gives."""
    interval = data.draw(st.integers(1, 7), label="interval")
    backend = MemoryBackend()
    with timebank.Timebank(backend, clock=fixed_clock) as tb:
        tb._app.snapshotting_intervals = {Bank: interval}
        new_ledger(tb, data, data.draw(st.integers(0, 40), label="steps"))
    with timebank.Timebank(backend, clock=fixed_clock) as again:
        for bank_id in (ROOT, HUB):
            loaded = again._app.bank(bank_id)
            kept = snapshots(again, bank_id)
            assert len(kept) == (1 if loaded.version >= interval else 0)
            replayed = project_aggregate(None, again._app.events.get(bank_uuid(bank_id)))
            assert _state(loaded) == _state(replayed)


def _state(bank: Bank) -> dict[str, Any]:
    return {k: v for k, v in vars(bank).items() if k != "_pending_events"}


# --- the shape of a bank's state at this STATE_VERSION ----------------------------------------


def shape(values: list[Any]) -> str:
    """The types that ``values`` hold, recursively: a container's shape
    pools the items of every container of its kind among ``values``, so
    the shape does not depend on how many items there are."""
    names: set[str] = set()
    items: dict[str, list[Any]] = {"list": [], "tuple": []}
    keys: list[Any] = []
    mapped: list[Any] = []
    dicts = False
    for value in values:
        if isinstance(value, dict):
            dicts = True
            keys += value
            mapped += value.values()
        elif isinstance(value, list | tuple):
            names.add(type(value).__name__)
            items[type(value).__name__] += value
        else:
            names.add(type(value).__name__)
    parts = {f"{n}[{shape(items[n])}]" if n in items else n for n in names}
    if dicts:
        parts.add(f"dict[{shape(keys)}, {shape(mapped)}]")
    return "|".join(sorted(parts))


def bank_using_every_feature(tb: timebank.Timebank) -> Bank:
    """A bank whose state holds a value of every kind it can hold."""
    tb.create_bank("riverside", name="Riverside", actor=ACTOR, opened_on="2026-01-01")
    for member in ("ann", "bob", "cat"):
        tb.join("riverside", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    tb.join("riverside", "org", kind="organisation", actor=ACTOR, joined_on="2026-01-01")
    tb.grant_role("riverside", "co", Role.COORDINATOR, actor=ACTOR)
    tb.appoint_guardian("riverside", "ann", "gabe", actor=ACTOR)
    tb.record_exchange("riverside", "ann", "bob", "2", actor=ACTOR, occurred_on="2026-02-01")
    tb.donate("riverside", "bob", "1", actor=ACTOR, occurred_on="2026-02-02")
    tb.record_group_exchange("riverside", {"ann": "1", "org": "1"}, {"cat": "2"}, actor=ACTOR,
                             occurred_on="2026-02-03")  # fmt: skip
    tb.propose("riverside", "exchange", "ann", "cat", "1", actor="gabe", on_behalf_of="ann",
               occurred_on="2026-02-04", entry_id="p1")  # fmt: skip
    tb.suspend("riverside", "org", actor=ACTOR)
    tb.leave("riverside", "cat", actor=ACTOR, left_on="2026-03-01")
    tb.rejoin("riverside", "cat", actor=ACTOR, rejoined_on="2026-04-01")
    return tb._app.bank("riverside")


#: The shape of a bank's state at STATE_VERSION 1. When a change to Bank
#: makes this test fail, raise Bank.STATE_VERSION and record the new shape
#: here under the new number (docs/architecture.md, "Snapshots").
SHAPES = {
    1: {
        "_created_on": "datetime",
        "_modified_on": "datetime",
        "balances": "dict[str, int]",
        "bank_id": "str",
        "entries_count": "int",
        "guardians": "dict[str, list[str]]",
        "joined_on": "dict[str, date]",
        "kinds": "dict[str, str]",
        "last_occurred_on": "dict[str, date]",
        "name": "str",
        "opened_on": "date",
        "pending": "dict[str, dict[str, NoneType|bool|date|int|str]]",
        "periods": "dict[str, list[list[NoneType|date]]]",
        "policy": "Policy",
        "roles": "dict[str, str]",
        "status": "dict[str, str]",
    },
}


def test_the_shape_of_a_bank_s_state_is_the_one_its_state_version_names(
    reopen: Callable[[], timebank.Timebank],
) -> None:
    tb = reopen()
    bank = bank_using_every_feature(tb)
    state = {
        name: shape([value])
        for name, value in vars(bank).items()
        if name not in {"_id", "_version", "_pending_events"}  # not in a snapshot
    }
    assert state == SHAPES.get(Bank.STATE_VERSION), (
        "a bank's state changed shape: raise Bank.STATE_VERSION (so that no snapshot"
        " of the old shape is loaded) and record the new shape in SHAPES"
    )
    # Every value of a kind the state holds took part: none is an empty container.
    assert all("[]" not in text and "[, ]" not in text for text in state.values())
    # And the same state comes back through a snapshot as through the events.
    tb._app.take_snapshot(bank_uuid("riverside"))
    tb.close()
    tb = reopen()
    loaded = tb._app.bank("riverside")
    assert {k: v for k, v in vars(loaded).items() if k in state} == {
        k: v for k, v in vars(bank).items() if k in state
    }
    # ...and the check of a snapshot's form passes it, held to the same shape
    # (a snapshot it failed would be set aside, and the bank replayed)
    assert tb._app.damaged_snapshots == {}
    assert set(BANK_STATE) == set(SHAPES[Bank.STATE_VERSION])
    assert snapshot_problem(Bank, {k: v for k, v in vars(loaded).items() if k in state}) is None
    tb.close()


def test_a_store_with_more_banks_than_the_cache_keeps_every_bank_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the cache's size, a command that reads every bank found none of
    them cached (each load evicted the bank the next one needed), so every
    call loaded every bank from the store: now the cache holds them all."""
    monkeypatch.setattr(_ledger, "CACHE_SIZE", 4)
    with timebank.Timebank(MemoryBackend(), clock=fixed_clock) as tb:
        tb.create_bank("root", name="Root", actor=ACTOR, opened_on="2026-01-01")
        for n in range(9):
            tb.create_bank(f"root/g{n}", name=f"G{n}", actor=ACTOR, opened_on="2026-01-01")
        tb.join("root/g8", "ann", kind="individual", actor=ACTOR, joined_on="2026-01-01")
        loads: list[object] = []
        load = tb._app._load
        monkeypatch.setattr(tb._app, "_load", lambda aggregate_id: loads.append(aggregate_id)
                            or load(aggregate_id))  # fmt: skip
        tb._app._cache.clear()
        first = tb.banks(), tb.memberships("ann"), tb.figures("root", rollup=True)
        assert len(set(loads)) == len(loads) == 11  # each bank and the registry, once
        loads.clear()
        assert (tb.banks(), tb.memberships("ann"), tb.figures("root", rollup=True)) == first
        assert loads == []
