"""The event log of a release, and what it must read as, for the test that
every later release still reads it (tests/test_release_logs.py).

    python -m tests.release_logs 0.1.0    # writes tests/data/release-0.1.0.*

It records, through the API of the checkout it runs in, a scenario that
triggers every event class of that release (a bank with a mini bank,
policies, roles, guardians, the membership lifecycle, every kind of entry,
a reversal, pending entries confirmed, approved, declined, expired and left
waiting, an erasure), then writes two files:

- ``release-VERSION.events.jsonl``: every stored event in log order, one a
  line: its stream, version, topic and state (the JSON as stored);
- ``release-VERSION.expected.json``: what the store answers once it holds
  them: every bank, balance, member, pending entry, entry, statement, report
  and figure, and the clock's last reading (today, for the answers that
  depend on it); and, under ``store``, the store format the release wrote
  and the columns of the tables it made.

A release's log is written once, when the release is made, and never
again: it is what a store written by that release holds on disk. The
script refuses to replace one unless given ``--replace`` (only for the
release not yet made).

    python -m tests.release_logs 0.1.0 --answers  # the answers again

rewrites only ``release-VERSION.expected.json``, from the log as it is
stored (for the release not yet made, when it has learnt to answer more:
a new figure, a new list).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent

import timebank
from timebank.domain.policy import BalanceLimits, Policy
from timebank.migrate import _IndexRebuild
from timebank.storage._format import STORE_FORMAT
from timebank.storage.memory import MemoryBackend

DATA = Path(__file__).resolve().parent / "data"

BANK, HUB = "riverside", "riverside/hub"
#: The scenario's first day: entries are dated from OPENED on.
OPENED = date(2025, 1, 6)
START = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


def event_classes() -> dict[str, type]:
    """Every event class a store can hold, by name (``Bank.ExchangeRecorded``).
    Bank names its creation event ``Opened``; eventsourcing also gives every
    aggregate a base ``Created`` class, which Bank never triggers."""
    from timebank.domain.bank import Bank
    from timebank.domain.registry import Registry

    unused = {Bank: {"Event", "EntryEvent", "Created"}, Registry: {"Event"}}
    return {
        f"{aggregate.__name__}.{name}": value
        for aggregate, skip in unused.items()
        for name, value in vars(aggregate).items()
        if isinstance(value, type) and not name.startswith("_") and name not in skip
    }


class Clock:
    """A clock the scenario moves forward (pending entries expire)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def record_scenario(tb: timebank.Timebank, clock: Clock) -> None:
    """Every event class of this release, through the API."""
    coord = "coord-1"
    policy = Policy(
        individual=BalanceLimits(lowest_minutes=-600, highest_minutes=6000),
        approval_threshold_minutes=120,
        pending_expiry_days=30,
    )
    tb.create_bank(BANK, name="Riverside Time Bank", actor=coord, opened_on=OPENED, policy=policy)
    tb.create_bank(HUB, name="Riverside Hub", actor=coord, opened_on=OPENED)
    tb.set_policy(HUB, Policy(pending_expiry_days=14), actor=coord)
    tb.grant_role(BANK, "broker-1", "coordinator", actor=coord)
    tb.grant_role(BANK, "temp-1", "coordinator", actor=coord)
    tb.revoke_role(BANK, "temp-1", actor=coord)
    for member, kind in (("ann", "individual"), ("bob", "individual"), ("cat", "individual"),
                         ("dan", "individual"), ("org-1", "organisation")):  # fmt: skip
        profile = timebank.Profile(display_name=f"Member {member}", area="Riverside")
        tb.join(BANK, member, kind=kind, actor=coord, joined_on=OPENED, profile=profile)
    for member in ("hal", "ivy"):
        tb.join(HUB, member, kind="individual", actor=coord, joined_on=OPENED)
    tb.appoint_guardian(BANK, "bob", "gina", actor=coord)
    tb.appoint_guardian(BANK, "cat", "gus", actor=coord)
    tb.remove_guardian(BANK, "cat", "gus", actor=coord)

    day = iter(OPENED + timedelta(days=n) for n in range(7, 50))
    tb.record_opening_balance(BANK, "ann", "3:00", actor=coord, occurred_on=next(day),
                              entry_id="open-ann")  # fmt: skip
    tb.record_opening_balance(BANK, "dan", "-1:00", actor=coord, occurred_on=next(day),
                              entry_id="open-dan")  # fmt: skip
    tb.record_exchange(BANK, "ann", "bob", "1:30", actor=coord, occurred_on=next(day),
                       category="gardening", entry_id="x-1")  # fmt: skip
    tb.donate(BANK, "ann", "2", actor=coord, occurred_on=next(day), entry_id="don-1")
    tb.record_pot_exchange(BANK, "cat", "dan", "1", actor=coord, occurred_on=next(day),
                           category="shopping", entry_id="pot-1")  # fmt: skip
    tb.gift(BANK, "bob", "cat", "0:30", actor=coord, occurred_on=next(day), entry_id="gift-1")
    tb.record_group_exchange(BANK, {"org-1": 3}, {"ann": 1, "bob": 1, "cat": 1}, actor=coord,
                             occurred_on=next(day), category="class", entry_id="grp-1")  # fmt: skip
    tb.record_exchange(BANK, "ann", "hal", "1:15", actor=coord, occurred_on=next(day),
                       receiver_bank=HUB, category="lifts", entry_id="ib-1")  # fmt: skip
    tb.record_exchange(HUB, "hal", "ivy", "2", actor=coord, occurred_on=next(day),
                       category="lifts", entry_id="hub-1")  # fmt: skip
    tb.record_exchange(BANK, "bob", "cat", "1", actor=coord, occurred_on=next(day),
                       entry_id="x-2")  # fmt: skip
    tb.reverse("x-2", actor=coord, reversal_id="x-2-undo", occurred_on=next(day))
    tb.reverse("ib-1", actor=coord, reversal_id="ib-1-undo", occurred_on=next(day))
    tb.suspend(BANK, "dan", actor=coord)
    tb.reinstate(BANK, "dan", actor=coord)
    tb.leave(BANK, "cat", actor="cat", left_on=next(day))
    tb.rejoin(BANK, "cat", actor=coord, rejoined_on=next(day))

    # pending entries: confirmed, approved, declined, expired, left waiting
    proposed = next(day)
    tb.propose(BANK, "exchange", "ann", "bob", "1", actor="ann", occurred_on=proposed,
               entry_id="p-confirmed")  # fmt: skip
    tb.confirm("p-confirmed", actor="gina", on_behalf_of="bob")
    tb.propose(BANK, "exchange", "bob", "ann", "3", actor="bob", occurred_on=proposed,
               entry_id="p-approved", category="repairs")  # fmt: skip
    tb.confirm("p-approved", actor="ann")
    tb.approve("p-approved", actor="broker-1")
    tb.propose(BANK, "gift", "ann", "dan", "0:45", actor="ann", occurred_on=proposed,
               entry_id="p-declined")  # fmt: skip
    tb.decline("p-declined", actor="ann")
    tb.propose(BANK, "exchange", "dan", "org-1", "1", actor="dan", occurred_on=proposed,
               entry_id="p-expired")  # fmt: skip
    clock.now += timedelta(days=31)
    tb.expire_pending(BANK, actor="broker-1")
    tb.propose(BANK, "pot_exchange", "bob", "dan", "2:30", actor="bob",
               occurred_on=clock.now.date(), entry_id="p-waiting")  # fmt: skip
    tb.confirm("p-waiting", actor="dan")  # a pot exchange then awaits approval
    tb.propose(HUB, "exchange", "ivy", "hal", "0:30", actor="ivy",
               occurred_on=clock.now.date(), entry_id="p-hub")  # fmt: skip
    tb.erase_member("dan", actor=coord)


