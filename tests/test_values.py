"""Amounts, ids and dates: parsing is exact and never rounds."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

import pytest

from timebank._output import counted
from timebank.domain.errors import InvalidAmount, InvalidDate, InvalidId, InvalidInput
from timebank.domain.values import (
    _RULES,
    MINUTES_ABS_MAX,
    format_hours,
    parent_bank,
    parse_date,
    parse_minutes,
    root_bank,
    validate_account_id,
    validate_bank_id,
    validate_category,
    validate_entry_id,
    validate_flag,
    validate_member_id,
    validate_profile_text,
)


@pytest.mark.parametrize(
    ("hours", "minutes"),
    [("2", 120), ("1.5", 90), ("1:30", 90), ("0:01", 1), ("0.25", 15), (" 3 ", 180),
     (2, 120), (Decimal("0.75"), 45), ("24", 1440), ("100:00", 6000), ("1.50", 90),
     (".5", 30), ("2.", 120), ("+1", 60), ("007", 420),
     ("0000000000001.50", 90), ("16666666666.65", MINUTES_ABS_MAX - 1)],  # the longest, the largest
)  # fmt: skip
def test_hours_are_read_as_whole_minutes(hours: object, minutes: int) -> None:
    assert parse_minutes(hours) == minutes


@pytest.mark.parametrize(
    "bad",
    ["1.333", "0.01", "0", "0:00", "-1", "-0:30", "1:60", "1:5", "abc", "", "1e400", "NaN",
     "inf", 1.5, True, None, [], "12345678901234567", "0000000000001.500", "1,5",
     # what Decimal, int and \d take but an hours column does not mean: an
     # exponent, digit separators, other scripts' digits, a superscript
     "1e2", "1E1", "1_000", "1_0:00", "\u0663", "\u0661:\u0663\u0660", "1:\u0663\u0660", "\u00b2", "0x10", "1.5.0", "."],
)  # fmt: skip
def test_amounts_that_are_not_positive_whole_minutes_are_refused(bad: object) -> None:
    with pytest.raises(InvalidAmount) as raised:
        parse_minutes(bad)
    assert raised.value.value == bad  # for an app to show which value was wrong


@pytest.mark.parametrize(
    ("bad", "message"),
    [(1.5, "amount must be text, int or Decimal hours, not float: 1.5"),
     (True, "amount must be text, int or Decimal hours, not bool: True"),
     ("0", "amount must not be zero: '0'"),
     ("-1", "amount must be positive: '-1'"),
     ("1.333", "amount is not a whole number of minutes: '1.333'"),
     (Decimal("0.001"), "amount is not a whole number of minutes: Decimal('0.001')"),
     (Decimal("Infinity"), "amount is not finite: Decimal('Infinity')"),
     (16666666667, "amount is too large: 16666666667"),
     (None, "amount is not a number of hours: None (give hours as 1.5 or 1:30)")],
)  # fmt: skip
def test_a_refused_amount_is_told_why(bad: object, message: str) -> None:
    """What the CLI prints and an app may show: the reason and the value as given."""
    with pytest.raises(InvalidAmount) as raised:
        parse_minutes(bad)
    assert str(raised.value) == message
    assert raised.value.value == bad


@pytest.mark.parametrize("bad", ["1h30", "an hour", "", "1:30:0", "1:30:60", "1:30:00.0"])
def test_an_amount_not_in_a_form_of_hours_is_refused_naming_the_forms(bad: str) -> None:
    with pytest.raises(InvalidAmount, match=re.escape(f"{bad!r} (give hours as 1.5 or 1:30)")):
        parse_minutes(bad)


def test_a_spreadsheets_duration_is_hours_when_its_seconds_are_none() -> None:
    """A duration cell comes out of a spreadsheet as ``1:30:00``: whole
    minutes, taken; seconds are never rounded away."""
    assert parse_minutes("1:30:00") == 90
    assert parse_minutes(" 12:05:00 ") == 725
    assert parse_minutes("-2:00:00", allow_negative=True) == -120
    with pytest.raises(InvalidAmount, match=re.escape("not a whole number of minutes: '1:30:30'")):
        parse_minutes("1:30:30")
    with pytest.raises(InvalidAmount, match="must not be zero"):
        parse_minutes("0:00:00")


def test_negative_amounts_only_where_allowed() -> None:
    assert parse_minutes("-1:30", allow_negative=True) == -90
    assert parse_minutes("-2.5", allow_negative=True) == -150
    assert parse_minutes("-16666666666.65", allow_negative=True) == 1 - MINUTES_ABS_MAX
    with pytest.raises(InvalidAmount, match="must not be zero"):
        parse_minutes("0", allow_negative=True)
    with pytest.raises(InvalidAmount, match="must be positive") as raised:
        parse_minutes("-0:30", allow_zero=True)
    assert raised.value.value == "-0:30"


def test_zero_only_where_allowed() -> None:
    """A balance margin of 0 (``members_near_limit``) or an opening balance
    of 0 may be nothing; an exchange of nothing is refused."""
    for zero in ("0", "0:00", 0, Decimal("0.00")):
        assert parse_minutes(zero, allow_zero=True) == 0
        assert parse_minutes(zero, allow_zero=True, allow_negative=True) == 0
        with pytest.raises(InvalidAmount, match="must not be zero") as raised:
            parse_minutes(zero)
        assert raised.value.value == zero


def test_amounts_beyond_the_overflow_guard_are_refused() -> None:
    # MINUTES_ABS_MAX itself is no whole number of minutes in hours: 999,999,999,999 is the most
    for too_large in (MINUTES_ABS_MAX // 60 + 1, "16666666666.70", "-16666666666.70"):
        with pytest.raises(InvalidAmount, match="too large") as raised:
            parse_minutes(too_large, allow_negative=True)
        assert raised.value.value == too_large


@pytest.mark.parametrize(
    ("minutes", "text"), [(90, "1:30"), (0, "0:00"), (-15, "-0:15"), (6000, "100:00")]
)
def test_format_hours(minutes: int, text: str) -> None:
    assert format_hours(minutes) == text
    if minutes:
        assert parse_minutes(text, allow_negative=True) == minutes


@pytest.mark.parametrize(
    ("number", "words", "text"),
    [
        (1, ("problem",), "1 problem"),
        (0, ("row",), "0 rows"),
        (1200, ("row",), "1,200 rows"),
        (1, ("entry", "entries"), "1 entry"),
        (2, ("entry", "entries"), "2 entries"),
    ],
)
def test_counts_agree_with_their_nouns(number: int, words: tuple[str, ...], text: str) -> None:
    """What the CLI and the audit print: "1 problem", never "1 problem(s)"."""
    assert counted(number, *words) == text


def test_dates_are_iso_dates_only() -> None:
    assert parse_date("2026-02-03") == date(2026, 2, 3)
    assert parse_date("2024-02-29") == date(2024, 2, 29)  # leap years' last days of February
    assert parse_date("2000-02-29") == date(2000, 2, 29)
    assert parse_date(date(2026, 2, 3)) == date(2026, 2, 3)
    # and not the basic or week-date forms date.fromisoformat also reads
    for bad in ("03/02/2026", "2026-02-30", "", None, 20260203, datetime(2026, 2, 3),
                "20260203", "2026-W06-2", "2026W062", "2026-2-3", "\u0662026-02-03"):  # fmt: skip
        with pytest.raises(InvalidDate) as raised:
            parse_date(bad)
        assert raised.value.value == bad
    with pytest.raises(InvalidDate) as raised:
        parse_date(datetime(2026, 2, 3))
    assert str(raised.value) == (
        "expected a date, got a datetime: datetime.datetime(2026, 2, 3, 0, 0)"
    )
    with pytest.raises(InvalidDate) as raised:
        parse_date("03/02/2026")
    assert str(raised.value) == "not an ISO date (YYYY-MM-DD): '03/02/2026'"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2026-01-32", "January 2026 has days 01 to 31"),
        ("2026-02-29", "February 2026 has days 01 to 28"),
        ("2026-02-30", "February 2026 has days 01 to 28"),
        ("2024-02-30", "February 2024 has days 01 to 29"),
        ("2100-02-29", "February 2100 has days 01 to 28"),
        ("2026-04-31", "April 2026 has days 01 to 30"),
        ("2026-12-00", "December 2026 has days 01 to 31"),
        ("2026-13-01", "there is no month 13"),
        ("2026-12-32", "December 2026 has days 01 to 31"),
        ("2026-00-10", "there is no month 00"),
    ],
)
def test_a_date_in_the_form_that_names_no_day_says_why(text: str, why: str) -> None:
    """A typo of a day (30 February) is told apart from a date in another
    form, which names the form to use instead."""
    with pytest.raises(InvalidDate) as raised:
        parse_date(text)
    assert str(raised.value) == f"no such day: {text} ({why})"
    assert raised.value.value == text


def test_dates_are_from_1900_on() -> None:
    """A mistyped year (0216 for 2016) or an older system's "unknown"
    (0001-01-01) is refused by name, as text or as a date; 1900-01-01 and
    the calendar's last day are dates."""
    assert parse_date("1900-01-01") == date(1900, 1, 1)
    assert parse_date(date.max) == date.max
    for early in ("1899-12-31", "0216-03-01", "0001-01-01", "0000-01-01", date(1899, 12, 31),
                  date.min):  # fmt: skip
        with pytest.raises(InvalidDate, match="before 1900-01-01, the earliest date") as raised:
            parse_date(early)
        assert raised.value.value == early


