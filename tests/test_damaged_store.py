"""A damaged store: one bit flipped anywhere in a stored event or snapshot
(a failing disk, an edit by hand), and every
command still ends with a result or a named error, never a crash; the audit
names every event the flip made unreadable; a damaged snapshot is set aside
and its bank replayed from its events (docs/audit.md, docs/architecture.md).

A flip that leaves a well-formed event (another amount, day or id of the
right form) is found only where another record disagrees; which fields that
covers is in docs/audit.md. Here the oracle is the event's form, checked by
the test itself: a flip that breaks it must be reported.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import timebank
from timebank import errors
from timebank.demo import DEMO_BANK, DEMO_HUB, run_demo
from timebank.domain.bank import bank_uuid

TODAY = date(2026, 6, 1)


def _clock() -> datetime:
    return datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's store (members, exchanges, donations, pot-funded help, a
    reversal, a mini bank, an inter-bank and a pending entry), its read model
    caught up, and a snapshot of each bank."""
    path = tmp_path_factory.mktemp("damaged") / "store.db"
    with timebank.open(f"sqlite:///{path}", clock=_clock) as tb:
        run_demo(tb, TODAY)
        for bank in (DEMO_BANK, DEMO_HUB):
            tb._app.take_snapshot(bank_uuid(bank))
        tb.report(DEMO_BANK)
    return path


