"""What each stored event must look like, to tell a damaged event from a
sound one (the audit: docs/audit.md, ``event_unreadable``).

An event is stored as the JSON object of its fields, as eventsourcing's
transcoder writes them: one key per field of its class, no other; a text,
a whole number or a list as itself, a day or a moment as ``{"_type_":
"date_iso" | "datetime_iso", "_data_": "<ISO text>"}``, a policy as
``{"_type_": "timebank_policy", "_data_": {...}}``. A byte flipped in a
stored event (a failing disk, a hand edit) nearly always breaks one of
these: the JSON itself, a field's name, or a value's form. One that leaves a
well-formed event (another valid amount, id or day) is found only where
another record disagrees with it (docs/audit.md).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import cache
from typing import Any

from eventsourcing.domain import OriginatorVersionError
from eventsourcing.utils import TopicError, resolve_topic

from timebank.domain.errors import InvalidInput
from timebank.domain.policy import Policy
from timebank.domain.values import (
    BANK_ID_FORM,
    CATEGORY_FORM,
    CLEARING_PREFIX,
    ENTRY_ID_FORM,
    MEMBER_ID_FORM,
    OPENING,
    POT,
)

__all__ = ["DAMAGE", "DAMAGED_CURE", "described", "event_fields", "shape_problem"]

#: What reading a damaged event raises beyond its JSON and form (a value the
#: rules cannot read: a party missing, a policy's setting, an account that
#: breaks an invariant; a topic that names no class): the damage, reported
#: by whoever read it, not a crash. (Reading a stored event or snapshot
#: never refuses input otherwise: ``InvalidInput`` there is damage too.)
DAMAGE = (
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
    AssertionError,
    TopicError,
    InvalidInput,
    # an event missing from its stream (deleted around the API): the next
    # one's version does not follow the one before
    OriginatorVersionError,
)

Check = Callable[[Any], bool]


#: What to do about a damaged event.
DAMAGED_CURE = (
    "`timebank audit` names every damaged event; restore the store from a backup"
    " (docs/operations.md)"
)


def described(error: BaseException) -> str:
    """What reading a damaged event or snapshot raised, on one line (for
    the named error or the audit's finding that reports it)."""
    if isinstance(error, OriginatorVersionError) and len(error.args) == 2:
        found, expected = error.args  # as the library raises it
        return f"event {expected} of its stream is missing: the next stored is event {found}"
    return " ".join(f"{type(error).__name__}: {error}".split())


#: Fields the store keeps outside the state (its stream and version).
_OUTSIDE_STATE = frozenset({"originator_id", "originator_version"})


def shape_problem(topic: str, state: object) -> str | None:
    """Why ``state`` (an event's decoded JSON) is not an event of ``topic``
    as timebank stores it, or ``None`` when it is."""
    spec = _spec(topic)
    if spec is None:
        return f"its topic {topic!r} names no event class of this version"
    keys, fields = spec
    if not isinstance(state, dict):
        return "its state is not a JSON object"
    if state.keys() != keys:
        said = [f"unknown field {name!r}" for name in sorted(state.keys() - keys)]
        said += [f"no field {name!r}" for name in sorted(keys - state.keys())]
        return ", ".join(said)
    for name, check, what in fields:
        if not check(state[name]):
            return f"field {name!r} holds {_shown(state[name])}, not {what}"
    return None


def event_fields(topic: str) -> frozenset[str]:
    """The fields an event of ``topic`` is stored with (none for a topic of
    no event class)."""
    spec = _spec(topic)
    return frozenset() if spec is None else spec[0]


#: A topic's stored fields, and each one's name, check and what it must be.
Spec = tuple[frozenset[str], tuple[tuple[str, Check, str], ...]]


@cache
def _spec(topic: str) -> Spec | None:
    """The stored fields of the event class ``topic`` names, each with the
    check of its stored form; ``None`` for a topic of no event class."""
    try:
        cls = resolve_topic(topic)
    except (TopicError, ValueError):
        return None
    if not isinstance(cls, type):
        return None
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):
        return None
    fields = []
    for name, hint in hints.items():
        if name in _OUTSIDE_STATE or typing.get_origin(hint) is typing.ClassVar:
            continue
        check = _check_of(hint)
        if name in _ID_FORMS and check in (_text, _optional_text):
            pattern, what = _ID_FORMS[name]
            fields.append((name, _id(pattern, optional=check is _optional_text), what))
        else:
            fields.append((name, check, _NAMES[check]))
    return frozenset(name for name, _, _ in fields), tuple(fields)


