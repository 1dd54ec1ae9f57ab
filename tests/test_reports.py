"""Read models and the period report, on every backend: each figure against
an independent count from the test's own records (tests/ledger_model.py),
exactly-once catch-up, rebuild, and the coordinator lists."""

from __future__ import annotations

import io
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import attrs
import markupsafe
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import timebank
from timebank import EntryKind
from timebank.errors import InvalidAmount, InvalidInput
from timebank.readmodel import UnknownEvent
from timebank.readmodel import report as report_module

from .conftest import (
    ACTOR,
    BACKENDS,
    POSTGRES_URL,
    new_postgres_schema,
    open_store,
    postgres_schema,
    report_chart,
)
from .ledger_model import (
    HUB,
    OPENED,
    ROOT,
    actual,
    entry_rows,
    expected,
    expected_activity,
    expected_by_area,
    expected_entries,
    new_ledger,
)

END = date(2026, 6, 15)


def _check_figures(tb: timebank.Timebank, model, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    periods = [(OPENED, END)] + [
        tuple(
            sorted(
                OPENED + timedelta(days=data.draw(st.integers(0, 200), label="day"))
                for _ in range(2)
            )
        )
        for _ in range(2)
    ]
    for start, end in periods:
        for bank, rollup, banks in (
            (ROOT, False, {ROOT}),
            (ROOT, True, {ROOT, HUB}),
            (HUB, False, {HUB}),
        ):
            report = tb.report(bank, start=start, end=end, rollup=rollup)
            assert report.banks == tuple(sorted(banks))
            entries = tb.entries(bank, start=start, end=end, rollup=rollup)
            assert entry_rows(entries) == expected_entries(model, banks, start, end), (bank, rollup)
            for by in ("offset", "after"):
                assert _paged_entries(tb, bank, start, end, rollup, 2, by=by) == entries, by
            listed = tb.members_with_one_connection(bank, as_of=end, rollup=rollup)
            assert len(listed) == report.members_with_one_connection
            for share in (0.0, math.inf):  # every entry read, then by the date index
                with _reading_entries(share):
                    activity = tb.member_activity(bank, start=start, end=end, rollup=rollup)
                    assert [a.member for a in activity] == sorted(a.member for a in activity)
                    assert {
                        a.member: (a.exchanges, a.given_minutes, a.received_minutes, a.partners,
                                   a.first_exchange_on, a.last_exchange_on)
                        for a in activity
                    } == expected_activity(model, banks, start, end), (bank, rollup, start, end)  # fmt: skip
                    areas = tb.report(bank, start=start, end=end, rollup=rollup, by_area=True)
                    assert attrs.evolve(areas, by_area=None) == report
                    assert areas.by_area is not None
                    # the member figures add up; hours given by the areas at most the report's
                    assert sum(a.members for a in areas.by_area) == (
                        report.individual_members + report.organisations
                    )
                    assert sum(a.new_members for a in areas.by_area) == report.new_members
                    assert sum(a.active_members for a in areas.by_area) == report.active_members
                    assert sum(a.given_minutes for a in areas.by_area) <= report.exchanged_minutes
                    assert [a.area for a in areas.by_area] == sorted(
                        (a.area for a in areas.by_area), key=lambda area: (area is None, area or "")
                    )
                    assert {
                        a.area: (a.members, a.new_members, a.active_members, a.given_minutes,
                                 a.received_minutes, a.exchanges)
                        for a in areas.by_area
                    } == expected_by_area(model, banks, start, end), (bank, rollup, start, end)  # fmt: skip
            assert sum(k.members for k in report.by_kind) == (
                report.individual_members + report.organisations
            )
            assert sum(k.inactive_members for k in report.by_kind) == report.inactive_members
            assert actual(report) == expected(model, banks, start, end), (bank, rollup, start, end)


@contextmanager
def _reading_entries(share: float) -> Iterator[None]:
    """The period's entries read by the plan ``share`` chooses (0: every
    entry in turn; infinity: by the date index): both must give the same."""
    saved = report_module.SCAN_SHARE
    report_module.SCAN_SHARE = share
    try:
        yield
    finally:
        report_module.SCAN_SHARE = saved


def _paged_entries(  # type: ignore[no-untyped-def]
    tb: timebank.Timebank, bank: str, start, end, rollup: bool, size: int, *, by: str
) -> list[timebank.BankEntry]:
    """A bank's list read ``size`` rows at a time, each page after the first
    ``offset`` rows or ``after`` the last row read."""
    rows: list[timebank.BankEntry] = []
    while True:
        page = tb.entries(bank, start=start, end=end, rollup=rollup, limit=size,
                          **({"offset": len(rows)} if by == "offset"
                             else {"after": rows[-1].entry_id if rows else None}))  # fmt: skip
        assert len(page) <= size
        rows += page
        if len(page) < size:
            return rows


def _check_listed_as_recorded(tb: timebank.Timebank) -> None:
    """Every row of the tree's list says what the entry's own record says
    (docs/api.md, "Entries"): a reversal's row repeats the parties and banks
    of the entry it undoes, which its record leaves to that entry."""
    for row in tb.entries(ROOT, rollup=True):
        record = tb.entry(row.entry_id)
        same = ("entry_id", "kind", "occurred_on", "bank", "category", "reverses",
                "reversed_by", "actor", "on_behalf_of", "recorded_at", "flags")  # fmt: skip
        assert [getattr(row, f) for f in same] == [getattr(record, f) for f in same], row
        parties = ("provider", "receiver", "receiver_bank")
        if row.kind is EntryKind.REVERSAL:
            assert record.reverses is not None
            assert (record.provider, record.receiver) == (None, None)
            assert (record.provider_bank, record.receiver_bank) == (None, None)
            undone = tb.entry(record.reverses)
            assert undone.reversed_by == row.entry_id
            assert [getattr(row, f) for f in parties] == [getattr(undone, f) for f in parties]
            assert row.minutes == undone.minutes == record.minutes
            assert record.legs == tuple((a, -m) for a, m in undone.legs)
        else:
            assert [getattr(row, f) for f in parties] == [getattr(record, f) for f in parties]


def _check_statements(tb: timebank.Timebank) -> None:
    """Every account's statement from the read model equals the one its
    bank's postings replay from the log, line for line."""
    accounts = [(b.bank, b.account) for b in tb.balances()]
    assert accounts
    for bank, account in accounts:
        lines = tb.statement(bank, account)
        assert lines == tb.ledger_statement(bank, account), (bank, account)
        assert sum(line.minutes for line in lines) == tb.balance(bank, account)
        # read a page at a time, the same lines: balances counted from the
        # first line, reversals naming accounts as the lines they undo do
        # (a page of 1 puts every undone entry on an earlier page)
        assert _paged(tb.statement, bank, account, 1) == lines, (bank, account)
        assert _paged(tb.statement, bank, account, 3) == lines, (bank, account)
        assert _paged(tb.ledger_statement, bank, account, 2) == lines, (bank, account)


def _paged(read, bank: str, account: str, size: int) -> list:  # type: ignore[no-untyped-def]
    """A statement read ``size`` lines at a time, as the docs say to."""
    lines: list = []  # type: ignore[type-arg]
    while True:
        page = read(bank, account, limit=size, offset=len(lines))
        assert len(page) <= size
        lines += page
        if len(page) < size:
            return lines


@settings(max_examples=60)
@given(data=st.data())
def test_every_figure_equals_an_independent_count_memory(data: st.DataObject) -> None:
    with timebank.Timebank(timebank.storage.memory.MemoryBackend(), clock=_clock) as tb:
        model = new_ledger(tb, data, data.draw(st.integers(5, 40), label="steps"))
        _check_figures(tb, model, data)
        _check_listed_as_recorded(tb)
        # The read model's balances and statements are the ledger's.
        assert _balances(tb) == {(b.bank, b.account): b.balance_minutes for b in tb.balances()}
        _check_statements(tb)


def _storage(kind: str, path: Path) -> Callable[[], timebank.Timebank]:
    """A store of ``kind`` (``sqlite`` or ``postgres``) in ``path``; the test
    is skipped where no PostgreSQL server runs (CI always has one)."""
    if kind == "postgres" and POSTGRES_URL is None:
        pytest.skip("no PostgreSQL server (CI always has one)")
    return open_store(kind, path)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@settings(max_examples=5)
@given(data=st.data())
def test_every_figure_equals_an_independent_count_on_storage(
    kind: str, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with _storage(kind, tmp_path_factory.mktemp("s"))() as tb:
        model = new_ledger(tb, data, data.draw(st.integers(5, 30), label="steps"))
        _check_figures(tb, model, data)
        _check_listed_as_recorded(tb)
        assert _balances(tb) == {(b.bank, b.account): b.balance_minutes for b in tb.balances()}
        _check_statements(tb)


@settings(max_examples=30)
@given(data=st.data())
def test_catching_up_in_any_batches_gives_the_tables_a_rebuild_gives(data: st.DataObject) -> None:
    with timebank.Timebank(timebank.storage.memory.MemoryBackend(), clock=_clock) as tb:
        _batches_then_rebuild(tb, data, data.draw(st.integers(5, 40), label="steps"))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@settings(max_examples=5)
@given(data=st.data())
def test_catching_up_in_any_batches_gives_the_tables_a_rebuild_gives_on_storage(
    kind: str, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Each database writes the batches' sums its own way (PostgreSQL through
    one statement of column arrays), so the property is checked on each."""
    with _storage(kind, tmp_path_factory.mktemp("s"))() as tb:
        _batches_then_rebuild(tb, data, data.draw(st.integers(5, 25), label="steps"))


def _batches_then_rebuild(tb: timebank.Timebank, data: st.DataObject, steps: int) -> None:
    """Record ``steps`` steps, catching up in batches of any size at any
    moment; a rebuild from the log then gives the same tables."""
    from .ledger_model import _step

    model = new_ledger(tb, data, 0)
    for n in range(steps):
        _step(tb, data, model, f"y{n}")
        if data.draw(st.booleans(), label="catch up now"):
            tb.read_model.catch_up(batch_size=data.draw(st.integers(1, 7), label="batch"))
    tb.read_model.catch_up(batch_size=data.draw(st.integers(1, 50), label="batch"))
    incremental = tb.read_model.tables()
    assert tb.read_model.rebuild() == tb._app.recorder.max_notification_id()
    assert tb.read_model.tables() == incremental


def test_the_two_sides_of_an_inter_bank_reversal_in_separate_catch_ups(
    tb: timebank.Timebank,
) -> None:
    """A reversal between two banks is an event on each bank's log. When a
    catch-up ends between them, the next one finds the reversal already
    known and reads it back from the tables (which the random batches of
    the property above seldom reach): the tables are a rebuild's."""
    tb.create_bank("t", name="T", actor=ACTOR, opened_on="2026-01-01")
    tb.create_bank("t/hub", name="Hub", actor=ACTOR, opened_on="2026-01-01")
    tb.join("t", "ann", kind="individual", actor=ACTOR, joined_on="2026-01-01")
    for member in ("bob", "cat"):
        tb.join("t/hub", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    tb.record_exchange("t", "ann", "bob", "2", actor=ACTOR, occurred_on="2026-02-01",
                       entry_id="x", receiver_bank="t/hub")  # fmt: skip
    tb.record_exchange("t/hub", "cat", "ann", "1", actor=ACTOR, occurred_on="2026-02-02",
                       entry_id="y", receiver_bank="t")  # fmt: skip
    tb.donate("t", "ann", "1", actor=ACTOR, occurred_on="2026-02-03", entry_id="d",
              receiver_bank="t/hub")  # fmt: skip
    tb.read_model.catch_up()
    for n, entry_id in enumerate(("x", "y", "d")):
        tb.reverse(entry_id, actor=ACTOR, occurred_on=f"2026-03-0{n + 1}")
    assert tb.read_model.behind() == 6  # each reversal: an event on each bank
    assert tb.read_model.catch_up(batch_size=1) == 6
    one_by_one = tb.read_model.tables()
    tb.read_model.rebuild()
    assert tb.read_model.tables() == one_by_one
    report = tb.report("t", start="2026-01-01", end="2026-06-15", rollup=True)
    assert (report.exchanges, report.transactions, report.donated_to_pot_minutes) == (0, 0, 0)


def test_a_large_catch_up_on_postgres_leaves_the_planner_statistics() -> None:
    """After a catch-up of a batch or more, every read-model table that holds
    rows has PostgreSQL's statistics (``ANALYZE``), rather than waiting for
    autovacuum; a smaller one leaves them to autovacuum."""
    import psycopg

    if POSTGRES_URL is None:
        pytest.skip("no PostgreSQL server (CI always has one)")
    url = new_postgres_schema()
    schema = url.rsplit("schema=", 1)[1]

    def analysed() -> set[str]:
        with psycopg.connect(POSTGRES_URL) as connection:
            rows = connection.execute(
                "SELECT DISTINCT tablename FROM pg_stats WHERE schemaname = %s", (schema,)
            ).fetchall()
        return {str(r[0]) for r in rows}

    with timebank.open(url, clock=_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        for member in ("ann", "bob"):
            tb.join("b", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
        tb.record_exchange("b", "ann", "bob", "1:00", actor=ACTOR, occurred_on="2026-02-01")
        assert tb.read_model.catch_up(batch_size=100) < 100
        assert analysed() == set()
        tb.record_exchange("b", "bob", "ann", "1:00", actor=ACTOR, occurred_on="2026-02-02")
        assert tb.read_model.rebuild(batch_size=2) >= 2
        holding = {name for name, rows in tb.read_model.tables().items() if rows}
        assert {"rm_entries", "rm_accounts", "rm_daily"} <= holding
        assert analysed() == holding


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_upserted_rows_add_up_and_a_rollback_leaves_none(kind: str, tmp_path: Path) -> None:
    """The read model's sums go in by ``upsert_rows``: a row whose key is
    there already adds to it, and a transaction that fails leaves nothing."""
    conflict = (
        "ON CONFLICT (bank, day) DO UPDATE SET minutes = rm_pot_daily.minutes + excluded.minutes"
    )
    with _storage(kind, tmp_path)() as tb:
        tb.read_model.catch_up()
        db = tb.read_model.db

        def fails_before_the_commit() -> None:
            with db.exclusive():
                db.upsert_rows("rm_pot_daily", 3, conflict, [("b", "2026-01-01", 60)])
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            fails_before_the_commit()
        assert db.execute("SELECT * FROM rm_pot_daily") == []
        with db.exclusive():  # twice in one transaction, then in another
            for minutes in (60, 30):
                rows = [("b", "2026-01-01", minutes), ("b", "2026-01-02", 1)]
                db.upsert_rows("rm_pot_daily", 3, conflict, rows)
        with db.exclusive():
            db.upsert_rows("rm_pot_daily", 3, conflict, [("b", "2026-01-01", 5)])
        assert sorted(db.execute("SELECT bank, day, minutes FROM rm_pot_daily")) == [
            ("b", "2026-01-01", 95),
            ("b", "2026-01-02", 2),
        ]


def _clock():  # type: ignore[no-untyped-def]
    from .conftest import fixed_clock

    return fixed_clock()


def _balances(tb: timebank.Timebank) -> dict[tuple[str, str], int]:
    tb.read_model.catch_up()
    return {(row[0], row[1]): row[3] for row in tb.read_model.tables()["rm_accounts"]}


# --- worked cases, on every backend ---------------------------------------------
@pytest.fixture
def tree(tb: timebank.Timebank, bank: str) -> str:
    """riverside (ann, bob, cat, org) and its mini bank riverside/hub (hal, ann)."""
    tb.create_bank("riverside/hub", name="Hub", actor=ACTOR, opened_on="2026-01-01")
    tb.join("riverside/hub", "hal", kind="individual", actor=ACTOR, joined_on="2026-02-01")
    tb.join("riverside/hub", "ann", kind="individual", actor=ACTOR, joined_on="2026-01-01")
    return bank


def test_what_counts_and_what_does_not(tb: timebank.Timebank, tree: str) -> None:
    ex = {"actor": ACTOR, "occurred_on": "2026-03-02"}
    tb.record_opening_balance(tree, "ann", "10:00", actor=ACTOR, occurred_on="2026-03-01")
    tb.record_exchange(tree, "ann", "bob", "2:00", category="diy", entry_id="e1", **ex)
    tb.record_exchange(tree, "bob", "cat", "1:00", entry_id="e2", **ex)
    tb.reverse("e2", actor=ACTOR, reversal_id="e2-undo", occurred_on="2026-03-03")
    tb.donate(tree, "ann", "3:00", entry_id="d1", **ex)
    tb.record_pot_exchange(tree, "org", "cat", "1:30", category="diy", entry_id="p1", **ex)
    tb.gift(tree, "ann", "cat", "0:30", entry_id="g1", **ex)
    tb.record_group_exchange(tree, {"ann": "1:00", "bob": "1:00"}, {"cat": "1:00", "org": "1:00"},
                             category="class", entry_id="grp", **ex)  # fmt: skip
    tb.record_exchange(
        tree, "cat", "hal", "1:00", receiver_bank="riverside/hub", entry_id="ib", **ex
    )
    own = tb.report(tree, start="2026-03-01", end="2026-03-31")
    # exchanges: e1, p1, grp (its providers' 2 hours once), ib; not e2 (reversed), not
    # the reversal, opening balance, donation or gift.
    assert (own.exchanges, own.exchanged_minutes) == (4, 120 + 90 + 120 + 60)
    assert own.transactions == 6  # + the donation and the gift
    assert (own.donated_to_pot_minutes, own.pot_funded_minutes) == (180, 90)
    assert own.pot_balance_minutes == 90
    # e1 ann-bob, p1 org-cat, grp ann-cat ann-org bob-cat bob-org, ib cat-hal
    assert own.connections == own.new_connections == 7
    assert own.active_members == 4  # ann, bob, cat, org (hal is the hub's)
    rollup = tb.report(tree, start="2026-03-01", end="2026-03-31", rollup=True)
    assert rollup.exchanges == 4  # the inter-bank exchange once
    assert rollup.individual_members == 4  # ann (two banks) counts once
    assert rollup.active_members == 5
    hub = tb.report("riverside/hub", start="2026-03-01", end="2026-03-31")
    assert (hub.exchanges, hub.active_members, hub.connections) == (1, 1, 1)
    assert [(c.category, c.exchanges) for c in own.by_category] == [
        ("diy", 2), ("class", 1), (None, 1),  # most hours first
    ]  # fmt: skip
    later = tb.report(tree, start="2026-04-01", end="2026-04-30")
    assert (later.exchanges, later.connections, later.new_connections) == (0, 0, 0)
    assert later.pot_balance_minutes == 90


def test_a_long_period_reads_every_entry_and_a_short_one_the_date_index(
    tb: timebank.Timebank,
) -> None:
    """On SQLite, a period holding at least ``SCAN_SHARE`` (5 %) of the
    entries is read from every entry in turn (faster, measured, than
    through the date index), a shorter one by the index; PostgreSQL's
    planner chooses for itself."""
    tb.create_bank("older", name="Older", actor=ACTOR, opened_on="2024-01-01")
    for member in ("ann", "bob"):
        tb.join("older", member, kind="individual", actor=ACTOR, joined_on="2024-01-01")
    months = [date(2024 + m // 12, m % 12 + 1, 1) for m in range(30)]  # 2024-01 .. 2026-06
    for n, day in enumerate(months):
        tb.record_exchange("older", "ann", "bob", "1:00", actor=ACTOR, occurred_on=day,
                           entry_id=f"x{n}")  # fmt: skip
    tb.read_model.catch_up()
    db = tb.read_model.db

    def reads(first: str, last: str) -> str:
        return report_module._entries(db, first, last)

    scan, index = ("rm_entries e NOT INDEXED", "rm_entries e")
    if db.dialect != "sqlite":
        scan = index
    assert reads("2025-03-01", "2025-03-31") == index  # 1 of 30 entries: 3.3 %
    assert reads("2025-03-01", "2025-04-30") == scan  # 2 of 30: 6.7 %
    assert reads("2024-01-01", "2026-06-30") == scan
    assert reads("2023-01-01", "2023-12-31") == index  # none


def test_figures_by_area(tb: timebank.Timebank, tree: str) -> None:
    for member, area in (("ann", "north"), ("bob", "north"), ("cat", "south"), ("hal", "south")):
        tb.set_profile(member, timebank.Profile(area=area), actor=ACTOR)
    ex = {"actor": ACTOR, "occurred_on": "2026-03-02"}
    tb.record_opening_balance(tree, "bob", "5:00", **ex)  # neither is an exchange
    tb.donate(tree, "bob", "2:00", **ex)
    tb.record_exchange(tree, "ann", "bob", "2:00", **ex)
    tb.record_pot_exchange(tree, "org", "cat", "1:30", **ex)
    tb.record_exchange("riverside/hub", "hal", "cat", "1:00", receiver_bank=tree, **ex)

    def by_area(**kwargs: object) -> dict[str | None, tuple[int, ...]]:
        report = tb.report(tree, start="2026-03-01", end="2026-03-31", by_area=True, **kwargs)  # type: ignore[arg-type]
        assert report.by_area is not None
        return {a.area: (a.members, a.active_members, a.given_minutes, a.received_minutes,
                         a.exchanges) for a in report.by_area}  # fmt: skip

    assert tb.report(tree, start="2026-03-01", end="2026-03-31").by_area is None
    assert by_area() == {
        "north": (2, 2, 120, 120, 1),  # ann helped bob: one exchange, within the ward
        "south": (1, 1, 0, 90 + 60, 2),  # cat: help the pot paid for, and hal's from the hub
        None: (1, 1, 90, 0, 1),  # org has no profile
    }  # the 60 minutes hal gave are the hub's: riverside's areas give 210 of its 270
    assert by_area(rollup=True) == {
        "north": (2, 2, 120, 120, 1),  # ann once, though a member of both banks
        "south": (2, 2, 60, 150, 2),  # hal's exchange with cat counts once for the ward
        None: (1, 1, 90, 0, 1),
    }
    tb.erase_member("cat", actor=ACTOR)
    assert "south" not in by_area()  # hal is the hub's
    # an erased member has no area: org and cat's pot-funded exchange is now
    # one exchange of the same "area", counted once
    assert by_area()[None] == (2, 2, 90, 150, 2)


def test_the_html_report_holds_the_reports_figures(tb: timebank.Timebank, tree: str) -> None:
    """``report_html`` on every backend: the page's figures are the report's,
    in the words given (here the English ones, as a translation would be)."""
    ex = {"actor": ACTOR, "occurred_on": "2026-03-02"}
    tb.record_exchange(tree, "ann", "bob", "2:00", category="gardening", **ex)
    tb.record_exchange("riverside/hub", "hal", "cat", "1:30", receiver_bank=tree, **ex)
    report = tb.report(tree, rollup=True)
    figures = report.to_dict()
    for words in (None, {**timebank.REPORT_WORDS, "lang": "cy", "headline": "Prif ffigurau"}):
        page = tb.report_html(tree, rollup=True, words=words)
        shown = dict(re.findall(r'data-figure="(\w+)" data-value="([^"]*)"', page))
        assert len(shown) == 14
        assert shown == {name: str(figures[name]) for name in shown}
        assert shown["hours_exchanged"] == "3.5"
        assert (words is None) == ("<h2>Headline figures</h2>" in page)
    assert '<html lang="cy">' in page
    assert "<h2>Prif ffigurau</h2>" in page


class _Tables(HTMLParser):
    """Each ``<table id=...>`` of a page: its header cells and its rows' cells, as text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, tuple[list[str], list[list[str]]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attributes: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attributes)["id"] or ""
            self.tables[self._table] = ([], [])
        elif tag == "tr" and self._table is not None:
            self.tables[self._table][1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            header, rows = self.tables[self._table]
            (header if tag == "th" else rows[-1]).append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            header, rows = self.tables[self._table or ""]
            rows[:] = [row for row in rows if row]  # the header's own row holds no td
            self._table = None


def test_the_html_reports_tables_are_the_reports_rows_column_by_column(
    tb: timebank.Timebank, tree: str
) -> None:
    """The tables below the charts are what a reader who cannot see the charts
    reads: each row is the report's, each column the figure its heading
    names. The ledger makes neighbouring columns differ, so that two cells
    swapped would show."""
    for member, area in (("ann", "north"), ("bob", "north"), ("cat", "south")):
        tb.set_profile(member, timebank.Profile(area=area), actor=ACTOR)
    tb.join(tree, "dan", kind="individual", actor=ACTOR, joined_on="2026-03-01")
    ex = {"actor": ACTOR}
    tb.record_exchange(
        tree, "ann", "bob", "2:00", category="gardening", occurred_on="2026-02-03", **ex
    )
    tb.record_exchange(tree, "bob", "cat", "1:30", occurred_on="2026-03-04", **ex)
    tb.record_exchange(
        tree, "bob", "ann", "0:45", category="gardening", occurred_on="2026-03-05", **ex
    )
    tb.record_exchange("riverside/hub", "hal", "org", "1:00", receiver_bank=tree,
                       category="lifts", occurred_on="2026-03-06", **ex)  # fmt: skip
    period = {"start": "2026-02-01", "end": "2026-04-30", "rollup": True, "by_area": True}
    report = tb.report(tree, **period)  # type: ignore[arg-type]
    page = tb.report_html(tree, **period)  # type: ignore[arg-type]
    parser = _Tables()
    parser.feed(page)
    tables, w = parser.tables, timebank.REPORT_WORDS

    def h(minutes: int) -> str:
        return f"{report_module.hours(minutes):,}"

    month_rows = [[m.month, h(m.exchanged_minutes), str(m.exchanges), str(m.new_members),
                   str(m.members)] for m in report.by_month]  # fmt: skip
    assert tables["table-by-month"] == (
        [w["column_month"], w["column_hours"], w["column_exchanges"], w["column_new_members"],
         w["column_members_at_month_end"]], month_rows)  # fmt: skip
    category_rows = [[c.category or w["no_category"], h(c.exchanged_minutes), str(c.exchanges)]
                     for c in report.by_category]  # fmt: skip
    assert tables["table-by-category"] == (
        [w["column_category"], w["column_hours"], w["column_exchanges"]],
        category_rows,
    )
    kind_rows = [[w[f"kind_{k.kind}"], str(k.members), str(k.new_members), str(k.active_members),
                  str(k.inactive_members)] for k in report.by_kind]  # fmt: skip
    assert tables["table-by-kind"] == (
        [w["column_kind"], w["column_members"], w["column_new_members"],
         w["column_active_members"], w["column_inactive_members"]], kind_rows)  # fmt: skip
    assert report.by_area is not None
    area_rows = [[a.area or w["no_area"], str(a.members), str(a.new_members),
                  str(a.active_members), h(a.given_minutes), h(a.received_minutes),
                  str(a.exchanges)] for a in report.by_area]  # fmt: skip
    assert tables["table-by-area"] == (
        [w["column_area"], w["column_members"], w["column_new_members"],
         w["column_active_members"], w["column_hours_given"], w["column_hours_received"],
         w["column_exchanges"]], area_rows)  # fmt: skip
    # Every pair of neighbouring columns differs in some row, and the rows
    # with no category and no area are there, named by their words.
    for rows in (month_rows, category_rows, kind_rows, area_rows):
        for column in range(1, len(rows[0]) - 1):
            assert any(row[column] != row[column + 1] for row in rows), (rows, column)
    assert [w["no_category"], "1.50", "1"] in category_rows
    chart = report_chart(page, "chart-by-category")
    assert f">{w['no_category']}</text>" in chart  # its bar is named too
    area_note = markupsafe.escape(w["by_area_note"])  # as the page's template writes it
    assert f'<p class="chart-note">{area_note}</p>' in page  # what an area is
    made_by = w["made_by"].format(version=timebank.__version__, made_on="15 June 2026")
    assert f"<p>{made_by}</p>" in page  # the version and the day (the tests' clock)
    assert w["no_area"] in [row[0] for row in area_rows]
    assert any(row[4] != row[5] for row in area_rows)  # given and received


def test_the_html_reports_chart_of_categories_draws_the_twelve_largest_the_largest_on_top(
    tb: timebank.Timebank, tree: str
) -> None:
    """Of 13 categories the chart draws the 12 with the most hours, the most
    at the top (its labels read downwards by their ``y``); its table lists all
    13. A roll-up's page says so under the title and names every bank in its
    footnote."""
    for n in range(13):  # category c00 has 1 hour, ... c12 13 hours
        tb.record_exchange(tree, "ann", "bob", f"{n + 1}:00", category=f"c{n:02}",
                           actor=ACTOR, occurred_on="2026-03-02")  # fmt: skip
    page = tb.report_html(tree, start="2026-03-01", end="2026-03-31", rollup=True)
    chart = report_chart(page, "chart-by-category")
    labels = re.findall(r'<text[^>]* y="([0-9.]+)"[^>]*>(c[0-9]{2})</text>', chart)
    downwards = [name for _, name in sorted(labels, key=lambda label: float(label[0]))]
    assert downwards == [f"c{n:02}" for n in range(12, 0, -1)]  # c12 on top; no c00
    parser = _Tables()
    parser.feed(page)
    assert [row[0] for row in parser.tables["table-by-category"][1]] == [
        f"c{n:02}" for n in range(12, -1, -1)
    ]
    words = timebank.REPORT_WORDS
    assert words["period_rollup"].format(start="1 March 2026", end="31 March 2026") in page
    assert "riverside, riverside/hub" in page  # the footnote's banks
    own = tb.report_html(tree, start="2026-03-01", end="2026-03-31")
    assert words["period"].format(start="1 March 2026", end="31 March 2026") in own


def test_the_html_report_writes_a_thousand_hours_with_a_separator(
    tb: timebank.Timebank, bank: str
) -> None:
    """1,080 hours, as councils write them, in the headline and the tables."""
    for day in range(1, 28):
        for provider, receiver in (("ann", "bob"), ("bob", "cat")):
            tb.record_exchange(bank, provider, receiver, "20:00", actor=ACTOR,
                               occurred_on=f"2026-03-{day:02}")  # fmt: skip
    page = tb.report_html(bank, start="2026-03-01", end="2026-03-31")
    parser = _Tables()
    parser.feed(page)
    assert re.search(r'data-figure="hours_exchanged" data-value="1080">\s*'
                     r'<span class="value">1,080</span>', page)  # fmt: skip
    assert parser.tables["table-by-month"][1] == [["2026-03", "1,080.00", "54", "0", "4"]]
    no_category = timebank.REPORT_WORDS["no_category"]
    assert parser.tables["table-by-category"][1] == [[no_category, "1,080.00", "54"]]


def test_the_html_reports_month_labels_are_thinned_to_at_most_about_24(
    tb: timebank.Timebank,
) -> None:
    """66 months (2021 to June 2026): each chart over time labels every third
    month from the first, 22 labels, not 66 run together."""
    tb.create_bank("old", name="Old", actor=ACTOR, opened_on="2021-01-01")
    period = {"start": "2021-01-01", "end": "2026-06-15"}
    months = [m.month for m in tb.report("old", **period).by_month]
    assert (len(months), months[0], months[-1]) == (66, "2021-01", "2026-06")
    page = tb.report_html("old", **period)
    for chart in ("chart-by-month", "chart-members"):
        drawn = re.findall(
            r"<text[^>]*>\s*([0-9]{4}-[0-9]{2})\s*</text>", report_chart(page, chart)
        )
        assert drawn == months[::3], chart


def test_member_activity(tb: timebank.Timebank, bank: str) -> None:
    ex = {"actor": ACTOR}
    tb.record_opening_balance(bank, "org", "5:00", occurred_on="2026-03-01", **ex)
    tb.donate(bank, "org", "3:00", occurred_on="2026-03-01", **ex)
    tb.record_exchange(bank, "ann", "bob", "2:00", occurred_on="2026-03-02", **ex)
    tb.record_pot_exchange(bank, "cat", "ann", "1:30", occurred_on="2026-03-05", **ex)
    tb.record_exchange(bank, "bob", "ann", "1:00", occurred_on="2026-03-10", **ex)
    tb.record_group_exchange(bank, {"ann": "1:00", "bob": "1:00"}, {"org": "2:00"},
                             occurred_on="2026-03-20", **ex)  # fmt: skip
    tb.record_exchange(bank, "cat", "org", "1:00", occurred_on="2026-03-21", entry_id="x", **ex)
    tb.reverse("x", occurred_on="2026-03-22", **ex)
    tb.leave(bank, "org", left_on="2026-04-01", **ex)

    def activity(start: str, end: str) -> dict[str, tuple[object, ...]]:
        return {
            a.member: (a.exchanges, a.given_minutes, a.received_minutes, a.partners,
                       a.first_exchange_on, a.last_exchange_on)
            for a in tb.member_activity(bank, start=start, end=end)
        }  # fmt: skip

    march = activity("2026-03-01", "2026-03-31")
    assert march == {
        # e1, the pot-funded help (the pot paid ann's 1:30), bob's hour back, the group
        "ann": (4, 120 + 60, 90 + 60, 3, date(2026, 3, 2), date(2026, 3, 20)),
        "bob": (3, 60 + 60, 120, 2, date(2026, 3, 2), date(2026, 3, 20)),
        "cat": (1, 90, 0, 1, date(2026, 3, 5), date(2026, 3, 5)),  # x was reversed
        "org": (1, 0, 120, 2, date(2026, 3, 20), date(2026, 3, 20)),
    }
    report = tb.report(bank, start="2026-03-01", end="2026-03-31")
    assert sum(row[1] for row in march.values()) == report.exchanged_minutes  # type: ignore[misc]
    # org left on 1 April, a day of April's period: listed, with nothing done
    assert activity("2026-04-01", "2026-04-30")["org"] == (0, 0, 0, 0, None, None)
    assert "org" not in activity("2026-04-02", "2026-04-30")
    row = tb.member_activity(bank, start="2026-03-01", end="2026-03-31")[0].to_dict()
    assert row == {
        "bank": bank, "member": "ann", "kind": "individual", "exchanges": 4,
        "hours_given": 3, "hours_received": 2.5, "partners": 3,
        "first_exchange_on": "2026-03-02", "last_exchange_on": "2026-03-20",
        "given_minutes": 180, "received_minutes": 150,
    }  # fmt: skip


def test_a_read_model_of_the_previous_schema_is_brought_up_in_place(
    tb: timebank.Timebank, bank: str
) -> None:
    """Schema 7 lacked rm_connections: its read model gains the table and is
    settled from rm_pairs by the next catch-up, with nothing applied again
    (a rebuild at a million entries takes 45 s); an older one is rebuilt,
    and so is a newer one (a later timebank's)."""
    tb.record_exchange(bank, "ann", "bob", "1", actor=ACTOR, occurred_on="2026-02-01")
    tb.record_exchange(bank, "cat", "ann", "1", actor=ACTOR, occurred_on="2026-02-02")
    model, db = tb.read_model, tb.read_model.db
    model.catch_up()
    tables, position = model.tables(), model.position()
    assert tables["rm_connections"]  # ann (two), bob and cat (one each)
    with db.exclusive():  # as schema 7 left it
        for table in ("rm_connections", "rm_stale_connections"):
            db.execute(f"DROP TABLE {table}")
        db.execute("DROP INDEX rm_pairs_by_account_b")
        db.execute("UPDATE rm_position SET schema_version = 7")
    assert model.rebuild_reason() is None
    assert model.behind() == 0
    assert model.catch_up() == 0  # nothing applied again
    assert (model.tables(), model.position()) == (tables, position)
    assert tb.report(bank).members_with_one_connection == 2
    with db.exclusive():
        db.execute("UPDATE rm_position SET schema_version = 6")
    assert model.rebuild_reason() == "its tables are of schema 6, this version reads 9"
    assert model.behind() == model.log_end() == position  # the whole log, again
    assert model.catch_up() == position  # rebuilt from the log
    assert model.tables() == tables
    with db.exclusive():  # a later timebank's tables: rebuilt, never taken as ours
        db.execute("UPDATE rm_position SET schema_version = 10")
    assert model.rebuild_reason() == "its tables are of schema 10, this version reads 9"
    assert model.catch_up() == position
    assert model.tables() == tables


def test_a_read_model_of_schema_8_loses_the_pot_as_a_donations_receiver_in_place(
    tb: timebank.Timebank, bank: str
) -> None:
    """Schema 8's read models hold the pot as the receiver of a donation an
    import recorded: brought up to 9, they hold none, as a rebuild does,
    with nothing applied again."""
    tb.donate(bank, "ann", "1", actor=ACTOR, occurred_on="2026-02-01", entry_id="d1")
    tb.record_exchange(bank, "ann", "bob", "1", actor=ACTOR, occurred_on="2026-02-02")
    model, db = tb.read_model, tb.read_model.db
    model.catch_up()
    tables, position = model.tables(), model.position()
    with db.exclusive():  # as schema 8 left a donation an import recorded
        db.execute("UPDATE rm_entries SET receiver = '@pot' WHERE kind = 'donation'")
        db.execute("UPDATE rm_position SET schema_version = 8")
    assert model.rebuild_reason() is None
    assert model.catch_up() == 0  # nothing applied again
    assert (model.tables(), model.position()) == (tables, position)
    assert db.execute("SELECT receiver FROM rm_entries WHERE kind = 'donation'") == [(None,)]


def test_members_with_one_connection(tb: timebank.Timebank, bank: str) -> None:
    def one(start: str, end: str) -> int:
        return tb.report(bank, start=start, end=end).members_with_one_connection

    ex = {"actor": ACTOR}
    tb.record_exchange(bank, "ann", "bob", "1:00", occurred_on="2026-01-10", **ex)
    tb.record_exchange(bank, "bob", "ann", "1:00", occurred_on="2026-02-01", **ex)
    assert one("2026-01-01", "2026-02-28") == 2  # ann and bob: the same pair twice
    tb.record_exchange(bank, "cat", "ann", "1:00", occurred_on="2026-04-11", entry_id="ca", **ex)
    assert one("2026-01-01", "2026-03-31") == 2  # up to March ann still had one
    # April alone: bob exchanged before April and still counts; ann has two now
    assert one("2026-04-01", "2026-04-30") == 2  # bob and cat
    tb.reverse("ca", actor=ACTOR, occurred_on="2026-04-12")
    assert one("2026-04-01", "2026-04-30") == 2  # ann and bob again; cat has none
    assert [m.to_dict() for m in tb.members_with_one_connection(bank, as_of="2026-04-30")] == [
        {"bank": bank, "member": m, "kind": "individual", "connected_with": other,
         "connected_on": "2026-01-10"}
        for m, other in (("ann", "bob"), ("bob", "ann"))
    ]  # fmt: skip
    # an exchange dated before ann's first gives her a second from that day
    tb.record_exchange(bank, "org", "ann", "1:00", occurred_on="2026-01-05", **ex)
    assert one("2026-01-01", "2026-01-07") == 2  # ann and org, with each other
    assert one("2026-01-01", "2026-01-31") == 2  # bob and org; ann has two
    tb.leave(bank, "org", actor=ACTOR, left_on="2026-05-01")
    assert one("2026-05-01", "2026-05-01") == 2  # a member on their last day
    assert one("2026-05-02", "2026-05-31") == 1  # bob
    # the list is of members on the day: org, who left, is not on it
    listed = tb.members_with_one_connection(bank, as_of="2026-05-02")
    assert [(m.member, m.connected_with) for m in listed] == [("bob", "ann")]
    incremental = tb.read_model.tables()
    tb.read_model.rebuild()
    assert tb.read_model.tables() == incremental


def test_members_with_one_connection_across_banks(tb: timebank.Timebank, tree: str) -> None:
    """ann is a member of riverside and its hub: in a roll-up, she is one
    person, whose connections are those of both her accounts."""
    ex = {"actor": ACTOR, "occurred_on": "2026-03-02"}
    tb.record_exchange(tree, "bob", "ann", "1:00", actor=ACTOR, occurred_on="2026-02-15")
    tb.record_exchange(tree, "ann", "bob", "1:00", **ex)
    tb.record_exchange("riverside/hub", "ann", "bob", "1:00", receiver_bank=tree, **ex)

    def one(bank: str, rollup: bool = False) -> int:
        return tb.report(
            bank, start="2026-03-01", end="2026-03-31", rollup=rollup
        ).members_with_one_connection

    # bob's one account is reached from both of ann's: still one connection each way
    assert one(tree) == one(tree, rollup=True) == 2
    assert one("riverside/hub") == 1  # ann; bob is not the hub's member
    # connected since the first day of either account's first exchange with bob
    listed = tb.members_with_one_connection(tree, as_of="2026-03-31", rollup=True)
    assert [(m.member, m.connected_with, str(m.connected_on)) for m in listed] == [
        ("ann", "bob", "2026-02-15"), ("bob", "ann", "2026-02-15"),
    ]  # fmt: skip
    tb.record_exchange("riverside/hub", "hal", "ann", "1:00", **ex)
    assert one(tree) == 2  # in riverside, ann's account there knows bob only
    assert one(tree, rollup=True) == 2  # bob and hal; ann has two
    assert one("riverside/hub") == 1  # hal
    listed = tb.members_with_one_connection(tree, as_of="2026-03-31", rollup=True)
    assert [(m.member, m.connected_with) for m in listed] == [("bob", "ann"), ("hal", "ann")]
    assert tb.members_with_one_connection(tree, as_of="2026-02-14", rollup=True) == []


def test_new_connections_and_the_ninety_days(tb: timebank.Timebank, bank: str) -> None:
    tb.record_exchange(bank, "ann", "bob", "1:00", actor=ACTOR, occurred_on="2026-01-10")
    tb.record_exchange(bank, "bob", "ann", "1:00", actor=ACTOR, occurred_on="2026-04-20")
    tb.record_exchange(bank, "cat", "ann", "1:00", actor=ACTOR, occurred_on="2026-04-11")
    april = tb.report(bank, start="2026-04-01", end="2026-04-30")
    assert (april.connections, april.new_connections) == (2, 1)
    # a pair whose first exchange falls on the period's first day is new in it
    from_11 = tb.report(bank, start="2026-04-11", end="2026-04-30")
    assert (from_11.connections, from_11.new_connections) == (2, 1)
    assert tb.report(bank, start="2026-04-12", end="2026-04-30").new_connections == 0
    assert april.inactive_members == 1  # org
    # The 90 days up to 9 April are 10 January to 9 April: ann and bob's
    # exchange is in them; up to 10 April it is not.
    assert tb.report(bank, start="2026-04-09", end="2026-04-09").inactive_members == 2
    assert tb.report(bank, start="2026-04-10", end="2026-04-10").inactive_members == 4
    assert [m.member for m in tb.inactive_members(bank, as_of="2026-04-10")] == [
        "ann", "bob", "cat", "org",
    ]  # fmt: skip
    assert [m.member for m in tb.inactive_members(bank, as_of="2026-04-10", days=91)] == [
        "cat", "org",
    ]  # fmt: skip
    quiet = tb.inactive_members(bank, as_of="2026-06-15")
    assert [(m.member, m.last_exchange_on) for m in quiet] == [("org", None)]
    assert [(m.member, m.last_exchange_on) for m in tb.inactive_members(bank, as_of="2026-09-01")] == [
        ("ann", date(2026, 4, 20)), ("bob", date(2026, 4, 20)), ("cat", date(2026, 4, 11)),
        ("org", None),
    ]  # fmt: skip


def test_members_over_time_and_leaving(tb: timebank.Timebank, bank: str) -> None:
    tb.join(bank, "dan", kind="individual", actor=ACTOR, joined_on="2026-02-10")
    tb.leave(bank, "cat", actor=ACTOR, left_on="2026-03-31")
    report = tb.report(bank, start="2026-01-01", end="2026-04-30")
    months = {m.month: (m.members, m.new_members) for m in report.by_month}
    assert months == {
        "2026-01": (4, 4), "2026-02": (5, 1), "2026-03": (5, 0), "2026-04": (4, 0),
    }  # fmt: skip
    assert (report.individual_members, report.organisations, report.new_members) == (3, 1, 5)


def test_a_member_moving_between_banks_on_a_month_end_counts_once(
    tb: timebank.Timebank, tree: str
) -> None:
    """A roll-up counts people: bob leaves riverside on the day he joins its
    hub, the last of March, and is one member that day, not two."""
    tb.leave(tree, "bob", actor=ACTOR, left_on="2026-03-31")
    tb.join("riverside/hub", "bob", kind="individual", actor=ACTOR, joined_on="2026-03-31")
    report = tb.report(tree, start="2026-02-01", end="2026-04-30", rollup=True)
    months = {m.month: m.members for m in report.by_month}
    # ann (in both banks), bob, cat, org, hal
    assert months == {"2026-02": 5, "2026-03": 5, "2026-04": 5}
    assert (report.individual_members, report.new_members) == (4, 1)  # hal joined in February


def test_a_period_into_the_future_lists_its_months_up_to_this_one(
    tb: timebank.Timebank, bank: str
) -> None:
    """A financial year not yet over, or "open-ended" to the calendar's last
    day, lists the months up to the current one (today is 15 June 2026):
    nothing can be dated later. Its figures are those up to today; a
    period wholly after today has no months and counts nothing. To 9999 it
    listed 95,688 empty months (or, on its last, stopped on an
    OverflowError)."""
    tb.record_exchange(bank, "ann", "bob", "2:00", actor=ACTOR, occurred_on="2026-05-10")
    tb.join(bank, "dan", kind="individual", actor=ACTOR, joined_on="2026-06-02")
    now = tb.report(bank, start="2026-04-01", end="2026-06-15")
    assert [m.month for m in now.by_month] == ["2026-04", "2026-05", "2026-06"]
    for end in ("2027-03-31", "9999-12-31"):
        later = tb.report(bank, start="2026-04-01", end=end)
        assert later.by_month == now.by_month, end
        assert (later.exchanges, later.exchanged_minutes, later.new_members) == (1, 120, 1)
        assert later.individual_members == now.individual_members == 4
    ahead = tb.report(bank, start="2026-07-01", end="9999-12-31")
    assert ahead.by_month == ()
    assert (ahead.exchanges, ahead.transactions, ahead.new_members) == (0, 0, 0)
    assert tb.report(bank, start="9999-12-31", end="9999-12-31").by_month == ()


def test_a_month_dated_after_today_by_a_bank_ahead_is_listed(tmp_path: Path) -> None:
    """In a roll-up, a mini bank in a timezone ahead may already be in the
    next month: its entries there have their month, as every entry has."""
    moment = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)  # 1 July, 02:00, in Kiritimati
    with timebank.open(f"sqlite:///{tmp_path / 'ahead.db'}", clock=lambda: moment) as tb:
        tb.create_bank("home", name="Home", actor=ACTOR, opened_on="2026-06-01")
        ahead = timebank.Policy(timezone="Pacific/Kiritimati")
        tb.create_bank("home/isle", name="Isle", actor=ACTOR, policy=ahead,
                       opened_on="2026-06-01")  # fmt: skip
        for member in ("ann", "bob"):
            tb.join("home/isle", member, kind="individual", actor=ACTOR, joined_on="2026-06-01")
        tb.record_exchange("home/isle", "ann", "bob", "1:00", actor=ACTOR)  # its today
        assert tb.today("home") == date(2026, 6, 30)
        report = tb.report("home", start="2026-06-01", end="9999-12-31", rollup=True)
        months = {m.month: m.exchanges for m in report.by_month}
        assert months == {"2026-06": 0, "2026-07": 1}
        assert report.exchanges == sum(months.values()) == 1
    # a member who joins there on its today, with no exchange at all: their month too
    with timebank.open(f"sqlite:///{tmp_path / 'joined.db'}", clock=lambda: moment) as tb:
        tb.create_bank("home", name="Home", actor=ACTOR, opened_on="2026-06-01")
        tb.create_bank("home/isle", name="Isle", actor=ACTOR, policy=ahead,
                       opened_on="2026-06-01")  # fmt: skip
        tb.join("home/isle", "cy", kind="individual", actor=ACTOR)
        report = tb.report("home", start="2026-06-01", end="9999-12-31", rollup=True)
        months = {m.month: (m.new_members, m.members) for m in report.by_month}
        assert months == {"2026-06": (0, 0), "2026-07": (1, 1)}


def test_member_figures_by_kind(tb: timebank.Timebank, tree: str) -> None:
    # riverside: ann, bob, cat (individuals), org; the hub: hal, ann.
    tb.join(tree, "club", kind="organisation", actor=ACTOR, joined_on="2026-03-05")
    # "hal" joined the hub as an individual on 1 February, and joins the
    # parent as an organisation later: in a roll-up, his earliest kind.
    tb.join(tree, "hal", kind="organisation", actor=ACTOR, joined_on="2026-03-10")
    tb.record_exchange(tree, "club", "bob", "1:00", actor=ACTOR, occurred_on="2026-03-06")
    tb.record_exchange(tree, "hal", "cat", "1:00", actor=ACTOR, occurred_on="2026-03-11")

    def by_kind(**kwargs: object) -> dict[str, tuple[int, ...]]:
        report = tb.report(tree, start="2026-03-01", end="2026-03-31", **kwargs)  # type: ignore[arg-type]
        kinds = {k.kind: (k.members, k.new_members, k.active_members, k.inactive_members)
                 for k in report.by_kind}  # fmt: skip
        # each figure adds up over the kinds to the report's own
        assert [sum(k[i] for k in kinds.values()) for i in range(4)] == [
            report.individual_members + report.organisations, report.new_members,
            report.active_members, report.inactive_members,
        ]  # fmt: skip
        assert list(kinds) == ["individual", "organisation"]
        return kinds

    # ann, bob, cat: bob and cat active; ann inactive. org inactive; club and
    # hal (an organisation in this bank) new and active.
    assert by_kind() == {"individual": (3, 0, 2, 1), "organisation": (3, 2, 2, 1)}
    # In the roll-up hal is an individual (his first membership) and not new.
    assert by_kind(rollup=True) == {"individual": (4, 0, 3, 1), "organisation": (2, 1, 1, 1)}


def test_catching_up_reports_its_progress_after_each_batch(
    tb: timebank.Timebank, bank: str
) -> None:
    for day in range(1, 8):
        tb.record_exchange(bank, "ann", "bob", "1:00", actor=ACTOR, occurred_on=f"2026-02-0{day}")
    behind = tb.read_model.behind()
    assert behind == tb.read_model.log_end() - tb.read_model.position() > 0
    done: list[int] = []
    assert tb.read_model.catch_up(batch_size=3, progress=done.append) == behind
    assert done == [*range(3, behind, 3), behind]  # after each committed batch
    assert tb.read_model.behind() == 0
    done.clear()
    assert tb.read_model.catch_up(progress=done.append) == 0
    assert done == []  # nothing applied, nothing reported
    assert tb.read_model.rebuild(batch_size=4, progress=done.append) == tb.read_model.log_end()
    assert done == [*range(4, tb.read_model.log_end(), 4), tb.read_model.log_end()]


def test_the_garbage_collector_runs_again_after_a_catch_up_and_an_audit(
    tb: timebank.Timebank, bank: str
) -> None:
    """Both pause it (their many small objects make no cycles); the app that
    embeds timebank must not be left without it, nor have it turned on
    when the app had turned it off."""
    import gc

    tb.record_exchange(bank, "ann", "bob", "1:00", actor=ACTOR, occurred_on="2026-02-01")
    assert gc.isenabled()
    assert tb.read_model.catch_up() > 0
    assert gc.isenabled()
    assert tb.audit().ok
    assert gc.isenabled()
    assert tb.read_model.rebuild() > 0
    assert gc.isenabled()
    gc.disable()
    try:
        tb.record_exchange(bank, "bob", "ann", "1:00", actor=ACTOR, occurred_on="2026-02-02")
        assert tb.read_model.catch_up() > 0
        assert tb.audit().ok
        assert not gc.isenabled()
    finally:
        gc.enable()


def _bank_of_two(tb: timebank.Timebank) -> None:
    """Bank ``r``, opened on 1 January 2026, with the individuals ``a`` and ``b``."""
    tb.create_bank("r", name="R", actor=ACTOR, opened_on="2026-01-01")
    for member in ("a", "b"):
        tb.join("r", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")


def test_a_reopened_store_resumes_where_its_read_model_stopped(
    reopen: Callable[[], timebank.Timebank], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    with reopen() as tb:
        _bank_of_two(tb)
        tb.record_exchange("r", "a", "b", "1:00", actor=ACTOR, occurred_on="2026-02-01")
        assert tb.report("r").exchanges == 1
        position = tb.read_model.position()
        tb.record_exchange("r", "b", "a", "1:00", actor=ACTOR, occurred_on="2026-02-02")
    with reopen() as tb:
        if tb.url != "memory://":  # a memory store's read model lives in its process
            assert tb.read_model.position() == position
        assert tb.report("r").exchanges == 2
        assert tb.read_model.catch_up() == 0
        assert tb.read_model.position() == tb._app.recorder.max_notification_id()


def test_a_statement_page_is_chosen_from_the_index_and_an_older_index_is_replaced(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """A page is chosen from the account's index entries alone (SQLite's plan
    names the covering index), not by reading and sorting every line of the
    account; a read model built by a release with the earlier index gets the
    new one at its next catch-up, without being rebuilt."""
    from timebank.readmodel import statement

    from .conftest import fixed_clock

    url = f"sqlite:///{tmp_path / 's.db'}"
    with timebank.open(url, clock=fixed_clock) as tb:
        _bank_of_two(tb)
        for day in range(1, 8):
            tb.record_exchange("r", "a", "b", "1", actor=ACTOR, occurred_on=f"2026-02-0{day}")
        lines = tb.statement("r", "a")
        db = tb.read_model.db
        plan = " ".join(r[-1] for r in db.execute(f"EXPLAIN QUERY PLAN {statement._PAGE}",
                                                  ("r", "a", 2, 2)))  # fmt: skip
        assert "COVERING INDEX rm_account_lines" in plan, plan
        # as an earlier release left it
        db.execute("DROP INDEX rm_account_lines")
        db.execute("CREATE INDEX rm_entry_parties_by_account"
                   " ON rm_entry_parties (bank, account, occurred_on)")  # fmt: skip
        tables, position = tb.read_model.tables(), tb.read_model.position()
        assert tb.read_model.catch_up() == 0  # nothing applied again
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "rm_account_lines" in indexes
        assert "rm_entry_parties_by_account" not in indexes
        assert (tb.read_model.tables(), tb.read_model.position()) == (tables, position)
        assert _paged(tb.statement, "r", "a", 3) == lines == tb.ledger_statement("r", "a")
        assert [line.balance_minutes for line in lines] == [60 * n for n in range(1, 8)]


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_retired_index_whose_table_a_reader_holds_is_left_for_a_later_catch_up() -> None:
    """PostgreSQL: dropping an earlier release's index locks its table
    against every reader, once the readers it finds have ended, and the
    reads of every other process queue behind it: behind a transaction left
    open (an export, a query tool) a report waited for ever (measured:
    still waiting after 20 s, and another process's read of the table
    queued too). One short try; the index is dropped by a later catch-up."""
    import psycopg

    assert POSTGRES_URL is not None
    url = new_postgres_schema()
    schema = postgres_schema(url)
    with timebank.open(url) as tb, psycopg.connect(POSTGRES_URL) as reader:
        _bank_of_two(tb)
        tb.record_exchange("r", "a", "b", "1", actor=ACTOR, occurred_on="2026-02-01")
        assert tb.report("r").exchanges == 1
        tb.read_model.db.execute(  # as an earlier release left it
            "CREATE INDEX rm_entry_parties_by_account ON rm_entry_parties (bank, account)"
        )
        # a transaction left open that read the table
        assert reader.execute(f'SELECT count(*) FROM "{schema}".rm_entry_parties').fetchone()
        tb.record_exchange("r", "a", "b", "1", actor=ACTOR, occurred_on="2026-02-02")
        reported: list[int] = []
        beside = threading.Thread(target=lambda: reported.append(tb.report("r").exchanges))
        beside.start()
        beside.join(timeout=20)
        if beside.is_alive():
            reader.rollback()  # lets it finish, then the test fails
            beside.join()
            pytest.fail("a report waited behind a reader for the retired index's drop")

        def retired() -> bool:
            (found,) = tb.read_model.db.execute(
                "SELECT to_regclass('rm_entry_parties_by_account') IS NOT NULL"
            )[0]
            return bool(found)

        assert reported == [2]
        assert retired()  # left while the reader holds its table
        reader.rollback()
        tb.record_exchange("r", "a", "b", "1", actor=ACTOR, occurred_on="2026-02-03")
        assert tb.report("r").exchanges == 3
        assert not retired()


def test_a_pot_funded_exchange_between_banks_has_its_helped_member_in_their_own_bank(
    tmp_path: Path,
) -> None:
    """``rm_entry_parties`` (a documented table): the member a pot-funded
    exchange helped, from a mini bank whose pot pays, is a party (0 minutes,
    no leg) in their own bank only, and of its reversal too; the provider's
    bank has the provider and its clearing account. A reversal's parties
    keep their roles (a group's provider is not its reversal's receiver).
    ``rm_pot_flows`` marks the pot's movement that was reversed."""
    from .conftest import fixed_clock

    with timebank.open(f"sqlite:///{tmp_path / 's.db'}", clock=fixed_clock) as tb:
        tb.create_bank("t", name="T", actor=ACTOR, opened_on="2026-01-01")
        tb.create_bank("t/hub", name="H", actor=ACTOR, opened_on="2026-01-01")
        tb.join("t", "a", kind="individual", actor=ACTOR, joined_on="2026-01-01")
        for member in ("b", "c"):
            tb.join("t/hub", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
        tb.donate("t/hub", "c", "2", actor=ACTOR, entry_id="d")
        tb.record_pot_exchange("t", "a", "b", "1", actor=ACTOR, receiver_bank="t/hub",
                               entry_id="x")  # fmt: skip
        tb.read_model.catch_up()
        rows = tb.read_model.db.execute(
            "SELECT bank, account, role, minutes, leg FROM rm_entry_parties"
            " WHERE entry_id = 'x' ORDER BY bank, account"
        )
        assert [tuple(r) for r in rows] == [
            ("t", "@clearing:t/hub", "clearing", -60, 1),
            ("t", "a", "provider", 60, 0),
            ("t/hub", "@clearing:t", "clearing", 60, 1),
            ("t/hub", "@pot", "pot", -60, 0),
            ("t/hub", "b", "receiver", 0, None),
        ]
        # reversed, each party keeps their role, and the helped member their bank
        tb.join("t", "e", kind="individual", actor=ACTOR, joined_on="2026-01-01")
        tb.record_group_exchange("t", {"a": 1}, {"e": 1}, actor=ACTOR, entry_id="g")
        for entry_id in ("x", "g"):
            tb.reverse(entry_id, actor=ACTOR, reversal_id=f"r{entry_id}")
        tb.read_model.catch_up()
        rows = tb.read_model.db.execute(
            "SELECT entry_id, bank, account, role, minutes, leg FROM rm_entry_parties"
            " WHERE entry_id IN ('rx', 'rg') ORDER BY entry_id, bank, account"
        )
        assert [tuple(r) for r in rows] == [
            ("rg", "t", "a", "provider", -60, 0),
            ("rg", "t", "e", "receiver", 60, 1),
            ("rx", "t", "@clearing:t/hub", "clearing", 60, 1),
            ("rx", "t", "a", "provider", -60, 0),
            ("rx", "t/hub", "@clearing:t", "clearing", -60, 1),
            ("rx", "t/hub", "@pot", "pot", 60, 0),
            ("rx", "t/hub", "b", "receiver", 0, None),
        ]
        # rm_pot_flows (documented too): the pot's movements, the reversed
        # one marked, whether its reversal came in a later batch (above) or
        # in the same one (a rebuild applies the whole log as one)
        flows = "SELECT entry_id, bank, kind, minutes, reversed FROM rm_pot_flows"
        expected = [
            ("d", "t/hub", "donation", 120, 0),
            ("rx", "t/hub", "reversal", 60, 0),
            ("x", "t/hub", "pot_exchange", -60, 1),
        ]
        assert sorted(tuple(r) for r in tb.read_model.db.execute(flows)) == expected
        tb.read_model.rebuild()
        assert sorted(tuple(r) for r in tb.read_model.db.execute(flows)) == expected


# none; some (the old position beyond the log's end); more than were lost
# (a different event at the old position: only its hash tells them apart)
@pytest.mark.parametrize("written_after_restore", [0, 5, 12])
def test_a_store_restored_from_a_backup_gets_a_read_model_of_its_own_log(
    tmp_path, written_after_restore: int
) -> None:  # type: ignore[no-untyped-def]
    """The SQLite store is restored from a backup made with SQLite's online
    backup (as docs/storage.md says); its read model file, left as it was,
    had applied events the restored log no longer holds. Whether the next
    catch-up comes at once or after new entries have taken the old
    positions, the read model is the restored log's: the same tables a
    rebuild gives, every new entry counted."""
    import sqlite3

    store, backup = tmp_path / "bank.db", tmp_path / "backup.db"
    url = f"sqlite:///{store}"
    with timebank.open(url) as tb:
        _bank_of_two(tb)
        tb.record_exchange("r", "a", "b", "1", actor=ACTOR, entry_id="kept")
        with sqlite3.connect(store) as live, sqlite3.connect(backup) as copy:
            live.backup(copy)
        for n in range(8):  # after the backup: lost with the restore
            tb.record_exchange("r", "a", "b", "1", actor=ACTOR, entry_id=f"lost-{n}")
        assert tb.report("r").exchanges == 9
    for suffix in ("", "-wal", "-shm"):
        store.with_name(store.name + suffix).unlink(missing_ok=True)
    with sqlite3.connect(backup) as copy, sqlite3.connect(store) as restored:
        copy.backup(restored)
    from click.testing import CliRunner

    from timebank.cli import cli

    status = CliRunner().invoke(cli, ["--db", url, "read-model", "status"])
    assert "; the next catch-up rebuilds it: it applied events the log does not hold" in (
        status.output
    )
    with timebank.open(url) as tb:
        reason = tb.read_model.rebuild_reason()
        assert reason is not None
        assert reason.startswith("it applied events the log does not hold")
        # The progress bar's length: the whole (shorter) log, not the
        # difference to the position the read model reached before.
        assert 0 < tb.read_model.behind() == tb.read_model.log_end() < tb.read_model.position()
        for n in range(written_after_restore):  # reusing the lost events' positions
            tb.record_exchange("r", "b", "a", "1", actor=ACTOR, entry_id=f"new-{n}")
        assert tb.report("r").exchanges == 1 + written_after_restore
        assert [x.entry_id for x in tb.statement("r", "a")] == ["kept"] + [
            f"new-{n}" for n in range(written_after_restore)
        ]
        tb.record_exchange("r", "b", "a", "1", actor=ACTOR, entry_id="later")
        assert tb.report("r").exchanges == 2 + written_after_restore
        assert tb.read_model.rebuild_reason() is None
        caught_up = tb.read_model.tables()
        tb.read_model.rebuild()
        assert tb.read_model.tables() == caught_up
        assert tb.audit().ok


def test_a_read_model_whose_last_event_the_log_holds_at_another_position_is_rebuilt(
    tmp_path: Path,
) -> None:
    """The read model goes on from its position only where the log holds,
    at that position, the event it applied last. A log numbered again (its
    events copied into another store, with a gap closed or opened) can hold
    that event further on; going on from the old position would apply it,
    and whatever now lies between, a second time."""
    import sqlite3

    store = tmp_path / "bank.db"
    url = f"sqlite:///{store}"
    with timebank.open(url) as tb:
        _bank_of_two(tb)
        tb.record_exchange("r", "a", "b", "1", actor=ACTOR, entry_id="e1")
        assert tb.report("r").exchanges == 1
        position = tb.read_model.position()
        assert position == tb.read_model.log_end()
    with sqlite3.connect(store) as conn:  # the last event, numbered 10 further on
        conn.execute("UPDATE stored_events SET rowid = rowid + 10 WHERE rowid = ?", (position,))
    with timebank.open(url) as tb:
        assert tb.read_model.log_end() == position + 10
        reason = tb.read_model.rebuild_reason()
        assert reason is not None
        assert reason.startswith("it applied events the log does not hold")
        assert tb.report("r").exchanges == 1
        assert tb.read_model.position() == position + 10
        caught_up = tb.read_model.tables()
        tb.read_model.rebuild()
        assert tb.read_model.tables() == caught_up


@pytest.mark.parametrize("damage", ["not sqlite", "pages zeroed"])
def test_a_damaged_read_model_file_is_one_named_error_and_deleting_it_is_the_cure(
    tmp_path, damage: str
) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    with timebank.open(url) as tb:
        _bank_of_two(tb)
        tb.record_exchange("r", "a", "b", "1", actor=ACTOR)
        before = tb.report("r")
        model = tb.read_model.location
    path = tmp_path / "bank.reports.db"
    assert str(path) == model
    if damage == "not sqlite":
        path.write_bytes(b"\x00 not a database " * 300)
    else:  # SQLite's header kept, every page after the first zeroed
        data = path.read_bytes()
        path.write_bytes(data[:4096] + bytes(len(data) - 4096))
    with timebank.open(url) as tb:
        with pytest.raises(timebank.errors.StorageError) as caught:
            tb.report("r")
        assert f"the read model {path} is damaged" in str(caught.value)
        assert "delete the file and the next report rebuilds it" in str(caught.value)
        assert tb.balance("r", "a") == 60  # the ledger itself is untouched
    path.unlink()
    with timebank.open(url) as tb:
        assert tb.report("r") == before


def test_a_reversal_moves_first_and_last_days_once_the_catch_up_settles_them(
    tb: timebank.Timebank, bank: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reversal's accounts and pairs wait in rm_stale_activity and
    rm_stale_pairs until the end of the catch-up (the indexes their days are
    recomputed by are built after the rows of a read model built from
    empty); a catch-up stopped before that leaves them waiting, and the next
    one settles them."""
    import timebank.readmodel

    for n, day in enumerate(("2026-02-01", "2026-02-05", "2026-02-09")):
        tb.record_exchange(bank, "ann", "bob", "1:00", actor=ACTOR, occurred_on=day,
                           entry_id=f"x{n}")  # fmt: skip
    tb.read_model.catch_up()
    tb.reverse("x0", actor=ACTOR, reversal_id="r0", occurred_on="2026-03-01")
    tb.reverse("x2", actor=ACTOR, reversal_id="r2", occurred_on="2026-03-01")
    db = tb.read_model.db

    def spans() -> tuple[dict[str, tuple[int, str | None, str | None]], list[tuple[object, ...]]]:
        activity = db.execute(
            "SELECT account, exchanges, first_day, last_day FROM rm_activity"
            " WHERE bank = ? AND account IN ('ann', 'bob')",
            (bank,),
        )
        pairs = db.execute(
            "SELECT account_a, account_b, exchanges, first_day, last_day FROM rm_pairs"
            " WHERE bank_a = ? AND bank_b = ?",
            (bank, bank),
        )
        return {account: (n, first, last) for account, n, first, last in activity}, pairs

    def settle_fails(db: object) -> None:
        raise RuntimeError("stopped before settling")

    monkeypatch.setattr(timebank.readmodel, "settle_spans", settle_fails)
    with pytest.raises(RuntimeError, match="before settling"):
        tb.read_model.catch_up(batch_size=1)
    assert tb.read_model.position() == tb._app.recorder.max_notification_id()
    waiting = sorted(db.execute("SELECT bank, account FROM rm_stale_activity"))
    assert waiting == [(bank, "ann"), (bank, "bob")]
    assert db.execute("SELECT * FROM rm_stale_pairs") == [(bank, "ann", bank, "bob")]
    # counts are right at once; the days are the unreversed ones until settled
    assert spans() == (
        dict.fromkeys(("ann", "bob"), (1, "2026-02-01", "2026-02-09")),
        [("ann", "bob", 1, "2026-02-01", "2026-02-09")],
    )
    monkeypatch.undo()
    assert tb.read_model.catch_up() == 0
    for table in ("rm_stale_activity", "rm_stale_pairs"):
        assert db.execute(f"SELECT COUNT(*) FROM {table}") == [(0,)]
    assert spans() == (
        dict.fromkeys(("ann", "bob"), (1, "2026-02-05", "2026-02-05")),
        [("ann", "bob", 1, "2026-02-05", "2026-02-05")],
    )
    assert [line.entry_id for line in tb.statement(bank, "ann")] == ["x0", "x1", "x2", "r0", "r2"]
    assert tb.report(bank, start="2026-02-06", end="2026-02-28").connections == 0
    assert tb.report(bank, start="2026-02-05", end="2026-02-05").connections == 1


@pytest.mark.parametrize("kind", [kind for kind in BACKENDS if kind != "memory"])
def test_two_catching_up_at_once_apply_each_event_once(tmp_path: Path, kind: str) -> None:
    """Three stores of one file or schema catch its read model up at once,
    in turns (SQLite's write lock, PostgreSQL's advisory lock)."""
    opener = open_store(kind, tmp_path, clock=None)
    with opener() as tb:
        _bank_of_two(tb)
        for n in range(300):
            tb.record_exchange("r", "a", "b", minutes=30 + n % 3, actor=ACTOR,
                               occurred_on="2026-02-01")  # fmt: skip
    stores = [opener() for _ in range(3)]
    applied: list[int] = []
    failures: list[BaseException] = []

    def catch_up(store: timebank.Timebank) -> None:
        # a thread's exception would be printed and lost: kept, to assert on
        try:
            applied.append(store.read_model.catch_up(batch_size=17))
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=catch_up, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []  # each waited for its turn; none gave up
    assert sum(applied) == stores[0].read_model.log_end()  # every event once, by one of them
    tables = stores[0].read_model.tables()
    stores[0].read_model.rebuild()
    assert stores[0].read_model.tables() == tables
    assert stores[1].report("r").exchanges == 300
    for s in stores:
        s.close()


class _Stop(Exception):
    """Where a rebuild's process is killed, in the tests of a rebuild begun."""


def _begin_rebuild(model: timebank.ReadModel, step: str) -> threading.Thread | None:
    """Another process's ``model.rebuild()``, begun: ``begun`` (its first
    transaction committed, which drops the tables and makes them again,
    empty, and the process killed before it applied a batch), ``partial`` (its first batch committed too,
    then killed); or, in a thread returned, ``beginning``: its first
    transaction held open for a second after it dropped the tables (a slow
    disk, a paused machine), then committed, then killed."""

    def killed(*args: object, **kwargs: object) -> int:
        raise _Stop

    if step == "partial":
        with pytest.raises(_Stop):
            model.rebuild(batch_size=4, progress=killed)
        return None
    model.catch_up = killed  # type: ignore[method-assign]
    if step == "begun":
        with pytest.raises(_Stop):
            model.rebuild()
        del model.catch_up
        return None
    drop = model._drop
    begun = threading.Event()

    def slow_drop() -> None:
        drop()
        begun.set()
        time.sleep(1)

    def run() -> None:
        with pytest.raises(_Stop):
            model.rebuild()
        del model.catch_up, model._drop

    model._drop = slow_drop  # type: ignore[method-assign]
    thread = threading.Thread(target=run)
    thread.start()
    assert begun.wait(timeout=30)
    return thread


@pytest.mark.parametrize("step", ["begun", "partial", "beginning"])
@pytest.mark.parametrize("kind", [kind for kind in BACKENDS if kind != "memory"])
def test_a_report_as_another_process_begins_a_rebuild_reads_the_whole_log(
    tmp_path: Path, kind: str, step: str
) -> None:
    """A rebuild in another process drops the read model's tables, makes
    them again and fills them batch by batch: a report whose snapshot began
    just after it read no tables (a driver's error: the rebuild made them
    again only when it caught up) or part of the log (too few exchanges,
    silently). It now catches up again, and reads the whole log."""
    opener = open_store(kind, tmp_path)
    with opener() as reader, opener() as other:
        _bank_of_two(reader)
        for _ in range(5):
            reader.record_exchange("r", "a", "b", "1", actor=ACTOR, occurred_on="2026-02-01")
        assert reader.report("r").exchanges == 5
        caught_up = reader._caught_up
        threads: list[threading.Thread | None] = []

        def then_a_rebuild() -> timebank.ReadModel:
            model = caught_up()
            if not threads:  # the first time only
                threads.append(_begin_rebuild(other.read_model, step))
            return model

        reader._caught_up = then_a_rebuild  # type: ignore[method-assign]
        report = reader.report("r")
        journal = io.StringIO()
        assert reader.export_ledger(journal) == 5
        if threads[0] is not None:
            threads[0].join()
        assert report.exchanges == 5
        assert report.transactions == 5


@pytest.mark.parametrize("kind", [kind for kind in BACKENDS if kind != "memory"])
def test_a_catch_up_under_which_another_process_begins_a_rebuild_applies_the_whole_log(
    tmp_path: Path, kind: str
) -> None:
    """Between two batches of a long catch-up (the first report after a
    large import), another process's rebuild began and was killed before
    its first batch: the catch-up's next batch found no tables (a driver's
    error). It finds them empty, and applies the whole log from there."""
    opener = open_store(kind, tmp_path)
    with opener() as tb, opener() as other:
        _bank_of_two(tb)
        for n in range(30):
            tb.record_exchange("r", "a", "b", minutes=30 + n, actor=ACTOR, occurred_on="2026-02-01")
        begun: list[int] = []

        def then_a_rebuild(applied: int) -> None:
            if not begun:
                begun.append(applied)
                _begin_rebuild(other.read_model, "begun")

        tb.read_model.catch_up(batch_size=10, progress=then_a_rebuild)
        assert begun == [10]
        assert tb.read_model.position() == tb.read_model.log_end()
        tables = tb.read_model.tables()
        tb.read_model.rebuild()
        assert tb.read_model.tables() == tables
        assert tb.report("r").exchanges == 30


def test_a_read_that_finds_a_rebuild_begun_each_time_gives_up() -> None:
    """Three times a new rebuild between the catch-up and the snapshot: a
    named error, not a loop without end."""
    with timebank.open("memory://") as tb:
        _bank_of_two(tb)
        tb.record_exchange("r", "a", "b", "1", actor=ACTOR, occurred_on="2026-02-01")
        caught_up = tb._caught_up
        begun: list[int] = []

        def then_a_rebuild() -> timebank.ReadModel:
            model = caught_up()
            begun.append(1)
            _begin_rebuild(model, "begun")
            return model

        tb._caught_up = then_a_rebuild  # type: ignore[method-assign]
        with pytest.raises(timebank.errors.StorageError) as raised:
            tb.report("r")
        assert str(raised.value) == (
            "the read model :memory: was rebuilt by another process while it was read,"
            " 3 times; try again"
        )
        assert len(begun) == 3


@pytest.mark.parametrize("kind", BACKENDS)
def test_threads_of_one_timebank_catch_its_read_model_up_and_report_from_it(
    tmp_path: Path, kind: str
) -> None:
    """docs/api.md: an app keeps the read model caught up from threads of its
    own while other threads record and report, on one Timebank. They shared
    the read model's connection without taking turns, and failed ("cannot
    start a transaction within a transaction", "not an error", a table that
    was not there)."""
    with open_store(kind, tmp_path)() as tb:
        _bank_of_two(tb)
        failures: list[BaseException] = []
        done = threading.Event()
        figures: list[int] = []

        def keep(run: Callable[[], object]) -> Callable[[], None]:
            def loop() -> None:
                try:
                    while not done.is_set():
                        run()
                except BaseException as e:  # kept, to assert on
                    failures.append(e)

            return loop

        recorded: list[int] = []

        def record() -> None:  # 80 exchanges, and on until three reports ran beside them
            try:
                while len(recorded) < 80 or (len(figures) < 3 and len(recorded) < 2_000):
                    tb.record_exchange("r", "a", "b", minutes=30, actor=ACTOR,
                                       occurred_on="2026-02-01")  # fmt: skip
                    recorded.append(1)
                    time.sleep(0.002)  # the other threads' turn
            except BaseException as e:
                failures.append(e)
            done.set()

        threads = [
            threading.Thread(target=record),
            threading.Thread(target=keep(lambda: tb.read_model.catch_up(batch_size=7))),
            threading.Thread(target=keep(tb.read_model.behind)),
            threading.Thread(target=keep(lambda: figures.append(tb.report("r").exchanges))),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert failures == []
        assert len(figures) >= 3  # the reports ran beside the catch-ups
        assert figures == sorted(figures)  # each saw the whole log, as it grew
        assert tb.report("r").exchanges == len(recorded)
        assert tb.audit(read_model="full").ok


def test_a_read_model_kept_after_its_store_is_closed_says_so() -> None:
    tb = timebank.open("memory://")
    _bank_of_two(tb)
    model = tb.read_model
    assert model.catch_up() > 0
    tb.close()
    for call in (model.catch_up, model.position, model.rebuild, model.tables):
        with pytest.raises(timebank.errors.StoreClosed) as raised:
            call()
        assert str(raised.value) == (
            "the read model :memory: was closed with its store: open the store again"
        )
    model.close()  # again: nothing


def test_the_read_models_of_two_stores_on_one_postgres_server_take_no_turns_together(
    tmp_path: Path,
) -> None:
    """The turns are a schema's: a council's catch-up does not wait while
    another store's, in another schema of the same database, holds its turn."""
    if POSTGRES_URL is None:
        pytest.skip("no PostgreSQL server (CI always has one)")
    with open_store("postgres", tmp_path)() as one, open_store("postgres", tmp_path)() as other:
        one.create_bank("r", name="R", actor=ACTOR, opened_on="2026-01-01")
        applied: list[int] = []
        with other.read_model.db.exclusive():  # the other store's turn, held
            thread = threading.Thread(target=lambda: applied.append(one.read_model.catch_up()))
            thread.start()
            thread.join(timeout=30)
            waited = thread.is_alive()
        thread.join()
        assert not waited
        assert applied == [one.read_model.log_end()]


def test_a_catch_up_that_waits_too_long_for_its_turn_is_a_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catch-up waits for another writer of the read model (30 s by
    default), then gives up with a named error, having written nothing; the
    next one, once the other is done, applies everything."""
    import sqlite3

    from timebank.readmodel import _db

    # 1.5 s: an SQLite built without usleep (scripts/lowest's) waits in whole
    # seconds, and not at all for a timeout under one
    monkeypatch.setattr(_db, "BUSY_TIMEOUT_S", 1.5)
    url = f"sqlite:///{tmp_path / 's.db'}"
    with timebank.open(url) as tb:
        _bank_of_two(tb)
        assert tb.read_model.catch_up() > 0
        tb.record_exchange("r", "a", "b", "1", actor=ACTOR, occurred_on="2026-02-01")
        position = tb.read_model.position()
        other = sqlite3.connect(tmp_path / "s.reports.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer, holding its turn
        started = time.monotonic()
        with pytest.raises(timebank.errors.StorageError) as raised:
            tb.read_model.catch_up()
        assert time.monotonic() - started >= 0.9  # it waited first
        assert str(raised.value).startswith(
            f"cannot write the read model {tmp_path / 's.reports.db'}"
        )
        assert "locked" in str(raised.value)
        other.execute("ROLLBACK")
        other.close()
        assert tb.read_model.position() == position  # nothing written
        assert tb.report("r").exchanges == 1


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_postgres_catch_up_that_waits_too_long_for_its_turn_is_a_storage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same on PostgreSQL, where the turn is an advisory lock: behind a
    catch-up stopped in its transaction, every report waited for ever."""
    import psycopg

    from timebank.readmodel import _db

    assert POSTGRES_URL is not None
    monkeypatch.setattr(_db, "BUSY_TIMEOUT_S", 1)
    url = new_postgres_schema()
    schema = postgres_schema(url)
    with timebank.open(url) as tb, psycopg.connect(POSTGRES_URL) as other:
        _bank_of_two(tb)
        assert tb.read_model.catch_up() > 0
        tb.record_exchange("r", "a", "b", "1", actor=ACTOR, occurred_on="2026-02-01")
        position = tb.read_model.position()
        # another process's catch-up, holding its turn in an open transaction
        other.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"timebank:readmodel:{schema}",)
        )
        started = time.monotonic()
        with pytest.raises(timebank.errors.StorageError) as raised:
            tb.report("r")
        assert time.monotonic() - started >= 0.9  # it waited first
        assert str(raised.value) == (
            f"cannot write the read model {tb.read_model.location}: another process has had"
            " its turn for 1 s (catching it up)"
        )
        other.rollback()
        assert tb.read_model.position() == position  # nothing written
        assert tb.report("r").exchanges == 1
        # a catch-up's own statements are not held to that wait
        with tb.read_model.db.exclusive():
            assert tb.read_model.db.execute("SHOW lock_timeout") == [("0",)]


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_a_postgres_rebuild_waits_a_while_for_readers_and_holds_up_none_of_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rebuild drops the read model's tables, which waits for every open
    transaction that has read them: behind a long export, or a connection
    left in a transaction, it waited for ever, with every report of every
    process queued behind it. It asks in short tries, so that the reads of
    others are never held up for long (nor deadlocked with it), and gives up
    after a while, having changed nothing."""
    import psycopg

    from timebank.readmodel import _db
    from timebank.readmodel._schema import TABLES

    assert POSTGRES_URL is not None
    monkeypatch.setattr(_db, "TABLES_LOCK_S", 4)
    url = new_postgres_schema()
    with timebank.open(url) as tb, psycopg.connect(POSTGRES_URL) as reader:
        _bank_of_two(tb)
        tb.record_exchange("r", "a", "b", "1", actor=ACTOR, occurred_on="2026-02-01")
        assert tb.read_model.catch_up() > 0
        tables = tb.read_model.tables()
        # another process's report, its read snapshot open after a first query
        reader.execute(f'SET search_path TO "{postgres_schema(url)}"')
        reader.execute("SELECT count(*) FROM rm_position").fetchall()
        outcome: list[object] = []

        def rebuild() -> None:
            try:
                outcome.append(tb.read_model.rebuild())
            except BaseException as e:  # kept, to assert on
                outcome.append(e)

        thread = threading.Thread(target=rebuild)
        started = time.monotonic()
        thread.start()
        # the rebuild asks for the tables last first: rm_position, the table
        # read above, comes last, so it holds the others while it waits for it
        for name in reversed(list(TABLES)):
            time.sleep(0.15)
            asked = time.monotonic()
            reader.execute(f"SELECT count(*) FROM {name}").fetchall()
            assert time.monotonic() - asked < 1, name  # one try (0.2 s), not the whole wait
        assert thread.is_alive()  # all that while, it was still asking
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert time.monotonic() - started >= 3.9
        assert [str(e) for e in outcome] == [
            f"cannot rebuild the read model {tb.read_model.location}: another process has been"
            " reading its tables for 4 s (a long export, or a transaction left open)"
        ]
        assert isinstance(outcome[0], timebank.errors.StorageError)
        reader.rollback()
        assert tb.read_model.tables() == tables  # nothing dropped
        assert tb.read_model.rebuild() == tb.read_model.log_end()
        assert tb.read_model.tables() == tables
        # the catch-up's own statements are not held to the tries' wait
        with tb.read_model.db.exclusive():
            tb.read_model.db.take_tables(["rm_entries"])
            assert tb.read_model.db.execute("SHOW lock_timeout") == [("0",)]


def test_a_read_model_file_another_connection_holds_opens_once_it_is_let_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a read model file switches it to WAL, which needs a lock that
    another connection may hold (another process opening it at the same
    moment): it is asked again until the busy timeout, then a named error."""
    import sqlite3

    from timebank.readmodel import _db

    monkeypatch.setattr(_db, "BUSY_TIMEOUT_S", 1.5)  # whole seconds: see the test above
    path = tmp_path / "s.reports.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE held (a)")
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(timebank.errors.StorageError) as raised:
        _db.SqliteReadModelDB(path)
    assert str(raised.value).startswith(f"cannot open the read model {path}: ")
    letting_go = threading.Timer(0.5, lambda: other.execute("ROLLBACK"))
    letting_go.start()
    db = _db.SqliteReadModelDB(path)
    letting_go.join()
    assert db.execute("PRAGMA journal_mode") == [("wal",)]
    db.close()
    other.close()


def test_a_bad_period_is_refused(tb: timebank.Timebank, bank: str) -> None:
    with pytest.raises(InvalidInput, match="starts"):
        tb.report(bank, start="2026-05-01", end="2026-04-01")
    with pytest.raises(InvalidInput, match="starts"):
        tb.entries(bank, start="2026-05-01", end="2026-04-01")
    with pytest.raises(timebank.errors.BankNotFound):
        tb.report("nowhere")
    with pytest.raises(timebank.errors.BankNotFound):
        tb.entries("nowhere")
    for limit, offset in ((0, 0), (100_001, 0), (10, -1)):
        with pytest.raises(InvalidInput, match=r"limit|offset"):
            tb.entries(bank, limit=limit, offset=offset)


def test_pages_after_an_entry_stay_put_when_an_earlier_dated_entry_comes_between(
    tb: timebank.Timebank, tree: str
) -> None:
    """docs/api.md: a page by ``offset`` repeats a row when an entry with an
    earlier date is recorded between pages; a page by ``after`` goes on
    right after the last row read, and shows a later-dated newcomer."""
    days = ["2026-03-01", "2026-03-01", "2026-03-02", "2026-03-02", "2026-03-03", "2026-03-03"]
    for n, day in enumerate(days):  # recorded out of date order: seq is not date order
        tb.record_exchange(tree, "ann", "bob", "1:00", actor=ACTOR, occurred_on=day,
                           entry_id=f"e{n}")  # fmt: skip
    tb.record_exchange(tree, "bob", "cat", "1:00", actor=ACTOR, occurred_on="2026-03-01",
                       entry_id="late-01")  # fmt: skip
    before = [e.entry_id for e in tb.entries(tree)]
    assert before == ["e0", "e1", "late-01", "e2", "e3", "e4", "e5"]
    first = tb.entries(tree, limit=3)
    assert [e.entry_id for e in first] == before[:3]
    tb.record_exchange(tree, "cat", "ann", "1:00", actor=ACTOR, occurred_on="2026-02-20",
                       entry_id="newcomer-early")  # fmt: skip
    tb.record_exchange(tree, "cat", "ann", "1:00", actor=ACTOR, occurred_on="2026-03-02",
                       entry_id="newcomer-later")  # fmt: skip
    by_offset = tb.entries(tree, limit=3, offset=3)
    assert by_offset[0].entry_id == first[-1].entry_id  # why `after` is there
    second = tb.entries(tree, limit=3, after=first[-1].entry_id)
    assert [e.entry_id for e in second] == ["e2", "e3", "newcomer-later"]
    third = tb.entries(tree, limit=3, after=second[-1].entry_id)
    assert [e.entry_id for e in third] == ["e4", "e5"]
    # the last row of a page is the only place to go on from; none is after the end
    assert tb.entries(tree, after="e5") == []
    # within a period, and over a tree with its mini banks
    assert [e.entry_id for e in tb.entries(tree, start="2026-03-02", end="2026-03-02",
                                           after="e3")] == ["newcomer-later"]  # fmt: skip
    hub = f"{tree}/hub"
    tb.record_exchange(hub, "hal", "ann", "1:00", actor=ACTOR, occurred_on="2026-03-02",
                       entry_id="in-hub")  # fmt: skip
    assert [e.entry_id for e in tb.entries(tree, rollup=True, after="in-hub")] == ["e4", "e5"]
    assert [e.entry_id for e in tb.entries(hub, after="in-hub")] == []


@settings(max_examples=60)
@given(data=st.data())
def test_pages_after_the_last_row_repeat_and_skip_nothing_whatever_is_recorded_between(
    data: st.DataObject,
) -> None:
    """Entries recorded between pages on any day, pages of any size: read
    by ``after``, every row of the list as it was before the first page
    comes once, in the list's order, and an entry recorded between pages
    comes exactly when it sorts after the row the next page went on from."""
    with timebank.Timebank(timebank.storage.memory.MemoryBackend(), clock=_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        for member in ("ann", "bob", "cat"):
            tb.join("b", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
        days = st.integers(0, 20).map(lambda n: date(2026, 3, 1) + timedelta(days=n))
        pairs = st.sampled_from([("ann", "bob"), ("bob", "cat"), ("cat", "ann")])

        def record(entry_id: str) -> None:
            giver, taker = data.draw(pairs, label="pair")
            tb.record_exchange("b", giver, taker, "0:15", actor=ACTOR, entry_id=entry_id,
                               occurred_on=data.draw(days, label=entry_id))  # fmt: skip

        for n in range(data.draw(st.integers(0, 25), label="entries")):
            record(f"e{n}")
        before = [e.entry_id for e in tb.entries("b")]
        size = data.draw(st.integers(1, 4), label="page size")
        rows: list[str] = []
        between: list[tuple[str, str]] = []  # (recorded between pages, the row paged after)
        while True:
            page = tb.entries("b", limit=size, after=rows[-1] if rows else None)
            rows += [e.entry_id for e in page]
            if len(page) < size:
                break
            for _ in range(data.draw(st.integers(0, 2), label="recorded between")):
                between.append((f"n{len(between)}", rows[-1]))
                record(between[-1][0])
        assert len(rows) == len(set(rows))
        assert [r for r in rows if r in set(before)] == before
        now = [e.entry_id for e in tb.entries("b")]
        place = {entry_id: i for i, entry_id in enumerate(now)}
        assert rows == sorted(rows, key=place.__getitem__)
        for newcomer, cursor in between:
            assert (newcomer in rows) == (place[newcomer] > place[cursor]), (newcomer, cursor)


def test_a_page_after_an_entry_not_in_the_list_is_refused(tb: timebank.Timebank, tree: str) -> None:
    hub = f"{tree}/hub"
    tb.record_exchange(tree, "ann", "bob", "1:00", actor=ACTOR, occurred_on="2026-03-01",
                       entry_id="root-1")  # fmt: skip
    tb.record_exchange(hub, "hal", "ann", "1:00", actor=ACTOR, occurred_on="2026-03-01",
                       entry_id="hub-1")  # fmt: skip
    refused = {
        "no entry 'gone' to list": lambda: tb.entries(tree, after="gone"),
        "is of 'riverside/hub', not of 'riverside':": lambda: tb.entries(tree, after="hub-1"),
        "outside the list's period": lambda: tb.entries(tree, start="2026-03-02",
                                                        after="root-1"),
        "not of 'riverside/hub'": lambda: tb.entries(hub, rollup=True, after="root-1"),
    }  # fmt: skip
    for message, call in refused.items():
        with pytest.raises(timebank.errors.EntryNotFound, match=re.escape(message)):
            call()
    with pytest.raises(InvalidInput, match="offset or after, not both"):
        tb.entries(tree, offset=1, after="root-1")
    for wrong in ("no spaces", "", 7):
        with pytest.raises(InvalidInput, match="entry id"):
            tb.entries(tree, after=wrong)  # type: ignore[arg-type]
    assert [e.entry_id for e in tb.entries(tree, rollup=True, after="root-1")] == ["hub-1"]


@pytest.mark.parametrize("flag", ["false", 0, None])
def test_a_yes_or_no_given_as_anything_else_is_refused(
    tb: timebank.Timebank, tree: str, flag: object
) -> None:
    """``rollup="false"`` (a web form's value) rolled the report up, Python
    taking the text as true; every yes-or-no of the reports, figures, audit
    and imports must be True or False."""
    calls: list[Callable[[], object]] = [
        lambda: tb.report(tree, rollup=flag),  # type: ignore[arg-type]
        lambda: tb.report(tree, by_area=flag),  # type: ignore[arg-type]
        lambda: tb.member_activity(tree, rollup=flag),  # type: ignore[arg-type]
        lambda: tb.inactive_members(tree, rollup=flag),  # type: ignore[arg-type]
        lambda: tb.members_with_one_connection(tree, rollup=flag),  # type: ignore[arg-type]
        lambda: tb.figures(tree, rollup=flag),  # type: ignore[arg-type]
        lambda: tb.entries(tree, rollup=flag),  # type: ignore[arg-type]
        lambda: tb.entries(tree, flagged=flag),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(InvalidInput, match="must be True or False"):
            call()
    with pytest.raises(InvalidInput, match='read_model must be True, False or "full"'):
        tb.audit(read_model=flag)  # type: ignore[arg-type]


def test_an_event_the_read_model_does_not_know_stops_it_loudly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    url = f"sqlite:///{tmp_path / 's.db'}"
    with timebank.open(url) as tb:
        tb.create_bank("r", name="R", actor=ACTOR, opened_on="2026-01-01")
    with sqlite3.connect(tmp_path / "s.db") as db:
        db.execute(
            "INSERT INTO stored_events VALUES ('x', 1, 'timebank.domain.bank:Bank.Unheard', ?)",
            (b"{}",),
        )
    with timebank.open(url) as tb, pytest.raises(UnknownEvent, match="Unheard"):
        tb.read_model.catch_up()


def test_members_near_a_limit(tb: timebank.Timebank, bank: str) -> None:
    policy = tb.policy(bank)
    limited = timebank.Policy.from_dict(
        {**policy.to_dict(), "individual": {"lowest_minutes": -600, "highest_minutes": 600}}
    )
    tb.set_policy(bank, limited, actor=ACTOR)
    tb.record_exchange(bank, "ann", "bob", "9:00", actor=ACTOR, occurred_on="2026-02-01")
    near = tb.members_near_limit(bank, within="1:00")
    assert [(n.member, n.side, n.headroom_minutes) for n in near] == [
        ("ann", "highest", 60), ("bob", "lowest", 60),
    ]  # fmt: skip
    assert tb.members_near_limit(bank, within="0:30") == []
    assert tb.members_near_limit(bank, within=1) == near  # an int is hours, as everywhere
    assert tb.members_near_limit(bank, within=Decimal("0.5")) == []
    assert tb.members_near_limit(bank, within="0") == []
    tb.record_exchange(bank, "ann", "bob", "1:00", actor=ACTOR, occurred_on="2026-02-02")
    at_limit = [("ann", "highest", 0), ("bob", "lowest", 0)]
    for zero in ("0", "0:00", 0):  # only those at or beyond a limit
        near = tb.members_near_limit(bank, within=zero)
        assert [(n.member, n.side, n.headroom_minutes) for n in near] == at_limit
    for wrong in ("-1", -1, 1.5, "soon"):
        with pytest.raises(InvalidAmount):
            tb.members_near_limit(bank, within=wrong)


def test_flagged_entries_are_listed_in_the_banks_whose_limits_they_passed(
    tb: timebank.Timebank, tree: str
) -> None:
    """What a coordinator reviews after an import in flag mode: an entry past
    a limit is listed with its flags in the bank whose limit it passed (an
    inter-bank entry by the side that did), and each row is the entry that
    ``entry()`` reads back."""
    hub = f"{tree}/hub"
    for bank in (tree, hub):
        flag_mode = timebank.Policy.from_dict({**tb.policy(bank).to_dict(), "limit_mode": "flag",
                                               "individual": {"lowest_minutes": -60,
                                                              "highest_minutes": None}})  # fmt: skip
        tb.set_policy(bank, flag_mode, actor=ACTOR)
    tb.record_exchange(tree, "ann", "bob", "2:00", actor=ACTOR, occurred_on="2026-03-02",
                       entry_id="past-root")  # fmt: skip
    tb.record_exchange(tree, "cat", "hal", "3:00", actor=ACTOR, occurred_on="2026-03-01",
                       receiver_bank=hub, entry_id="past-hub")  # fmt: skip
    tb.record_exchange(tree, "cat", "org", "0:30", actor=ACTOR, occurred_on="2026-03-01",
                       entry_id="within")  # fmt: skip
    everything = tb.entries(tree, rollup=True)
    assert [e.entry_id for e in everything] == ["past-hub", "within", "past-root"]
    for row in everything:  # each as the ledger recorded it
        entry = tb.entry(row.entry_id)
        assert (row.kind, row.occurred_on, row.minutes, row.provider, row.receiver, row.actor) == (
            entry.kind, entry.occurred_on, entry.minutes, entry.provider, entry.receiver,
            entry.actor,
        )  # fmt: skip
        assert row.recorded_at == entry.recorded_at
        assert row.to_dict()["hours"] == timebank.format_hours(row.minutes)
    flagged = {e.entry_id: e.flags for e in tb.entries(tree, rollup=True, flagged=True)}
    assert flagged == {"past-root": ("limit:bob:-60",), "past-hub": ("limit:hal:-60",)}
    # a page of the flagged list goes on after any entry of the list unflagged
    assert [e.entry_id for e in tb.entries(tree, rollup=True, flagged=True, after="within")] == [
        "past-root"
    ]
    # past-hub passed the hub's limit, not the root bank's
    assert [(e.entry_id, e.flags) for e in tb.entries(tree, flagged=True)] == [
        ("past-root", ("limit:bob:-60",))
    ]
    assert [(e.entry_id, e.flags) for e in tb.entries(hub, flagged=True)] == [
        ("past-hub", ("limit:hal:-60",))
    ]
    assert [e.entry_id for e in tb.entries(hub)] == ["past-hub"]  # listed in both its banks
    assert [e.flags for e in tb.entries(tree) if e.entry_id == "past-hub"] == [()]
    assert tb.entries(tree, start="2026-03-02") == tb.entries(tree)[-1:]
    assert tb.entries(tree, end="2026-03-01", flagged=True) == []


def test_an_entry_flagged_on_both_sides_is_listed_once_from_the_flagged_rows_alone(
    tb: timebank.Timebank, tree: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An inter-bank entry past a limit in each of its banks is one row of
    the tree's flagged list, with both flags; on SQLite the list is read
    through the two partial indexes of flagged rows, not the index by date
    (which reads every row of the period)."""
    hub = f"{tree}/hub"
    for bank, limits in ((tree, {"lowest_minutes": None, "highest_minutes": 60}),
                         (hub, {"lowest_minutes": -60, "highest_minutes": None})):  # fmt: skip
        flag_mode = timebank.Policy.from_dict({**tb.policy(bank).to_dict(), "limit_mode": "flag",
                                               "individual": limits})  # fmt: skip
        tb.set_policy(bank, flag_mode, actor=ACTOR)
    # cat, of the root bank, gives past its highest; hal, of the hub, is
    # helped past his lowest
    for provider, receiver, hours, day, entry_id in (
        ("cat", "hal", "2:00", 1, "both"),
        ("bob", "ann", "0:30", 2, "plain"),
        ("cat", "bob", "1:00", 2, "root-side"),
        ("ann", "hal", "0:30", 2, "hub-side"),
        ("cat", "hal", "2:00", 3, "then"),
    ):
        bank_of = {"bob": tree, "cat": tree, "ann": hub, "hal": hub}
        tb.record_exchange(bank_of[provider], provider, receiver, hours, actor=ACTOR,
                           receiver_bank=None if bank_of[provider] == bank_of[receiver]
                           else bank_of[receiver],
                           occurred_on=f"2026-03-0{day}", entry_id=entry_id)  # fmt: skip
    both = ("limit:cat:60", "limit:hal:-60")
    assert {e.entry_id: e.flags for e in tb.entries(tree, rollup=True)} == {
        "both": both, "plain": (), "root-side": ("limit:cat:60",),
        "hub-side": ("limit:hal:-60",), "then": both,
    }  # fmt: skip
    asked: list[tuple[str, tuple[object, ...]]] = []
    real = type(tb.read_model.db).execute

    def execute(db, sql, params=()):  # type: ignore[no-untyped-def]
        asked.append((sql, tuple(params)))
        return real(db, sql, params)

    monkeypatch.setattr(type(tb.read_model.db), "execute", execute)
    listed = tb.entries(tree, rollup=True, flagged=True)
    assert [(e.entry_id, e.flags) for e in listed] == [
        ("both", both), ("root-side", ("limit:cat:60",)), ("hub-side", ("limit:hal:-60",)),
        ("then", both),
    ]  # fmt: skip
    assert [e.entry_id for e in tb.entries(tree, rollup=True, flagged=True, after="plain")] == [
        "root-side", "hub-side", "then"
    ]  # fmt: skip
    # each bank by the side that passed its limit
    assert [e.entry_id for e in tb.entries(tree, flagged=True)] == ["both", "root-side", "then"]
    assert [e.entry_id for e in tb.entries(hub, flagged=True, limit=1, offset=1)] == ["hub-side"]
    if tb.read_model.db.dialect == "sqlite":
        sql, params = next((q, p) for q, p in asked if "UNION" in q)
        plan = " ".join(str(r[-1]) for r in real(tb.read_model.db,
                                                 f"EXPLAIN QUERY PLAN {sql}", params))  # fmt: skip
        assert "INDEX rm_entries_flagged" in plan, plan
        assert "INDEX rm_entries_receiver_flagged" in plan, plan
        assert "rm_entries_by_date" not in plan, plan
        # a read model of a release without them gets them at its next
        # catch-up, and is not rebuilt for them
        db = tb.read_model.db
        for name in ("rm_entries_flagged", "rm_entries_receiver_flagged"):
            db.execute(f"DROP INDEX {name}")
        position = tb.read_model.position()
        assert tb.read_model.catch_up() == 0
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"rm_entries_flagged", "rm_entries_receiver_flagged"} <= indexes
        assert tb.read_model.position() == position
        assert tb.entries(tree, rollup=True, flagged=True) == listed


def test_a_catch_up_killed_at_any_moment_resumes_exactly_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import random
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    url = f"sqlite:///{tmp_path / 's.db'}"
    with timebank.open(url) as tb:
        tb.create_bank("r", name="R", actor=ACTOR, opened_on="2026-01-01")
        for m in ("a", "b", "c"):
            tb.join("r", m, kind="individual", actor=ACTOR, joined_on="2026-01-01")
        for n in range(600):
            tb.record_exchange("r", "abc"[n % 3], "abc"[(n + 1) % 3], minutes=30, actor=ACTOR,
                               occurred_on=f"2026-02-{1 + n % 28:02d}", entry_id=f"e{n}")  # fmt: skip
            if n % 50 == 7:
                tb.reverse(f"e{n}", actor=ACTOR, reversal_id=f"r{n}", occurred_on="2026-03-01")
    script = (
        "import sys, timebank\n"
        "with timebank.open(sys.argv[1]) as tb:\n"
        "    tb.read_model.rebuild(batch_size=2)\n"
        "    print('done')\n"
    )
    with timebank.open(url) as tb:
        last = tb._app.recorder.max_notification_id()
        tb.read_model.catch_up()
        watched = tb.read_model.location
    # The kill is timed by what the child has committed, not by a guess at
    # how long it takes (a busy CI machine made such guesses land before the
    # child started or after it finished). The parent watches the position
    # from its own connection (WAL: readers never wait) and kills as soon as
    # it passes a random target, so the signal lands at an arbitrary point of
    # whatever transaction the child is in by then.
    watcher = sqlite3.connect(f"file:{watched}?mode=ro", uri=True, isolation_level=None)

    def committed() -> int:
        try:
            return int(watcher.execute("SELECT notification_id FROM rm_position").fetchone()[0])
        except (sqlite3.OperationalError, TypeError):  # dropped, or not yet created
            return 0

    def killed_part_way(target: int) -> bool:
        """Start a rebuild and kill it once it has committed past ``target``;
        False when it finished first (its whole window passed while this
        process was not scheduled, as on a busy CI machine)."""
        child = subprocess.Popen([sys.executable, "-c", script, url], stdout=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not target <= committed() < last:  # at `last` before the child drops the tables
            if child.poll() is not None:
                return False
            assert time.monotonic() < deadline
            time.sleep(0.0005)
        child.send_signal(signal.SIGKILL)
        child.wait()
        return True

    rng = random.Random(3)
    for _ in range(6):
        target = rng.randint(1, last * 2 // 3)
        # each of the six kills must land part-way: a rebuild that finished
        # first is started again, three times at most
        assert any(killed_part_way(target) for _ in range(3)), "the child always finished first"
        with timebank.open(url) as tb:
            left_at = tb.read_model.position()
            assert target <= left_at < last  # killed part-way through the log
            tb.read_model.catch_up(batch_size=7)
            assert tb.read_model.position() == last
            resumed = tb.read_model.tables()
            tb.read_model.rebuild()
            assert tb.read_model.tables() == resumed
    watcher.close()


def test_each_bank_names_the_bank_it_sits_in(tb: timebank.Timebank, bank: str) -> None:
    """``rm_banks.parent`` (a documented column) is the bank one level up,
    at every depth, as :meth:`Timebank.banks` says."""
    for mini in ("riverside/hub", "riverside/hub/street"):
        tb.create_bank(mini, name=mini, actor=ACTOR, opened_on="2026-01-01")
    tb.read_model.catch_up()
    rows = tb.read_model.db.execute("SELECT bank, parent FROM rm_banks ORDER BY bank")
    assert [tuple(r) for r in rows] == [
        ("riverside", None), ("riverside/hub", "riverside"),
        ("riverside/hub/street", "riverside/hub"),
    ] == [(b.bank, b.parent) for b in tb.banks()]  # fmt: skip


def test_each_bank_holds_its_policy_as_changed(tb: timebank.Timebank, bank: str) -> None:
    """``rm_banks.policy`` (a documented column, JSON) is the bank's policy
    after each change, as :meth:`Timebank.policy` says."""
    import json

    def stored() -> timebank.Policy:
        tb.read_model.catch_up()
        rows = tb.read_model.db.execute("SELECT policy FROM rm_banks WHERE bank = ?", (bank,))
        return timebank.Policy.from_dict(json.loads(rows[0][0]))

    assert stored() == tb.policy(bank)
    changed = attrs.evolve(tb.policy(bank), entry_minutes_max=600, pending_expiry_days=7)
    tb.set_policy(bank, changed, actor=ACTOR)
    assert stored() == tb.policy(bank) == changed


def test_the_member_tables_follow_leaving_rejoining_and_suspension(
    tb: timebank.Timebank, bank: str
) -> None:
    """``rm_memberships`` holds a member's kind in every period (the export
    writes the period after a rejoining as an organisation, as the first),
    and ``rm_accounts.status`` each member's status now (documented
    columns)."""
    import csv
    import io

    tb.leave(bank, "org", actor=ACTOR, left_on="2026-02-01")
    tb.rejoin(bank, "org", actor=ACTOR, rejoined_on="2026-03-01")
    for member in ("bob", "cat"):
        tb.suspend(bank, member, actor=ACTOR)
    tb.reinstate(bank, "cat", actor=ACTOR)
    tb.leave(bank, "ann", actor=ACTOR, left_on="2026-04-01")
    members, entries = io.StringIO(), io.StringIO()
    tb.export_csv(members, entries)
    assert [
        (r["kind"], r["joined_on"], r["left_on"])
        for r in csv.DictReader(io.StringIO(members.getvalue()))
        if r["member_id"] == "org"
    ] == [("organisation", "2026-01-01", "2026-02-01"), ("organisation", "2026-03-01", "")]
    rows = tb.read_model.db.execute(
        "SELECT account, status FROM rm_accounts WHERE kind != 'pot' AND kind != 'opening'"
    )
    assert dict(rows) == {"ann": "left", "bob": "suspended", "cat": "active", "org": "active"}
    assert tb.audit(read_model="full").findings == ()


def test_the_export_holds_every_membership_and_entry(tb: timebank.Timebank, tree: str) -> None:
    import csv
    import io

    tb.record_exchange(tree, "ann", "bob", "1:00", actor=ACTOR, occurred_on="2026-03-01",
                       entry_id="x1")  # fmt: skip
    tb.record_exchange(tree, "cat", "hal", "0:30", actor=ACTOR, occurred_on="2026-03-02",
                       receiver_bank="riverside/hub", entry_id="x2")  # fmt: skip
    tb.reverse("x1", actor=ACTOR, reversal_id="x1-r", occurred_on="2026-03-03")
    members, entries = io.StringIO(), io.StringIO()
    assert tb.export_csv(members, entries) == (6, 3)
    rows = list(csv.DictReader(io.StringIO(entries.getvalue())))
    assert [(r["entry_id"], r["hours"], r["receiver_bank"]) for r in rows] == [
        ("x1", "1:00", ""), ("x2", "0:30", "riverside/hub"), ("x1-r", "1:00", ""),
    ]  # fmt: skip
