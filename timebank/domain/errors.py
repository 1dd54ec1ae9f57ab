"""One hierarchy of named errors for every refused command.

Every error has a stable ``code`` (snake_case, safe to match on) and carries
the ids involved as attributes, so a caller can act on it without parsing
the message. A refused command changes nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyReversed",
    "ApprovalRequired",
    "BackupRefused",
    "BalanceLimitExceeded",
    "BankAlreadyExists",
    "BankNotFound",
    "BanksNotInSameTree",
    "BeforeBankOpened",
    "CannotReverseReversal",
    "ChartsUnavailable",
    "ConcurrencyConflict",
    "EntryConflict",
    "EntryExpired",
    "EntryNotFound",
    "EntryTooLarge",
    "EventUnreadable",
    "ImportFailed",
    "InvalidAmount",
    "InvalidDate",
    "InvalidGroup",
    "InvalidId",
    "InvalidInput",
    "InvalidPolicy",
    "LastAdmin",
    "LeaveBeforeLastEntry",
    "MemberAlreadyJoined",
    "MemberNotActive",
    "MemberNotFound",
    "MemberStatusConflict",
    "MigrationMismatch",
    "NotFound",
    "NotPermitted",
    "OccurredBeforeJoining",
    "OccurredInFuture",
    "PendingEntryNotFound",
    "PendingStateConflict",
    "PotOverdrawn",
    "ReadModelError",
    "RestoreRefused",
    "ReversalBeforeEntry",
    "RoleNotFound",
    "RuleViolation",
    "SelfExchange",
    "StorageError",
    "StoreClosed",
    "StoreFormatTooNew",
    "StoreNotEmpty",
    "StoreNotFound",
    "TimebankError",
    "UnsupportedStorageURL",
]


class TimebankError(Exception):
    """Base of every error timebank raises on purpose."""

    code: ClassVar[str] = "timebank_error"

    def __init__(self, message: str, **ids: Any) -> None:
        super().__init__(message)
        self.message = message
        self.ids: dict[str, Any] = ids
        for key, value in ids.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return self.message


# --- input that can never be valid -------------------------------------------
class InvalidInput(TimebankError):
    """The input is malformed, whatever the state of the ledger."""

    code = "invalid_input"


class InvalidAmount(InvalidInput):
    """An amount is not a positive whole number of minutes (or is unparseable)."""

    code = "invalid_amount"


class InvalidId(InvalidInput):
    """An id is empty, too long, or has characters ids may not have."""

    code = "invalid_id"


class InvalidDate(InvalidInput):
    """A date is not an ISO date (YYYY-MM-DD)."""

    code = "invalid_date"


class InvalidGroup(InvalidInput):
    """A group exchange is malformed: no provider or no receiver, a member on
    both sides or twice, a share that is not positive, providers' and
    receivers' minutes that do not balance, or too many participants."""

    code = "invalid_group"


class InvalidPolicy(InvalidInput):
    """A bank policy is inconsistent (for example a pot allowed below zero)."""

    code = "invalid_policy"


# --- things that are not there -------------------------------------------------
class NotFound(TimebankError):
    code = "not_found"


class BankNotFound(NotFound):
    code = "bank_not_found"


class MemberNotFound(NotFound):
    code = "member_not_found"


class EntryNotFound(NotFound):
    code = "entry_not_found"


class RoleNotFound(NotFound):
    """The user has no role (or is not a guardian) to revoke."""

    code = "role_not_found"


class PendingEntryNotFound(NotFound):
    """No pending entry (awaiting confirmation or approval) has this id."""

    code = "pending_entry_not_found"


# --- who may do what --------------------------------------------------------------
class NotPermitted(TimebankError):
    """The actor's role in the bank does not allow the action (``actor``,
    ``action``, ``bank``, and ``role``: the role they have, or ``None``).

    For an act in a member's name that is judged as theirs (giving their
    credits, proposing, confirming, declining), ``actor`` and ``role`` name
    that member, not the one who sent the command."""

    code = "not_permitted"


class ApprovalRequired(NotPermitted):
    """A member tried to give more than the bank's approval threshold at
    once: propose it instead, so that a coordinator approves it."""

    code = "approval_required"


# --- things that are there already --------------------------------------------
class BankAlreadyExists(TimebankError):
    code = "bank_already_exists"


class MemberAlreadyJoined(TimebankError):
    code = "member_already_joined"


class EntryConflict(TimebankError):
    """An entry id is already recorded with different fields.

    ``field`` names the first field that differs, as TigerBeetle's
    ``exists_with_different_*`` results do.
    """

    code = "entry_conflict"


