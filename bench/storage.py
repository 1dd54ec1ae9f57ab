"""Benchmark of the storage backends (issue 4): SQLite and PostgreSQL.

    scripts/postgres run -- python bench/storage.py        # both backends
    python bench/storage.py --backends sqlite              # SQLite only
    python bench/storage.py --quick                        # small runs (smoke test)

For each backend, on a store of 4 banks of 50 members:
  - opening the existing store and closing it again (median of 5 rounds
    of 20), what each process pays once;
  - PostgreSQL: checking a pooled connection as it is taken (is it one the
    server or the network ended?), against an empty statement's round
    trip (what a check by asking the server would cost every use);
  - single-entry latency: one process records exchanges one at a time
    through the API (p50, p99);
  - throughput with 1, 2 and 4 writer processes (1 and 2 with --quick),
    each recording into a bank of its own ("different banks") or all into
    one bank ("one bank"), and the scaling ratio against one writer,
    measured in the same run.
Writer processes open the store first and start together; throughput is all
entries over the time from the start signal to the last writer's finish.
PostgreSQL is used when TIMEBANK_TEST_POSTGRES names a server (scripts/postgres
sets it).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import timebank

ACTOR = "bench"
BANKS = 4
MEMBERS = 50


def clock() -> datetime:
    return datetime(2026, 6, 1, 12, tzinfo=UTC)


def new_store(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        url = f"sqlite:///{tmp / f'{uuid.uuid4().hex}.db'}"
    else:
        import psycopg  # noqa: PLC0415 - only with PostgreSQL

        base = os.environ["TIMEBANK_TEST_POSTGRES"]
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(base, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{base}?schema={schema}"
    with timebank.open(url, clock=clock) as tb:
        # the banks and their members in one transaction (a members import)
        tb.import_members(
            [
                {"member_id": f"m{m}", "kind": "individual", "bank": f"b{b}",
                 "joined_on": "2026-01-01"}
                for b in range(BANKS)
                for m in range(MEMBERS)
            ],
            actor=ACTOR,
            create_banks=True,
        )  # fmt: skip
    return url


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(url: str, calls: int) -> tuple[float, float]:
    samples = []
    with timebank.open(url, clock=clock) as tb:
        tb.balance("b0", "m0")  # warm, as a long-running app is
        for n in range(calls):
            t = time.perf_counter()
            tb.record_exchange("b0", f"m{n % MEMBERS}", f"m{(n + 1) % MEMBERS}", "1",
                               actor=ACTOR, entry_id=f"lat-{n}")  # fmt: skip
            samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1e3, percentile(samples, 0.99) * 1e3


def opening(url: str, rounds: int = 5, opens: int = 20) -> float:
    """Milliseconds to open the existing store and close it again, the
    median of ``rounds`` rounds of ``opens`` (what a process pays once)."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(opens):
            timebank.open(url, clock=clock).close()
        times.append((time.perf_counter() - started) / opens)
    return statistics.median(times) * 1e3


def connection_check(url: str, checks: int = 20000) -> tuple[float, float]:
    """PostgreSQL: microseconds to check an idle pooled connection as it is
    taken (one ``poll()``: ``_ended``), and for the round trip of an empty
    statement on it (what the library's ``pre_ping`` would cost a use)."""
    from timebank.storage.postgres import _ended  # noqa: PLC0415 - PostgreSQL only

    with timebank.open(url, clock=clock) as tb:
        pool = tb._app.recorder.datastore.pool  # type: ignore[attr-defined]
        with pool.connection() as connection:
            started = time.perf_counter()
            for _ in range(checks):
                assert not _ended(connection)
            checked = (time.perf_counter() - started) / checks
            started = time.perf_counter()
            for _ in range(checks // 10):
                connection.execute("")
            asked = (time.perf_counter() - started) / (checks // 10)
    return checked * 1e6, asked * 1e6


def _writer(url: str, bank: str, prefix: str, count: int, ready: Any, go: Any, out: Any) -> None:
    with timebank.open(url, clock=clock) as tb:
        tb.balance(bank, "m0")
        ready.put(1)
        go.wait()
        for n in range(count):
            tb.record_exchange(bank, f"m{n % MEMBERS}", f"m{(n + 3) % MEMBERS}", "1",
                               actor=ACTOR, entry_id=f"{prefix}-{n}")  # fmt: skip
        out.put(time.perf_counter())


def throughput(url: str, writers: int, one_bank: bool, count: int, run: str) -> float:
    context = multiprocessing.get_context("spawn")
    ready, out = context.Queue(), context.Queue()
    go = context.Event()
    processes = [
        context.Process(target=_writer, args=(url, "b0" if one_bank else f"b{w}",
                                              f"{run}-w{w}", count, ready, go, out))
        for w in range(writers)
    ]  # fmt: skip
    for p in processes:
        p.start()
    for _ in processes:
        ready.get(timeout=120)
    started = time.perf_counter()
    go.set()
    finished = max(out.get(timeout=600) for _ in processes)
    for p in processes:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a writer failed (exit {p.exitcode})")
    return writers * count / (finished - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs (smoke test)")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    calls, count = (100, 30) if args.quick else (2000, 400)
    # a smoke test starts no more processes than its code paths need
    writer_counts = (1, 2) if args.quick else (1, 2, 4)
    kinds = [k for k in args.backends.split(",") if k]
    if "postgres" in kinds and not os.environ.get("TIMEBANK_TEST_POSTGRES"):
        print("postgres: skipped, TIMEBANK_TEST_POSTGRES is not set (use scripts/postgres)")
        kinds.remove("postgres")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            url = new_store(kind, Path(tmp))
            print(f"{kind}: open and close the store {opening(url):.2f} ms")
            if kind == "postgres":
                checked, asked = connection_check(url)
                print(f"{kind}: a pooled connection checked as it is taken {checked:.2f} µs;"
                      f" an empty statement's round trip {asked:.1f} µs")  # fmt: skip
            p50, p99 = latency(url, calls)
            print(f"{kind}: single-entry latency p50 {p50:.3f} ms, p99 {p99:.3f} ms")
            for one_bank in (False, True):
                label = "one bank" if one_bank else "different banks"
                rates = {}
                for writers in writer_counts:
                    run = f"{'one' if one_bank else 'diff'}{writers}"
                    rates[writers] = throughput(url, writers, one_bank, count, run)
                    ratio = rates[writers] / rates[1]
                    print(f"{kind}: {writers} writer(s), {label}: {rates[writers]:8.0f}"
                          f" entries/s, x{ratio:.2f} of one writer")  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
