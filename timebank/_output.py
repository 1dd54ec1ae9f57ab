"""Rendering rows as an aligned table, CSV or JSON (for the CLI)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

__all__ = ["FORMATS", "counted", "render"]

FORMATS = ("table", "csv", "json")


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``number`` and ``noun`` agreeing, for a line a person reads:
    ``counted(1, "problem")`` is ``"1 problem"``, ``counted(1200, "row")``
    ``"1,200 rows"``, ``counted(2, "entry", "entries")`` ``"2 entries"``."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


def member_of_banks(banks: Sequence[str], otherwise: str) -> str:
    """What a refusal of a member named in a bank they are not in adds, in
    one wording wherever it is said (the imports, check-balances, the CLI):
    the banks they are in, `` (a member of 'a', 'b')``, or `` (OTHERWISE)``."""
    return f" (a member of {', '.join(map(repr, banks))})" if banks else f" ({otherwise})"


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