def _rows(path: Path, table: str) -> list[tuple[str, int]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(
            f"SELECT originator_id, originator_version FROM {table}"
            " ORDER BY originator_id, originator_version"
        ).fetchall()


def _flip(path: Path, table: str, key: tuple[str, int], at: int, bit: int) -> tuple[bytes, bytes]:
    """Flip one bit of a stored state; the state before and after."""
    where = "originator_id = ? AND originator_version = ?"
    with closing(sqlite3.connect(path)) as conn, conn:
        (state,) = conn.execute(f"SELECT state FROM {table} WHERE {where}", key).fetchone()
        damaged = bytearray(state)
        damaged[at % len(damaged)] ^= 1 << bit
        conn.execute(f"UPDATE {table} SET state = ? WHERE {where}", (bytes(damaged), *key))
    return bytes(state), bytes(damaged)


def _fresh_copy(base: Path, directory: Path) -> Path:
    """The base store and its read model copied into ``directory`` (again
    for each example: no log of an earlier one left beside them)."""
    for name in ("store.db", "store.reports.db"):
        for suffix in ("-wal", "-shm"):
            (directory / f"{name}{suffix}").unlink(missing_ok=True)
        shutil.copy(base.with_name(name), directory / name)
    return directory / "store.db"


def _every_read_ends_in_a_result_or_a_named_error(tb: timebank.Timebank) -> None:
    reads = [
        tb.balances,
        lambda: tb.statement(DEMO_BANK, "m-001"),
        lambda: tb.report(DEMO_BANK, rollup=True),
        lambda: tb.ledger_statement(DEMO_HUB, "h-001"),
        lambda: tb.figures(DEMO_BANK, rollup=True),
        lambda: tb.entry("demo-inter-bank-1"),
        lambda: tb.pending(DEMO_HUB),
        lambda: tb.members(DEMO_BANK),
    ]
    for read in reads:
        with contextlib.suppress(errors.TimebankError):  # named: it may refuse a damaged store
            read()


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    snapshot=st.booleans(),
    row=st.integers(min_value=0),
    at=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_a_flipped_bit_is_found_or_harmless_and_never_a_crash(
    base: Path, tmp_path: Path, snapshot: bool, row: int, at: int, bit: int
) -> None:
    path = _fresh_copy(base, tmp_path)
    table = "stored_snapshots" if snapshot else "stored_events"
    rows = _rows(path, table)
    key = rows[row % len(rows)]
    before, after = _flip(path, table, key, at, bit)
    with timebank.open(f"sqlite:///{path}", clock=_clock, create=False) as tb:
        report = tb.audit()  # never raises: damage is a finding
        if snapshot:
            if _snapshot_malformed(after, before):
                assert "snapshot_damaged" in {f.check for f in report.findings}, report.summary()
        elif _malformed(after, before):
            found = [f.ids["event"] for f in report.findings if f.check == "event_unreadable"]
            assert found == [_notification_id(path, key)], report.summary()
            assert not report.ok
        _every_read_ends_in_a_result_or_a_named_error(tb)


def _notification_id(path: Path, key: tuple[str, int]) -> int:
    with closing(sqlite3.connect(path)) as conn:
        (seq,) = conn.execute(
            "SELECT rowid FROM stored_events WHERE originator_id = ? AND originator_version = ?",
            key,
        ).fetchone()
    return int(seq)


def _structure(value: object) -> object:
    """A JSON value's structure: every key and the type of every value, not
    the values themselves."""
    if isinstance(value, dict):
        return {k: _structure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_structure(v) for v in value]
    return type(value).__name__


def _malformed(after: bytes, before: bytes) -> bool:
    """Whether the flip broke the event's JSON or its structure (a key, a
    value's type): what the test holds the audit to find, whatever the
    field. (A flip inside a text or a number keeps the structure: the audit
    finds some of those too, by their form.)"""
    try:
        damaged = orjson.loads(after)
    except orjson.JSONDecodeError:
        return True
    return _structure(damaged) != _structure(orjson.loads(before))


def _snapshot_malformed(after: bytes, before: bytes) -> bool:
    """Whether the flip broke a snapshot's JSON, its topic or state, the
    names of its bank's attributes, or a value's transcoding (a day that no
    longer reads as one). Keys inside the bank's maps are ids: another id
    keeps the form (even one that now appears twice in a map, which JSON
    readers take as one)."""
    try:
        damaged = orjson.loads(after)
    except orjson.JSONDecodeError:
        return True
    original = orjson.loads(before)
    # (the snapshot's own timestamp is never read: damaged, it does no harm)
    if {"topic", "state"} - damaged.keys() or not isinstance(damaged["state"], dict):
        return True
    if damaged["state"].keys() != original["state"].keys():
        return True
    return _marks(_state_pairs(after)) != _marks(_state_pairs(before))


class _Object(list[tuple[str, object]]):
    """A JSON object as its pairs, duplicates kept."""


def _state_pairs(raw: bytes) -> object:
    """A snapshot's state, as pairs."""
    snapshot = json.loads(raw, object_pairs_hook=_Object)
    return next(value for key, value in snapshot if key == "state")


def _marks(value: object) -> list[object]:
    """The transcodings inside a JSON value, in order (``_type_`` names)."""
    if isinstance(value, _Object):
        return [m for k, v in value for m in ([v] if k == "_type_" else _marks(v))]
    if isinstance(value, list):
        return [m for v in value for m in _marks(v)]
    return []


_WRONG_FORMS = [
    ("entry_id", "demo ex", "field 'entry_id' holds 'demo ex', not an entry id"),
    ("actor", "coord/demo", "field 'actor' holds 'coord/demo', not a member id"),
    ("receiver", "@pots", "field 'receiver' holds '@pots', not an account"),
    ("category", "Gardening", "field 'category' holds 'Gardening', not a category"),
    ("minutes", "60", "field 'minutes' holds '60', not a whole number"),
    ("minutes", True, "field 'minutes' holds True, not a whole number"),
    (
        "occurred_on",
        {"_type_": "date_iso", "_data_": "2026-W01-1"},
        "field 'occurred_on' holds {'_type_': 'date_iso', '_data_': '2026-W01-1'}, not a day",
    ),
    (
        "timestamp",
        {"_type_": "datetime_iso", "_data_": "2026-06-01V12:00:00+00:00"},
        "field 'timestamp' holds {'_type_': 'datetime_iso', '_data_': '2026-06-01V12:00:00...,"
        " not a moment",
    ),
]


@pytest.mark.parametrize(("field", "value", "said"), _WRONG_FORMS)
def test_an_event_of_the_wrong_form_is_named_by_its_field(
    field: str, value: object, said: str
) -> None:
    from timebank._event_shapes import shape_problem

    topic = "timebank.domain.bank:Bank.ExchangeRecorded"
    sound = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-06-01T12:00:00+00:00"},
        "entry_id": "demo-ex-1", "occurred_on": {"_type_": "date_iso", "_data_": "2026-05-31"},
        "minutes": 60, "category": "gardening", "actor": "coord-demo", "on_behalf_of": None,
        "flags": [], "provider": "m-001", "receiver": "m-002",
    }  # fmt: skip
    assert shape_problem(topic, sound) is None
    assert shape_problem(topic, {**sound, field: value}) == said
    assert shape_problem(topic, {**sound, "fIags": []}) == "unknown field 'fIags'"
    without = {k: v for k, v in sound.items() if k != "flags"}
    assert shape_problem(topic, {**without, "fIags": []}) == (
        "unknown field 'fIags', no field 'flags'"
    )
    assert shape_problem("timebank.domain.bank:Bank.NoSuchEvent", sound) == (
        "its topic 'timebank.domain.bank:Bank.NoSuchEvent' names no event class of this version"
    )


