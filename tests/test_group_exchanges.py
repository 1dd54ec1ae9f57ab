"""Group exchanges: one-to-many, many-to-one, many-to-many, all or nothing."""

from __future__ import annotations

import pytest

import timebank
from timebank import errors
from timebank.domain.policy import BalanceLimits, Policy

from .conftest import ACTOR
from .test_entries import refused


def test_a_class_one_to_many(tb: timebank.Timebank, bank: str) -> None:
    entry = tb.record_group_exchange(bank, {"org": "3"}, {"ann": "1", "bob": "1:00", "cat": 1},
                                     actor=ACTOR, category="cooking", entry_id="class-1")  # fmt: skip
    assert entry.kind == "group_exchange"
    assert entry.legs == (("org", 180), ("ann", -60), ("bob", -60), ("cat", -60))
    assert entry.minutes == 180
    assert {b.account: b.balance_minutes for b in tb.balances(bank) if b.kind != "pot"} == {
        "@opening": 0, "org": 180, "ann": -60, "bob": -60, "cat": -60,
    }  # fmt: skip


def test_a_garden_clearance_many_to_one_and_a_street_event_many_to_many(
    tb: timebank.Timebank, bank: str
) -> None:
    tb.record_group_exchange(
        bank, {"ann": "2", "bob": "2", "cat": "1.5"}, {"org": "5:30"}, actor=ACTOR
    )
    tb.record_group_exchange(
        bank, {"ann": "1", "bob": "1"}, {"cat": "0:30", "org": "1:30"}, actor=ACTOR
    )
    assert [tb.balance(bank, m) for m in ("ann", "bob", "cat", "org")] == [180, 180, 60, -420]
    fig = tb.figures(bank)
    assert (fig.exchanges, fig.exchanged_minutes, fig.transactions) == (2, 450, 2)


@pytest.mark.parametrize(
    ("providers", "receivers"),
    [({}, {"ann": "1"}), ({"ann": "1"}, {}), ({"ann": "1"}, {"ann": "1"}),
     ({"ann": "2"}, {"bob": "1"}), ({"ann": "1", "bob": "0"}, {"cat": "1"}),
     # pairs, not a mapping (was a raw AttributeError)
     ({"ann": "1"}, [("bob", "1")]), (["ann"], {"bob": "1"}), ({"ann": "1"}, None)],
)  # fmt: skip
def test_malformed_groups_are_refused(
    tb: timebank.Timebank, bank: str, providers: dict[str, str], receivers: dict[str, str]
) -> None:
    with pytest.raises((errors.InvalidGroup, errors.InvalidAmount)):
        tb.record_group_exchange(bank, providers, receivers, actor=ACTOR)
    assert tb._app.index.count_entries() == 0


def test_too_many_participants_are_refused() -> None:
    from timebank.domain.entries import GROUP_PARTICIPANTS_MAX, group_legs

    receivers = {f"m{i}": 1 for i in range(GROUP_PARTICIPANTS_MAX)}
    with pytest.raises(errors.InvalidGroup):
        group_legs({"teacher": GROUP_PARTICIPANTS_MAX}, receivers)
    assert len(group_legs({"teacher": 199}, {f"m{i}": 1 for i in range(199)})) == 200


def test_one_refused_participant_refuses_the_whole_group(tb: timebank.Timebank) -> None:
    tb.create_bank(
        "lim",
        name="Lim",
        actor=ACTOR,
        policy=Policy(individual=BalanceLimits(-60, None)),
        opened_on="2026-01-01",
    )
    for member in ("t", "a", "b", "c"):
        tb.join("lim", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    tb.suspend("lim", "c", actor=ACTOR)
    refused(
        tb,
        errors.MemberNotActive,
        lambda: tb.record_group_exchange("lim", {"t": 3}, {"a": 1, "b": 1, "c": 1}, actor=ACTOR),
    )
    refused(
        tb,
        errors.BalanceLimitExceeded,
        lambda: tb.record_group_exchange("lim", {"t": 3}, {"a": 1, "b": 2}, actor=ACTOR),
    )
    refused(
        tb,
        errors.EntryTooLarge,
        lambda: tb.record_group_exchange(
            "lim", {"t": 25}, {"a": "0:30", "b": "24:30"}, actor=ACTOR
        ),
    )
    refused(
        tb,
        errors.MemberNotFound,
        lambda: tb.record_group_exchange("lim", {"t": 2}, {"a": 1, "zed": 1}, actor=ACTOR),
    )


def test_a_share_may_be_as_large_as_one_entry_and_no_larger(tb: timebank.Timebank) -> None:
    """The policy's largest entry bounds each participant's share, not the
    group's total (docs/concepts.md)."""
    tb.create_bank("cap", name="Cap", actor=ACTOR, policy=Policy(entry_minutes_max=120),
                   opened_on="2026-01-01")  # fmt: skip
    for member in ("t", "u", "a", "b", "c"):
        tb.join("cap", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    error = refused(tb, errors.EntryTooLarge, lambda: tb.record_group_exchange(
        "cap", {"t": "2:01"}, {"a": "1:01", "b": 1}, actor=ACTOR))  # fmt: skip
    assert error.ids["limit_minutes"] == 120
    entry = tb.record_group_exchange("cap", {"t": 2, "u": 2}, {"a": 2, "b": 1, "c": 1},
                                     actor=ACTOR)  # fmt: skip
    assert (entry.minutes, tb.balance("cap", "t"), tb.balance("cap", "a")) == (240, 120, -120)


def test_group_exchanges_are_idempotent_whatever_the_order_of_participants(
    tb: timebank.Timebank, bank: str
) -> None:
    first = tb.record_group_exchange(
        bank, {"org": 2}, {"ann": 1, "bob": 1}, actor=ACTOR, entry_id="g"
    )
    assert (
        tb.record_group_exchange(bank, {"org": 2}, {"bob": 1, "ann": 1}, actor=ACTOR, entry_id="g")
        == first
    )
    error = refused(
        tb,
        errors.EntryConflict,
        lambda: tb.record_group_exchange(
            bank, {"org": 2}, {"ann": 1, "cat": 1}, actor=ACTOR, entry_id="g"
        ),
    )
    assert error.ids["field"] == "participants"


def test_a_group_exchange_is_reversed_whole_and_shows_on_every_statement(
    tb: timebank.Timebank, bank: str
) -> None:
    tb.record_group_exchange(bank, {"org": 2}, {"ann": 1, "bob": 1}, actor=ACTOR, entry_id="g")
    tb.reverse("g", actor=ACTOR, reversal_id="g-rev")
    assert [tb.balance(bank, m) for m in ("ann", "bob", "org")] == [0, 0, 0]
    for member in ("ann", "bob", "org"):
        assert [(x.entry_id, x.reversed_by) for x in tb.statement(bank, member)] == [
            ("g", "g-rev"),
            ("g-rev", None),
        ]
    assert tb.figures(bank).exchanges == 0
