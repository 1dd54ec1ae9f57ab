"""The ``timebank`` command: a thin shell over :class:`timebank.Timebank`.

Each command parses its options, calls the API method of the same name and
prints the result. A refused command prints one line, ``error: CODE: what``,
and exits 1 having written nothing.
"""

from __future__ import annotations

import codecs
import functools
import io
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import attrs
import click
from click.core import ParameterSource
from eventsourcing.persistence import PersistenceError

from timebank import api
from timebank._output import FORMATS, TOLD_ONLY_BY_CASE, Whereabouts, counted, render
from timebank.demo import DEMO_BANK, DEMO_HUB, run_demo
from timebank.domain.entries import RecordedEntry
from timebank.domain.errors import (
    BankNotFound,
    ChartsUnavailable,
    MemberNotFound,
    NotPermitted,
    StoreNotFound,
    TimebankError,
)
from timebank.domain.policy import BalanceLimits, LeaveRule, LimitMode, Policy
from timebank.domain.roles import Permissions
from timebank.domain.values import format_hours, parent_bank, parse_minutes, validate_member_id
from timebank.readmodel.report import NO_AREA
from timebank.storage import ENV_VAR, Profile, default_url
from timebank.views import Member

__all__ = ["cli", "main"]

#: Who runs a command given no --actor and no $TIMEBANK_ACTOR.
DEFAULT_ACTOR = "cli"
#: Where the demo writes its HTML report (the working directory).
DEMO_REPORT = "timebank-report.html"
#: The exit status of a command stopped by Ctrl-C: 128 + SIGINT, as shells give.
INTERRUPTED = 130

P = ParamSpec("P")
R = TypeVar("R")

_bom_option = click.option(
    "--bom",
    is_flag=True,
    help="With --format csv: begin with a byte-order mark, for a spreadsheet opened by"
    " double-click (Excel), which otherwise misreads accented names.",
)


def _format_option(func: Callable[P, R]) -> Callable[P, R]:
    """``--format table|csv|json`` and ``--bom``, which only CSV takes (a
    usage error, before the command does anything, with another format)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        _check_bom(kwargs["bom"], str(kwargs["fmt"]))
        return func(*args, **kwargs)

    format_option = click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True
    )
    return format_option(_bom_option(wrapper))


def _check_bom(bom: object, fmt: str) -> None:
    if bom and fmt != "csv":
        raise click.UsageError(f"--bom is for --format csv, not --format {fmt}")


#: For a command that prints one entry (or pending entry): a line, or its JSON.
_one_format_option = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)


class _Command(click.Command):
    """A command that answers a bank given in the other commands' form with
    the form it takes. Commands that change a bank take it as an argument
    (``join BANK MEMBER``); the reports and lists take ``--bank BANK``.
    Either form given to a command of the other family is a usage error
    (exit 2) that says how to write it, in place of click's own."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)  # click's parser takes the list apart as it reads it
        try:
            return super().parse_args(ctx, args)
        except click.UsageError:  # looked into only when click refuses the arguments
            hint = self._bank_hint(ctx, given)
            if hint is None:
                raise
            raise click.UsageError(hint, ctx) from None

    def _bank_hint(self, ctx: click.Context, args: list[str]) -> str | None:
        bank = next((p for p in self.params if p.name == "bank"), None)
        path = ctx.command_path
        if isinstance(bank, click.Argument):
            options = args[: args.index("--")] if "--" in args else args
            if any(a == "--bank" or a.startswith("--bank=") for a in options):
                usage = " ".join(self.collect_usage_pieces(ctx))
                return f"{path} takes the bank as an argument, not --bank: {path} {usage}"
        elif isinstance(bank, click.Option) and not any(
            isinstance(p, click.Argument) for p in self.params
        ):
            try:
                opts, extra, _ = self.make_parser(ctx).parse_args(args=list(args))
            except click.UsageError:
                return None  # an unknown option, say: click says so
            if len(extra) == 1 and "bank" not in opts:
                return (
                    f"got an argument ({extra[0]}), and {path} takes no argument:"
                    f" give the bank as {shlex.join(['--bank', extra[0]])}"
                )
        return None


