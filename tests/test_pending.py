"""Recording modes: proposed entries confirmed, approved, declined or expired."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import timebank
from timebank import errors
from timebank.domain.policy import BalanceLimits, Policy
from timebank.storage.memory import MemoryBackend

from .conftest import (
    ACTOR,
    BACKENDS,
    NOW,
    TODAY,
    first_while_it_waits_for_the_lock,
    open_store,
    without_change,
)
from .test_entries import refused


@pytest.fixture
def coordinated(tb: timebank.Timebank, bank: str) -> str:
    """The ``bank`` fixture with coordinator ``co`` and a 5-hour approval threshold."""
    tb.grant_role(bank, "co", "coordinator", actor=ACTOR)
    tb.set_policy(bank, Policy(approval_threshold_minutes=300), actor=ACTOR)
    return bank


def test_a_proposed_exchange_moves_nothing_until_the_other_party_confirms(
    tb: timebank.Timebank, coordinated: str
) -> None:
    bank = coordinated
    pending = tb.propose(bank, "exchange", "ann", "bob", "2", actor="ann", entry_id="p1",
                         category="gardening", occurred_on="2026-06-10")  # fmt: skip
    assert (pending.awaiting, pending.confirmer, pending.needs_approval) == ("confirmation", "bob",
                                                                              False)  # fmt: skip
    assert pending.expires_on == TODAY + timedelta(days=30)
    assert tb.balance(bank, "ann") == 0
    assert tb.pending(bank) == [pending]
    assert tb.pending(bank, "bob") == [pending]
    assert tb.pending(bank, "cat") == []
    refused(tb, errors.EntryNotFound, lambda: tb.entry("p1"))
    refused(tb, errors.NotPermitted, lambda: tb.confirm("p1", actor="ann"))  # not their own
    error = refused(tb, errors.NotPermitted, lambda: tb.confirm("p1", actor="cat"))
    assert str(error) == "entry 'p1' waits for the confirmation of 'bob', not of 'cat'"
    entry = tb.confirm("p1", actor="bob")
    assert isinstance(entry, timebank.RecordedEntry)
    assert (entry.entry_id, entry.actor, entry.category) == ("p1", "ann", "gardening")
    assert (tb.balance(bank, "ann"), tb.balance(bank, "bob")) == (120, -120)
    assert tb.pending(bank) == []
    # sent again (a lost reply): answered as before, nothing applied again
    assert without_change(tb, lambda: tb.confirm("p1", actor="bob")) == entry


def test_the_receiver_may_propose_and_the_provider_confirms(
    tb: timebank.Timebank, coordinated: str
) -> None:
    pending = tb.propose(coordinated, "exchange", "ann", "bob", "1", actor="bob", entry_id="p1")
    assert pending.confirmer == "ann"
    tb.confirm("p1", actor="ann")
    assert tb.balance(coordinated, "ann") == 60


def test_nobody_approves_an_entry_they_take_part_in_or_proposed(
    tb: timebank.Timebank, coordinated: str
) -> None:
    """Four eyes: a coordinator who is a party of an entry above the
    threshold, or who proposed it for someone, may not approve it; another
    coordinator may."""
    bank = coordinated
    tb.grant_role(bank, "bob", "coordinator", actor=ACTOR)
    tb.propose(bank, "exchange", "ann", "bob", "6", actor="ann", entry_id="big")
    tb.confirm("big", actor="bob")
    tb.propose(bank, "exchange", "cat", "ann", "6", actor="co", on_behalf_of="cat",
               entry_id="for-cat")  # fmt: skip
    tb.confirm("for-cat", actor="ann")
    for approver, entry_id in (("bob", "big"), ("co", "for-cat")):
        error = refused(tb, errors.NotPermitted, lambda a=approver, e=entry_id: tb.approve(
            e, actor=a))  # fmt: skip
        assert (error.actor, error.action, error.bank, error.role) == (
            approver, "approve", bank, "coordinator",
        )  # fmt: skip
        assert str(error) == (
            f"{approver!r} may not approve entry {entry_id!r}: they take part in it or proposed it"
        )
    assert tb.approve("big", actor="co").entry_id == "big"
    assert tb.approve("for-cat", actor="bob").entry_id == "for-cat"


def test_the_receiver_of_a_pot_exchange_may_propose_it_and_the_provider_confirms(
    tb: timebank.Timebank, coordinated: str
) -> None:
    """bob, helped at the pot's cost, proposes it; ann, who helped, confirms,
    and a coordinator approves (the pot pays). bob may not confirm his own."""
    tb.donate(coordinated, "org", "3", actor="co")
    pending = tb.propose(coordinated, "pot_exchange", "ann", "bob", "1", actor="bob",
                         entry_id="p1")  # fmt: skip
    assert (pending.confirmer, pending.awaiting, pending.needs_approval) == (
        "ann", "confirmation", True,
    )  # fmt: skip
    refused(tb, errors.NotPermitted, lambda: tb.confirm("p1", actor="bob"))
    assert tb.confirm("p1", actor="ann").awaiting == "approval"  # type: ignore[union-attr]


def test_an_entry_of_exactly_the_threshold_needs_no_approval(
    tb: timebank.Timebank, coordinated: str
) -> None:
    """The threshold (5 hours here) is the most that takes effect when the
    other party confirms; a minute more waits for a coordinator."""
    at = tb.propose(coordinated, "exchange", "ann", "bob", "5", actor="ann", entry_id="at")
    over = tb.propose(coordinated, "exchange", "ann", "bob", "5:01", actor="ann", entry_id="over")
    assert (at.needs_approval, over.needs_approval) == (False, True)
    assert isinstance(tb.confirm("at", actor="bob"), timebank.RecordedEntry)
    assert isinstance(tb.confirm("over", actor="bob"), timebank.PendingEntry)
    gift = tb.propose(coordinated, "gift", "ann", "bob", "1", actor="ann", entry_id="gift")
    assert (gift.awaiting, gift.needs_approval) == ("approval", True)  # whatever its size


def test_above_the_threshold_a_confirmed_entry_waits_for_approval(
    tb: timebank.Timebank, coordinated: str
) -> None:
    bank = coordinated
    tb.propose(bank, "exchange", "ann", "bob", "6", actor="ann", entry_id="big")
    waiting = tb.confirm("big", actor="bob")
    assert isinstance(waiting, timebank.PendingEntry)
    assert (waiting.awaiting, waiting.confirmed_by) == ("approval", "bob")
    assert tb.balance(bank, "ann") == 0
    refused(tb, errors.NotPermitted, lambda: tb.approve("big", actor="bob"))
    assert without_change(tb, lambda: tb.confirm("big", actor="bob")) == waiting  # sent again
    entry = tb.approve("big", actor="co")
    assert (entry.minutes, tb.balance(bank, "ann")) == (360, 360)


def test_member_pot_exchanges_gifts_and_donations_wait_for_a_coordinator(
    tb: timebank.Timebank, coordinated: str
) -> None:
    bank = coordinated
    tb.donate(bank, "org", "3", actor="co")
    tb.propose(bank, "pot_exchange", "ann", "bob", "1", actor="ann", entry_id="pot-1")
    assert tb.confirm("pot-1", actor="bob").awaiting == "approval"  # type: ignore[union-attr]
    gift = tb.propose(bank, "gift", "ann", "bob", "1", actor="ann", entry_id="gift-1")
    assert (gift.awaiting, gift.confirmer) == ("approval", None)
    error = refused(tb, errors.PendingStateConflict, lambda: tb.confirm("gift-1", actor="bob"))
    assert str(error) == "entry 'gift-1' awaits approval, not confirmation"
    # not recorded yet: neither an entry to show nor one to reverse, and saying so
    for command in (lambda: tb.entry("gift-1"), lambda: tb.reverse("gift-1", actor="co")):
        error = refused(tb, errors.EntryNotFound, command)
        assert "'gift-1' is pending, not recorded: it awaits approval" in str(error)
    refused(tb, errors.NotPermitted, lambda: tb.propose(bank, "gift", "ann", "bob", "1",
                                                         actor="bob"))  # fmt: skip
    tb.approve("pot-1", actor="co")
    tb.approve("gift-1", actor="co")
    assert (tb.balance(bank, "ann"), tb.balance(bank, "bob"), tb.balance(bank, "@pot")) == (
        0, 60, 120,
    )  # fmt: skip


def test_members_give_directly_up_to_the_threshold_and_propose_above_it(
    tb: timebank.Timebank, coordinated: str
) -> None:
    bank = coordinated
    tb.gift(bank, "ann", "bob", "5", actor="ann")
    error = refused(
        tb, errors.ApprovalRequired, lambda: tb.donate(bank, "ann", "5:01", actor="ann")
    )
    assert isinstance(error, errors.NotPermitted)
    assert str(error).startswith("301 minutes is above the approval threshold of bank ")
    assert (error.actor, error.action, error.bank, error.role) == ("ann", "record", bank, "member")
    tb.donate(bank, "ann", "5:01", actor="co")  # a coordinator's recording is the approval


def test_limits_are_checked_when_an_entry_takes_effect(
    tb: timebank.Timebank, coordinated: str
) -> None:
    bank = coordinated
    tb.set_policy(bank, Policy(individual=BalanceLimits(-120, None)), actor=ACTOR)
    tb.propose(bank, "exchange", "ann", "bob", "2", actor="ann", entry_id="p1")
    tb.propose(bank, "exchange", "cat", "bob", "1", actor="cat", entry_id="p2")  # fine alone
    tb.confirm("p1", actor="bob")  # bob at -2 hours: the limit
    refused(tb, errors.BalanceLimitExceeded, lambda: tb.confirm("p2", actor="bob"))
    assert tb.pending(bank)[0].entry_id == "p2"  # still pending: bob can earn first
    tb.record_exchange(bank, "bob", "cat", "1", actor="co")
    tb.confirm("p2", actor="bob")
    assert tb.balance(bank, "bob") == -120


def test_proposals_are_checked_now_but_for_limits(tb: timebank.Timebank, coordinated: str) -> None:
    bank = coordinated
    refused(tb, errors.NotPermitted, lambda: tb.propose(bank, "exchange", "ann", "bob", "1",
                                                         actor="cat"))  # fmt: skip
    refused(tb, errors.SelfExchange, lambda: tb.propose(bank, "exchange", "ann", "ann", "1",
                                                         actor="ann"))  # fmt: skip
    refused(tb, errors.EntryTooLarge, lambda: tb.propose(bank, "exchange", "ann", "bob", "25",
                                                          actor="ann"))  # fmt: skip
    refused(tb, errors.InvalidInput, lambda: tb.propose(bank, "opening_balance", "ann", None, "1",
                                                         actor="ann"))  # fmt: skip
    refused(tb, errors.MemberNotFound, lambda: tb.propose(bank, "exchange", "ann", "zed", "1",
                                                           actor="ann"))  # fmt: skip
    tb.suspend(bank, "bob", actor="co")
    refused(tb, errors.MemberNotActive, lambda: tb.propose(bank, "exchange", "ann", "bob", "1",
                                                            actor="ann"))  # fmt: skip


def test_entry_ids_stay_unique_across_pending_and_recorded(
    tb: timebank.Timebank, coordinated: str
) -> None:
    bank = coordinated
    first = tb.propose(bank, "exchange", "ann", "bob", "1", actor="ann", entry_id="p1",
                       occurred_on="2026-06-01")  # fmt: skip
    again = tb.propose(bank, "exchange", "ann", "bob", "1", actor="ann", entry_id="p1",
                       occurred_on="2026-06-01")  # fmt: skip
    assert again == first  # a retry of the same proposal
    # the same entry proposed by its other party, or for someone, is another proposal
    refused(tb, errors.EntryConflict, lambda: tb.propose(bank, "exchange", "ann", "bob", "1",
            actor="bob", entry_id="p1", occurred_on="2026-06-01"))  # fmt: skip
    refused(tb, errors.EntryConflict, lambda: tb.propose(bank, "exchange", "ann", "bob", "1",
            actor="co", on_behalf_of="ann", entry_id="p1", occurred_on="2026-06-01"))  # fmt: skip
    refused(tb, errors.EntryConflict, lambda: tb.propose(bank, "exchange", "ann", "bob", "2",
                                                          actor="ann", entry_id="p1"))  # fmt: skip
    refused(tb, errors.EntryConflict, lambda: tb.record_exchange(bank, "ann", "bob", "1",
                                                                  actor="co", entry_id="p1"))  # fmt: skip
    tb.record_exchange(bank, "ann", "bob", "1", actor="co", entry_id="r1")
    refused(tb, errors.EntryConflict, lambda: tb.propose(bank, "exchange", "ann", "bob", "1",
                                                          actor="ann", entry_id="r1"))  # fmt: skip


def test_declining_withdrawing_and_refusing(
    tb: timebank.Timebank, coordinated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank = coordinated
    # a retry's answer is read back from the decline a page of events at a
    # time: pages of two make the proposals and confirmation several pages back
    monkeypatch.setattr("timebank.api._READ_BACK", 2)
    for n in range(3):
        tb.propose(bank, "exchange", "ann", "bob", "6", actor="ann", entry_id=f"p{n}")
    refused(tb, errors.NotPermitted, lambda: tb.decline("p0", actor="cat"))
    assert tb.decline("p0", actor="bob").entry_id == "p0"  # the other party declines
    tb.decline("p1", actor="ann")  # the proposer withdraws
    tb.confirm("p2", actor="bob")
    refusal = tb.decline("p2", actor="co")  # a coordinator refuses approval
    assert (refusal.awaiting, refusal.confirmed_by) == ("approval", "bob")
    assert tb.pending(bank) == []
    # each sent again by its actor (its reply lost) is answered as it was
    assert without_change(tb, lambda: tb.decline("p2", actor="co")) == refusal
    assert without_change(tb, lambda: tb.decline("p1", actor="ann")).actor == "ann"
    assert tb.balance(bank, "ann") == 0
    refused(tb, errors.PendingEntryNotFound, lambda: tb.approve("p2", actor="co"))


def test_only_a_guardian_or_a_coordinator_confirms_for_the_member_it_waits_for(
    tb: timebank.Timebank, coordinated: str
) -> None:
    """A proposal waits for bob's say-so: ann, who proposed it and gains by
    it, may not give it in bob's name, nor may another member; bob's
    guardian may, and so may a coordinator (``act_on_behalf``)."""
    bank = coordinated
    tb.join(bank, "gus", kind="individual", actor=ACTOR, joined_on="2026-01-01")
    tb.appoint_guardian(bank, "bob", "gus", actor="co")
    for n in range(2):
        tb.propose(bank, "exchange", "ann", "bob", "1", actor="ann", entry_id=f"c{n}")
    for actor in ("ann", "cat", "gus-not"):
        error = refused(tb, errors.NotPermitted,
                        lambda a=actor: tb.confirm("c0", actor=a, on_behalf_of="bob"))  # fmt: skip
        assert (error.actor, error.action) == (actor, "act_on_behalf")
    refused(tb, errors.NotPermitted, lambda: tb.confirm("c0", actor="gus", on_behalf_of="ann"))
    assert tb.confirm("c0", actor="gus", on_behalf_of="bob").entry_id == "c0"  # it took effect
    assert tb.confirm("c1", actor="co", on_behalf_of="bob").entry_id == "c1"
    assert tb.balance(bank, "ann") == 120
    assert tb.balance(bank, "bob") == -120


def test_a_guardian_declines_for_the_member_it_waits_for(
    tb: timebank.Timebank, coordinated: str
) -> None:
    """bob's guardian declines a proposal that waits for bob; the proposer
    may not decline in bob's name, nor may bob be his own guardian."""
    bank = coordinated
    tb.join(bank, "gus", kind="individual", actor=ACTOR, joined_on="2026-01-01")
    refused(tb, errors.InvalidInput, lambda: tb.appoint_guardian(bank, "bob", "bob", actor="co"))
    tb.appoint_guardian(bank, "bob", "gus", actor="co")
    for n in range(2):
        tb.propose(bank, "exchange", "ann", "bob", "1", actor="ann", entry_id=f"g{n}")
    refused(tb, errors.NotPermitted,
            lambda: tb.decline("g0", actor="ann", on_behalf_of="bob"))  # fmt: skip
    refused(tb, errors.NotPermitted,
            lambda: tb.decline("g0", actor="cat", on_behalf_of="bob"))  # fmt: skip
    declined = tb.decline("g0", actor="gus", on_behalf_of="bob")
    assert declined.entry_id == "g0"
    again = without_change(tb, lambda: tb.decline("g0", actor="gus", on_behalf_of="bob"))
    assert again == declined
    error = refused(tb, errors.PendingEntryNotFound, lambda: tb.decline("g0", actor="gus"))
    assert str(error) == "no pending entry 'g0': its proposal was declined by 'gus' for 'bob'"
    assert [p.entry_id for p in tb.pending(bank)] == ["g1"]
    assert tb.balance(bank, "bob") == 0


