"""Rendering rows as an aligned table, CSV or JSON (for the CLI), and the
words that say where a refused member is, and that warn of a new member
told from another only by case, shared by the CLI and imports."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["FORMATS", "counted", "render"]

FORMATS = ("table", "csv", "json")


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``number`` and ``noun`` agreeing, for a line a person reads:
    ``counted(1, "problem")`` is ``"1 problem"``, ``counted(1200, "row")``
    ``"1,200 rows"``, ``counted(2, "entry", "entries")`` ``"2 entries"``."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


#: What a warning of a new member whose id another member's matches but for
#: case says, before the members it names (a members file, ``timebank join``).
TOLD_ONLY_BY_CASE = "a new member, told from another only by case"


class Whereabouts:
    """What a refusal of a member named in a bank they are not in adds, in
    one wording wherever it is said (the imports, check-balances, the CLI):
    the banks they are in, `` (a member of 'a', 'b')``, or `` (OTHERWISE)``
    for a member of no bank. Member ids are case-sensitive, and an older
    system's may not have been, so a member of no bank whose id another
    member's matches but for case is told so:
    `` (OTHERWISE; member ids are case-sensitive: 'Ann' is a member of 'a')``.

    ``memberships()`` gives (member, bank) of every bank's members, banks in
    the order they were opened; it is called once, the first time a member
    is asked about, so a refusal of every row of a file costs one pass."""

    def __init__(self, memberships: Callable[[], Iterable[tuple[str, str]]], otherwise: str):
        self._memberships = memberships
        self._otherwise = otherwise
        self._banks: dict[str, list[str]] | None = None
        self._alike: dict[str, list[str]] = {}  # by casefolded id: the ids

    def of(self, member: str) -> str:
        """What the refusal of ``member`` adds."""
        banks = self._every()[0].get(member)
        if banks:
            return f" (a member of {', '.join(map(repr, banks))})"
        alike = self.alike(member)
        return f" ({self._otherwise}; {alike})" if alike else f" ({self._otherwise})"

    def alike(self, member: str) -> str:
        """For a member of no bank, the members whose id is theirs but for
        case, ``member ids are case-sensitive: 'Ann' is a member of 'a'``;
        otherwise nothing."""
        found = self.alike_members(member)
        return f"member ids are case-sensitive: {'; '.join(found)}" if found else ""

    def alike_members(self, member: str) -> list[str]:
        """For a member of no bank, each member whose id is theirs but for
        case, as ``'Ann' is a member of 'a'``; otherwise none."""
        banks, alike = self._every()
        if member in banks:
            return []
        return [f"{who!r} is a member of {', '.join(map(repr, banks[who]))}"
                for who in alike.get(member.casefold(), [])]  # fmt: skip

    def knows(self, member: str) -> bool:
        """Whether ``member`` is a member of a bank."""
        return member in self._every()[0]

    def _every(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """Each member's banks, and the ids by their casefolded form."""
        if self._banks is None:
            self._banks = {}
            for who, bank in self._memberships():
                if who not in self._banks:
                    self._banks[who] = []
                    self._alike.setdefault(who.casefold(), []).append(who)
                self._banks[who].append(bank)
        return self._banks, self._alike


#: The byte-order mark ``--bom`` begins a CSV with (U+FEFF, EF BB BF in UTF-8).
BOM = "\ufeff"


def render(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str, *, bom: bool = False
) -> str:
    """Render ``rows`` (dicts) in ``fmt``. JSON keeps every key of each row;
    table and CSV show ``columns`` in order; ``bom`` begins a CSV with a
    byte-order mark (docs/reports.md)."""
    if bom and fmt != "csv":
        raise ValueError(f"a byte-order mark is for CSV, not {fmt}")
    if fmt == "json":
        return json.dumps(list(rows), indent=2, default=str, ensure_ascii=False)
    if fmt == "csv":
        out = io.StringIO()
        out.write(BOM if bom else "")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(row.get(c)) for c in columns] for row in rows)
        return out.getvalue().rstrip("\n")
    if fmt == "table":
        return _table(rows, columns)
    raise ValueError(f"unknown format {fmt!r}")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [all(_is_number(r[i]) for r in cells) and cells != [] for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)])


def _is_number(text: str) -> bool:
    return text.lstrip("-").replace(":", "").replace(".", "").isdigit()
