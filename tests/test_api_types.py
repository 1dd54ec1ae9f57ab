"""Arguments of the wrong kind (docs/api.md): every public call of the API,
given an object of the wrong type in place of any one of its arguments, is
refused with a named error and changes nothing, where Python would raise
its own TypeError or AttributeError from somewhere inside."""

from __future__ import annotations

import inspect
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import timebank
from timebank import errors
from timebank.domain.policy import BalanceLimits, LeaveRule, LimitMode, Permissions, Policy
from timebank.storage.memory import MemoryBackend

from .conftest import ACTOR, snapshot_state

#: Objects that are no argument's right type anywhere in the API.
WRONG: list[object] = [1.5, b"riverside", ["ann"], {1: 60}, object()]

#: A good value of each argument the calls below need (the conftest bank:
#: ann, bob, cat and org; entry e1 from ann to bob).
GOOD: dict[str, Any] = {
    "bank": "riverside",
    "account": "ann",
    "member": "ann",
    "person": "ann",
    "provider": "ann",
    "receiver": "bob",
    "donor": "ann",
    "giver": "ann",
    "recipient": "bob",
    "user": "bob",
    "guardian": "cat",
    "hours": "1",
    "actor": ACTOR,
    "name": "Riverside again",
    "kind": "individual",
    "role": "coordinator",
    "entry_id": "e1",
    "profile": timebank.Profile(display_name="Ann"),
    "policy": Policy(),
    "providers": {"ann": "1"},
    "receivers": {"bob": "1"},
}

#: Calls whose arguments need a value of their own.
GOOD_FOR: dict[tuple[str, str], Any] = {
    ("create_bank", "bank"): "riverside/new",
    ("join", "member"): "dee",
    ("import_members", "rows"): [
        {"member_id": "dee", "kind": "individual", "bank": "riverside", "joined_on": "2026-02-01"}
    ],
    ("import_entries", "rows"): [
        {"entry_id": "i1", "occurred_on": "2026-02-01", "kind": "exchange",
         "provider": "ann", "receiver": "bob", "hours": "1", "bank": "riverside"}
    ],
    ("check_balances", "rows"): [
        {"bank": "riverside", "account": "ann", "on": "2026-02-01", "hours": "1"}
    ],
}  # fmt: skip

#: Not a call on the store's contents.
LEFT_OUT = {"close"}


def _calls() -> list[tuple[str, str, inspect.Parameter]]:
    found = []
    for name, method in inspect.getmembers(timebank.Timebank, inspect.isfunction):
        if name.startswith("_") or name in LEFT_OUT:
            continue
        for param in inspect.signature(method).parameters.values():
            if param.name != "self" and param.kind is not param.VAR_KEYWORD:
                found.append((name, param.name, param))
    return found


CALLS = _calls()


def _arguments(name: str, params: list[inspect.Parameter], tmp_path: Path) -> dict[str, Any]:
    """Good values of every argument without a default (and of ``hours``,
    the amount the entry calls need one of)."""
    files = {"dest": tmp_path / "copy.db", "out": io.StringIO(), "members": io.StringIO(),
             "entries": io.StringIO()}  # fmt: skip
    given = {}
    for p in params:
        if p.default is inspect.Parameter.empty or p.name == "hours":
            key = (name, p.name)
            given[p.name] = GOOD_FOR[key] if key in GOOD_FOR else {**GOOD, **files}[p.name]
    return given


def test_every_argument_of_every_call_is_in_the_sweep() -> None:
    """Each public call takes part, with a good value for every argument it
    needs: a new call or argument without one fails here, not silently."""
    names = {name for name, _, _ in CALLS}
    assert len(names) > 50
    assert {"record_exchange", "import_entries", "backup", "export_csv", "set_policy"} <= names
    for name in names:
        params = [p for n, _, p in CALLS if n == name]
        _arguments(name, params, Path("unused"))  # a KeyError names what is missing


