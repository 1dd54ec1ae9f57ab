"""Benchmark of the read model and reports on a SQLite store (issue 5's targets).

    python bench/reports.py                      # 1,000,000 entries, 10,000 members
    python bench/reports.py --store /tmp/r.db    # keep (or reuse) the built store
    python bench/reports.py --quick              # a small store, for a smoke test
    scripts/postgres run -- sh -c 'python bench/reports.py --store /tmp/r.db \
        --postgres "$TIMEBANK_TEST_POSTGRES"'    # also on PostgreSQL

Builds a store through the domain's own rules (1,000 entries per
transaction, as bench/ledger.py does) with a realistic mix: each member
helps a circle of about a dozen neighbours; 2 % pot-funded exchanges,
3 % donations, 1 % gifts, 1 % group exchanges, 0.5 % reversals, twelve
categories, ten years of dates; member ``m0`` (an organisation) takes part
in exactly 1,000 entries. Then measures, on that store:

  - catching the read model up from empty (events per second; target
    >= 100,000/s), after dropping the tables of the store's read model
    (timed apart: together, the two steps are a rebuild);
  - the period report over the whole history (target <= 300 ms), and over
    one year and one month (no target);
  - the same whole-history figures computed at query time from the
    entry, party and membership rows alone (bench/_narrow_report.py; they
    must equal the report's): what a narrower read model, without the
    additive report tables that the catch-up spends most of its time on,
    would cost every report;
  - the statement of ``m0``, 1,000 entries (target <= 20 ms), and the first
    and last 100-line pages of the pot's statement, the longest (no target);
  - a subject access request for ``m0`` (no target);
  - catching up after 1,000 more entries, then after their 1,000
    reversals, five rounds of each: the median and the slowest (no
    target; one sample swings with the read model's log checkpoints);
  - the floor of SQLite itself on this machine, in the same run: the rows
    issue 5 asks the read model to hold for the two-party entries (one row
    an entry, one row a participant, with the index a statement reads by),
    written entirely inside SQLite from the store (no Python per event)
    into a scratch file with the read model's own settings, in events of
    the log per second (the events' fields are extracted into memory
    first, timed apart and not counted). No projector that writes those rows can be faster,
    so the target's ratio to this floor says whether it is reachable here;
  - the same floor for a rebuild written into a fresh file with no journal
    at all (``journal_mode=OFF``, ``synchronous=OFF``, one ``fsync`` at the
    end), the most favourable way a from-empty rebuild could write those
    rows: it says whether building the read model beside the old one and
    swapping the files would make the target reachable.
  - the catch-up with the two-party entries (~97 % of the log) projected
    inside SQLite instead of in Python (bench/_sql_projection.py): their
    fields read with ``json_extract``, every table written with
    ``INSERT … SELECT``, the other events through the projector, batch by
    batch as the catch-up commits. Its tables must equal the read model's
    (the run stops otherwise). It says what the second implementation of
    the projection that moving it into SQLite means would gain.

With ``--postgres URL`` (an empty store), the store is then copied there
(``timebank migrate``) and the read model measured on PostgreSQL: catching
up from empty, the reports, the figures by area and member activity for one
month, the statement of ``m0`` and the rounds of 1,000 entries and reversals
caught up (the targets are SQLite's; these have none).

Each target line prints the ratio of the measured figure to the target.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from _figures import line
from _narrow_report import best_of, narrow_report, report_figures
from _sql_projection import differing_rows, project_in_sql
from eventsourcing.utils import get_topic

import timebank
from timebank._index import index_update
from timebank.domain.bank import Bank, recorded_entry
from timebank.domain.entries import NewEntry
from timebank.domain.values import AccountKind, EntryKind
from timebank.migrate import migrate
from timebank.readmodel import SqliteReadModelDB
from timebank.readmodel._projector import EVERY_ACCOUNT, settle_connections

ACTOR = "bench"
BANK = "bench"
OPENED = date(2016, 1, 1)
DAYS = 3650
CATEGORIES = (
    "gardening", "shopping", "befriending", "diy", "cooking", "computer-help",
    "transport", "admin", "childcare", "music", "crafts", "cleaning",
)  # fmt: skip
TARGETS = {"catch_up_events_per_s": 100_000, "report_ms": 300.0, "statement_ms": 20.0}


def clock() -> datetime:
    return datetime(2026, 6, 1, 12, tzinfo=UTC)


def build(url: str, members: int, entries: int, hub_entries: int, batch: int = 1000) -> float:
    """Build the store; seconds taken."""
    rng = random.Random(5)
    started = time.perf_counter()
    today = clock().date()
    with timebank.open(url, clock=clock) as tb:
        tb.create_bank(BANK, name="Bench", actor=ACTOR, opened_on=OPENED)
        app = tb._app
        for start in range(0, members, batch):
            ledger = app.bank(BANK)
            for i in range(start, min(start + batch, members)):
                kind = AccountKind.ORGANISATION if i % 25 == 0 else AccountKind.INDIVIDUAL
                joined = OPENED + timedelta(days=(i * DAYS // members) // 2)
                ledger.join(f"m{i}", kind, joined, ACTOR, today)
            app.save_changes(ledger, index=index_update([ledger], BANK))
        pot = 0
        reversible: list[Any] = []
        hub_every = max(1, entries // hub_entries)
        n = 0
        while n < entries:
            ledger = app.bank(BANK)
            to_reverse, reversible = reversible[:5], []
            for event in to_reverse:
                if n >= entries:
                    break
                original = recorded_entry(event, BANK)
                new = NewEntry(
                    entry_id=f"r{n}", bank=BANK, kind=EntryKind.REVERSAL,
                    minutes=original.minutes, occurred_on=original.occurred_on,
                    reverses=original.entry_id,
                )  # fmt: skip
                ledger.reverse(new, original, ACTOR, today)
                n += 1
            for _ in range(batch - len(to_reverse)):
                if n >= entries:
                    break
                day = OPENED + timedelta(days=DAYS * n // entries)
                hub_turn = n % hub_every == hub_every // 2 and n // hub_every < hub_entries
                a = 0 if hub_turn else rng.randrange(1, members)
                b = (a + rng.randint(1, 12)) % members or 1
                if day < max(_joined(a, members), _joined(b, members)):
                    day = max(_joined(a, members), _joined(b, members))
                minutes = rng.choice((30, 60, 60, 90, 120, 180))
                category = rng.choice(CATEGORIES)
                roll = rng.random()
                entry_id = f"e{n}"
                if roll < 0.01 and a != 0:
                    c = (b + rng.randint(1, 12)) % members or 2
                    if c in (a, b):
                        c = (c + 13) % members or 3
                    day = max(day, _joined(c, members))
                    participants = tuple(
                        sorted([(f"m{a}", minutes), (f"m{b}", minutes)])
                        + sorted([(f"m{c}", -minutes * 2)])
                    )
                    new = NewEntry(
                        entry_id=entry_id, bank=BANK, kind=EntryKind.GROUP_EXCHANGE,
                        minutes=minutes * 2, occurred_on=day, category=category,
                        participants=participants,
                    )  # fmt: skip
                    ledger.record_group(new, ACTOR, today)
                else:
                    if roll < 0.04 and a != 0:
                        kind, receiver, category2 = EntryKind.DONATION, None, None
                    elif roll < 0.06 and pot >= minutes:
                        kind, receiver, category2 = EntryKind.POT_EXCHANGE, f"m{b}", category
                    elif roll < 0.07 and a != 0:
                        kind, receiver, category2 = EntryKind.GIFT, f"m{b}", None
                    else:
                        kind, receiver, category2 = EntryKind.EXCHANGE, f"m{b}", category
                    new = NewEntry(
                        entry_id=entry_id, bank=BANK, kind=kind, minutes=minutes,
                        occurred_on=day, provider=f"m{a}", receiver=receiver,
                        category=category2,
                    )  # fmt: skip
                    ledger.record(new, ACTOR, today)
                    pot += minutes if kind is EntryKind.DONATION else 0
                    pot -= minutes if kind is EntryKind.POT_EXCHANGE else 0
                    if kind is EntryKind.EXCHANGE and a != 0 and rng.random() < 0.005:
                        reversible.append(ledger.pending_events[-1])
                n += 1
            app.save_changes(ledger, index=index_update([ledger], BANK))
    return time.perf_counter() - started


def _joined(i: int, members: int) -> date:
    return OPENED + timedelta(days=(i * DAYS // members) // 2)


#: Events of the entries the floor writes rows for (the two-party kinds; a
#: group, a reversal and the aggregate tables would only add to its time).
FLOOR_TOPICS = tuple(
    get_topic(cls)
    for cls in (Bank.ExchangeRecorded, Bank.PotExchangeRecorded, Bank.DonationMade, Bank.GiftGiven)
)


def sql_floor(store: Path, scratch: Path, *, journal: bool = True) -> tuple[float, float, int, int]:
    """The floor of writing an entry row and a row per participant for the
    store's two-party entries, with the statement's index built after the
    rows, in one transaction, entirely inside SQLite (no Python per event).

    Each event's fields are first extracted once with ``json_extract`` into
    a table in memory; that is timed apart, because a projector could parse
    faster. The floor is the rest: copying those rows into the file, the
    party rows selected from them, the indexes, the commit. ``journal``
    False: a fresh file with no journal and no syncs but one ``fsync`` at
    the end (counted). Returns the extraction's seconds, the floor's
    seconds, the entries, and the events in the log."""
    db = SqliteReadModelDB(scratch)  # the read model's own pragmas
    conn = db.conn
    if not journal:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("ATTACH DATABASE ? AS store", (str(store),))
    marks = ", ".join("?" * len(FLOOR_TOPICS))
    started = time.perf_counter()
    conn.execute(
        "CREATE TEMP TABLE staged AS SELECT rowid AS seq,"
        " json_extract(state, '$.entry_id') AS entry_id, topic AS kind,"
        " json_extract(state, '$.occurred_on._data_') AS occurred_on,"
        " json_extract(state, '$.minutes') AS minutes,"
        " json_extract(state, '$.category') AS category,"
        " json_extract(state, '$.provider') AS provider,"
        " json_extract(state, '$.receiver') AS receiver,"
        " json_extract(state, '$.timestamp._data_') AS recorded_at,"
        " json_extract(state, '$.actor') AS actor"
        f" FROM store.stored_events WHERE topic IN ({marks}) ORDER BY rowid",
        FLOOR_TOPICS,
    )
    extracted = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("CREATE TABLE main.floor_entries AS SELECT * FROM staged ORDER BY seq")
    conn.execute(
        "CREATE TABLE main.floor_parties AS"
        " SELECT seq, seq AS entry_seq, ? AS bank, provider AS account, 'provider' AS role,"
        "  minutes, occurred_on, kind, category, 0 AS reversed FROM staged"
        " UNION ALL SELECT seq, seq, ?, coalesce(receiver, '@pot'), 'receiver', -minutes,"
        "  occurred_on, kind, category, 0 FROM staged",
        (BANK, BANK),
    )
    conn.execute("CREATE UNIQUE INDEX floor_entries_by_id ON floor_entries (entry_id)")
    conn.execute(  # the read model's index of an account's lines, as it has it
        "CREATE INDEX floor_parties_by_account ON floor_parties"
        " (bank, account, occurred_on, seq, entry_seq, minutes)"
    )
    conn.execute("COMMIT")
    if not journal:  # what synchronous=OFF left unsynced, once
        descriptor = os.open(scratch, os.O_RDONLY)
        os.fsync(descriptor)
        os.close(descriptor)
    done = time.perf_counter()
    count = int(conn.execute("SELECT count(*) FROM floor_entries").fetchone()[0])
    events = int(conn.execute("SELECT max(rowid) FROM store.stored_events").fetchone()[0])
    db.close()
    return extracted - started, done - extracted, count, events


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median seconds of ``runs`` calls, and the last result."""
    samples = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), result


