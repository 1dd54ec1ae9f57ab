"""CLI commands for roles, guardian angels, memberships and pending entries
(docs/workflows.md). They register on :data:`timebank.cli.cli`."""

from __future__ import annotations

from pathlib import Path

import click

from timebank import api
from timebank._access import PROPOSABLE_KINDS
from timebank._output import counted, render
from timebank.cli import _actor, _command, _echo_entry, _format_option, _one_format_option, _store
from timebank.domain.roles import Role
from timebank.domain.values import format_hours
from timebank.migrate import migrate
from timebank.views import BankInfo, PendingEntry

__all__: list[str] = []

_PENDING_COLUMNS = [
    "entry_id", "bank", "kind", "provider", "receiver", "receiver_bank", "minutes",
    "occurred_on", "awaiting", "confirmer", "actor", "on_behalf_of", "expires_on", "expired",
]  # fmt: skip


def _echo_roles(info: BankInfo) -> None:
    rows = [{"user": user, "role": role} for user, role in info.roles]
    click.echo(render(rows, ["user", "role"], "table"))


def _echo_pending(pending: PendingEntry, fmt: str = "table") -> None:
    data = pending.to_dict()
    if fmt == "json":
        click.echo(render([data], list(data), "json"))
        return
    who = f"{pending.confirmer}'s confirmation"
    if pending.awaiting == "approval":
        who = "a coordinator's approval"
    click.echo(
        f"{pending.entry_id}: {pending.kind} {format_hours(pending.minutes)} on"
        f" {pending.occurred_on} in {pending.bank}, pending: awaits {who}"
        f" until {pending.expires_on}"
    )


def _echo_guardians(tb: api.Timebank, bank: str, member: str) -> None:
    click.echo(f"guardians of {member} in {bank}: {', '.join(tb.guardians(bank, member))}")


# --- roles and guardians ---------------------------------------------------------------------
@_command("grant-role")
@click.argument("bank")
@click.argument("user")
@click.argument("role", type=click.Choice([Role.COORDINATOR.value, Role.ADMIN.value]))
def grant_role(bank: str, user: str, role: str) -> None:
    """Give USER the ROLE in BANK (and its mini banks)."""
    with _store() as tb:
        _echo_roles(tb.grant_role(bank, user, role, actor=_actor()))


@_command("revoke-role")
@click.argument("bank")
@click.argument("user")
def revoke_role(bank: str, user: str) -> None:
    """Take away the role granted to USER in BANK."""
    with _store() as tb:
        _echo_roles(tb.revoke_role(bank, user, actor=_actor()))


@_command("role")
@click.argument("bank")
@click.argument("user")
def role(bank: str, user: str) -> None:
    """Show USER's role in BANK (granted, inherited or as a member), or none."""
    with _store() as tb:
        found = tb.role(bank, user)
    click.echo("none" if found is None else found.value)


@_command("appoint-guardian")
@click.argument("bank")
@click.argument("member")
@click.argument("guardian")
def appoint_guardian(bank: str, member: str, guardian: str) -> None:
    """Let GUARDIAN (a guardian angel) act for MEMBER in BANK."""
    with _store() as tb:
        tb.appoint_guardian(bank, member, guardian, actor=_actor())
        _echo_guardians(tb, bank, member)


@_command("remove-guardian")
@click.argument("bank")
@click.argument("member")
@click.argument("guardian")
def remove_guardian(bank: str, member: str, guardian: str) -> None:
    """GUARDIAN no longer acts for MEMBER in BANK."""
    with _store() as tb:
        tb.remove_guardian(bank, member, guardian, actor=_actor())
        _echo_guardians(tb, bank, member)


@_command("memberships")
@click.argument("member")
@_format_option
def memberships(member: str, fmt: str, bom: bool) -> None:
    """MEMBER's account in every bank they joined."""
    with _store() as tb:
        rows = [m.to_dict() for m in tb.memberships(member)]
    columns = ["bank", "kind", "status", "joined_on", "balance_minutes"]
    click.echo(render(rows, columns, fmt, bom=bom))


# --- storage ----------------------------------------------------------------------------------
@_command("migrate")
@click.option("--to", "target", required=True, metavar="URL", help="The empty store to fill.")
def migrate_store(target: str) -> None:
    """Copy the whole store (--db) into the empty store at --to, then check
    that both hold the same banks, balances, entries and profiles."""
    with _store() as source, api.open(target) as destination:
        done = migrate(
            source, destination,
            progress=lambda n: click.echo(f"copied {counted(n, 'event')}", err=True),
        )  # fmt: skip
    click.echo(
        f"migrated {counted(done.events, 'event')}: {counted(done.banks, 'bank')},"
        f" {counted(done.entries, 'entry', 'entries')}, {counted(done.profiles, 'profile')};"
        " balances and counts verified equal"
    )