#: How many valid values each check remembers (ids, days and codes recur:
#: a million events hold some 10,000 ids and 4,000 days).
_REMEMBERED = 100_000


def _remembering(valid: Check) -> Check:
    """``valid`` for texts, remembering those it passed."""
    seen: set[str] = set()

    def check(value: Any) -> bool:
        if type(value) is not str:
            return valid(value)
        if value in seen:
            return True
        if not valid(value):
            return False
        if len(seen) < _REMEMBERED:
            seen.add(value)
        return True

    return check


def _id(pattern: re.Pattern[str], *, optional: bool) -> Check:
    valid = _remembering(lambda value: pattern.fullmatch(value) is not None)

    def check(value: Any) -> bool:
        if type(value) is not str:
            return optional and value is None
        return valid(value)

    return check


def _check_of(hint: Any) -> Check:
    if hint in _SIMPLE:
        return _SIMPLE[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union) and set(args) == {str, type(None)}:
        return _optional_text
    if origin is list and args == (str,):
        return _texts
    if origin is list:
        return _legs if typing.get_origin(args[0]) is list else _list
    return _anything  # a form this module does not know: only its presence is checked


def _transcoded(type_name: str, data: Check) -> Check:
    marks = {"_type_", "_data_"}

    def check(value: Any) -> bool:
        return (
            type(value) is dict
            and value.keys() == marks
            and value["_type_"] == type_name
            and data(value["_data_"])
        )

    return check


def _iso(parse: Callable[[str], date]) -> Check:
    """ISO text exactly as ``isoformat()`` writes it (``fromisoformat``
    alone also reads other forms: a week date, any separator)."""

    def check(value: Any) -> bool:
        if type(value) is not str:
            return False
        try:
            return parse(value).isoformat() == value
        except ValueError:
            return False

    return check


def _text(value: Any) -> bool:
    return type(value) is str


def _whole(value: Any) -> bool:
    return type(value) is int


def _truth(value: Any) -> bool:
    return type(value) is bool


def _optional_text(value: Any) -> bool:
    return value is None or type(value) is str


def _texts(value: Any) -> bool:
    return type(value) is list and all(type(v) is str for v in value)


def _list(value: Any) -> bool:
    return type(value) is list


def _legs(value: Any) -> bool:
    """Legs or participants: ``[[account, minutes], ...]``."""
    return type(value) is list and all(
        type(v) is list and len(v) == 2 and type(v[0]) is str and type(v[1]) is int for v in value
    )


def _anything(value: Any) -> bool:  # noqa: ARG001 - the check of an unknown form
    return True


_day = _transcoded("date_iso", _remembering(_iso(date.fromisoformat)))
_moment = _transcoded("datetime_iso", _iso(datetime.fromisoformat))
_policy = _transcoded("timebank_policy", lambda data: type(data) is dict)

_SIMPLE: Mapping[Any, Check] = {
    str: _text,
    int: _whole,
    bool: _truth,
    date: _day,
    datetime: _moment,
    Policy: _policy,
}
_NAMES: Mapping[Check, str] = {
    _text: "a text",
    _whole: "a whole number",
    _truth: "true or false",
    _optional_text: "a text or null",
    _texts: "a list of texts",
    _list: "a list",
    _legs: "a list of [account, minutes]",
    _day: "a day",
    _moment: "a moment",
    _policy: "a policy",
    _anything: "anything",
}


#: The forms of the fields that hold ids: the forms the API accepts them in.
_PEOPLE = ("actor", "member_id", "confirmer", "on_behalf_of", "guardian", "user")
#: An entry's provider or receiver: a member, or the pot or a system account.
_ACCOUNT_FORM = re.compile(
    f"{re.escape(POT)}|{re.escape(OPENING)}|{re.escape(CLEARING_PREFIX)}(?:{BANK_ID_FORM.pattern})"
    f"|{MEMBER_ID_FORM.pattern}"
)
_ID_FORMS: Mapping[str, tuple[re.Pattern[str], str]] = {
    **dict.fromkeys(("entry_id", "reverses"), (ENTRY_ID_FORM, "an entry id")),
    **dict.fromkeys(_PEOPLE, (MEMBER_ID_FORM, "a member id")),
    **dict.fromkeys(("provider", "receiver"), (_ACCOUNT_FORM, "an account")),
    **dict.fromkeys(("bank_id", "provider_bank", "receiver_bank"), (BANK_ID_FORM, "a bank id")),
    "category": (CATEGORY_FORM, "a category"),
}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
