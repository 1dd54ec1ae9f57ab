"""Benchmark of the core ledger on a SQLite file (issue 2's targets).

    python bench/ledger.py                 # full run: 100k-entry store, 1M-entry store
    python bench/ledger.py --quick         # smaller stores, for a smoke test

Measures, at 1,000 members and 100,000 existing entries:
  - recording one exchange at a time through the public API (p50, p99),
    and a bare synced SQLite commit of one row on the same disk (the
    least a record can take there: no target, for judging the machine);
  - balance lookup through the public API (p50, p99);
  - an inter-bank exchange with a mini bank, and a proposal plus its
    confirmation (p50; no target, recorded for comparison);
and, for a store holding 1,000,000 entries, opening it and reading a first
balance in a fresh process (snapshots keep this short); and a first balance
of a bank whose latest snapshot is 999 events behind (the most there can be).

The stores are built through the same domain rules and recorders as the API,
1,000 entries per transaction (the bulk path imports will use), so that
building a million entries takes about a minute instead of twenty.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import timebank
from timebank._ledger import SNAPSHOT_INTERVAL
from timebank.domain.bank import bank_uuid
from timebank.domain.entries import NewEntry
from timebank.domain.values import EntryKind
from timebank.storage import IndexUpdate

ACTOR = "bench"
BANK = "bench"
OPENED = date(2000, 1, 1)
TARGETS = {"record_p50_ms": 1.0, "record_p99_ms": 5.0, "balance_p50_us": 100.0, "open_s": 1.0}


def clock() -> datetime:
    return datetime(2026, 6, 1, 12, tzinfo=UTC)


def build(url: str, members: int, entries: int, batch: int = 1000) -> float:
    """Create a bank with ``members`` members and ``entries`` exchanges; seconds taken."""
    rng = random.Random(7)
    started = time.perf_counter()
    with timebank.open(url, clock=clock) as tb:
        tb.create_bank(BANK, name="Bench", actor=ACTOR, opened_on=OPENED)
        for i in range(members):
            kind = "organisation" if i % 25 == 0 else "individual"
            tb.join(BANK, f"m{i}", kind=kind, actor=ACTOR, joined_on=OPENED)
        app = tb._app
        today = clock().date()
        for start in range(0, entries, batch):
            ledger = app.bank(BANK)
            rows = []
            for n in range(start, min(start + batch, entries)):
                provider, receiver = rng.sample(range(members), 2)
                new = NewEntry(
                    entry_id=f"b{n}", bank=BANK, kind=EntryKind.EXCHANGE,
                    minutes=rng.choice((30, 60, 90, 120)),
                    occurred_on=OPENED + timedelta(days=n % 9000),
                    provider=f"m{provider}", receiver=f"m{receiver}",
                )  # fmt: skip
                ledger.record(new, ACTOR, today)
                rows.append((new.entry_id, f"m{provider}", f"m{receiver}"))
            versions = [e.originator_version for e in ledger.pending_events]
            index = IndexUpdate(
                entries=tuple(
                    (e, ledger.id, v, None) for (e, _, _), v in zip(rows, versions, strict=True)
                ),
                postings=tuple(
                    (ledger.id, account, v)
                    for (_, p, r), v in zip(rows, versions, strict=True)
                    for account in (p, r)
                ),
            )  # fmt: skip
            app.save_changes(ledger, index=index)
    return time.perf_counter() - started


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_record_and_balance(url: str, members: int, calls: int) -> dict[str, float]:
    rng = random.Random(11)
    record, balance = [], []
    with timebank.open(url, clock=clock) as tb:
        tb.balance(BANK, "m0")  # warm the cache, as a long-running app would be
        for n in range(calls):
            provider, receiver = rng.sample(range(members), 2)
            t = time.perf_counter()
            tb.record_exchange(BANK, f"m{provider}", f"m{receiver}", "1:30", actor=ACTOR,
                               occurred_on="2026-05-01", entry_id=f"live-{n}")  # fmt: skip
            record.append(time.perf_counter() - t)
        for n in range(calls * 5):
            member = f"m{n % members}"
            t = time.perf_counter()
            tb.balance(BANK, member)
            balance.append(time.perf_counter() - t)
        inter_bank, pending = measure_workflows(tb, rng, members, calls // 2)
    return {
        "inter_bank_p50_ms": statistics.median(inter_bank) * 1e3,
        "inter_bank_p99_ms": percentile(inter_bank, 0.99) * 1e3,
        "propose_confirm_p50_ms": statistics.median(pending) * 1e3,
        "record_p50_ms": statistics.median(record) * 1e3,
        "record_p99_ms": percentile(record, 0.99) * 1e3,
        "record_per_s": len(record) / sum(record),
        "balance_p50_us": statistics.median(balance) * 1e6,
        "balance_p99_us": percentile(balance, 0.99) * 1e6,
    }


def measure_workflows(
    tb: timebank.Timebank, rng: random.Random, members: int, calls: int
) -> tuple[list[float], list[float]]:
    """Seconds per inter-bank exchange (bank -> a mini bank of 100 members,
    both ledgers in one transaction), and per proposal plus confirmation."""
    hub = f"{BANK}/hub"
    tb.create_bank(hub, name="Hub", actor=ACTOR, opened_on=OPENED)
    for i in range(100):
        tb.join(hub, f"h{i}", kind="individual", actor=ACTOR, joined_on=OPENED)
    inter_bank, pending = [], []
    for n in range(calls):
        provider, receiver = rng.randrange(members), rng.randrange(100)
        t = time.perf_counter()
        tb.record_exchange(BANK, f"m{provider}", f"h{receiver}", "1", actor=ACTOR,
                           receiver_bank=hub, entry_id=f"inter-{n}")  # fmt: skip
        inter_bank.append(time.perf_counter() - t)
    for n in range(calls):
        provider, receiver = (f"m{i}" for i in rng.sample(range(members), 2))
        t = time.perf_counter()
        tb.propose(BANK, "exchange", provider, receiver, "1", actor=provider,
                   entry_id=f"proposed-{n}")  # fmt: skip
        tb.confirm(f"proposed-{n}", actor=receiver)
        pending.append(time.perf_counter() - t)
    return inter_bank, pending


OPEN_SCRIPT = """
import sys, time
import timebank
started = time.perf_counter()
tb = timebank.open(sys.argv[1], create=False)
tb.balance("bench", "m0")
first = time.perf_counter() - started
tb.balances("bench")
every = time.perf_counter() - started
print(first, every)
"""


def measure_open(url: str) -> tuple[float, float, float]:
    """Seconds, in a fresh process, to open the store and read one balance, to
    also read every balance, and the whole process (interpreter and imports
    included); medians of 3."""
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", OPEN_SCRIPT, url], capture_output=True,
                             text=True, check=True).stdout.split()  # fmt: skip
        runs.append((float(out[0]), float(out[1]), time.perf_counter() - started))
    return tuple(statistics.median(r[i] for r in runs) for i in range(3))  # type: ignore[return-value]


def measure_cold_load(url: str) -> tuple[float, int]:
    """Milliseconds (median of 15) to read a first balance of a bank in a
    store just opened, when the bank's latest snapshot is as far behind as
    it can be (``SNAPSHOT_INTERVAL - 1`` events): a web app's first request
    after a restart, at its worst. Also the events replayed."""
    bank, members = "cold", 200
    with timebank.open(url, clock=clock) as tb:
        tb.create_bank(bank, name="Cold", actor=ACTOR, opened_on=OPENED)
        for i in range(members):
            tb.join(bank, f"c{i}", kind="individual", actor=ACTOR, joined_on=OPENED)
        # the bank's events: opened, joins, exchanges; a snapshot every interval
        for n in range(2 * SNAPSHOT_INTERVAL - 1 - 1 - members):
            tb.record_exchange(bank, f"c{n % members}", f"c{(n + 1) % members}", "1",
                               actor=ACTOR, occurred_on="2026-05-01", entry_id=f"c{n}")  # fmt: skip
    samples = []
    for _ in range(15):
        with timebank.open(url, clock=clock, create=False) as tb:
            started = time.perf_counter()
            tb.balance(bank, "c0")
            samples.append(time.perf_counter() - started)
            version = tb._app.bank(bank).version
            (snapshot,) = tb._app.snapshots.get(bank_uuid(bank), desc=True, limit=1)
    return statistics.median(samples) * 1e3, version - snapshot.originator_version


def measure_commit_floor(path: Path, commits: int = 300) -> float:
    """Milliseconds (median) of a bare SQLite commit of one small row, in
    WAL mode with every commit synced (``synchronous=FULL``), as the store
    commits: the least that recording one exchange can take on this disk,
    printed so that a run's record figures can be judged against it."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (n INTEGER, state BLOB)")
        samples = []
        for n in range(commits):
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?, ?)", (n, b"x" * 400))
            conn.execute("COMMIT")
            samples.append(time.perf_counter() - started)
    finally:
        conn.close()
    return statistics.median(samples) * 1e3


