"""CLI commands for reports, statements, coordinator lists, exports and the
read model (docs/reports.md). They register on :data:`timebank.cli.cli`."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TextIO, TypeVar

import click

from timebank._output import counted, render
from timebank._reporting import STATEMENT_LINES_MAX
from timebank.cli import (
    _bom_option,
    _check_bom,
    _command,
    _errors_as_one_line,
    _format_option,
    _progress_bar,
    _store,
    cli,
)
from timebank.domain.errors import InvalidInput, MemberNotFound
from timebank.domain.values import format_hours
from timebank.readmodel import BATCH_SIZE, ReadModel
from timebank.readmodel.report import INACTIVE_DAYS, NO_AREA, NO_CATEGORY, Report
from timebank.readmodel.words import REPORT_WORDS

if TYPE_CHECKING:
    from timebank.api import Timebank
    from timebank.views import BankEntry, StatementLine

__all__: list[str] = []

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_HEADLINE = [
    "hours_exchanged", "exchanges", "transactions", "individual_members", "organisations",
    "new_members", "active_members", "inactive_members", "donated_to_pot_hours",
    "pot_funded_hours", "pot_balance_hours", "connections", "new_connections",
    "members_with_one_connection",
]  # fmt: skip
_AREA_COLUMNS = [
    "members", "new_members", "active_members", "hours_given", "hours_received", "exchanges",
]  # fmt: skip
_KIND_COLUMNS = ["members", "new_members", "active_members", "inactive_members"]
#: Lines of a statement read at a time.
_STATEMENT_PAGE = STATEMENT_LINES_MAX
_STATEMENT_COLUMNS = [
    "bank", "occurred_on", "entry_id", "kind", "minutes", "balance_minutes", "counterparties",
    "category", "reversed_by",
]  # fmt: skip
#: A bank's entries, in CSV (and JSON, which has every field), and in a table.
_ENTRY_COLUMNS = [
    "entry_id", "kind", "occurred_on", "hours", "minutes", "bank", "receiver_bank", "provider",
    "receiver", "category", "reverses", "reversed_by", "actor", "on_behalf_of", "recorded_at",
    "flags",
]  # fmt: skip
_ENTRY_TABLE = [
    "occurred_on", "entry_id", "kind", "hours", "provider", "receiver", "bank", "receiver_bank",
    "category", "reversed_by", "flags",
]  # fmt: skip


@contextlib.contextmanager
def _reading_store() -> Iterator[Timebank]:
    """The store, its read model caught up first (with a progress bar when
    that is long, see :func:`_catch_up`): for the commands that read it."""
    with _store() as tb:
        _catch_up(tb.read_model)
        yield tb


def _catch_up(model: ReadModel, *, rebuild: bool = False) -> int:
    """Catch the read model up (or rebuild it); events applied. On a
    terminal, a progress bar with events per second when at least a batch
    of events is to be applied; otherwise nothing is shown."""
    total = model.log_end() if rebuild else model.behind()
    if not sys.stderr.isatty() or total < BATCH_SIZE:
        return model.rebuild() if rebuild else model.catch_up()
    with _progress_bar(total, "catching up the read model", "events") as advance:
        return model.rebuild(progress=advance) if rebuild else model.catch_up(progress=advance)


def _write(text: str, output: Path | None, *, private: bool = False) -> None:
    """To the file ``output`` (replaced whole; with ``private``, a new one
    owner-only), or to standard output."""
    if output is None:
        click.echo(text)
        return
    with _replacing(output, private=private) as (out,):
        out.write(text if text.endswith("\n") else text + "\n")
    click.echo(f"wrote {output}", err=True)


@contextlib.contextmanager
def _replacing(*paths: Path, private: bool = False) -> Iterator[tuple[TextIO, ...]]:
    """Files written beside ``paths`` under temporary names, each put in
    place of its path (a rename, whole) only when the block ends without an
    error: a command that fails leaves the files as they were, never half
    an export that an import would then read as the whole ledger. A file
    replaced keeps its permissions, and with ``private`` a new one is its
    owner's alone (it holds personal data: docs/storage.md, "Who can read
    the files"); a path that is a symbolic link has the file it points at
    replaced, as writing through the link would."""
    real = [p.resolve() for p in paths]
    temporary = [p.with_name(f".{p.name}.{secrets.token_hex(4)}.tmp") for p in real]
    mode = 0o600 if private else 0o666  # less the umask, as any new file
    with contextlib.ExitStack() as stack:
        files = []
        for name, path in zip(temporary, paths, strict=True):
            stack.callback(name.unlink, missing_ok=True)  # gone by then once renamed
            with _naming(path):
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
                files.append(open(fd, "w", encoding="utf-8", newline=""))  # noqa: SIM115
                stack.callback(_close_discarded, files[-1])
        # A write that fails (a full disk) names no file: name the one being
        # written, or the directory that they go into (an export's).
        with _naming(paths[0] if len(paths) == 1 else paths[0].parent, unnamed_only=True):
            yield tuple(files)
        for out, name, path, target in zip(files, temporary, paths, real, strict=True):
            with _naming(path):
                out.flush()
                os.fsync(out.fileno())
                out.close()
                if target.exists():  # keep its permissions (members.csv holds names)
                    name.chmod(stat.S_IMODE(target.stat().st_mode))
                name.replace(target)


def _close_discarded(file: TextIO) -> None:
    """Close a file that is being thrown away (closed already once it was
    written whole): the error that stopped the command is the one to tell,
    not its buffer's failing again to reach a full disk, which named no
    file in place of the one that did."""
    with contextlib.suppress(OSError):
        file.close()


@contextlib.contextmanager
def _naming(path: Path, *, unnamed_only: bool = False) -> Iterator[None]:
    """An error about a temporary file, told about the file it stands for
    (with ``unnamed_only``, only an error that names no file)."""
    try:
        yield
    except OSError as e:
        if e.errno is None or (unnamed_only and e.filename is not None):
            raise
        raise OSError(e.errno, e.strerror, str(path)) from e


_from_option = click.option(
    "--from", "start", metavar="DATE", help="First day (default: the bank's opening)."
)
_to_option = click.option(
    "--to", "end", metavar="DATE", help="Last day, inclusive (default: today)."
)
_as_of_option = click.option(
    "--as-of", metavar="DATE", help="The day to look back from (default: today)."
)
_rollup_option = click.option("--rollup", is_flag=True, help="Include the bank's mini time banks.")
_output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file instead of standard output.",
)


@_command("report")
@click.option("--bank", required=True, help="The bank reported on.")
@_from_option
@_to_option
@_rollup_option
@click.option(
    "--by-area",
    is_flag=True,
    help="Also the figures by the area (ward or hub) in members' profiles.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv", "html"]),
    default="table",
    show_default=True,
)
@click.option(
    "--words",
    "words_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --format html: the page's words from this JSON file, a translation of"
    " what report-words writes (docs/reports.md).",
)
@_bom_option
@_output_option
def report(
    bank: str,
    start: str | None,
    end: str | None,
    rollup: bool,
    by_area: bool,
    fmt: str,
    words_file: Path | None,
    bom: bool,
    output: Path | None,
) -> None:
    """The period report of BANK: hours, exchanges, members, pot and
    connections, by month and by category, and by area on request
    (definitions: docs/reports.md). HTML is one printable file with charts,
    in English or in the language of --words."""
    if words_file is not None and fmt != "html":
        raise click.UsageError("--words is for --format html, the page it words")
    _check_bom(bom, fmt)
    words = None if words_file is None else _words_of(words_file)
    with _reading_store() as tb:
        if fmt == "html":
            text = tb.report_html(bank, start=start, end=end, rollup=rollup, by_area=by_area,
                                  words=words)  # fmt: skip
            _write(text, output)
            return
        result = tb.report(bank, start=start, end=end, rollup=rollup, by_area=by_area)
    _write(_report_text(result, fmt, bom), output)


def _words_of(path: Path) -> Any:
    """The JSON value of a words file (``tb.report_html`` checks it)."""
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as e:
        why = f"is not UTF-8 text ({e.reason})"
    except json.JSONDecodeError as e:
        why = f"is not JSON: {e}"
    except OSError as e:
        why = f"cannot be read: {e.strerror}"
    raise InvalidInput(f"the words file {path} {why}", field="words")


@_command("report-words")
@_output_option
def report_words(output: Path | None) -> None:
    """The HTML report's words in English, as a JSON object: translate its
    values (keeping its keys and {placeholders}) and give the file to
    report --format html --words (docs/reports.md)."""
    _write(json.dumps(dict(REPORT_WORDS), indent=2, ensure_ascii=False), output)


def _report_text(result: Report, fmt: str, bom: bool) -> str:
    data = result.to_dict()
    if fmt == "json":
        return render([data], list(data), "json").removeprefix("[\n").removesuffix("\n]")
    if fmt == "csv":
        # One row per figure, then one per month and per category: a layout a
        # spreadsheet opens as it is.
        rows: list[dict[str, Any]] = [
            {"section": "figures", "name": name, "value": data[name]} for name in _HEADLINE
        ]
        for month in data["by_month"]:
            rows += [
                {"section": f"month {month['month']}", "name": k, "value": month[k]}
                for k in ("hours", "exchanges", "new_members", "members")
            ]
        for category in data["by_category"]:
            rows += [
                {
                    "section": f"category {category['category'] or ''}",
                    "name": k,
                    "value": category[k],
                }
                for k in ("hours", "exchanges")
            ]
        for kind in data["by_kind"]:
            rows += [
                {"section": f"kind {kind['kind']}", "name": k, "value": kind[k]}
                for k in _KIND_COLUMNS
            ]
        for area in data.get("by_area", []):
            rows += [
                {"section": f"area {area['area'] or ''}", "name": k, "value": area[k]}
                for k in _AREA_COLUMNS
            ]
        return render(rows, ["section", "name", "value"], "csv", bom=bom)
    banks = ", ".join(result.banks)
    head = f"{result.bank}: {result.start} to {result.end} (banks: {banks})\n\n"
    figures = render(
        [{"figure": name, "value": data[name]} for name in _HEADLINE], ["figure", "value"], "table"
    )
    months = render(
        [{**m, "hours": format_hours(m["exchanged_minutes"])} for m in data["by_month"]],
        ["month", "hours", "exchanges", "new_members", "members"],
        "table",
    )
    categories = render(
        [
            {
                **c,
                "category": c["category"] or NO_CATEGORY,
                "hours": format_hours(c["exchanged_minutes"]),
            }
            for c in data["by_category"]
        ],
        ["category", "hours", "exchanges"],
        "table",
    )
    kinds = render(data["by_kind"], ["kind", *_KIND_COLUMNS], "table")
    text = (
        f"{head}{figures}\n\nBy month\n\n{months}\n\nBy category\n\n{categories}"
        f"\n\nBy kind of member\n\n{kinds}"
    )
    if "by_area" in data:
        areas = render(
            [
                {**a, "area": a["area"] or NO_AREA, "hours_given": format_hours(a["given_minutes"]),
                 "hours_received": format_hours(a["received_minutes"])}
                for a in data["by_area"]
            ],
            ["area", *_AREA_COLUMNS],
            "table",
        )  # fmt: skip
        text += f"\n\nBy area\n\n{areas}"
    return text


@_command("subject-access")
@click.argument("person")
@_output_option
def subject_access(person: str, output: Path | None) -> None:
    """Everything this store holds about PERSON (a member, coordinator or
    guardian), as JSON, for a subject access request: profile, memberships,
    statements, entries they recorded, pending entries, roles, guardianships
    (docs/membership.md)."""
    with _reading_store() as tb:
        found = tb.subject_access(person)
    _write(json.dumps(found.to_dict(), indent=2, ensure_ascii=False), output, private=True)


@_command("statement")
@click.argument("member")
@click.option("--bank", help="Only this bank (needed for @pot and @opening).")
@_format_option
def statement(member: str, bank: str | None, fmt: str, bom: bool) -> None:
    """Every entry on MEMBER's account, with the running balance, in each bank
    they belong to (or in --bank)."""
    with _reading_store() as tb:
        banks = [bank] if bank is not None else [m.bank for m in tb.memberships(member)]
        if not banks:  # not an empty statement: a mistyped id must say so
            raise MemberNotFound(f"no member {member!r} in any bank", member=member)
        rows = [{"bank": b, **line.to_dict()} for b in banks for line in _lines(tb, b, member)]
    click.echo(render(rows, _STATEMENT_COLUMNS, fmt, bom=bom))


def _lines(tb: Timebank, bank: str, member: str) -> Iterator[StatementLine]:
    """Every line of ``member``'s statement in ``bank``."""
    return _every_page(lambda done, _: tb.statement(bank, member, limit=_STATEMENT_PAGE,
                                                    offset=done))  # fmt: skip


