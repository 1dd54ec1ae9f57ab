"""Benchmark of the audit (issue 7's target: <= 30 s for 1,000,000 entries).

    python bench/audit.py --store /tmp/r.db   # a store bench/reports.py built (or builds)
    python bench/audit.py --quick             # a small store, for a smoke test

Builds the store as bench/reports.py does (1,000,000 entries among 10,000
members) unless ``--store`` names one that exists, gives every member a
profile (name, email, phone, area: the audit looks for each in every event)
if the store has none, catches its read model up, then times the audit
without the read-model comparison and with the default one (the read
model's balance and figure tables against the audit's replay), and prints
the ratio to the target; ``--full`` also times the row-for-row comparison
with a fresh projection (no target; minutes at 1M).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Literal

from _figures import line, sibling

import timebank

TARGET_S = 30.0
reports_bench = sibling("reports.py")  # its store and figure lines


def add_profiles(tb: timebank.Timebank, members: int) -> None:
    """Every member's personal details, as a council's store holds them (the
    audit looks for each of them in every event); added once to a store."""
    if tb.profile("m0") is not None:
        return
    for i in range(members):
        profile = timebank.Profile(display_name=f"Member {i} Example",
                                   email=f"member{i}@example.org", phone=f"01375 {i:06}",
                                   area=f"Ward {i % 20}")  # fmt: skip
        tb.set_profile(f"m{i}", profile, actor=f"m{i}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small store (smoke test)")
    parser.add_argument("--store", type=Path, help="SQLite file to build, or reuse if it exists")
    parser.add_argument("--full", action="store_true", help="also the full read-model comparison")
    args = parser.parse_args()
    members, entries, hub = (200, 5_000, 100) if args.quick else (10_000, 1_000_000, 1_000)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.store or Path(tmp) / "audit.db"
        url = f"sqlite:///{path}"
        if not path.exists():
            reports_bench.build(url, members, entries, hub)
        with timebank.open(url, clock=reports_bench.clock) as tb:
            add_profiles(tb, members)
            tb.read_model.catch_up()
            runs: list[tuple[str, bool | Literal["full"], float | None]] = [
                ("without the read model", False, TARGET_S),
                ("whole audit", True, TARGET_S),
            ]
            if args.full:
                runs.append(("with the full read-model comparison", "full", None))
            for label, compare, target in runs:
                started = time.perf_counter()
                report = tb.audit(read_model=compare)
                seconds = time.perf_counter() - started
                print(report.summary().splitlines()[0])
                line(f"audit, {label}", seconds, "s", target)


if __name__ == "__main__":
    main()
