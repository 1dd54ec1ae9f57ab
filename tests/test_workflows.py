"""Roles, guardian angels, mini time banks, inter-bank entries (docs/workflows.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import attrs
import pytest

import timebank
from timebank import errors
from timebank.domain.policy import BalanceLimits, Policy
from timebank.domain.roles import Permissions, Role

from .conftest import ACTOR, TODAY
from .test_entries import refused

HUB = "riverside/north-hub"


@pytest.fixture
def tree(tb: timebank.Timebank, bank: str) -> str:
    """``riverside`` (ann, bob, cat, org) and its mini bank ``riverside/north-hub``
    (dan, eve, and ann again), with coordinator ``co`` granted in riverside."""
    tb.grant_role(bank, "co", "coordinator", actor=ACTOR)
    tb.create_bank(HUB, name="North hub", actor=ACTOR, opened_on="2026-01-01")
    for member in ("dan", "eve", "ann"):
        tb.join(HUB, member, kind="individual", actor="co", joined_on="2026-01-01")
    return HUB


def balances(tb: timebank.Timebank) -> dict[tuple[str, str], int]:
    return {(b.bank, b.account): b.balance_minutes for b in tb.balances()}


# --- roles -------------------------------------------------------------------------------
def test_roles_come_from_grants_parents_and_active_membership(
    tb: timebank.Timebank, tree: str
) -> None:
    assert tb.role("riverside", ACTOR) is Role.ADMIN  # it created the bank
    assert tb.role(tree, "co") is Role.COORDINATOR  # granted in the parent
    assert tb.role("riverside", "ann") is Role.MEMBER
    assert tb.role("riverside", "dan") is None  # a member of the hub only
    assert tb.role(tree, "dan") is Role.MEMBER
    tb.suspend(tree, "dan", actor="co")
    assert tb.role(tree, "dan") is None  # suspended members cannot act
    assert dict(tb.bank("riverside").roles) == {ACTOR: "admin", "co": "coordinator"}
    tb.revoke_role("riverside", "co", actor=ACTOR)
    assert tb.role(tree, "co") is None


R = "riverside"
NEEDS_CO = "that needs the coordinator role, they have the member role"


@pytest.mark.parametrize(
    ("actor", "command", "ids", "why"),
    [
        ("ann", lambda tb: tb.join(R, "zed", kind="individual", actor="ann"),
         ("manage_members", R, "member"), f"add members in bank {R!r}: {NEEDS_CO}"),
        ("ann", lambda tb: tb.record_exchange(R, "ann", "bob", "1", actor="ann"),
         ("record", R, "member"), f"record entries for others in bank {R!r}: {NEEDS_CO}"),
        ("ann", lambda tb: tb.suspend(R, "bob", actor="ann"),
         ("manage_members", R, "member"), f"suspend members in bank {R!r}: {NEEDS_CO}"),
        ("co", lambda tb: tb.set_policy(R, Policy(entry_minutes_max=60), actor="co"),
         ("manage_bank", R, "coordinator"), f"change the policy in bank {R!r}: that needs"
         " the admin role, they have the coordinator role"),
        ("co", lambda tb: tb.grant_role(R, "ann", "coordinator", actor="co"),
         ("manage_bank", R, "coordinator"), f"grant roles in bank {R!r}: that needs"
         " the admin role, they have the coordinator role"),
        ("co", lambda tb: tb.create_bank(f"{R}/x", name="X", actor="co"),
         ("manage_bank", R, "coordinator"), f"open mini time banks in bank {R!r}: that needs"
         " the admin role, they have the coordinator role"),
        ("nobody", lambda tb: tb.erase_member("ann", actor="nobody"),
         ("manage_members", None, None), "manage member 'ann': that needs the"
         " manage_members permission in one of their banks"),
        ("bob", lambda tb: tb.set_profile("ann", timebank.Profile("A"), actor="bob"),
         ("manage_members", None, None), "manage member 'ann': that needs the"
         " manage_members permission in one of their banks"),
        ("bob", lambda tb: tb.donate(R, "ann", "1", actor="bob"),
         ("record", R, "member"), f"record entries for others in bank {R!r}: {NEEDS_CO}"),
        ("bob", lambda tb: tb.leave(R, "ann", actor="bob"),
         ("act_on_behalf", R, "member"), f"act on behalf of 'ann' in bank {R!r}: {NEEDS_CO}"),
        ("dan", lambda tb: tb.gift(R, "ann", "bob", "1", actor="dan"),
         ("record", R, None), f"record entries for others in bank {R!r}: that needs"
         " the coordinator role, they have no role"),
        # their own credits, in a bank where they have no role (the hub's member)
        ("eve", lambda tb: tb.gift(R, "eve", "bob", "1", actor="eve"),
         ("record_own", R, None), f"give their own credits in bank {R!r}: that needs"
         " the member role, they have no role"),
    ],
)  # fmt: skip
def test_refusals_name_the_actor_action_and_role(
    tb: timebank.Timebank,
    tree: str,
    actor: str,
    command: Callable[[timebank.Timebank], object],
    ids: tuple[str, str | None, str | None],
    why: str,
) -> None:
    """An app shows or logs who was refused what where, and with which role,
    from the error's ids (the bank is None where the action is on a person
    across their banks); the message says the same for people."""
    error = refused(tb, errors.NotPermitted, lambda: command(tb))
    assert isinstance(error, errors.NotPermitted)
    assert error.code == "not_permitted"
    assert (error.actor, (error.action, error.bank, error.role)) == (actor, ids)
    assert str(error) == f"{actor!r} may not {why}"


def test_reversal_needs_the_reverse_permission(tb: timebank.Timebank, tree: str) -> None:
    tb.record_exchange("riverside", "ann", "bob", "1", actor="co", entry_id="e1")
    error = refused(tb, errors.NotPermitted, lambda: tb.reverse("e1", actor="ann"))
    assert (error.action, error.role) == ("reverse", "member")  # type: ignore[attr-defined]
    assert tb.reverse("e1", actor="co").reverses == "e1"


def test_undoing_a_reversal_between_banks_needs_the_reverse_permission_in_both(
    tb: timebank.Timebank, tree: str
) -> None:
    """A reversal of an inter-bank entry names its own bank alone but moved
    both. Undoing it (never allowed) is refused first for want of the
    permission in either bank, as undoing the entry is (docs/concepts.md,
    "Order of checks"), then as a reversal. (The state machine found the
    receiver's bank left unchecked.)"""
    tb.record_exchange("riverside", "bob", "dan", "1", actor="co", receiver_bank=tree,
                       entry_id="x")  # fmt: skip
    assert tb.reverse("x", actor="co", reversal_id="rx").receiver_bank is None
    policy = tb.policy("riverside")
    members_reverse = attrs.evolve(policy.permissions, reverse=Role.MEMBER)
    tb.set_policy("riverside", attrs.evolve(policy, permissions=members_reverse), actor=ACTOR)
    for target in ("x", "rx"):  # bob, a member of riverside alone
        error = refused(tb, errors.NotPermitted, lambda t=target: tb.reverse(t, actor="bob"))
        assert (error.bank, error.action) == (tree, "reverse")  # type: ignore[attr-defined]
    refused(tb, errors.CannotReverseReversal, lambda: tb.reverse("rx", actor="co"))


@pytest.mark.parametrize(
    "action", ["record", "record_own", "approve", "reverse", "act_on_behalf", "manage_members"]
)
def test_each_command_asks_the_policy_about_its_own_action(
    tb: timebank.Timebank, bank: str, action: str
) -> None:
    """With one action given to admins alone, the commands that need it are
    refused, naming that action, and every other command goes through: no
    command asks the policy about another action (by default a coordinator
    holds all of them, and could not tell)."""
    tb.grant_role(bank, "co", "coordinator", actor=ACTOR)
    tb.propose(bank, "gift", "ann", "bob", "1", actor="ann", entry_id="p1")
    tb.propose(bank, "gift", "bob", "ann", "1", actor="bob", entry_id="p2")
    tb.propose(bank, "exchange", "ann", "cat", "1", actor="ann", entry_id="p3")
    tb.record_exchange(bank, "ann", "bob", "1", actor=ACTOR, entry_id="x1")
    tb.set_policy(bank, Policy(permissions=Permissions(**{action: "admin"})), actor=ACTOR)
    commands: list[tuple[str, str, Callable[[], object]]] = [
        ("record", "co", lambda: tb.record_exchange(bank, "bob", "ann", "1", actor="co")),
        ("record", "co", lambda: tb.record_group_exchange(bank, {"org": 2}, {"ann": 1, "bob": 1},
                                                          actor="co")),
        ("record_own", "ann", lambda: tb.gift(bank, "ann", "bob", "0:30", actor="ann")),
        ("record_own", "ann", lambda: tb.propose(bank, "exchange", "ann", "bob", "1",
                                                 actor="ann")),
        ("approve", "co", lambda: tb.approve("p1", actor="co")),
        ("approve", "co", lambda: tb.decline("p2", actor="co")),
        ("approve", "co", lambda: tb.expire_pending(bank, actor="co")),
        ("reverse", "co", lambda: tb.reverse("x1", actor="co")),
        ("act_on_behalf", "co", lambda: tb.gift(bank, "bob", "cat", "0:30", actor="co",
                                                on_behalf_of="bob")),
        ("act_on_behalf", "co", lambda: tb.confirm("p3", actor="co", on_behalf_of="cat")),
        ("manage_members", "co", lambda: tb.join(bank, "dan", kind="individual", actor="co")),
        ("manage_members", "co", lambda: tb.appoint_guardian(bank, "ann", "gus", actor="co")),
        ("manage_members", "co", lambda: tb.suspend(bank, "org", actor="co")),
    ]  # fmt: skip
    refusals = 0
    for needed, actor, command in commands:
        if needed != action:
            command()
            continue
        error = refused(tb, errors.NotPermitted, command)
        role = "member" if actor == "ann" else "coordinator"
        assert (error.actor, error.action, error.bank, error.role) == (actor, action, bank, role)
        assert str(error).endswith(f"that needs the admin role, they have the {role} role")
        refusals += 1
    assert refusals >= 1


def test_members_act_for_themselves_where_the_rules_say(tb: timebank.Timebank, bank: str) -> None:
    tb.set_profile("ann", timebank.Profile("Ann"), actor="ann")
    assert tb.profile("ann") == timebank.Profile("Ann")
    tb.gift(bank, "ann", "bob", "1", actor="ann")  # their own credits: no approval needed
    tb.donate(bank, "bob", "0:30", actor="bob")
    assert tb.leave(bank, "cat", actor="cat").status == "left"


def test_a_policy_decides_which_role_may_do_what(tb: timebank.Timebank, bank: str) -> None:
    open_policy = Policy(permissions=Permissions(record="member", reverse="admin"))
    tb.set_policy(bank, open_policy, actor=ACTOR)
    tb.record_exchange(bank, "ann", "bob", "1", actor="ann", entry_id="e1")  # members record
    tb.grant_role(bank, "co", "coordinator", actor=ACTOR)
    refused(tb, errors.NotPermitted, lambda: tb.reverse("e1", actor="co"))
    tb.reverse("e1", actor=ACTOR)
    with pytest.raises(errors.InvalidPolicy):
        Permissions(manage_bank="coordinator")
    with pytest.raises(errors.InvalidPolicy):
        Policy.from_dict({**Policy().to_dict(), "permissions": {"fly": "member"}})
    assert Policy.from_dict(open_policy.to_dict()) == open_policy


def test_a_root_bank_keeps_an_admin(tb: timebank.Timebank, bank: str) -> None:
    refused(tb, errors.LastAdmin, lambda: tb.revoke_role(bank, ACTOR, actor=ACTOR))
    refused(tb, errors.LastAdmin, lambda: tb.grant_role(bank, ACTOR, "coordinator", actor=ACTOR))
    refused(tb, errors.RoleNotFound, lambda: tb.revoke_role(bank, "ann", actor=ACTOR))
    refused(tb, errors.InvalidInput, lambda: tb.grant_role(bank, "ann", "member", actor=ACTOR))
    refused(tb, errors.InvalidInput, lambda: tb.grant_role(bank, "ann", "boss", actor=ACTOR))
    tb.grant_role(bank, "second", "admin", actor=ACTOR)
    tb.revoke_role(bank, ACTOR, actor="second")
    assert dict(tb.bank(bank).roles) == {"second": "admin"}


def test_a_mini_bank_may_lose_its_own_last_admin(tb: timebank.Timebank, tree: str) -> None:
    """Only a root bank must keep an admin: a mini bank's parent's admins
    are its admins too, so its own last one may be downgraded or go."""
    assert dict(tb.bank(tree).roles) == {ACTOR: "admin"}  # it opened the hub
    tb.grant_role(tree, ACTOR, "coordinator", actor=ACTOR)
    tb.revoke_role(tree, ACTOR, actor=ACTOR)
    assert dict(tb.bank(tree).roles) == {}
    assert tb.role(tree, ACTOR) is Role.ADMIN  # from the parent
    tb.grant_role(tree, "hana", "admin", actor=ACTOR)  # which it still may do
    assert dict(tb.bank(tree).roles) == {"hana": "admin"}


# --- guardian angels and acting on behalf -----------------------------------------------------
def test_a_guardian_angel_acts_for_their_member_and_both_ids_are_kept(
    tb: timebank.Timebank, tree: str
) -> None:
    refused(tb, errors.NotPermitted, lambda: tb.gift("riverside", "ann", "bob", "1",
                                                      actor="gabe", on_behalf_of="ann"))  # fmt: skip
    tb.appoint_guardian("riverside", "ann", "gabe", actor="co")
    assert tb.guardians("riverside", "ann") == ["gabe"]
    gift = tb.gift("riverside", "ann", "bob", "1", actor="gabe", on_behalf_of="ann")
    assert (gift.actor, gift.on_behalf_of) == ("gabe", "ann")
    assert tb.entry(gift.entry_id).on_behalf_of == "ann"
    pending = tb.propose("riverside", "exchange", "ann", "cat", "2", actor="gabe",
                         on_behalf_of="ann", entry_id="p1")  # fmt: skip
    assert (pending.actor, pending.on_behalf_of, pending.confirmer) == ("gabe", "ann", "cat")
    # a guardian of ann is not a guardian of bob, and not a guardian in the hub
    refused(tb, errors.NotPermitted, lambda: tb.gift("riverside", "bob", "ann", "1",
                                                      actor="gabe", on_behalf_of="bob"))  # fmt: skip
    tb.remove_guardian("riverside", "ann", "gabe", actor="co")
    refused(tb, errors.NotPermitted, lambda: tb.gift("riverside", "ann", "bob", "1",
                                                      actor="gabe", on_behalf_of="ann"))  # fmt: skip
    refused(tb, errors.RoleNotFound,
            lambda: tb.remove_guardian("riverside", "ann", "gabe", actor="co"))  # fmt: skip


def test_a_coordinator_records_on_behalf_of_a_party_only(tb: timebank.Timebank, tree: str) -> None:
    entry = tb.record_exchange("riverside", "ann", "bob", "1", actor="co", on_behalf_of="bob")
    assert (entry.actor, entry.on_behalf_of) == ("co", "bob")
    refused(tb, errors.InvalidInput, lambda: tb.record_exchange(
        "riverside", "ann", "bob", "1", actor="co", on_behalf_of="cat"))  # fmt: skip
    # a retry is answered with the entry as recorded, whoever it names (docs/concepts.md)
    again = tb.record_exchange("riverside", "ann", "bob", "1", actor=ACTOR, on_behalf_of="ann",
                               entry_id=entry.entry_id, occurred_on=entry.occurred_on)  # fmt: skip
    assert again == entry


def test_a_refusal_in_a_members_name_names_whoever_was_judged(
    tb: timebank.Timebank, tree: str
) -> None:
    """An act judged as the member's own (giving their credits, proposing,
    confirming) is refused naming the member and their role; acting for
    them at all and recording for others are the actor's, and name the
    actor (docs/workflows.md, Acting on behalf)."""
    tb.appoint_guardian("riverside", "ann", "gabe", actor="co")

    def judged(
        command: Callable[[], object], error: type[Exception] = errors.NotPermitted
    ) -> tuple:
        caught = refused(tb, error, command)
        return caught.actor, caught.action, caught.role  # type: ignore[attr-defined]

    tb.set_policy("riverside", Policy(approval_threshold_minutes=60), actor=ACTOR)
    assert judged(lambda: tb.gift("riverside", "ann", "bob", "2", actor="gabe", on_behalf_of="ann"),
                  errors.ApprovalRequired) == ("ann", "record", "member")  # fmt: skip
    tb.set_policy("riverside", Policy(permissions=Permissions(record_own="coordinator")),
                  actor=ACTOR)  # fmt: skip
    assert judged(lambda: tb.gift("riverside", "ann", "bob", "1", actor="gabe",
                                  on_behalf_of="ann")) == ("ann", "record_own", "member")  # fmt: skip
    tb.set_policy("riverside", Policy(), actor=ACTOR)
    assert judged(lambda: tb.propose("riverside", "gift", "ann", "bob", "1", actor="co",
                                     on_behalf_of="bob")) == ("bob", "record_own", None)  # fmt: skip
    tb.propose("riverside", "exchange", "ann", "cat", "1", actor="ann", entry_id="p1")
    assert judged(lambda: tb.confirm("p1", actor="co", on_behalf_of="ann")) == (
        "ann", "record_own", None)  # fmt: skip
    # the actor's own: acting for the member, recording for others
    assert judged(lambda: tb.gift("riverside", "bob", "ann", "1", actor="gabe",
                                  on_behalf_of="bob")) == ("gabe", "act_on_behalf", None)  # fmt: skip
    assert judged(lambda: tb.record_exchange("riverside", "ann", "bob", "1", actor="gabe",
                                             on_behalf_of="ann")) == ("gabe", "record", None)  # fmt: skip


def test_a_reversal_in_a_members_name_names_a_party_of_the_entry_reversed(
    tb: timebank.Timebank, tree: str
) -> None:
    """As recording does: no reversal says it was made for someone who had
    no part in the entry; the actor acts for the party in the bank where
    they take part, and needs ``reverse`` themselves."""
    tb.record_exchange("riverside", "ann", "bob", "1", actor="co", entry_id="x1")
    error = refused(tb, errors.InvalidInput,
                    lambda: tb.reverse("x1", actor="co", on_behalf_of="cat"))  # fmt: skip
    assert str(error) == "on_behalf_of must name a party of entry 'x1': 'cat'"
    assert error.ids == {"member": "cat"}
    tb.appoint_guardian("riverside", "ann", "gabe", actor="co")
    error = refused(tb, errors.NotPermitted,
                    lambda: tb.reverse("x1", actor="gabe", on_behalf_of="ann"))  # fmt: skip
    assert (error.actor, error.action) == ("gabe", "reverse")  # a guardian reverses nothing
    assert tb.reverse("x1", actor="co", on_behalf_of="bob", reversal_id="r1").on_behalf_of == "bob"
    assert tb.entry("r1").on_behalf_of == "bob"
    # a group's participants are its parties
    tb.record_group_exchange("riverside", {"ann": 2}, {"bob": 1, "cat": 1}, actor="co",
                             entry_id="g1")  # fmt: skip
    refused(tb, errors.InvalidInput,
            lambda: tb.reverse("g1", actor="co", on_behalf_of="org"))  # fmt: skip
    assert tb.reverse("g1", actor="co", on_behalf_of="cat").on_behalf_of == "cat"
    # between banks: the receiver takes part in the hub, where co may not act for members
    tb.record_exchange("riverside", "bob", "dan", "1", actor=ACTOR, receiver_bank=tree,
                       entry_id="i1")  # fmt: skip
    tb.set_policy(tree, Policy(permissions=Permissions(act_on_behalf="admin")), actor=ACTOR)
    error = refused(tb, errors.NotPermitted,
                    lambda: tb.reverse("i1", actor="co", on_behalf_of="dan"))  # fmt: skip
    assert (error.action, error.bank) == ("act_on_behalf", tree)
    assert tb.reverse("i1", actor="co", on_behalf_of="bob").reverses == "i1"


# --- mini time banks ------------------------------------------------------------------------
def test_a_mini_bank_copies_its_parents_policy_and_has_its_own_members(
    tb: timebank.Timebank, bank: str
) -> None:
    policy = Policy(individual=BalanceLimits(-600, None), timezone="Europe/Dublin")
    tb.set_policy(bank, policy, actor=ACTOR)
    info = tb.create_bank(HUB, name="North hub", actor=ACTOR, opened_on="2026-02-01")
    assert (info.parent, info.policy) == (bank, policy)
    tb.set_policy(bank, Policy(), actor=ACTOR)
    assert tb.policy(HUB) == policy  # decided at opening; the hub's own from then on
    tb.join(HUB, "ann", kind="individual", actor=ACTOR, joined_on="2026-02-01")
    tb.join(HUB, "dan", kind="individual", actor=ACTOR, joined_on="2026-02-01")
    tb.record_exchange(HUB, "ann", "dan", "1", actor=ACTOR)
    assert [(m.bank, m.balance_minutes) for m in tb.memberships("ann")] == [(bank, 0), (HUB, 60)]
    assert tb.balance(bank, "ann") == 0


def test_opening_a_mini_bank_needs_its_parent_and_its_admin(
    tb: timebank.Timebank, bank: str
) -> None:
    refused(tb, errors.BankNotFound, lambda: tb.create_bank("elsewhere/hub", name="H", actor=ACTOR))
    refused(tb, errors.BeforeBankOpened,
            lambda: tb.create_bank(HUB, name="H", actor=ACTOR, opened_on="2025-12-31"))  # fmt: skip
    refused(tb, errors.NotPermitted, lambda: tb.create_bank(HUB, name="H", actor="ann"))
    tb.create_bank(HUB, name="H", actor=ACTOR)
    assert tb.bank(HUB).opened_on == TODAY


@pytest.mark.parametrize("name", ["North\x00hub", "North\nhub", "North\x1b[2Jhub", "", "   "])
def test_a_bank_name_with_a_control_character_or_nothing_in_it_is_refused(
    tb: timebank.Timebank, bank: str, name: str
) -> None:
    """A NUL in a bank's name went into its event; PostgreSQL's text
    columns refuse a NUL, so the read model stopped at that event and every
    report of the store failed with a raw DataError."""
    refused(tb, errors.InvalidInput, lambda: tb.create_bank(HUB, name=name, actor=ACTOR))
    assert tb.report(bank).individual_members == 3  # the read model takes the store's events


# --- inter-bank entries -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("exchange", {("riverside", "bob"): 90, ("riverside/north-hub", "dan"): -90}),
        ("pot_exchange", {("riverside", "bob"): 90, ("riverside/north-hub", "@pot"): -90}),
        ("gift", {("riverside", "bob"): -90, ("riverside/north-hub", "dan"): 90}),
        ("donation", {("riverside", "bob"): -90, ("riverside/north-hub", "@pot"): 90}),
    ],
)
def test_inter_bank_entries_go_through_clearing_accounts_that_cancel_out(
    tb: timebank.Timebank, tree: str, kind: str, expected: dict[tuple[str, str], int]
) -> None:
    tb.donate(tree, "eve", "5", actor="co")  # the hub's pot can pay
    before = balances(tb)
    methods = {
        "exchange": lambda: tb.record_exchange("riverside", "bob", "dan", "1:30", actor="co",
                                               receiver_bank=tree, entry_id="x1"),
        "pot_exchange": lambda: tb.record_pot_exchange("riverside", "bob", "dan", "1:30",
                                                       actor="co", receiver_bank=tree, entry_id="x1"),
        "gift": lambda: tb.gift("riverside", "bob", "dan", "1:30", actor="co",
                                receiver_bank=tree, entry_id="x1"),
        "donation": lambda: tb.donate("riverside", "bob", "1:30", actor="co",
                                      receiver_bank=tree, entry_id="x1"),
    }  # fmt: skip
    entry = methods[kind]()
    assert (entry.bank, entry.provider_bank, entry.receiver_bank) == (
        "riverside",
        "riverside",
        tree,
    )
    after = balances(tb)
    changed = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    sign = -1 if kind in ("exchange", "pot_exchange") else 1
    assert changed == {
        **expected,
        ("riverside", f"@clearing:{tree}"): 90 * sign,
        (tree, "@clearing:riverside"): -90 * sign,
    }
    tb.check_invariants()
    assert methods[kind]() == entry  # a retry with the same id records nothing
    # both members see it on their statements, with the real counterparty
    line = tb.statement("riverside", "bob")[-1]
    assert line.entry_id == "x1"
    assert line.counterparties[0].startswith(f"{tree}:")
    tb.reverse("x1", actor="co", reversal_id="r1")
    assert balances(tb) == {**before, ("riverside", f"@clearing:{tree}"): 0,
                            (tree, "@clearing:riverside"): 0}  # fmt: skip
    tb.check_invariants()