class _Group(click.Group):
    #: The group's commands (not those of its groups, ``import`` and
    #: ``read-model``, which take files and no bank argument).
    command_class = _Command


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    metavar="URL",
    default=None,
    help="Store URL: sqlite:///path.db, postgresql://user@host/db (docs/storage.md) or"
    f" memory:// [default: ${ENV_VAR} or sqlite:///timebank.db]",
)
@click.option(
    "--actor",
    metavar="ID",
    default=lambda: os.environ.get("TIMEBANK_ACTOR", DEFAULT_ACTOR),
    show_default="$TIMEBANK_ACTOR or cli",
    help="Id of whoever runs the command, recorded with every change.",
)
@click.version_option(package_name="timebank")
@click.pass_context
def cli(ctx: click.Context, db: str | None, actor: str) -> None:
    """timebank: an event-sourced time-banking ledger (1 hour of help = 1 credit)."""
    ctx.obj = {"db": db or default_url(), "actor": actor}


@contextmanager
def _store(*, create: bool = False) -> Iterator[api.Timebank]:
    ctx = click.get_current_context()
    try:
        tb = api.open(ctx.obj["db"], create=create)
    except StoreNotFound as e:
        if create:  # a missing directory: the message names it
            raise
        raise StoreNotFound(f"{e}{_where_stores_come_from(ctx)}", **e.ids) from None
    try:
        yield tb
    except MemberNotFound as e:
        raise MemberNotFound(f"{e}{_where_member_is(tb, e)}", **e.ids) from None
    finally:
        tb.close()


def _where_member_is(tb: api.Timebank, error: MemberNotFound) -> str:
    """For a member named in a bank they are not in: the banks they are in
    (a mini bank's member given under its parent is the usual slip), as an
    import's refusal says; for one in no bank, a member whose id is theirs
    but for case. For a refusal that names no bank (a statement of every
    bank), only the latter; nothing for a system account (``@pot``)."""
    member, bank = error.ids.get("member"), error.ids.get("bank")
    if not isinstance(member, str):
        return ""
    try:
        validate_member_id(member)
    except TimebankError:  # not a member id (a system account's): the refusal says enough
        return ""
    whereabouts = _whereabouts(tb)
    if bank is None:  # in no bank (a statement of every bank): only an id alike but for case
        alike = whereabouts.alike(member)
        return f" ({alike})" if alike else ""
    return whereabouts.of(member)


def _whereabouts(tb: api.Timebank) -> Whereabouts:
    """Every member's banks, read the first time a member is asked about
    (by a refusal of a member, or by ``join`` to warn of an id alike)."""
    return Whereabouts(
        lambda: ((m.member, b.bank) for b in tb.banks() for m in tb.members(b.bank)),
        "a member of no bank",
    )


def _where_stores_come_from(ctx: click.Context) -> str:
    """For a command that found no store: where it looked, when that was
    the default (a coordinator in another directory than the store's), and
    how a store is made."""
    looked = ""
    if (
        ctx.find_root().get_parameter_source("db") is ParameterSource.DEFAULT
        and ENV_VAR not in os.environ
    ):
        looked = (
            f"no --db given and {ENV_VAR} not set, so it looked in the working directory"
            f" {Path.cwd()}; "
        )
    return (
        f" ({looked}`timebank create-bank`, or an import with --create-banks, creates a store;"
        f" --db or {ENV_VAR} names another)"
    )


