"""Retries after a lost reply (docs/workflows.md, "Retrying after a lost
reply"): writes fail at random, before their commit (nothing written) or
after it (everything written, the reply lost), as a dropped connection
makes them; each call is sent again until it is answered, as the docs say
to. The store must end exactly as the same calls leave a store that never
failed, and each call's answer must be the one it gave there.

The failures are made in the store's real recorder, around its real
``insert_events``: the commit itself is the backend's own.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from operator import methodcaller
from pathlib import Path
from typing import Any

import attrs
import pytest
from eventsourcing.persistence import OperationalError

import timebank
from timebank import errors

from .conftest import ACTOR, BACKENDS, fixed_clock, open_store

HUB = "r/hub"
#: Calls made; a third of writes fail (half before their commit, half after).
CALLS, FAILING = 100, 0.33

Call = Callable[[timebank.Timebank], Any]


class _LostReplies:
    """The real ``insert_events`` of a recorder, failing on a random share of
    calls: before it (nothing written) or after its commit (reply lost)."""

    def __init__(self, insert_events: Callable[..., Any], rng: random.Random) -> None:
        self.insert_events = insert_events
        self.rng = rng
        self.before = self.after = 0
        #: whether the last failure came after the commit
        self.committed = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fate = self.rng.random()
        self.committed = False
        if fate < FAILING / 2:
            self.before += 1
            raise OperationalError("server closed the connection before the commit")
        result = self.insert_events(*args, **kwargs)
        if fate < FAILING:
            self.after += 1
            self.committed = True
            raise OperationalError("server closed the connection after the commit")
        return result


def _calls(rng: random.Random) -> list[tuple[str, str, Call]]:
    """(id, kind, call): exchanges, inter-bank ones, donations, group
    exchanges, reversals, proposals and their confirmations and declines,
    each with the caller's own id, in an order drawn once."""
    calls: list[tuple[str, str, Call]] = []
    recorded: list[str] = []
    proposed: list[tuple[str, str]] = []
    members = ["a", "b", "c", "d"]
    for n in range(CALLS):
        kind = rng.choice(["exchange", "inter", "donation", "group", "reversal", "proposal",
                           "proposal", "confirmation", "decline"])  # fmt: skip
        p, q = rng.sample(members, 2)
        minutes = rng.randint(15, 120)
        entry_id = f"{kind[:3]}-{n}"
        call: Call
        if kind == "exchange":
            call = methodcaller("record_exchange", "r", p, q, minutes=minutes, actor=ACTOR,
                                entry_id=entry_id)  # fmt: skip
        elif kind == "inter":
            call = methodcaller("record_exchange", "r", p, "e", minutes=minutes, actor=ACTOR,
                                receiver_bank=HUB, entry_id=entry_id)  # fmt: skip
        elif kind == "donation":
            call = methodcaller("donate", "r", p, minutes=minutes, actor=ACTOR, entry_id=entry_id)
        elif kind == "group":
            giver, *takers = rng.sample(members, 3)
            call = methodcaller("record_group_exchange", "r", {giver: "1"},
                                {takers[0]: "0:30", takers[1]: "0:30"}, actor=ACTOR,
                                entry_id=entry_id)  # fmt: skip
        elif kind == "reversal":
            if not recorded:
                continue
            call = methodcaller("reverse", rng.choice(recorded), actor=ACTOR, reversal_id=entry_id)
        elif kind == "proposal":
            call = methodcaller("propose", "r", "exchange", p, q, minutes=minutes, actor=p,
                                entry_id=entry_id)  # fmt: skip
            proposed.append((entry_id, q))
        else:
            if not proposed:
                continue
            entry_id, confirmer = proposed.pop(0)
            verb = "confirm" if kind == "confirmation" else "decline"
            call = methodcaller(verb, entry_id, actor=confirmer)
        if kind in ("exchange", "inter", "donation", "group"):
            recorded.append(entry_id)
        calls.append((entry_id, kind, call))
    return calls


def _answered(
    tb: timebank.Timebank,
    entry_id: str,
    kind: str,
    call: Call,
    faults: _LostReplies | None = None,
    settled: list[str] | None = None,
) -> Any:
    """The call's answer, sent again after each StorageError as the docs
    say; a rule's refusal is an answer too (its error's class). A
    confirmation or decline answered though its first call had committed
    (its reply lost) is added to ``settled``, with its kind."""
    committed = False
    for _ in range(100):
        try:
            answer = _plain(call(tb))
        except errors.StorageError:
            committed = committed or (faults is not None and faults.committed)
            continue
        except errors.TimebankError as e:
            return type(e)
        if committed and kind in ("confirmation", "decline") and settled is not None:
            settled.append(kind)
        return answer
    pytest.fail(f"{entry_id}: still failing after 100 attempts")


def _plain(answer: Any) -> Any:
    """An answer without the moment it was recorded (which differs between
    two stores)."""
    if isinstance(answer, timebank.RecordedEntry):
        return attrs.evolve(answer, recorded_at=None)  # type: ignore[arg-type]
    return answer


def _state(tb: timebank.Timebank) -> tuple[object, ...]:
    return (
        sorted((b.bank, b.account, b.balance_minutes) for b in tb.balances()),
        [(p.entry_id, p.awaiting, p.minutes) for bank in ("r", HUB) for p in tb.pending(bank)],
        tb._app.index.count_entries(),
    )