def test_an_undated_inter_bank_entry_is_today_in_the_earlier_bank() -> None:
    """Banks of one tree in timezones a day apart: at noon UTC on 30 June it
    is already 1 July in Kiritimati, still 30 June in Pago Pago. An entry,
    a reversal, a donation and a proposal given no date, from the bank
    ahead to the bank behind, are dated 30 June; dated 1 July, the bank
    behind refused each as in its future."""
    moment = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
    with timebank.open("memory://", clock=lambda: moment) as tb:
        tb.create_bank("home", name="Home", actor=ACTOR, opened_on="2026-06-01",
                       policy=Policy(timezone="Pacific/Pago_Pago"))  # fmt: skip
        tb.create_bank("home/isle", name="Isle", actor=ACTOR, opened_on="2026-06-01",
                       policy=Policy(timezone="Pacific/Kiritimati"))  # fmt: skip
        tb.join("home", "bob", kind="individual", actor=ACTOR, joined_on="2026-06-01")
        tb.join("home/isle", "ann", kind="individual", actor=ACTOR, joined_on="2026-06-01")
        assert (tb.today("home"), tb.today("home/isle")) == (date(2026, 6, 30), date(2026, 7, 1))
        ahead = {"actor": ACTOR, "receiver_bank": "home"}
        made = [
            tb.record_exchange("home/isle", "ann", "bob", "2:00", **ahead),  # type: ignore[arg-type]
            tb.donate("home/isle", "ann", "0:30", **ahead),  # type: ignore[arg-type]
        ]
        made.append(tb.reverse(made[0].entry_id, actor=ACTOR))
        proposed = tb.propose("home/isle", "exchange", "ann", "bob", "1:00", actor="ann",
                              receiver_bank="home")  # fmt: skip
        assert [e.occurred_on for e in made] + [proposed.occurred_on] == [date(2026, 6, 30)] * 4
        # within one bank, today is still the bank's own
        tb.join("home/isle", "cat", kind="individual", actor=ACTOR, joined_on="2026-06-01")
        own = tb.record_exchange("home/isle", "ann", "cat", "1:00", actor=ACTOR)
        assert own.occurred_on == date(2026, 7, 1)
        assert tb.audit().ok
        tb.check_invariants()


