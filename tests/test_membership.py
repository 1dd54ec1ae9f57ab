"""Membership lifecycle (suspend, reinstate, leave, rejoin) and erasure."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import timebank
import timebank.storage.sqlite
from timebank import errors
from timebank.domain.policy import BalanceLimits, LeaveRule, Policy

from .conftest import (
    ACTOR,
    BACKENDS,
    a_reader_of,
    first_while_it_waits_for_the_lock,
    fixed_clock,
    open_store,
)
from .test_entries import refused


def test_a_suspended_member_takes_part_in_no_new_entry(tb: timebank.Timebank, bank: str) -> None:
    member = tb.suspend(bank, "bob", actor=ACTOR)
    assert member.status == "suspended"
    error = refused(
        tb, errors.MemberNotActive, lambda: tb.record_exchange(bank, "ann", "bob", "1", actor=ACTOR)
    )
    assert error.ids == {"bank": bank, "member": "bob", "status": "suspended"}
    refused(tb, errors.MemberNotActive, lambda: tb.donate(bank, "bob", "1", actor=ACTOR))
    refused(tb, errors.MemberStatusConflict, lambda: tb.suspend(bank, "bob", actor=ACTOR))
    assert tb.reinstate(bank, "bob", actor=ACTOR).status == "active"
    tb.record_exchange(bank, "ann", "bob", "1", actor=ACTOR)
    refused(tb, errors.MemberStatusConflict, lambda: tb.reinstate(bank, "bob", actor=ACTOR))


def test_entries_of_suspended_members_can_still_be_reversed(
    tb: timebank.Timebank, bank: str
) -> None:
    tb.record_exchange(bank, "ann", "bob", "1", actor=ACTOR, entry_id="x")
    tb.suspend(bank, "bob", actor=ACTOR)
    tb.reverse("x", actor=ACTOR)
    assert tb.balance(bank, "bob") == 0


def test_leaving_freezes_the_balance_by_default(tb: timebank.Timebank, bank: str) -> None:
    tb.record_exchange(bank, "ann", "bob", "3", actor=ACTOR, occurred_on="2026-03-01")
    left = tb.leave(bank, "ann", actor=ACTOR, left_on="2026-04-01")
    assert (left.status, str(left.left_on), left.balance_minutes) == ("left", "2026-04-01", 180)
    assert tb.balance(bank, "@pot") == 0
    refused(tb, errors.MemberNotActive, lambda: tb.gift(bank, "bob", "ann", "1", actor=ACTOR))
    refused(tb, errors.MemberStatusConflict, lambda: tb.leave(bank, "ann", actor=ACTOR))
    assert tb.figures(bank).individual_members == 2


def test_leaving_can_donate_a_positive_balance_to_the_pot_atomically(tb: timebank.Timebank) -> None:
    policy = Policy(on_leave=LeaveRule.DONATE)
    tb.create_bank("giving", name="Giving", actor=ACTOR, policy=policy, opened_on="2026-01-01")
    for member in ("ann", "bob"):
        tb.join("giving", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    for _ in range(3):  # 30 hours: more than one entry may hold, still donated whole
        tb.record_exchange("giving", "ann", "bob", "10", actor=ACTOR, occurred_on="2026-02-01")
    tb.leave("giving", "ann", actor=ACTOR, left_on="2026-03-01", donation_id="ann-leaves")
    assert tb.balance("giving", "ann") == 0
    assert tb.balance("giving", "@pot") == 1800
    donation = tb.entry("ann-leaves")
    assert (donation.kind, donation.minutes, str(donation.occurred_on)) == (
        "donation",
        1800,
        "2026-03-01",
    )
    assert tb.figures("giving").donated_to_pot_minutes == 1800
    # A negative balance is not donated (nor forgiven).
    tb.leave("giving", "bob", actor=ACTOR, left_on="2026-03-01")
    assert tb.balance("giving", "bob") == -1800


def test_a_leaving_donation_respects_the_pots_highest_balance(tb: timebank.Timebank) -> None:
    policy = Policy(on_leave=LeaveRule.DONATE, pot=BalanceLimits(0, 60))
    tb.create_bank("capped", name="Capped", actor=ACTOR, policy=policy, opened_on="2026-01-01")
    for member in ("ann", "bob"):
        tb.join("capped", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    tb.record_exchange("capped", "ann", "bob", "2", actor=ACTOR)
    refused(tb, errors.BalanceLimitExceeded, lambda: tb.leave("capped", "ann", actor=ACTOR))
    assert tb.member("capped", "ann").status == "active"


def test_no_entry_falls_after_a_member_left(tb: timebank.Timebank, bank: str) -> None:
    tb.record_exchange(bank, "ann", "bob", "1", actor=ACTOR, occurred_on="2026-05-01")
    error = refused(
        tb,
        errors.LeaveBeforeLastEntry,
        lambda: tb.leave(bank, "bob", actor=ACTOR, left_on="2026-04-30"),
    )
    assert str(error.ids["last_occurred_on"]) == "2026-05-01"
    refused(
        tb,
        errors.OccurredBeforeJoining,
        lambda: tb.leave(bank, "bob", actor=ACTOR, left_on="2025-12-31"),
    )
    refused(
        tb,
        errors.OccurredInFuture,
        lambda: tb.leave(bank, "bob", actor=ACTOR, left_on="2026-06-16"),
    )
    tb.leave(bank, "bob", actor=ACTOR, left_on="2026-05-01")


def test_a_members_last_entry_is_the_latest_dated_whatever_the_order_or_their_part(
    tb: timebank.Timebank, bank: str
) -> None:
    """The day a member may leave from is their latest entry's, not the one
    recorded last (entries may be back-dated), and counts entries where they
    hold no leg: the receiver of a pot-funded exchange, whom the pot pays."""
    tb.donate(bank, "org", "2", actor=ACTOR, occurred_on="2026-02-01")
    tb.record_exchange(bank, "ann", "bob", "1", actor=ACTOR, occurred_on="2026-05-01")
    tb.record_exchange(bank, "ann", "bob", "1", actor=ACTOR, occurred_on="2026-03-01")
    error = refused(tb, errors.LeaveBeforeLastEntry,
                    lambda: tb.leave(bank, "bob", actor=ACTOR, left_on="2026-04-01"))  # fmt: skip
    assert str(error.ids["last_occurred_on"]) == "2026-05-01"
    tb.record_pot_exchange(bank, "ann", "cat", "1", actor=ACTOR, occurred_on="2026-04-10")
    error = refused(tb, errors.LeaveBeforeLastEntry,
                    lambda: tb.leave(bank, "cat", actor=ACTOR, left_on="2026-04-09"))  # fmt: skip
    assert str(error.ids["last_occurred_on"]) == "2026-04-10"
    tb.leave(bank, "cat", actor=ACTOR, left_on="2026-04-10")


def test_rejoining_opens_a_new_membership_period(tb: timebank.Timebank, bank: str) -> None:
    tb.leave(bank, "cat", actor=ACTOR, left_on="2026-02-01")
    refused(
        tb,
        errors.OccurredBeforeJoining,
        lambda: tb.rejoin(bank, "cat", actor=ACTOR, rejoined_on="2026-02-01"),
    )
    refused(tb, errors.MemberStatusConflict, lambda: tb.rejoin(bank, "ann", actor=ACTOR))
    refused(tb, errors.OccurredInFuture,
            lambda: tb.rejoin(bank, "cat", actor=ACTOR, rejoined_on="2026-06-16"))  # fmt: skip
    assert tb.rejoin(bank, "cat", actor=ACTOR, rejoined_on="2026-04-01").status == "active"
    # Inside either period: fine. Between periods: outside the membership.
    tb.record_exchange(bank, "ann", "cat", "1", actor=ACTOR, occurred_on="2026-01-15")
    tb.record_exchange(bank, "ann", "cat", "1", actor=ACTOR, occurred_on="2026-04-02")
    refused(tb, errors.OccurredBeforeJoining,
            lambda: tb.record_exchange(bank, "ann", "cat", "1", actor=ACTOR, occurred_on="2026-03-01"))  # fmt: skip
    # the refusal names the periods, not only the first joining day
    with pytest.raises(errors.OccurredBeforeJoining) as caught:
        tb.record_exchange(bank, "ann", "cat", "1", actor=ACTOR, occurred_on="2026-03-01")
    assert "(a member from 2026-01-01 to 2026-02-01, and from 2026-04-01)" in str(caught.value)


def test_an_entry_pending_for_a_member_who_leaves_waits_and_cannot_take_effect(
    tb: timebank.Timebank, bank: str
) -> None:
    """Leaving settles nothing pending: an entry awaiting the leaver stays
    listed, cannot take effect while they are not a member (confirming it is
    refused and changes nothing), and is declined or expires as any other;
    if they rejoin before it expires and its day falls in a membership
    period, it can be confirmed. The same holds for approval, and for a
    member suspended."""
    tb.set_policy(bank, Policy(approval_threshold_minutes=90), actor=ACTOR)
    for entry_id, receiver, hours in (("p1", "bob", "1"), ("p2", "cat", "1"), ("p3", "org", "2")):
        tb.propose(bank, "exchange", "ann", receiver, hours, actor="ann", entry_id=entry_id,
                   occurred_on="2026-06-10")  # fmt: skip
    tb.confirm("p3", actor="org")  # two hours: now awaits a coordinator's approval
    tb.suspend(bank, "org", actor=ACTOR)
    refused(tb, errors.MemberNotActive, lambda: tb.approve("p3", actor=ACTOR))
    tb.reinstate(bank, "org", actor=ACTOR)
    assert tb.approve("p3", actor=ACTOR).entry_id == "p3"
    for member in ("bob", "cat"):
        tb.leave(bank, member, actor=member, left_on="2026-06-12")
    assert [p.entry_id for p in tb.pending(bank, member="bob")] == ["p1"]
    error = refused(tb, errors.MemberNotActive, lambda: tb.confirm("p1", actor="bob"))
    assert (error.ids["member"], error.ids["status"]) == ("bob", "left")
    tb.decline("p2", actor="ann")  # the proposer withdraws the other
    tb.rejoin(bank, "bob", actor=ACTOR, rejoined_on="2026-06-14")
    assert tb.confirm("p1", actor="bob").entry_id == "p1"  # its day is in bob's first period
    assert (tb.balance(bank, "ann"), tb.balance(bank, "bob")) == (180, -60)
    assert tb.pending(bank) == []


def test_lifecycle_survives_a_restart(reopen) -> None:  # type: ignore[no-untyped-def]
    tb = reopen()
    tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
    for member in ("x", "y", "z"):
        tb.join("b", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    tb.leave("b", "x", actor=ACTOR, left_on="2026-02-01")
    tb.rejoin("b", "x", actor=ACTOR, rejoined_on="2026-03-01")
    tb.suspend("b", "y", actor=ACTOR)
    before = tb.members("b")
    tb.close()
    again = reopen()
    assert again.members("b") == before
    with pytest.raises(errors.OccurredBeforeJoining):
        again.record_exchange("b", "x", "z", "1", actor=ACTOR, occurred_on="2026-02-15")
    with pytest.raises(errors.MemberNotActive):
        again.record_exchange("b", "x", "y", "1", actor=ACTOR)
    again.close()


# --- erasure -------------------------------------------------------------------------------------
OLD = {
    "display_name": "Winifred Oldname",
    "email": "win.old@example.org",
    "phone": "07700 900001",
    "area": "Oldfield Ward",
}
NEW = {
    "display_name": "Winifred Newname",
    "email": "win.new@example.org",
    "phone": "07700 900002",
    "area": "Newfield Ward",
}


def test_erasure_leaves_no_trace_in_the_raw_files_and_changes_no_figure(tmp_path: Path) -> None:
    path = tmp_path / "erase.db"
    url = f"sqlite:///{path}"
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        tb.join(
            "b",
            "w-1",
            kind="individual",
            actor=ACTOR,
            joined_on="2026-01-01",
            profile=timebank.Profile(**OLD),
        )
        tb.join("b", "k-2", kind="individual", actor=ACTOR, joined_on="2026-01-01",
                profile=timebank.Profile(display_name="Kept Person"))  # fmt: skip
        tb.set_profile("w-1", timebank.Profile(**NEW), actor=ACTOR)  # the old values were replaced
        for n in range(20):
            tb.record_exchange("b", "w-1", "k-2", minutes=30 + n, actor=ACTOR, entry_id=f"e{n}")
        tb.reverse("e3", actor=ACTOR)
        raw_before = b"".join(f.read_bytes() for f in tmp_path.iterdir())
        assert NEW["display_name"].encode() in raw_before  # the test can see a profile
        tb.grant_role("b", "dpo-1", "coordinator", actor=ACTOR)  # the data protection officer
        before = (tb.balances(), tb.figures("b"), tb.statement("b", "w-1"), tb.members("b"))
        result = tb.erase_member("w-1", actor="dpo-1")
        assert (result.profile_deleted, result.physically_complete) == (True, True)
        assert tb.profile("w-1") is None
        assert tb.profile("k-2") == timebank.Profile(display_name="Kept Person")
        assert (tb.balances(), tb.figures("b"), tb.statement("b", "w-1"), tb.members("b")) == before
        # While the store is open: the database, its -wal and -shm files, the
        # (empty) file whose lock writers take turns on, and the read model
        # (the statement reads it) with its -wal and -shm files.
        open_files = sorted(tmp_path.iterdir())
        assert [f.name for f in open_files] == [
            "erase.db", "erase.db-shm", "erase.db-wal", "erase.db.lock",
            "erase.reports.db", "erase.reports.db-shm", "erase.reports.db-wal",
        ]  # fmt: skip
        assert (tmp_path / "erase.db.lock").read_bytes() == b""
        raw_open = b"".join(f.read_bytes() for f in open_files)
        for value in [*OLD.values(), *NEW.values()]:
            assert value.encode() not in raw_open, value
    # After closing.
    files = sorted(tmp_path.iterdir())
    assert path in files
    raw = b"".join(f.read_bytes() for f in files)
    for value in [*OLD.values(), *NEW.values()]:
        assert value.encode() not in raw, value
    assert b"Kept Person" in raw
    with timebank.open(url, clock=fixed_clock, create=False) as tb:
        assert (tb.balances(), tb.figures("b"), tb.statement("b", "w-1"), tb.members("b")) == before


def test_an_erasure_a_reader_held_back_says_so_and_a_second_completes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's open read transaction keeps the write-ahead log
    from being emptied: the profile is deleted (no read shows it) but a
    copy may be left in the -wal file, and the erasure says so. Run again
    once the reader is gone, it completes, and no byte of the profile is
    left in the files."""
    monkeypatch.setattr(timebank.storage.sqlite, "ERASE_CHECKPOINT_S", 0.3)
    path = tmp_path / "erase.db"
    with timebank.open(f"sqlite:///{path}", clock=fixed_clock) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        tb.join("b", "w-1", kind="individual", actor=ACTOR, joined_on="2026-01-01",
                profile=timebank.Profile(**OLD))  # fmt: skip
        with a_reader_of(path):
            held = tb.erase_member("w-1", actor=ACTOR)
        assert (held.profile_deleted, held.physically_complete) == (True, False)
        assert tb.profile("w-1") is None
        again = tb.erase_member("w-1", actor=ACTOR)
        assert (again.profile_deleted, again.physically_complete) == (False, True)
        raw = b"".join(f.read_bytes() for f in tmp_path.iterdir())
        for value in OLD.values():
            assert value.encode() not in raw, value


