"""Benchmark of checking balances against an older system (no target).

    python bench/balances.py                    # 1,000,000 entries, 10,000 members
    python bench/balances.py --entries 100000   # a smaller run
    python bench/balances.py --quick            # a smoke test
    python bench/balances.py --postgres URL     # also into PostgreSQL

Generates and imports the files bench/import.py does into a fresh SQLite
store, catches its read model up (timed apart: a migration's check pays it
once, and a report would pay it anyway), then times ``check_balances`` of
every member's and the pot's balance: at the end of the last day (the file
an older system's final balances give; every row must agree) and at the
end of a day halfway through (given as zero: nearly every row differs, so
the mismatches' listing is in the figure too). With ``--postgres``, the
same again in that store, whose read model is in PostgreSQL too.
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


def measure(url: str, label: str, members_path: Path, entries_path: Path, entries: int) -> None:
    """Import the files into the store at ``url``, catch its read model up,
    and time both checks; each figure's line begins with ``label``."""
    import_bench.run(url, members_path, entries_path, entries)
    with timebank.open(url, clock=import_bench.clock) as tb:
        started = time.perf_counter()
        tb.read_model.catch_up()
        line(f"{label}read model caught up", time.perf_counter() - started, "s")
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
        line(f"{label}check, final balances", seconds, "s")
        line(f"{label}check, final balances, per row", seconds / result.rows * 1000, "ms")
        days = (last - import_bench.OPENED).days
        halfway: date = import_bench.OPENED + timedelta(days=days // 2)
        zero = [{**row, "on": halfway.isoformat(), "hours": "0"} for row in final]
        started = time.perf_counter()
        result = tb.check_balances(zero)
        seconds = time.perf_counter() - started
        print(result.summary())
        line(f"{label}check, halfway balances given as zero", seconds, "s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="2,000 entries (smoke test)")
    parser.add_argument("--postgres", metavar="URL", help="also measure there (an empty store)")
    args = parser.parse_args()
    entries, members = (2_000, 200) if args.quick else (args.entries, args.members)
    with tempfile.TemporaryDirectory() as tmp:
        members_path, entries_path = import_bench.generate(Path(tmp), members, entries)
        url = f"sqlite:///{Path(tmp) / 'balances.db'}"
        measure(url, "", members_path, entries_path, entries)
        if args.postgres:
            measure(args.postgres, "postgres: ", members_path, entries_path, entries)


if __name__ == "__main__":
    main()