def test_an_inter_bank_entry_is_all_or_nothing(tb: timebank.Timebank, tree: str) -> None:
    tb.set_policy(tree, Policy(individual=BalanceLimits(-60, None)), actor=ACTOR)
    error = refused(tb, errors.BalanceLimitExceeded, lambda: tb.record_exchange(
        "riverside", "bob", "dan", "2", actor="co", receiver_bank=tree))  # fmt: skip
    assert error.bank == tree  # type: ignore[attr-defined]
    refused(tb, errors.PotOverdrawn, lambda: tb.record_pot_exchange(
        "riverside", "bob", "dan", "1", actor="co", receiver_bank=tree))  # fmt: skip
    refused(tb, errors.MemberNotFound, lambda: tb.record_exchange(
        "riverside", "bob", "cat", "1", actor="co", receiver_bank=tree))  # fmt: skip
    refused(tb, errors.SelfExchange, lambda: tb.record_exchange(
        "riverside", "ann", "ann", "1", actor="co", receiver_bank=tree))  # fmt: skip
    tb.create_bank("elsewhere", name="Elsewhere", actor="co")
    tb.join("elsewhere", "fay", kind="individual", actor="co")
    refused(tb, errors.BanksNotInSameTree, lambda: tb.record_exchange(
        "riverside", "bob", "fay", "1", actor="co", receiver_bank="elsewhere"))  # fmt: skip
    # recording on two banks needs the right to record in both
    tb.grant_role(tree, "hubco", "coordinator", actor=ACTOR)
    refused(tb, errors.NotPermitted, lambda: tb.record_exchange(
        "riverside", "bob", "dan", "1", actor="hubco", receiver_bank=tree))  # fmt: skip


