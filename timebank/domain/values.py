"""Value parsing and validation: amounts in whole minutes, ids, dates, kinds.

Credits are ``int`` minutes everywhere. Hours are accepted as text (``"2"``,
``"1.5"``, ``"1:30"``), ``int`` or ``Decimal``; floats are refused because
``0.1`` hours has no exact binary value. Nothing is ever rounded: an amount
that is not a whole number of minutes is an error.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, TypeAlias, TypeGuard

import attrs

from timebank.domain.errors import InvalidAmount, InvalidDate, InvalidId, InvalidInput

__all__ = [
    "AMOUNT_TEXT_LENGTH_MAX",
    "CLEARING_PREFIX",
    "EARLIEST_DAY",
    "MINUTES_ABS_MAX",
    "OPENING",
    "POT",
    "PROFILE_TEXT_MAX",
    "TOO_EARLY",
    "AccountKind",
    "EntryKind",
    "Hours",
    "NoSuchDay",
    "clearing_account",
    "fields_as_json",
    "format_hours",
    "invariant",
    "is_whole",
    "iso_day",
    "jsonable",
    "not_text",
    "parent_bank",
    "parse_date",
    "parse_minutes",
    "root_bank",
    "validate_account_id",
    "validate_actor_id",
    "validate_bank_id",
    "validate_category",
    "validate_entry_id",
    "validate_flag",
    "validate_member_id",
    "validate_profile_text",
]

#: Longest hours text accepted (``"99999:59"`` and friends fit easily).
AMOUNT_TEXT_LENGTH_MAX: Final = 16
#: No single amount or balance may exceed this many minutes (about 1.9 million
#: years): a guard against overflow of 64-bit columns, far above any policy.
MINUTES_ABS_MAX: Final = 10**12

#: Account name of a bank's community pot. Member ids cannot start with "@".
POT: Final = "@pot"
#: Account name of a bank's migration account, which takes the other side of
#: opening balances carried over from an older system.
OPENING: Final = "@opening"
#: Prefix of a bank's clearing account with another bank of its tree:
#: ``@clearing:thurrock/tilbury-hub`` in bank ``thurrock``.
CLEARING_PREFIX: Final = "@clearing:"

_MEMBER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ENTRY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_BANK_SEGMENT = r"[a-z0-9][a-z0-9-]{0,39}"
_BANK_ID = re.compile(rf"{_BANK_SEGMENT}(/{_BANK_SEGMENT}){{0,3}}")
_CATEGORY = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
#: The forms of ids and categories (``fullmatch``), as the validators below
#: accept them: also what the audit holds stored events to.
MEMBER_ID_FORM, ENTRY_ID_FORM, BANK_ID_FORM, CATEGORY_FORM = (
    _MEMBER_ID, _ENTRY_ID, _BANK_ID, _CATEGORY
)  # fmt: skip
#: The earliest date given to timebank (docs/api.md): no time bank holds an
#: earlier one, and a year typed with a digit missing (0216 for 2016) or an
#: older system's "unknown" (0001-01-01) falls before it.
EARLIEST_DAY = date(1900, 1, 1)
#: Why a date before it is refused.
TOO_EARLY = (
    f"before {EARLIEST_DAY}, the earliest date timebank takes (a year with a digit missing?)"
)
# ASCII digits only, here and below: ``\d``, ``int`` and ``Decimal`` also take
# the digits of every other script ("٣" is 3), and ``Decimal`` exponents and
# digit separators ("1e2", "1_000"), none of which an hours column means
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: Clock hours, ``H:MM``, or ``H:MM:SS`` as a spreadsheet writes a duration.
_CLOCK = re.compile(r"(-?)([0-9]{1,9}):([0-5][0-9])(?::([0-5][0-9]))?")
#: Decimal hours: an optional sign, then digits with an optional point.
_DECIMAL_HOURS = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


#: An amount of hours as the API takes it: text (``"1.5"``, ``"1:30"``,
#: ``"1:30:00"``), an ``int`` of hours, or a ``Decimal``. A ``float`` is not
#: one (``0.1`` hours has no exact binary value): a type checker refuses it
#: where the API is typed with this, and the API refuses it at run time too.
Hours: TypeAlias = str | int | Decimal


class AccountKind(StrEnum):
    """What an account belongs to; balance limits are set per kind."""

    INDIVIDUAL = "individual"
    ORGANISATION = "organisation"
    POT = "pot"
    SYSTEM = "system"
    CLEARING = "clearing"


class EntryKind(StrEnum):
    """The kinds of ledger entry. Names match the import/export CSV layout."""

    EXCHANGE = "exchange"
    POT_EXCHANGE = "pot_exchange"
    DONATION = "donation"
    GIFT = "gift"
    OPENING_BALANCE = "opening_balance"
    REVERSAL = "reversal"
    GROUP_EXCHANGE = "group_exchange"


def is_whole(value: object) -> TypeGuard[int]:
    """An ``int`` that is not a ``bool`` (``True`` is an ``int`` to Python):
    what every count of minutes, days or lines must be."""
    return isinstance(value, int) and not isinstance(value, bool)


def validate_flag(name: str, value: object) -> bool:
    """A yes-or-no option must be ``True`` or ``False``: anything else
    (``"false"`` from a web form, ``0``, ``None``) is refused, where Python
    would take ``"false"`` as true and, say, roll a report up."""
    if value is not True and value is not False:
        raise InvalidInput(f"{name} must be True or False: {value!r}")
    return value


def invariant(condition: bool, message: str) -> None:
    """Check a programmer-level invariant; runs under ``python -O`` too.

    Used for facts that no input can break (balances sum to zero after an
    event is applied). Caller mistakes raise named errors instead.
    """
    if not condition:
        raise AssertionError(f"timebank invariant broken: {message}")


def parse_minutes(value: object, *, allow_negative: bool = False, allow_zero: bool = False) -> int:
    """Turn hours (``"1.5"``, ``"1:30"``, ``"1:30:00"``, ``2``, ``Decimal("0.25")``) into minutes.

    Raises :class:`InvalidAmount` for floats, non-numbers, zero (unless
    ``allow_zero``), amounts that are not whole minutes, negative amounts
    (unless ``allow_negative``) and amounts beyond :data:`MINUTES_ABS_MAX`.
    """
    minutes = _hours_to_minutes(value)
    if minutes == 0 and not allow_zero:
        raise InvalidAmount(f"amount must not be zero: {value!r}", value=value)
    if minutes < 0 and not allow_negative:
        raise InvalidAmount(f"amount must be positive: {value!r}", value=value)
    if abs(minutes) > MINUTES_ABS_MAX:
        raise InvalidAmount(f"amount is too large: {value!r}", value=value)
    return minutes


def _hours_to_minutes(value: object) -> int:
    if isinstance(value, bool | float):
        raise InvalidAmount(
            f"amount must be text, int or Decimal hours, not {type(value).__name__}: {value!r}",
            value=value,
        )
    if isinstance(value, int):
        return value * 60
    if isinstance(value, Decimal):
        return _decimal_hours_to_minutes(value, value)
    if not isinstance(value, str):
        raise _not_hours(value)
    text = value.strip()
    if not text or len(text) > AMOUNT_TEXT_LENGTH_MAX:
        raise _not_hours(value)
    clock = _CLOCK.fullmatch(text)
    if clock:
        if clock.group(4) not in (None, "00"):  # seconds: never rounded away
            raise _not_whole_minutes(value)
        sign = -1 if clock.group(1) else 1
        return sign * (int(clock.group(2)) * 60 + int(clock.group(3)))
    if not _DECIMAL_HOURS.fullmatch(text):
        raise _not_hours(value)
    return _decimal_hours_to_minutes(Decimal(text), value)


#: The forms of hours that amounts are given in, named where one is refused.
_HOURS_FORMS: Final = "give hours as 1.5 or 1:30"


def _not_hours(value: object) -> InvalidAmount:
    """The error for ``value``, which is in no form of hours."""
    return InvalidAmount(
        f"amount is not a number of hours: {value!r} ({_HOURS_FORMS})", value=value
    )


def _not_whole_minutes(value: object) -> InvalidAmount:
    """The error for ``value``, hours with a part of a minute (never rounded)."""
    return InvalidAmount(f"amount is not a whole number of minutes: {value!r}", value=value)


def _decimal_hours_to_minutes(hours: Decimal, original: object) -> int:
    if not hours.is_finite():
        raise InvalidAmount(f"amount is not finite: {original!r}", value=original)
    minutes = hours * 60
    if minutes != minutes.to_integral_value():
        raise _not_whole_minutes(original)
    return int(minutes)


def format_hours(minutes: int) -> str:
    """Show minutes as ``h:mm`` (``90`` -> ``"1:30"``, ``-15`` -> ``"-0:15"``)."""
    sign = "-" if minutes < 0 else ""
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours}:{rest:02d}"


def fields_as_json(value: Any) -> dict[str, Any]:
    """An attrs value's fields as JSON holds them: dates and times as ISO
    text, tuples (a recorded entry's legs, say) as lists; an enum of text
    (``EntryKind``) stays as it is, which ``json`` writes as its text. What
    the public value objects' ``to_dict()`` return."""
    return {k: jsonable(v) for k, v in attrs.asdict(value, recurse=False).items()}


def jsonable(value: object) -> object:
    """One value as JSON holds it (see :func:`fields_as_json`)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [jsonable(v) for v in value]
    return value


def parse_date(value: object) -> date:
    """Accept a :class:`date` or an ISO ``YYYY-MM-DD`` string, from
    :data:`EARLIEST_DAY` on."""
    day = None
    if isinstance(value, date):
        if hasattr(value, "hour"):  # a datetime is a date subclass; refuse it
            raise InvalidDate(f"expected a date, got a datetime: {value!r}", value=value)
        day = value
    elif isinstance(value, str):
        try:
            day = iso_day(value.strip())
        except NoSuchDay as e:
            if e.reason is TOO_EARLY:
                raise InvalidDate(f"{value.strip()} is {TOO_EARLY}", value=value) from None
            raise InvalidDate(f"no such day: {value.strip()} ({e.reason})", value=value) from None
        except ValueError:
            pass
    if day is None:
        raise InvalidDate(f"not an ISO date (YYYY-MM-DD): {value!r}", value=value)
    if day < EARLIEST_DAY:
        raise InvalidDate(f"{day.isoformat()} is {TOO_EARLY}", value=value)
    return day


def iso_day(text: str) -> date:
    """The day ``text`` names as ``YYYY-MM-DD`` exactly (ASCII digits);
    ``ValueError`` otherwise. ``date.fromisoformat`` alone also reads the
    basic and week-date forms (``20260203``, ``2026-W06-2``), which no
    document of timebank offers and which a mistyped cell can fall into."""
    if not _ISO_DAY.fullmatch(text):
        raise ValueError(f"not YYYY-MM-DD: {text!r}")
    year, month, day = int(text[:4]), int(text[5:7]), int(text[8:])
    try:
        return date(year, month, day)
    except ValueError:
        raise NoSuchDay(year, month) from None


#: The months' names in the errors' English (``calendar.month_name`` follows
#: the locale an embedding app may have set).
_MONTHS: Final = ("January", "February", "March", "April", "May", "June", "July",
                  "August", "September", "October", "November", "December")  # fmt: skip


class NoSuchDay(ValueError):
    """Text in the form ``YYYY-MM-DD`` that names no day of the calendar
    (``2026-02-30``, ``2026-13-01``). :attr:`reason` says why, for the
    error that refuses it: a coordinator's typo of a day is told apart from
    a date in another form."""

    def __init__(self, year: int, month: int) -> None:
        if year < 1:
            reason = TOO_EARLY
        elif not 1 <= month <= 12:
            reason = f"there is no month {month:02d}"
        else:
            days = calendar.monthrange(year, month)[1]
            reason = f"{_MONTHS[month - 1]} {year} has days 01 to {days}"
        super().__init__(reason)
        self.reason: str = reason


#: A person's id (a member's, an actor's): the same rule for both.
_PERSON_ID_RULE = (
    "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit;"
    " an opaque id, no names or emails"
)
#: What each kind of id may hold, for the error that refuses one.
_RULES = {
    "member id": _PERSON_ID_RULE,
    "actor id": _PERSON_ID_RULE,
    "entry id": "1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
    "bank id": "lower-case letters, digits and '-', starting with a letter or digit, up to 40"
    " a level; a mini bank's path adds levels with '/', four levels at most",
    "category": "1-40 lower-case letters, digits, '_' or '-', starting with a letter or digit",
    "account": "a member id, '@pot', '@opening', or '@clearing:' and a bank id",
}


def _validate(pattern: re.Pattern[str], value: object, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        rule = _RULES[what]
        if what in _LOWER_CASE_CODES and isinstance(value, str):
            rule += _would_do(pattern, value)
        raise InvalidId(f"invalid {what}: {value!r} ({rule})", value=value, what=what)
    return value


#: The codes that are lower case with '-' between words, which a spreadsheet
#: or a hand often gives as words ("Gardening", "Tilbury Hub").
_LOWER_CASE_CODES: Final = ("category", "bank id")


def _would_do(pattern: re.Pattern[str], value: str) -> str:
    """The code a refused one was most likely meant as, when it is one:
    lower case, '-' between words (``"Home Repairs"`` -> ``"home-repairs"``).
    Only said, never used in its place: an import refuses the row."""
    meant = "/".join("-".join(level.lower().split()) for level in value.split("/"))
    return f"; {meant!r} would do" if meant != value and pattern.fullmatch(meant) else ""


def validate_member_id(value: object) -> str:
    """A member id: opaque, 1-64 characters ``[A-Za-z0-9._-]``, no ``@``."""
    return _validate(_MEMBER_ID, value, "member id")


def validate_actor_id(value: object) -> str:
    """An actor id (who recorded something): same shape as a member id."""
    return _validate(_MEMBER_ID, value, "actor id")


def validate_account_id(value: object) -> str:
    """An account of a bank: a member's id, ``@pot``, ``@opening`` or a
    clearing account, ``@clearing:`` and the other bank's id."""
    if value in (POT, OPENING):
        return str(value)
    if isinstance(value, str) and value.startswith(CLEARING_PREFIX):
        if _BANK_ID.fullmatch(value.removeprefix(CLEARING_PREFIX)):
            return value
    elif isinstance(value, str) and _MEMBER_ID.fullmatch(value):
        return value
    raise InvalidId(f"invalid account: {value!r} ({_RULES['account']})", value=value,
                    what="account")  # fmt: skip


def validate_entry_id(value: object) -> str:
    """An entry id: 1-128 characters ``[A-Za-z0-9._:-]``."""
    return _validate(_ENTRY_ID, value, "entry id")


def validate_bank_id(value: object) -> str:
    """A bank path: ``thurrock`` or ``thurrock/tilbury-hub`` (lower case)."""
    return _validate(_BANK_ID, value, "bank id")


def validate_category(value: object) -> str:
    """A category code of help (``gardening``, ``befriending``): lower case."""
    return _validate(_CATEGORY, value, "category")


#: The longest text a profile field holds (an email address's limit).
PROFILE_TEXT_MAX: Final = 254


def validate_profile_text(value: object, field: str) -> str:
    """A profile field's text (a display name, an email address, a phone
    number, an area): at most :data:`PROFILE_TEXT_MAX` characters, none of
    them a control character (a NUL, a line break, an escape) or half of a
    surrogate pair, which no name or address holds and which break the
    files and screens it is shown on, nor a bidirectional embedding,
    override or isolate (U+202A to U+202E, U+2066 to U+2069), with which a
    name shows in another order than it is written (``"Ann\\u202enhoj"``
    shows as "Annjohn"); a name in Arabic or Hebrew script needs none. An
    ``email`` must also have the form of one address (``name@domain``)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text, not {type(value).__name__}", field=field)
    if len(value) > PROFILE_TEXT_MAX:
        raise InvalidInput(
            f"{field} is {len(value):,} characters; at most {PROFILE_TEXT_MAX}", field=field
        )
    for character in value:
        what = not_text(character)
        if what is None and character in _BIDI_FORMATTING:
            what = "the bidirectional formatting character"
        if what is not None:
            raise InvalidInput(f"{field} holds {what} U+{ord(character):04X}", field=field)
    if field == "email" and value and not _EMAIL.fullmatch(value):
        raise InvalidInput(
            f"email must be one address, name@domain, with no space: {value!r}", field=field
        )
    return value


#: One email address, as far as its form goes: text on each side of a single
#: ``@``, no white space (whether it reaches anyone is not for a ledger to say).
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


#: Unicode categories a profile's text may not hold, as its error names them.
_NOT_TEXT = {"Cc": "the control character", "Cs": "half of a surrogate pair,"}


def not_text(character: str) -> str | None:
    """What ``character`` is, as an error names it, when no text a file or a
    page is written from may hold it: a control character (a NUL, an
    escape, a line break: the caller allows white space it takes) or half
    of a surrogate pair (no UTF-8 file can hold one); else ``None``."""
    return _NOT_TEXT.get(unicodedata.category(character))


#: The explicit bidirectional embeddings, overrides and isolates (and their
#: ends), which reorder how the text after them shows.
_BIDI_FORMATTING = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def parent_bank(bank_id: str) -> str | None:
    """The bank a mini time bank sits in (``None`` for a root bank)."""
    parent, _, _ = bank_id.rpartition("/")
    return parent or None


def root_bank(bank_id: str) -> str:
    """The root of a bank's tree: ``thurrock`` for ``thurrock/tilbury-hub``."""
    return bank_id.split("/", 1)[0]


def clearing_account(other_bank: str) -> str:
    """The account a bank keeps for its inter-bank entries with ``other_bank``."""
    return f"{CLEARING_PREFIX}{other_bank}"
