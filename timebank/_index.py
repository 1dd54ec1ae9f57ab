"""The index rows of events (private): which rows of the entry, postings and
pending indexes each event adds or removes. The API writes them with every
save; migration rebuilds them from the log with the same functions."""

from __future__ import annotations

from uuid import UUID

from timebank.domain.bank import Bank
from timebank.storage import IndexUpdate
from timebank.storage.base import combined

__all__ = ["combined", "index_rows", "index_update"]


def index_update(
    ledgers: list[Bank], home: str, parties: dict[str, list[str]] | None = None
) -> IndexUpdate:
    """Index rows for the events about to be saved on ``ledgers``: an entry
    is indexed on its ``home`` bank (an inter-bank entry once, from the
    provider's side); ``parties`` adds parties per bank (a reversal's are its
    entry's). See :func:`index_rows`."""
    rows = [
        index_rows(event, ledger.bank_id, ledger.id, ledger.bank_id == home,
                   (parties or {}).get(ledger.bank_id, []))
        for ledger in ledgers
        for event in ledger.pending_events
    ]  # fmt: skip
    return combined(rows)


def index_rows(
    event: object, bank_id: str, bank_uuid: UUID, home: bool, extra_parties: list[str]
) -> IndexUpdate:
    """The index rows of one event of bank ``bank_id``: for an entry, its row
    in the entry index (when ``home``) and a posting for every account it
    moves and every party (so the person helped by the pot sees it on their
    statement too); for a pending entry, its row in the pending index, added
    or removed, and when it is declined or expires, its row in the index of
    settled proposals. The API writes these with each save; migration rebuilds them
    from the log with the same function."""
    name = type(event).__name__
    entry_id: str = getattr(event, "entry_id", "")
    if name == "EntryProposed":
        return IndexUpdate(pending_added=((entry_id, bank_uuid),))
    if name in _WITHOUT_EFFECT:  # its id stays spent
        version = event.originator_version  # type: ignore[attr-defined]
        return IndexUpdate(pending_removed=(entry_id,), settled=((entry_id, bank_uuid, version),))
    if name in _SETTLING and getattr(event, "takes_effect", True):
        return IndexUpdate(pending_removed=(entry_id,))
    if not isinstance(event, Bank.EntryEvent):
        return IndexUpdate()
    version = event.originator_version
    entries = ((entry_id, bank_uuid, version, getattr(event, "reverses", None)),) if home else ()
    accounts = [a for a, _ in event.legs()] + event.parties_on(bank_id) + extra_parties
    return IndexUpdate(
        entries=entries, postings=tuple((bank_uuid, a, version) for a in dict.fromkeys(accounts))
    )


#: Events that settle a pending entry (a confirmation only when it takes
#: effect), by class name: the Bank's @event methods define these classes.
_SETTLING = frozenset({"EntryConfirmed", "EntryApproved", "EntryDeclined", "PendingEntryExpired"})
#: Of those, the ones that settle it without its taking effect.
_WITHOUT_EFFECT = frozenset({"EntryDeclined", "PendingEntryExpired"})