def _every_page(read: Callable[[int, T | None], list[T]]) -> Iterator[T]:
    """Every row of a list the API gives a page at a time: ``read(done,
    last)`` gives the page after the ``done`` rows read so far, the last of
    them ``last`` (``None`` before the first page), of at most
    ``_STATEMENT_PAGE`` (``STATEMENT_LINES_MAX``) rows; a shorter page is
    the last. A list in recorded order pages by ``done`` (an offset: new
    rows only come at its end); one in date order, after ``last``."""
    done, last = 0, None
    while True:
        page = read(done, last)
        yield from page
        if len(page) < _STATEMENT_PAGE:
            return
        done, last = done + len(page), page[-1]


def _named(tb: Timebank, rows: list[dict[str, Any]], fmt: str) -> list[dict[str, Any]]:
    """A coordinator's list with each member's display name beside their id
    (from the profile store; empty when they have none or were erased): a
    coordinator calls people, not ids. In CSV, which a coordinator opens in
    a spreadsheet, a name that a spreadsheet would run as a formula is
    written with a leading apostrophe (the list is never read back)."""
    names: dict[str, str] = {}
    for row in rows:
        member = row["member"]
        if member not in names:
            profile = tb.profile(member)
            name = (profile.display_name or "") if profile else ""
            if fmt == "csv" and name.startswith(_FORMULA_STARTS):
                name = f"'{name}"
            names[member] = name
    return [{**row, "name": names[row["member"]]} for row in rows]