# --- rules of the ledger --------------------------------------------------------
class RuleViolation(TimebankError):
    """The input is well formed but the ledger's rules refuse it."""

    code = "rule_violation"


class SelfExchange(RuleViolation):
    code = "self_exchange"


class EntryTooLarge(RuleViolation):
    code = "entry_too_large"


class OccurredInFuture(RuleViolation):
    code = "occurred_in_future"


class OccurredBeforeJoining(RuleViolation):
    code = "occurred_before_joining"


class BalanceLimitExceeded(RuleViolation):
    code = "balance_limit_exceeded"


class PotOverdrawn(RuleViolation):
    code = "pot_overdrawn"


class AlreadyReversed(RuleViolation):
    code = "already_reversed"


class CannotReverseReversal(RuleViolation):
    code = "cannot_reverse_reversal"


class ReversalBeforeEntry(RuleViolation):
    code = "reversal_before_entry"


class MemberNotActive(RuleViolation):
    """A suspended member, or one who has left, cannot take part in new entries."""

    code = "member_not_active"


class MemberStatusConflict(RuleViolation):
    """A lifecycle command does not apply to the member's current state
    (``status``): suspending someone who is not active, rejoining someone who
    has not left, and so on."""

    code = "member_status_conflict"


class LeaveBeforeLastEntry(RuleViolation):
    """A member cannot leave on a date before one of their entries."""

    code = "leave_before_last_entry"


class BanksNotInSameTree(RuleViolation):
    """An inter-bank entry between banks with different roots."""

    code = "banks_not_in_same_tree"


class LastAdmin(RuleViolation):
    """A root bank's last admin cannot lose the role (the bank needs an owner)."""

    code = "last_admin"


class PendingStateConflict(RuleViolation):
    """A pending entry is not in the state the command needs (``awaiting``):
    confirming one that awaits approval, approving one that awaits
    confirmation, or acting on one already settled."""

    code = "pending_state_conflict"


class EntryExpired(RuleViolation):
    """A pending entry is past its ``expires_on``; it can only expire."""

    code = "entry_expired"


class BeforeBankOpened(RuleViolation):
    """A member cannot join (nor a bank record anything) before it opened."""

    code = "before_bank_opened"


# --- storage ----------------------------------------------------------------------
class ConcurrencyConflict(TimebankError):
    """Other writers kept changing the same bank; retries were exhausted."""

    code = "concurrency_conflict"


class StorageError(TimebankError):
    code = "storage_error"


class EventUnreadable(StorageError):
    """A stored event (or snapshot) cannot be read: it is damaged (a failing
    disk, a hand edit). ``timebank audit`` finds every such event."""

    code = "event_unreadable"


class UnsupportedStorageURL(StorageError):
    code = "unsupported_storage_url"


class StoreNotFound(StorageError):
    code = "store_not_found"


class StoreClosed(StorageError):
    """A call on a :class:`~timebank.Timebank` after its ``close()``, or in
    a process forked from the one that opened it: open the store again."""

    code = "store_closed"


class StoreFormatTooNew(StorageError):
    """A store that a later release of timebank wrote in a format this
    release cannot read (``found``, above :data:`timebank.STORE_FORMAT`;
    ``written_by`` names that release): upgrade timebank. Nothing was
    written (docs/storage.md, "The store's format")."""

    code = "store_format_too_new"
    found: int
    written_by: str


class StoreNotEmpty(StorageError):
    """Migration copies into an empty store only."""

    code = "store_not_empty"


class BackupRefused(StorageError):
    """A backup was not started: its destination exists or is the store's
    own file, or the store is not a SQLite file (nothing is written)."""

    code = "backup_refused"


class RestoreRefused(StorageError):
    """A restore was not made: the backup is missing, is the store's own
    file or fails its check, the store is in use, or it is not a SQLite
    file (nothing is changed)."""

    code = "restore_refused"


class MigrationMismatch(StorageError):
    """A migrated store did not match its source (``what`` differed)."""

    code = "migration_mismatch"


# --- imports -----------------------------------------------------------------------
class ImportFailed(InvalidInput):
    """An import found problems in its rows and wrote nothing; ``problems``
    lists each (a :class:`timebank.RowProblem`: file, line, column, value,
    reason). ``limit_reached`` is the import's ``max_errors`` when it stopped
    checking there (the rest of the rows unchecked), else None."""

    code = "import_failed"
    problems: list[Any]
    limit_reached: int | None = None


# --- read models and reports ------------------------------------------------------
class ReadModelError(TimebankError):
    """The read model cannot follow the log (an event of a later version)."""

    code = "read_model_error"


class ChartsUnavailable(TimebankError):
    """The HTML report needs the optional extra ``timebank[charts]``."""

    code = "charts_unavailable"