def test_clearing_limits_are_a_trust_line(tb: timebank.Timebank, tree: str) -> None:
    tb.set_policy(tree, Policy(clearing=BalanceLimits(-120, 120)), actor=ACTOR)
    tb.record_exchange("riverside", "bob", "dan", "2", actor="co", receiver_bank=tree)
    refused(tb, errors.BalanceLimitExceeded, lambda: tb.record_exchange(
        "riverside", "bob", "dan", "1", actor="co", receiver_bank=tree))  # fmt: skip
    tb.record_exchange(tree, "dan", "bob", "3", actor="co", receiver_bank="riverside")
    assert tb.balance(tree, "@clearing:riverside") == -60


def test_pots_give_to_members_and_to_other_pots_of_the_tree(
    tb: timebank.Timebank, tree: str
) -> None:
    tb.donate("riverside", "bob", "3", actor="co")
    tb.gift("riverside", "@pot", "@pot", "2", actor="co", receiver_bank=tree)
    tb.gift(tree, "@pot", "dan", "1", actor="co")  # a welcome grant from the hub's pot
    assert (tb.balance("riverside", "@pot"), tb.balance(tree, "@pot")) == (60, 60)
    assert tb.balance(tree, "dan") == 60
    refused(tb, errors.PotOverdrawn, lambda: tb.gift(tree, "@pot", "dan", "2", actor="co"))
    # two pots are two accounts; a pot's gift to itself is no gift
    error = refused(tb, errors.InvalidInput, lambda: tb.gift(tree, "@pot", "@pot", "1", actor="co"))
    assert str(error) == "a gift to the bank's own pot is a donation: use donate"
    refused(tb, errors.InvalidInput, lambda: tb.gift(tree, "dan", "@pot", "1", actor="co"))
    refused(tb, errors.NotPermitted, lambda: tb.gift(tree, "@pot", "dan", "1", actor="dan"))
    tb.check_invariants()