#: What a spreadsheet reads a cell starting with as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@_command("inactive")
@click.option("--bank", required=True)
@_as_of_option
@click.option("--days", type=int, default=INACTIVE_DAYS, show_default=True)
@_rollup_option
@_format_option
def inactive(bank: str, as_of: str | None, days: int, rollup: bool, fmt: str, bom: bool) -> None:
    """Members with no service exchange in the last DAYS days, for
    coordinators to get back in touch with."""
    with _reading_store() as tb:
        rows = _named(
            tb,
            [m.to_dict() for m in tb.inactive_members(bank, as_of=as_of, days=days, rollup=rollup)],
            fmt,
        )
    click.echo(render(rows, ["bank", "member", "name", "kind", "last_exchange_on"], fmt, bom=bom))


@_command("activity")
@click.option("--bank", required=True)
@_from_option
@_to_option
@_rollup_option
@_format_option
def activity(
    bank: str, start: str | None, end: str | None, rollup: bool, fmt: str, bom: bool
) -> None:
    """Every member of the period, with what they did in it: exchanges, hours
    given and received, how many members they exchanged with, their first
    and last exchange (definitions: docs/reports.md)."""
    with _reading_store() as tb:
        rows = _named(
            tb,
            [a.to_dict() for a in tb.member_activity(bank, start=start, end=end, rollup=rollup)],
            fmt,
        )
    columns = ["bank", "member", "name", "kind", "exchanges", "hours_given", "hours_received",
               "partners", "first_exchange_on", "last_exchange_on"]  # fmt: skip
    click.echo(render(rows, columns, fmt, bom=bom))