#: Rounds of new entries, then their reversals, each caught up and timed
#: (two in a smoke test, which checks the lines are printed).
ROUNDS = 5


def catch_up_rounds(
    tb: timebank.Timebank, members: int, later: int, rounds: int, prefix: str = ""
) -> None:
    """What an app's catch-up costs in normal use: ``rounds`` times, ``later``
    new exchanges (between neighbouring members) caught up, then their
    reversals caught up (a reversal queues the spans and connections of the
    pairs and accounts it touches to be settled again). The median of the
    rounds, and the slowest: one sample swings with the read model's
    write-ahead log, which a commit that takes it past
    ``WAL_CHECKPOINT_PAGES`` copies into the file, and with the disk cache
    (docs/performance.md)."""
    spent: dict[str, list[float]] = {"entries": [], "reversals": []}
    for _ in range(rounds):
        run = time.time_ns()  # a reused store gets new ids each run
        ids = [f"late-{run}-{i}" for i in range(later)]
        for i, entry_id in enumerate(ids):
            a, b = f"m{i % (members - 2) + 1}", f"m{i % (members - 2) + 2}"
            tb.record_exchange(BANK, a, b, "1:00", actor=ACTOR, occurred_on="2026-05-01",
                               entry_id=entry_id)  # fmt: skip
        for what in ("entries", "reversals"):
            if what == "reversals":
                for entry_id in ids:
                    tb.reverse(entry_id, actor=ACTOR, occurred_on="2026-05-02")
            started = time.perf_counter()
            applied = tb.read_model.catch_up()
            spent[what].append((time.perf_counter() - started) * 1000)
            assert applied == later, (applied, later)
    for what, samples in spent.items():
        name = f"{prefix}catch up after {later:,} {what}"
        line(f"{name}, median of {rounds}", statistics.median(samples), "ms")
        line(f"{name}, slowest of {rounds}", max(samples), "ms")


