"""CLI commands that import historic members and entries (docs/import.md).
They register on :data:`timebank.cli.cli`."""

from __future__ import annotations

import functools
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from timebank._output import counted
from timebank.cli import _actor, _errors_as_one_line, _progress_bar, _store, cli
from timebank.domain.errors import ImportFailed, TimebankError
from timebank.domain.policy import Policy
from timebank.importing import (
    ERRORS_MAX,
    ImportResult,
    Row,
    _stopped,
    read_csv,
    read_timeoverflow,
)

if TYPE_CHECKING:
    from timebank.api import Timebank

__all__: list[str] = []

_file = click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path)
)
#: What problems call standard input, given as ``-`` for FILE.
STDIN = "<stdin>"
_create_banks = click.option(
    "--create-banks", is_flag=True, help="Create banks the file names that do not exist yet."
)
_dry_run = click.option("--dry-run", is_flag=True, help="Check every row; write nothing.")
_date_format = click.option(
    "--date-format",
    metavar="FORMAT",
    help="strptime format of the dates, such as %d/%m/%Y [default: ISO, 2015-03-31].",
)
_max_errors = click.option(
    "--max-errors", type=click.IntRange(1), default=ERRORS_MAX, show_default=True,
    help="Problems to report before stopping.",
)  # fmt: skip


@contextmanager
def _read_from(file: Path) -> Iterator[tuple[Path, str]]:
    """FILE as a path that can be read again and again (an import reads its
    file more than once), and its name in problems. ``-`` is standard input
    (the output of another program: ``convert.py | timebank import entries
    -``), read whole first into a temporary file that only this user may
    read (it may hold personal data), deleted afterwards."""
    if str(file) != "-":
        yield file, str(file)
        return
    with tempfile.NamedTemporaryFile(prefix="timebank-stdin-", suffix=".csv") as spool:
        try:
            shutil.copyfileobj(sys.stdin.buffer, spool)
            spool.flush()
        except OSError as e:  # a full disk: say where, and what to do
            where = Path(spool.name).parent
            raise OSError(e.errno, f"standard input could not be kept in {where} for the"
                          f" import ({e.strerror}); nothing was imported: set TMPDIR to a"
                          " directory with room for it") from None  # fmt: skip
        yield Path(spool.name), STDIN


@cli.group("import")
def import_() -> None:
    """Import historic members and entries: a whole file or nothing; check the
    older system's balances against them (docs/import.md)."""


def _import_command(
    name: str, outcome: str = "nothing was imported"
) -> Callable[[Callable[..., Any]], click.Command]:
    def decorate(func: Callable[..., Any]) -> click.Command:
        return import_.command(name)(_errors_as_one_line(_problems_listed(func, outcome)))

    return decorate


def _problems_listed(func: Callable[..., Any], outcome: str) -> Callable[..., Any]:
    """Every problem of a failed import (or check) on its own line, then exit 1."""

    @functools.wraps(func)  # keeps click's parameters
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ImportFailed as e:
            for problem in e.problems:
                click.echo(str(problem), err=True)
            stopped = "" if e.limit_reached is None else f" ({_stopped(e.limit_reached)})"
            click.echo(f"error: import_failed: {counted(len(e.problems), 'problem')}{stopped};"
                       f" {outcome}", err=True)  # fmt: skip
            sys.exit(1)

    return wrapper


@_import_command("members")
@_file
@_create_banks
@_dry_run
@click.option(
    "--strict", is_flag=True,
    help="Refuse a new member whose id is another's but for case instead of warning.",
)  # fmt: skip
@_date_format
@_max_errors
def import_members(
    file: Path,
    create_banks: bool,
    dry_run: bool,
    strict: bool,
    date_format: str | None,
    max_errors: int,
) -> None:
    """Import members from FILE (member_id, kind, bank, joined_on, display_name,
    area, left_on); - reads standard input."""
    with _read_from(file) as (path, name), _store(create=create_banks) as tb:
        result = tb.import_members(
            read_csv(path, name=name), actor=_actor(), source=name, create_banks=create_banks,
            dry_run=dry_run, strict=strict, date_format=date_format, max_errors=max_errors,
        )  # fmt: skip
    _summary(result)
    _listed("warning", result.warnings, str, err=True)