@pytest.mark.parametrize("good", ["m-1", "A.b_c", "x" * 64, "42"])
def test_member_ids(good: str) -> None:
    assert validate_member_id(good) == good


@pytest.mark.parametrize(
    "bad", ["", "-m", "ann@example.org", "Ann Smith", "x" * 65, "@pot", None, 7, "ann\n"]
)
def test_member_ids_that_could_hold_personal_data_or_break_things_are_refused(bad: object) -> None:
    with pytest.raises(InvalidId) as raised:
        validate_member_id(bad)
    assert (raised.value.value, raised.value.what) == (bad, "member id")
    assert "would do" not in str(raised.value)  # an opaque id: never a guess at another


def test_a_bank_path_names_its_parent_and_its_root() -> None:
    assert [parent_bank(b) for b in ("t", "t/a", "t/a/b", "t/a/b/c")] == [None, "t", "t/a", "t/a/b"]
    assert {root_bank(b) for b in ("t", "t/a", "t/a/b", "t/a/b/c")} == {"t"}


def test_account_ids() -> None:
    """A bank's account: a member, its pot, its opening-balance account, or
    its clearing account with another bank of the tree."""
    for good in ("m-1", "@pot", "@opening", "@clearing:thurrock/tilbury-hub"):
        assert validate_account_id(good) == good
    for bad in ("@clearing:Thurrock", "@clearing:", "@bank", "Ann Smith", None, 7):
        with pytest.raises(InvalidId) as raised:
            validate_account_id(bad)
        assert (raised.value.value, raised.value.what) == (bad, "account")
        assert str(raised.value) == f"invalid account: {bad!r} ({_RULES['account']})"