def report(name: str, value: float, unit: str) -> None:
    target = TARGETS.get(name)
    verdict = (
        ""
        if target is None
        else f"  target <= {target:g} {unit}: {'met' if value <= target else 'MISSED'}"
    )
    print(f"{name:>22}: {value:10.3f} {unit}{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small stores (smoke test)")
    args = parser.parse_args()
    members, entries, big, calls = (1000, 100_000, 1_000_000, 2000)
    if args.quick:
        entries, big, calls = 10_000, 20_000, 300
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        seconds = build(url, members, entries)
        print(f"built {entries:,} entries among {members:,} members in {seconds:.1f} s"
              f" ({entries / seconds:,.0f} entries/s, batched)")  # fmt: skip
        figures = measure_record_and_balance(url, members, calls)
        report("record_p50_ms", figures["record_p50_ms"], "ms")
        report("record_p99_ms", figures["record_p99_ms"], "ms")
        print(
            f"{'record_rate':>22}: {figures['record_per_s']:10.0f} entries/s, one per transaction"
        )
        floor = measure_commit_floor(Path(tmp) / "floor.db")
        ratio = figures["record_p50_ms"] / floor
        print(f"{'commit_floor_ms':>22}: {floor:10.3f} ms (a bare SQLite commit of one row,"
              f" synced; record p50 is {ratio:.2f} times it)")  # fmt: skip
        report("balance_p50_us", figures["balance_p50_us"], "us")
        report("balance_p99_us", figures["balance_p99_us"], "us")
        report("inter_bank_p50_ms", figures["inter_bank_p50_ms"], "ms")
        report("inter_bank_p99_ms", figures["inter_bank_p99_ms"], "ms")
        report("propose_confirm_p50_ms", figures["propose_confirm_p50_ms"], "ms")
        big_url = f"sqlite:///{Path(tmp) / 'big.db'}"
        seconds = build(big_url, members, big)
        size_mb = (Path(tmp) / "big.db").stat().st_size / 1e6
        rate = big / seconds
        print(
            f"built {big:,} entries in {seconds:.1f} s ({rate:,.0f} entries/s); {size_mb:,.0f} MB"
        )
        first, every, process = measure_open(big_url)
        report("open_s", first, "s")
        print(f"{'open_all_s':>22}: {every:10.3f} s  (open, then every balance)")
        print(f"{'open_process_s':>22}: {process:10.3f} s  (python start, imports, open, balance)")
        cold, replayed = measure_cold_load(f"sqlite:///{Path(tmp) / 'cold.db'}")
        print(f"{'cold_load_ms':>22}: {cold:10.3f} ms (a first balance, {replayed:,} events"
              " after the bank's snapshot)")  # fmt: skip


if __name__ == "__main__":
    main()