@_import_command("entries")
@_file
@click.option(
    "--source-format",
    type=click.Choice(["interchange", "timeoverflow"]),
    default="interchange",
    show_default=True,
    help="timeoverflow: TimeOverflow's transfer CSV, into the bank given by --bank.",
)
@click.option("--bank", metavar="BANK", help="The bank of a TimeOverflow file's transfers.")
@_create_banks
@_dry_run
@click.option("--strict", is_flag=True, help="Refuse balance-limit breaches instead of flagging.")
@_date_format
@_max_errors
def import_entries(
    file: Path,
    source_format: str,
    bank: str | None,
    create_banks: bool,
    dry_run: bool,
    strict: bool,
    date_format: str | None,
    max_errors: int,
) -> None:
    """Import entries from FILE (entry_id, occurred_on, kind, provider, receiver,
    hours, bank, category, note, reverses, group_id [, receiver_bank]); -
    reads standard input."""
    rows: Iterable[Row]
    if source_format == "timeoverflow" and bank is None:
        raise click.UsageError("--source-format timeoverflow needs --bank")
    with _read_from(file) as (path, name), _store(create=create_banks) as tb:
        if source_format == "timeoverflow":
            assert bank is not None
            zone = _timezone(tb, bank)
            rows, header = read_timeoverflow(path, bank, timezone=zone, name=name), 0
        else:
            rows, header = read_csv(path, name=name), 1
        with _progress(path, header) as progress:
            result = tb.import_entries(
                rows, actor=_actor(), source=name, create_banks=create_banks,
                dry_run=dry_run, strict=strict, date_format=date_format, max_errors=max_errors,
                progress=progress,
            )  # fmt: skip
    _summary(result)
    _listed(
        "flagged", result.flagged, "{} breaches a balance limit (see timebank near-limit)".format
    )


@_import_command("check-balances", "nothing was checked")
@_file
@_date_format
@_max_errors
def check_balances(file: Path, date_format: str | None, max_errors: int) -> None:
    """Check the balances an older system showed, FILE (bank, account, on,
    hours), against the store's at the end of each day ON; writes nothing;
    - reads standard input. Exit 1 if any differs."""
    with _read_from(file) as (path, name), _store(create=False) as tb:
        result = tb.check_balances(
            read_csv(path, name=name), source=name, date_format=date_format,
            max_errors=max_errors,
        )  # fmt: skip
    for mismatch in result.mismatches:
        click.echo(str(mismatch))
    click.echo(result.summary())
    if not result.ok:
        sys.exit(1)


def _timezone(tb: Timebank, bank: str) -> str:
    """The bank's timezone; a bank the import will create has the default
    policy's (and the import names whatever else is wrong with ``bank``)."""
    try:
        return tb.bank(bank).policy.timezone
    except TimebankError:
        return Policy().timezone


def _lines(file: Path) -> int:
    """The progress bar's length: the file's lines (a quoted cell may span
    lines, so this may be a little over the rows)."""
    lines = 0
    last = b"\n"
    with file.open("rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


@contextmanager
def _progress(file: Path, header: int) -> Iterator[Callable[[int], None]]:
    """On a terminal, a progress bar with rows per second (click's) over the
    file's lines below its ``header`` lines; else nothing until the summary
    (and the file is not read for its length)."""
    if not sys.stderr.isatty():
        yield lambda _: None
        return
    with _progress_bar(max(0, _lines(file) - header), "applying rows", "rows") as advance:
        yield advance


#: The most lines of flagged entries or warnings an import prints.
LISTED_MAX = 20


def _listed(
    label: str, items: Sequence[Any], shown: Callable[[Any], str], *, err: bool = False
) -> None:
    """The first :data:`LISTED_MAX` of ``items``, each ``shown`` after
    ``label``, then how many more."""
    for item in items[:LISTED_MAX]:
        click.echo(f"{label}: {shown(item)}", err=err)
    if len(items) > LISTED_MAX:
        click.echo(f"{label}: ... and {len(items) - LISTED_MAX:,} more", err=err)


def _summary(result: ImportResult) -> None:
    click.echo(result.summary())
    if result.recorded == 0 and result.skipped and not result.dry_run:
        click.echo("nothing changed: every row is already in the store")