@contextmanager
def _progress_bar(total: int, label: str, unit: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on standard error (click's) over ``total`` items, with
    ``unit`` per second; the callable it yields takes the items done so far.
    Its callers show it only on a terminal."""
    started = time.perf_counter()
    shown = 0

    def rate(_: object) -> str:
        seconds = time.perf_counter() - started
        return f"{shown / seconds:,.0f} {unit}/s" if seconds > 0 else ""

    with click.progressbar(
        length=total, label=label, file=sys.stderr, show_pos=True, item_show_func=rate
    ) as bar:

        def advance(done: int) -> None:
            nonlocal shown
            step, shown = done - shown, done  # before the bar draws its rate from it
            bar.update(step, done)

        yield advance


def _actor() -> str:
    actor: str = click.get_current_context().obj["actor"]
    return actor


def _errors_as_one_line(func: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except TimebankError as e:
            _fail(f"{e.code}: {e}{_actor_hint(e)}")
        except PersistenceError as e:
            _fail(f"storage_error: {type(e).__name__}: {e}")
        except OSError as e:  # a file to read or write: a path, permissions, a full disk
            _fail(f"file_error: {e}")
        except KeyboardInterrupt:  # its transaction rolled back as the exception passed
            _fail("interrupted: stopped before it finished; what it had not committed is not"
                  " in the store (an import: none of its rows), and running it again"
                  " completes it", status=INTERRUPTED)  # fmt: skip

    return wrapper


def _actor_hint(error: TimebankError) -> str:
    """For a refusal of the default actor: how to name who runs the command
    (someone who left out --actor reads "'cli' may not..." otherwise)."""
    ctx = click.get_current_context(silent=True)
    defaulted = (
        ctx is not None
        and ctx.find_root().get_parameter_source("actor") is ParameterSource.DEFAULT
        and "TIMEBANK_ACTOR" not in os.environ
    )
    if not isinstance(error, NotPermitted) or not defaulted:
        return ""
    return (
        f" (no --actor given, so it ran as {DEFAULT_ACTOR!r}: give --actor ID or set"
        " TIMEBANK_ACTOR)"
    )


def _fail(message: str, status: int = 1) -> NoReturn:
    click.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(status)


def _command(name: str) -> Callable[[Callable[P, R]], click.Command]:
    def decorate(func: Callable[P, R]) -> click.Command:
        return cli.command(name)(_errors_as_one_line(func))

    return decorate


def _echo_entry(entry: RecordedEntry, fmt: str = "table") -> None:
    data = entry.to_dict()
    if fmt == "json":
        click.echo(render([data], list(data), "json"))
        return
    legs = ", ".join(f"{a} {'+' if m > 0 else ''}{format_hours(m)}" for a, m in entry.legs)
    flags = f" flags: {', '.join(entry.flags)}" if entry.flags else ""
    click.echo(
        f"{entry.entry_id}: {entry.kind} {format_hours(entry.minutes)} on"
        f" {entry.occurred_on} in {entry.bank} ({legs}){flags}"
    )


# --- banks ---------------------------------------------------------------------------
def _limit(hours: str | None) -> int | None:
    return None if hours is None else parse_minutes(hours, allow_negative=True)


def _policy_options(func: Callable[P, R]) -> Callable[P, R]:
    options = [
        click.option("--entry-max-hours", help="Most hours one entry may have [24]."),
        click.option("--opening-max-hours", help="Largest opening balance [10000]."),
        click.option("--individual-lowest", help="Lowest balance of individuals, hours."),
        click.option("--individual-highest", help="Highest balance of individuals, hours."),
        click.option("--organisation-lowest", help="Lowest balance of organisations, hours."),
        click.option("--organisation-highest", help="Highest balance of organisations."),
        click.option("--pot-highest", help="Highest balance of the pot, hours."),
        click.option("--limit-mode", type=click.Choice([m.value for m in LimitMode])),
        click.option("--timezone", help="Timezone of entry dates [Europe/London]."),
        click.option(
            "--on-leave",
            type=click.Choice([r.value for r in LeaveRule]),
            help="A leaving member's balance: freeze it or donate it to the pot [freeze].",
        ),
        click.option("--clearing-lowest", help="Lowest balance of clearing accounts, hours."),
        click.option("--clearing-highest", help="Highest balance of clearing accounts, hours."),
        click.option(
            "--approval-threshold-hours", help="Members' entries above this await approval."
        ),
        click.option("--pending-expiry-days", type=int, help="Days a pending entry lives [30]."),
        click.option(
            "--permission",
            "permissions",
            multiple=True,
            metavar="ACTION=ROLE",
            help="Lowest role for an action, e.g. reverse=admin; repeat for each.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _policy_from(base: Policy, given: dict[str, Any]) -> Policy:
    def limits(current: BalanceLimits, low: str, high: str) -> BalanceLimits:
        return BalanceLimits(
            current.lowest_minutes if given[low] is None else _limit(given[low]),
            current.highest_minutes if given[high] is None else _limit(given[high]),
        )

    entry_max = given["entry_max_hours"]
    opening_max = given["opening_max_hours"]
    pot_high = given["pot_highest"]
    threshold = given["approval_threshold_hours"]
    expiry = given["pending_expiry_days"]
    return Policy(
        entry_minutes_max=base.entry_minutes_max if entry_max is None else parse_minutes(entry_max),
        opening_balance_minutes_max=base.opening_balance_minutes_max
        if opening_max is None
        else parse_minutes(opening_max),
        individual=limits(base.individual, "individual_lowest", "individual_highest"),
        organisation=limits(base.organisation, "organisation_lowest", "organisation_highest"),
        pot=BalanceLimits(0, base.pot.highest_minutes if pot_high is None else _limit(pot_high)),
        limit_mode=LimitMode(given["limit_mode"] or base.limit_mode),
        timezone=given["timezone"] or base.timezone,
        on_leave=LeaveRule(given["on_leave"] or base.on_leave),
        clearing=limits(base.clearing, "clearing_lowest", "clearing_highest"),
        permissions=_permissions(base.permissions, given["permissions"]),
        approval_threshold_minutes=base.approval_threshold_minutes
        if threshold is None
        else parse_minutes(threshold),
        pending_expiry_days=base.pending_expiry_days if expiry is None else int(expiry),
    )


def _permissions(base: Permissions, given: object) -> Permissions:
    changes: dict[str, str] = {}
    for value in given if isinstance(given, tuple) else ():
        action, sep, role = str(value).partition("=")
        if not sep:
            _fail(f"invalid_policy: --permission takes ACTION=ROLE: {value!r}")
        changes[action] = role
    return Permissions.from_dict({**base.to_dict(), **changes})


@_command("create-bank")
@click.argument("bank")
@click.option("--name", required=True, help="Display name of the bank.")
@click.option("--opened-on", metavar="DATE", help="Date it opened [today].")
@_policy_options
def create_bank(bank: str, name: str, opened_on: str | None, **policy: Any) -> None:
    """Open a new time bank (with its community pot); you become its admin.

    BANK may be a path such as thurrock/tilbury-hub: a mini time bank inside
    thurrock, which starts from its parent's policy with the options given
    here applied.
    """
    with _store(create=True) as tb:
        parent = parent_bank(bank)
        base = Policy() if parent is None else tb.policy(parent)
        info = tb.create_bank(
            bank, name=name, actor=_actor(), policy=_policy_from(base, policy),
            opened_on=opened_on,
        )  # fmt: skip
    click.echo(f"created bank {info.bank} ({info.name}), opened on {info.opened_on}")


@_command("set-policy")
@click.argument("bank")
@_policy_options
def set_policy(bank: str, **policy: str | None) -> None:
    """Change a bank's policy (options not given keep their current value)."""
    with _store() as tb:
        new = tb.set_policy(bank, _policy_from(tb.policy(bank), policy), actor=_actor())
    click.echo(render([new.to_dict()], [], "json"))


@_command("policy")
@click.argument("bank")
def policy(bank: str) -> None:
    """Show a bank's policy as JSON."""
    with _store() as tb:
        click.echo(render([tb.policy(bank).to_dict()], [], "json"))


@_command("bank")
@click.argument("bank")
def bank(bank: str) -> None:
    """Show one bank (name, opening date, members, policy) as JSON."""
    with _store() as tb:
        click.echo(render([tb.bank(bank).to_dict()], [], "json"))


@_command("banks")
@_format_option
def banks(fmt: str, bom: bool) -> None:
    """List the banks of the store."""
    with _store() as tb:
        rows = [b.to_dict() for b in tb.banks()]
    click.echo(render(rows, ["bank", "name", "opened_on", "members"], fmt, bom=bom))


# --- members -----------------------------------------------------------------------------
@_command("join")
@click.argument("bank")
@click.argument("member")
@click.option("--kind", type=click.Choice(["individual", "organisation"]), required=True)
@click.option("--joined-on", metavar="DATE", help="Date the member joined [today].")
@click.option("--display-name", help="Stored in the erasable profile store only.")
@click.option("--email", help="Stored in the erasable profile store only.")
@click.option("--phone", help="Stored in the erasable profile store only.")
@click.option("--area", help="Ward or hub, stored in the profile store.")
def join(
    bank: str, member: str, kind: str, joined_on: str | None, display_name: str | None,
    email: str | None, phone: str | None, area: str | None,
) -> None:  # fmt: skip
    """A member joins a bank and gets an account there."""
    details = (display_name, email, phone, area)
    profile = Profile(*details) if any(details) else None
    with _store() as tb:
        # before the join, against the other members: as an import warns
        alike = _whereabouts(tb).alike_members(member)
        joined = tb.join(
            bank, member, kind=kind, actor=_actor(), joined_on=joined_on, profile=profile
        )
    click.echo(f"{joined.member} joined {joined.bank} as {joined.kind} on {joined.joined_on}")
    if alike:
        click.echo(f"warning: {member}: {TOLD_ONLY_BY_CASE}: {'; '.join(alike)}", err=True)


@_command("member")
@click.argument("bank")
@click.argument("member")
def member(bank: str, member: str) -> None:
    """Show one member of a bank (kind, join date, balance) as JSON."""
    with _store() as tb:
        click.echo(render([tb.member(bank, member).to_dict()], [], "json"))


@_command("members")
@click.argument("bank")
@_format_option
def members(bank: str, fmt: str, bom: bool) -> None:
    """List a bank's members with their balances."""
    with _store() as tb:
        rows = [m.to_dict() for m in tb.members(bank)]
    columns = ["member", "kind", "status", "joined_on", "balance_minutes"]
    click.echo(render(rows, columns, fmt, bom=bom))


def _echo_member(found: Member) -> None:
    left = f" on {found.left_on}" if found.left_on else ""
    click.echo(
        f"{found.member} of {found.bank}: {found.status}{left},"
        f" balance {format_hours(found.balance_minutes)}"
    )


@_command("suspend")
@click.argument("bank")
@click.argument("member")
def suspend(bank: str, member: str) -> None:
    """Suspend MEMBER: they take part in no new entries until reinstated."""
    with _store() as tb:
        _echo_member(tb.suspend(bank, member, actor=_actor()))


@_command("reinstate")
@click.argument("bank")
@click.argument("member")
def reinstate(bank: str, member: str) -> None:
    """Make a suspended MEMBER active again."""
    with _store() as tb:
        _echo_member(tb.reinstate(bank, member, actor=_actor()))


@_command("leave")
@click.argument("bank")
@click.argument("member")
@click.option("--on", "left_on", metavar="DATE", help="Date they left [today].")
@click.option("--donation-id", help="Entry id of the donation of their balance, if any.")
def leave(bank: str, member: str, left_on: str | None, donation_id: str | None) -> None:
    """MEMBER leaves BANK; the bank's on-leave policy donates or freezes their balance."""
    with _store() as tb:
        _echo_member(
            tb.leave(bank, member, actor=_actor(), left_on=left_on, donation_id=donation_id)
        )


@_command("rejoin")
@click.argument("bank")
@click.argument("member")
@click.option("--on", "rejoined_on", metavar="DATE", help="Date they rejoin [today].")
def rejoin(bank: str, member: str, rejoined_on: str | None) -> None:
    """MEMBER, who left BANK, joins again."""
    with _store() as tb:
        _echo_member(tb.rejoin(bank, member, actor=_actor(), rejoined_on=rejoined_on))


@_command("erase")
@click.argument("member")
def erase(member: str) -> None:
    """Erase MEMBER's personal data (profile); entries and balances stay."""
    with _store() as tb:
        result = tb.erase_member(member, actor=_actor())
    if result.profile_deleted:
        done = f"profile of {member} erased"
    else:
        done = f"{member} had no profile; the erasure is recorded"
    if not result.physically_complete:  # a copy may be left from this erasure or an earlier one
        _fail(
            f"erasure_incomplete: {done}, but other processes were reading the store, whose"
            " files may still hold a copy of the profile; run the erasure again to finish it"
        )
    click.echo(done)


@_command("set-profile")
@click.argument("member")
@click.option("--display-name")
@click.option("--email")
@click.option("--phone")
@click.option("--area")
def set_profile(
    member: str, display_name: str | None, email: str | None, phone: str | None,
    area: str | None,
) -> None:  # fmt: skip
    """Change a member's personal details in the profile store: the fields
    given (an empty value clears one); the others stay."""
    given = {"display_name": display_name, "email": email, "phone": phone, "area": area}
    changes = {name: value or None for name, value in given.items() if value is not None}
    if not changes:
        raise click.UsageError("give a field to change: --display-name, --email, --phone or --area")
    with _store() as tb:
        tb.update_profile(member, actor=_actor(), **changes)
    click.echo(f"profile of {member} saved")


@_command("profile")
@click.argument("member")
def profile(member: str) -> None:
    """Show a member's personal details (JSON)."""
    with _store() as tb:
        found = tb.profile(member)
    if found is None:
        _fail(f"profile_not_found: no profile for {member!r}")
    click.echo(render([attrs.asdict(found)], [], "json"))


# --- entries ---------------------------------------------------------------------------------
def _entry_options(func: Callable[P, R]) -> Callable[P, R]:
    options = [
        click.option("--on", "occurred_on", metavar="DATE", help="Date of the help [today]."),
        click.option("--category", help="Category code, e.g. gardening."),
        click.option("--entry-id", help="Your id for the entry: makes retries safe."),
        click.option("--on-behalf-of", metavar="MEMBER", help="The party you record it for."),
        _one_format_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


_receiver_bank_option = click.option(
    "--receiver-bank",
    metavar="BANK",
    help="The receiver's bank, when another bank of the same tree [BANK].",
)


@_command("record-exchange")
@click.argument("bank")
@click.argument("provider")
@click.argument("receiver")
@click.argument("hours")
@_entry_options
@_receiver_bank_option
def record_exchange(
    bank: str, provider: str, receiver: str, hours: str, occurred_on: str | None,
    category: str | None, entry_id: str | None, on_behalf_of: str | None,
    receiver_bank: str | None, fmt: str,
) -> None:  # fmt: skip
    """PROVIDER helped RECEIVER for HOURS (2, 1.5 or 1:30)."""
    with _store() as tb:
        entry = tb.record_exchange(
            bank, provider, receiver, hours, actor=_actor(), occurred_on=occurred_on,
            category=category, entry_id=entry_id, on_behalf_of=on_behalf_of,
            receiver_bank=receiver_bank,
        )  # fmt: skip
    _echo_entry(entry, fmt)


@_command("record-pot-exchange")
@click.argument("bank")
@click.argument("provider")
@click.argument("receiver")
@click.argument("hours")
@_entry_options
@_receiver_bank_option
def record_pot_exchange(
    bank: str, provider: str, receiver: str, hours: str, occurred_on: str | None,
    category: str | None, entry_id: str | None, on_behalf_of: str | None,
    receiver_bank: str | None, fmt: str,
) -> None:  # fmt: skip
    """PROVIDER helped RECEIVER for HOURS, paid by the receiver's bank's pot."""
    with _store() as tb:
        entry = tb.record_pot_exchange(
            bank, provider, receiver, hours, actor=_actor(), occurred_on=occurred_on,
            category=category, entry_id=entry_id, on_behalf_of=on_behalf_of,
            receiver_bank=receiver_bank,
        )  # fmt: skip
    _echo_entry(entry, fmt)


@_command("donate")
@click.argument("bank")
@click.argument("donor")
@click.argument("hours")
@_entry_options
@_receiver_bank_option
def donate(
    bank: str, donor: str, hours: str, occurred_on: str | None, category: str | None,
    entry_id: str | None, on_behalf_of: str | None, receiver_bank: str | None, fmt: str,
) -> None:  # fmt: skip
    """DONOR gives HOURS of credit to the community pot of their bank (or of
    --receiver-bank)."""
    with _store() as tb:
        entry = tb.donate(
            bank, donor, hours, actor=_actor(), occurred_on=occurred_on, category=category,
            entry_id=entry_id, on_behalf_of=on_behalf_of, receiver_bank=receiver_bank,
        )  # fmt: skip
    _echo_entry(entry, fmt)


@_command("gift")
@click.argument("bank")
@click.argument("giver")
@click.argument("recipient")
@click.argument("hours")
@_entry_options
@_receiver_bank_option
def gift(
    bank: str, giver: str, recipient: str, hours: str, occurred_on: str | None,
    category: str | None, entry_id: str | None, on_behalf_of: str | None,
    receiver_bank: str | None, fmt: str,
) -> None:  # fmt: skip
    """GIVER gives HOURS of their credit to RECIPIENT. Either may be @pot (a
    pot-to-pot transfer needs --receiver-bank)."""
    with _store() as tb:
        entry = tb.gift(
            bank, giver, recipient, hours, actor=_actor(), occurred_on=occurred_on,
            category=category, entry_id=entry_id, on_behalf_of=on_behalf_of,
            receiver_bank=receiver_bank,
        )  # fmt: skip
    _echo_entry(entry, fmt)


def _shares(values: tuple[str, ...], option: str) -> dict[str, str]:
    shares: dict[str, str] = {}
    for value in values:
        member, sep, hours = value.partition("=")
        if not sep or not member or member in shares:
            _fail(f"invalid_group: {option} takes MEMBER=HOURS, each member once: {value!r}")
        shares[member] = hours
    return shares


@_command("record-group-exchange")
@click.argument("bank")
@click.option("--provider", "providers", multiple=True, metavar="MEMBER=HOURS", required=True,
              help="A member who helped, and their share; repeat for each.")  # fmt: skip
@click.option("--receiver", "receivers", multiple=True, metavar="MEMBER=HOURS", required=True,
              help="A member who was helped, and their share; repeat for each.")  # fmt: skip
@_entry_options
def record_group_exchange(
    bank: str, providers: tuple[str, ...], receivers: tuple[str, ...], occurred_on: str | None,
    category: str | None, entry_id: str | None, on_behalf_of: str | None, fmt: str,
) -> None:  # fmt: skip
    """Several members helped several others at once (all of it or none).

    A one-hour class for three: --provider teacher=3 --receiver a=1
    --receiver b=1 --receiver c=1
    """
    given = _shares(providers, "--provider"), _shares(receivers, "--receiver")
    with _store() as tb:
        entry = tb.record_group_exchange(
            bank, *given, actor=_actor(), occurred_on=occurred_on, category=category,
            entry_id=entry_id, on_behalf_of=on_behalf_of,
        )  # fmt: skip
    _echo_entry(entry, fmt)


@_command("record-opening-balance")
@click.argument("bank")
@click.argument("member")
@click.argument("hours")
@click.option("--on", "occurred_on", metavar="DATE", help="Date of the balance [today].")
@click.option("--entry-id", help="Your id for the entry: makes retries safe.")
@_one_format_option
def record_opening_balance(
    bank: str, member: str, hours: str, occurred_on: str | None, entry_id: str | None,
    fmt: str,
) -> None:  # fmt: skip
    """Carry MEMBER's balance of HOURS over from an older system.

    For a negative balance give options first and put -- before the hours:
    record-opening-balance --entry-id ob-7 BANK MEMBER -- -2:30
    """
    with _store() as tb:
        entry = tb.record_opening_balance(
            bank, member, hours, actor=_actor(), occurred_on=occurred_on, entry_id=entry_id
        )
    _echo_entry(entry, fmt)


@_command("reverse")
@click.argument("entry_id")
@click.option("--reversal-id", help="Your id for the reversal: makes retries safe.")
@click.option("--on", "occurred_on", metavar="DATE", help="Date of the reversal [today].")
@click.option("--on-behalf-of", metavar="MEMBER", help="The party of ENTRY_ID you reverse it for.")
@_one_format_option
def reverse(
    entry_id: str, reversal_id: str | None, occurred_on: str | None,
    on_behalf_of: str | None, fmt: str,
) -> None:  # fmt: skip
    """Undo ENTRY_ID with a reversal entry (nothing is deleted)."""
    with _store() as tb:
        entry = tb.reverse(
            entry_id, actor=_actor(), reversal_id=reversal_id, occurred_on=occurred_on,
            on_behalf_of=on_behalf_of,
        )  # fmt: skip
    _echo_entry(entry, fmt)


@_command("entry")
@click.argument("entry_id")
@_one_format_option
def entry(entry_id: str, fmt: str) -> None:
    """Show one recorded entry."""
    with _store() as tb:
        found = tb.entry(entry_id)
    _echo_entry(found, fmt)
    if fmt == "table" and found.reversed_by:
        click.echo(f"reversed by {found.reversed_by}")


# --- balances, statements, figures ---------------------------------------------------------
@_command("balance")
@click.argument("bank")
@click.argument("account")
def balance(bank: str, account: str) -> None:
    """Current balance of ACCOUNT (a member id, @pot or @opening), in hours."""
    with _store() as tb:
        click.echo(format_hours(tb.balance(bank, account)))


@_command("balances")
@click.option("--bank", help="Only this bank [every bank].")
@_format_option
def balances(bank: str | None, fmt: str, bom: bool) -> None:
    """Every account's balance."""
    with _store() as tb:
        rows = [b.to_dict() for b in tb.balances(bank)]
    columns = ["bank", "account", "kind", "balance_minutes", "balance_hours"]
    click.echo(render(rows, columns, fmt, bom=bom))


@_command("figures")
@click.argument("bank")
@click.option("--rollup", is_flag=True, help="Include the bank's mini time banks.")
@_format_option
def figures(bank: str, rollup: bool, fmt: str, bom: bool) -> None:
    """Headline figures of a bank over its whole history."""
    with _store() as tb:
        data = tb.figures(bank, rollup=rollup).to_dict()
    if fmt == "json":
        click.echo(render([data], list(data), "json"))
        return
    rows = [
        _figure_in_hours(k, v) if fmt == "table" else {"figure": k, "value": v}
        for k, v in data.items()
    ]
    click.echo(render(rows, ["figure", "value"], fmt, bom=bom))


def _figure_in_hours(name: str, value: object) -> dict[str, object]:
    """A figure in minutes as the table shows it: named in hours, as the
    period report names it (``hours_exchanged``, ``pot_balance_hours``),
    and given as ``H:MM``. CSV and JSON keep the minutes."""
    if not name.endswith("_minutes") or not isinstance(value, int):
        return {"figure": name, "value": value}
    stem = name.removesuffix("_minutes")
    hours = "hours_exchanged" if stem == "exchanged" else f"{stem}_hours"
    return {"figure": hours, "value": format_hours(value)}


@_command("demo")
def demo() -> None:
    """Create a demo time bank with four months of activity and show it."""
    db = click.get_current_context().obj["db"]
    with _store(create=True) as tb:
        try:
            tb.bank(DEMO_BANK)
            click.echo(f"The demo bank {DEMO_BANK!r} is already in {db}; showing it.")
        except BankNotFound:
            count = run_demo(tb, tb.today())
            click.echo(f"Recorded a demo time bank {DEMO_BANK!r} with {count} entries in {db}.")
        tb.check_invariants()
        _print_demo(tb)


def _print_demo(tb: api.Timebank) -> None:
    rows = []
    for b in tb.balances(DEMO_BANK):
        found = tb.profile(b.account) if not b.account.startswith("@") else None
        name = found.display_name if found else {"@pot": "(community pot)"}.get(b.account, "")
        rows.append({**b.to_dict(), "name": name, "hours": format_hours(b.balance_minutes)})
    click.echo("\nBalances\n")
    click.echo(render(rows, ["account", "name", "kind", "hours"], "table"))
    report = tb.report(DEMO_BANK)
    click.echo(f"\nHeadline figures, {report.start} to {report.end} (docs/reports.md)\n")
    click.echo(
        f"  {format_hours(report.exchanged_minutes)} hours exchanged in {report.exchanges}"
        f" exchanges; {report.transactions} transactions\n"
        f"  {report.individual_members} individual members, {report.organisations}"
        f" organisations; {report.active_members} took part, {report.connections} connections,"
        f" {report.members_with_one_connection} members with only one\n"
        f"  {format_hours(report.donated_to_pot_minutes)} hours donated to the pot,"
        f" {format_hours(report.pot_funded_minutes)} hours of pot-funded help,"
        f" {format_hours(report.pot_balance_minutes)} hours left in the pot\n"
        f"  {counted(tb.figures(DEMO_BANK).reversals, 'entry', 'entries')} reversed"
        " (excluded from every figure)"
    )
    hub = tb.report(DEMO_BANK, rollup=True, by_area=True)
    waiting = tb.pending(DEMO_HUB)
    click.echo(
        f"\nWith its mini time bank {DEMO_HUB}: {format_hours(hub.exchanged_minutes)} hours"
        f" exchanged in {hub.exchanges} exchanges, {hub.individual_members} individual members;"
        f" {counted(len(waiting), 'proposed exchange')} awaiting confirmation"
    )
    click.echo("\nBy area (the ward in each member's profile)\n")
    click.echo(
        render(
            [
                {**a.to_dict(), "area": a.area or NO_AREA,
                 "hours_given": format_hours(a.given_minutes)}
                for a in hub.by_area or ()
            ],
            ["area", "members", "active_members", "hours_given", "exchanges"],
            "table",
        )
    )  # fmt: skip
    try:
        page = tb.report_html(DEMO_BANK, rollup=True, by_area=True)
    except ChartsUnavailable as e:
        click.echo(f"\n(No HTML report: {e}.)")
        return
    Path(DEMO_REPORT).write_text(page, encoding="utf-8")
    click.echo(f"\nThe council's report, with charts: {DEMO_REPORT} (open it in a browser).")


def main() -> None:
    """Console-script entry point."""
    _utf8_output()
    cli()


def _utf8_output() -> None:
    """Standard output and error as UTF-8 (docs/cli.md): to a file or a pipe
    in UTF-8 whatever the locale's encoding, on a terminal that lacks a
    character its escape. Python would write the locale's encoding (cp1252
    on Windows), which lacks most names' letters: a report redirected to a
    file stopped at the first one, its HTML or CSV cut off, and a
    character it has was written in an encoding the HTML page does not
    declare."""
    for stream in (sys.stdout, sys.stderr):
        if not isinstance(stream, io.TextIOWrapper):
            continue  # replaced by the caller: theirs to choose
        if codecs.lookup(stream.encoding).name.startswith("utf-"):
            continue  # holds every character
        if stream.isatty():
            stream.reconfigure(errors="backslashreplace")
        else:
            stream.reconfigure(encoding="utf-8")


# The workflow commands (roles, guardians, pending entries) live in their own
# module and register themselves on the ``cli`` group defined above.
from timebank import _cli_import, _cli_reports, _cli_workflows  # noqa: E402, F401