def answers(tb: timebank.Timebank) -> dict[str, Any]:
    """What the store answers: everything a later release must answer the
    same, as JSON values."""
    end = tb.today()
    entries: set[str] = set()
    per_bank: dict[str, Any] = {}
    for bank in (b.bank for b in tb.banks()):
        statements = {b.account: tb.statement(bank, b.account) for b in tb.balances(bank)}
        entries.update(line.entry_id for lines in statements.values() for line in lines)
        per_bank[bank] = {
            "bank": tb.bank(bank).to_dict(),
            "balances": [b.to_dict() for b in tb.balances(bank)],
            "members": [m.to_dict() for m in tb.members(bank)],
            "guardians": {m.member: tb.guardians(bank, m.member) for m in tb.members(bank)},
            "pending": [p.to_dict() for p in tb.pending(bank)],
            "statements": {
                a: [line.to_dict() for line in lines] for a, lines in statements.items()
            },
            "report": tb.report(bank, start=OPENED, end=end).to_dict(),
            "report_rolled_up": tb.report(bank, start=OPENED, end=end, rollup=True).to_dict(),
            "figures": tb.figures(bank).to_dict(),
            "inactive": [m.to_dict() for m in tb.inactive_members(bank, as_of=end)],
            "by_area": tb.report(bank, start=OPENED, end=end, by_area=True).to_dict()["by_area"],
            "activity": [
                a.to_dict() for a in tb.member_activity(bank, start=OPENED, end=end, rollup=True)
            ],
            "one_connection": [
                m.to_dict() for m in tb.members_with_one_connection(bank, as_of=end, rollup=True)
            ],
        }
    return _json(
        {
            "today": end.isoformat(),
            "banks": per_bank,
            "entries": {e: tb.entry(e).to_dict() for e in sorted(entries)},
        }
    )