def test_a_decline_in_a_members_name_is_judged_as_theirs(
    tb: timebank.Timebank, coordinated: str
) -> None:
    """A coordinator may act for any member, but a decline in the name of
    someone with no part in the entry would put a false name in the log; in
    the name of a party who may not decline it (a gift's recipient), it is
    refused as theirs would be; in the name of the member it waits for, it
    is theirs."""
    bank = coordinated
    tb.propose(bank, "exchange", "ann", "bob", "1", actor="ann", entry_id="d0")
    tb.propose(bank, "gift", "ann", "bob", "1", actor="ann", entry_id="d1")
    error = refused(tb, errors.InvalidInput,
                    lambda: tb.decline("d0", actor="co", on_behalf_of="cat"))  # fmt: skip
    assert str(error) == "on_behalf_of must name a party of entry 'd0': 'cat'"
    error = refused(tb, errors.NotPermitted,
                    lambda: tb.decline("d1", actor="co", on_behalf_of="bob"))  # fmt: skip
    assert (error.actor, error.action, error.role) == ("bob", "approve", "member")
    declined = tb.decline("d0", actor="co", on_behalf_of="bob")
    assert (declined.entry_id, tb.pending(bank)[0].entry_id) == ("d0", "d1")
    error = refused(tb, errors.EntryNotFound, lambda: tb.entry("d0"))
    assert str(error).endswith("its proposal was declined by 'co' for 'bob'")
    assert tb.decline("d1", actor="co").entry_id == "d1"  # in their own name, an approver