def test_rolled_up_figures_count_an_inter_bank_entry_once(tb: timebank.Timebank, tree: str) -> None:
    tb.record_exchange("riverside", "ann", "bob", "1", actor="co")
    tb.record_exchange(tree, "dan", "eve", "2", actor="co")
    tb.record_exchange("riverside", "bob", "dan", "3", actor="co", receiver_bank=tree)
    alone, hub = tb.figures("riverside"), tb.figures(tree)
    rolled = tb.figures("riverside", rollup=True)
    assert (alone.exchanges, hub.exchanges, rolled.exchanges) == (2, 2, 3)
    assert rolled.exchanged_minutes == 6 * 60
    assert rolled.banks == ("riverside", tree)
    assert rolled.individual_members == alone.individual_members + hub.individual_members


def test_inter_bank_entries_survive_a_reopen(
    reopen: Callable[[], timebank.Timebank], tb: timebank.Timebank, tree: str
) -> None:
    tb.record_exchange("riverside", "bob", "dan", "3", actor="co", receiver_bank=tree,
                       entry_id="x1")  # fmt: skip
    expected = (balances(tb), tb.entry("x1"), tb.statement(tree, "dan"))
    again = reopen()
    try:
        assert (balances(again), again.entry("x1"), again.statement(tree, "dan")) == expected
        again.check_invariants()
    finally:
        again.close()