@_command("entries")
@click.option("--bank", required=True)
@_from_option
@_to_option
@_rollup_option
@click.option("--flagged", is_flag=True, help="Only entries flagged past a balance limit.")
@_format_option
def entries(
    bank: str,
    start: str | None,
    end: str | None,
    rollup: bool,
    flagged: bool,
    fmt: str,
    bom: bool,
) -> None:
    """The bank's entries whose help happened in the period, in date order:
    every kind, reversals too; with --flagged, those that went past a
    balance limit (flag mode, an import of historic data), for a
    coordinator to review."""
    with _reading_store() as tb:
        rows = [e.to_dict() for e in _all_entries(tb, bank, start, end, rollup, flagged)]
    click.echo(render(rows, _ENTRY_COLUMNS if fmt == "csv" else _ENTRY_TABLE, fmt, bom=bom))


def _all_entries(
    tb: Timebank, bank: str, start: str | None, end: str | None, rollup: bool, flagged: bool
) -> Iterator[BankEntry]:
    """Every row of the bank's list of entries, a page at a time after the
    last row read: an entry recorded meanwhile with an earlier date does
    not move a row onto the next page a second time."""
    return _every_page(
        lambda _, last: tb.entries(bank, start=start, end=end, rollup=rollup, flagged=flagged,
                                   limit=_STATEMENT_PAGE,
                                   after=None if last is None else last.entry_id)
    )  # fmt: skip


