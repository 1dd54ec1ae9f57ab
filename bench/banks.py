"""Benchmark of a store with many banks: the calls that read every bank.

    python bench/banks.py                  # 100, 300 and 1,000 mini banks
    python bench/banks.py --banks 300      # one size
    python bench/banks.py --quick          # 20 banks (smoke test)

A council bank with N mini time banks of two members each, on a fresh SQLite
store. For each N, the median time of one call (of 20, after one call that
loads the banks) of the reads that visit every bank (``banks``, a member's
``memberships``, ``set_profile`` of a member, ``subject_access``,
``check_invariants``, ``figures`` and ``report`` rolled up over every mini
bank), and of ``record_exchange`` in one mini bank for comparison. No target
names these; past the bank cache's 256 every such call read every bank from
the store again before the cache grew with the store (docs/performance.md,
"Many banks").
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import timebank

ACTOR = "bench"


def clock() -> datetime:
    return datetime(2026, 6, 15, 12, tzinfo=UTC)


def build(url: str, banks: int) -> None:
    with timebank.open(url, clock=clock) as tb:
        tb.create_bank("council", name="Council", actor=ACTOR, opened_on="2020-01-01")
        for n in range(banks):
            bank = f"council/g{n}"
            tb.create_bank(bank, name=f"Group {n}", actor=ACTOR, opened_on="2020-01-01")
            for side in ("a", "b"):
                tb.join(bank, f"m{n}{side}", kind="individual", actor=ACTOR,
                        joined_on="2020-01-01")  # fmt: skip
            tb.record_exchange(bank, f"m{n}a", f"m{n}b", "1", actor=ACTOR,
                               occurred_on="2021-01-01")  # fmt: skip


def median_ms(call: Callable[[], object], times: int = 20) -> float:
    call()  # loads what the call reads
    spent = []
    for _ in range(times):
        start = time.perf_counter()
        call()
        spent.append(time.perf_counter() - start)
    return statistics.median(spent) * 1000


def measure(banks: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'banks.db'}"
        build(url, banks)
        with timebank.open(url, clock=clock) as tb:
            profile = timebank.Profile(display_name="A member")
            calls: dict[str, Callable[[], object]] = {
                "record_exchange (one bank)": lambda: tb.record_exchange(
                    "council/g1", "m1a", "m1b", "1", actor=ACTOR
                ),
                "banks": tb.banks,
                "memberships": lambda: tb.memberships("m1a"),
                "set_profile": lambda: tb.set_profile("m1a", profile, actor=ACTOR),
                "subject_access": lambda: tb.subject_access("m1a"),
                "check_invariants": tb.check_invariants,
                "figures, rolled up": lambda: tb.figures("council", rollup=True),
                "report, rolled up": lambda: tb.report(
                    "council", start="2020-01-01", end="2026-06-15", rollup=True
                ),
            }
            print(f"\n{banks:,} mini banks (median of 20 calls)")
            for name, call in calls.items():
                print(f"  {name:28} {median_ms(call):8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--banks", type=int, action="append", help="mini banks (repeatable)")
    parser.add_argument("--quick", action="store_true", help="20 banks (smoke test)")
    args = parser.parse_args()
    for banks in [20] if args.quick else args.banks or [100, 300, 1000]:
        measure(banks)


if __name__ == "__main__":
    main()