def _json(value: Any) -> Any:
    """``value`` as JSON gives it back (dates and decimals as text)."""
    return json.loads(json.dumps(value, default=str))


def stored_events(tb: timebank.Timebank) -> list[dict[str, Any]]:
    """Every stored event, in log order, as one line of the log file."""
    events = tb._app.recorder.select_notifications(start=1, limit=1_000_000)
    return [
        {
            "stream": n.originator_id.hex,
            "version": n.originator_version,
            "topic": n.topic,
            "state": orjson.loads(n.state),
        }
        for n in events
    ]


def stored_log(log: Path) -> list[StoredEvent]:
    """The events of a log file, as the store holds them."""
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    return [
        StoredEvent(UUID(r["stream"]), r["version"], r["topic"], orjson.dumps(r["state"]))
        for r in rows
    ]


def load(tb: timebank.Timebank, stored: list[StoredEvent]) -> None:
    """Write a log's events into an empty store as they stand, with the
    index rows rebuilt by the function a migration uses; every event is
    decoded on the way."""
    events = [tb._app.mapper.to_domain_event(e) for e in stored]
    tb._app.save_stored(stored, _IndexRebuild().rows(events))


def table_columns(store: Path) -> dict[str, list[list[Any]]]:
    """The columns of every table of a new SQLite store made at ``store``
    (each as name, type, not null, part of the key): what a release that
    reads the store expects to find."""
    timebank.open(f"sqlite:///{store}").close()
    with closing(sqlite3.connect(store)) as conn:
        names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        return {
            name: [[c[1], c[2], c[3], c[5]] for c in conn.execute(f'PRAGMA table_info("{name}")')]
            for (name,) in names.fetchall()
        }


def store_facts() -> dict[str, Any]:
    """The store format this checkout writes, and the tables it makes
    (tests/test_release_logs.py holds the format to them)."""
    with tempfile.TemporaryDirectory() as directory:
        tables = table_columns(Path(directory) / "store.db")
    return {"format": STORE_FORMAT, "tables": tables}


def write_answers(version: str, out: Path = DATA) -> Path:
    """Rewrite what the release answers from its log as stored."""
    log = out / f"release-{version}.events.jsonl"
    expected = out / f"release-{version}.expected.json"
    now = datetime.fromisoformat(json.loads(expected.read_text())["now"])
    backend = MemoryBackend()
    with timebank.Timebank(backend, clock=lambda: now) as tb:
        load(tb, stored_log(log))
    with timebank.Timebank(backend, clock=lambda: now) as tb:  # opened afresh
        result = answers(tb)
    result["now"] = now.isoformat()
    result["store"] = store_facts()
    expected.write_text(json.dumps(result, indent=1) + "\n")
    return expected


def write(version: str, *, replace: bool, out: Path = DATA) -> tuple[Path, Path]:
    log, expected = (
        out / f"release-{version}.events.jsonl",
        out / f"release-{version}.expected.json",
    )
    if not replace and (log.exists() or expected.exists()):
        raise SystemExit(
            f"{log.name} exists: a release's log is written once (--replace only before release)"
        )
    clock = Clock()
    with timebank.open("memory://", clock=clock) as tb:
        record_scenario(tb, clock)
        events = stored_events(tb)
        result = answers(tb)
    result["now"] = clock.now.isoformat()
    result["store"] = store_facts()
    out.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(json.dumps(e, sort_keys=False) + "\n" for e in events))
    expected.write_text(json.dumps(result, indent=1) + "\n")
    return log, expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version", help="the release, as in pyproject.toml (0.1.0)")
    parser.add_argument("--replace", action="store_true", help="replace an existing log")
    parser.add_argument(
        "--answers", action="store_true", help="rewrite only the answers, from the stored log"
    )
    args = parser.parse_args(argv)
    if args.answers:
        print(f"wrote {write_answers(args.version)}")
        return 0
    log, expected = write(args.version, replace=args.replace)
    print(f"wrote {log} and {expected}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