def _opened(tb: timebank.Timebank) -> None:
    floor = timebank.BalanceLimits(lowest_minutes=-600, highest_minutes=None)
    tb.create_bank("r", name="R", actor=ACTOR, opened_on="2026-01-01",
                   policy=timebank.Policy(individual=floor))  # fmt: skip
    tb.create_bank(HUB, name="Hub", actor=ACTOR, opened_on="2026-01-01")
    for member in ("a", "b", "c", "d"):
        tb.join("r", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    tb.join(HUB, "e", kind="individual", actor=ACTOR, joined_on="2026-01-01")


@pytest.mark.parametrize("kind", BACKENDS)
def test_calls_retried_after_lost_replies_leave_the_store_as_a_run_without_faults(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _calls(random.Random(20261205))
    with timebank.open("memory://", clock=fixed_clock) as twin:
        _opened(twin)
        expected = [_answered(twin, i, k, call) for i, k, call in calls]
        expected_state = _state(twin)
    reopen = open_store(kind, tmp_path)
    with reopen() as tb:
        _opened(tb)
        recorder = tb._app.recorder
        faults = _LostReplies(recorder.insert_events, random.Random(6))
        monkeypatch.setattr(recorder, "insert_events", faults)
        settled: list[str] = []
        answers = [_answered(tb, i, k, call, faults, settled) for i, k, call in calls]
        monkeypatch.undo()
        # each kind of fault came, and a confirmation's and a decline's reply was lost
        assert faults.before > 5, faults.before
        assert faults.after > 5, faults.after
        assert set(settled) == {"confirmation", "decline"}, settled
        assert answers == expected
        assert _state(tb) == expected_state
        assert tb.audit().findings == ()
    with reopen() as again:
        assert _state(again) == expected_state


class _ReplyLostOnce:
    """The real ``insert_events``, whose reply is lost once, after its
    commit, when armed."""

    def __init__(self, insert_events: Callable[..., Any]) -> None:
        self.insert_events = insert_events
        self.armed = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.insert_events(*args, **kwargs)
        if self.armed:
            self.armed = False
            raise OperationalError("server closed the connection after the commit")
        return result


#: The other writing calls, each with its retry's documented answer
#: (docs/workflows.md, "Retrying after a lost reply"): an error class, or
#: None for "answered as the call was"; and the events the retry adds.
_ADMINISTRATIVE: list[tuple[str, Call, type[errors.TimebankError] | None, int]] = [
    ("create_bank", methodcaller("create_bank", "r", name="R", actor=ACTOR,
                                 opened_on="2026-01-01"), errors.BankAlreadyExists, 0),
    ("set_policy", methodcaller("set_policy", "r", timebank.Policy(on_leave="donate"),
                                actor=ACTOR), None, 0),
    ("grant_role", methodcaller("grant_role", "r", "u1", "coordinator", actor=ACTOR), None, 0),
    ("revoke_role", methodcaller("revoke_role", "r", "u1", actor=ACTOR), errors.RoleNotFound, 0),
    ("join", methodcaller("join", "r", "a", kind="individual", actor=ACTOR,
                          joined_on="2026-01-01"), errors.MemberAlreadyJoined, 0),
    ("join", methodcaller("join", "r", "b", kind="individual", actor=ACTOR,
                          joined_on="2026-01-01"), errors.MemberAlreadyJoined, 0),
    ("exchange", methodcaller("record_exchange", "r", "a", "b", minutes=60, actor=ACTOR,
                              occurred_on="2026-02-01", entry_id="x-1"), None, 0),
    ("appoint_guardian", methodcaller("appoint_guardian", "r", "b", "g1", actor=ACTOR), None, 0),
    ("remove_guardian", methodcaller("remove_guardian", "r", "b", "g1", actor=ACTOR),
     errors.RoleNotFound, 0),
    ("suspend", methodcaller("suspend", "r", "b", actor=ACTOR), errors.MemberStatusConflict, 0),
    ("reinstate", methodcaller("reinstate", "r", "b", actor=ACTOR),
     errors.MemberStatusConflict, 0),
    ("leave", methodcaller("leave", "r", "b", actor=ACTOR, left_on="2026-03-01"), errors.MemberStatusConflict, 0),
    ("rejoin", methodcaller("rejoin", "r", "b", actor=ACTOR), errors.MemberStatusConflict, 0),
    # a's balance is 60 and the policy donates it: the donation is recorded
    ("leave", methodcaller("leave", "r", "a", actor=ACTOR, donation_id="d-1"),
     errors.EntryConflict, 0),
    # the request is recorded again
    ("erase_member", methodcaller("erase_member", "b", actor=ACTOR), None, 1),
]  # fmt: skip


@pytest.mark.parametrize("kind", BACKENDS)
def test_every_other_writing_call_retried_after_a_lost_reply_gets_its_documented_answer(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    twin = timebank.open("memory://", clock=fixed_clock)
    reopen = open_store(kind, tmp_path)
    with twin, reopen() as tb:
        lost = _ReplyLostOnce(tb._app.recorder.insert_events)
        monkeypatch.setattr(tb._app.recorder, "insert_events", lost)
        for name, call, refusal, added in _ADMINISTRATIVE:
            expected = _plain(call(twin))
            before = tb._app.recorder.max_notification_id() or 0
            lost.armed = True
            with pytest.raises(errors.StorageError):
                call(tb)
            assert not lost.armed, name
            committed = tb._app.recorder.max_notification_id() or 0
            assert committed > before, name
            if refusal is None:
                assert _plain(call(tb)) == (
                    attrs.evolve(expected, profile_deleted=False)
                    if name == "erase_member"
                    else expected
                ), name
            else:
                with pytest.raises(refusal):
                    call(tb)
            assert (tb._app.recorder.max_notification_id() or 0) == committed + added, name
        monkeypatch.undo()
        assert tb.balances() == twin.balances()
        assert tb.members("r") == twin.members("r")
        assert tb.bank("r") == twin.bank("r")
        assert tb.audit().findings == ()
