"""Benchmark of checking balances against an older system (no target).

    python bench/balances.py                    # 1,000,000 entries, 10,000 members
    python bench/balances.py --entries 100000   # a smaller run
    python bench/balances.py --quick            # a smoke test

Generates and imports the files bench/import.py does into a fresh SQLite
store, catches its read model up (timed apart: a migration's check pays it
once, and a report would pay it anyway), then times ``check_balances`` of
every member's and the pot's balance: at the end of the last day (the file
an older system's final balances give; every row must agree) and at the
end of a day halfway through (given as zero: nearly every row differs, so
the mismatches' listing is in the figure too).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from _figures import line, sibling

import timebank
from timebank.domain.values import format_hours

import_bench = sibling("import.py")  # its store and figure lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="2,000 entries (smoke test)")
    args = parser.parse_args()
    entries, members = (2_000, 200) if args.quick else (args.entries, args.members)
    with tempfile.TemporaryDirectory() as tmp:
        members_path, entries_path = import_bench.generate(Path(tmp), members, entries)
        url = f"sqlite:///{Path(tmp) / 'balances.db'}"
        import_bench.run(url, members_path, entries_path, entries)
        with timebank.open(url, clock=import_bench.clock) as tb:
            started = time.perf_counter()
            tb.read_model.catch_up()
            line("read model caught up", time.perf_counter() - started, "s")
            bank = import_bench.BANK
            last = tb.today(bank)
            final = [{"bank": b.bank, "account": b.account, "on": last.isoformat(),
                      "hours": format_hours(b.balance_minutes)}
                     for b in tb.balances(bank) if b.account != "@opening"]  # fmt: skip
            started = time.perf_counter()
            result = tb.check_balances(final)
            seconds = time.perf_counter() - started
            assert result.ok, result.mismatches[:3]
            print(result.summary())
            line("check, final balances", seconds, "s")
            line("check, final balances, per row", seconds / result.rows * 1000, "ms")
            days = (last - import_bench.OPENED).days
            halfway: date = import_bench.OPENED + timedelta(days=days // 2)
            zero = [{**row, "on": halfway.isoformat(), "hours": "0"} for row in final]
            started = time.perf_counter()
            result = tb.check_balances(zero)
            seconds = time.perf_counter() - started
            print(result.summary())
            line("check, halfway balances given as zero", seconds, "s")


if __name__ == "__main__":
    main()
