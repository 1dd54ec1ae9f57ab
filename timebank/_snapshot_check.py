"""Whether a bank's snapshot is whole. A snapshot is only a cache of the
log: one that is not whole (a byte flipped on a failing disk, a hand edit)
is set aside, and its bank replayed from its events (docs/architecture.md,
"Snapshots").

The check is of the state's form, at the cost of one pass over its maps:
every attribute of the bank's state there, no other, each holding what it
holds, and its maps naming the same accounts and members.
tests/test_snapshots.py holds it to the shape the bank's ``STATE_VERSION``
names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from timebank.domain.bank import MEMBER_KINDS, PENDING_FIELDS, Awaiting, Bank, MemberStatus
from timebank.domain.policy import Policy
from timebank.domain.roles import Role
from timebank.domain.values import AccountKind, EntryKind

__all__ = ["BANK_STATE", "snapshot_problem"]

Check = Callable[[Any], bool]


def _of(kind: type) -> Check:
    return lambda value: type(value) is kind


def _map(values: Check) -> Check:
    return lambda value: (
        type(value) is dict
        and all(type(k) is str for k in value)
        and all(values(v) for v in value.values())
    )


def _one_of(codes: type[StrEnum]) -> Check:
    values = frozenset(code.value for code in codes)
    return lambda value: type(value) is str and value in values


def _period(value: Any) -> bool:
    return (
        type(value) is list
        and len(value) == 2
        and all(day is None or type(day) is date for day in value)
    )


def _scalar(value: Any) -> bool:
    return value is None or type(value) in (bool, date, int, str)


#: The attributes of a bank's state at ``Bank.STATE_VERSION``, each with the
#: check of what it holds.
BANK_STATE: Mapping[str, Check] = {
    "_created_on": _of(datetime),
    "_modified_on": _of(datetime),
    "balances": _map(_of(int)),
    "bank_id": _of(str),
    "entries_count": _of(int),
    "guardians": _map(lambda v: type(v) is list and all(type(g) is str for g in v)),
    "joined_on": _map(_of(date)),
    "kinds": _map(_one_of(AccountKind)),
    "last_occurred_on": _map(_of(date)),
    "name": _of(str),
    "opened_on": _of(date),
    "pending": _map(_map(_scalar)),
    "periods": _map(lambda v: type(v) is list and all(_period(p) for p in v)),
    "policy": _of(Policy),
    "roles": _map(_one_of(Role)),
    "status": _map(_one_of(MemberStatus)),
}

_STATES: Mapping[type, Mapping[str, Check]] = {Bank: BANK_STATE}


def snapshot_problem(cls: type, state: Mapping[str, Any]) -> str | None:
    """What is wrong with the snapshot ``state`` of an aggregate of ``cls``
    (its stamp of state version taken out), or ``None`` when it is whole."""
    forms = _STATES.get(cls)
    if forms is None:
        return None
    if state.keys() != forms.keys():
        unknown, missing = sorted(state.keys() - forms.keys()), sorted(forms.keys() - state.keys())
        return f"its state has attributes {unknown} it should not, and lacks {missing}"
    for name, check in forms.items():
        if not check(state[name]):
            return f"its attribute {name!r} does not hold what a bank's does"
    return _inconsistency(state) if cls is Bank else None


def _inconsistency(state: Mapping[str, Any]) -> str | None:
    """What a bank's maps disagree on (each keeps one key per account, or
    per member): a damaged key is another id in one map only."""
    accounts = state["kinds"].keys()
    if state["balances"].keys() != accounts:
        return "its balances and its accounts name different accounts"
    members = {a for a, kind in state["kinds"].items() if kind in MEMBER_KINDS}
    for name in ("periods", "status", "joined_on"):
        if state[name].keys() != members:
            return f"its {name} and its members name different members"
    for name in ("last_occurred_on", "guardians"):
        if not state[name].keys() <= members:
            return f"its {name} names someone who is not a member"
    for entry_id, fields in state["pending"].items():
        if (
            fields.keys() != PENDING_FIELDS
            or fields["entry_id"] != entry_id
            or not _ENTRY_KIND(fields["kind"])
            or not _AWAITING(fields["awaiting"])
        ):
            return f"its pending entry {entry_id!r} does not hold a pending entry's fields"
    return None


_ENTRY_KIND, _AWAITING = _one_of(EntryKind), _one_of(Awaiting)
