"""Every rule of recording entries, through the API, on memory and SQLite."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import date, datetime

import attrs
import pytest

import timebank
from timebank import errors
from timebank.domain.entries import DERIVED_LEG_KINDS, RecordedEntry, legs_for
from timebank.domain.policy import BalanceLimits, LimitMode, Policy
from timebank.domain.values import EntryKind

from .conftest import ACTOR, snapshot_state


def refused(
    tb: timebank.Timebank, error: type[Exception], command: Callable[[], object]
) -> Exception:
    """Assert ``command`` raises ``error`` and changes nothing at all."""
    before = snapshot_state(tb)
    with pytest.raises(error) as caught:
        command()
    assert snapshot_state(tb) == before
    return caught.value


def test_an_exchange_moves_hours_from_receiver_to_provider(
    tb: timebank.Timebank, bank: str
) -> None:
    entry = tb.record_exchange(bank, "ann", "bob", "1:30", actor=ACTOR, occurred_on="2026-02-01",
                               category="gardening", entry_id="ex-1")  # fmt: skip
    assert entry.legs == (("ann", 90), ("bob", -90))
    assert entry.actor == ACTOR
    assert entry.category == "gardening"
    assert (tb.balance(bank, "ann"), tb.balance(bank, "bob")) == (90, -90)


def test_every_kind_of_entry_is_json_with_to_dict(tb: timebank.Timebank, bank: str) -> None:
    """docs/api.md: every value object has ``to_dict()`` for JSON; an app
    hands a recorded entry to its own web layer so."""
    day = "2026-02-01"
    recorded = [
        tb.record_exchange(bank, "ann", "bob", "1:30", actor=ACTOR, occurred_on=day,
                           category="gardening"),
        tb.donate(bank, "org", "3", actor=ACTOR, occurred_on=day),
        tb.record_pot_exchange(bank, "ann", "cat", "2", actor=ACTOR, occurred_on=day,
                               on_behalf_of="cat"),
        tb.gift(bank, "ann", "bob", "0:30", actor=ACTOR, occurred_on=day),
        tb.record_opening_balance(bank, "cat", minutes=-45, actor=ACTOR, occurred_on=day),
        tb.record_group_exchange(bank, {"ann": "1", "bob": "1"}, {"org": "2"}, actor=ACTOR,
                                 occurred_on=day),
    ]  # fmt: skip
    recorded.append(tb.reverse(recorded[0].entry_id, actor=ACTOR, occurred_on=day))
    assert {e.kind for e in recorded} == set(EntryKind)
    read_back = [tb.entry(e.entry_id) for e in recorded]
    for entry in recorded + read_back:
        data = json.loads(json.dumps(entry.to_dict()))
        assert list(data) == list(attrs.fields_dict(RecordedEntry))
        assert data["kind"] == entry.kind.value
        assert date.fromisoformat(data["occurred_on"]) == entry.occurred_on
        assert datetime.fromisoformat(data["recorded_at"]) == entry.recorded_at
        assert data["legs"] == [[account, minutes] for account, minutes in entry.legs]
        assert data["flags"] == list(entry.flags)
        plain = {k: v for k, v in data.items() if k not in ("kind", "occurred_on", "recorded_at",
                                                            "legs", "flags")}  # fmt: skip
        assert plain == {k: getattr(entry, k) for k in plain}
    assert recorded[2].to_dict()["on_behalf_of"] == "cat"
    # read back, the reversed entry names its reversal; the rest are as recorded
    assert read_back[0].to_dict() == {**recorded[0].to_dict(), "reversed_by": recorded[-1].entry_id}
    assert [e.to_dict() for e in read_back[1:]] == [e.to_dict() for e in recorded[1:]]


def test_every_kind_moves_the_accounts_its_definition_says(
    tb: timebank.Timebank, bank: str
) -> None:
    tb.donate(bank, "org", "3", actor=ACTOR)
    tb.record_pot_exchange(bank, "ann", "cat", "2", actor=ACTOR)
    tb.gift(bank, "ann", "bob", "0:30", actor=ACTOR)
    tb.record_opening_balance(bank, "cat", minutes=-45, actor=ACTOR)
    assert {b.account: b.balance_minutes for b in tb.balances(bank)} == {
        "@pot": 60, "@opening": 45, "ann": 90, "bob": 30, "cat": -45, "org": -180,
    }  # fmt: skip


def test_balances_of_every_bank_sum_to_zero(tb: timebank.Timebank, bank: str) -> None:
    tb.record_exchange(bank, "ann", "bob", "5", actor=ACTOR)
    tb.donate(bank, "ann", "2", actor=ACTOR)
    tb.record_opening_balance(bank, "org", "7", actor=ACTOR)
    assert sum(b.balance_minutes for b in tb.balances(bank)) == 0


def test_a_member_cannot_exchange_with_themselves(tb: timebank.Timebank, bank: str) -> None:
    error = refused(
        tb, errors.SelfExchange, lambda: tb.record_exchange(bank, "ann", "ann", "1", actor=ACTOR)
    )
    assert error.ids["member"] == "ann"


def test_unknown_members_and_banks_are_named(tb: timebank.Timebank, bank: str) -> None:
    error = refused(
        tb, errors.MemberNotFound, lambda: tb.gift(bank, "ann", "zed", "1", actor=ACTOR)
    )
    assert error.ids == {"bank": bank, "member": "zed"}
    refused(tb, errors.BankNotFound, lambda: tb.donate("nowhere", "ann", "1", actor=ACTOR))
    error = refused(tb, errors.MemberNotFound, lambda: tb.member(bank, "zed"))
    assert error.ids == {"bank": bank, "member": "zed"}


def test_an_entry_above_the_per_entry_limit_is_refused(tb: timebank.Timebank, bank: str) -> None:
    tb.record_exchange(bank, "ann", "bob", "24", actor=ACTOR)
    error = refused(
        tb,
        errors.EntryTooLarge,
        lambda: tb.record_exchange(bank, "ann", "bob", "24:01", actor=ACTOR),
    )
    assert error.ids["limit_minutes"] == 1440


def test_opening_balances_have_their_own_limit_and_may_be_negative(
    tb: timebank.Timebank, bank: str
) -> None:
    tb.record_opening_balance(bank, "ann", "-300", actor=ACTOR)
    assert tb.balance(bank, "ann") == -300 * 60
    refused(
        tb,
        errors.EntryTooLarge,
        lambda: tb.record_opening_balance(bank, "bob", "10000:01", actor=ACTOR),
    )
    refused(  # a debt carried over is bounded as a credit is
        tb,
        errors.EntryTooLarge,
        lambda: tb.record_opening_balance(bank, "bob", "-10000:01", actor=ACTOR),
    )
    tb.record_opening_balance(bank, "bob", "-10000", actor=ACTOR)
    refused(
        tb, errors.InvalidAmount, lambda: tb.record_exchange(bank, "ann", "bob", "-1", actor=ACTOR)
    )


def test_amounts_are_given_once_as_hours_or_minutes(tb: timebank.Timebank, bank: str) -> None:
    assert tb.record_exchange(bank, "ann", "bob", minutes=7, actor=ACTOR).minutes == 7
    refused(
        tb,
        errors.InvalidAmount,
        lambda: tb.record_exchange(bank, "ann", "bob", "1", minutes=60, actor=ACTOR),
    )
    refused(tb, errors.InvalidAmount, lambda: tb.record_exchange(bank, "ann", "bob", actor=ACTOR))
    refused(
        tb,
        errors.InvalidAmount,
        lambda: tb.record_exchange(bank, "ann", "bob", minutes=1.5, actor=ACTOR),
    )  # type: ignore[arg-type]
    refused(
        tb, errors.InvalidAmount, lambda: tb.record_exchange(bank, "ann", "bob", 1.5, actor=ACTOR)
    )
    for minutes in (0, -5):  # given as minutes, checked as hours are
        exchange = functools.partial(tb.record_exchange, bank, "ann", "bob", minutes=minutes,
                                     actor=ACTOR)  # fmt: skip
        error = refused(tb, errors.InvalidAmount, exchange)
        assert f"minutes must be positive: {minutes}" in str(error)
    # an opening balance may be negative, but not zero nor past the largest amount
    for minutes in (0, -(10**12) - 1):
        opening = functools.partial(tb.record_opening_balance, bank, "cat", minutes=minutes,
                                    actor=ACTOR)  # fmt: skip
        refused(tb, errors.InvalidAmount, opening)


def test_help_cannot_be_dated_in_the_future(tb: timebank.Timebank, bank: str) -> None:
    tb.record_exchange(bank, "ann", "bob", "1", actor=ACTOR, occurred_on="2026-06-15")
    refused(tb, errors.OccurredInFuture,
            lambda: tb.record_exchange(bank, "ann", "bob", "1", actor=ACTOR, occurred_on="2026-06-16"))  # fmt: skip


def test_today_is_the_banks_local_date(tb: timebank.Timebank, bank: str) -> None:
    # 23:30 UTC on 15 June is already 16 June in London (BST).
    from datetime import UTC, datetime

    late = timebank.Timebank(tb.backend, clock=lambda: datetime(2026, 6, 15, 23, 30, tzinfo=UTC))
    entry = late.record_exchange(bank, "ann", "bob", "1", actor=ACTOR)
    assert str(entry.occurred_on) == "2026-06-16"
    late.close()


def test_help_cannot_be_dated_before_a_party_joined(tb: timebank.Timebank, bank: str) -> None:
    tb.join(bank, "dee", kind="individual", actor=ACTOR, joined_on="2026-03-01")
    error = refused(tb, errors.OccurredBeforeJoining,
                    lambda: tb.record_exchange(bank, "ann", "dee", "1", actor=ACTOR, occurred_on="2026-02-28"))  # fmt: skip
    assert error.ids["member"] == "dee"
    assert " is outside the membership of 'dee' (" in str(error)
    tb.record_exchange(bank, "ann", "dee", "1", actor=ACTOR, occurred_on="2026-03-01")


def test_historic_entries_are_accepted(tb: timebank.Timebank) -> None:
    tb.create_bank("old", name="Old", actor=ACTOR, opened_on="2014-11-01")
    tb.join("old", "a", kind="individual", actor=ACTOR, joined_on="2014-11-03")
    tb.join("old", "b", kind="organisation", actor=ACTOR, joined_on="2014-11-03")
    assert (
        str(
            tb.record_exchange(
                "old", "a", "b", "3", actor=ACTOR, occurred_on="2015-01-02"
            ).occurred_on
        )
        == "2015-01-02"
    )


def test_members_join_once_and_not_before_the_bank_opened(tb: timebank.Timebank, bank: str) -> None:
    refused(
        tb, errors.MemberAlreadyJoined, lambda: tb.join(bank, "ann", kind="individual", actor=ACTOR)
    )
    refused(tb, errors.BeforeBankOpened,
            lambda: tb.join(bank, "eve", kind="individual", actor=ACTOR, joined_on="2025-12-31"))  # fmt: skip
    refused(tb, errors.OccurredInFuture,
            lambda: tb.join(bank, "eve", kind="individual", actor=ACTOR, joined_on="2026-07-01"))  # fmt: skip
    refused(tb, errors.InvalidInput, lambda: tb.join(bank, "eve", kind="pot", actor=ACTOR))
    refused(tb, errors.InvalidInput, lambda: tb.join(bank, "eve", kind="robot", actor=ACTOR))


def test_a_bad_profile_changes_nothing(tb: timebank.Timebank, bank: str) -> None:
    # checked before the join, not after it (a member joined without it)
    bad = timebank.Profile(display_name="Eve\x1b[2J", phone="0" * 300)
    error = refused(
        tb, errors.InvalidInput,
        lambda: tb.join(bank, "eve", kind="individual", actor=ACTOR, profile=bad),
    )  # fmt: skip
    assert "display_name holds the control character U+001B" in str(error)
    assert tb.profile("eve") is None
    # a name that shows in another order than it is written ("Evenhoj")
    reordered = timebank.Profile(display_name="Eve\u202enhoj")
    error = refused(tb, errors.InvalidInput,
                    lambda: tb.join(bank, "eve", kind="individual", actor=ACTOR, profile=reordered))  # fmt: skip
    assert "display_name holds the bidirectional formatting character U+202E" in str(error)
    refused(tb, errors.InvalidInput,
            lambda: tb.create_bank("spoof", name="Riverside\u2067edisreviR", actor=ACTOR))  # fmt: skip
    # half a surrogate pair, which no store can hold: it failed after the join
    surrogate = timebank.Profile(display_name="E\ud800")
    refused(tb, errors.InvalidInput,
            lambda: tb.join(bank, "eve", kind="individual", actor=ACTOR, profile=surrogate))  # fmt: skip
    tb.set_profile("ann", timebank.Profile(display_name="Ann"), actor=ACTOR)
    refused(tb, errors.InvalidInput,
            lambda: tb.set_profile("ann", timebank.Profile(email="a" * 255), actor=ACTOR))  # fmt: skip
    assert tb.profile("ann") == timebank.Profile(display_name="Ann")


def test_banks_are_created_once(tb: timebank.Timebank, bank: str) -> None:
    refused(tb, errors.BankAlreadyExists, lambda: tb.create_bank(bank, name="Again", actor=ACTOR))
    refused(
        tb,
        errors.OccurredInFuture,
        lambda: tb.create_bank("later", name="L", actor=ACTOR, opened_on="2027-01-01"),
    )
    refused(tb, errors.InvalidInput, lambda: tb.create_bank("empty", name=" ", actor=ACTOR))
    assert [b.bank for b in tb.banks()] == [bank]


# --- balance limits -----------------------------------------------------------------
def _limited(tb: timebank.Timebank, mode: LimitMode) -> str:
    policy = Policy(individual=BalanceLimits(-120, 240), limit_mode=mode)
    tb.create_bank("limited", name="Limited", actor=ACTOR, policy=policy, opened_on="2026-01-01")
    for member in ("ann", "bob"):
        tb.join("limited", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    tb.join("limited", "org", kind="organisation", actor=ACTOR, joined_on="2026-01-01")
    return "limited"


def test_refuse_mode_refuses_an_entry_past_a_limit(tb: timebank.Timebank) -> None:
    bank = _limited(tb, LimitMode.REFUSE)
    tb.record_exchange(bank, "ann", "bob", "2", actor=ACTOR)
    error = refused(
        tb,
        errors.BalanceLimitExceeded,
        lambda: tb.record_exchange(bank, "ann", "bob", "0:01", actor=ACTOR),
    )
    assert error.ids == {"bank": bank, "entry_id": error.ids["entry_id"], "account": "bob",
                         "balance_minutes": -120, "limit_minutes": -120}  # fmt: skip
    tb.record_exchange(bank, "ann", "org", "2", actor=ACTOR)  # ann reaches +240
    refused(
        tb, errors.BalanceLimitExceeded, lambda: tb.gift(bank, "bob", "ann", "0:01", actor=ACTOR)
    )


def test_flag_mode_records_the_entry_and_flags_the_breach(tb: timebank.Timebank) -> None:
    bank = _limited(tb, LimitMode.FLAG)
    entry = tb.record_exchange(bank, "ann", "bob", "3", actor=ACTOR)
    assert entry.flags == ("limit:bob:-120",)
    assert tb.balance(bank, "bob") == -180
    assert tb.statement(bank, "bob")[0].flags == ("limit:bob:-120",)


def test_the_pot_never_pays_more_than_it_holds_even_in_flag_mode(tb: timebank.Timebank) -> None:
    bank = _limited(tb, LimitMode.FLAG)
    tb.donate(bank, "org", "1", actor=ACTOR)
    tb.record_pot_exchange(bank, "ann", "bob", "1", actor=ACTOR)
    error = refused(
        tb,
        errors.PotOverdrawn,
        lambda: tb.record_pot_exchange(bank, "ann", "bob", "0:01", actor=ACTOR),
    )
    assert error.ids["balance_minutes"] == 0
    assert tb.balance(bank, "@pot") == 0


def test_a_policy_change_applies_to_later_entries(tb: timebank.Timebank, bank: str) -> None:
    tb.set_policy(bank, Policy(entry_minutes_max=60), actor=ACTOR)
    refused(
        tb,
        errors.EntryTooLarge,
        lambda: tb.record_exchange(bank, "ann", "bob", "1:01", actor=ACTOR),
    )
    assert tb.policy(bank).entry_minutes_max == 60
    refused(
        tb, errors.InvalidPolicy, lambda: tb.set_policy(bank, {"entry_minutes_max": 5}, actor=ACTOR)
    )  # type: ignore[arg-type]


# --- idempotency ----------------------------------------------------------------------
def test_the_same_entry_id_with_the_same_fields_returns_the_recorded_entry(
    tb: timebank.Timebank, bank: str
) -> None:
    first = tb.record_exchange(
        bank, "ann", "bob", "1.5", actor=ACTOR, occurred_on="2026-02-01", entry_id="ex-1"
    )
    before = snapshot_state(tb)
    again = tb.record_exchange(
        bank, "ann", "bob", "1:30", actor="coord-2", occurred_on="2026-02-01", entry_id="ex-1"
    )
    assert again == first
    assert snapshot_state(tb) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [({"hours": "2"}, "minutes"), ({"receiver": "cat"}, "receiver"), ({"occurred_on": "2026-02-02"}, "occurred_on"),
     ({"category": "diy"}, "category"), ({"provider": "org"}, "provider")],
)  # fmt: skip
def test_the_same_entry_id_with_other_fields_is_a_named_conflict(
    tb: timebank.Timebank, bank: str, change: dict[str, str], field: str
) -> None:
    fields = {
        "provider": "ann",
        "receiver": "bob",
        "hours": "1",
        "occurred_on": "2026-02-01",
        "category": None,
    }
    tb.record_exchange(bank, **fields, actor=ACTOR, entry_id="ex-1")
    error = refused(
        tb,
        errors.EntryConflict,
        lambda: tb.record_exchange(bank, **{**fields, **change}, actor=ACTOR, entry_id="ex-1"),
    )
    assert error.ids == {"entry_id": "ex-1", "field": field}


def test_entry_ids_are_unique_across_kinds_and_banks(tb: timebank.Timebank, bank: str) -> None:
    tb.record_exchange(bank, "ann", "bob", "1", actor=ACTOR, entry_id="same")
    refused(
        tb,
        errors.EntryConflict,
        lambda: tb.gift(bank, "ann", "bob", "1", actor=ACTOR, entry_id="same"),
    )
    tb.create_bank("other", name="Other", actor=ACTOR, opened_on="2026-01-01")
    for member in ("ann", "bob"):
        tb.join("other", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    error = refused(
        tb,
        errors.EntryConflict,
        lambda: tb.record_exchange("other", "ann", "bob", "1", actor=ACTOR, entry_id="same"),
    )
    assert error.ids["field"] == "bank"


# --- reversals ---------------------------------------------------------------------------
def test_a_reversal_undoes_an_entry_once_and_references_it(
    tb: timebank.Timebank, bank: str
) -> None:
    tb.record_exchange(bank, "ann", "bob", "2", actor=ACTOR, entry_id="ex-1")
    reversal = tb.reverse("ex-1", actor=ACTOR, reversal_id="rev-1")
    assert reversal.reverses == "ex-1"
    assert reversal.legs == (("ann", -120), ("bob", 120))
    assert (tb.balance(bank, "ann"), tb.balance(bank, "bob")) == (0, 0)
    assert tb.entry("ex-1").reversed_by == "rev-1"
    error = refused(tb, errors.AlreadyReversed, lambda: tb.reverse("ex-1", actor=ACTOR))
    assert error.ids["reversed_by"] == "rev-1"
    # Retrying the same reversal id is idempotent.
    assert tb.reverse("ex-1", actor=ACTOR, reversal_id="rev-1") == reversal


def test_a_reversal_cannot_itself_be_reversed(tb: timebank.Timebank, bank: str) -> None:
    tb.record_exchange(bank, "ann", "bob", "2", actor=ACTOR, entry_id="ex-1")
    tb.reverse("ex-1", actor=ACTOR, reversal_id="rev-1")
    refused(tb, errors.CannotReverseReversal, lambda: tb.reverse("rev-1", actor=ACTOR))


def test_reversal_rules(tb: timebank.Timebank, bank: str) -> None:
    tb.record_exchange(
        bank, "ann", "bob", "2", actor=ACTOR, entry_id="ex-1", occurred_on="2026-03-01"
    )
    refused(tb, errors.EntryNotFound, lambda: tb.reverse("nope", actor=ACTOR))
    refused(
        tb,
        errors.ReversalBeforeEntry,
        lambda: tb.reverse("ex-1", actor=ACTOR, occurred_on="2026-02-28"),
    )
    refused(
        tb,
        errors.OccurredInFuture,
        lambda: tb.reverse("ex-1", actor=ACTOR, occurred_on="2026-06-16"),
    )


def test_reversing_a_donation_the_pot_already_spent_is_refused(
    tb: timebank.Timebank, bank: str
) -> None:
    tb.donate(bank, "org", "1", actor=ACTOR, entry_id="don-1")
    tb.record_pot_exchange(bank, "ann", "bob", "1", actor=ACTOR)
    refused(tb, errors.PotOverdrawn, lambda: tb.reverse("don-1", actor=ACTOR))


# --- statements, figures, restart -----------------------------------------------------------
@pytest.mark.parametrize("account", [["ann"], None, 5, ("ann",), "@nothing", "@clearing:X", ""])
def test_an_account_that_is_not_an_id_is_an_invalid_id(
    tb: timebank.Timebank, bank: str, account: object
) -> None:
    """A list where an account goes was a raw TypeError (unhashable), then
    MemberNotFound; it is the form of an input, checked first."""
    for read in (tb.balance, tb.statement, tb.ledger_statement):
        with pytest.raises(errors.InvalidId, match="invalid account: "):
            read(bank, account)  # type: ignore[operator]


@pytest.mark.parametrize("account", ["@pot", "@opening", "@clearing:riverside/hub", "zed"])
def test_an_account_of_a_valid_form_is_read_or_not_found(
    tb: timebank.Timebank, bank: str, account: str
) -> None:
    """The pot and the opening account are read; a clearing account the
    bank never opened, and a member who never joined, are not found."""
    if account in ("@pot", "@opening"):
        assert tb.balance(bank, account) == 0
        assert tb.statement(bank, account) == tb.ledger_statement(bank, account) == []
        return
    for read in (tb.balance, tb.statement, tb.ledger_statement):
        with pytest.raises(errors.MemberNotFound, match="no account "):
            read(bank, account)  # type: ignore[operator]


def test_a_statement_lists_every_entry_with_a_running_balance(
    tb: timebank.Timebank, bank: str
) -> None:
    tb.record_exchange(bank, "ann", "bob", "2", actor=ACTOR, entry_id="a", occurred_on="2026-02-01")
    tb.record_exchange(
        bank, "bob", "ann", "0:30", actor=ACTOR, entry_id="b", occurred_on="2026-02-02"
    )
    tb.donate(bank, "ann", "1", actor=ACTOR, entry_id="c", occurred_on="2026-02-03")
    tb.reverse("b", actor=ACTOR, reversal_id="d", occurred_on="2026-02-04")
    lines = tb.statement(bank, "ann")
    assert [(x.entry_id, x.minutes, x.balance_minutes) for x in lines] == [
        ("a", 120, 120), ("b", -30, 90), ("c", -60, 30), ("d", 30, 60),
    ]  # fmt: skip
    assert lines[1].reversed_by == "d"
    assert lines[0].counterparties == ("bob",)
    assert lines[-1].balance_minutes == tb.balance(bank, "ann")
    assert len(tb.statement(bank, "ann", limit=2)) == 2
    # a later page: its balances count the lines before it; the reversal
    # names the account of the line it undoes, on the page before
    page = tb.statement(bank, "ann", limit=2, offset=2)
    assert page == lines[2:] == tb.ledger_statement(bank, "ann", limit=2, offset=2)
    assert page[-1].counterparties == ("bob",)
    assert tb.statement(bank, "ann", offset=4) == []
    for bad in ({"limit": 0}, {"limit": True}, {"limit": 2.0}, {"limit": 100_001},
                {"offset": -1}, {"offset": 1.5}, {"offset": 10**16}):  # fmt: skip
        with pytest.raises(errors.InvalidInput, match="must be a whole number"):
            tb.statement(bank, "ann", **bad)  # type: ignore[arg-type]
        with pytest.raises(errors.InvalidInput, match="must be a whole number"):
            tb.ledger_statement(bank, "ann", **bad)  # type: ignore[arg-type]


def test_the_person_helped_by_the_pot_sees_it_on_their_statement(
    tb: timebank.Timebank, bank: str
) -> None:
    tb.donate(bank, "org", "2", actor=ACTOR)
    tb.record_pot_exchange(bank, "ann", "cat", "1", actor=ACTOR, entry_id="p")
    tb.reverse("p", actor=ACTOR, reversal_id="p-rev")
    lines = tb.statement(bank, "cat")
    assert [(x.entry_id, x.minutes, x.balance_minutes, x.reversed_by) for x in lines] == [
        ("p", 0, 0, "p-rev"), ("p-rev", 0, 0, None),
    ]  # fmt: skip
    assert [x.balance_minutes for x in tb.statement(bank, "@pot")] == [120, 60, 120]


def test_figures_leave_out_reversals_and_opening_balances(tb: timebank.Timebank, bank: str) -> None:
    tb.record_exchange(bank, "ann", "bob", "2", actor=ACTOR)
    tb.record_exchange(bank, "ann", "bob", "5", actor=ACTOR, entry_id="wrong")
    tb.reverse("wrong", actor=ACTOR)
    tb.donate(bank, "org", "3", actor=ACTOR)
    tb.record_pot_exchange(bank, "cat", "bob", "1", actor=ACTOR)
    tb.gift(bank, "ann", "cat", "1", actor=ACTOR)
    tb.record_opening_balance(bank, "cat", "40", actor=ACTOR)
    fig = tb.figures(bank)
    assert (fig.exchanges, fig.exchanged_minutes, fig.transactions) == (2, 180, 4)
    assert (fig.individual_members, fig.organisations) == (3, 1)
    assert (fig.donated_to_pot_minutes, fig.pot_funded_minutes, fig.pot_balance_minutes) == (
        180,
        60,
        120,
    )
    assert fig.reversals == 1


def test_everything_reads_back_after_a_restart(reopen: Callable[[], timebank.Timebank]) -> None:
    tb = reopen()
    tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
    tb.join("b", "x", kind="individual", actor=ACTOR, joined_on="2026-01-01",
            profile=timebank.Profile(display_name="Xena"))  # fmt: skip
    tb.join("b", "y", kind="organisation", actor=ACTOR, joined_on="2026-01-01")
    tb.record_exchange("b", "x", "y", "1", actor=ACTOR, entry_id="e1")
    tb.reverse("e1", actor=ACTOR, reversal_id="e2")
    tb.record_exchange("b", "y", "x", "2", actor=ACTOR, entry_id="e3")
    expected = (
        tb.balances(),
        tb.statement("b", "x"),
        tb.figures("b"),
        tb.entry("e1"),
        tb.members("b"),
    )
    tb.close()
    again = reopen()
    assert (
        again.balances(),
        again.statement("b", "x"),
        again.figures("b"),
        again.entry("e1"),
        again.members("b"),
    ) == expected
    assert again.profile("x") == timebank.Profile(display_name="Xena")
    again.close()


@pytest.mark.parametrize("kind", list(EntryKind))
def test_derived_leg_kinds_are_exactly_the_kinds_legs_for_derives(kind: EntryKind) -> None:
    # the statement trusts legs_for for these kinds and reads the rest back
    if kind in DERIVED_LEG_KINDS:
        legs = legs_for(kind, "ann", "bob", 60)
        assert sum(m for _, m in legs) == 0
        assert legs[0][0] == "ann"
    else:
        with pytest.raises(ValueError, match="stored, not derived"):
            legs_for(kind, "ann", "bob", 60)