def test_a_damaged_snapshot_is_set_aside_noted_and_replaced(base: Path, tmp_path: Path) -> None:
    """The snapshot's state with one attribute's name damaged: the audit notes
    it and finds the bank as the log has it; the next command replays the bank
    and snapshots it afresh."""
    path = _fresh_copy(base, tmp_path)
    key = next(k for k in _rows(path, "stored_snapshots") if k[0] == bank_uuid(DEMO_BANK).hex)
    with closing(sqlite3.connect(path)) as conn, conn:
        where = "originator_id = ? AND originator_version = ?"
        (state,) = conn.execute(f"SELECT state FROM stored_snapshots WHERE {where}", key).fetchone()
        damaged = state.replace(b'"balances"', b'"balancez"')
        conn.execute(f"UPDATE stored_snapshots SET state = ? WHERE {where}", (damaged, *key))
    with timebank.open(f"sqlite:///{path}", clock=_clock, create=False) as tb:
        report = tb.audit()  # which writes nothing: the snapshot stays
        assert report.ok, report.summary()
        [noted] = [f for f in report.findings if f.check == "snapshot_damaged"]
        assert noted.ids == {"bank": DEMO_BANK}
        assert "lacks ['balances']" in noted.message
        tb._app._cache.clear()
        before = {(b.bank, b.account): b.balance_minutes for b in tb.balances()}
        assert "snapshot_damaged" not in {f.check for f in tb.audit().findings}  # replaced
    with closing(sqlite3.connect(path)) as conn:
        (state,) = conn.execute(
            "SELECT state FROM stored_snapshots WHERE originator_id = ?", (key[0],)
        ).fetchone()
        assert b'"balances"' in state  # snapshotted afresh by the balances above
    with timebank.open(f"sqlite:///{path}", clock=_clock, create=False) as tb:
        assert {(b.bank, b.account): b.balance_minutes for b in tb.balances()} == before
        assert "snapshot_damaged" not in {f.check for f in tb.audit().findings}


def test_a_damaged_event_is_a_named_error_for_commands_and_the_read_model(
    base: Path, tmp_path: Path
) -> None:
    """An event after the snapshot and after the read model's position,
    damaged: loading its bank is ``event_unreadable``, and so is catching the
    read model up, which keeps its position."""
    path = _fresh_copy(base, tmp_path)
    with timebank.open(f"sqlite:///{path}", clock=_clock, create=False) as tb:
        tb.record_exchange(DEMO_BANK, "m-001", "m-002", "1", actor="coord-demo",
                           entry_id="late-1", occurred_on="2026-05-31")  # fmt: skip
        position = tb.read_model.position()
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "UPDATE stored_events SET state = replace(state, '\"minutes\"', '\"minutez\"')"
            " WHERE rowid = (SELECT max(rowid) FROM stored_events)"
        )
    with timebank.open(f"sqlite:///{path}", clock=_clock, create=False) as tb:
        with pytest.raises(errors.EventUnreadable, match=r"bank 'riverside' cannot be read"):
            tb.balance(DEMO_BANK, "m-001")
        with pytest.raises(errors.EventUnreadable, match=r"the read model cannot apply event"):
            tb.read_model.catch_up()
        assert tb.read_model.position() == position
        with pytest.raises(errors.EventUnreadable):
            tb.report(DEMO_BANK)
        report = tb.audit()
        assert [f.check for f in report.errors] == ["event_unreadable", "bank_unreadable"]


