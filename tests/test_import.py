"""Imports (docs/import.md): export then import gives the same ledger; every
malformed file is refused with its row named and the store unchanged; a
second import changes nothing; a killed import leaves the store as it was."""

from __future__ import annotations

import csv
import gc
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, timedelta
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import timebank
from timebank.domain.bank import Bank
from timebank.domain.policy import BalanceLimits
from timebank.domain.roles import Action
from timebank.errors import ImportFailed, InvalidInput

from .conftest import ACTOR, fixed_clock, open_store, snapshot_state
from .ledger_model import HUB, OPENED, ROOT, new_ledger

END = date(2026, 6, 15)


def _export(tb: timebank.Timebank) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    members, entries = io.StringIO(), io.StringIO()
    tb.export_csv(members, entries)
    return (
        list(csv.DictReader(io.StringIO(members.getvalue()))),
        list(csv.DictReader(io.StringIO(entries.getvalue()))),
    )


def _empty_twin(tb: timebank.Timebank) -> None:
    """The banks of the generated ledgers, opened on the same day, empty."""
    tb.create_bank(ROOT, name="Root", actor=ACTOR, opened_on=OPENED)
    tb.create_bank(HUB, name="Hub", actor=ACTOR, opened_on=OPENED)


def _balances(tb: timebank.Timebank) -> list[tuple[str, str, int]]:
    return sorted((b.bank, b.account, b.balance_minutes) for b in tb.balances())


def _figures(tb: timebank.Timebank) -> list[object]:
    return [
        tb.report(bank, start=start, end=END, rollup=rollup)
        for bank, rollup in ((ROOT, False), (ROOT, True), (HUB, False))
        for start in (OPENED, date(2026, 3, 1))
    ]


def _ledger_lines(tb: timebank.Timebank, bank: str, account: str) -> list[dict[str, object]]:
    """An account's statement from the postings index, but for when each
    line was recorded (an import records its entries anew)."""
    return [
        attrs.asdict(line, filter=lambda a, _: a.name != "recorded_at")
        for line in tb.ledger_statement(bank, account)
    ]


def _fact(entry: timebank.RecordedEntry) -> dict[str, object]:
    return attrs.asdict(
        entry, recurse=False, filter=lambda a, _: a.name not in ("recorded_at", "actor")
    )