def deep_pages(tb: timebank.Timebank, prefix: str = "") -> None:
    """A 100-row page of the whole history's list of entries 90 % of the
    way down, read by ``offset`` and by ``after`` the row before it: the
    same rows, and what each costs."""
    deep = int(tb.read_model.db.execute("SELECT count(*) FROM rm_entries")[0][0] * 0.9)
    by_offset, rows = timed(lambda: tb.entries(BANK, limit=100, offset=deep), 5)
    before = tb.entries(BANK, limit=1, offset=deep - 1)[0].entry_id
    by_after, same = timed(lambda: tb.entries(BANK, limit=100, after=before), 5)
    assert len(rows) == 100, len(rows)
    assert same == rows
    line(f"{prefix}entries, a page of 100 at row {deep:,}, by offset", by_offset * 1000, "ms")
    line(f"{prefix}entries, the same page by after", by_after * 1000, "ms")


def narrow_at_query_time(read_model: str, report: Any) -> None:
    """The same whole-history figures computed at query time from the
    entry, party and membership rows alone (a narrower read model's
    report), which must equal the report's; prints each query's time."""
    figures, seconds = best_of(3, lambda: narrow_report(read_model, BANK, report.start, report.end))
    differ = [k for k, v in report_figures(report).items() if figures[k] != v]
    if differ:
        raise SystemExit(f"the figures computed from the rows differ from the report's: {differ}")
    print(
        "the same figures from the entry and party rows alone (best of 3, equal to the"
        " report's): " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in seconds.items())
    )
    line("report from the rows alone (narrow read model)", sum(seconds.values()) * 1000, "ms",
         TARGETS["report_ms"])  # fmt: skip