@pytest.mark.parametrize(
    "topic",
    [
        "timebank.domain.bank:Bank.NoSuchEvent",  # names no class
        "timebank.domain.bank:Bank",  # a class, not an event
        "eventsourcing.domain:DomainEvent",  # an event class without ``mutate``
    ],
)
def test_an_event_whose_topic_names_no_event_is_a_named_error(
    base: Path, tmp_path: Path, topic: str
) -> None:
    """An event's topic changed to name no event class of timebank's:
    loading its bank is ``event_unreadable``, and the audit names it. (The
    loader applies stored events without eventsourcing's per-event protocol
    assertion: an event class without ``mutate`` is still damage, not
    skipped and not a crash.)"""
    path = _fresh_copy(base, tmp_path)
    with timebank.open(f"sqlite:///{path}", clock=_clock, create=False) as tb:
        tb.record_exchange(DEMO_BANK, "m-001", "m-002", "1", actor="coord-demo",
                           entry_id="late-1", occurred_on="2026-05-31")  # fmt: skip
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "UPDATE stored_events SET topic = ? WHERE rowid = (SELECT max(rowid) FROM stored_events)",
            (topic,),
        )
    with timebank.open(f"sqlite:///{path}", clock=_clock, create=False) as tb:
        with pytest.raises(errors.EventUnreadable, match=r"bank 'riverside' cannot be read"):
            tb.balance(DEMO_BANK, "m-001")
        report = tb.audit()
        assert "event_unreadable" in [f.check for f in report.errors], report.summary()


def test_an_event_deleted_from_the_log_is_a_named_error_and_found(
    base: Path, tmp_path: Path
) -> None:
    """Events deleted around the API (raw SQL) after a bank's snapshot. The
    last one: the entry the index still names is ``event_unreadable``,
    saying the log holds no event there (it said only Python's ValueError
    about unpacking). One in the middle: loading the bank is
    ``event_unreadable`` naming the missing event (the library's
    ``OriginatorVersionError: (6, 5)`` reached the caller), and the audit
    names the bank and the event, and finds the gap in the bank's log
    (``event_missing``), which it did only by its consequences."""
    path = _fresh_copy(base, tmp_path)
    url = f"sqlite:///{path}"
    with timebank.open(url, clock=_clock, create=False) as tb:
        for n in range(4):
            tb.record_exchange(DEMO_BANK, "m-001", "m-002", "1", actor="coord-demo",
                               entry_id=f"late-{n}", occurred_on="2026-05-31")  # fmt: skip
        found = {n: tb._app.index.find_entry(f"late-{n}") for n in range(4)}
        hub = tb.balances(DEMO_HUB)
    versions = {n: entry.version for n, entry in found.items() if entry is not None}

    def delete(version: int) -> None:
        with closing(sqlite3.connect(path)) as conn, conn:
            deleted = conn.execute(
                "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = ?",
                (bank_uuid(DEMO_BANK).hex, version),
            ).rowcount
        assert deleted == 1

    delete(versions[3])
    with timebank.open(url, clock=_clock, create=False) as tb:
        with pytest.raises(errors.EventUnreadable, match=(
            rf"entry 'late-3' cannot be read .*: the entry index names event {versions[3]} of"
            r" bank 'riverside', and the log holds no event there"
        )):  # fmt: skip
            tb.entry("late-3")
        assert tb.entry("late-2").minutes == 60
        assert [f.check for f in tb.audit(read_model=False).errors] == ["entry_index"]
    delete(versions[1])
    with timebank.open(url, clock=_clock, create=False) as tb:
        with pytest.raises(errors.EventUnreadable, match=(
            rf"bank 'riverside' cannot be read .*\(event {versions[1]} of its stream is missing:"
            rf" the next stored is event {versions[2]}\)"
        )):  # fmt: skip
            tb.balance(DEMO_BANK, "m-001")
        assert tb.balances(DEMO_HUB) == hub  # the other bank reads on
        report = tb.audit(read_model=False)
        assert [(f.check, f.message) for f in report.errors if f.check == "bank_unreadable"] == [
            ("bank_unreadable", f"bank 'riverside' cannot be loaded: event {versions[1]} of its"
                                f" stream is missing: the next stored is event {versions[1] + 1}")
        ]  # fmt: skip
        (missing,) = [f for f in report.errors if f.check == "event_missing"]
        assert missing.message == (
            f"the log of bank 'riverside' holds {versions[2] - 1} events numbered up to"
            f" {versions[2]}: 1 event missing (deleted around timebank)"
        )
        assert missing.ids == {"bank": DEMO_BANK, "events": versions[2] - 1,
                               "highest": versions[2]}  # fmt: skip


