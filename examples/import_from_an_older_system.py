"""A scripted migration from an older system: its spreadsheet exports mapped
to timebank's interchange rows by two generators, checked with a dry run,
refused whole when a row is wrong (each problem named by its line in the
old file), corrected, imported in one transaction, and imported again to
show that nothing is counted twice (docs/import.md).

Run it: python examples/import_from_an_older_system.py [STORE_URL]
(default: a throwaway SQLite file in a temporary directory, beside the two
old exports it writes first).
"""

from __future__ import annotations

import csv
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import timebank
from timebank import errors

BANK = "riverside"
COORDINATOR = "coord-migration"

#: The old system's exports, as a council would receive them: its own
#: column names, UK dates, people and organisations, "1h30"-style times, and
#: donations to the community pot entered as help given to "COMMUNITY POT".
OLD_MEMBERS = """\
Member No,Name,Type,Joined,Ward
M001,Pat Jones,Person,05/01/2015,Tilbury
M002,Sam Patel,Person,05/01/2015,Grays
M003,Riverside School,Organisation,12/03/2015,Grays
M004,Jo Smith,Person,02/06/2015,Tilbury
"""
OLD_EXCHANGES = """\
Ref,Date,Helper,Helped,Time,Service
1001,14/01/2015,M001,M002,1h30,Gardening
1002,20/02/2015,M002,M001,2h,Shopping
1003,01/04/2015,M003,M001,45m,Computer help
1004,09/06/2015,M004,M03,1h,Befriending
1005,10/06/2015,M004,COMMUNITY POT,3h,
1006,18/07/2015,M001,M004,1h15,DIY
"""


def members(path: Path) -> Iterator[tuple[int, Mapping[str, str]]]:
    """The old members export as interchange rows, each with its line in
    the old file, so that a problem names the line a coordinator can find."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            yield (
                line,
                {
                    "member_id": row["Member No"].strip().lower(),
                    "kind": {"Person": "individual"}.get(row["Type"], row["Type"].lower()),
                    "bank": BANK,
                    "joined_on": row["Joined"],
                    "display_name": row["Name"],  # to the erasable profile store
                    "area": row["Ward"],
                },
            )


def exchanges(
    path: Path, corrections: Mapping[str, str] | None = None
) -> Iterator[tuple[int, Mapping[str, str]]]:
    """The old exchanges export as interchange rows; ``corrections`` maps a
    mistyped member number to the right one."""
    fixed = corrections or {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            helper, helped = (fixed.get(row[c], row[c]).strip() for c in ("Helper", "Helped"))
            donation = helped.upper() == "COMMUNITY POT"
            yield (
                line,
                {
                    "entry_id": f"old-{row['Ref']}",  # the old system's ids: safe to re-run
                    "occurred_on": row["Date"],
                    "kind": "donation" if donation else "exchange",
                    "provider": helper.lower(),
                    "receiver": "" if donation else helped.lower(),
                    "hours": _hours(row["Time"]),
                    "bank": BANK,
                    "category": row["Service"].strip().lower().replace(" ", "-"),
                },
            )


def _hours(text: str) -> str:
    """A time such as 1h30, 2h or 45m as timebank's 1:30; anything else as
    it is, for the import to name it."""
    found = re.fullmatch(r"\s*(?:(\d+)h)?\s*(?:(\d+)m?)?\s*", text)
    if found is None or not any(found.groups()):
        return text
    return f"{int(found[1] or 0)}:{int(found[2] or 0):02}"


def main(url: str, directory: Path) -> None:
    old_members, old_exchanges = directory / "members.csv", directory / "exchanges.csv"
    old_members.write_text(OLD_MEMBERS, encoding="utf-8")
    old_exchanges.write_text(OLD_EXCHANGES, encoding="utf-8")
    uk = "%d/%m/%Y"
    with timebank.open(url) as tb:
        done = tb.import_members(members(old_members), actor=COORDINATOR, source="members.csv",
                                 create_banks=True, date_format=uk)  # fmt: skip
        print(done.summary())
        assert done.recorded == 4

        # A dry run checks every row against the ledger's rules, writes nothing.
        problems = []
        try:
            tb.import_entries(exchanges(old_exchanges), actor=COORDINATOR,
                              source="exchanges.csv", date_format=uk, dry_run=True)  # fmt: skip
        except errors.ImportFailed as e:
            print(f"refused ({e.code}), nothing written:")
            problems = e.problems
        for problem in problems:
            print(f"  {problem}")
        assert [(p.line, p.column) for p in problems] == [(5, "receiver")]  # M03: mistyped

        # The coordinator finds that M03 is Riverside School, M003, and imports.
        corrected = {"M03": "M003"}
        done = tb.import_entries(exchanges(old_exchanges, corrected), actor=COORDINATOR,
                                 source="exchanges.csv", date_format=uk)  # fmt: skip
        print(done.summary())
        assert (done.recorded, done.skipped) == (6, 0)

        # Run again (a script re-run after a fault, say): nothing twice.
        again = tb.import_entries(exchanges(old_exchanges, corrected), actor=COORDINATOR,
                                  source="exchanges.csv", date_format=uk)  # fmt: skip
        print(again.summary())
        assert (again.recorded, again.skipped) == (0, 6)

        report = tb.report(BANK, start="2015-01-01", end="2015-12-31")
        print(f"2015: {report.hours_exchanged} hours exchanged in {report.exchanges} exchanges,"
              f" {report.donated_to_pot_minutes // 60} hours donated to the pot")  # fmt: skip
        assert (report.exchanged_minutes, report.exchanges) == (90 + 120 + 45 + 60 + 75, 5)
        for row in tb.balances(BANK):
            print(f"  {row.account:9} {timebank.format_hours(row.balance_minutes):>6}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{Path(tmp) / 'example.db'}",
             Path(tmp))  # fmt: skip
