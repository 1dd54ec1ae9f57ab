"""Embedding timebank in a council app: open a store, record help, show balances.

Run it: python examples/embed_in_an_app.py [STORE_URL]
(default: a throwaway SQLite file in a temporary directory).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import timebank
from timebank import errors

COORDINATOR = "coord-sam"  # the signed-in user of your app: an id, never a name


def main(url: str) -> None:
    with timebank.open(url) as tb:
        # A bank with a policy: nobody below -10 hours, breaches refused.
        policy = timebank.Policy(individual=timebank.BalanceLimits(-10 * 60, None))
        tb.create_bank("oldham", name="Oldham Time Bank", actor=COORDINATOR,
                       policy=policy, opened_on="2026-01-05")  # fmt: skip

        # Members get opaque ids; names and contacts go to the profile store,
        # which can be erased without touching a single event.
        for member, kind, name in [("m-101", "individual", "Pat"),
                                   ("m-102", "individual", "Sam"),
                                   ("org-7", "organisation", "Greenfield School")]:  # fmt: skip
            tb.join("oldham", member, kind=kind, actor=COORDINATOR, joined_on="2026-01-05",
                    profile=timebank.Profile(display_name=name))  # fmt: skip

        # Your app's own ids make every call safe to retry.
        tb.record_exchange("oldham", "m-101", "m-102", "1:30", actor=COORDINATOR,
                           occurred_on="2026-02-03", category="gardening",
                           entry_id="app-exchange-1")  # fmt: skip
        tb.donate("oldham", "org-7", "5", actor=COORDINATOR, entry_id="app-donation-1")
        tb.record_pot_exchange("oldham", "m-101", "m-102", "2", actor=COORDINATOR,
                               category="befriending", entry_id="app-pot-1")  # fmt: skip

        # A refused command raises a named error and changes nothing.
        try:
            tb.record_exchange("oldham", "m-102", "m-101", "24:30", actor=COORDINATOR)
        except errors.EntryTooLarge as e:
            print(f"refused ({e.code}): {e}")

        # A mistake is undone by a reversal, never by deleting.
        tb.reverse("app-exchange-1", actor=COORDINATOR, reversal_id="app-reversal-1")

        for row in tb.balances("oldham"):
            print(f"{row.account:10} {row.kind:13} {timebank.format_hours(row.balance_minutes):>7}")
        for line in tb.statement("oldham", "m-101"):
            print(line.occurred_on, line.entry_id, line.minutes, line.balance_minutes)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{Path(tmp) / 'example.db'}")