def _row_text(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(row.values())


def _round_trip(source: timebank.Timebank, target: timebank.Timebank) -> None:
    members, entries = _export(source)
    _empty_twin(target)
    result = target.import_members(members, actor=ACTOR)
    assert result.recorded == len({(m["bank"], m["member_id"]) for m in members})
    imported = target.import_entries(entries, actor=ACTOR)
    assert imported.recorded == len({e["entry_id"] for e in entries})
    assert _balances(target) == _balances(source)
    assert _figures(target) == _figures(source)
    # every account's statement from the postings index (which an import
    # writes apart from the events: see SqliteRecorder.bulk_insert)
    for bank, account, _ in _balances(source):
        assert _ledger_lines(target, bank, account) == _ledger_lines(source, bank, account)
    target.check_invariants()
    # every member is the same member: kind, periods, status, balance, and
    # the profile's fields the layout carries (the generated ones give none other)
    for bank in (ROOT, HUB):
        assert target.members(bank) == source.members(bank)
    for member in {m["member_id"] for m in members}:
        assert target.profile(member) == source.profile(member), member
    # every entry is the same fact, field for field, but for who recorded it
    # and when (the API's entries recorded one by one, the import's anew)
    for entry_id in {e["entry_id"] for e in entries}:
        assert _fact(target.entry(entry_id)) == _fact(source.entry(entry_id)), entry_id
    # the imported ledger exports as the same rows: a store that came in by
    # an import can move again (to PostgreSQL, to another system) the same
    # way. (An import saves each bank's events together, so entries of two
    # banks may come out in another order between the banks.)
    members_again, entries_again = _export(target)
    assert members_again == members
    assert sorted(map(_row_text, entries_again)) == sorted(map(_row_text, entries))
    # and again: nothing changes, and it says so; into the source too, whose
    # entries the API recorded (a donation's pot is no receiver either way)
    for store in (target, source):
        events = store._app.recorder.max_notification_id()
        again = store.import_entries(entries, actor=ACTOR)
        assert (again.recorded, again.skipped) == (0, imported.recorded)
        assert store.import_members(members, actor=ACTOR).recorded == 0
        assert store._app.recorder.max_notification_id() == events


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_export_then_import_gives_the_same_balances_and_figures(data: st.DataObject) -> None:
    memory = timebank.storage.memory.MemoryBackend
    with (
        timebank.Timebank(memory(), clock=fixed_clock) as source,
        timebank.Timebank(memory(), clock=fixed_clock) as target,
    ):
        new_ledger(source, data, data.draw(st.integers(0, 40), label="steps"))
        # the stored entries a second import compares its rows with, read
        # ahead a few at a time too, so that the reads end between rows
        ahead = data.draw(st.sampled_from([1, 3, timebank.importing.READ_AHEAD]), label="ahead")
        kept, timebank.importing.READ_AHEAD = timebank.importing.READ_AHEAD, ahead
        try:
            _round_trip(source, target)
        finally:
            timebank.importing.READ_AHEAD = kept


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_export_then_import_on_storage(
    kind: str, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from .conftest import POSTGRES_URL

    if kind == "postgres" and POSTGRES_URL is None:
        pytest.skip("no PostgreSQL server (CI always has one)")
    with (
        timebank.Timebank(timebank.storage.memory.MemoryBackend(), clock=fixed_clock) as source,
        open_store(kind, tmp_path_factory.mktemp("i"))() as target,
    ):
        new_ledger(source, data, data.draw(st.integers(5, 30), label="steps"))
        _round_trip(source, target)


def test_a_donation_an_import_once_stored_with_the_pot_as_receiver_reads_as_none(
    tmp_path: Path,
) -> None:
    """Imports once stored a donation's receiver as the pot, where the API
    stores none (docs/events.md): such a store's donations read as having
    none, in the API, a read model built from its log and its export, which
    then imports into it again as already present."""
    reopen = open_store("sqlite", tmp_path)
    with reopen() as tb:
        tb.create_bank("t", name="T", actor=ACTOR, opened_on="2026-01-01")
        tb.join("t", "ann", kind="individual", actor=ACTOR, joined_on="2026-01-01")
        tb.import_entries(_entry_rows(["d1,2026-01-05,donation,ann,,2,t,,,,"]), actor=ACTOR)
        tb.read_model.catch_up()
    with sqlite3.connect(tmp_path / "store.db") as db:  # as such an import stored it
        changed = db.execute(
            "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT),"
            ' \'"receiver":null\', \'"receiver":"@pot"\') AS BLOB)'
            " WHERE topic LIKE '%DonationMade'"
        ).rowcount
    assert changed == 1
    with reopen() as tb:
        assert tb.entry("d1").receiver is None
        tb.read_model.rebuild()
        assert tb.read_model.db.execute("SELECT receiver FROM rm_entries") == [(None,)]
        _, entries = _export(tb)
        assert [e["receiver"] for e in entries] == [""]
        again = tb.import_entries(entries, actor=ACTOR)
        assert (again.recorded, again.skipped) == (0, 1)


# --- malformed files: a clear error at the row, and nothing written ----------------
HEADER = "entry_id,occurred_on,kind,provider,receiver,hours,bank,category,note,reverses,group_id"
GOOD = [
    "e1,2026-02-01,exchange,ann,bob,1:30,riverside,diy,,,",
    "e2,2026-02-02,pot_exchange,cat,bob,1,riverside,,,,",
    "e3,2026-02-03,donation,ann,,0.5,riverside,,,,",
    "e4,2026-02-04,reversal,,,,riverside,,,e1,",
    "g,2026-02-05,exchange,ann,,2,riverside,class,,,g",
    "g,2026-02-05,exchange,,bob,1,riverside,class,,,g",
    "g,2026-02-05,exchange,,cat,1,riverside,class,,,g",
    "e5,2026-02-06,opening_balance,org,,-2:00,riverside,,,,",
]
#: (what is wrong, the row replacing GOOD[index], the column named)
BAD = [
    ("bad number", (0, "e1,2026-02-01,exchange,ann,bob,1.x,riverside,diy,,,"), "hours"),
    ("not whole minutes", (0, "e1,2026-02-01,exchange,ann,bob,1.51,riverside,diy,,,"), "hours"),
    ("float seconds", (1, "e2,2026-02-02,pot_exchange,cat,bob,0.001,riverside,,,,"), "hours"),
    ("duration seconds", (0, "e1,2026-02-01,exchange,ann,bob,1:30:30,riverside,diy,,,"), "hours"),
    ("zero hours", (2, "e3,2026-02-03,donation,ann,,0,riverside,,,,"), "hours"),
    ("negative exchange", (0, "e1,2026-02-01,exchange,ann,bob,-1,riverside,diy,,,"), "hours"),
    ("bad date", (0, "e1,2026-02-30,exchange,ann,bob,1,riverside,diy,,,"), "occurred_on"),
    ("basic date", (0, "e1,20260201,exchange,ann,bob,1,riverside,diy,,,"), "occurred_on"),
    ("week date", (0, "e1,2026-W05-7,exchange,ann,bob,1,riverside,diy,,,"), "occurred_on"),
    ("future date", (0, "e1,2027-02-01,exchange,ann,bob,1,riverside,diy,,,"), "occurred_on"),
    ("year typed short", (0, "e1,0216-02-01,exchange,ann,bob,1,riverside,diy,,,"), "occurred_on"),
    ("placeholder date", (0, "e1,0001-01-01,exchange,ann,bob,1,riverside,diy,,,"), "occurred_on"),
    ("before joining", (0, "e1,2025-02-01,exchange,ann,bob,1,riverside,diy,,,"), "provider"),
    ("unknown member", (0, "e1,2026-02-01,exchange,ann,zed,1,riverside,diy,,,"), "receiver"),
    ("unknown bank", (0, "e1,2026-02-01,exchange,ann,bob,1,nowhere,diy,,,"), "bank"),
    ("unknown kind", (0, "e1,2026-02-01,swap,ann,bob,1,riverside,diy,,,"), "kind"),
    ("self exchange", (0, "e1,2026-02-01,exchange,ann,ann,1,riverside,diy,,,"), "provider"),
    ("bad id", (0, "e 1,2026-02-01,exchange,ann,bob,1,riverside,diy,,,"), "entry_id"),
    ("duplicated id", (1, "e1,2026-02-02,pot_exchange,cat,bob,1,riverside,,,,"), "entry_id"),
    ("reversal of unknown", (3, "e4,2026-02-04,reversal,,,,riverside,,,nope,"), "reverses"),
    ("reversal twice", (7, "e5,2026-02-06,reversal,,,,riverside,,,e1,"), "reverses"),
    ("reversal of a reversal", (7, "e5,2026-02-06,reversal,,,,riverside,,,e4,"), "reverses"),
    ("reversal before entry", (3, "e4,2026-01-31,reversal,,,,riverside,,,e1,"), "occurred_on"),
    # a group's problems are reported on its first row
    ("unbalanced group", (4, "g,2026-02-05,exchange,ann,,3,riverside,class,,,g"), "group_id"),
    ("group days differ", (4, "g,2026-02-04,exchange,ann,,2,riverside,class,,,g"), "occurred_on"),
    ("pot overdrawn", (1, "e2,2026-02-02,pot_exchange,cat,bob,3,riverside,,,,"), "hours"),
    ("donation receiver", (2, "e3,2026-02-03,donation,ann,bob,0.5,riverside,,,,"), "receiver"),
    ("ragged row", (0, "e1,2026-02-01,exchange,ann,bob,1"), "-"),
]


@pytest.fixture
def riverside(tb: timebank.Timebank, bank: str) -> timebank.Timebank:
    """The conftest bank (ann, bob, cat, org; joined 2026-01-01) with a pot of 2 hours."""
    tb.donate(bank, "org", "2:00", actor=ACTOR, occurred_on="2026-01-10", entry_id="seed")
    return tb


def _file(tmp_path: Path, lines: list[str], name: str = "entries.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def _state(tb: timebank.Timebank) -> tuple[object, ...]:
    return (tb._app.recorder.max_notification_id(), _balances(tb), tb._app.index.count_entries())


def test_a_good_file_goes_in_whole(riverside: timebank.Timebank, tmp_path: Path) -> None:
    result = riverside.import_entries(timebank.read_csv(_file(tmp_path, GOOD)), actor=ACTOR)
    assert (result.rows, result.recorded, result.skipped) == (8, 6, 0)
    assert riverside.entry("e1").reversed_by == "e4"
    assert (
        riverside.balance("riverside", "ann") == -30 + 120
    )  # e1 reversed, gave 0:30 (e3), gave 2:00 (g)
    assert riverside.balance("riverside", "org") == -120 - 120  # the seed, the opening
    assert riverside.entry("g").kind is timebank.EntryKind.GROUP_EXCHANGE


@pytest.mark.parametrize(("what", "change", "column"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_row_is_named_and_nothing_is_written(
    riverside: timebank.Timebank,
    tmp_path: Path,
    what: str,
    change: tuple[int, str],
    column: str,
) -> None:
    index, row = change
    lines = list(GOOD)
    lines[index] = row
    before = _state(riverside)
    path = _file(tmp_path, lines)
    with pytest.raises(ImportFailed) as raised:
        riverside.import_entries(timebank.read_csv(path), actor=ACTOR, source="entries.csv")
    problems = raised.value.problems
    assert (index + 2, column) in {(p.line, p.column) for p in problems}, (what, problems)
    assert all(str(p).startswith(f"{p.file}:{p.line}: ") for p in problems)
    assert _state(riverside) == before


def test_hours_as_a_spreadsheet_writes_a_duration(
    riverside: timebank.Timebank, tmp_path: Path
) -> None:
    """A duration cell saved as CSV comes out as ``1:30:00``."""
    rows = ["s1,2026-02-01,exchange,ann,bob,1:30:00,riverside,,,,",
            "s2,2026-02-02,opening_balance,org,,-12:15:00,riverside,,,,"]  # fmt: skip
    riverside.import_entries(timebank.read_csv(_file(tmp_path, rows)), actor=ACTOR)
    assert (riverside.entry("s1").minutes, riverside.entry("s2").minutes) == (90, -735)


def test_a_historic_entry_may_fall_on_the_day_its_member_left_and_no_later(
    riverside: timebank.Timebank, tmp_path: Path
) -> None:
    """A membership period holds its last day, as it holds its first: the
    day a member left is inside it (docs/membership.md)."""
    riverside.leave("riverside", "cat", actor=ACTOR, left_on="2026-03-01")
    before = _state(riverside)
    after = ["x1,2026-03-01,exchange,ann,cat,1,riverside,,,,",
             "x2,2026-03-02,exchange,ann,cat,1,riverside,,,,"]  # fmt: skip
    with pytest.raises(ImportFailed) as raised:
        riverside.import_entries(timebank.read_csv(_file(tmp_path, after)), actor=ACTOR)
    ((problem),) = raised.value.problems
    assert (problem.line, problem.column) == (3, "receiver")
    assert "outside the membership of 'cat'" in problem.reason
    assert _state(riverside) == before
    result = riverside.import_entries(timebank.read_csv(_file(tmp_path, after[:1])), actor=ACTOR)
    assert result.recorded == 1
    assert riverside.entry("x1").occurred_on == date(2026, 3, 1)
    audit = riverside.audit()  # whose replay reads a membership period as the bank does
    assert audit.findings == (), audit.summary()


@st.composite
def _broken_files(draw: st.DrawFn) -> tuple[bytes, str]:
    """The good file with one random defect: a cell replaced by junk, a
    column dropped or named twice, bytes that are not UTF-8, or a row
    repeated."""
    rows = [HEADER.split(","), *(line.split(",") for line in GOOD)]
    how = draw(st.sampled_from(["cell", "column", "named twice", "encoding", "repeat"]))
    if how == "cell":
        r = draw(st.integers(1, len(rows) - 1))
        c = draw(st.sampled_from([0, 1, 2, 5, 6, 9]))  # id, date, kind, hours, bank, reverses
        junk = draw(st.sampled_from(["", "-", "∞", "@pot", "x", "1e9", "2026-99-01", "9999-01-01",
                                     "1_5", "\u0663", "\u00b2"]))  # fmt: skip
        if c == 0 and junk in ("x", "1e9", "2026-99-01", "9999-01-01", "1_5"):
            junk = "∞"  # those are well-formed entry ids
        if c == 9:
            r = 4  # the reversal's
        if rows[r][c] == junk:  # an empty cell that may be empty (a reversal's hours)
            junk = "∞"
        rows[r][c] = junk
    elif how == "column":
        c = draw(st.sampled_from([0, 1, 2, 5, 6]))
        rows = [row[:c] + row[c + 1 :] for row in rows]
    elif how == "named twice":
        names = rows[0]
        c, d = draw(st.lists(st.integers(0, len(names) - 1), min_size=2, max_size=2, unique=True))
        names[c] = names[d]
    elif how == "repeat":
        r = draw(st.integers(1, 4))
        rows.append(list(rows[r]))
    text = "\n".join(",".join(row) for row in rows).encode()
    if how == "encoding":
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + b"\xff\xfe" + text[cut:]
    return text, how


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(broken=_broken_files(), create_banks=st.booleans())
def test_fuzz_malformed_files_are_refused_and_change_nothing(
    riverside: timebank.Timebank,
    tmp_path_factory: pytest.TempPathFactory,
    broken: tuple[bytes, str],
    create_banks: bool,
) -> None:
    """With ``create_banks`` too: junk in a row's bank that is a well-formed
    bank id makes a bank, whose refusal of the row must still be listed."""
    text, how = broken
    path = tmp_path_factory.mktemp("f") / "entries.csv"
    path.write_bytes(text)
    before = _state(riverside), riverside.banks()
    with pytest.raises(ImportFailed) as raised:
        riverside.import_entries(
            timebank.read_csv(path), actor=ACTOR, source=str(path), create_banks=create_banks
        )
    assert raised.value.problems, how
    for problem in raised.value.problems:
        assert problem.reason
        assert problem.line >= 1
        assert problem.file == str(path)
    assert (_state(riverside), riverside.banks()) == before


def test_columns_with_no_name_and_nothing_under_them_are_passed_over(
    riverside: timebank.Timebank, tmp_path: Path
) -> None:
    """A spreadsheet's trailing commas (and an emptied column between two
    named ones): the file imports as it would without them."""
    plain = riverside.import_entries(timebank.read_csv(_file(tmp_path, GOOD)), actor=ACTOR,
                                     dry_run=True)  # fmt: skip
    path = tmp_path / "with-gaps.csv"
    rows = [line.split(",") for line in [HEADER, *GOOD]]
    path.write_text("".join(",".join([*r[:3], "", *r[3:], "", ""]) + "\r\n" for r in rows))
    assert timebank.read_csv(path).columns == HEADER.split(",")
    result = riverside.import_entries(timebank.read_csv(path), actor=ACTOR)
    assert (result.rows, result.recorded) == (plain.rows, plain.recorded) == (len(GOOD), 6)
    # the plain file finds every entry recorded with its own fields (a field
    # read otherwise would be an EntryConflict)
    again = riverside.import_entries(timebank.read_csv(_file(tmp_path, GOOD)), actor=ACTOR)
    assert (again.recorded, again.skipped) == (0, 6)


def test_a_value_under_a_column_with_no_name_is_refused_at_its_row(
    riverside: timebank.Timebank, tmp_path: Path
) -> None:
    path = tmp_path / "entries.csv"
    rows = [[*line.split(","), ""] for line in [HEADER, *GOOD]]
    rows[2][-1] = "see notes"  # the file's line 3
    rows[5][6] = "nowhere"  # line 6: a bank that does not exist, reported with it
    path.write_text("".join(",".join(r) + "\n" for r in rows))
    before = _state(riverside)
    with pytest.raises(ImportFailed) as raised:
        riverside.import_entries(timebank.read_csv(path), actor=ACTOR, source="entries.csv")
    found = [(p.line, p.column, p.value, p.reason) for p in raised.value.problems]
    assert found[0] == (3, "column 12", "see notes", "a value under a column with no name")
    assert [(line, column) for line, column, *_ in found] == [(3, "column 12"), (6, "bank")]
    assert str(raised.value.problems[0]) == (
        "entries.csv:3: column 12: see notes: a value under a column with no name"
    )
    assert _state(riverside) == before


UTF16 = 'UTF-16 text (a spreadsheet\'s "Unicode Text"), not UTF-8; save the file as "CSV UTF-8"'


@pytest.mark.parametrize(
    ("encoding", "line", "reason"),
    [
        # a spreadsheet's "Unicode Text": UTF-16 with its byte-order mark
        ("utf-16", 1, UTF16),
        ("utf-16-be", 1, UTF16),
        # a spreadsheet's plain "CSV" on Windows: the pound sign of line 3 is one byte
        ("cp1252", 3, 'not UTF-8 text (invalid start byte); save the file as UTF-8 (a'
                      ' spreadsheet\'s "CSV UTF-8")'),
    ],
)  # fmt: skip
def test_a_file_in_another_encoding_is_refused_saying_how_to_save_it(
    riverside: timebank.Timebank, tmp_path: Path, encoding: str, line: int, reason: str
) -> None:
    lines = list(GOOD)
    lines[1] = lines[1].replace(",,,,", ",£5 lunch,,,")  # the category column
    path = tmp_path / "entries.csv"
    text = "\n".join([HEADER, *lines]) + "\n"
    path.write_bytes(("\ufeff" + text if encoding == "utf-16-be" else text).encode(encoding))
    before = _state(riverside)
    with pytest.raises(ImportFailed) as raised:
        riverside.import_entries(timebank.read_csv(path), actor=ACTOR, source="entries.csv")
    (problem,) = raised.value.problems
    assert (problem.line, problem.column) == (line, "-")
    assert problem.reason == reason
    assert _state(riverside) == before


def test_every_problem_is_listed_up_to_the_limit(
    riverside: timebank.Timebank, tmp_path: Path
) -> None:
    lines = [f"b{n},2026-02-01,exchange,ann,zed,1,riverside,,,," for n in range(30)]
    path = _file(tmp_path, lines)
    with pytest.raises(ImportFailed) as raised:
        riverside.import_entries(timebank.read_csv(path), actor=ACTOR)
    assert [p.line for p in raised.value.problems] == list(range(2, 32))
    assert raised.value.limit_reached is None  # all of them: the file was checked whole
    assert "may hold more" not in str(raised.value)
    with pytest.raises(ImportFailed) as raised:
        riverside.import_entries(timebank.read_csv(path), actor=ACTOR, max_errors=5)
    assert len(raised.value.problems) == 5
    # and it says that it stopped there: the file may hold more
    assert raised.value.limit_reached == 5
    assert str(raised.value).endswith("the limit of 5 problems was reached: the file may hold more")


def test_the_garbage_collector_runs_again_after_any_import(
    riverside: timebank.Timebank, tmp_path: Path
) -> None:
    # an import pauses it; the process must not be left without it
    assert gc.isenabled()
    riverside.import_entries(timebank.read_csv(_file(tmp_path, GOOD)), actor=ACTOR)
    assert gc.isenabled()
    bad = _file(tmp_path, ["b1,2026-02-01,exchange,ann,zed,1,riverside,,,,"])
    with pytest.raises(ImportFailed):
        riverside.import_entries(timebank.read_csv(bad), actor=ACTOR)
    assert gc.isenabled()


def test_same_id_with_other_fields_is_an_error(
    riverside: timebank.Timebank, tmp_path: Path
) -> None:
    riverside.import_entries(timebank.read_csv(_file(tmp_path, GOOD[:1])), actor=ACTOR)
    changed = [GOOD[0].replace("1:30", "2:00")]
    with pytest.raises(ImportFailed) as raised:
        riverside.import_entries(timebank.read_csv(_file(tmp_path, changed)), actor=ACTOR)
    (problem,) = raised.value.problems
    assert (problem.line, problem.column, problem.value) == (2, "entry_id", "e1")
    assert "different minutes" in problem.reason


def test_a_second_import_reads_the_stored_entries_ahead_and_names_each_changed_row(
    riverside: timebank.Timebank, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored entries a file's rows name (the rows already present, the
    entries reversals undo, here also ``x``, recorded before the file) are
    read a few at a time in the rows' order, not one by one: each row is
    still compared with its own entry across the reads."""
    riverside.record_exchange("riverside", "bob", "cat", "1", actor=ACTOR,
                              occurred_on="2026-02-01", entry_id="x")  # fmt: skip
    riverside.import_entries(timebank.read_csv(_file(tmp_path, GOOD)), actor=ACTOR)
    monkeypatch.setattr(timebank.importing, "READ_AHEAD", 2)
    reads: list[list[str]] = []
    index = riverside._app.index
    find_entries = index.find_entries

    def counted(ids: list[str]) -> object:
        reads.append(list(ids))
        return find_entries(ids)

    def one_by_one(entry_id: str) -> object:
        raise AssertionError(f"{entry_id!r} read alone")

    monkeypatch.setattr(index, "find_entries", counted)
    monkeypatch.setattr(index, "find_entry", one_by_one)
    again = riverside.import_entries(timebank.read_csv(_file(tmp_path, GOOD)), actor=ACTOR)
    assert (again.rows, again.recorded, again.skipped) == (8, 0, 6)
    assert all(len(ids) <= 2 for ids in reads)
    assert {"e1", "e2", "e3", "e4", "g", "e5"} <= {i for ids in reads for i in ids}
    assert len(reads) < 6  # fewer reads than entries
    changed = [*GOOD, "r,2026-02-07,reversal,,,,riverside,,,x,"]
    changed[2] = changed[2].replace(",0.5,", ",1,")  # e3, in the second read
    changed[7] = changed[7].replace("-2:00", "-3:00")  # e5, in the last
    with pytest.raises(ImportFailed) as raised:
        riverside.import_entries(timebank.read_csv(_file(tmp_path, changed)), actor=ACTOR)
    assert [(p.line, p.column, p.value) for p in raised.value.problems] == [
        (4, "entry_id", "e3"),
        (9, "entry_id", "e5"),
    ]
    assert all("different minutes" in p.reason for p in raised.value.problems)
    del changed[2], changed[6]
    result = riverside.import_entries(timebank.read_csv(_file(tmp_path, changed)), actor=ACTOR)
    assert (result.recorded, result.skipped) == (1, 4)
    twice = [*changed, "r2,2026-02-08,reversal,,,,riverside,,,x,"]
    with pytest.raises(ImportFailed) as raised:  # x, read as reversed by r
        riverside.import_entries(timebank.read_csv(_file(tmp_path, twice)), actor=ACTOR)
    assert [(p.line, p.column, p.value) for p in raised.value.problems] == [(9, "reverses", "x")]
    assert "already reversed" in raised.value.problems[0].reason
    monkeypatch.undo()
    assert riverside.entry("x").reversed_by == "r"


def test_rows_in_any_order_and_a_dry_run(riverside: timebank.Timebank, tmp_path: Path) -> None:
    path = _file(tmp_path, list(reversed(GOOD)))
    before = _state(riverside)
    dry = riverside.import_entries(timebank.read_csv(path), actor=ACTOR, dry_run=True)
    assert (dry.recorded, dry.dry_run) == (6, True)
    assert _state(riverside) == before
    result = riverside.import_entries(timebank.read_csv(path), actor=ACTOR)
    assert result.recorded == 6
    assert riverside.entry("e1").reversed_by == "e4"


def _strict_bank(tb: timebank.Timebank) -> None:
    """Bank ``strict``: ann and bob, no balance below -1:00, breaches refused."""
    limits = timebank.BalanceLimits(lowest_minutes=-60, highest_minutes=None)
    policy = timebank.Policy(individual=limits, limit_mode=timebank.LimitMode.REFUSE)
    tb.create_bank("strict", name="Strict", actor=ACTOR, policy=policy, opened_on="2026-01-01")
    for m in ("ann", "bob"):
        tb.join("strict", m, kind="individual", actor=ACTOR, joined_on="2026-01-01")


def test_a_dry_run_says_exactly_what_the_import_then_does(
    tb: timebank.Timebank, tmp_path: Path
) -> None:
    _strict_bank(tb)
    # an entry already present; then a limit breach and a reversal, both flagged
    lines = ["s0,2026-01-05,exchange,bob,ann,0:30,strict,,,,",
             "s1,2026-02-01,exchange,ann,bob,3,strict,,,,",
             "s2,2026-02-02,reversal,,,,strict,,,s0,"]  # fmt: skip
    tb.import_entries(timebank.read_csv(_file(tmp_path, lines[:1])), actor=ACTOR)
    path = _file(tmp_path, lines)
    before = _state(tb)
    dry = tb.import_entries(timebank.read_csv(path), actor=ACTOR, dry_run=True)
    assert _state(tb) == before
    done = tb.import_entries(timebank.read_csv(path), actor=ACTOR)
    fields = ("rows", "recorded", "skipped", "flagged", "banks_created")
    assert [getattr(dry, f) for f in fields] == [getattr(done, f) for f in fields]
    assert (done.recorded, done.skipped, done.flagged) == (2, 1, ("s1", "s2"))
    assert (dry.dry_run, done.dry_run) == (True, False)
    assert tb.entry("s0").reversed_by == "s2"


def test_historic_limit_breaches_are_flagged_unless_strict(
    tb: timebank.Timebank, tmp_path: Path
) -> None:
    _strict_bank(tb)
    path = _file(tmp_path, ["s1,2026-02-01,exchange,ann,bob,3,strict,,,,"])
    before = _state(tb)
    with pytest.raises(ImportFailed) as raised:
        tb.import_entries(timebank.read_csv(path), actor=ACTOR, strict=True)
    assert raised.value.problems[0].column == "hours"
    assert _state(tb) == before
    result = tb.import_entries(timebank.read_csv(path), actor=ACTOR)
    assert result.flagged == ("s1",)
    assert tb.entry("s1").flags == ("limit:bob:-60",)
    assert tb.balance("strict", "bob") == -180


def test_profile_fields_of_a_members_file_are_checked(
    tb: timebank.Timebank, tmp_path: Path
) -> None:
    # control characters (a terminal escape, a NUL) and over-long text are
    # problems on their column; nothing is imported; the line shows them escaped
    escape = "Ada\x1b[2J"
    path = tmp_path / "members.csv"
    path.write_text(
        "member_id,kind,bank,joined_on,display_name,area,left_on\n"
        f"m1,individual,rb,2026-01-01,{escape},,\n"
        f"m2,individual,rb,2026-01-01,,{'w' * 255},\n"
        "m3,individual,rb,2026-01-01,Bo\x00b,,\n"
        "m4,individual,rb,2026-01-01,Zoë O'Neil,Tilbury & Chadwell,\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportFailed) as raised:
        tb.import_members(timebank.read_csv(path), actor=ACTOR, create_banks=True)
    problems = raised.value.problems
    assert [(p.line, p.column) for p in problems] == [
        (2, "display_name"),
        (3, "area"),
        (4, "display_name"),
    ]
    assert problems[0].value == escape  # kept whole
    assert "Ada\\x1b[2J" in str(problems[0])
    assert "\x1b" not in str(problems[0])
    assert "255 characters; at most 254" in problems[1].reason
    assert len(str(problems[1])) < 200  # the long value cut short
    assert tb.banks() == []


def test_a_file_name_a_terminal_would_act_on_is_shown_escaped(
    tb: timebank.Timebank, bank: str
) -> None:
    """A problem's line and a summary are one line each, whatever the
    file's name holds (a line break, a terminal's escape sequence); the
    objects keep the name whole."""
    name = "old\nsystem\x1b[2J.csv"
    shown = "old\\nsystem\\x1b[2J.csv"
    with pytest.raises(ImportFailed) as raised:
        tb.import_members([{"member_id": "m9", "kind": "individual", "bank": bank,
                            "joined_on": "2026-13-01"}], actor=ACTOR, source=name)  # fmt: skip
    (problem,) = raised.value.problems
    assert problem.file == name
    done = tb.import_members([{"member_id": "m9", "kind": "individual", "bank": bank,
                               "joined_on": "2026-01-02"}], actor=ACTOR, source=name)  # fmt: skip
    assert done.file == name
    checked = tb.check_balances([{"bank": bank, "account": "m9", "on": "2026-02-01",
                                  "hours": "1"}], source=name)  # fmt: skip
    (mismatch,) = checked.mismatches
    for line in (str(problem), done.summary(), checked.summary(), str(mismatch)):
        assert line.startswith(shown), line
        assert line.isprintable(), line


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        # 0 was no limit at all: the bad row was dropped unsaid, 0 recorded
        ("max_errors", 0, "max_errors must be a whole number from 1: 0"),
        ("max_errors", -1, "max_errors must be a whole number from 1: -1"),
        ("max_errors", "5", "max_errors must be a whole number from 1: '5'"),
        ("max_errors", True, "max_errors must be a whole number from 1: True"),
        ("date_format", 0, "date_format must be a strptime format: 0"),
        ("date_format", "", "date_format must be a strptime format: ''"),
        ("source", None, "source must be text naming the file: None"),
    ],
)
def test_an_import_limit_or_name_that_is_no_such_thing_is_refused(
    riverside: timebank.Timebank, tmp_path: Path, option: str, value: object, said: str
) -> None:
    """The API's scalar options are checked before any row (the CLI's
    ``--max-errors`` already had to be 1 or more)."""
    bad = [*GOOD[:1], "e9,2026-02-01,exchange,ann,zed,1,riverside,,,,"]
    before = _state(riverside)
    with pytest.raises(InvalidInput) as raised:
        riverside.import_entries(
            timebank.read_csv(_file(tmp_path, bad)), actor=ACTOR, **{option: value}
        )
    assert str(raised.value) == said
    members = [{"member_id": "dan", "kind": "individual", "bank": "riverside",
                "joined_on": "2026-01-02"}]  # fmt: skip
    with pytest.raises(InvalidInput):
        riverside.import_members(members, actor=ACTOR, **{option: value})
    assert _state(riverside) == before


def test_an_unknown_timezone_for_timeoverflow_is_named(tmp_path: Path) -> None:
    from timebank.importing import read_timeoverflow

    path = tmp_path / "transfers.csv"
    path.write_text("ann,Member,bob,Member,3600,2026-06-01,,\n", encoding="utf-8")
    for zone in ("Mars/Base", "", "../etc"):
        with pytest.raises(InvalidInput, match="unknown timezone"):
            read_timeoverflow(path, "rb", timezone=zone)


def test_a_bank_no_store_holds_is_refused_naming_how_to_create_it(
    riverside: timebank.Timebank,
) -> None:
    """The hint names the CLI's option and the API's, since an app's script
    reads the same problems as the command's user."""
    before = _state(riverside)
    members = [{"member_id": "dan", "kind": "individual", "bank": "riverside/hub",
                "joined_on": "2026-01-02"}]  # fmt: skip
    with pytest.raises(ImportFailed) as caught:
        riverside.import_members(members, actor=ACTOR)
    assert [str(p) for p in caught.value.problems] == [
        "members:2: bank: riverside/hub: no bank 'riverside/hub' (give --create-banks,"
        " or create_banks=True from Python, to create it)"
    ]
    assert _state(riverside) == before
    with pytest.raises(ImportFailed, match=r"give --date-format \(date_format= from Python\)"):
        riverside.import_members([{**members[0], "joined_on": "02/01/2026"}], actor=ACTOR,
                                 create_banks=True)  # fmt: skip
    assert _state(riverside) == before


def test_create_banks_opens_every_bank_up_a_path(tb: timebank.Timebank) -> None:
    """A member of ``t/hub/street`` in a store without ``t`` opens ``t``, then
    ``t/hub``, then ``t/hub/street``, each inside the one before and on the
    earliest day a row needs it; an entry between cousins of the new tree
    goes through their clearing accounts."""
    rows = [{"member_id": m, "kind": "individual", "bank": b, "joined_on": d}
            for m, b, d in (("s1", "t/hub/street", "2026-02-03"), ("o1", "t/other", "2026-02-01"),
                            ("s2", "t/hub/street", "2026-02-02"))]  # fmt: skip
    tb.import_members(rows, actor=ACTOR, create_banks=True)
    opened = {b.bank: (b.parent, b.opened_on) for b in tb.banks()}
    assert opened == {
        "t": (None, date(2026, 2, 1)),
        "t/hub": ("t", date(2026, 2, 2)),
        "t/hub/street": ("t/hub", date(2026, 2, 2)),
        "t/other": ("t", date(2026, 2, 1)),
    }
    entries = [{"entry_id": "x", "occurred_on": "2026-02-04", "kind": "exchange",
                "provider": "s1", "receiver": "o1", "hours": "2", "bank": "t/hub/street",
                "receiver_bank": "t/other"}]  # fmt: skip
    tb.import_entries(entries, actor=ACTOR)
    assert tb.balance("t/hub/street", "@clearing:t/other") == -120
    assert tb.balance("t/other", "@clearing:t/hub/street") == 120
    tb.check_invariants()


def test_a_mini_bank_an_import_opens_opens_no_earlier_than_its_parent(
    tb: timebank.Timebank,
) -> None:
    """A member of ``t/hub`` from before ``t`` opened: the hub would open on
    ``t``'s day, so the member cannot join before it, and nothing is
    written (a mini bank never opens before its parent)."""
    tb.create_bank("t", name="T", actor=ACTOR, opened_on="2026-03-01")
    before = _state(tb)
    rows = [{"member_id": "h1", "kind": "individual", "bank": "t/hub", "joined_on": "2026-02-01"}]
    with pytest.raises(ImportFailed) as raised:
        tb.import_members(rows, actor=ACTOR, create_banks=True)
    assert [str(p) for p in raised.value.problems] == [
        "members:2: joined_on: 2026-02-01: member 'h1' cannot join on 2026-02-01:"
        " bank 't/hub' opened on 2026-03-01"
    ]
    assert ([b.bank for b in tb.banks()], _state(tb)) == (["t"], before)
    rows[0]["joined_on"] = "2026-03-02"
    tb.import_members(rows, actor=ACTOR, create_banks=True)
    assert tb.bank("t/hub").opened_on == date(2026, 3, 2)  # the earliest day a row needs it
    # nor after today: the bank, which the row would open, is named
    tomorrow = [{"member_id": "n1", "kind": "individual", "bank": "n", "joined_on": "2026-06-16"}]
    with pytest.raises(ImportFailed) as raised:
        tb.import_members(tomorrow, actor=ACTOR, create_banks=True)
    assert [str(p) for p in raised.value.problems] == [
        "members:2: bank: n: bank 'n' cannot open on 2026-06-16"
    ]
    assert [b.bank for b in tb.banks()] == ["t", "t/hub"]


def test_a_reversal_row_names_either_bank_of_an_inter_bank_entry(tb: timebank.Timebank) -> None:
    """The row of a reversal may name the receiver's bank of the entry it
    undoes; the reversal is recorded on both, as the API's is. A bank the
    entry is not in is refused."""
    tb.create_bank("t", name="T", actor=ACTOR, opened_on="2026-03-01")
    tb.create_bank("t/hub", name="H", actor=ACTOR, opened_on="2026-03-01")
    tb.create_bank("t/other", name="O", actor=ACTOR, opened_on="2026-03-01")
    tb.join("t", "a", kind="individual", actor=ACTOR, joined_on="2026-03-01")
    tb.join("t/hub", "b", kind="individual", actor=ACTOR, joined_on="2026-03-01")
    exchange = {"entry_id": "x0", "occurred_on": "2026-03-02", "kind": "exchange",
                "provider": "a", "receiver": "b", "hours": "1", "bank": "t",
                "receiver_bank": "t/hub"}  # fmt: skip
    undo = {"entry_id": "r0", "occurred_on": "2026-03-03", "kind": "reversal", "reverses": "x0"}
    before = _state(tb)
    with pytest.raises(ImportFailed) as raised:
        tb.import_entries([exchange, {**undo, "bank": "t/other"}], actor=ACTOR)
    assert [str(p) for p in raised.value.problems] == [
        "entries:3: bank: t/other: entry 'x0' is in bank 't'"
    ]
    assert _state(tb) == before
    tb.import_entries([exchange, {**undo, "bank": "t/hub"}], actor=ACTOR)
    assert (tb.entry("r0").bank, tb.entry("x0").reversed_by) == ("t", "r0")
    assert {(b.bank, b.account): b.balance_minutes for b in tb.balances()
            if b.account in ("a", "b")} == {("t", "a"): 0, ("t/hub", "b"): 0}  # fmt: skip
    tb.check_invariants()


def test_an_inter_bank_row_the_receivers_bank_refuses_is_one_problem_among_others(
    tb: timebank.Timebank,
) -> None:
    """Both banks' rules are checked before either side is recorded, so a
    row the receiver's bank refuses (its receiver is no member there) is
    reported as such, and the rows after it are still checked: every
    problem of the file is listed, not only the first."""
    tb.create_bank("t", name="T", actor=ACTOR, opened_on="2026-03-01")
    tb.create_bank("t/hub", name="H", actor=ACTOR, opened_on="2026-03-01")
    tb.join("t", "a", kind="individual", actor=ACTOR, joined_on="2026-03-01")
    tb.join("t", "c", kind="individual", actor=ACTOR, joined_on="2026-03-01")
    rows = [{"entry_id": "x0", "occurred_on": "2026-03-02", "kind": "exchange", "provider": "a",
             "receiver": "c", "hours": "1", "bank": "t", "receiver_bank": "t/hub"},
            {"entry_id": "x1", "occurred_on": "2026-03-02", "kind": "exchange", "provider": "a",
             "receiver": "zed", "hours": "1", "bank": "t"}]  # fmt: skip
    before = _state(tb)
    with pytest.raises(ImportFailed) as raised:
        tb.import_entries(rows, actor=ACTOR)
    assert [(p.line, p.column, p.reason) for p in raised.value.problems] == [
        (2, "receiver", "'c' is not a member of bank 't/hub' (a member of 't')"),
        (
            3,
            "receiver",
            "'zed' is not a member of bank 't' (a member of no bank: the members"
            " file brings them in first)",
        ),
    ]
    assert _state(tb) == before


def test_a_reversal_of_a_refused_row_on_its_own_day_says_the_row_was_refused(
    riverside: timebank.Timebank, tmp_path: Path
) -> None:
    """A reversal dated the day of its entry is not before it: when the
    entry's own row is refused, the reversal's problem is that, not its
    date."""
    lines = ["e1,2026-02-01,exchange,ann,zed,1,riverside,,,,",
             "e4,2026-02-01,reversal,,,,riverside,,,e1,"]  # fmt: skip
    with pytest.raises(ImportFailed) as raised:
        riverside.import_entries(timebank.read_csv(_file(tmp_path, lines)), actor=ACTOR)
    found = {p.line: p.reason for p in raised.value.problems}
    assert found[3] == "entry 'e1' is not recorded: its own row was refused"
    lines[1] = "e4,2026-01-31,reversal,,,,riverside,,,e1,"
    with pytest.raises(ImportFailed) as raised:
        riverside.import_entries(timebank.read_csv(_file(tmp_path, lines)), actor=ACTOR)
    found = {p.line: p.reason for p in raised.value.problems}
    assert found[3] == "reversal dated 2026-01-31 is before entry 'e1' (2026-02-01)"


@pytest.mark.parametrize("option", ["create_banks", "dry_run", "strict"])
def test_an_import_option_given_as_text_is_refused_and_nothing_is_written(
    riverside: timebank.Timebank, tmp_path: Path, option: str
) -> None:
    """``dry_run="false"`` was a dry run, and ``strict="no"`` strict: an
    import's yes-or-no options must be True or False."""
    before = _state(riverside)
    for value in ("false", "no", 1):
        with pytest.raises(InvalidInput, match=f"{option} must be True or False"):
            riverside.import_entries(
                timebank.read_csv(_file(tmp_path, GOOD)), actor=ACTOR, **{option: value}
            )
        if option != "strict":
            members = [{"member_id": "dan", "kind": "individual", "bank": "riverside",
                        "joined_on": "2026-01-02"}]  # fmt: skip
            with pytest.raises(InvalidInput, match=f"{option} must be True or False"):
                riverside.import_members(members, actor=ACTOR, **{option: value})
    assert _state(riverside) == before


@pytest.mark.parametrize(("day", "date_format"), [("0215-02-01", None), ("01/02/0215", "%d/%m/%Y")])
def test_a_year_typed_short_opens_no_bank_in_it(
    tb: timebank.Timebank, day: str, date_format: str | None
) -> None:
    """With ``--create-banks`` a bank opens on its earliest joining: a year
    typed with a digit missing would have opened it in the year 215 and let
    every later date in. It is named on its row, in either date form."""
    rows = [
        {"member_id": "m1", "kind": "individual", "bank": "thurrock", "joined_on": day},
        {"member_id": "m2", "kind": "individual", "bank": "thurrock",
         "joined_on": "2015-02-03" if date_format is None else "03/02/2015"},
    ]  # fmt: skip
    with pytest.raises(ImportFailed) as raised:
        tb.import_members(rows, actor=ACTOR, create_banks=True, date_format=date_format)
    [problem] = raised.value.problems
    assert (problem.line, problem.column, problem.value) == (2, "joined_on", day)
    assert problem.reason.startswith("before 1900-01-01, the earliest date timebank takes")
    assert tb.banks() == []


@pytest.mark.parametrize(
    ("day", "date_format", "reason"),
    [
        ("2015-02-29", None, "no such day: February 2015 has days 01 to 28"),
        ("2015-13-01", None, "no such day: there is no month 13"),
        ("29/02/2015", "%d/%m/%Y", "no such day in the calendar, though in the form '%d/%m/%Y'"
         " (a day past its month's end?)"),
        ("2015/02/03", None, "not a date in the form YYYY-MM-DD (ISO); give --date-format"),
        ("13/13/2015", "%d/%m/%Y", "not a date in the form '%d/%m/%Y'"),
    ],
)  # fmt: skip
def test_a_day_the_calendar_lacks_is_told_from_a_date_of_another_form(
    tb: timebank.Timebank, tmp_path: Path, day: str, date_format: str | None, reason: str
) -> None:
    """A spreadsheet's typo of a day (29 February of a common year) is named
    as such, on its row and column; a date of another form names the form
    the import expected. Nothing is imported either way."""
    good = "2015-02-03" if date_format is None else "03/02/2015"
    path = tmp_path / "members.csv"
    path.write_text(
        f"member_id,kind,bank,joined_on\nm1,individual,thurrock,{good}\n"
        f"m2,individual,thurrock,{day}\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportFailed) as raised:
        tb.import_members(
            timebank.read_csv(path), actor=ACTOR, create_banks=True, date_format=date_format
        )
    [problem] = raised.value.problems
    assert (problem.line, problem.column, problem.value) == (3, "joined_on", day)
    assert problem.reason.startswith(reason)
    assert tb.banks() == []


def test_members_with_periods_profiles_and_new_banks(tb: timebank.Timebank, tmp_path: Path) -> None:
    path = tmp_path / "members.csv"
    path.write_bytes(
        "\ufeffmember_id,kind,bank,joined_on,display_name,area,left_on\n"
        "m1,individual,thurrock,01/02/2015,Ada,Tilbury,\n"
        "m2,organisation,thurrock/tilbury-hub,03/02/2015,,,\n"
        "z0,individual,thurrock,15/01/2015,,,\n"
        "m3,individual,thurrock,01/03/2015,,,30/06/2015\n"
        "m3,individual,thurrock,01/09/2015,,,\n".encode()
    )
    rows = timebank.read_csv(path)
    with pytest.raises(ImportFailed) as raised:  # the banks do not exist yet
        tb.import_members(rows, actor=ACTOR, date_format="%d/%m/%Y")
    assert {p.column for p in raised.value.problems} == {"bank"}
    result = tb.import_members(rows, actor=ACTOR, date_format="%d/%m/%Y", create_banks=True)
    assert (result.recorded, result.banks_created) == (4, ("thurrock", "thurrock/tilbury-hub"))
    # opened on the earliest day the file gives them (z0 joined first, is applied last)
    assert [(b.bank, b.opened_on) for b in tb.banks()] == [
        ("thurrock", date(2015, 1, 15)), ("thurrock/tilbury-hub", date(2015, 2, 3)),
    ]  # fmt: skip
    assert tb.profile("m1") == timebank.Profile(display_name="Ada", area="Tilbury")
    (m3,) = [m for m in tb.members("thurrock") if m.member == "m3"]
    assert m3.status == "active"
    tb.erase_member("m1", actor=ACTOR)
    again = tb.import_members(rows, actor=ACTOR, date_format="%d/%m/%Y")
    assert (again.recorded, again.skipped) == (0, 4)
    assert tb.profile("m1") is None  # skipped, profile included: the erasure stands
    # another script's digits are not a date, whatever strptime reads them as
    for day in ("1\u0663/02/2015", "13/02/\u0662\u0660\u0661\u0665", "\uff11\uff13/02/2015"):
        with pytest.raises(ImportFailed) as raised:
            tb.import_members(
                [{"member_id": "m9", "kind": "individual", "bank": "thurrock", "joined_on": day}],
                actor=ACTOR, date_format="%d/%m/%Y",
            )  # fmt: skip
        ((problem),) = raised.value.problems
        assert (problem.column, problem.value) == ("joined_on", day)
    assert "m9" not in {m.member for m in tb.members("thurrock")}
    assert tb.profile("m1") is None
    # an entry while m3 was away is refused; one from before they left is not
    lines = [
        "a,2015-07-15,exchange,m1,m3,1,thurrock,,,,",
        "b,2015-04-01,exchange,m1,m3,1,thurrock,,,,",
    ]
    with pytest.raises(ImportFailed) as raised:
        tb.import_entries(timebank.read_csv(_file(tmp_path, lines)), actor=ACTOR)
    assert [(p.line, p.column) for p in raised.value.problems] == [(2, "receiver")]


def test_a_members_file_writes_the_profile_fields_it_gives_and_its_rows_agree(
    tb: timebank.Timebank, bank: str
) -> None:
    """A person has one profile, whatever their banks: the fields a file
    gives go over the stored ones and the others stay (an email set through
    the API); rows of one member that give two names or two areas are
    refused at the later row, and nothing changes."""
    header = ("member_id", "kind", "bank", "joined_on", "display_name", "area")
    mini = f"{bank}/mini"

    def rows(*values: tuple[str, ...]) -> list[dict[str, str]]:
        return [dict(zip(header, v, strict=True)) for v in values]

    ann = timebank.Profile(display_name="Ann", email="ann@example.org", phone="01632 960000",
                           area="Riverside")  # fmt: skip
    tb.set_profile("ann", ann, actor=ACTOR)
    before = snapshot_state(tb), [b.bank for b in tb.banks()]
    bad = rows(("dee", "individual", mini, "2026-02-01", "Dee", "Tilbury"),
               ("eve", "individual", mini, "2026-02-01", "Eve", ""),
               ("dee", "individual", bank, "2026-02-01", "", "Grays"),
               ("eve", "individual", bank, "2026-02-01", "Evelyn", ""))  # fmt: skip
    with pytest.raises(ImportFailed) as raised:
        tb.import_members(bad, actor=ACTOR, create_banks=True)
    assert [(p.line, p.column, p.value, p.reason) for p in raised.value.problems] == [
        (4, "area", "Grays", "'dee' has 'Tilbury' on line 2"),
        (5, "display_name", "Evelyn", "'eve' has 'Eve' on line 3"),
    ]
    assert (snapshot_state(tb), [b.bank for b in tb.banks()]) == before
    assert (tb.profile("ann"), tb.profile("dee"), tb.profile("eve")) == (ann, None, None)
    good = rows(("ann", "individual", mini, "2026-02-01", "Ann Jones", ""),
                ("dee", "individual", mini, "2026-02-01", "Dee", ""),
                ("dee", "individual", bank, "2026-02-01", "", "Grays"),
                ("eve", "individual", bank, "2026-02-01", "", ""))  # fmt: skip
    dry = tb.import_members(good, actor=ACTOR, create_banks=True, dry_run=True)
    assert dry.recorded == 4
    assert (tb.profile("ann"), tb.profile("dee")) == (ann, None)
    result = tb.import_members(good, actor=ACTOR, create_banks=True)
    assert (result.recorded, result.banks_created) == (4, (mini,))
    assert tb.profile("ann") == attrs.evolve(ann, display_name="Ann Jones")
    assert tb.profile("dee") == timebank.Profile(display_name="Dee", area="Grays")
    assert tb.profile("eve") is None  # the file gives them nothing
    tb.set_profile("dee", timebank.Profile(display_name="Dee Smith"), actor=ACTOR)
    again = tb.import_members(good, actor=ACTOR)
    assert (again.recorded, again.skipped) == (0, 4)
    assert tb.profile("dee") == timebank.Profile(display_name="Dee Smith")  # skipped: as it is


def test_an_import_asks_the_actors_role_once_a_bank_and_reads_profiles_together(
    tb: timebank.Timebank, bank: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A coordinator of one bank only: each of their rows in another bank is
    refused at its row, and nothing is written. Allowed, the role is asked
    once a bank however many rows (each ask reads the bank's parents, a
    round trip on PostgreSQL), and the stored profiles the file's fields go
    over are read together, never one by one."""
    tb.create_bank("uphill", name="Uphill", actor=ACTOR, opened_on="2026-01-01")
    tb.grant_role(bank, "co", "coordinator", actor=ACTOR)
    tb.set_profile("ann", timebank.Profile(email="ann@example.org"), actor=ACTOR)
    header = ("member_id", "kind", "bank", "joined_on", "display_name")
    rows = [("m1", "individual", bank, "2026-02-01", "Em"),
            ("m2", "individual", "uphill", "2026-02-01", ""),
            ("m3", "individual", "uphill", "2026-02-01", "")]  # fmt: skip
    before = snapshot_state(tb)
    with pytest.raises(ImportFailed) as raised:
        tb.import_members([dict(zip(header, r, strict=True)) for r in rows], actor="co")
    assert [(p.line, p.column, p.value) for p in raised.value.problems] == [
        (3, "bank", "uphill"),
        (4, "bank", "uphill"),
    ]
    assert "'co' may not import members in bank 'uphill'" in raised.value.problems[0].reason
    assert snapshot_state(tb) == before
    asked: list[str] = []
    require = tb._access.require

    def counted(ledger: Bank, user: str, action: Action, what: str = "") -> None:
        asked.append(ledger.bank_id)
        require(ledger, user, action, what)

    def one_by_one(member_id: str) -> object:
        raise AssertionError(f"{member_id!r}'s profile read alone")

    monkeypatch.setattr(tb._access, "require", counted)
    monkeypatch.setattr(tb._app.profiles, "get", one_by_one)
    mine = [("ann", "individual", f"{bank}/mini", "2026-02-01", "Ann")] + [
        (f"n{i}", "individual", bank, "2026-02-01", f"N {i}") for i in range(5)
    ]
    result = tb.import_members([dict(zip(header, r, strict=True)) for r in mine],
                               actor="co", create_banks=True)  # fmt: skip
    assert result.recorded == 6
    assert asked == [bank]  # the mini bank is the import's own
    monkeypatch.undo()
    assert tb.profile("ann") == timebank.Profile(display_name="Ann", email="ann@example.org")
    assert tb.profile("n4") == timebank.Profile(display_name="N 4")
    entries = [f"x{i},2026-03-01,exchange,n{i},n{i + 1},1,{bank},,,," for i in range(4)]
    monkeypatch.setattr(tb._access, "require", counted)
    asked.clear()
    tb.import_entries(timebank.read_csv(_file(tmp_path, entries)), actor="co")
    assert asked == [bank]


MEMBER_HEADER = ("member_id", "kind", "bank", "joined_on", "left_on")
#: (what is wrong, the rows (after the conftest bank's ann, bob, cat, org
#: joined 2026-01-01; today 2026-06-15), the one problem: line, column,
#: value, and what its reason says)
MEMBER_RULES = [
    ("no such kind", [("m1", "person", "riverside", "2026-02-01", "")],
     (2, "kind", "person", "must be individual or organisation")),
    ("left before joining", [("m1", "individual", "riverside", "2026-02-01", "2026-01-15")],
     (2, "left_on", "2026-01-15", "before joined_on (2026-02-01)")),
    ("two open memberships", [("m1", "individual", "riverside", "2026-02-01", ""),
                              ("m1", "individual", "riverside", "2026-03-01", "")],
     (3, "joined_on", "2026-03-01", "the membership from 2026-02-01 has no left_on")),
    ("kind differs between rows", [("m1", "individual", "riverside", "2026-02-01", "2026-02-10"),
                                   ("m1", "organisation", "riverside", "2026-03-01", "")],
     (3, "kind", "organisation", "'m1' is individual on line 2")),
    ("memberships overlap", [("m1", "individual", "riverside", "2026-02-01", "2026-03-10"),
                             ("m1", "individual", "riverside", "2026-03-01", "")],
     (3, "joined_on", "2026-03-01", "they left on 2026-03-10")),
    ("joined before the bank opened", [("m1", "individual", "riverside", "2025-02-01", "")],
     (2, "joined_on", "2025-02-01", "bank 'riverside' opened on 2026-01-01")),
    ("joins in the future", [("m1", "individual", "riverside", "2026-07-01", "")],
     (2, "joined_on", "2026-07-01", "is in the future")),
    ("leaves in the future", [("m1", "individual", "riverside", "2026-02-01", "2026-07-01")],
     (2, "left_on", "2026-07-01", "is in the future")),
    ("already in with other periods", [("ann", "individual", "riverside", "2026-02-01", "")],
     (2, "member_id", "ann", "with periods 2026-01-01..; this file gives individual 2026-02-01..")),
    ("already in as another kind", [("ann", "organisation", "riverside", "2026-01-01", "")],
     (2, "member_id", "ann", "already in bank 'riverside' as individual")),
]  # fmt: skip


#: A members file beside the conftest bank; the rows of ``riverside/east``
#: only where the import may create it.
GOOD_MEMBERS = [
    ("m1", "individual", "riverside", "2026-02-01", "Mo", "north", "2026-03-15"),
    ("m2", "organisation", "riverside", "2026-02-01", "", "", ""),
    ("m1", "individual", "riverside/east", "2026-03-01", "Mo", "north", "2026-04-01"),
    ("m3", "individual", "riverside/east", "2026-03-01", "", "", ""),
]
#: Junk that is wrong in its column whatever the rest of the file says.
MEMBER_JUNK = {
    0: ["", "∞", "a b", "@pot"],  # member_id
    1: ["", "robot", "Individual"],  # kind
    2: ["", "∞", "@pot", "River side", "riverside//x"],  # bank
    3: ["", "2026-02-30", "2027-01-01", "1/2/2026"],  # joined_on
    4: ["\x1b[2J", "a" * 300],  # display_name
    6: ["2026-02-30", "2026-01-15", "2027-01-01"],  # left_on: before joined_on, in the future
}


#: Every column of a members file, in the order docs/import.md gives them.
MEMBER_COLUMNS_ALL = ("member_id", "kind", "bank", "joined_on", "display_name", "area", "left_on")


@st.composite
def _broken_members_files(
    draw: st.DrawFn,
) -> tuple[bytes, bool, str, tuple[int, tuple[str, ...]] | None]:
    """The good members file (with a bank to create, or not) with one random
    defect: a cell of junk, a required column dropped or a column named
    twice, bytes that are not UTF-8, or a rejoin giving a member another
    name; and, where one cell is at fault, the line and the columns its
    problem may be named at."""
    create_banks = draw(st.booleans())
    rows = [list(r) for r in GOOD_MEMBERS[: 4 if create_banks else 2]]
    how = draw(st.sampled_from(["cell", "column", "named twice", "encoding", "other name"]))
    header = list(MEMBER_COLUMNS_ALL)
    expected = None
    if how == "cell":
        r = draw(st.integers(0, len(rows) - 1))
        c = draw(st.sampled_from(sorted(MEMBER_JUNK)))
        rows[r][c] = draw(st.sampled_from(MEMBER_JUNK[c]))
        expected = (r + 2, (header[c],))
        if c == 3 and rows[r][6] and rows[r][3] > rows[r][6]:  # a day later than left_on
            expected = (r + 2, ("joined_on", "left_on"))  # "left_on: before joined_on"
    elif how == "column":
        c = draw(st.sampled_from([0, 1, 2, 3]))
        header, rows = header[:c] + header[c + 1 :], [row[:c] + row[c + 1 :] for row in rows]
    elif how == "named twice":
        c, d = draw(st.lists(st.integers(0, len(header) - 1), min_size=2, max_size=2, unique=True))
        header[c] = header[d]
    elif how == "other name":  # a rejoin, after m1 left; one name a person
        rows.append(["m1", "individual", "riverside", "2026-05-01", "Maureen", "", ""])
        expected = (len(rows) + 1, ("display_name",))
    text = "\n".join(",".join(row) for row in [header, *rows]).encode()
    if how == "encoding":
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + b"\xff\xfe" + text[cut:]
    return text, create_banks, how, expected


def test_the_good_members_file_of_the_fuzz_imports(tb: timebank.Timebank, bank: str) -> None:
    """So that every refusal in the fuzz below is its defect's."""
    for create_banks, count in ((False, 2), (True, 4)):
        rows = [dict(zip(MEMBER_COLUMNS_ALL, r, strict=True)) for r in GOOD_MEMBERS[:count]]
        result = tb.import_members(rows, actor=ACTOR, create_banks=create_banks, dry_run=True)
        assert result.recorded == count


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(broken=_broken_members_files(), strict=st.booleans())
def test_fuzz_malformed_members_files_are_refused_and_change_nothing(
    tb: timebank.Timebank,
    bank: str,
    tmp_path_factory: pytest.TempPathFactory,
    broken: tuple[bytes, bool, str, tuple[int, tuple[str, ...]] | None],
    strict: bool,
) -> None:
    """As the entries files' fuzz: each defect is a named problem at a line
    of the file (a bad cell's at its line and column), and nothing is
    written, no bank and no profile."""
    text, create_banks, how, expected = broken
    path = tmp_path_factory.mktemp("f") / "members.csv"
    path.write_bytes(text)
    before = _state(tb), tb.banks(), [(m.member, m.status) for m in tb.members(bank)]
    with pytest.raises(ImportFailed) as raised:
        tb.import_members(timebank.read_csv(path), actor=ACTOR, source=str(path),
                          create_banks=create_banks, strict=strict)  # fmt: skip
    assert raised.value.problems, how
    for problem in raised.value.problems:
        assert problem.reason
        assert problem.line >= 1
        assert str(problem).startswith(f"{path}:{problem.line}: ")
    if expected is not None:
        line, columns = expected
        assert any(p.line == line and p.column in columns for p in raised.value.problems), (
            how, text, raised.value.problems,
        )  # fmt: skip
    assert (_state(tb), tb.banks(), [(m.member, m.status) for m in tb.members(bank)]) == before
    assert tb.profile("m1") is None


@pytest.mark.parametrize(
    ("what", "rows", "problem"), MEMBER_RULES, ids=[m[0] for m in MEMBER_RULES]
)
def test_each_rule_of_a_members_file_names_its_row(
    tb: timebank.Timebank, bank: str, what: str, rows: list[tuple[str, ...]],
    problem: tuple[int, str, str, str],
) -> None:  # fmt: skip
    before = _state(tb), [(m.member, m.status) for m in tb.members(bank)]
    for dry_run in (True, False):
        with pytest.raises(ImportFailed) as raised:
            tb.import_members([dict(zip(MEMBER_HEADER, r, strict=True)) for r in rows],
                              actor=ACTOR, dry_run=dry_run)  # fmt: skip
        ((found),) = raised.value.problems
        line, column, value, reason = problem
        assert (found.line, found.column, found.value) == (line, column, value), what
        assert reason in found.reason, (what, found.reason)
        assert (_state(tb), [(m.member, m.status) for m in tb.members(bank)]) == before


def test_a_members_dry_run_says_what_the_import_then_does(tb: timebank.Timebank, bank: str) -> None:
    """Joins, a membership that ended, a rejoin, one already in (skipped), a
    bank to create: the dry run's counts are the import's, and it writes
    nothing, not even the bank."""
    rows = [dict(zip(MEMBER_HEADER, r, strict=True)) for r in (
        ("m1", "individual", "riverside", "2026-02-01", "2026-03-01"),
        ("m1", "individual", "riverside", "2026-04-01", ""),
        ("m2", "organisation", "riverside/hub", "2026-02-01", ""),
        ("ann", "individual", "riverside", "2026-01-01", ""),
    )]  # fmt: skip
    before = _state(tb), tb.banks()
    dry = tb.import_members(rows, actor=ACTOR, create_banks=True, dry_run=True)
    assert (_state(tb), tb.banks()) == before
    done = tb.import_members(rows, actor=ACTOR, create_banks=True)
    assert attrs.evolve(dry, dry_run=False) == done
    counts = (done.rows, done.recorded, done.skipped, done.banks_created)
    assert counts == (4, 2, 1, ("riverside/hub",))
    assert [(m.member, m.status) for m in tb.members("riverside") if m.member == "m1"] == [
        ("m1", "active")
    ]
    assert [m.member for m in tb.members("riverside/hub")] == ["m2"]


#: A members file beside the conftest bank's ann, bob, cat and org: ids
#: told from others only by case, and ids that are not.
CASE_ROWS = (
    ("ANN", "individual", "riverside", "2026-02-01", ""),  # 2: 'ann' is a member
    ("dee", "individual", "riverside", "2026-02-01", ""),  # 3: no other alike
    ("Dee", "individual", "riverside/hub", "2026-02-01", ""),  # 4: 'dee' on line 3
    ("ANN", "individual", "riverside/hub", "2026-02-01", ""),  # 5: named at line 2 only
    ("bob", "individual", "riverside/hub", "2026-02-01", ""),  # 6: 'bob' is known
    ("DEE", "organisation", "riverside", "2026-03-01", ""),  # 7: 'dee' and 'Dee'
)
CASE_WARNINGS = [
    (2, "ANN", "a new member, told from another only by case: 'ann' is a member of 'riverside'"),
    (4, "Dee", "a new member, told from another only by case: 'dee' is on line 3"),
    (7, "DEE", "a new member, told from another only by case: 'dee' is on line 3;"
               " 'Dee' is on line 4"),
]  # fmt: skip


def test_a_new_member_told_from_another_only_by_case_is_recorded_with_a_warning(
    tb: timebank.Timebank, bank: str
) -> None:
    """Member ids are case-sensitive, so such a member is a member of their
    own; an older system that ignored case meant one person by both ids, so
    each is warned about once, at its first line: against the store as it
    was (not the file's own joins) and the file's earlier lines. The dry
    run warns alike; importing again warns about nothing."""
    rows = [dict(zip(MEMBER_HEADER, r, strict=True)) for r in CASE_ROWS]
    dry = tb.import_members(rows, actor=ACTOR, source="m.csv", create_banks=True, dry_run=True)
    done = tb.import_members(rows, actor=ACTOR, source="m.csv", create_banks=True)
    assert attrs.evolve(dry, dry_run=False) == done
    assert [(w.line, w.value, w.reason) for w in done.warnings] == CASE_WARNINGS
    assert {(w.file, w.column) for w in done.warnings} == {("m.csv", "member_id")}
    assert str(done.warnings[0]) == f"m.csv:2: member_id: ANN: {CASE_WARNINGS[0][2]}"
    assert done.summary() == ("m.csv: 6 rows read; recorded 6; 0 already present; 0 flagged;"
                              " 3 warnings; banks created: riverside/hub")  # fmt: skip
    assert done.to_dict()["warnings"][1] == {"file": "m.csv", "line": 4, "column": "member_id",
                                             "value": "Dee", "reason": CASE_WARNINGS[1][2]}  # fmt: skip
    assert (done.recorded, done.skipped) == (6, 0)
    assert {m.member for m in tb.members("riverside")} == {"ann", "bob", "cat", "org", "ANN",
                                                           "dee", "DEE"}  # fmt: skip
    again = tb.import_members(rows, actor=ACTOR, source="m.csv")
    assert (again.recorded, again.skipped, again.warnings) == (0, 6, ())
    assert "warning" not in again.summary()


def test_strict_refuses_a_new_member_told_from_another_only_by_case(
    tb: timebank.Timebank, bank: str
) -> None:
    """With ``strict`` each warning is a problem of the file instead, and
    nothing is imported."""
    rows = [dict(zip(MEMBER_HEADER, r, strict=True)) for r in CASE_ROWS]
    before = _state(tb), tb.banks()
    with pytest.raises(ImportFailed) as raised:
        tb.import_members(rows, actor=ACTOR, create_banks=True, strict=True)
    assert [(p.line, p.value, p.reason) for p in raised.value.problems] == [
        (line, member, f"{reason} (refused: strict)") for line, member, reason in CASE_WARNINGS
    ]
    assert (_state(tb), tb.banks()) == before
    with pytest.raises(InvalidInput, match="strict"):
        tb.import_members(rows, actor=ACTOR, strict="yes")  # type: ignore[arg-type]
    plain = [r for r in rows if r["member_id"] in ("dee", "bob")]
    assert tb.import_members(plain, actor=ACTOR, create_banks=True, strict=True).recorded == 2


def test_a_members_import_retried_after_a_write_conflict_counts_once(
    tb: timebank.Timebank, bank: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store retries a command whose write conflicted; the members
    import's counts and warnings start again with it (they were counted
    twice), and the retry's warnings are against the store as it was."""
    from eventsourcing.persistence import IntegrityError

    real = tb._app.recorder.insert_events
    attempts: list[int] = []

    def conflicting_once(*args: object, **kwargs: object) -> object:
        attempts.append(1)
        if len(attempts) == 1:
            raise IntegrityError("another writer recorded first")
        return real(*args, **kwargs)

    monkeypatch.setattr(tb._app.recorder, "insert_events", conflicting_once)
    rows = [dict(zip(MEMBER_HEADER, r, strict=True)) for r in CASE_ROWS]
    result = tb.import_members(rows, actor=ACTOR, create_banks=True)
    assert len(attempts) == 2
    assert (result.recorded, result.skipped) == (6, 0)
    assert [(w.line, w.value, w.reason) for w in result.warnings] == CASE_WARNINGS


ENTRY_FIELDS = ("entry_id", "occurred_on", "kind", "provider", "receiver", "hours", "bank",
                "category", "note", "reverses", "group_id", "receiver_bank")  # fmt: skip


def _entry_rows(lines: Iterable[str]) -> list[dict[str, str]]:
    """Rows of the layout with ``receiver_bank``, from lines without it."""
    return [dict(zip(ENTRY_FIELDS, [*line.split(","), ""], strict=True)) for line in lines]


#: Rules of a row that BAD does not reach (its file has no receiver_bank):
#: (what is wrong, {index in GOOD: the fields that change}, the problem's
#: line, column, value, and what its reason says)
ENTRY_RULES = [
    ("a group id that is also an entry's", {0: {"entry_id": "g"}},
     (6, "group_id", "g", "also an entry id on line 2")),
    ("a reversal naming a provider", {3: {"provider": "ann"}},
     (5, "provider", "ann", "a reversal names only the entry it reverses")),
    ("a donation that reverses", {2: {"reverses": "e1"}},
     (4, "reverses", "e1", "only a reversal reverses")),
    ("an opening balance in two banks", {7: {"receiver_bank": "elsewhere"}},
     (9, "receiver_bank", "elsewhere", "an opening balance is within one bank")),
    ("a group's row that reverses", {5: {"reverses": "e2"}},
     (7, "reverses", "e2", "not allowed in a group exchange")),
    ("a group's row in two banks", {6: {"receiver_bank": "elsewhere"}},
     (8, "receiver_bank", "elsewhere", "not allowed in a group exchange")),
    ("a group's row of another kind", {5: {"kind": "gift"}},
     (7, "kind", "gift", "a group's rows are exchanges")),
    ("a group's row naming no one", {6: {"receiver": ""}},
     (8, "provider", "", "a group's row names a provider or a receiver")),
    ("a reversal of other hours", {3: {"hours": "3"}},
     (5, "hours", "3", "entry 'e1' is of 90 minutes, not 180")),
    ("a gift to the bank's own pot", {2: {"kind": "gift", "receiver": "@pot"}},
     (4, "receiver", "@pot", "a gift to the bank's own pot is a donation")),
    ("a gift to its own bank's pot, named", {2: {"kind": "gift", "receiver": "@pot",
                                                 "receiver_bank": "riverside"}},
     (4, "receiver", "@pot", "a gift to the bank's own pot is a donation")),
    ("a gift to a pot of no bank", {2: {"kind": "gift", "receiver": "@pot",
                                        "receiver_bank": "nowhere"}},
     (4, "receiver_bank", "nowhere", "banks 'riverside' and 'nowhere' are not in the same tree")),
]  # fmt: skip


def test_rows_that_wait_for_others_are_tried_again_in_date_order(
    riverside: timebank.Timebank,
) -> None:
    """Two pot-funded exchanges wait for the donation below them that funds
    them; tried again by date, the earlier takes the pot first, and the
    later, which the pot can no longer pay, is the one refused."""
    lines = ["p2,2026-02-05,pot_exchange,cat,bob,3,riverside,,,,",
             "p1,2026-02-03,pot_exchange,ann,bob,2:30,riverside,,,,",
             "d,2026-02-01,donation,org,,3,riverside,,,,"]  # fmt: skip
    with pytest.raises(ImportFailed) as raised:
        riverside.import_entries(_entry_rows(lines), actor=ACTOR)
    assert [str(p) for p in raised.value.problems] == [
        "entries:2: hours: 3: the pot of bank 'riverside' holds 150 minutes; entry 'p2' needs 180"
    ]


def test_a_member_on_two_rows_of_a_group_gives_both_shares(
    riverside: timebank.Timebank,
) -> None:
    """An older system may list a member once per session of a class: their
    rows on one side of a group add up."""
    lines = [line for line in GOOD if line.startswith("g,")]
    lines[0:1] = ["g,2026-02-05,exchange,ann,,1,riverside,class,,,g"] * 2
    riverside.import_entries(_entry_rows(lines), actor=ACTOR)
    assert dict(riverside.entry("g").legs) == {"ann": 120, "bob": -60, "cat": -60}


@pytest.mark.parametrize(
    ("what", "change", "problem"), ENTRY_RULES, ids=[e[0] for e in ENTRY_RULES]
)
def test_each_rule_of_an_entry_row_names_its_row(
    riverside: timebank.Timebank, what: str, change: dict[int, dict[str, str]],
    problem: tuple[int, str, str, str],
) -> None:  # fmt: skip
    rows = _entry_rows(GOOD)
    for index, fields in change.items():
        rows[index].update(fields)
    before = _state(riverside)
    with pytest.raises(ImportFailed) as raised:
        riverside.import_entries(rows, actor=ACTOR)
    line, column, value, reason = problem
    found = [p for p in raised.value.problems if (p.line, p.column) == (line, column)]
    assert [p.value for p in found] == [value], (what, raised.value.problems)
    assert reason in found[0].reason, (what, found[0].reason)
    assert _state(riverside) == before


def test_an_entry_one_bank_refused_after_the_other_took_it_stops_the_import(
    tb: timebank.Timebank,
) -> None:
    """With --strict, the reversal of an entry between two banks may be
    taken by its own bank and refused by the other (a limit the other side
    would pass): the ledger then holds half an entry, so the import stops
    at that row, says so, and a later row's problem is not reported."""
    tb.create_bank("t", name="T", actor=ACTOR, opened_on="2026-01-01")
    tb.create_bank("t/hub", name="Hub", actor=ACTOR, opened_on="2026-01-01")
    hub = tb.policy("t/hub")
    tb.set_policy("t/hub", attrs.evolve(hub, individual=BalanceLimits(highest_minutes=60)),
                  actor=ACTOR)  # fmt: skip
    tb.join("t", "ann", kind="individual", actor=ACTOR, joined_on="2026-01-01")
    for member in ("bob", "dee"):
        tb.join("t/hub", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    rows = _entry_rows([
        "x0,2026-01-15,exchange,ann,bob,0:30,t,,,,",  # bob -30, in the hub
        "y1,2026-01-16,exchange,bob,dee,1:15,t/hub,,,,",  # bob +45
        "z,2026-01-20,reversal,,,,t,,,x0,",  # t takes it; the hub: bob 75 > 60
        "w,2026-01-21,exchange,dee,zed,1,t/hub,,,,",  # unknown zed: unchecked
    ])  # fmt: skip
    rows[0]["receiver_bank"] = "t/hub"
    before = _state(tb)
    with pytest.raises(ImportFailed) as raised:
        tb.import_entries(rows, actor=ACTOR, strict=True)
    ((problem),) = raised.value.problems
    assert (problem.line, problem.column) == (4, "hours")
    assert "would take 'bob' from 45 to 75 minutes, past its limit of 60" in problem.reason
    assert problem.reason.endswith(
        "the import stopped at this row: the rows after it were not checked"
    )
    assert _state(tb) == before
    # unstrict, the breach is flagged, and the unknown member is the problem
    with pytest.raises(ImportFailed) as raised:
        tb.import_entries(rows, actor=ACTOR)
    assert [(p.line, p.column) for p in raised.value.problems] == [(5, "receiver")]
    assert _state(tb) == before


def test_a_member_named_in_a_bank_they_are_not_in_is_told_where_they_are(
    tb: timebank.Timebank,
) -> None:
    """A mini bank's member given under the parent's id (the usual slip of
    a spreadsheet of a bank and its hubs) is refused with the banks they
    are in; a member of no bank is told to come in by the members file."""
    tb.create_bank("t", name="T", actor=ACTOR, opened_on="2026-01-01")
    tb.create_bank("t/hub", name="Hub", actor=ACTOR, opened_on="2026-01-01")
    tb.create_bank("t/hub2", name="Hub 2", actor=ACTOR, opened_on="2026-01-01")
    tb.join("t", "ann", kind="individual", actor=ACTOR, joined_on="2026-01-01")
    for hub in ("t/hub", "t/hub2"):
        tb.join(hub, "bob", kind="individual", actor=ACTOR, joined_on="2026-01-01")
    rows = _entry_rows([
        "x1,2026-01-15,exchange,ann,bob,1,t,,,,",
        "x2,2026-01-16,exchange,bob,ann,1,t,,,,",
        "x3,2026-01-17,exchange,ann,zed,1,t,,,,",
        "x4,2026-01-18,exchange,bob,ann,1,t,,,,",
        "x5,2026-01-19,exchange,ANN,zed,1,t,,,,",
        "x6,2026-01-20,exchange,ann,BOB,1,t,,,,",
    ])  # fmt: skip
    tb.join("t/hub", "Bob", kind="individual", actor=ACTOR, joined_on="2026-01-01")
    before = _state(tb)
    with pytest.raises(ImportFailed) as raised:
        tb.import_entries(rows, actor=ACTOR)
    assert [(p.line, p.column, p.reason) for p in raised.value.problems] == [
        (2, "receiver", "'bob' is not a member of bank 't' (a member of 't/hub', 't/hub2')"),
        (3, "provider", "'bob' is not a member of bank 't' (a member of 't/hub', 't/hub2')"),
        (4, "receiver", "'zed' is not a member of bank 't' (a member of no bank: the members"
                        " file brings them in first)"),
        (5, "provider", "'bob' is not a member of bank 't' (a member of 't/hub', 't/hub2')"),
        # an older system's ids in another case: the ids it may have meant
        (6, "provider", "'ANN' is not a member of bank 't' (a member of no bank: the members"
                        " file brings them in first; member ids are case-sensitive: 'ann' is a"
                        " member of 't')"),
        (7, "receiver", "'BOB' is not a member of bank 't' (a member of no bank: the members"
                        " file brings them in first; member ids are case-sensitive: 'bob' is a"
                        " member of 't/hub', 't/hub2'; 'Bob' is a member of 't/hub')"),
    ]  # fmt: skip
    assert _state(tb) == before


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_member_refused_in_an_import_that_creates_a_bank_is_told_where_they_are(
    tb: timebank.Timebank, dry_run: bool
) -> None:
    """The banks a member is in are looked up among the banks the import
    creates too: one not in the store yet failed the whole import with
    ``BankNotFound`` for the bank it had just made, and no problem listed."""
    tb.create_bank("t", name="T", actor=ACTOR, opened_on="2026-01-01")
    tb.join("t", "ann", kind="individual", actor=ACTOR, joined_on="2026-01-01")
    rows = _entry_rows([
        "x1,2026-01-15,opening_balance,ann,,1,t/new,,,,",
        "x2,2026-01-16,exchange,ann,zed,1,t,,,,",
    ])  # fmt: skip
    before = _state(tb), tb.banks()
    with pytest.raises(ImportFailed) as raised:
        tb.import_entries(rows, actor=ACTOR, create_banks=True, dry_run=dry_run)
    assert [(p.line, p.column, p.reason) for p in raised.value.problems] == [
        (2, "provider", "'ann' is not a member of bank 't/new' (a member of 't')"),
        (3, "receiver", "'zed' is not a member of bank 't' (a member of no bank: the members"
                        " file brings them in first)"),
    ]  # fmt: skip
    assert (_state(tb), tb.banks()) == before


def test_timeoverflow_transfers(tb: timebank.Timebank, bank: str, tmp_path: Path) -> None:
    from timebank.importing import read_timeoverflow

    tb.donate(bank, "org", "1:00", actor=ACTOR, occurred_on="2026-01-05", entry_id="seed")
    path = tmp_path / "transfers.csv"
    path.write_text(
        "ann,Member,bob,Member,5400,2026-02-01 10:00:00,Fixed a shelf,17\n"
        "cat,member,,Organization,1800,2026-02-02T09:00:00,,\n"
        ",Organization,bob,Member,3600,2026-02-03,Thank you,\n",
        encoding="utf-8",
    )
    result = tb.import_entries(read_timeoverflow(path, bank), actor=ACTOR)
    assert result.recorded == 3
    first = tb.entry("to-1")
    assert (first.kind, first.provider, first.receiver, first.minutes) == (
        timebank.EntryKind.EXCHANGE, "bob", "ann", 90,
    )  # fmt: skip
    assert first.category == "post-17"
    assert tb.entry("to-2").kind is timebank.EntryKind.DONATION
    assert tb.balance(bank, "@pot") == 60 + 30 - 60
    path.write_text(
        "ann,Member,bob,Member,5401,2026-02-01,,\nann,Member,bob,Member,60,2026-02-31,,\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportFailed) as raised:  # read as it is iterated
        list(read_timeoverflow(path, bank))
    assert [(p.line, p.column) for p in raised.value.problems] == [(1, "amount"), (2, "created_at")]
    before = _state(tb)
    with pytest.raises(ImportFailed) as raised:  # an import reports them as its own
        tb.import_entries(read_timeoverflow(path, bank), actor=ACTOR, source="t.csv")
    assert [(p.file, p.line, p.column) for p in raised.value.problems] == [
        ("t.csv", 1, "amount"), ("t.csv", 2, "created_at"),
    ]  # fmt: skip
    assert _state(tb) == before


@pytest.mark.parametrize(
    "amount", ["\u00b3", "\u0663\u0666\u0660\u0660", "3_600", "+3600", "3.6e3", "-3600", "0", "00"]
)
def test_timeoverflow_amounts_are_ascii_digits_of_seconds(
    tb: timebank.Timebank, bank: str, tmp_path: Path, amount: str
) -> None:
    from timebank.importing import read_timeoverflow

    path = tmp_path / "transfers.csv"
    path.write_text(f"ann,Member,bob,Member,{amount},2026-02-01,,\n", encoding="utf-8")
    before = _state(tb)
    with pytest.raises(ImportFailed) as raised:  # a named problem, not a crash
        tb.import_entries(read_timeoverflow(path, bank), actor=ACTOR)
    assert [(p.line, p.column, p.value) for p in raised.value.problems] == [(1, "amount", amount)]
    assert _state(tb) == before


@pytest.mark.parametrize(
    ("created_at", "column", "reason"),
    [
        # before 1900 (an offset would move it off the calendar: it stays put)
        ("0001-01-01 00:30:00+02:00", "occurred_on", "before 1900-01-01, the earliest date"),
        ("0216-03-01 10:00:00 UTC", "occurred_on", "before 1900-01-01, the earliest date"),
        ("1900-01-01 00:30:00+02:00", "occurred_on", "before 1900-01-01, the earliest date"),
        ("9999-12-31 23:30:00-02:00", "created_at", "after 9999-12-31 in the bank's timezone"),
    ],
)
def test_timeoverflow_times_off_the_calendar_are_named(
    tb: timebank.Timebank, bank: str, tmp_path: Path, created_at: str, column: str, reason: str
) -> None:
    """A time that is before 1900 in the bank's timezone, or that the
    timezone moves past the calendar's last day, is a problem of its row
    (it stopped the import with a raw OverflowError)."""
    from timebank.importing import read_timeoverflow

    path = tmp_path / "transfers.csv"
    path.write_text(f"ann,Member,bob,Member,3600,{created_at},,\n", encoding="utf-8")
    before = _state(tb)
    with pytest.raises(ImportFailed) as raised:
        tb.import_entries(read_timeoverflow(path, bank), actor=ACTOR)
    [problem] = raised.value.problems
    assert (problem.line, problem.column) == (1, column)
    assert problem.reason.startswith(reason), problem.reason
    assert _state(tb) == before


@pytest.mark.parametrize(
    ("created_at", "zone", "day"),
    [
        ("2026-06-01 23:30:00 UTC", "Europe/London", "2026-06-02"),  # 00:30 summer time
        ("2026-06-01T23:30:00Z", "Europe/London", "2026-06-02"),
        ("2026-06-01 23:30:00.25+00:00", "Europe/London", "2026-06-02"),
        ("2026-01-15 23:30:00 UTC", "Europe/London", "2026-01-15"),  # winter: GMT
        ("2026-06-02 00:30:00+02:00", "Europe/London", "2026-06-01"),  # 23:30 summer time
        ("2026-06-01 23:30:00", "Europe/London", "2026-06-01"),  # no offset: the bank's time
        ("2026-06-01", "Europe/London", "2026-06-01"),
        ("2026-06-02 03:00:00 UTC", "America/New_York", "2026-06-01"),
    ],
)
def test_timeoverflow_times_are_days_in_the_banks_timezone(
    tmp_path: Path, created_at: str, zone: str, day: str
) -> None:
    from timebank.importing import read_timeoverflow

    path = tmp_path / "transfers.csv"
    path.write_text(f"ann,Member,bob,Member,3600,{created_at},,\n", encoding="utf-8")
    [(_, row)] = list(read_timeoverflow(path, "rb", timezone=zone))
    assert row["occurred_on"] == day


def test_cli_timeoverflow_import_takes_the_banks_timezone(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from timebank.cli import cli

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with timebank.open(url, clock=fixed_clock) as tb:
        policy = timebank.Policy(timezone="America/New_York")
        tb.create_bank("ny", name="NY", actor=ACTOR, policy=policy, opened_on="2026-01-01")
        for m in ("ann", "bob"):
            tb.join("ny", m, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    path = tmp_path / "transfers.csv"
    path.write_text("ann,Member,bob,Member,3600,2026-06-02 03:00:00 UTC,,\n", encoding="utf-8")
    out = CliRunner().invoke(cli, ["--db", url, "--actor", ACTOR, "import", "entries",
                                   str(path), "--source-format", "timeoverflow", "--bank", "ny"])  # fmt: skip
    assert out.exit_code == 0, out.output
    with timebank.open(url, clock=fixed_clock) as tb:
        assert tb.entry("to-1").occurred_on == date(2026, 6, 1)  # 23:00 in New York


def test_cli_import_lists_problems_and_exits_1(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from timebank.cli import cli

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    members = tmp_path / "members.csv"
    members.write_text(
        "member_id,kind,bank,joined_on\nann,individual,rb,2026-01-01\nbob,individual,rb,2026-01-01\n",
        encoding="utf-8",
    )
    run = CliRunner().invoke
    # no store yet: only --create-banks makes one (the file's bank with it)
    out = run(cli, ["--db", url, "--actor", ACTOR, "import", "members", str(members)])
    assert out.exit_code == 1
    assert out.output.startswith(f"error: store_not_found: no timebank store at {tmp_path}")
    assert list(tmp_path.iterdir()) == [members]
    # --max-errors is a members import's limit too
    bad_members = tmp_path / "bad-members.csv"
    bad_members.write_text(
        "member_id,kind,bank,joined_on\nann,robot,rb,2026-01-01\nbob,robot,rb,2026-01-01\n",
        encoding="utf-8",
    )
    out = run(cli, ["--db", url, "--actor", ACTOR, "import", "members", str(bad_members),
                    "--create-banks", "--max-errors", "1"])  # fmt: skip
    assert out.exit_code == 1
    assert out.output.endswith(
        "error: import_failed: 1 problem (the limit of 1 problem was reached: the file"
        " may hold more); nothing was imported\n"
    )
    bad_members.unlink()
    out = run(cli, ["--db", url, "--actor", ACTOR, "import", "members", str(members),
                    "--create-banks"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "recorded 2" in out.output
    good = _file(tmp_path, ["x1,2026-02-01,exchange,ann,bob,1,rb,,,,"], "good.csv")
    bad = _file(tmp_path, ["x2,2026-02-01,exchange,ann,zed,1,rb,,,,",
                           "x3,2026-02-31,exchange,ann,bob,1,rb,,,,"], "bad.csv")  # fmt: skip
    out = run(cli, ["--db", url, "--actor", ACTOR, "import", "entries", str(bad)])
    assert out.exit_code == 1
    assert f"{bad}:2: receiver: zed: " in out.output
    assert f"{bad}:3: occurred_on: 2026-02-31: " in out.output
    assert out.output.endswith("error: import_failed: 2 problems; nothing was imported\n")
    out = run(cli, ["--db", url, "--actor", ACTOR, "import", "entries", str(bad),
                    "--max-errors", "1"])  # fmt: skip
    assert out.exit_code == 1
    assert out.output.endswith(
        "error: import_failed: 1 problem (the limit of 1 problem was reached: the file"
        " may hold more); nothing was imported\n"
    )
    out = run(cli, ["--db", url, "--actor", ACTOR, "import", "entries", str(good)])
    assert out.exit_code == 0
    assert f"{good}: 1 row read; recorded 1; 0 already present; 0 flagged" in out.output
    out = run(cli, ["--db", url, "--actor", ACTOR, "import", "entries", str(good)])
    assert out.output.endswith("\nnothing changed: every row is already in the store\n")
    # a dry run changes nothing whatever the file holds: its summary says it all
    out = run(cli, ["--db", url, "--actor", ACTOR, "import", "entries", str(good), "--dry-run"])
    assert out.exit_code == 0
    assert "nothing changed" not in out.output
    assert out.output.count("\n") == 1


def test_cli_imports_read_standard_input_as_stdin(tmp_path: Path) -> None:
    """``-`` for FILE reads standard input, as a conversion script's output
    is piped in (docs/import.md): members, entries (the interchange layout
    and TimeOverflow's) and check-balances. A problem is named
    ``<stdin>:LINE``, and nothing is imported then; the copy read from the
    pipe is left nowhere."""
    url = f"sqlite:///{tmp_path / 'piped.db'}"
    spools = tmp_path / "tmp"
    spools.mkdir()
    env = {**os.environ, "TMPDIR": str(spools)}

    def piped(text: str | bytes, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", "from timebank.cli import main; main()",
                   "--db", url, "--actor", ACTOR, "import", *args]  # fmt: skip
        data = text.encode() if isinstance(text, str) else text
        done = subprocess.run(command, input=data, capture_output=True, env=env, timeout=120,
                              check=False)  # fmt: skip
        return subprocess.CompletedProcess(
            done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
        )

    members = "member_id,kind,bank,joined_on\nann,individual,rb,2026-01-01\nbob,individual,rb,2026-01-01\n"
    done = piped(members, "members", "-", "--create-banks")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("<stdin>: 2 rows read; recorded 2;")
    bad = "\n".join([HEADER, "x1,2026-02-01,exchange,ann,bob,1,rb,,,,",
                     "x2,2026-02-31,exchange,ann,bob,1,rb,,,,", "x3,2026-02-01"]) + "\n"  # fmt: skip
    done = piped(bad, "entries", "-")
    assert done.returncode == 1
    assert "<stdin>:3: occurred_on: 2026-02-31: " in done.stderr  # a row's problem
    assert "<stdin>:4: -: 2 fields: the header has 11 columns" in done.stderr  # the file's
    assert done.stderr.endswith("error: import_failed: 2 problems; nothing was imported\n")
    done = piped("entry_id,occurred_on,kind,provider,receiver,hours,bank,catégorie\n".encode(
        "latin-1"), "entries", "-")  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("<stdin>:1: -: b'\\xe9gor': not UTF-8"), done.stderr
    good = "\n".join([HEADER, "x1,2026-02-01,exchange,ann,bob,1,rb,,,,"]) + "\n"
    done = piped(good, "entries", "-")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "<stdin>: 1 row read; recorded 1; 0 already present; 0 flagged\n"
    done = piped(good, "entries", "-")
    assert done.stdout.endswith("\nnothing changed: every row is already in the store\n")
    transfer = "ann,Member,bob,Member,1800,2026-03-01 12:00:00 UTC,,\n"  # bob helped ann
    done = piped(transfer, "entries", "-", "--source-format", "timeoverflow", "--bank", "rb")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("<stdin>: 1 row read; recorded 1;")
    done = piped("bank,account,on,hours\nrb,ann,2026-03-02,0.5\n", "check-balances", "-")
    assert done.returncode == 0, done.stdout + done.stderr
    done = piped("bank,account,on,hours\nrb,ann,2026-03-02,2\n", "check-balances", "-")
    assert done.returncode == 1
    assert list(spools.iterdir()) == []
    with timebank.open(url) as tb:
        assert tb.balance("rb", "ann") == 30  # 1 hour given, half an hour back
        assert sorted(e.entry_id for e in tb.entries("rb")) == ["to-1", "x1"]


def test_a_csv_file_can_be_named_in_problems_as_the_file_it_stands_for(
    riverside: timebank.Timebank, tmp_path: Path
) -> None:
    """``read_csv(path, name=...)``: a downloaded or spooled copy's problems
    name the file a coordinator knows."""
    copy = _file(tmp_path, ["x1,2026-02-31,exchange,ann,bob,1,riverside,,,,"], "tmp1234.csv")
    with pytest.raises(ImportFailed) as caught:
        riverside.import_entries(
            timebank.read_csv(copy, name="entries-2015.csv"), actor=ACTOR,
            source="entries-2015.csv",
        )  # fmt: skip
    assert [(p.file, p.line) for p in caught.value.problems] == [("entries-2015.csv", 2)]
    copy.write_bytes(b"\xff\xfe")  # a header that is not UTF-8: read_csv's own problem
    with pytest.raises(ImportFailed) as caught:
        timebank.read_csv(copy, name="entries-2015.csv")
    assert [p.file for p in caught.value.problems] == ["entries-2015.csv"]


def test_cli_members_import_warns_of_ids_told_only_by_case_and_strict_refuses_them(
    tmp_path: Path,
) -> None:
    """Each warning on its own line on stderr after the summary, twenty and
    how many more; ``--strict`` lists them as problems and imports nothing."""
    from click.testing import CliRunner

    from timebank.cli import cli

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with timebank.open(url) as tb:
        tb.create_bank("rb", name="RB", actor=ACTOR, opened_on="2026-01-01")
        for n in range(22):
            tb.join("rb", f"m{n}", kind="individual", actor=ACTOR, joined_on="2026-01-01")
    members = tmp_path / "members.csv"
    members.write_text("member_id,kind,bank,joined_on\n"
                       + "".join(f"M{n},individual,rb,2026-02-01\n" for n in range(22)),
                       encoding="utf-8")  # fmt: skip
    run = CliRunner().invoke
    out = run(cli, ["--db", url, "--actor", ACTOR, "import", "members", str(members), "--strict"])
    assert out.exit_code == 1
    assert out.stdout == ""
    problems = out.stderr.splitlines()
    assert problems[0] == (f"{members}:2: member_id: M0: a new member, told from another only by"
                           " case: 'm0' is a member of 'rb' (refused: strict)")  # fmt: skip
    assert problems[-1] == "error: import_failed: 22 problems; nothing was imported"
    with timebank.open(url) as tb:
        assert len(tb.members("rb")) == 22
    out = run(cli, ["--db", url, "--actor", ACTOR, "import", "members", str(members)])
    assert out.exit_code == 0, out.output
    assert out.stdout == (f"{members}: 22 rows read; recorded 22; 0 already present; 0 flagged;"
                          " 22 warnings\n")  # fmt: skip
    assert out.stderr.splitlines() == [
        *(
            f"warning: {members}:{n + 2}: member_id: M{n}: a new member, told from another only"
            f" by case: 'm{n}' is a member of 'rb'"
            for n in range(20)
        ),
        "warning: ... and 2 more",
    ]
    with timebank.open(url) as tb:
        assert len(tb.members("rb")) == 44


def test_cli_import_lists_the_flagged_entries_up_to_twenty(tmp_path: Path) -> None:
    """Historic breaches of a limit are listed after the summary, twenty of
    them and how many more; a TimeOverflow file without --bank is a usage
    error that opens no store."""
    from click.testing import CliRunner

    from timebank.cli import cli

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with timebank.open(url) as tb:
        limits = timebank.BalanceLimits(lowest_minutes=-60, highest_minutes=None)
        tb.create_bank("rb", name="RB", actor=ACTOR, opened_on="2026-01-01",
                       policy=timebank.Policy(individual=limits))  # fmt: skip
        for member in ("ann", "bob"):
            tb.join("rb", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    # ann is helped for an hour 23 times: the first leaves her at her limit
    lines = [f"x{n},2026-02-{n:02},exchange,bob,ann,1,rb,,,," for n in range(1, 24)]
    out = CliRunner().invoke(cli, ["--db", url, "--actor", ACTOR, "import", "entries",
                                   str(_file(tmp_path, lines))])  # fmt: skip
    assert out.exit_code == 0, out.output
    flagged = [line for line in out.output.splitlines() if line.startswith("flagged: ")]
    assert flagged == [
        *(
            f"flagged: x{n} breaches a balance limit (see timebank near-limit)"
            for n in range(2, 22)
        ),
        "flagged: ... and 2 more",
    ]
    with timebank.open(url) as tb:
        assert [e.entry_id for e in tb.statement("rb", "ann") if e.flags] == [
            f"x{n}" for n in range(2, 24)
        ]
    missing = tmp_path / "nowhere.db"
    out = CliRunner().invoke(cli, ["--db", f"sqlite:///{missing}", "--actor", ACTOR, "import",
                                   "entries", str(_file(tmp_path, lines)), "--source-format",
                                   "timeoverflow"])  # fmt: skip
    assert out.exit_code == 2
    assert "--source-format timeoverflow needs --bank" in out.output
    assert not missing.exists()


# --- killed part-way ---------------------------------------------------------------
_KILLED_IMPORT = """
import sys, timebank, timebank.importing
from datetime import UTC, datetime
clock = lambda: datetime(2026, 6, 1, 12, tzinfo=UTC)
timebank.importing.PART_ENTRIES = 100  # so most kills land after parts were written
with timebank.open(sys.argv[1], clock=clock) as tb:
    print("importing", flush=True)
    tb.import_entries(timebank.read_csv(sys.argv[2]), actor="coord-1")
    print("done", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_an_import_killed_at_any_moment_leaves_the_store_as_it_was(
    kind: str, tmp_path: Path
) -> None:
    """On SQLite the file's journal undoes the open transaction when the
    store is next opened; on PostgreSQL the server rolls it back when the
    killed process's connection drops."""
    from .conftest import POSTGRES_URL, new_postgres_schema

    if kind == "postgres" and POSTGRES_URL is None:
        pytest.skip("no PostgreSQL server (CI always has one)")

    def new_store(name: str) -> str:
        url = new_postgres_schema() if kind == "postgres" else f"sqlite:///{tmp_path / name}"
        _members_only(url)
        return url

    entries = 3000
    url = new_store("kill.db")
    with timebank.open(url, clock=fixed_clock) as tb:
        before = _state(tb)
    day = date(2026, 1, 1)
    lines = [
        f"k{n},{day + timedelta(days=n % 150)},exchange,{'ab'[n % 2]},{'ba'[n % 2]},1,k,,,,"
        for n in range(entries)
    ]
    path = _file(tmp_path, lines)
    script = tmp_path / "imp.py"
    script.write_text(_KILLED_IMPORT, encoding="utf-8")
    # Kill fresh copies at spread-out moments; each time the store is either as
    # before (and a second run completes it) or complete, never in between.
    outcomes = set()
    for target in _killed_runs(script, path, url, new_store):
        with timebank.open(target, clock=fixed_clock) as tb:
            state = _state(tb)
            if state == before:
                outcomes.add("before")
                tb.import_entries(timebank.read_csv(path), actor=ACTOR)
                state = _state(tb)
            else:
                outcomes.add("complete")
            assert state[2] == entries
            assert tb.balance("k", "a") == 0
    assert "before" in outcomes  # at least one kill landed inside the import


_KILLED_MEMBERS_IMPORT = """
import sys, timebank
from datetime import UTC, datetime
clock = lambda: datetime(2026, 6, 1, 12, tzinfo=UTC)
with timebank.open(sys.argv[1], clock=clock) as tb:
    print("importing", flush=True)
    tb.import_members(timebank.read_csv(sys.argv[2]), actor="coord-1", create_banks=True)
    print("done", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_members_import_killed_at_any_moment_writes_members_and_profiles_together(
    kind: str, tmp_path: Path
) -> None:
    """Members and their profiles commit in one transaction: a kill at any
    moment leaves neither or both, never members without their names (which
    a second run, skipping the members already in, would not give them)."""
    from .conftest import POSTGRES_URL, new_postgres_schema

    if kind == "postgres" and POSTGRES_URL is None:
        pytest.skip("no PostgreSQL server (CI always has one)")
    members = [f"m{n:04d}" for n in range(1500)]
    path = tmp_path / "members.csv"
    path.write_text("member_id,kind,bank,joined_on,display_name,area\n" + "".join(
        f"{m},individual,k,2026-01-01,Name {m},Ward {n % 7}\n" for n, m in enumerate(members)
    ), encoding="utf-8")  # fmt: skip
    script = tmp_path / "members.py"
    script.write_text(_KILLED_MEMBERS_IMPORT, encoding="utf-8")

    def new_store(name: str) -> str:
        return new_postgres_schema() if kind == "postgres" else f"sqlite:///{tmp_path / name}"

    def state(url: str) -> tuple[int, int]:
        with timebank.open(url, clock=fixed_clock) as tb:
            joined = len(tb.members("k")) if tb.banks() else 0
            return joined, sum(tb.profile(m) is not None for m in members)

    outcomes = set()
    for target in _killed_runs(script, path, new_store("whole.db"), new_store):
        found = state(target)
        outcomes.add(found)
        assert found in {(0, 0), (len(members), len(members))}
    assert (0, 0) in outcomes  # at least one kill landed inside the import


def _killed_runs(
    script: Path, path: Path, whole_url: str, new_store: Callable[[str], str]
) -> Iterator[str]:
    """Run ``script`` (which prints "importing" as the import starts and
    "done" when it has committed) on ``path`` once whole, into
    ``whole_url``, to time the import; then into six new stores, each
    killed at a spread-out moment of that time (a tenth to most of it).
    Yields each killed run's store. Only the import is timed: with the
    interpreter's start counted in, the kills could all land after the
    import had committed on a machine that starts Python slowly."""
    proc = subprocess.Popen([sys.executable, str(script), whole_url, str(path)],
                            stdout=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"importing"
    started = time.perf_counter()
    assert proc.stdout.readline().strip() == b"done"
    whole = time.perf_counter() - started
    assert proc.wait() == 0
    for n in range(6):
        target = new_store(f"k{n}.db")
        proc = subprocess.Popen([sys.executable, str(script), target, str(path)],
                                stdout=subprocess.PIPE)  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"importing"
        time.sleep(whole * (0.1 + 0.15 * n))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        yield target


def _members_only(url: str) -> None:
    """The store at ``url``: a bank with two members and no entries."""
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("k", name="K", actor=ACTOR, opened_on="2026-01-01")
        for m in ("a", "b"):
            tb.join("k", m, kind="individual", actor=ACTOR, joined_on="2026-01-01")


# --- one transaction written in parts ----------------------------------------------
def test_an_import_on_postgres_may_wait_between_its_parts_past_the_idle_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import's transaction stays open while it applies the rows between
    two parts, and while it compares rows already present with the store:
    seconds, on a large file. The library ends any transaction idle for 5 s
    on the server, which failed a re-import of 60,000 entries with
    ``storage_error``; here the rows after the first part wait 6 s."""
    from timebank.importing import Importing

    from .conftest import POSTGRES_URL, new_postgres_schema

    if POSTGRES_URL is None:
        pytest.skip("no PostgreSQL server (CI always has one)")
    monkeypatch.setattr(timebank.importing, "PART_ENTRIES", 2)
    real = Importing._import_one
    applied: list[str] = []

    def slow_after_the_first_part(self, session, new, *args, **kwargs):  # type: ignore[no-untyped-def]
        applied.append(new.entry_id)
        if len(applied) == 3:  # the first part (two entries) is in the open transaction
            time.sleep(6)
        return real(self, session, new, *args, **kwargs)

    monkeypatch.setattr(Importing, "_import_one", slow_after_the_first_part)
    lines = [f"w{n},2026-02-0{n + 1},exchange,ann,bob,1,riverside,,,," for n in range(4)]
    with timebank.open(new_postgres_schema(), clock=fixed_clock) as tb:
        tb.create_bank("riverside", name="Riverside", actor=ACTOR, opened_on="2026-01-01")
        for member in ("ann", "bob"):
            tb.join("riverside", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
        result = tb.import_entries(timebank.read_csv(_file(tmp_path, lines)), actor=ACTOR)
        assert (result.recorded, tb.balance("riverside", "ann")) == (4, 4 * 60)
        applied.clear()  # and again, every row compared with the store
        again = tb.import_entries(timebank.read_csv(_file(tmp_path, lines)), actor=ACTOR)
        assert (again.recorded, again.skipped) == (0, 4)


def test_an_import_written_in_parts_commits_whole_or_not_at_all(
    tb: timebank.Timebank,
    bank: str,
    reopen: Callable[[], timebank.Timebank],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Parts of 7 entries (5,000 in use), so a 1,100-entry file is written in
    157 parts into one open transaction; a problem on its next-to-last row
    leaves no trace, and the whole file then goes in, snapshot included (the
    bank crosses version 1,000). Run on every backend."""
    from timebank.domain.bank import bank_uuid

    monkeypatch.setattr(timebank.importing, "PART_ENTRIES", 7)
    entries = 1100
    names = ("ann", "bob", "cat")
    lines = [
        f"p{n},{date(2026, 2, 1) + timedelta(days=n % 100)},exchange,"
        f"{names[n % 3]},{names[(n + 1) % 3]},0:30,riverside,,,,"
        for n in range(entries)
    ]
    bad = list(lines)
    bad[-2] = bad[-2].replace(",exchange,ann,", ",exchange,zed,")  # line 1,100
    before = _state(tb)
    lines_before = {m: len(tb.ledger_statement(bank, m)) for m in names}
    uuid = bank_uuid(bank)
    snapshots_before = len(list(tb._app.snapshots.get(uuid))) if tb._app.snapshots else 0
    with pytest.raises(ImportFailed) as raised:
        tb.import_entries(timebank.read_csv(_file(tmp_path, bad)), actor=ACTOR)
    assert [(p.line, p.column) for p in raised.value.problems] == [(entries, "provider")]
    assert _state(tb) == before
    assert tb._app.snapshots is None or len(list(tb._app.snapshots.get(uuid))) == snapshots_before
    path = _file(tmp_path, lines)
    result = tb.import_entries(timebank.read_csv(path), actor=ACTOR)
    assert result.recorded == entries
    expected = dict.fromkeys(names, 0)
    for n in range(entries):
        expected[names[n % 3]] += 30  # the provider earns
        expected[names[(n + 1) % 3]] -= 30
    assert {m: tb.balance(bank, m) for m in expected} == expected
    assert tb._app.index.count_entries() == before[2] + entries
    # every entry has its postings (on SQLite, sorted into their index at the
    # end of the import, after the failed one's were rolled back with it)
    assert {m: len(tb.ledger_statement(bank, m)) for m in names} == {
        m: lines_before[m] + sum(m in (names[n % 3], names[(n + 1) % 3]) for n in range(entries))
        for m in names
    }
    if tb._app.snapshots is not None:
        assert len(list(tb._app.snapshots.get(uuid))) == snapshots_before + 1
    tb.check_invariants()
    # the ids already in the store are asked for in one pass (500 to a query)
    assert tb._app.index.recorded_entry_ids([f"p{n}" for n in range(entries)] + ["nope"]) == {
        f"p{n}" for n in range(entries)
    }
    # and read back the same way, each with the stored event its index row names
    found = tb._app.index.find_entries(["nope"] + [f"p{n}" for n in range(entries)])
    assert sorted(indexed.entry_id for indexed, _ in found) == sorted(
        f"p{n}" for n in range(entries)
    )
    for indexed, stored in found:
        assert indexed == tb._app.index.find_entry(indexed.entry_id)
        assert stored is not None
        assert (stored.originator_id, stored.originator_version) == (uuid, indexed.version)
        event = tb._app.mapper.to_domain_event(stored)
        assert getattr(event, "entry_id", None) == indexed.entry_id
    again = tb.import_entries(timebank.read_csv(path), actor=ACTOR)
    assert (again.recorded, again.skipped) == (0, entries)
    with reopen() as fresh:  # loaded from the store (and its snapshot), not the cache
        assert {m: fresh.balance(bank, m) for m in expected} == expected


def test_read_csv_streams_and_ragged_rows_come_with_the_row_problems(
    riverside: timebank.Timebank, tmp_path: Path
) -> None:
    lines = list(GOOD)
    lines[1] = "e2,2026-02-02,pot_exchange,cat,bob"  # ragged: line 3
    lines[3] = "e4,2026-02-04,reversal,,,1.x,riverside,,,e1,"  # bad hours: line 5
    path = _file(tmp_path, lines)
    rows = timebank.read_csv(path)
    first, second = list(_rows_or_problems(rows)), list(_rows_or_problems(rows))
    assert first == second  # each iteration reads the file again
    assert [line for line, _ in first[:-1]] == [2, 4, 5, 6, 7, 8, 9]
    assert first[-1] == (3, "-")  # raised once the whole file was read
    before = _state(riverside)
    with pytest.raises(ImportFailed) as raised:
        riverside.import_entries(rows, actor=ACTOR, source="entries.csv")
    assert [(p.file, p.line, p.column) for p in raised.value.problems] == [
        ("entries.csv", 3, "-"), ("entries.csv", 5, "hours"),
    ]  # fmt: skip
    assert _state(riverside) == before


def test_a_column_named_in_other_case_or_spacing_is_named_as_the_layouts(
    riverside: timebank.Timebank, tmp_path: Path
) -> None:
    # as a spreadsheet user may type the header: each is refused, with its name
    header = (
        "Entry_ID,occurred on,KIND,provider,receiver,Hours,bank,category,note,reverses,group-id"
    )
    path = tmp_path / "entries.csv"
    path.write_text("\n".join([header, GOOD[0]]) + "\n", encoding="utf-8")
    before = _state(riverside)
    with pytest.raises(ImportFailed) as raised:
        riverside.import_entries(timebank.read_csv(path), actor=ACTOR)
    unknown = {
        p.column: p.reason for p in raised.value.problems if p.reason != "required column missing"
    }
    assert unknown == {
        given: f"unknown column: the layout calls it {layouts}"
        for given, layouts in [("Entry_ID", "entry_id"), ("occurred on", "occurred_on"),
                               ("KIND", "kind"), ("Hours", "hours"), ("group-id", "group_id")]
    }  # fmt: skip
    assert _state(riverside) == before


@pytest.mark.parametrize(("separator", "named"), [(";", "semicolons"), ("\t", "tabs"),
                                               ("|", "vertical bars")])  # fmt: skip
@pytest.mark.parametrize("kind", ["members", "entries"])
def test_a_file_separated_by_another_character_is_one_problem_that_says_so(
    riverside: timebank.Timebank, tmp_path: Path, kind: str, separator: str, named: str
) -> None:
    """A spreadsheet set to another country's list separator saves its CSV
    with semicolons: each column used to be reported missing, and the header
    one unknown column, with nothing saying why."""
    header = HEADER if kind == "entries" else "member_id,kind,bank,joined_on,display_name"
    row = GOOD[0] if kind == "entries" else "m-9,individual,riverside,2025-01-01,Ann"
    path = tmp_path / f"{kind}.csv"
    path.write_text(f"{header}\n{row}\n".replace(",", separator), encoding="utf-8")
    importing = riverside.import_members if kind == "members" else riverside.import_entries
    before = _state(riverside)
    with pytest.raises(ImportFailed) as raised:
        importing(timebank.read_csv(path), actor=ACTOR, source=path.name)
    assert raised.value.problems == [
        timebank.RowProblem(path.name, 1, "-", header.replace(",", separator),
                   f"the columns are separated by {named}; the layout's are separated by"
                   ' commas (save the file as "CSV UTF-8 (comma delimited)")'),
    ]  # fmt: skip
    assert _state(riverside) == before
    # a comma-separated header whose one name holds a semicolon is an unknown column
    path.write_text(f"{header},a;b\n{row},\n", encoding="utf-8")
    with pytest.raises(ImportFailed) as raised:
        importing(timebank.read_csv(path), actor=ACTOR)
    assert [(p.column, p.reason[:14]) for p in raised.value.problems] == [("a;b", "unknown column")]


def test_a_row_from_python_with_a_key_that_is_not_text_is_named(
    riverside: timebank.Timebank,
) -> None:
    """A plain row may come from any Python code: a key that is not a
    column's name (a number, None) is an unknown column, where sorting the
    columns stopped the import on a raw TypeError."""
    row = dict(zip(HEADER.split(","), GOOD[0].split(","), strict=True))
    before = _state(riverside)
    for key in (5, None):
        with pytest.raises(ImportFailed) as raised:
            riverside.import_entries([{**row, key: "x"}], actor=ACTOR)  # type: ignore[dict-item]
        [problem] = raised.value.problems
        assert (problem.line, problem.column) == (1, str(key))
        assert problem.reason.startswith("unknown column")
    assert _state(riverside) == before


@pytest.mark.parametrize("kind", ["members", "entries"])
def test_a_header_with_no_rows_under_it_is_checked_too(
    riverside: timebank.Timebank, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / f"{kind}.csv"
    path.write_text("member id,kind,bank,joined_on,extra\n", encoding="utf-8")
    importing = riverside.import_members if kind == "members" else riverside.import_entries
    with pytest.raises(ImportFailed) as raised:
        importing(timebank.read_csv(path), actor=ACTOR)
    problems = {(p.line, p.column) for p in raised.value.problems}
    assert (1, "extra") in problems
    assert (1, "member id") in problems
    # a sound header with nothing under it imports nothing, and says so
    good = HEADER if kind == "entries" else "member_id,kind,bank,joined_on"
    path.write_text(good + "\n", encoding="utf-8")
    result = importing(timebank.read_csv(path), actor=ACTOR)
    assert (result.rows, result.recorded) == (0, 0)


def _rows_or_problems(rows: Iterable[tuple[int, Mapping[str, str]]]) -> Iterator[object]:
    try:
        yield from rows
    except ImportFailed as failed:
        yield from ((p.line, p.column) for p in failed.problems)


def test_an_import_retried_after_a_write_conflict_counts_once(
    tb: timebank.Timebank, bank: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store retries a command whose write conflicted (another writer
    got there first); the import's counts start again with it. The conflict
    is injected into the first part's write, after 7 rows were counted."""
    from contextlib import contextmanager

    from eventsourcing.persistence import IntegrityError

    monkeypatch.setattr(timebank.importing, "PART_ENTRIES", 7)
    real = tb._app.index.bulk_insert
    attempts: list[int] = []

    @contextmanager
    def conflicting_once():  # type: ignore[no-untyped-def]
        attempts.append(1)
        with real() as insert:
            if len(attempts) > 1:
                yield insert
                return

            def conflict(*args: object) -> None:
                raise IntegrityError("another writer recorded first")

            yield conflict

    monkeypatch.setattr(tb._app.index, "bulk_insert", conflicting_once)
    lines = [f"c{n},2026-02-{1 + n:02d},exchange,ann,bob,1,riverside,,,," for n in range(20)]
    result = tb.import_entries(timebank.read_csv(_file(tmp_path, lines)), actor=ACTOR)
    assert len(attempts) == 2
    assert (result.recorded, result.skipped) == (20, 0)
    assert tb.balance(bank, "ann") == 20 * 60