def test_bank_entry_and_category_ids() -> None:
    assert validate_bank_id("thurrock/tilbury-hub") == "thurrock/tilbury-hub"
    assert validate_entry_id("import:2015:row-7") == "import:2015:row-7"
    assert validate_category("computer-help") == "computer-help"
    for bad_bank in ("Thurrock", "a//b", "/a", "a/", "a b", "a/b/c/d/e", "a_b"):
        with pytest.raises(InvalidId, match="lower-case letters, digits and '-'"):
            validate_bank_id(bad_bank)
    with pytest.raises(InvalidId, match="lower-case letters"):
        validate_category("Gardening")
    with pytest.raises(InvalidId, match=re.escape("'.', '_', ':' or '-'")):
        validate_entry_id("has space")


@pytest.mark.parametrize(
    ("validate", "given", "meant"),
    [
        (validate_category, "Gardening", "gardening"),
        (validate_category, "Home Repairs", "home-repairs"),
        (validate_category, "DIY", "diy"),
        (validate_bank_id, "Thurrock", "thurrock"),
        (validate_bank_id, "thurrock/Tilbury  Hub", "thurrock/tilbury-hub"),
        (validate_bank_id, "Thurrock / Tilbury Hub", "thurrock/tilbury-hub"),  # each level
        (validate_category, "café", None),  # lower case is not enough
        (validate_category, "Café", None),
        (validate_category, "a&b", None),
        (validate_bank_id, "a//b", None),
        (validate_category, "x" * 41, None),
        (validate_category, None, None),
        (validate_category, 7, None),
    ],
)
def test_a_code_given_as_words_names_the_code_that_would_do(
    validate: Callable[[object], str], given: object, meant: str | None
) -> None:
    """A category or bank typed as words (a spreadsheet's "Gardening") is
    refused with the code it was most likely meant as, where there is one;
    the code itself is never taken in its place."""
    with pytest.raises(InvalidId) as raised:
        validate(given)
    hint = f"; {meant!r} would do)"
    what = raised.value.what
    if meant is None:
        assert str(raised.value) == f"invalid {what}: {given!r} ({_RULES[what]})"
    else:
        assert str(raised.value).endswith(hint)
        assert validate(meant) == meant