@_command("one-connection")
@click.option("--bank", required=True)
@_as_of_option
@_rollup_option
@_format_option
def one_connection(bank: str, as_of: str | None, rollup: bool, fmt: str, bom: bool) -> None:
    """Members who have exchanged with exactly one other member, and with
    whom: the people the report's members_with_one_connection counts, for
    coordinators to introduce to others."""
    with _reading_store() as tb:
        rows = _named(
            tb,
            [m.to_dict() for m in tb.members_with_one_connection(bank, as_of=as_of, rollup=rollup)],
            fmt,
        )
    columns = ["bank", "member", "name", "kind", "connected_with", "connected_on"]
    click.echo(render(rows, columns, fmt, bom=bom))


@_command("near-limit")
@click.option("--bank", required=True)
@click.option(
    "--within",
    default="2:00",
    show_default=True,
    help="Hours from a limit (0: only those at or beyond one).",
)
@_format_option
def near_limit(bank: str, within: str, fmt: str, bom: bool) -> None:
    """Members whose balance is within WITHIN hours of a limit of the bank's
    policy (or beyond it)."""
    with _store() as tb:
        rows = _named(tb, [n.to_dict() for n in tb.members_near_limit(bank, within=within)], fmt)
    columns = ["bank", "member", "name", "kind", "balance_minutes", "side", "limit_minutes",
               "headroom_minutes"]  # fmt: skip
    click.echo(render(rows, columns, fmt, bom=bom))


@_command("export")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "ledger"]), default="csv", show_default=True
)
@click.option(
    "--to",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write into (created if missing).",
)
def export(fmt: str, directory: Path) -> None:
    """Write the whole ledger: csv, members.csv and entries.csv in the layout
    `timebank import` reads (docs/import.md); ledger, timebank.journal, a
    double-entry journal for hledger and Ledger (docs/audit.md)."""
    directory.mkdir(parents=True, exist_ok=True)
    if fmt == "ledger":
        journal = directory / "timebank.journal"
        with _reading_store() as tb, _replacing(journal) as (out,):
            count = tb.export_ledger(out)
        click.echo(f"wrote {journal} ({count} transactions)")
        return
    members, entries = directory / "members.csv", directory / "entries.csv"
    with _reading_store() as tb, _replacing(members, entries, private=True) as (m, e):
        counts = tb.export_csv(m, e)
    click.echo(f"wrote {members} ({counts[0]} rows) and {entries} ({counts[1]} rows)")


@_command("audit")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)  # fmt: skip
@click.option(
    "--read-model",
    "read_model",
    type=click.Choice(["figures", "full", "skip"]),
    default="figures",
    show_default=True,
    help="Compare the read model's balance and figure tables with the audit's replay"
    " (figures), every table with a fresh projection of the log (full, about ten times"
    " slower), or not at all (skip).",
)
def audit(fmt: str, read_model: str) -> None:
    """Replay the event log and check every ledger invariant (docs/audit.md);
    exit 0 when clean, 1 when anything is wrong. Never writes."""
    with _store() as tb:
        report = tb.audit(read_model="full" if read_model == "full" else read_model == "figures")
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, default=str, ensure_ascii=False))
    else:
        click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


@cli.group("read-model")
def read_model() -> None:
    """The read model behind reports (its tables: docs/reports.md)."""


def _read_model_command(name: str) -> Callable[[Callable[P, R]], click.Command]:
    def decorate(func: Callable[P, R]) -> click.Command:
        return read_model.command(name)(_errors_as_one_line(func))

    return decorate


@_read_model_command("status")
def read_model_status() -> None:
    """Where the read model is and how far it has read the log."""
    with _store() as tb:
        model = tb.read_model
        last = model.log_end()
        reason = model.rebuild_reason()
        rebuilt = "" if reason is None else f"; the next catch-up rebuilds it: {reason}"
        click.echo(f"{model.location}: at event {model.position():,} of {last:,}{rebuilt}")


@_read_model_command("catch-up")
def read_model_catch_up() -> None:
    """Apply the events recorded since the read model last read the log."""
    with _store() as tb:
        applied = _catch_up(tb.read_model)
        click.echo(f"applied {counted(applied, 'event')}; at event {tb.read_model.position():,}")


@_read_model_command("rebuild")
def read_model_rebuild() -> None:
    """Drop the read model's tables and build them again from the whole log."""
    with _store() as tb:
        applied = _catch_up(tb.read_model, rebuild=True)
        click.echo(f"rebuilt {tb.read_model.location} from {counted(applied, 'event')}")
