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
    MINUTES_ABS_MAX,
    format_hours,
    parse_date,
    parse_minutes,
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
     (".5", 30), ("2.", 120), ("+1", 60), ("007", 420)],
)  # fmt: skip
def test_hours_are_read_as_whole_minutes(hours: object, minutes: int) -> None:
    assert parse_minutes(hours) == minutes


@pytest.mark.parametrize(
    "bad",
    ["1.333", "0.01", "0", "0:00", "-1", "-0:30", "1:60", "1:5", "abc", "", "1e400", "NaN",
     "inf", 1.5, True, None, [], "12345678901234567", "1,5",
     # what Decimal, int and \d take but an hours column does not mean: an
     # exponent, digit separators, other scripts' digits, a superscript
     "1e2", "1E1", "1_000", "1_0:00", "\u0663", "\u0661:\u0663\u0660", "1:\u0663\u0660", "\u00b2", "0x10", "1.5.0", "."],
)  # fmt: skip
def test_amounts_that_are_not_positive_whole_minutes_are_refused(bad: object) -> None:
    with pytest.raises(InvalidAmount):
        parse_minutes(bad)


@pytest.mark.parametrize("bad", ["1:30:00", "1h30", "an hour", ""])
def test_an_amount_not_in_a_form_of_hours_is_refused_naming_the_forms(bad: str) -> None:
    # a spreadsheet's duration cell comes out as 1:30:00: say what to give
    with pytest.raises(InvalidAmount, match=re.escape(f"{bad!r} (give hours as 1.5 or 1:30)")):
        parse_minutes(bad)


def test_negative_amounts_only_where_allowed() -> None:
    assert parse_minutes("-1:30", allow_negative=True) == -90
    assert parse_minutes("-2.5", allow_negative=True) == -150
    with pytest.raises(InvalidAmount):
        parse_minutes("0", allow_negative=True)


def test_amounts_beyond_the_overflow_guard_are_refused() -> None:
    with pytest.raises(InvalidAmount):
        parse_minutes(MINUTES_ABS_MAX // 60 + 1)


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
        with pytest.raises(InvalidDate):
            parse_date(bad)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2026-02-29", "February 2026 has days 01 to 28"),
        ("2026-02-30", "February 2026 has days 01 to 28"),
        ("2024-02-30", "February 2024 has days 01 to 29"),
        ("2100-02-29", "February 2100 has days 01 to 28"),
        ("2026-04-31", "April 2026 has days 01 to 30"),
        ("2026-12-00", "December 2026 has days 01 to 31"),
        ("2026-13-01", "there is no month 13"),
        ("2026-00-10", "there is no month 00"),
    ],
)
def test_a_date_in_the_form_that_names_no_day_says_why(text: str, why: str) -> None:
    """A typo of a day (30 February) is told apart from a date in another
    form, which names the form to use instead."""
    with pytest.raises(InvalidDate) as raised:
        parse_date(text)
    assert str(raised.value) == f"no such day: {text} ({why})"


def test_dates_are_from_1900_on() -> None:
    """A mistyped year (0216 for 2016) or an older system's "unknown"
    (0001-01-01) is refused by name, as text or as a date; 1900-01-01 and
    the calendar's last day are dates."""
    assert parse_date("1900-01-01") == date(1900, 1, 1)
    assert parse_date(date.max) == date.max
    for early in ("1899-12-31", "0216-03-01", "0001-01-01", "0000-01-01", date(1899, 12, 31),
                  date.min):  # fmt: skip
        with pytest.raises(InvalidDate, match="before 1900-01-01, the earliest date"):
            parse_date(early)


@pytest.mark.parametrize("good", ["m-1", "A.b_c", "x" * 64, "42"])
def test_member_ids(good: str) -> None:
    assert validate_member_id(good) == good


@pytest.mark.parametrize(
    "bad", ["", "-m", "ann@example.org", "Ann Smith", "x" * 65, "@pot", None, 7, "ann\n"]
)
def test_member_ids_that_could_hold_personal_data_or_break_things_are_refused(bad: object) -> None:
    with pytest.raises(InvalidId):
        validate_member_id(bad)


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
        (validate_category, "café", None),  # lower case is not enough
        (validate_category, "a&b", None),
        (validate_bank_id, "a//b", None),
        (validate_category, "x" * 41, None),
    ],
)
def test_a_code_given_as_words_names_the_code_that_would_do(
    validate: Callable[[object], str], given: str, meant: str | None
) -> None:
    """A category or bank typed as words (a spreadsheet's "Gardening") is
    refused with the code it was most likely meant as, where there is one;
    the code itself is never taken in its place."""
    with pytest.raises(InvalidId) as raised:
        validate(given)
    hint = f"; {meant!r} would do)"
    if meant is None:
        assert "would do" not in str(raised.value)
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
    with pytest.raises(InvalidInput, match="display_name"):
        validate_profile_text(bad, "display_name")


@pytest.mark.parametrize(
    "control", [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
)
def test_profile_text_that_would_show_in_another_order_is_refused(control: str) -> None:
    """A bidirectional embedding, override or isolate reorders the text
    shown after it: "Ann" + U+202E + "nhoj" shows as "Annjohn"."""
    with pytest.raises(InvalidInput, match=re.escape(
        f"display_name holds the bidirectional formatting character U+{ord(control):04X}"
    )):  # fmt: skip
        validate_profile_text(f"Ann{control}nhoj", "display_name")


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
        )):  # fmt: skip
            validate_profile_text(email, "email")