@pytest.mark.parametrize(
    "good", ["Ada", "Zoë O'Neil", "陳大文", "Tilbury & Chadwell", "a" * 254, "+44 20 7946 0000", "",
             "فاطمة الزهراء", "דוד לוי", "Ynysybŵl"],
)  # fmt: skip
def test_profile_text(good: str) -> None:
    assert validate_profile_text(good, "display_name") == good


@pytest.mark.parametrize(
    "bad", ["a" * 255, "Bo\x00b", "line\nbreak", "tab\there", "\x1b[2J", "\ud800", "\x85", 7]
)
def test_profile_text_that_breaks_files_and_screens_is_refused(bad: object) -> None:
    with pytest.raises(InvalidInput, match="display_name") as raised:
        validate_profile_text(bad, "display_name")
    assert raised.value.field == "display_name"


@pytest.mark.parametrize(
    ("bad", "message"),
    [(7, "display_name must be text, not int"),
     (None, "display_name must be text, not NoneType"),
     ("a" * 255, "display_name is 255 characters; at most 254"),
     ("a" * 1255, "display_name is 1,255 characters; at most 254"),
     ("Bo\x00b", "display_name holds the control character U+0000")],
)  # fmt: skip
def test_refused_profile_text_is_told_why(bad: object, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_profile_text(bad, "display_name")
    assert str(raised.value) == message


@pytest.mark.parametrize(
    "control", [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
)
def test_profile_text_that_would_show_in_another_order_is_refused(control: str) -> None:
    """A bidirectional embedding, override or isolate reorders the text
    shown after it: "Ann" + U+202E + "nhoj" shows as "Annjohn"."""
    with pytest.raises(InvalidInput, match=re.escape(
        f"display_name holds the bidirectional formatting character U+{ord(control):04X}"
    )) as raised:  # fmt: skip
        validate_profile_text(f"Ann{control}nhoj", "display_name")
    assert raised.value.field == "display_name"


def test_flags_are_true_or_false() -> None:
    """A yes-or-no option given as text, a number or None is refused:
    Python would take "false" as true."""
    assert validate_flag("rollup", True) is True
    assert validate_flag("rollup", False) is False
    for bad in ("false", "no", "", 0, 1, None, "True"):
        with pytest.raises(InvalidInput, match="rollup must be True or False"):
            validate_flag("rollup", bad)


@pytest.mark.parametrize(
    ("email", "taken"),
    [("ann@example.org", True), ("a.b+c@sub.example.co.uk", True), ("名前@例え.jp", True),
     ("", True), ("ann.example.org", False), ("ann@", False), ("@example.org", False),
     ("ann @example.org", False), ("a@b@example.org", False), ("ann@example.org ", False),
     ("ann@example.org, bob@example.org", False)],
)  # fmt: skip
def test_an_email_has_the_form_of_one_address(email: str, taken: bool) -> None:
    """The form only: text on each side of one @, no space; the other
    fields take any text."""
    assert validate_profile_text(email, "phone") == email
    if taken:
        assert validate_profile_text(email, "email") == email
    else:
        with pytest.raises(InvalidInput, match=re.escape(
            f"email must be one address, name@domain, with no space: {email!r}"
        )) as raised:  # fmt: skip
            validate_profile_text(email, "email")
        assert raised.value.field == "email"