def test_an_entry_read_alone_with_a_damaged_field_is_a_named_error(
    base: Path, tmp_path: Path
) -> None:
    """An entry whose event, from before its bank's snapshot, lost its
    ``timestamp`` field to one flipped bit: ``entry`` reads that event
    alone, and its fields too are read as damage, ``event_unreadable``
    (the flipped-bit test found an ``AttributeError`` there on Python
    3.12, after a change had moved that reading out of the guarded block)."""
    path = _fresh_copy(base, tmp_path)
    with timebank.open(f"sqlite:///{path}", clock=_clock, create=False) as tb:
        found = tb._app.index.find_entry("demo-inter-bank-1")
    assert found is not None
    before, after = _flip(path, "stored_events", (found.bank_uuid.hex, found.version), 2, 0)
    assert b'"timestamp"' in before
    assert b'"uimestamp"' in after
    with timebank.open(f"sqlite:///{path}", clock=_clock, create=False) as tb:
        with pytest.raises(errors.EventUnreadable, match=r"entry 'demo-inter-bank-1' cannot be"):
            tb.entry("demo-inter-bank-1")
        assert "event_unreadable" in {f.check for f in tb.audit().errors}


def test_a_second_import_names_a_damaged_entry_at_its_own_row(base: Path, tmp_path: Path) -> None:
    """Importing the demo's export again, with one entry's event damaged
    (a flipped bit, as above) and another's deleted from the end of its
    bank's log: the import reads the stored entries many at a time, yet
    names each at its own row, ``event_unreadable``'s words, and no other
    row; nothing is written."""
    path = _fresh_copy(base, tmp_path)
    url = f"sqlite:///{path}"
    with timebank.open(url, clock=_clock, create=False) as tb:
        tb.record_exchange(DEMO_BANK, "m-001", "m-002", "1", actor="coord-demo",
                           entry_id="late-1", occurred_on="2026-05-31")  # fmt: skip
        members, entries = io.StringIO(), io.StringIO()
        tb.export_csv(members, entries)
        flipped = tb._app.index.find_entry("demo-inter-bank-1")
        last = tb._app.index.find_entry("late-1")
    assert flipped is not None
    assert last is not None
    exported = tmp_path / "entries.csv"
    exported.write_text(entries.getvalue(), encoding="utf-8")
    rows = entries.getvalue().splitlines()
    lines = {row.split(",")[0]: n for n, row in enumerate(rows, start=1)}
    _flip(path, "stored_events", (flipped.bank_uuid.hex, flipped.version), 2, 0)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = ?",
            (last.bank_uuid.hex, last.version),
        )
    with timebank.open(url, clock=_clock, create=False) as tb:
        before = tb._app.recorder.max_notification_id()
        with pytest.raises(errors.ImportFailed) as raised:
            tb.import_entries(timebank.read_csv(exported), actor="coord-demo")
        assert tb._app.recorder.max_notification_id() == before
    problems = raised.value.problems
    assert [(p.line, p.column, p.value) for p in problems] == sorted([
        (lines["demo-inter-bank-1"], "entry_id", "demo-inter-bank-1"),
        (lines["late-1"], "entry_id", "late-1"),
    ])  # fmt: skip
    reasons = {p.value: p.reason for p in problems}
    assert "entry 'demo-inter-bank-1' cannot be read" in reasons["demo-inter-bank-1"]
    assert "the log holds no event there" in reasons["late-1"]