def test_pending_entries_expire_after_the_policys_days(tmp_path: object) -> None:
    now = [datetime(2026, 6, 15, 12, tzinfo=UTC)]
    tb = timebank.Timebank(MemoryBackend(), clock=lambda: now[0])
    tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01",
                   policy=Policy(pending_expiry_days=7))  # fmt: skip
    for member in ("ann", "bob"):
        tb.join("b", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    tb.propose("b", "exchange", "ann", "bob", "1", actor="ann", entry_id="p1")
    tb.propose("b", "exchange", "ann", "bob", "1", actor="ann", entry_id="p2")
    now[0] += timedelta(days=7)  # the last day it can be confirmed
    assert tb.expire_pending("b", actor=ACTOR) == []
    tb.confirm("p1", actor="bob")
    now[0] += timedelta(days=1)
    assert tb.pending("b")[0].expired
    with pytest.raises(errors.EntryExpired):
        tb.confirm("p2", actor="bob")
    with pytest.raises(errors.NotPermitted):
        tb.expire_pending("b", actor="ann")
    assert tb.expire_pending("b", actor=ACTOR) == ["p2"]
    assert tb.pending("b") == []
    assert tb.balance("b", "ann") == 60


def test_an_inter_bank_proposal_is_confirmed_in_the_other_bank(
    tb: timebank.Timebank, bank: str
) -> None:
    hub = "riverside/north-hub"
    tb.create_bank(hub, name="North hub", actor=ACTOR, opened_on="2026-01-01")
    tb.join(hub, "dan", kind="individual", actor=ACTOR, joined_on="2026-01-01")
    tb.propose(bank, "exchange", "ann", "dan", "2", actor="ann", receiver_bank=hub, entry_id="x1")
    assert [p.entry_id for p in tb.pending(hub, "dan")] == ["x1"]
    entry = tb.confirm("x1", actor="dan")
    assert isinstance(entry, timebank.RecordedEntry)
    assert (tb.balance(bank, "ann"), tb.balance(hub, "dan")) == (120, -120)
    tb.check_invariants()


def test_pending_entries_survive_a_reopen(
    reopen: Callable[[], timebank.Timebank], tb: timebank.Timebank, coordinated: str
) -> None:
    tb.propose(coordinated, "exchange", "ann", "bob", "6", actor="ann", entry_id="p1")
    tb.confirm("p1", actor="bob")
    again = reopen()
    try:
        assert again.pending(coordinated) == tb.pending(coordinated)
        again.approve("p1", actor="co")
        assert again.balance(coordinated, "ann") == 360
    finally:
        again.close()


def test_nobody_approves_their_own_entry(tb: timebank.Timebank, coordinated: str) -> None:
    tb.grant_role(coordinated, "ann", "coordinator", actor=ACTOR)  # a coordinator who is a member
    tb.propose(coordinated, "exchange", "ann", "bob", "6", actor="ann", entry_id="p1")
    tb.confirm("p1", actor="bob")
    error = refused(tb, errors.NotPermitted, lambda: tb.approve("p1", actor="ann"))
    assert error.action == "approve"  # type: ignore[attr-defined]
    tb.approve("p1", actor="co")


def test_pending_entries_roles_and_guardians_survive_a_snapshot(
    reopen: Callable[[], timebank.Timebank], tb: timebank.Timebank, coordinated: str
) -> None:
    """Snapshots (taken every 1,000 events) hold pending entries with their
    dates, roles and guardians; a store opened from one sees the same."""
    tb.appoint_guardian(coordinated, "ann", "gabe", actor="co")
    tb.propose(coordinated, "exchange", "ann", "bob", "6", actor="ann", entry_id="p1",
               occurred_on="2026-06-01")  # fmt: skip
    tb.confirm("p1", actor="bob")
    bank_uuid = tb._app.bank(coordinated).id
    tb._app.take_snapshot(bank_uuid)
    expected = (tb.pending(coordinated), tb.bank(coordinated), tb.guardians(coordinated, "ann"))
    again = reopen()
    try:
        assert again._app.snapshots is not None
        assert list(again._app.snapshots.get(bank_uuid))  # the snapshot is really there
        found = (again.pending(coordinated), again.bank(coordinated),
                 again.guardians(coordinated, "ann"))  # fmt: skip
        assert found == expected
        assert again.approve("p1", actor="co").minutes == 360
    finally:
        again.close()


def test_a_confirmation_or_approval_sent_again_by_its_actor_is_answered_with_its_outcome(
    tb: timebank.Timebank, bank: str
) -> None:
    """A retry of a call whose reply was lost (docs/workflows.md): the same
    actor's confirmation or approval, sent again, is answered as the call
    was, and changes nothing; anyone else's is refused as before."""
    hub = f"{bank}/hub"
    tb.create_bank(hub, name="Hub", actor=ACTOR, opened_on="2026-01-01")
    tb.join(hub, "dan", kind="individual", actor=ACTOR, joined_on="2026-01-01")
    tb.set_policy(bank, Policy(approval_threshold_minutes=120), actor=ACTOR)
    tb.propose(bank, "exchange", "ann", "bob", "1", actor="ann", entry_id="p1")
    tb.propose(bank, "exchange", "ann", "dan", "1", actor="ann", receiver_bank=hub,
               entry_id="x1")  # fmt: skip
    tb.propose(bank, "exchange", "ann", "bob", "3", actor="ann", entry_id="big")
    tb.propose(bank, "exchange", "ann", "bob", "1", actor="ann", entry_id="no")
    tb.record_exchange(bank, "ann", "bob", "1", actor=ACTOR, entry_id="direct")
    took_effect = {"p1": tb.confirm("p1", actor="bob"), "x1": tb.confirm("x1", actor="dan")}
    waiting = tb.confirm("big", actor="bob")
    assert isinstance(waiting, timebank.PendingEntry)
    declined = tb.decline("no", actor="bob")
    for entry_id, confirmer in (("p1", "bob"), ("x1", "dan")):
        assert isinstance(took_effect[entry_id], timebank.RecordedEntry)
        assert (
            without_change(tb, lambda e=entry_id, c=confirmer: tb.confirm(e, actor=c))
            == (took_effect[entry_id])
        )
        error = refused(tb, errors.PendingEntryNotFound,
                        lambda e=entry_id: tb.confirm(e, actor="cat"))  # fmt: skip
        assert str(error) == f"no pending entry {entry_id!r}: entry {entry_id!r} is recorded"
    assert without_change(tb, lambda: tb.confirm("big", actor="bob")) == waiting
    refused(tb, errors.NotPermitted, lambda: tb.confirm("big", actor="cat"))
    approved = tb.approve("big", actor=ACTOR)
    assert without_change(tb, lambda: tb.approve("big", actor=ACTOR)) == approved
    # the entry took effect by its approval, not bob's confirmation
    refused(tb, errors.PendingEntryNotFound, lambda: tb.confirm("big", actor="bob"))
    refused(tb, errors.PendingEntryNotFound, lambda: tb.approve("p1", actor=ACTOR))
    assert without_change(tb, lambda: tb.decline("no", actor="bob")) == declined
    error = refused(tb, errors.PendingEntryNotFound, lambda: tb.decline("no", actor="ann"))
    assert str(error) == "no pending entry 'no': its proposal was declined by 'bob'"
    refused(tb, errors.PendingEntryNotFound, lambda: tb.confirm("direct", actor="bob"))
    assert (tb.balance(bank, "ann"), tb.balance(bank, "bob")) == (360, -300)


def test_the_index_finds_proposals_among_more_ids_than_one_query_takes(
    tb: timebank.Timebank, bank: str
) -> None:
    """``proposal_ids`` asks the pending and the settled proposals in parts
    (on SQLite at most IDS_PER_QUERY marks a query, each id asked once a
    table): ids on either side of a part's edge are found, in either table,
    and ids of neither are not."""
    from timebank.storage.base import IDS_PER_QUERY

    n = IDS_PER_QUERY // 2 + 10
    for i in range(n):
        tb.propose(bank, "exchange", "ann", "bob", "0:01", actor="ann", entry_id=f"q{i}")
    for i in range(0, n, 2):
        tb.decline(f"q{i}", actor="bob")  # settled; the odd ones still pending
    asked = [f"q{i}" for i in range(n)] + [f"r{i}" for i in range(n)]
    assert tb._app.index.proposal_ids(asked) == {f"q{i}" for i in range(n)}
    assert tb._app.index.proposal_ids(asked[::-1][: n // 2]) == set()


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_declined_or_expired_proposals_id_is_spent(kind: str, tmp_path: Path) -> None:
    """An entry id names one proposal for good (docs/workflows.md): once
    declined or expired, every command and import that would use it again
    is refused, saying how the proposal ended, and changes nothing; after a
    reopen too, with a clean audit."""
    now = [NOW]
    reopen = open_store(kind, tmp_path, clock=lambda: now[0])
    tb = reopen()
    tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01",
                   policy=Policy(pending_expiry_days=7))  # fmt: skip
    for member in ("ann", "bob"):
        tb.join("b", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    proposal = {"occurred_on": "2026-06-15", "actor": "ann"}
    tb.propose("b", "exchange", "ann", "bob", "1", entry_id="d1", **proposal)
    tb.propose("b", "exchange", "ann", "bob", "1", entry_id="e1", **proposal)
    tb.decline("d1", actor="bob")
    now[0] += timedelta(days=8)
    assert tb.expire_pending("b", actor=ACTOR) == ["e1"]
    assert without_change(tb, lambda: tb.expire_pending("b", actor=ACTOR)) == []  # sent again
    how = {"d1": "was declined by 'bob'", "e1": "expired"}
    _spent(tb, how, proposal)
    again = reopen()
    _spent(again, how, proposal)
    again.close()


def _spent(tb: timebank.Timebank, how: dict[str, str], proposal: dict[str, str]) -> None:
    """Every use of the ids ``how`` names (each with how its proposal ended)
    is refused, saying so, and changes nothing; the audit is clean."""
    for entry_id, said in how.items():
        spent = (f"entry {entry_id!r} is spent: its proposal {said}, and an entry id is"
                 " never used again")  # fmt: skip
        for call in (
            # the same proposal again: a retry that lands after it was settled
            lambda e=entry_id: tb.propose("b", "exchange", "ann", "bob", "1", entry_id=e,
                                          **proposal),
            lambda e=entry_id: tb.record_exchange("b", "bob", "ann", "2", actor=ACTOR,
                                                  entry_id=e),
            lambda e=entry_id: tb.gift("b", "ann", "bob", "1", actor=ACTOR, entry_id=e),
            lambda e=entry_id: tb.leave("b", "ann", actor=ACTOR, donation_id=e),
        ):  # fmt: skip
            assert str(refused(tb, errors.EntryConflict, call)) == spent
        gone = f"no pending entry {entry_id!r}: its proposal {said}"
        for call in (
            lambda e=entry_id: tb.confirm(e, actor="bob"),
            lambda e=entry_id: tb.approve(e, actor=ACTOR),
            lambda e=entry_id: tb.decline(e, actor="ann"),
        ):
            assert str(refused(tb, errors.PendingEntryNotFound, call)) == gone
        error = refused(tb, errors.EntryNotFound, lambda e=entry_id: tb.entry(e))
        assert str(error) == f"no entry {entry_id!r}: its proposal {said}"
    rows = [{"entry_id": e, "occurred_on": "2026-06-01", "kind": "exchange", "provider": "bob",
             "receiver": "ann", "hours": "1", "bank": "b"} for e in ("new", *how)]  # fmt: skip
    failed = refused(tb, errors.ImportFailed, lambda: tb.import_entries(rows, actor=ACTOR))
    assert [(p.line, p.column, p.reason) for p in failed.problems] == [
        (line, "entry_id", f"entry {e!r} is spent: its proposal {how[e]}, and an entry id"
         " is never used again") for line, e in ((3, "d1"), (4, "e1"))
    ]  # fmt: skip
    report = tb.audit(read_model=False)
    assert report.ok, report.summary()


@pytest.mark.parametrize("taken_by", ["a proposal", "an entry"])
@pytest.mark.parametrize("kind", BACKENDS)
def test_a_donation_id_taken_while_leave_waits_for_the_write_lock_is_refused(
    kind: str, taken_by: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``leave``'s donation id is checked under the write lock: another
    writer (here a second store object, as another process is) that takes
    the id while the call waits for the lock makes the call refused as
    taken, and nothing of it is written. Checked before the lock only, the
    donation was recorded under a pending proposal's id (which no key of
    the store catches), or retried as a write conflict until it gave up."""
    reopen = open_store(kind, tmp_path)
    with reopen() as tb, reopen() as other:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01",
                       policy=Policy(on_leave="donate"))  # fmt: skip
        for member in ("ann", "bob"):
            tb.join("b", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
        tb.record_exchange("b", "ann", "bob", "2", actor=ACTOR, occurred_on="2026-06-01")
        takes: dict[str, Callable[[], object]] = {
            "a proposal": lambda: other.propose("b", "exchange", "bob", "ann", "1", actor="bob",
                                                entry_id="d-1"),
            "an entry": lambda: other.record_exchange("b", "bob", "ann", "1", actor=ACTOR,
                                                      entry_id="d-1"),
        }  # fmt: skip
        first_while_it_waits_for_the_lock(monkeypatch, tb, takes[taken_by])
        taken = "is pending" if taken_by == "a proposal" else "is already recorded"
        with pytest.raises(errors.EntryConflict, match=f"'d-1' {taken}"):
            tb.leave("b", "ann", actor=ACTOR, donation_id="d-1")
        assert not monkeypatch._setattr, "the other writer did not come first"
        # ann has not left, nothing was donated, and d-1 is the other writer's
        assert [(m.member, m.status) for m in tb.members("b")] == [
            ("ann", "active"), ("bob", "active")
        ]  # fmt: skip
        assert tb.balance("b", "@pot") == 0
        if taken_by == "a proposal":
            assert tb.balance("b", "ann") == 120
            assert [(p.entry_id, p.provider) for p in tb.pending("b")] == [("d-1", "bob")]
        else:
            assert tb.balance("b", "ann") == 60
            assert tb.entry("d-1").provider == "bob"
        assert tb.audit(read_model=False).ok