def test_erasure_on_memory_and_of_someone_without_a_profile(
    tb: timebank.Timebank, bank: str
) -> None:
    tb.set_profile("ann", timebank.Profile(display_name="Ann"), actor=ACTOR)
    assert tb.erase_member("ann", actor=ACTOR).profile_deleted
    assert tb.profile("ann") is None
    assert not tb.erase_member("bob", actor=ACTOR).profile_deleted


def test_profiles_are_written_with_their_events_or_not_at_all(
    tb: timebank.Timebank, bank: str
) -> None:
    """On every backend the recorder writes a join's profile, and deletes an
    erased one, in the transaction of its events: a save refused at the
    events' key (another writer recorded first) leaves every profile as it
    was, and so does a join the ledger refuses."""
    from eventsourcing.persistence import IntegrityError

    from timebank.domain.bank import bank_uuid
    from timebank.storage.base import INDEX_KWARG, IndexUpdate

    ann = timebank.Profile(display_name="Ann", email="ann@example.org")
    tb.set_profile("ann", ann, actor=ACTOR)
    recorder = tb._app.recorder
    (recorded,) = recorder.select_events(bank_uuid(bank), limit=1)
    rows = IndexUpdate(
        profiles=(("eve", timebank.Profile(display_name="Eve")),), profiles_erased=("ann",)
    )
    with pytest.raises(IntegrityError):
        recorder.insert_events([recorded], **{INDEX_KWARG: rows})
    assert (tb.profile("eve"), tb.profile("ann")) == (None, ann)
    # a save without events (a migration's profiles) writes its rows all the
    # same: the PostgreSQL library's recorder skipped such a save whole
    recorder.insert_events([], **{INDEX_KWARG: IndexUpdate(profiles=(("fay", ann),))})
    assert tb.profile("fay") == ann
    recorder.insert_events([], **{INDEX_KWARG: IndexUpdate(profiles_erased=("fay",))})
    assert tb.profile("fay") is None
    refused(tb, errors.MemberAlreadyJoined,
            lambda: tb.join(bank, "ann", kind="individual", actor=ACTOR,
                            profile=timebank.Profile(display_name="Not Ann")))  # fmt: skip
    assert tb.profile("ann") == ann
    tb.join(bank, "eve", kind="individual", actor=ACTOR, profile=timebank.Profile(area="Grays"))
    assert tb.profile("eve") == timebank.Profile(area="Grays")
    assert tb.erase_member("ann", actor=ACTOR).profile_deleted
    assert (tb.profile("ann"), tb.profile("eve")) == (None, timebank.Profile(area="Grays"))