@pytest.mark.parametrize("name", sorted({name for name, _, _ in CALLS}))
def test_a_wrong_kind_of_argument_is_a_named_error_that_changes_nothing(
    tb: timebank.Timebank, bank: str, name: str, tmp_path: Path
) -> None:
    tb.record_exchange(
        bank, "ann", "bob", "1", actor=ACTOR, entry_id="e1", occurred_on="2026-02-01"
    )
    params = [p for n, _, p in CALLS if n == name]
    good = _arguments(name, params, tmp_path)
    before = snapshot_state(tb)
    tried = 0
    for param in params:
        required = param.default is inspect.Parameter.empty
        for wrong in [*WRONG, *([None] if required else [])]:
            with pytest.raises(errors.TimebankError):
                getattr(tb, name)(**{**good, param.name: wrong})
            tried += 1
            assert snapshot_state(tb) == before, (param.name, wrong)
            assert not (tmp_path / "copy.db").exists()
    assert tried >= len(WRONG) * len(params)


@pytest.mark.parametrize(
    ("call", "refused"),
    [
        (lambda: timebank.open(5), "a store's URL must be text: 5"),
        (lambda: timebank.open(b"memory://"), "a store's URL must be text"),
        (lambda: timebank.open("memory://", clock="12:00"), "clock must be a function"),
        (lambda: timebank.Timebank(MemoryBackend(), clock="12:00"), "clock must be a function"),
        (lambda: timebank.audit(5), "a store's URL must be text"),
        (lambda: timebank.restore(None), "backup must be a file's path"),
        (lambda: timebank.restore(b"backup.db"), "backup must be a file's path"),
        (lambda: timebank.read_csv(3), "path must be a file's path"),
        (lambda: timebank.read_csv("members\0.csv"), "path must be a file's path"),
        (lambda: timebank.read_csv("members.csv", name=3), "name must be text naming the file"),
        (lambda: timebank.read_csv("members.csv", name=" "), "name must be text naming the file"),
        (lambda: timebank.restore("backup\0.db"), "backup must be a file's path"),
    ],
)
def test_the_module_functions_name_a_wrong_kind_of_argument(
    call: Callable[[], object], refused: str
) -> None:
    with pytest.raises(errors.InvalidInput, match=refused):
        call()


@pytest.mark.parametrize(
    ("settings", "refused"),
    [
        ({"individual": None}, "individual must be BalanceLimits, got None"),
        ({"organisation": {"lowest_minutes": -60}}, "organisation must be BalanceLimits"),
        ({"pot": None}, "pot must be BalanceLimits"),
        ({"clearing": 5}, "clearing must be BalanceLimits"),
        ({"permissions": {"record": "member"}}, "permissions must be Permissions"),
        ({"limit_mode": "sometimes"}, "limit_mode must be one of refuse, flag: 'sometimes'"),
        ({"limit_mode": ["flag"]}, "limit_mode must be one of refuse, flag"),
        ({"on_leave": None}, "on_leave must be one of freeze, donate: None"),
    ],
)
def test_a_policy_of_the_wrong_kinds_of_setting_is_invalid_policy(
    settings: dict[str, object], refused: str
) -> None:
    with pytest.raises(errors.InvalidPolicy, match=refused):
        Policy(**settings)  # type: ignore[arg-type]


def test_a_policy_takes_its_settings_as_their_types_or_their_names() -> None:
    policy = Policy(limit_mode="flag", on_leave=LeaveRule.DONATE,
                    individual=BalanceLimits(-600, None), permissions=Permissions())  # fmt: skip
    assert (policy.limit_mode, policy.on_leave) == (LimitMode.FLAG, LeaveRule.DONATE)
    assert Policy.from_dict(policy.to_dict()) == policy


def test_an_entry_without_its_provider_or_receiver_is_invalid_id(
    tb: timebank.Timebank, bank: str
) -> None:
    """``None`` for a party the entry needs, which reached the ledger's
    own ``ValueError``; a donation and an opening balance have no receiver."""
    for call in (
        lambda: tb.record_exchange(bank, None, "bob", "1", actor=ACTOR),  # type: ignore[arg-type]
        lambda: tb.record_exchange(bank, "ann", None, "1", actor=ACTOR),  # type: ignore[arg-type]
        lambda: tb.gift(bank, "ann", None, "1", actor=ACTOR),  # type: ignore[arg-type]
        lambda: tb.record_pot_exchange(bank, None, "bob", "1", actor=ACTOR),  # type: ignore[arg-type]
    ):
        before = snapshot_state(tb)
        with pytest.raises(errors.InvalidId, match="invalid member id: None"):
            call()
        assert snapshot_state(tb) == before
    assert tb.donate(bank, "ann", "1", actor=ACTOR).receiver is None
