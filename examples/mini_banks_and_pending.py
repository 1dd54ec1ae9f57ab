"""A council time bank with a mini time bank, roles, a guardian angel, an
inter-bank exchange and entries that members propose and others confirm.

Run it: python examples/mini_banks_and_pending.py [STORE_URL]
(default: a throwaway SQLite file in a temporary directory).
See docs/workflows.md for the rules this walks through.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import timebank
from timebank import errors

ADMIN = "council-admin"  # opens the banks: their admin
BROKER = "broker-jo"  # the council's time broker: a coordinator in every hub
HUB = "thurrock/tilbury-hub"


def main(url: str) -> None:
    with timebank.open(url) as tb:
        # Members above 3 hours at once need a coordinator's approval.
        policy = timebank.Policy(approval_threshold_minutes=3 * 60)
        tb.create_bank("thurrock", name="Thurrock Time Bank", actor=ADMIN, policy=policy,
                       opened_on="2026-01-05")  # fmt: skip
        tb.grant_role("thurrock", BROKER, "coordinator", actor=ADMIN)
        # The hub copies the council's policy and has its own members and pot.
        tb.create_bank(HUB, name="Tilbury Hub", actor=ADMIN, opened_on="2026-02-01")
        for bank, member in [("thurrock", "m-1"), ("thurrock", "m-2"), (HUB, "m-3"), (HUB, "m-4")]:
            tb.join(bank, member, kind="individual", actor=BROKER, joined_on="2026-02-01")
        tb.join(HUB, "m-1", kind="individual", actor=BROKER, joined_on="2026-02-01")

        # An exchange between the council bank and the hub: both ledgers move
        # in one transaction, through clearing accounts that cancel out.
        tb.record_exchange("thurrock", "m-2", "m-3", "2", actor=BROKER, receiver_bank=HUB,
                           category="gardening", entry_id="x-1")  # fmt: skip
        print("clearing:", tb.balance("thurrock", f"@clearing:{HUB}"),
              tb.balance(HUB, "@clearing:thurrock"))  # fmt: skip
        print("m-3's statement:", [(line.entry_id, line.minutes, line.counterparties)
                                   for line in tb.statement(HUB, "m-3")])  # fmt: skip

        # Members cannot record for others directly ...
        try:
            tb.record_exchange(HUB, "m-3", "m-4", "1", actor="m-3")
        except errors.NotPermitted as refused:
            print("refused:", refused.code, "-", refused)
        # ... they propose, and the other party confirms.
        tb.propose(HUB, "exchange", "m-3", "m-4", "1:30", actor="m-3", entry_id="p-1")
        print("pending for m-4:", [p.entry_id for p in tb.pending(HUB, "m-4")])
        tb.confirm("p-1", actor="m-4")

        # Above the threshold, a confirmed entry waits for the broker.
        tb.propose(HUB, "exchange", "m-4", "m-1", "4", actor="m-4", entry_id="p-2")
        waiting = tb.confirm("p-2", actor="m-1")
        print("p-2 now awaits:", getattr(waiting, "awaiting", None))
        tb.approve("p-2", actor=BROKER)

        # A guardian angel proposes for a member who cannot use the app.
        tb.appoint_guardian(HUB, "m-3", "angel-ann", actor=BROKER)
        pending = tb.propose(HUB, "exchange", "m-3", "m-1", "1", actor="angel-ann",
                             on_behalf_of="m-3", entry_id="p-3")  # fmt: skip
        print("p-3 proposed by", pending.actor, "for", pending.on_behalf_of)

        for b in tb.balances(HUB):
            print(f"{b.bank:22} {b.account:22} {timebank.format_hours(b.balance_minutes):>6}")
        figures = tb.figures("thurrock", rollup=True)
        print("rolled up:", figures.exchanges, "exchanges,",
              timebank.format_hours(figures.exchanged_minutes), "hours")  # fmt: skip
        tb.check_invariants()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(f"sqlite:///{Path(tmp) / 'thurrock.db'}")