def test_update_profile_changes_the_fields_given_and_keeps_the_others(
    tb: timebank.Timebank, bank: str
) -> None:
    ann = timebank.Profile(display_name="Ann", email="ann@example.org", phone="01632 960000")
    tb.set_profile("ann", ann, actor=ACTOR)
    changed = tb.update_profile("ann", actor=ACTOR, email="ann.jones@example.org", phone=None)
    assert changed == timebank.Profile(display_name="Ann", email="ann.jones@example.org")
    assert tb.profile("ann") == changed
    assert tb.update_profile("bob", actor="bob", area="Grays") == timebank.Profile(area="Grays")
    for fields, refused_as in [
        ({}, "no field given: its fields are display_name, email, phone, area"),
        ({"name": "Ann"}, "a profile has no field 'name'"),
        ({"email": "a" * 255}, "email is 255 characters; at most 254"),
        ({"email": "ann.example.org"}, "email must be one address, name@domain"),
        ({"area": "Grays\n"}, "area holds the control character U+000A"),
        ({"phone": 1632960000}, "phone must be text"),
    ]:
        with pytest.raises(errors.InvalidInput, match=re.escape(refused_as)):
            tb.update_profile("ann", actor=ACTOR, **fields)  # type: ignore[arg-type]
        assert tb.profile("ann") == changed
    with pytest.raises(errors.NotPermitted):
        tb.update_profile("ann", actor="bob", email="bob@example.org")
    assert tb.profile("ann") == changed