def on_postgres(url: str, store: str, members: int, later: int, rounds: int) -> None:
    """Copy the store into the empty PostgreSQL store at ``url``, then time
    its read model there (each line's name starts with ``postgres:``)."""
    started = time.perf_counter()
    with timebank.open(store, clock=clock) as source, timebank.open(url, clock=clock) as target:
        copied = migrate(source, target).events
    print(f"postgres: {copied:,} events copied in {time.perf_counter() - started:.1f} s")
    with timebank.open(url, clock=clock) as tb:
        started = time.perf_counter()
        applied = tb.read_model.catch_up()
        seconds = time.perf_counter() - started
        assert applied == copied, (applied, copied)
        line("postgres: catch up from empty", applied / seconds, "events/s")
        for name, period in (
            ("whole history", {}),
            ("one year", {"start": "2020-01-01", "end": "2020-12-31"}),
            ("one month", {"start": "2020-06-01", "end": "2020-06-30"}),
        ):
            seconds, _ = timed(lambda p=period: tb.report(BANK, **p), 5)
            line(f"postgres: report, {name}", seconds * 1000, "ms")
        month = {"start": "2020-06-01", "end": "2020-06-30"}  # areas: copied profiles
        seconds, _ = timed(lambda: tb.report(BANK, by_area=True, **month), 3)
        line("postgres: report by area, one month", seconds * 1000, "ms")
        seconds, _ = timed(lambda: tb.member_activity(BANK, **month), 3)
        line("postgres: member activity, one month", seconds * 1000, "ms")
        seconds, lines = timed(lambda: tb.statement(BANK, "m0"), 20)
        line(f"postgres: statement of m0 ({len(lines):,} lines)", seconds * 1000, "ms")
        deep_pages(tb, "postgres: ")
        catch_up_rounds(tb, members, later, rounds, "postgres: ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small store (smoke test)")
    parser.add_argument("--store", type=Path, help="SQLite file to build, or reuse if it exists")
    parser.add_argument("--postgres", metavar="URL", help="also measure there (an empty store)")
    args = parser.parse_args()
    # (the smoke test's store: every path taken, in seconds rather than a minute)
    members, entries, hub = (200, 5_000, 100) if args.quick else (10_000, 1_000_000, 1_000)
    later = 200 if args.quick else 1_000  # entries recorded, then reversed, after the catch-up
    rounds = 2 if args.quick else ROUNDS
    with tempfile.TemporaryDirectory() as tmp:
        path = args.store or Path(tmp) / "reports.db"
        url = f"sqlite:///{path}"
        if path.exists():
            print(f"reusing {path}")
        else:
            seconds = build(url, members, entries, hub)
            line("build store", entries / seconds, "entries/s")
        # what a web app's process does on its first request: open the store,
        # and load the bank (its latest snapshot and the events after it)
        started = time.perf_counter()
        with timebank.open(url, create=False) as fresh:
            opened = time.perf_counter() - started
            fresh.balance(BANK, "m0")
            loaded = time.perf_counter() - started - opened
        line("open the store", opened * 1000, "ms")
        line(f"then the first balance ({members:,} members' bank)", loaded * 1000, "ms")
        with timebank.open(url, clock=clock) as tb:
            events = tb._app.recorder.max_notification_id() or 0
            # a rebuild, timed in its two steps: dropping the tables a
            # reused store's read model holds (and making them again, empty,
            # as read_model.rebuild() does), then the catch-up from empty
            # that the target names
            started = time.perf_counter()
            with tb.read_model.db.exclusive():
                tb.read_model._drop()
                tb.read_model._create()
            dropped = time.perf_counter() - started
            started = time.perf_counter()
            applied = tb.read_model.catch_up()
            seconds = time.perf_counter() - started
            caught_up = applied / seconds
            assert applied == events, (applied, events)
            print(
                f"read model: {applied:,} events in {seconds:.2f} s, after {dropped:.2f} s"
                f" dropping the old tables ({tb.read_model.location})"
            )
            line("rebuild (drop, then catch up)", applied / (dropped + seconds), "events/s")
            line("catch up from empty", applied / seconds, "events/s",
                 TARGETS["catch_up_events_per_s"], lower=False)  # fmt: skip
            # the part of it that settles every account's connections, again
            db = tb.read_model.db
            before = db.execute("SELECT * FROM rm_connections ORDER BY bank, account")
            with db.exclusive():
                db.execute("INSERT INTO rm_stale_connections VALUES (?, ?)", EVERY_ACCOUNT)
                started = time.perf_counter()
                settle_connections(db)
                settled = time.perf_counter() - started
            assert db.execute("SELECT * FROM rm_connections ORDER BY bank, account") == before
            line(f"of which settling {len(before):,} accounts' connections", settled * 1000, "ms")
            # the read model as schema 7 left it, brought up in place by a catch-up
            with db.exclusive():
                for table in ("rm_connections", "rm_stale_connections"):
                    db.execute(f"DROP TABLE {table}")
                db.execute("DROP INDEX rm_pairs_by_account_b")
                db.execute("UPDATE rm_position SET schema_version = 7")
            started = time.perf_counter()
            assert tb.read_model.catch_up() == 0
            upgraded = time.perf_counter() - started
            assert db.execute("SELECT * FROM rm_connections ORDER BY bank, account") == before
            line("a schema-7 read model brought up in place", upgraded * 1000, "ms")
            whole, report = timed(lambda: tb.report(BANK, start=OPENED, end=clock().date()), 5)
            print(
                f"whole history: {report.hours_exchanged:,} hours, {report.exchanges:,} exchanges,"
                f" {report.transactions:,} transactions, {report.connections:,} connections"
            )
            line("report, whole history", whole * 1000, "ms", TARGETS["report_ms"])
            narrow_at_query_time(str(tb.read_model.location), report)
            year, _ = timed(lambda: tb.report(BANK, start="2020-01-01", end="2020-12-31"), 5)
            line("report, one year", year * 1000, "ms")
            month, _ = timed(lambda: tb.report(BANK, start="2020-06-01", end="2020-06-30"), 5)
            line("report, one month", month * 1000, "ms")
            rollup, _ = timed(lambda: tb.report(BANK, rollup=True), 5)
            line("report, whole history, rollup", rollup * 1000, "ms")
            # the council's page, as an app serving it makes it: the report,
            # its three charts drawn and the page filled in
            made, page = timed(lambda: tb.report_html(BANK), 3)
            line(f"HTML report, whole history ({len(page) // 1024:,} KB)", made * 1000, "ms")
            listed, lonely = timed(lambda: tb.members_with_one_connection(BANK), 5)
            line(f"members with one connection, listed ({len(lonely):,})", listed * 1000, "ms")
            # a coordinator's list of a month's entries, and of the flagged ones
            spent, rows = timed(lambda: tb.entries(BANK, start="2020-06-01", end="2020-06-30"), 5)
            line(f"entries of one month, listed ({len(rows):,})", spent * 1000, "ms")
            spent, rows = timed(lambda: tb.entries(BANK, flagged=True), 5)
            line(f"flagged entries, whole history ({len(rows):,})", spent * 1000, "ms")
            deep_pages(tb)
            # by area: twenty wards, every tenth member with none
            if tb.profile("m1") is None:
                for i in range(members):
                    if i % 10:
                        tb.set_profile(
                            f"m{i}", timebank.Profile(area=f"ward-{i % 20:02}"), actor=ACTOR
                        )
            for name, period in (
                ("whole history", {}),
                ("one year", {"start": "2020-01-01", "end": "2020-12-31"}),
                ("one month", {"start": "2020-06-01", "end": "2020-06-30"}),
            ):
                seconds, by_area = timed(lambda p=period: tb.report(BANK, by_area=True, **p), 3)
                assert by_area.by_area is not None
                line(f"report by area ({len(by_area.by_area)} areas), {name}", seconds * 1000, "ms")
                seconds, rows = timed(lambda p=period: tb.member_activity(BANK, **p), 3)
                line(f"member activity ({len(rows):,} members), {name}", seconds * 1000, "ms")
            statement, lines = timed(lambda: tb.statement(BANK, "m0"), 20)
            assert len(lines) >= hub, len(lines)
            line(f"statement of m0 ({len(lines):,} lines)", statement * 1000, "ms",
                 TARGETS["statement_ms"])  # fmt: skip
            # the longest statement, a page at a time as an app shows it
            pot = len(tb.statement(BANK, "@pot"))
            for name, offset in (("first", 0), ("last", max(pot - 100, 0))):
                page, _ = timed(
                    lambda at=offset: tb.statement(BANK, "@pot", limit=100, offset=at), 20
                )
                line(f"statement of the pot, {name} 100 of {pot:,} lines", page * 1000, "ms")
            # a subject access request: the whole log searched for the id
            access, found = timed(lambda: tb.subject_access("m0"), 3)
            line(f"subject access of m0 ({len(found.events):,} events)", access * 1000, "ms")
            catch_up_rounds(tb, members, later, rounds)
            read_model_file = Path(str(tb.read_model.location))
            size = read_model_file.stat().st_size
            print(
                f"read model file: {size / 1e6:,.0f} MB; store: {path.stat().st_size / 1e6:,.0f} MB"
            )
        extraction, seconds, count, events = sql_floor(path, Path(tmp) / "floor.db")
        print(
            f"floor: {count:,} entries' rows of {events:,} events written in {seconds:.2f} s"
            f" (their fields extracted beforehand in {extraction:.2f} s, not counted)"
        )
        floor = events / seconds
        line("SQLite floor, entry + party rows", floor, "events/s")
        line("catch-up / floor", caught_up / floor, "")
        target = TARGETS["catch_up_events_per_s"]
        print(
            f"the catch-up target is {target / floor:.2f} times this machine's floor"
            + (": no projector that writes these rows reaches it here" if floor < target else "")
        )
        _, seconds, _, _ = sql_floor(path, Path(tmp) / "floor-fresh.db", journal=False)
        fresh = events / seconds
        line("SQLite floor, fresh file, no journal", fresh, "events/s")
        print(
            f"written into a fresh file without a journal, the target is {target / fresh:.2f}"
            " times the floor"
        )
        in_sql = Path(tmp) / "in-sql.db"
        seconds, steps = project_in_sql(path, in_sql)
        differ = differing_rows(in_sql, read_model_file)
        if differ:
            raise SystemExit(
                f"the in-SQL projection's tables differ from the read model's: {differ}"
            )
        print(
            f"in SQL: {events:,} events in {seconds:.2f} s, tables equal to the read model's; "
            + ", ".join(f"{step} {s:.2f} s" for step, s in steps.items())
        )
        line(
            "catch up, two-party entries in SQL", events / seconds, "events/s", target, lower=False
        )
        line("in SQL / projector", events / seconds / caught_up, "")
        if args.postgres:
            on_postgres(args.postgres, url, members, later, rounds)


if __name__ == "__main__":
    main()
