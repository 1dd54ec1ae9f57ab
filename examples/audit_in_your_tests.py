"""How an app that embeds timebank proves, in its own tests, that its use of
the ledger keeps it sound (docs/testing.md). Run it with python, or point
pytest at it: each ``test_`` function and the ``TestVolunteerRota`` state
machine are ordinary pytest tests.

The "app" here is a tiny volunteer rota that records a shift as an exchange
between a volunteer and the person they helped, and can cancel a shift.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule

import timebank
from timebank import testing


# --- the app's own code ---------------------------------------------------------------
class VolunteerRota:
    def __init__(self, tb: timebank.Timebank, bank: str) -> None:
        self.tb, self.bank = tb, bank

    def shift_done(self, volunteer: str, helped: str, hours: str) -> str:
        entry = self.tb.record_exchange(self.bank, volunteer, helped, hours, actor="rota-app")
        return entry.entry_id

    def cancel(self, entry_id: str) -> None:
        self.tb.reverse(entry_id, actor="rota-app")


# --- its tests ------------------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(ledger=testing.ledgers(max_entries=25), hours=testing.hours(240))
def test_a_shift_on_any_ledger_keeps_it_sound(ledger: testing.Ledger, hours: str) -> None:
    tb = ledger.build()  # any valid ledger: mini banks, reversals, pot flows...
    tb.grant_role(testing.ROOT, "rota-app", "coordinator", actor=testing.ACTOR)
    rota = VolunteerRota(tb, testing.ROOT)
    shift = rota.shift_done("a1", "a2", hours)
    rota.cancel(shift)
    testing.assert_sound(tb)  # the audit: every invariant, on a replay of the log


class VolunteerRotaMachine(testing.LedgerStateMachine):
    """timebank's random commands, interleaved with the app's own."""

    @rule(volunteer=st.sampled_from(["a1", "a2"]), hours=testing.hours(180))
    def rota_shift(self, volunteer: str, hours: str) -> None:
        if not hasattr(self, "rota"):
            self.tb.grant_role(testing.ROOT, "rota-app", "coordinator", actor=testing.ACTOR)
            self.rota = VolunteerRota(self.tb, testing.ROOT)
        helped = "org1" if volunteer == "a1" else "a1"
        self.attempt(lambda: self.recorded.append(self.rota.shift_done(volunteer, helped, hours)))


TestVolunteerRota = VolunteerRotaMachine.TestCase
TestVolunteerRota.settings = settings(max_examples=15, stateful_step_count=12, deadline=None)


if __name__ == "__main__":
    test_a_shift_on_any_ledger_keeps_it_sound()
    TestVolunteerRota().runTest()
    print("the rota keeps the ledger sound: every invariant held after every step")