def test_a_profile_change_waits_for_a_writer_that_holds_the_store(
    tb: timebank.Timebank, bank: str, reopen: Callable[[], timebank.Timebank]
) -> None:
    """``set_profile`` and ``update_profile`` take the store's write lock: a
    change made while an import writes (its transaction open, here held at
    its first progress call) goes in after the import's commit, so the
    import cannot write back a profile it read before the change."""
    tb.set_profile("ann", timebank.Profile(display_name="Ann"), actor=ACTOR)
    inside, release = threading.Event(), threading.Event()

    def progress(done: int) -> None:
        inside.set()
        release.wait(10)

    rows = [
        {"entry_id": f"w{n}", "occurred_on": "2026-02-01", "kind": "exchange",
         "provider": "bob", "receiver": "cat", "hours": "0:01", "bank": bank}
        for n in range(1000)
    ]  # fmt: skip
    importer = threading.Thread(
        target=lambda: tb.import_entries(rows, actor=ACTOR, progress=progress)
    )
    importer.start()
    other = reopen()
    changes: list[timebank.Profile] = []
    try:
        assert inside.wait(10)
        changer = threading.Thread(
            target=lambda: changes.append(other.update_profile("ann", actor=ACTOR, area="Grays"))
        )
        changer.start()
        changer.join(0.5)
        assert changes == []  # waiting for the import
        release.set()
        importer.join(10)
        changer.join(10)
        assert changes == [timebank.Profile(display_name="Ann", area="Grays")]
        assert tb.balance(bank, "bob") == 1000
    finally:
        release.set()
        other.close()


