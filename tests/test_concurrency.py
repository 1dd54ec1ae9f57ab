"""Several writers at once: nothing lost, nothing doubled, zero sum kept.

(The full concurrency and crash suite, on every backend, belongs to the
storage work; these check the retry and the thread lock the core relies on.)
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from pathlib import Path

import timebank

from .conftest import ACTOR, fixed_clock

MEMBERS = ["a", "b", "c", "d"]


def setup_bank(tb: timebank.Timebank) -> None:
    tb.create_bank("busy", name="Busy", actor=ACTOR, opened_on="2026-01-01")
    for member in MEMBERS:
        tb.join("busy", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")


def record_many(tb: timebank.Timebank, writer: int, count: int) -> None:
    for n in range(count):
        provider, receiver = MEMBERS[n % 4], MEMBERS[(n + 1 + writer) % 4]
        if provider == receiver:
            receiver = MEMBERS[(n + 2) % 4]
        tb.record_exchange("busy", provider, receiver, minutes=writer + 1, actor=ACTOR,
                           entry_id=f"w{writer}-{n}")  # fmt: skip


def expected_balances(writers: int, count: int) -> dict[str, int]:
    balances = dict.fromkeys(MEMBERS, 0)
    for writer in range(writers):
        for n in range(count):
            provider, receiver = MEMBERS[n % 4], MEMBERS[(n + 1 + writer) % 4]
            if provider == receiver:
                receiver = MEMBERS[(n + 2) % 4]
            balances[provider] += writer + 1
            balances[receiver] -= writer + 1
    return balances


def test_threads_sharing_one_store_lose_nothing(tb: timebank.Timebank) -> None:
    setup_bank(tb)
    threads = [threading.Thread(target=record_many, args=(tb, w, 50)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = {b.account: b.balance_minutes for b in tb.balances("busy") if b.kind == "individual"}
    assert got == expected_balances(4, 50)
    assert tb._app.index.count_entries() == 200


def _process(url: str, writer: int, count: int) -> None:
    with timebank.open(url, clock=fixed_clock) as tb:
        record_many(tb, writer, count)
        # Every entry id again: idempotent, even while other processes write.
        record_many(tb, writer, count)


def test_processes_writing_one_sqlite_bank_lose_nothing_and_double_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    with timebank.open(url, clock=fixed_clock) as tb:
        setup_bank(tb)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_process, args=(url, w, 40)) for w in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    with timebank.open(url, clock=fixed_clock) as tb:
        got = {b.account: b.balance_minutes for b in tb.balances("busy") if b.kind == "individual"}
        assert got == expected_balances(4, 40)
        assert tb._app.index.count_entries() == 160
        tb.check_invariants()
        for writer in range(4):
            for n in range(40):
                assert tb.entry(f"w{writer}-{n}").minutes == writer + 1


def test_a_cached_bank_sees_what_another_process_wrote(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'two.db'}"
    first: Callable[[], timebank.Timebank] = lambda: timebank.open(url, clock=fixed_clock)  # noqa: E731
    with first() as one, first() as two:
        setup_bank(one)
        assert two.balance("busy", "a") == 0  # now cached in `two`
        one.record_exchange("busy", "a", "b", "1", actor=ACTOR)
        assert two.balance("busy", "a") == 60
        two.record_exchange("busy", "b", "a", "2", actor=ACTOR)
        assert one.balance("busy", "a") == -60