@_command("backup")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
def backup(dest: Path) -> None:
    """Copy the SQLite store (--db) to the new file DEST while it is in use,
    check the copy and keep it only if it is sound (docs/storage.md)."""
    with _store() as tb:
        done = tb.backup(dest)
    click.echo(
        f"backed up {counted(done.events, 'event')} ({done.bytes / 1e6:,.1f} MB) to"
        f" {done.path}; the copy passed SQLite's integrity check (the read model is not"
        " copied: it is rebuilt from the log)"
    )


@_command("restore")
@click.argument("backup", type=click.Path(dir_okay=False, path_type=Path))
def restore(backup: Path) -> None:
    """Put the backup file BACKUP in place of the SQLite store (--db), which
    no process may be using: the backup is checked first, and the store it
    replaces is kept beside it as STORE.replaced-<time> (docs/storage.md)."""
    done = api.restore(backup, click.get_current_context().obj["db"])
    click.echo(f"restored {counted(done.events, 'event')} from {done.backup} into {done.path}")
    if done.replaced is not None:
        click.echo(
            f"the store it replaced is {done.replaced}: keep it until `timebank audit` of the"
            " restored store is clean (it may hold entries made since the backup)"
        )


# --- pending entries ---------------------------------------------------------------------------
@_command("propose")
@click.argument("bank")
@click.argument("kind", type=click.Choice([k.value for k in PROPOSABLE_KINDS]))
@click.argument("provider")
@click.argument("hours")
@click.option("--receiver", metavar="MEMBER", help="The receiver (not for a donation).")
@click.option("--receiver-bank", metavar="BANK", help="The receiver's bank, if another.")
@click.option("--on", "occurred_on", metavar="DATE", help="Date of the help [today].")
@click.option("--category", help="Category code, e.g. gardening.")
@click.option("--entry-id", help="Your id for the entry: makes retries safe.")
@click.option("--on-behalf-of", metavar="MEMBER", help="The party you propose it for.")
@_one_format_option
def propose(
    bank: str, kind: str, provider: str, hours: str, receiver: str | None,
    receiver_bank: str | None, occurred_on: str | None, category: str | None,
    entry_id: str | None, on_behalf_of: str | None, fmt: str,
) -> None:  # fmt: skip
    """Propose an entry you take part in; it moves nothing until the other
    party confirms it (and a coordinator approves it, where needed)."""
    with _store() as tb:
        pending = tb.propose(
            bank, kind, provider, receiver, hours, actor=_actor(), occurred_on=occurred_on,
            category=category, entry_id=entry_id, on_behalf_of=on_behalf_of,
            receiver_bank=receiver_bank,
        )  # fmt: skip
    _echo_pending(pending, fmt)


@_command("confirm")
@click.argument("entry_id")
@click.option("--on-behalf-of", metavar="MEMBER", help="The party you confirm it for.")
@_one_format_option
def confirm(entry_id: str, on_behalf_of: str | None, fmt: str) -> None:
    """Confirm a pending entry that waits for you: it takes effect (or waits
    for approval)."""
    with _store() as tb:
        outcome = tb.confirm(entry_id, actor=_actor(), on_behalf_of=on_behalf_of)
    if isinstance(outcome, PendingEntry):
        _echo_pending(outcome, fmt)
    else:
        _echo_entry(outcome, fmt)


@_command("approve")
@click.argument("entry_id")
@_one_format_option
def approve(entry_id: str, fmt: str) -> None:
    """Approve an entry awaiting approval: it takes effect."""
    with _store() as tb:
        _echo_entry(tb.approve(entry_id, actor=_actor()), fmt)


@_command("decline")
@click.argument("entry_id")
@click.option("--on-behalf-of", metavar="MEMBER", help="The party you decline it for.")
def decline(entry_id: str, on_behalf_of: str | None) -> None:
    """Decline (or withdraw) a pending entry: it never takes effect."""
    with _store() as tb:
        declined = tb.decline(entry_id, actor=_actor(), on_behalf_of=on_behalf_of)
    click.echo(f"{declined.entry_id}: declined")


@_command("pending")
@click.argument("bank")
@click.option("--member", help="Only entries this member takes part in.")
@_format_option
def pending(bank: str, member: str | None, fmt: str, bom: bool) -> None:
    """Pending entries of BANK, oldest first."""
    with _store() as tb:
        rows = [p.to_dict() for p in tb.pending(bank, member)]
    click.echo(render(rows, _PENDING_COLUMNS, fmt, bom=bom))


@_command("expire-pending")
@click.argument("bank")
def expire_pending(bank: str) -> None:
    """Record the expiry of BANK's pending entries past their date (run daily)."""
    with _store() as tb:
        expired = tb.expire_pending(bank, actor=_actor())
    listed = f": {', '.join(expired)}" if expired else ""
    click.echo(f"expired {len(expired)} pending entries{listed}")