@pytest.mark.parametrize("call", ["erase_member", "set_profile", "update_profile"])
@pytest.mark.parametrize("kind", BACKENDS)
def test_a_role_revoked_while_a_profile_call_waits_for_the_write_lock_is_seen(
    kind: str, call: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The calls on a member's personal data check the actor's role under
    the write lock, as every command does: a coordinator whose role another
    process revokes while the call waits for the lock is refused, and the
    profile is as it was."""
    reopen = open_store(kind, tmp_path)
    with reopen() as tb, reopen() as other:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        tb.grant_role("b", "coord-2", "coordinator", actor=ACTOR)
        tb.join("b", "ann", kind="individual", actor=ACTOR, joined_on="2026-01-01",
                profile=timebank.Profile(display_name="Ann"))  # fmt: skip
        first_while_it_waits_for_the_lock(
            monkeypatch, tb, lambda: other.revoke_role("b", "coord-2", actor=ACTOR)
        )
        calls: dict[str, Callable[[], object]] = {
            "erase_member": lambda: tb.erase_member("ann", actor="coord-2"),
            "set_profile": lambda: tb.set_profile(
                "ann", timebank.Profile(display_name="Anne"), actor="coord-2"
            ),
            "update_profile": lambda: tb.update_profile("ann", actor="coord-2", area="Docks"),
        }
        with pytest.raises(errors.NotPermitted):
            calls[call]()
        assert not monkeypatch._setattr, "the revocation did not come first"
        assert tb.role("b", "coord-2") is None
        assert tb.profile("ann") == timebank.Profile(display_name="Ann")


def test_members_alike_gives_every_membership_of_an_id_told_apart_only_by_case(
    tb: timebank.Timebank, bank: str
) -> None:
    """Another bank's ``Ann`` and this bank's ``ANN`` and ``ann``: asked of
    ``aNN`` (a member of no bank), every one of them, banks in the order
    they were opened; asked of ``ann``, the others; of ``bob``, none."""
    tb.create_bank("uphill", name="Uphill", actor=ACTOR, opened_on="2026-01-01")
    tb.join("uphill", "Ann", kind="individual", actor=ACTOR, joined_on="2026-01-02")
    tb.join(bank, "ANN", kind="organisation", actor=ACTOR, joined_on="2026-01-03")
    assert [(m.bank, m.member, m.kind) for m in tb.members_alike("aNN")] == [
        (bank, "ann", timebank.AccountKind.INDIVIDUAL),
        (bank, "ANN", timebank.AccountKind.ORGANISATION),
        ("uphill", "Ann", timebank.AccountKind.INDIVIDUAL),
    ]
    assert [(m.bank, m.member) for m in tb.members_alike("ann")] == [
        (bank, "ANN"),
        ("uphill", "Ann"),
    ]
    assert tb.members_alike("bob") == []
    with pytest.raises(errors.InvalidInput):
        tb.members_alike("ann@example.org")  # not a member id
