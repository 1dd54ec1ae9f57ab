"""The words of the HTML report, in English, and the check of a translation
(docs/reports.md, "In Welsh, or another language").

Every word the page shows is here, so a translation of these values makes
the whole page in another language; the data (names, categories, months as
``2026-03``, numbers) stay as the store holds them.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from timebank.domain.errors import InvalidInput
from timebank.domain.values import not_text

__all__ = ["REPORT_WORDS", "check_words"]

_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip

#: The HTML report's words in English: key -> text. A translation keeps the
#: keys and, in each text, the same ``{placeholders}``.
REPORT_WORDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "lang": "en-GB",
        "date": "{day} {month} {year}",
        **{f"month_{n}": name for n, name in enumerate(_MONTHS, start=1)},
        "title": "{bank}: time bank report {start} to {end}",
        "period": "Time bank report: {start} to {end}",
        "period_rollup": "Time bank report, with its mini time banks: {start} to {end}",
        "headline": "Headline figures",
        "figure_hours_exchanged": "hours exchanged",
        "figure_exchanges": "exchanges",
        "figure_transactions": "transactions",
        "figure_individual_members": "individual members",
        "figure_organisations": "organisations",
        "figure_new_members": "new members",
        "figure_active_members": "active members",
        "figure_inactive_members": "inactive for 90 days",
        "figure_donated_to_pot_hours": "hours donated to the pot",
        "figure_pot_funded_hours": "hours paid for by the pot",
        "figure_pot_balance_hours": "hours left in the pot",
        "figure_connections": "connections",
        "figure_new_connections": "new connections",
        "figure_members_with_one_connection": "members with one connection",
        "chart_by_month": "Hours and exchanges per month",
        "chart_by_month_note": "Each month's hours and exchanges are in the table By month below.",
        "chart_by_category": "Hours by category of help",
        "chart_by_category_note": (
            "Every category's hours and exchanges are in the table By category below; the chart"
            " shows the twelve with the most hours."
        ),
        "chart_members": "Members over time",
        "chart_members_note": (
            "The members at each month's end, and the new members, are in the table By month below."
        ),
        "axis_hours_exchanged": "hours exchanged",
        "axis_exchanges": "exchanges",
        "axis_members": "members",
        "legend_hours": "hours",
        "legend_exchanges": "exchanges",
        "legend_members": "members",
        "legend_new_members": "new members",
        "chart_no_exchanges": "no exchanges in this period",
        "by_month": "By month",
        "by_category": "By category",
        "by_kind": "By kind of member",
        "by_area": "By area",
        "column_month": "Month",
        "column_category": "Category",
        "column_kind": "Kind",
        "column_area": "Area",
        "column_hours": "Hours",
        "column_exchanges": "Exchanges",
        "column_members": "Members",
        "column_new_members": "New members",
        "column_members_at_month_end": "Members at month end",
        "column_active_members": "Active members",
        "column_inactive_members": "Inactive members",
        "column_hours_given": "Hours given",
        "column_hours_received": "Hours received",
        "kind_individual": "Individuals",
        "kind_organisation": "Organisations",
        "no_category": "(none)",
        "no_area": "(no area)",
        "by_area_note": (
            "Each member counts in the area their profile names today. An exchange between two"
            " areas counts once in each, so the areas' exchanges add up to more than the exchanges"
            " above."
        ),
        "footnote": (
            "Banks: {banks}. One hour of help is one time credit, whatever the help. Hours"
            " exchanged count service exchanges (ordinary, pot-funded and group) by the date"
            " the help happened; reversed entries, reversals, donations, gifts and opening"
            " balances are not exchanges. Members are counted once however many of these banks"
            " they belong to; inactive members had no exchange in the 90 days to {end};"
            " members with one connection had, by then, exchanged with exactly one other"
            " member. Every figure is defined in timebank's documentation (docs/reports.md)"
            " and reconciles with the ledger."
        ),
        "made_by": "Made by timebank {version} on {made_on}.",
    }
)

#: A language tag as a page's ``lang`` takes it (BCP 47's common forms:
#: ``cy``, ``cy-GB``, ``zh-Hant-HK``).
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


def _placeholders(text: str) -> set[str]:
    """The names of ``text``'s ``{placeholders}``; ValueError, saying what is
    wrong, for a brace with no partner, a placeholder with no name, or one
    with a conversion or a format (``{start!r}``, ``{start:>10}``)."""
    found = set()
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        raise ValueError("a brace with no partner (write {{ and }} for a brace)") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            written = "{" + name + (f"!{conversion}" if conversion else "")
            written += (f":{spec}" if spec else "") + "}"
            raise ValueError(f"{written} is no placeholder of the report's")
        found.add(name)
    return found


def check_words(words: object) -> dict[str, str]:
    """A copy of ``words`` if it is a whole translation of :data:`REPORT_WORDS`: the
    same keys, each a text that is not blank and holds no control character
    (a NUL, an escape: no page may hold them; tabs and line breaks are
    white space) nor half of a surrogate pair (no UTF-8 file can hold
    one), with the same placeholders, and ``lang`` a language tag;
    else :class:`InvalidInput` (``field`` ``words``) naming every problem."""
    if not isinstance(words, Mapping):
        raise InvalidInput(
            f"words must be a mapping of the report's words, as REPORT_WORDS is, not"
            f" {type(words).__name__}",
            field="words",
        )
    problems = []
    missing = sorted(REPORT_WORDS.keys() - words.keys(), key=list(REPORT_WORDS).index)
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    unknown = sorted(map(str, words.keys() - REPORT_WORDS.keys()))
    if unknown:
        problems.append(f"not a word of the report: {', '.join(unknown)}")
    for key, english in REPORT_WORDS.items():
        if key not in words:
            continue  # said above
        text = words[key]
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{key} must be text that is not blank, not {text!r}")
            continue
        bad = next((c for c in text if c not in "\t\n\r" and not_text(c)), None)
        if bad is not None:
            problems.append(f"{key} holds {not_text(bad)} U+{ord(bad):04X}")
            continue
        try:
            given = _placeholders(text)
        except ValueError as e:
            problems.append(f"{key}: {e.args[0]}")
            continue
        wanted = _placeholders(english)
        if given != wanted:
            problems.append(
                f"{key} must hold {_listed(wanted)}" + (f", not {_listed(given)}" if given else "")
            )
    lang = words.get("lang")
    if isinstance(lang, str) and lang.strip() and not _LANGUAGE_TAG.fullmatch(lang):
        problems.append(f"lang must be a language tag such as cy or cy-GB, not {lang!r}")
    if problems:
        raise InvalidInput(f"words: {'; '.join(problems)}", field="words")
    return {key: str(words[key]) for key in REPORT_WORDS}


def _listed(names: set[str]) -> str:
    """``{a}``, ``{b} and {c}``: the placeholders as a text names them."""
    written = [f"{{{name}}}" for name in sorted(names)]
    if not written:
        return "no placeholder"
    return " and ".join([", ".join(written[:-1]), written[-1]] if len(written) > 1 else written)
