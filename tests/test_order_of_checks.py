"""The order of checks (docs/concepts.md, "Order of checks"): a command
that breaks several rules raises the first of them in the documented order.
For an exchange, a reversal, a member's leaving and a pending entry's
confirmation and approval, each rule is broken alone, then together with
each later one; so is the form of each query's input with an unknown bank
and member. (The order is the domain's, the same on every backend:
memory.)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

import timebank
from timebank import errors

from .conftest import ACTOR, fixed_clock, snapshot_state

Args = dict[str, Any]
#: The errors of an input's form: raised before any other, in no set order
#: (``InvalidInput`` itself: a query's page or flag).
INPUT_FORM: set[type[errors.TimebankError]] = {
    errors.InvalidId,
    errors.InvalidAmount,
    errors.InvalidDate,
    errors.InvalidInput,
}
#: A rule: the error that breaking it raises, the arguments it changes (two
#: rules that change the same one are not broken together), and how.
Rule = tuple[type[errors.TimebankError], frozenset[str], Callable[[Args], None]]


def _set(**changes: str) -> Callable[[Args], None]:
    return lambda args: args.update(changes)


#: Each command: its call, its arguments when it breaks no rule, and its
#: rules in the documented order.
COMMANDS: dict[str, tuple[Callable[..., object], Args, list[Rule]]] = {
    "exchange": (
        timebank.Timebank.record_exchange,
        {"bank": "riverside", "provider": "ann", "receiver": "bob", "hours": "1",
         "actor": ACTOR, "occurred_on": "2026-03-01", "entry_id": "new-1"},
        [
            (errors.InvalidAmount, frozenset({"hours"}), _set(hours="1,5")),
            (errors.InvalidDate, frozenset({"occurred_on"}), _set(occurred_on="2026-02-31")),
            (errors.InvalidId, frozenset({"entry_id"}), _set(entry_id="not an id")),
            (errors.BankNotFound, frozenset({"bank"}), _set(bank="nowhere")),
            (errors.EntryConflict, frozenset({"entry_id"}), _set(entry_id="recorded-1")),
            (errors.BanksNotInSameTree, frozenset({"receiver_bank"}),
             _set(receiver_bank="elsewhere")),
            (errors.BankNotFound, frozenset({"receiver_bank"}),
             _set(receiver_bank="riverside/nowhere")),
            (errors.NotPermitted, frozenset({"actor"}), _set(actor="stranger")),
            (errors.MemberNotFound, frozenset({"provider"}), _set(provider="zed")),
            (errors.MemberNotActive, frozenset({"receiver"}), _set(receiver="sus")),
            (errors.SelfExchange, frozenset({"receiver"}),
             lambda args: args.update(receiver=args["provider"])),
            (errors.EntryTooLarge, frozenset({"hours"}), _set(hours="25")),
            (errors.OccurredInFuture, frozenset({"occurred_on"}), _set(occurred_on="2026-06-16")),
            (errors.OccurredBeforeJoining, frozenset({"occurred_on"}),
             _set(occurred_on="2026-01-15")),
            (errors.BalanceLimitExceeded, frozenset({"hours"}), _set(hours="3")),
        ],
    ),
    "reversal": (
        timebank.Timebank.reverse,
        {"entry_id": "p-helped-q", "actor": ACTOR, "reversal_id": "new-undo",
         "occurred_on": "2026-03-05"},
        [
            (errors.InvalidDate, frozenset({"occurred_on"}), _set(occurred_on="2026-02-31")),
            (errors.InvalidId, frozenset({"reversal_id"}), _set(reversal_id="not an id")),
            (errors.EntryNotFound, frozenset({"entry_id"}), _set(entry_id="missing")),
            (errors.EntryConflict, frozenset({"reversal_id"}), _set(reversal_id="recorded-1")),
            (errors.NotPermitted, frozenset({"actor"}), _set(actor="stranger")),
            (errors.CannotReverseReversal, frozenset({"entry_id"}), _set(entry_id="undone-undo")),
            (errors.AlreadyReversed, frozenset({"entry_id"}), _set(entry_id="undone")),
            (errors.OccurredInFuture, frozenset({"occurred_on"}), _set(occurred_on="2026-06-16")),
            (errors.ReversalBeforeEntry, frozenset({"occurred_on"}),
             _set(occurred_on="2026-02-28")),
            (errors.BalanceLimitExceeded, frozenset({"entry_id"}), _set(entry_id="s-earned")),
        ],
    ),
    "leaving": (
        timebank.Timebank.leave,
        {"bank": "riverside", "member": "ann", "actor": ACTOR, "left_on": "2026-03-01"},
        [
            (errors.InvalidDate, frozenset({"left_on"}), _set(left_on="2026-02-31")),
            (errors.InvalidId, frozenset({"member"}), _set(member="not an id")),
            (errors.InvalidId, frozenset({"donation_id"}), _set(donation_id="not an id")),
            (errors.BankNotFound, frozenset({"bank"}), _set(bank="nowhere")),
            (errors.EntryConflict, frozenset({"donation_id"}), _set(donation_id="recorded-1")),
            (errors.NotPermitted, frozenset({"actor"}), _set(actor="stranger")),
            (errors.MemberNotFound, frozenset({"member"}), _set(member="zed")),
            (errors.MemberStatusConflict, frozenset({"member"}), _set(member="gone")),
            (errors.LeaveBeforeLastEntry, frozenset({"left_on"}), _set(left_on="2026-02-01")),
        ],
    ),
    "confirming": (
        timebank.Timebank.confirm,
        {"entry_id": "waiting", "actor": "q"},
        [
            (errors.InvalidId, frozenset({"entry_id"}), _set(entry_id="not an id")),
            (errors.PendingEntryNotFound, frozenset({"entry_id"}), _set(entry_id="missing")),
            # an entry that awaits no one's confirmation: at once
            (errors.PendingStateConflict, frozenset({"entry_id"}), _set(entry_id="donating")),
            (errors.NotPermitted, frozenset({"actor"}), _set(actor="stranger")),
            (errors.EntryExpired, frozenset({"entry_id"}), _set(entry_id="stale")),
            (errors.MemberNotActive, frozenset({"entry_id"}), _set(entry_id="by-sus")),
        ],
    ),
    "approving": (
        timebank.Timebank.approve,
        {"entry_id": "donating", "actor": ACTOR},
        [
            (errors.InvalidId, frozenset({"entry_id"}), _set(entry_id="not an id")),
            (errors.PendingEntryNotFound, frozenset({"entry_id"}), _set(entry_id="missing")),
            (errors.NotPermitted, frozenset({"actor"}), _set(actor="p")),
            (errors.PendingStateConflict, frozenset({"entry_id"}), _set(entry_id="waiting")),
            (errors.EntryExpired, frozenset({"entry_id"}), _set(entry_id="stale-donating")),
            (errors.MemberNotActive, frozenset({"entry_id"}), _set(entry_id="sus-donating")),
        ],
    ),
}  # fmt: skip

_ACCOUNT = (errors.InvalidId, frozenset({"account"}), _set(account="not an id"))
_NO_BANK = (errors.BankNotFound, frozenset({"bank"}), _set(bank="nowhere"))
_NO_ACCOUNT = (errors.MemberNotFound, frozenset({"account"}), _set(account="zed"))
_PAGE = (errors.InvalidInput, frozenset({"limit"}), lambda args: args.update(limit=0))
_PERIOD = [
    (errors.InvalidDate, frozenset({"start"}), _set(start="2026-02-31")),
    (errors.InvalidDate, frozenset({"end"}), _set(end="31/03/2026")),
    (errors.InvalidInput, frozenset({"rollup"}), lambda args: args.update(rollup="yes")),
    _NO_BANK,
]
_MEMBER = (errors.InvalidId, frozenset({"member"}), _set(member="not an id"))
QUERIES: dict[str, tuple[Callable[..., object], Args, list[Rule]]] = {
    "balance": (timebank.Timebank.balance, {"bank": "riverside", "account": "ann"},
                [_ACCOUNT, _NO_BANK, _NO_ACCOUNT]),
    "statement": (timebank.Timebank.statement, {"bank": "riverside", "account": "ann"},
                  [_ACCOUNT, _PAGE, _NO_BANK, _NO_ACCOUNT]),
    "ledger statement": (timebank.Timebank.ledger_statement,
                         {"bank": "riverside", "account": "ann"},
                         [_ACCOUNT, _PAGE, _NO_BANK, _NO_ACCOUNT]),
    "report": (timebank.Timebank.report, {"bank": "riverside"}, _PERIOD),
    "member activity": (timebank.Timebank.member_activity, {"bank": "riverside"}, _PERIOD),
    "member": (timebank.Timebank.member, {"bank": "riverside", "member": "ann"},
               [_MEMBER, _NO_BANK,
                (errors.MemberNotFound, frozenset({"member"}), _set(member="zed"))]),
    "guardians": (timebank.Timebank.guardians, {"bank": "riverside", "member": "ann"},
                  [_MEMBER, _NO_BANK]),
    "pending": (timebank.Timebank.pending, {"bank": "riverside", "member": "ann"},
                [_MEMBER, _NO_BANK]),
    "role": (timebank.Timebank.role, {"bank": "riverside", "user": "ann"},
             [(errors.InvalidId, frozenset({"user"}), _set(user="not an id")), _NO_BANK]),
}  # fmt: skip
COMMANDS.update(QUERIES)


@pytest.fixture(scope="module")
def store() -> Iterator[timebank.Timebank]:
    """Riverside (opened 1 Jan 2026, a floor of -2 hours) with ann, bob, p,
    q, s, t and u (joined 1 Feb), sus (suspended) and gone (left); entries
    recorded-1 (ann helped bob 2 hours on 2 Feb), p-helped-q, undone and
    its reversal undone-undo, and s-earned, whose reversal would take s
    past the floor; pending entries waiting (for q's confirmation), stale
    (expired), by-sus (proposed by sus before the suspension), and the
    donations donating, stale-donating and sus-donating awaiting approval;
    another root bank, elsewhere. Today is 15 June 2026."""
    today = [datetime(2026, 5, 1, 12, tzinfo=UTC)]  # for the pending entry that expires
    tb = timebank.open("memory://", clock=lambda: today[0])
    floor = timebank.BalanceLimits(lowest_minutes=-120, highest_minutes=None)
    tb.create_bank("riverside", name="Riverside", actor=ACTOR, opened_on="2026-01-01",
                   policy=timebank.Policy(individual=floor))  # fmt: skip
    tb.create_bank("elsewhere", name="Elsewhere", actor=ACTOR, opened_on="2026-01-01")
    for member in ("ann", "bob", "p", "q", "s", "t", "u", "sus", "gone"):
        tb.join("riverside", member, kind="individual", actor=ACTOR, joined_on="2026-02-01")
    tb.propose("riverside", "exchange", "p", "q", "1", actor="p", entry_id="stale")
    tb.propose("riverside", "donation", "p", None, "1", actor="p", entry_id="stale-donating")
    today[0] = fixed_clock()
    tb.propose("riverside", "exchange", "p", "q", "1", actor="p", entry_id="waiting")
    tb.propose("riverside", "exchange", "sus", "q", "1", actor="sus", entry_id="by-sus")
    tb.propose("riverside", "donation", "p", None, "1", actor="p", entry_id="donating")
    tb.propose("riverside", "donation", "sus", None, "1", actor="sus", entry_id="sus-donating")
    tb.suspend("riverside", "sus", actor=ACTOR)
    tb.leave("riverside", "gone", actor=ACTOR, left_on="2026-02-01")
    for entry_id, provider, receiver, hours, day in [
        ("recorded-1", "ann", "bob", "2", "2026-02-02"),
        ("p-helped-q", "p", "q", "1", "2026-03-01"),
        ("undone", "p", "q", "0:30", "2026-03-01"),
        ("s-earned", "s", "t", "2", "2026-03-01"),
        ("s-spent", "u", "s", "2:30", "2026-03-02"),
    ]:
        tb.record_exchange("riverside", provider, receiver, hours, actor=ACTOR,
                           occurred_on=day, entry_id=entry_id)  # fmt: skip
    tb.reverse("undone", actor=ACTOR, reversal_id="undone-undo", occurred_on="2026-03-02")
    yield tb
    tb.close()


def _cases(pairs: bool) -> list[Any]:
    cases = []
    for name, (_, _, rules) in COMMANDS.items():
        for broken in itertools.combinations(range(len(rules)), 2 if pairs else 1):
            if pairs and rules[broken[0]][1] & rules[broken[1]][1]:
                continue  # the same argument: not both at once
            shown = "+".join(rules[n][0].__name__ for n in broken)
            cases.append(pytest.param(name, broken, id=f"{name}:{shown}"))
    return cases


@pytest.mark.parametrize(("command", "broken"), _cases(pairs=False))
def test_each_rule_broken_alone_is_its_own_error(
    store: timebank.Timebank, command: str, broken: tuple[int, ...]
) -> None:
    _raises_the_first(store, command, broken)


@pytest.mark.parametrize(("command", "broken"), _cases(pairs=True))
def test_two_rules_broken_at_once_raise_the_first_in_the_documented_order(
    store: timebank.Timebank, command: str, broken: tuple[int, ...]
) -> None:
    _raises_the_first(store, command, broken)


def _raises_the_first(tb: timebank.Timebank, command: str, broken: tuple[int, ...]) -> None:
    call, base, rules = COMMANDS[command]
    args = dict(base)
    for rule in broken:
        rules[rule][2](args)
    before = snapshot_state(tb)
    with pytest.raises(errors.TimebankError) as caught:
        call(tb, **args)
    first = rules[broken[0]][0]
    expected = {first}
    if first in INPUT_FORM:  # checked before the rest, in no set order among themselves
        expected = {rules[n][0] for n in broken} & INPUT_FORM
    assert type(caught.value) in expected, (first.__name__, caught.value)
    assert snapshot_state(tb) == before