def test_a_tree_four_levels_deep(tb: timebank.Timebank, bank: str) -> None:
    """Mini banks inside mini banks, as deep as bank ids go (four levels): a
    policy is copied from the bank's own parent, a role holds in every bank
    below the one it was granted in and nowhere else, cousins and a bank and
    its grandchild exchange through clearing accounts, proposals show on both
    sides, and a roll-up takes in every level below and nothing beside."""
    hub, street, corner, other = (f"{bank}/hub", f"{bank}/hub/street",
                                  f"{bank}/hub/street/corner", f"{bank}/other")  # fmt: skip
    tb.create_bank(hub, name="Hub", actor=ACTOR, opened_on="2026-01-01")
    hub_policy = Policy(entry_minutes_max=300, pending_expiry_days=7)
    tb.set_policy(hub, hub_policy, actor=ACTOR)
    for mini in (street, corner, other):
        tb.create_bank(mini, name=mini, actor=ACTOR, opened_on="2026-01-01")
    with pytest.raises(errors.InvalidId):
        tb.create_bank(f"{corner}/door", name="Door", actor=ACTOR)
    assert tb.policy(street) == tb.policy(corner) == hub_policy
    assert tb.policy(other) == tb.policy(bank) != hub_policy
    assert [tb.bank(b).parent for b in (hub, street, corner, other)] == [bank, hub, street, bank]

    tb.grant_role(bank, "co", "coordinator", actor=ACTOR)
    tb.grant_role(hub, "hubco", "coordinator", actor=ACTOR)
    assert [tb.role(b, "co") for b in (bank, hub, street, corner, other)] == [Role.COORDINATOR] * 5
    assert [tb.role(b, "hubco") for b in (bank, hub, street, corner, other)] == [
        None, Role.COORDINATOR, Role.COORDINATOR, Role.COORDINATOR, None,
    ]  # fmt: skip
    for mini, members in ((hub, ["h1"]), (street, ["s1", "s2"]), (corner, ["c1"]),
                          (other, ["o1"])):  # fmt: skip
        for member in members:
            tb.join(mini, member, kind="individual", actor="co", joined_on="2026-01-02")
    refused(tb, errors.NotPermitted, lambda: tb.record_exchange(
        other, "o1", "ann", "1", actor="hubco", receiver_bank=bank))  # fmt: skip

    tb.record_exchange(corner, "c1", "s1", "1", actor="hubco", receiver_bank=street)
    tb.record_exchange(street, "s2", "o1", "2", actor="co", receiver_bank=other)  # cousins
    tb.record_exchange(corner, "c1", "ann", "3", actor="co", receiver_bank=bank)  # 3 levels up
    proposed = tb.propose(other, "exchange", "o1", "c1", "0:30", actor="o1", receiver_bank=corner)
    assert [p.entry_id for p in tb.pending(corner)] == [proposed.entry_id]
    assert [p.entry_id for p in tb.pending(other)] == [proposed.entry_id]
    tb.confirm(proposed.entry_id, actor="c1")

    tb.check_invariants()  # every bank sums to zero, every pair of clearing accounts cancels
    assert balances(tb)[(corner, "@clearing:" + bank)] == -180
    assert balances(tb)[(bank, "@clearing:" + corner)] == 180
    assert tb.balance(corner, "c1") == 4 * 60 - 30
    rolled = tb.figures(hub, rollup=True)
    assert rolled.banks == (hub, street, corner)
    assert (rolled.exchanges, rolled.exchanged_minutes) == (4, 6 * 60 + 30)
    assert tb.figures(bank, rollup=True).banks == (bank, hub, street, corner, other)
    report = tb.report(street, start="2026-01-01", end=TODAY, rollup=True)
    assert report.banks == (street, corner)
    assert (report.transactions, report.hours_exchanged) == (4, Decimal("6.5"))


def test_commands_that_change_nothing_save_nothing(tb: timebank.Timebank, bank: str) -> None:
    """Granting a role someone has, or setting the same policy, is a no-op."""
    tb.grant_role(bank, "co", "coordinator", actor=ACTOR)
    before = tb._app.recorder.max_notification_id()
    tb.grant_role(bank, "co", "coordinator", actor=ACTOR)
    tb.set_policy(bank, tb.policy(bank), actor=ACTOR)
    assert tb._app.recorder.max_notification_id() == before
