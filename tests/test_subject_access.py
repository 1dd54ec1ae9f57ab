"""A person's own data, for a subject access request (docs/membership.md):
every part checked against what the test itself recorded, on every backend."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

import timebank
from timebank import errors
from timebank.cli import cli

from .conftest import ACTOR
from .test_entries import refused

ROOT, HUB = "riverside", "riverside/hub"
ANN = timebank.Profile(display_name="Ann Example", email="ann@example.org", area="Tilbury")


def _store(tb: timebank.Timebank) -> None:
    """Ann: a member of both banks (left and rejoined the first), a
    coordinator of the mini bank, guardian of Bob, with Gus as hers."""
    tb.create_bank(ROOT, name="Riverside", actor=ACTOR, opened_on="2026-01-01")
    tb.create_bank(HUB, name="Hub", actor=ACTOR, opened_on="2026-01-01")
    tb.join(ROOT, "ann", kind="individual", actor=ACTOR, joined_on="2026-01-01", profile=ANN)
    for member in ("bob", "cat"):
        tb.join(ROOT, member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    for member in ("ann", "hal"):
        tb.join(HUB, member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    tb.grant_role(HUB, "ann", "coordinator", actor=ACTOR)
    tb.appoint_guardian(ROOT, "bob", "ann", actor=ACTOR)
    tb.appoint_guardian(ROOT, "ann", "gus", actor=ACTOR)
    tb.record_exchange(ROOT, "ann", "bob", "1", actor=ACTOR, occurred_on="2026-02-01",
                       entry_id="x1")  # fmt: skip
    tb.leave(ROOT, "ann", actor="ann", left_on="2026-03-01")
    tb.rejoin(ROOT, "ann", actor=ACTOR, rejoined_on="2026-03-05")
    # Ann proposes for Bob, as his guardian; Cat confirms it
    tb.propose(ROOT, "exchange", "bob", "cat", "0:30", actor="ann", on_behalf_of="bob",
               occurred_on="2026-04-01", entry_id="p1")  # fmt: skip
    tb.confirm("p1", actor="cat")
    tb.record_exchange(HUB, "hal", "ann", "2", actor="ann", occurred_on="2026-04-02",
                       entry_id="hub-1")  # fmt: skip
    tb.record_exchange(ROOT, "ann", "hal", "1:15", actor=ACTOR, receiver_bank=HUB,
                       occurred_on="2026-04-03", entry_id="ib-1")  # fmt: skip
    tb.propose(
        ROOT, "exchange", "cat", "ann", "1", actor="cat", occurred_on="2026-04-04", entry_id="p2"
    )  # fmt: skip  (waits for Ann's confirmation)
    tb.propose(
        ROOT, "exchange", "cat", "bob", "1", actor="cat", occurred_on="2026-04-04", entry_id="p3"
    )  # fmt: skip  (none of Ann's business)
    tb.reverse("x1", actor=ACTOR, reversal_id="x1-undo", occurred_on="2026-04-05")


def test_everything_the_store_holds_about_a_member(
    reopen: Callable[[], timebank.Timebank],
) -> None:
    with reopen() as tb:
        _store(tb)
    with reopen() as tb:
        found = tb.subject_access("ann")
        assert found.person == "ann"
        assert found.profile == ANN
        assert [(m.bank, m.status) for m in found.memberships] == [
            (ROOT, "active"), (HUB, "active")]  # fmt: skip
        assert found.periods == {
            ROOT: ((date(2026, 1, 1), date(2026, 3, 1)), (date(2026, 3, 5), None)),
            HUB: ((date(2026, 1, 1), None),),
        }
        # the whole statements, as the log replays them
        assert found.statements == {b: tuple(tb.ledger_statement(b, "ann")) for b in (ROOT, HUB)}
        assert [line.entry_id for line in found.statements[ROOT]] == ["x1", "ib-1", "x1-undo"]
        assert [line.entry_id for line in found.statements[HUB]] == ["hub-1"]  # ib-1: hal's side
        # recorded by Ann (hub-1), or by Ann for Bob (p1): her actions
        assert [e.entry_id for e in found.recorded] == ["p1", "hub-1"]
        assert [p.entry_id for p in found.pending] == ["p2"]
        assert found.roles == {HUB: "coordinator"}
        assert (found.guardians, found.guardian_of) == ({ROOT: ("gus",)}, {ROOT: ("bob",)})
        # every event that names her, and how
        named = [(e.event, e.bank, e.entry_id, e.named_as) for e in found.events]
        assert named == [
            ("Bank.MemberJoined", ROOT, None, ("member_id",)),
            ("Bank.MemberJoined", HUB, None, ("member_id",)),
            ("Bank.RoleGranted", HUB, None, ("user",)),
            ("Bank.GuardianAppointed", ROOT, None, ("guardian",)),  # for Bob
            ("Bank.GuardianAppointed", ROOT, None, ("member_id",)),  # Gus, for her
            ("Bank.ExchangeRecorded", ROOT, "x1", ("provider",)),
            ("Bank.MemberLeft", ROOT, None, ("actor", "member_id")),
            ("Bank.MemberRejoined", ROOT, None, ("member_id",)),
            ("Bank.EntryProposed", ROOT, "p1", ("actor",)),
            ("Bank.ExchangeRecorded", ROOT, "p1", ("actor",)),
            ("Bank.ExchangeRecorded", HUB, "hub-1", ("actor", "receiver")),
            ("Bank.InterBankEntryRecorded", ROOT, "ib-1", ("provider", "side_legs")),
            ("Bank.InterBankEntryRecorded", HUB, "ib-1", ("provider",)),
            ("Bank.EntryProposed", ROOT, "p2", ("receiver", "confirmer")),
            ("Bank.EntryReversed", ROOT, "x1-undo", ("reversed_legs",)),
        ]
        assert all(e.recorded_at.tzinfo is not None for e in found.events)
        # Bob's: the entry recorded on his behalf is his too
        bob = tb.subject_access("bob")
        assert [e.entry_id for e in bob.recorded] == ["p1"]
        assert [p.entry_id for p in bob.pending] == ["p3"]
        assert (bob.profile, bob.guardians, bob.guardian_of) == (None, {ROOT: ("ann",)}, {})


def test_people_who_are_not_members_and_nobody(reopen: Callable[[], timebank.Timebank]) -> None:
    with reopen() as tb:
        _store(tb)
        gus = tb.subject_access("gus")  # only ever a guardian
        assert (gus.memberships, gus.statements, gus.guardian_of) == ((), {}, {ROOT: ("ann",)})
        coordinator = tb.subject_access(ACTOR)  # opened the banks, recorded entries
        assert coordinator.roles == {ROOT: "admin", HUB: "admin"}
        assert [e.entry_id for e in coordinator.recorded] == ["x1", "ib-1", "x1-undo"]
        assert coordinator.memberships == ()
        error = refused(tb, errors.MemberNotFound, lambda: tb.subject_access("zed"))
        assert "holds nothing about 'zed'" in str(error)
        assert tb.subject_access("cat").events  # a member with no profile
        refused(tb, errors.InvalidId, lambda: tb.subject_access("not an id"))


def test_after_an_erasure_only_the_profile_is_gone(reopen: Callable[[], timebank.Timebank]) -> None:
    with reopen() as tb:
        _store(tb)
        before = tb.subject_access("ann")
        tb.erase_member("ann", actor=ACTOR)
        after = tb.subject_access("ann")
    assert after.profile is None
    erased = after.events[-1]
    assert (erased.event, erased.bank, erased.named_as) == ("Registry.MemberErased", None,
                                                            ("member_id",))  # fmt: skip
    assert after.to_dict() == {**before.to_dict(), "profile": None,
                               "events": [*before.to_dict()["events"], erased.to_dict()]}  # fmt: skip


def test_the_command_writes_the_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with timebank.open(url) as tb:
        _store(tb)
        expected = tb.subject_access("ann").to_dict()
    out = tmp_path / "ann.json"
    result = CliRunner().invoke(cli, ["--db", url, "subject-access", "ann", "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(expected, default=str))
    assert data["profile"]["email"] == "ann@example.org"
    assert data["memberships"][0]["periods"] == [["2026-01-01", "2026-03-01"], ["2026-03-05", None]]
    missing = CliRunner().invoke(cli, ["--db", url, "subject-access", "zed"])
    assert (missing.exit_code, missing.output.startswith("error: member_not_found:")) == (1, True)


@pytest.mark.parametrize("person", ["ann", "bob", "gus", ACTOR])
def test_the_json_holds_every_part(tmp_path: Path, person: str) -> None:
    with timebank.open(f"sqlite:///{tmp_path / 's.db'}") as tb:
        _store(tb)
        data = tb.subject_access(person).to_dict()
    assert set(data) == {"person", "profile", "memberships", "statements", "recorded", "pending",
                         "roles", "guardians", "guardian_of", "events"}  # fmt: skip
    json.dumps(data)  # every value is JSON as it is
